//! AdamW and the EMA of the weights, with state that can be saved and restored.
//!
//! candle-nn's `AdamW` keeps its moments private, so a run could not be resumed exactly; this one
//! applies the same update (Loshchilov & Hutter, arXiv 1711.05101, as PyTorch's `AdamW`) and
//! exposes its state as named tensors.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::{Error, Result};

/// Hyper-parameters of [`AdamW`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    /// Learning rate (set every step by the trainer's schedule).
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// AdamW over a fixed, ordered list of named variables.
#[derive(Debug)]
pub struct AdamW {
    params: AdamWParams,
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl AdamW {
    /// Creates the optimiser with zero moments. `vars` should be in a stable order (by name).
    ///
    /// # Errors
    /// Returns an error if the moment tensors cannot be allocated.
    pub fn new(vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let m = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            params,
            vars,
            m,
            v,
            step: 0,
        })
    }

    /// Sets the learning rate for the next steps.
    pub fn set_lr(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// The number of updates applied so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Applies one update from `grads`, each gradient multiplied by `grad_scale` first (for
    /// gradient clipping). Variables without a gradient are left unchanged.
    ///
    /// # Errors
    /// Returns an error if a tensor operation fails.
    pub fn step(&mut self, grads: &GradStore, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let AdamWParams {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let bias1 = 1.0 - beta1.powi(self.step as i32);
        let bias2 = 1.0 - beta2.powi(self.step as i32);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = if grad_scale == 1.0 {
                g.clone()
            } else {
                (g * grad_scale)?
            };
            let m = ((&self.m[i] * beta1)? + (&g * (1.0 - beta1))?)?;
            let v = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let denom = ((&v / bias2)?.sqrt()? + eps)?;
            let update = ((&m / bias1)? / denom)?;
            let theta = ((var.as_tensor() * (1.0 - lr * weight_decay))? - (update * lr)?)?;
            var.set(&theta)?;
            // Detached, so that the moments do not keep every past step's graph (and
            // gradients) alive.
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// The optimiser state as named tensors (`m.<var>` and `v.<var>`).
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::with_capacity(2 * self.vars.len());
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores the state saved by [`AdamW::state`] and the step count.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] (with an empty path, filled in by the caller) when a tensor is
    /// missing or has another shape.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("{prefix}.{name}");
                let t = state.get(&key).ok_or_else(|| Error::Checkpoint {
                    path: Default::default(),
                    reason: format!("optimiser state has no tensor `{key}`"),
                })?;
                if t.dims() != var.dims() {
                    return Err(Error::Checkpoint {
                        path: Default::default(),
                        reason: format!(
                            "optimiser tensor `{key}` has shape {:?}, the model's has {:?}",
                            t.dims(),
                            var.dims()
                        ),
                    });
                }
                *slot = t.to_device(var.device())?.to_dtype(var.dtype())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Exponential moving average of the weights, with diffusers' `EMAModel` warm-up of the decay:
/// `min(decay, (1 + n) / (10 + n))` at the `n`-th update.
#[derive(Debug)]
pub struct Ema {
    decay: f64,
    shadow: Vec<Tensor>,
    updates: u64,
}

impl Ema {
    /// Starts the average at the current weights.
    ///
    /// # Errors
    /// Returns an error if a tensor cannot be copied.
    pub fn new(vars: &[(String, Var)], decay: f64) -> Result<Self> {
        let shadow = vars
            .iter()
            .map(|(_, v)| Ok(v.as_tensor().copy()?.detach()))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            decay,
            shadow,
            updates: 0,
        })
    }

    /// The decay used at the next update.
    pub fn current_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// Moves the average towards the current weights.
    ///
    /// # Errors
    /// Returns an error if a tensor operation fails.
    pub fn update(&mut self, vars: &[(String, Var)]) -> Result<()> {
        let d = self.current_decay();
        for (s, (_, v)) in self.shadow.iter_mut().zip(vars) {
            *s = ((&*s * d)? + (v.as_tensor() * (1.0 - d))?)?.detach();
        }
        self.updates += 1;
        Ok(())
    }

    /// The averaged weights, in the order of the variables.
    pub fn weights(&self) -> &[Tensor] {
        &self.shadow
    }

    /// The number of updates so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Restores averaged weights (in variable order) and the update count.
    pub(crate) fn restore(&mut self, shadow: Vec<Tensor>, updates: u64) {
        self.shadow = shadow;
        self.updates = updates;
    }
}

/// The global L2 norm of the gradients of `vars` (summed in the order of `vars`).
///
/// # Errors
/// Returns an error if a tensor operation fails.
pub fn grad_norm(vars: &[(String, Var)], grads: &GradStore) -> Result<f64> {
    let mut sum = 0f64;
    for (_, v) in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sum += g
                .to_dtype(candle_core::DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    Ok(sum.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// One AdamW step on f(w) = sum(w^2 / 2), gradient w, against the closed form.
    #[test]
    fn adamw_matches_closed_form() -> Result<()> {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0, 0.5], &dev)?)?;
        let p = AdamWParams {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], p)?;
        let loss = (w.as_tensor().sqr()? * 0.5)?.sum_all()?;
        opt.step(&loss.backward()?, 1.0)?;
        // After one step m_hat = g and v_hat = g^2, so the update is lr * sign(g).
        let got = w.as_tensor().to_vec1::<f32>()?;
        for (g, w0) in got.iter().zip([1.0f64, -2.0, 0.5]) {
            let want = w0 * (1.0 - 0.1 * 0.01) - 0.1 * w0.signum() * (w0.abs() / (w0.abs() + 1e-8));
            assert!((*g as f64 - want).abs() < 1e-6, "{g} vs {want}");
        }
        assert_eq!(opt.step_count(), 1);
        let state = opt.state();
        assert_eq!(state["m.w"].to_vec1::<f32>()?, vec![0.1, -0.2, 0.05]);
        let _ = DType::F32;
        Ok(())
    }

    #[test]
    fn ema_decay_warms_up() -> Result<()> {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[0.0f32], &dev)?)?;
        let vars = vec![("w".to_string(), w.clone())];
        let mut ema = Ema::new(&vars, 0.999)?;
        assert!((ema.current_decay() - 0.1).abs() < 1e-15);
        w.set(&Tensor::new(&[1.0f32], &dev)?)?;
        ema.update(&vars)?;
        let s = ema.weights()[0].to_vec1::<f32>()?[0];
        assert!((s - 0.9).abs() < 1e-6);
        for _ in 0..100_000 {
            ema.updates += 1;
        }
        assert_eq!(ema.current_decay(), 0.999);
        Ok(())
    }
}
