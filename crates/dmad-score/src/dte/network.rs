//! The MLP of the parametric DTE models and its seeded training loop.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use dmad_train::optim::{AdamW, AdamWParams};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::check_schedule;
use crate::{Error, Result};

/// The training configuration of the DTE networks ([`super::DteCategorical`],
/// [`super::DteInverseGamma`]). The defaults of each model follow the reference
/// implementation; see their configs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DteTrainConfig {
    /// The widths of the hidden layers (ReLU; dropout after every hidden layer but the
    /// first). At least one, none 0.
    pub hidden: Vec<usize>,
    /// The dropout probability during training, in `[0, 1)`. Reference: 0.5.
    pub dropout: f64,
    /// The number of passes over the training rows. At least 1.
    pub epochs: usize,
    /// The rows per optimiser step (the last batch of an epoch may be smaller). At least 1.
    /// Reference: 64.
    pub batch_size: usize,
    /// Adam's learning rate. Reference: `1e-4`.
    pub learning_rate: f64,
    /// L2 weight decay added to the gradient (PyTorch `Adam(weight_decay=...)`, not AdamW's
    /// decoupled decay).
    pub weight_decay: f64,
    /// The number of diffusion timesteps `T`.
    pub num_train_timesteps: usize,
    /// The first beta of the linear schedule. Reference: `1e-4`.
    pub beta_start: f64,
    /// The last beta of the linear schedule. Reference: `1e-2`.
    pub beta_end: f64,
    /// The seed of the initial weights, the batch order, the timesteps, the noise and the
    /// dropout masks.
    pub seed: u64,
}

impl DteTrainConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Error::config(
                "hidden",
                format!(
                    "needs at least one layer and no zero width, got {:?}",
                    self.hidden
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "dropout",
                format!("must be in [0, 1), got {}", self.dropout),
            ));
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::config(
                "epochs/batch_size",
                format!(
                    "must be at least 1, got {} and {}",
                    self.epochs, self.batch_size
                ),
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::config(
                "learning_rate",
                format!("must be positive and finite, got {}", self.learning_rate),
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::config(
                "weight_decay",
                format!("must be non-negative and finite, got {}", self.weight_decay),
            ));
        }
        check_schedule(self.num_train_timesteps, self.beta_start, self.beta_end)
    }
}

/// A plain MLP: `relu(linear_0(x))`, then `dropout(relu(linear_i(h)))` for the other hidden
/// layers, then a linear output layer. Parameters `layers.{i}.{weight, bias}`.
#[derive(Debug, Clone)]
pub(crate) struct DteMlp {
    layers: Vec<Linear>,
    dropout: f64,
}

impl DteMlp {
    pub(crate) fn new(
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        dropout: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut widths = vec![d_in];
        widths.extend_from_slice(hidden);
        widths.push(d_out);
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| candle_nn::linear(w[0], w[1], vb.pp("layers").pp(i)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { layers, dropout })
    }

    /// The forward pass; with `rng`, in training mode (dropout masks drawn from it).
    pub(crate) fn forward(&self, x: &Tensor, rng: Option<&mut ChaCha8Rng>) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = self.layers[0].forward(x)?.relu()?;
        let mut rng = rng;
        for layer in &self.layers[1..last] {
            h = layer.forward(&h)?.relu()?;
            if let Some(r) = rng.as_deref_mut() {
                if self.dropout > 0.0 {
                    let keep = 1.0 - self.dropout;
                    let n = h.elem_count();
                    let m: Vec<f32> = (0..n)
                        .map(|_| {
                            if r.random::<f64>() < keep {
                                (1.0 / keep) as f32
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let mask = Tensor::from_vec(m, h.dims(), h.device())?;
                    h = (h * mask)?;
                }
            }
        }
        Ok(self.layers[last].forward(&h)?)
    }
}

/// A batch drawn by [`train`]: the noised rows, their timesteps and the network's output.
pub(crate) struct Batch<'a> {
    /// The network's output for the noised rows.
    pub out: &'a Tensor,
    /// The diffusion timestep of each row.
    pub t: &'a [usize],
}

/// Trains `net` (whose weights live in `varmap`) on the rows `rows` (`[n, d]`, row-major):
/// each step noises a batch with `x + sigma_t eps` (`var[t] = sigma_t^2`, `t` uniform) and
/// minimises `loss(batch)` plus the L2 weight decay with Adam.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_mlp(
    net: &DteMlp,
    varmap: &VarMap,
    rows: &[f32],
    n: usize,
    d: usize,
    var: &[f64],
    cfg: &DteTrainConfig,
    device: &Device,
    loss: impl Fn(Batch<'_>) -> Result<Tensor>,
) -> Result<()> {
    let mut vars: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .map_err(|_| Error::config("varmap", "the variable map's lock is poisoned"))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt = AdamW::new(
        vars.clone(),
        AdamWParams {
            lr: cfg.learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED_D7E0);
    let mut order: Vec<usize> = (0..n).collect();
    let t_max = var.len();
    for _ in 0..cfg.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch_size) {
            let b = chunk.len();
            let t: Vec<usize> = (0..b).map(|_| rng.random_range(0..t_max)).collect();
            let mut x = Vec::with_capacity(b * d);
            for (&i, &ti) in chunk.iter().zip(&t) {
                let s = var[ti].sqrt();
                for &v in &rows[i * d..(i + 1) * d] {
                    let e: f64 = StandardNormal.sample(&mut rng);
                    x.push((v as f64 + s * e) as f32);
                }
            }
            let x = Tensor::from_vec(x, (b, d), device)?;
            let out = net.forward(&x, Some(&mut rng))?;
            let mut l = loss(Batch { out: &out, t: &t })?;
            if cfg.weight_decay > 0.0 {
                let mut sq = Tensor::zeros((), DType::F32, device)?;
                for (_, v) in &vars {
                    sq = (sq + v.as_tensor().sqr()?.sum_all()?)?;
                }
                l = (l + (sq * (0.5 * cfg.weight_decay))?)?;
            }
            let grads = l.backward()?;
            opt.step(&grads, 1.0)?;
        }
    }
    Ok(())
}
