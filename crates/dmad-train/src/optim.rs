//! AdamW and the EMA of the weights, with state that can be saved and restored.
//!
//! candle-nn's `AdamW` keeps its moments private, so a run could not be resumed exactly; this one
//! applies the same update (Loshchilov & Hutter, arXiv 1711.05101, as PyTorch's `AdamW`) and
//! exposes its state as named tensors.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Storage, Tensor, Var};
use rayon::prelude::*;

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
            let fused = with_cpu_f32(&[g, &self.m[i], &self.v[i], var.as_tensor()], |xs| {
                adamw_f32(
                    xs,
                    AdamWCoefficients {
                        lr,
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                        bias1,
                        bias2,
                        grad_scale,
                    },
                )
            });
            let (m, v, theta) = match fused {
                Some((m, v, theta)) => {
                    let shape = var.shape();
                    (
                        Tensor::from_vec(m, shape, var.device())?,
                        Tensor::from_vec(v, shape, var.device())?,
                        Tensor::from_vec(theta, shape, var.device())?,
                    )
                }
                None => {
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
                    (m, v, theta)
                }
            };
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
            let fused = with_cpu_f32(&[&*s, v.as_tensor()], |xs| {
                let (df, cf) = (d as f32, (1.0 - d) as f32);
                xs[0]
                    .iter()
                    .zip(xs[1])
                    .map(|(&s, &w)| (s * df + 0.0) + (w * cf + 0.0))
                    .collect::<Vec<f32>>()
            });
            *s = match fused {
                Some(avg) => Tensor::from_vec(avg, v.shape(), v.device())?,
                None => ((&*s * d)? + (v.as_tensor() * (1.0 - d))?)?.detach(),
            };
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
            // The same sum as the tensor path below (f64, in order), without its copies.
            if let Some(s) = with_cpu_f32(&[g], |xs| {
                xs[0].iter().fold(0f64, |acc, &x| {
                    let x = f64::from(x);
                    acc + x * x
                })
            }) {
                sum += s;
                continue;
            }
            sum += g
                .to_dtype(candle_core::DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    Ok(sum.sqrt())
}

/// The scalars of one AdamW update.
#[derive(Debug, Clone, Copy)]
struct AdamWCoefficients {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    bias1: f64,
    bias2: f64,
    grad_scale: f64,
}

/// One AdamW update over `[gradient, m, v, theta]`, in one pass, returning the new `(m, v,
/// theta)`. Each operation is the one candle's tensor path applies, in the same order and
/// with the same f32 scalars (`t * s` is `t * (s as f32) + 0`, `t / s` multiplies by
/// `(1 / s) as f32`), so both paths give the same bits; this one reads each element once
/// instead of allocating a tensor per operation (a third of an MLP training step on the CPU).
fn adamw_f32(xs: &[&[f32]], c: AdamWCoefficients) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (g, m, v, theta) = (xs[0], xs[1], xs[2], xs[3]);
    let scale = c.grad_scale as f32;
    let (b1, c1) = (c.beta1 as f32, (1.0 - c.beta1) as f32);
    let (b2, c2) = (c.beta2 as f32, (1.0 - c.beta2) as f32);
    let (inv_bias1, inv_bias2) = ((1.0 / c.bias1) as f32, (1.0 / c.bias2) as f32);
    let eps = c.eps as f32;
    let decay = (1.0 - c.lr * c.weight_decay) as f32;
    let lr = c.lr as f32;
    let n = g.len();
    let (mut m_out, mut v_out, mut theta_out) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    // Elementwise, so the chunking (fixed, for rayon's two or more threads) changes no bits.
    const CHUNK: usize = 1 << 14;
    m_out
        .par_chunks_mut(CHUNK)
        .zip(v_out.par_chunks_mut(CHUNK))
        .zip(theta_out.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(k, ((mo, vo), to))| {
            let r = k * CHUNK..k * CHUNK + mo.len();
            let (g, m, v, theta) = (&g[r.clone()], &m[r.clone()], &v[r.clone()], &theta[r]);
            for i in 0..mo.len() {
                let g = if c.grad_scale == 1.0 {
                    g[i]
                } else {
                    g[i] * scale + 0.0
                };
                let m = (m[i] * b1 + 0.0) + (g * c1 + 0.0);
                let v = (v[i] * b2 + 0.0) + ((g * g) * c2 + 0.0);
                let denom = (v * inv_bias2 + 0.0).sqrt() * 1.0 + eps;
                let update = (m * inv_bias1 + 0.0) / denom;
                mo[i] = m;
                vo[i] = v;
                to[i] = (theta[i] * decay + 0.0) - (update * lr + 0.0);
            }
        });
    (m_out, v_out, theta_out)
}

