//! A residual MLP denoiser for tabular data (TabDDPM, arXiv 2209.15421; DTE, arXiv
//! 2305.18593).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use dmad_core::{Denoiser, PredictionType};
use serde::{Deserialize, Serialize};

use crate::embedding::{sinusoidal_embedding, timesteps_f32, TimestepEmbedding};
use crate::error::{invalid, Error, Result};
use crate::layers::Activation;
use crate::weights;

/// Configuration of [`MlpDenoiser`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpConfig {
    /// The number of features of a row. No default that fits every table: `0` here, which
    /// [`MlpDenoiser::new`] rejects. Default `0`.
    pub in_features: usize,
    /// The hidden width. Default `256`.
    pub width: usize,
    /// The number of residual blocks. Default `4`.
    pub depth: usize,
    /// Width of the sinusoidal timestep embedding (even). Default `128`.
    pub time_embedding_dim: usize,
    /// Order the sinusoidal embedding `cos, sin`. Default `true`.
    pub flip_sin_to_cos: bool,
    /// diffusers' `freq_shift` of the sinusoidal embedding. Default `0`.
    pub freq_shift: f64,
    /// The activation inside the blocks. Default silu.
    pub act_fn: Activation,
    /// Epsilon of the layer norms. Default `1e-5`.
    pub norm_eps: f64,
    /// What the network predicts. Default epsilon.
    pub prediction_type: PredictionType,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            in_features: 0,
            width: 256,
            depth: 4,
            time_embedding_dim: 128,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            act_fn: Activation::Silu,
            norm_eps: 1e-5,
            prediction_type: PredictionType::Epsilon,
        }
    }
}

impl MlpConfig {
    /// The default config for rows of `in_features` features.
    pub fn new(in_features: usize) -> Self {
        Self {
            in_features,
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.in_features == 0 {
            return Err(invalid("in_features", "must be at least 1"));
        }
        if self.width == 0 {
            return Err(invalid("width", "must be at least 1"));
        }
        if self.time_embedding_dim < 2 || !self.time_embedding_dim.is_multiple_of(2) {
            return Err(invalid(
                "time_embedding_dim",
                format!("{} must be even and at least 2", self.time_embedding_dim),
            ));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            return Err(invalid("norm_eps", "must be positive and finite"));
        }
        if !self.freq_shift.is_finite() {
            return Err(invalid("freq_shift", "must be finite"));
        }
        Ok(())
    }

    /// Parses a JSON config (as written by [`MlpConfig::to_json`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (field `json`) naming the serde error.
    pub fn from_json(json: &str) -> Result<Self> {
        crate::config::serde_json_lite::from_str(json)
    }

    /// Writes the config as pretty JSON.
    ///
    /// # Errors
    /// Only if serialisation fails.
    pub fn to_json(&self) -> Result<String> {
        crate::config::serde_json_lite::to_string(self)
    }
}

/// A layer norm over the last axis written with differentiable tensor ops.
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, None)
    }

    /// The norm followed by `act` when given. Under the fast kernels a `[batch, width]` input
    /// runs as dmad-ops' row-wise LayerNorm (the same maths: biased variance, `eps` inside the
    /// root), fused with SiLU where SiLU follows, one pass forward and one backward, instead
    /// of `dmad_ops::layer_norm_composed`, which allocates a tensor per operation.
    fn forward_act(&self, x: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        if crate::layers::fast() && x.rank() == 2 {
            return Ok(match act {
                Some(Activation::Silu) => {
                    dmad_ops::layer_norm_silu(x, &self.weight, &self.bias, self.eps)?
                }
                Some(a) => a.forward(&dmad_ops::layer_norm(
                    x,
                    &self.weight,
                    &self.bias,
                    self.eps,
                )?)?,
                None => dmad_ops::layer_norm(x, &self.weight, &self.bias, self.eps)?,
            });
        }
        let y = dmad_ops::layer_norm_composed(x, &self.weight, &self.bias, self.eps)?;
        Ok(match act {
            Some(a) => a.forward(&y)?,
            None => y,
        })
    }
}

/// One residual block: `h + linear_2(act(linear_1(norm(h)) + time_proj(act(temb))))`.
#[derive(Debug, Clone)]
struct MlpBlock {
    norm: LayerNorm,
    linear_1: Linear,
    time_proj: Linear,
    linear_2: Linear,
}

