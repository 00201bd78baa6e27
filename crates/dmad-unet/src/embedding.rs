//! Timestep embeddings: diffusers' sinusoidal embedding, its MLP, and the method's hybrid
//! (convolutional) time embedding.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

use crate::error::{Error, Result};
use crate::layers::{Activation, ConvNd, Rank};

/// Checks that `t` is a `[batch]` tensor of timesteps and returns it as `f32` on `device`.
pub(crate) fn timesteps_f32(t: &Tensor, batch: usize, device: &Device) -> Result<Tensor> {
    if t.rank() != 1 || t.dim(0)? != batch {
        return Err(Error::ShapeMismatch {
            context: "timesteps t",
            expected: format!("[{batch}] (one timestep per sample)"),
            got: t.dims().to_vec(),
        });
    }
    Ok(t.to_dtype(DType::F32)?.to_device(device)?)
}

/// The frequencies of diffusers' `get_timestep_embedding`, computed in `f32` as PyTorch does.
fn frequencies(dim: usize, freq_shift: f64, device: &Device) -> Result<Tensor> {
    let half = dim / 2;
    let log_max = -(10000f64.ln()) as f32;
    let denom = (half as f64 - freq_shift) as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|i| ((log_max * i as f32) / denom).exp())
        .collect();
    Ok(Tensor::from_vec(freqs, half, device)?)
}

/// diffusers' sinusoidal timestep embedding (`get_timestep_embedding` with `scale = 1`,
/// `max_period = 10000`; Ho et al., arXiv 2006.11239).
///
/// # Shapes
/// - `t`: `[batch]` `f32`.
/// - returns: `[batch, dim]` `f32`, `cos | sin` when `flip_sin_to_cos`, else `sin | cos`, a
///   zero column appended when `dim` is odd.
pub(crate) fn sinusoidal_embedding(
    t: &Tensor,
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> Result<Tensor> {
    let b = t.dim(0)?;
    let freqs = frequencies(dim, freq_shift, t.device())?;
    let args = t.unsqueeze(1)?.broadcast_mul(&freqs.unsqueeze(0)?)?;
    let (sin, cos) = (args.sin()?, args.cos()?);
    let mut emb = if flip_sin_to_cos {
        Tensor::cat(&[cos, sin], 1)?
    } else {
        Tensor::cat(&[sin, cos], 1)?
    };
    if dim % 2 == 1 {
        emb = Tensor::cat(&[emb, Tensor::zeros((b, 1), DType::F32, t.device())?], 1)?;
    }
    Ok(emb)
}

/// diffusers' `TimestepEmbedding`: `linear_1 -> silu -> linear_2`.
#[derive(Debug, Clone)]
pub(crate) struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    pub(crate) fn new(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear_1: candle_nn::linear(in_dim, out_dim, vb.pp("linear_1"))?,
            linear_2: candle_nn::linear(out_dim, out_dim, vb.pp("linear_2"))?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.linear_1.forward(x)?.silu()?;
        Ok(self.linear_2.forward(&h)?)
    }
}

/// The method's hybrid time embedding (section III-D d): `e + Conv1D(e)` over the
/// sinusoidal embedding `e`, read as a one-channel sequence along the embedding axis
/// (`conv1`: 1 -> `channels`, width `kernel`; act; `conv2`: `channels` -> 1, width 1).
///
/// The residual keeps the global position code; the convolution adds local structure.
#[derive(Debug, Clone)]
pub(crate) struct HybridTimeConv {
    conv1: ConvNd,
    conv2: ConvNd,
    act: Activation,
}

impl HybridTimeConv {
    pub(crate) fn new(
        kernel: usize,
        channels: usize,
        act: Activation,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            conv1: ConvNd::same(Rank::One, 1, channels, kernel, vb.pp("conv1"))?,
            conv2: ConvNd::same(Rank::One, channels, 1, 1, vb.pp("conv2"))?,
            act,
        })
    }

    /// `[batch, dim]` to `[batch, dim]`.
    pub(crate) fn forward(&self, e: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&e.unsqueeze(1)?)?;
        let h = self.conv2.forward(&self.act.forward(&h)?)?.squeeze(1)?;
        Ok((e + h)?)
    }
}