/// Runs `f` on the data of `tensors` when each is a contiguous f32 tensor on the CPU, all of
/// one length; `None` otherwise (the caller then takes candle's tensor path).
fn with_cpu_f32<R>(tensors: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> Option<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let (Storage::Cpu(CpuStorage::F32(data)), Some((start, end))) =
            (&**storage, layout.contiguous_offsets())
        else {
            return None;
        };
        slices.push(&data[start..end]);
    }
    if slices.iter().any(|s| s.len() != slices[0].len()) {
        return None;
    }
    Some(f(&slices))
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

    /// The fused CPU paths give the bits of candle's tensor operations they replace.
    #[test]
    fn fused_cpu_updates_equal_the_tensor_path_bit_for_bit() -> Result<()> {
        let dev = Device::Cpu;
        let w0 = Tensor::randn(0f32, 1.0, (7, 5), &dev)?;
        let w = Var::from_tensor(&w0)?;
        let vars = vec![("w".to_string(), w.clone())];
        let p = AdamWParams {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let mut opt = AdamW::new(vars.clone(), p)?;
        let mut ema = Ema::new(&vars, 0.999)?;
        let (mut theta, mut m, mut v) = (w0.clone(), w0.zeros_like()?, w0.zeros_like()?);
        let mut shadow = w0.clone();
        for (step, scale) in [(1i32, 1.0f64), (2, 0.37), (3, 1.0)] {
            let r = Tensor::randn(0f32, 1.0, (7, 5), &dev)?;
            let grads = (w.as_tensor() * &r)?.sum_all()?.backward()?;
            let want_norm = r
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?
                .sqrt();
            assert_eq!(grad_norm(&vars, &grads)?.to_bits(), want_norm.to_bits());
            opt.step(&grads, scale)?;
            let d = ema.current_decay();
            ema.update(&vars)?;
            // candle's operations, as the tensor path applies them.
            let g = if scale == 1.0 { r } else { (r * scale)? };
            let (b1, b2) = (1.0 - 0.9f64.powi(step), 1.0 - 0.999f64.powi(step));
            m = ((&m * 0.9)? + (&g * (1.0 - 0.9))?)?;
            v = ((&v * 0.999)? + (g.sqr()? * (1.0 - 0.999))?)?;
            let update = ((&m / b1)? / ((&v / b2)?.sqrt()? + 1e-8)?)?;
            theta = ((&theta * (1.0 - 3e-3 * 0.01))? - (update * 3e-3)?)?;
            shadow = ((&shadow * d)? + (&theta * (1.0 - d))?)?;
            let bits = |t: &Tensor| -> Result<Vec<u32>> {
                Ok(t.flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|x| x.to_bits())
                    .collect())
            };
            assert_eq!(bits(w.as_tensor())?, bits(&theta)?, "theta at step {step}");
            let state = opt.state();
            assert_eq!(bits(&state["m.w"])?, bits(&m)?, "m at step {step}");
            assert_eq!(bits(&state["v.w"])?, bits(&v)?, "v at step {step}");
            assert_eq!(
                bits(&ema.weights()[0])?,
                bits(&shadow)?,
                "EMA at step {step}"
            );
        }
        Ok(())
    }
}