/// A residual MLP denoiser for rows of a table, with the timestep embedding added in every
/// block (TabDDPM / DTE style).
///
/// Parameters: `time_embedding.linear_{1,2}` (sinusoidal -> width -> width), `proj_in`,
/// `blocks.{i}.{norm, linear_1, time_proj, linear_2}`, `norm_out`, `proj_out`.
///
/// # Shapes
/// - `x`: `[batch, in_features]`; `t`: `[batch]`; returns `[batch, in_features]`.
#[derive(Debug, Clone)]
pub struct MlpDenoiser {
    cfg: MlpConfig,
    dtype: DType,
    time_embedding: TimestepEmbedding,
    proj_in: Linear,
    blocks: Vec<MlpBlock>,
    norm_out: LayerNorm,
    proj_out: Linear,
}

impl MlpDenoiser {
    /// Builds the network, taking its parameters from `vb`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad config; [`Error::Candle`] if `vb` lacks a parameter.
    pub fn new(cfg: MlpConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let w = cfg.width;
        let blocks = (0..cfg.depth)
            .map(|i| {
                let vb = vb.pp("blocks").pp(i);
                Ok(MlpBlock {
                    norm: LayerNorm::new(w, cfg.norm_eps, vb.pp("norm"))?,
                    linear_1: candle_nn::linear(w, w, vb.pp("linear_1"))?,
                    time_proj: candle_nn::linear(w, w, vb.pp("time_proj"))?,
                    linear_2: candle_nn::linear(w, w, vb.pp("linear_2"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            dtype: vb.dtype(),
            time_embedding: TimestepEmbedding::new(
                cfg.time_embedding_dim,
                w,
                vb.pp("time_embedding"),
            )?,
            proj_in: candle_nn::linear(cfg.in_features, w, vb.pp("proj_in"))?,
            blocks,
            norm_out: LayerNorm::new(w, cfg.norm_eps, vb.pp("norm_out"))?,
            proj_out: candle_nn::linear(w, cfg.in_features, vb.pp("proj_out"))?,
            cfg,
        })
    }

    /// Builds a freshly initialised network whose parameters live in a new [`VarMap`].
    ///
    /// # Errors
    /// As [`MlpDenoiser::new`].
    pub fn with_varmap(cfg: MlpConfig, dtype: DType, device: &Device) -> Result<(Self, VarMap)> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, device);
        let net = Self::new(cfg, vb)?;
        Ok((net, varmap))
    }

    /// The names and shapes of every parameter of a network of `cfg`, sorted by name.
    ///
    /// # Errors
    /// As [`MlpDenoiser::new`].
    pub fn parameter_shapes(cfg: &MlpConfig) -> Result<Vec<(String, Vec<usize>)>> {
        let (_, varmap) = Self::with_varmap(cfg.clone(), DType::F32, &Device::Cpu)?;
        Ok(weights::varmap_shapes(&varmap))
    }

    /// Loads a network from a safetensors file after checking its parameters against `cfg`.
    ///
    /// # Errors
    /// As [`UNet::load`](crate::UNet::load).
    pub fn load(path: impl AsRef<Path>, cfg: MlpConfig, device: &Device) -> Result<Self> {
        let expected = Self::parameter_shapes(&cfg)?;
        let tensors = weights::read_checked(path.as_ref(), &expected, device)?;
        Self::new(cfg, VarBuilder::from_tensors(tensors, DType::F32, device))
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &MlpConfig {
        &self.cfg
    }

    /// Runs the network.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` is not `[batch, in_features]` or `t` not `[batch]`.
    pub fn forward(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        if dims.len() != 2
            || dims[1] != self.cfg.in_features
            || dims[0] == 0
            || !x.dtype().is_float()
        {
            return Err(Error::ShapeMismatch {
                context: "MLP denoiser input x (float)",
                expected: format!("[batch, {}]", self.cfg.in_features),
                got: dims.to_vec(),
            });
        }
        let in_dtype = x.dtype();
        let x = x.to_dtype(self.dtype)?;
        let t = timesteps_f32(t, dims[0], x.device())?;
        // Scoring calls the network with one timestep for the whole batch: embed it once and
        // broadcast (the embedding and the blocks' time projections are a third of the work).
        let first = t.narrow(0, 0, 1)?;
        let uniform = dims[0] > 1 && t.broadcast_ne(&first)?.max_all()?.to_scalar::<u8>()? == 0;
        // Training with shared timesteps (`TrainConfig::distinct_timesteps`) gives a few
        // distinct values: embed each once and gather the rows.
        let (t, gather) = if uniform {
            (first, None)
        } else {
            distinct_rows(&t)?
        };
        let e = sinusoidal_embedding(
            &t,
            self.cfg.time_embedding_dim,
            self.cfg.flip_sin_to_cos,
            self.cfg.freq_shift,
        )?
        .to_dtype(self.dtype)?;
        let temb_act = self.cfg.act_fn.forward(&self.time_embedding.forward(&e)?)?;
        if crate::layers::fast() {
            return self.forward_fast(&x, &temb_act, gather.as_ref(), in_dtype);
        }
        let act = self.cfg.act_fn;
        let mut h = self.proj_in.forward(&x)?;
        for b in &self.blocks {
            let z = b.linear_1.forward(&b.norm.forward(&h)?)?;
            let tp = b.time_proj.forward(&temb_act)?;
            let tp = match &gather {
                Some(rows) => tp.index_select(rows, 0)?,
                None => tp,
            };
            let z = z.broadcast_add(&tp)?;
            let z = b.linear_2.forward(&act.forward(&z)?)?;
            h = (h + z)?;
        }
        let h = self.norm_out.forward_act(&h, Some(act))?;
        Ok(self.proj_out.forward(&h)?.to_dtype(in_dtype)?)
    }

    /// [`MlpDenoiser::forward`]'s layers on dmad-ops' fused CPU ops: each linear layer is one
    /// op with its bias accumulated into the product, and a block's time projection (gathered
    /// per row) and `linear_1`'s bias enter `linear_1` as one per-row addend, so no broadcast
    /// addition runs forward or backward. The same maths as the composition.
    fn forward_fast(
        &self,
        x: &Tensor,
        temb_act: &Tensor,
        gather: Option<&Tensor>,
        in_dtype: DType,
    ) -> Result<Tensor> {
        let act = self.cfg.act_fn;
        let activate = |z: &Tensor| -> Result<Tensor> {
            Ok(match act {
                Activation::Silu => dmad_ops::silu(z)?,
                a => a.forward(z)?,
            })
        };
        let mut h = linear(&self.proj_in, x, None)?;
        let n = h.dim(0)?;
        for b in &self.blocks {
            // time_proj(temb) + linear_1's bias: [1 or distinct or batch, width].
            let tp = linear(&b.time_proj, temb_act, b.linear_1.bias())?;
            let addend = match gather {
                Some(rows) => tp.index_select(rows, 0)?,
                None if tp.dim(0)? == n => tp,
                None => tp.squeeze(0)?,
            };
            let z = dmad_ops::linear(&b.norm.forward(&h)?, b.linear_1.weight(), &addend)?;
            let z = linear(&b.linear_2, &activate(&z)?, None)?;
            h = (h + z)?;
        }
        let h = self.norm_out.forward_act(&h, Some(act))?;
        Ok(linear(&self.proj_out, &h, None)?.to_dtype(in_dtype)?)
    }
}

/// `l(x)` as dmad-ops' fused linear op, plus `extra` (a `[out]` bias or a per-row `[batch,
/// out]` addend) when given; `extra` then adds to `l`'s bias.
fn linear(l: &Linear, x: &Tensor, extra: Option<&Tensor>) -> Result<Tensor> {
    let b = match (l.bias(), extra) {
        (Some(b), Some(e)) => e.broadcast_add(b)?,
        (Some(b), None) => b.clone(),
        (None, Some(e)) => e.clone(),
        (None, None) => Tensor::zeros(l.weight().dim(0)?, l.weight().dtype(), x.device())?,
    };
    Ok(dmad_ops::linear(x, l.weight(), &b)?)
}

/// The distinct values of the timesteps `t` (`[batch]`, f32) and, for each sample, the row of
/// its value, when at most half the samples have a value of their own; otherwise `t` itself
/// and no gather (the per-sample path, whose bits do not depend on this function).
fn distinct_rows(t: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
    let values = t.to_vec1::<f32>()?;
    let mut distinct = values.clone();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    if distinct.len() * 2 > values.len() {
        return Ok((t.clone(), None));
    }
    let rows: Vec<u32> = values
        .iter()
        .map(|v| distinct.partition_point(|d| d.total_cmp(v).is_lt()) as u32)
        .collect();
    let n = distinct.len();
    Ok((
        Tensor::from_vec(distinct, n, t.device())?,
        Some(Tensor::from_vec(rows, values.len(), t.device())?),
    ))
}

impl Denoiser for MlpDenoiser {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> dmad_core::Result<Tensor> {
        Ok(self.forward(x_t, t)?)
    }

    fn prediction_type(&self) -> PredictionType {
        self.cfg.prediction_type
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (MlpDenoiser, VarMap) {
        let cfg = MlpConfig {
            width: 16,
            depth: 2,
            time_embedding_dim: 8,
            ..MlpConfig::new(5)
        };
        MlpDenoiser::with_varmap(cfg, DType::F32, &Device::Cpu).unwrap()
    }

    /// The batch's output `y` for `(x, t)` row by row against one-sample calls.
    fn assert_rows_match_single_calls(net: &MlpDenoiser, x: &Tensor, t: &Tensor, y: &Tensor) {
        let batch = y.to_vec2::<f32>().unwrap();
        for (i, row) in batch.iter().enumerate() {
            let one = net
                .forward(&x.narrow(0, i, 1).unwrap(), &t.narrow(0, i, 1).unwrap())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for (a, b) in row.iter().zip(&one[0]) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn one_timestep_for_the_batch_gives_the_per_row_outputs() {
        let (net, _vars) = tiny();
        let x = Tensor::randn(0f32, 1.0, (4, 5), &Device::Cpu).unwrap();
        let t = Tensor::new(&[37u32, 37, 37, 37], &Device::Cpu).unwrap();
        let y = net.forward(&x, &t).unwrap();
        assert_rows_match_single_calls(&net, &x, &t, &y);
    }

    #[test]
    fn shared_timesteps_give_the_per_row_outputs_and_gradients() {
        let (net, vars) = tiny();
        let x = Tensor::randn(0f32, 1.0, (6, 5), &Device::Cpu).unwrap();
        // Two distinct values among six samples: the gathered path.
        let t = Tensor::new(&[9u32, 3, 9, 3, 3, 9], &Device::Cpu).unwrap();
        let y = net.forward(&x, &t).unwrap();
        assert_rows_match_single_calls(&net, &x, &t, &y);
        // The time path gets gradients through the gather.
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let data = vars.data().lock().unwrap();
        let w = data.get("blocks.0.time_proj.weight").unwrap();
        let g = grads
            .get(w.as_tensor())
            .expect("a gradient for the time projection");
        assert!(
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
    }

    #[test]
    fn fused_layers_match_the_candle_composition_forward_and_backward() {
        use crate::layers::{use_kernels, Kernels};
        let (net, vars) = tiny();
        let x = Tensor::randn(0f32, 1.0, (6, 5), &Device::Cpu).unwrap();
        // One timestep for all, two shared ones (gathered) and one per sample.
        for t in [[7u32; 6], [9, 3, 9, 3, 3, 9], [1, 50, 100, 400, 700, 999]] {
            let t = Tensor::new(&t, &Device::Cpu).unwrap();
            let run = |kernels| {
                let _k = use_kernels(kernels);
                let y = net.forward(&x, &t).unwrap();
                let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                let data = vars.data().lock().unwrap();
                let mut names: Vec<_> = data.keys().cloned().collect();
                names.sort();
                let g: Vec<Vec<f32>> = names
                    .iter()
                    .map(|n| {
                        grads
                            .get(data[n].as_tensor())
                            .unwrap_or_else(|| panic!("no gradient for {n}"))
                            .flatten_all()
                            .unwrap()
                            .to_vec1()
                            .unwrap()
                    })
                    .collect();
                (y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), g)
            };
            let (yf, gf) = run(Kernels::Fast);
            let (yc, gc) = run(Kernels::Candle);
            let close = |a: &[f32], b: &[f32], what: &str| {
                for (a, b) in a.iter().zip(b) {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{what}: {a} vs {b}"
                    );
                }
            };
            close(&yf, &yc, "output");
            for (a, b) in gf.iter().zip(&gc) {
                close(a, b, "gradient");
            }
        }
    }
}
