//! Building blocks shared by the 1D and 2D networks: the spatial rank, convolutions of either
//! rank, activations and checked group norms.

use std::cell::Cell;

use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// Which implementation runs a U-Net's convolutions, group norms and attention.
///
/// Both compute the same function with the same parameters; [`Kernels::Fast`] (the default)
/// uses `dmad-ops`' CPU kernels for the convolutions, the group norms (fused with SiLU where
/// SiLU follows) and the attention of f32 tensors on the CPU (and plain candle elsewhere),
/// [`Kernels::Candle`] always uses the plain candle composition (the reference the fast
/// kernels are tested against).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kernels {
    /// `dmad-ops`' kernels where they apply. The default.
    #[default]
    Fast,
    /// Plain candle operations everywhere.
    Candle,
}

thread_local! {
    /// The kernels of the network whose forward pass runs on this thread.
    static KERNELS: Cell<Kernels> = const { Cell::new(Kernels::Fast) };
}

/// Restores the previous [`Kernels`] of this thread when dropped.
pub(crate) struct KernelsGuard(Kernels);

impl Drop for KernelsGuard {
    fn drop(&mut self) {
        KERNELS.with(|k| k.set(self.0));
    }
}

/// Selects `kernels` for the layers run on this thread until the guard is dropped.
pub(crate) fn use_kernels(kernels: Kernels) -> KernelsGuard {
    KernelsGuard(KERNELS.with(|k| k.replace(kernels)))
}

/// Whether the fast kernels are selected on this thread.
pub(crate) fn fast() -> bool {
    KERNELS.with(|k| k.get()) == Kernels::Fast
}

/// The number of spatial dimensions of a network: 1 for series windows, 2 for images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rank {
    /// `[batch, channel, length]`.
    One,
    /// `[batch, channel, height, width]`.
    Two,
}

impl Rank {
    /// The number of spatial dimensions (1 or 2).
    pub fn dims(self) -> usize {
        match self {
            Rank::One => 1,
            Rank::Two => 2,
        }
    }

    /// The tensor rank of a batch of samples (3 or 4).
    pub fn tensor_rank(self) -> usize {
        self.dims() + 2
    }

    /// The layout in words, for error messages.
    pub(crate) fn layout(self, channels: usize) -> String {
        match self {
            Rank::One => format!("[batch, {channels}, length]"),
            Rank::Two => format!("[batch, {channels}, height, width]"),
        }
    }
}

/// A convolution over one or two spatial dimensions with diffusers' parameter names
/// (`weight`: `[out, in, k]` or `[out, in, k, k]`, `bias`: `[out]`).
#[derive(Debug, Clone)]
pub(crate) enum ConvNd {
    One(Conv1d),
    Two(candle_nn::Conv2d),
}

/// A 1D convolution computed as a `1 x k` 2D convolution.
///
/// candle 0.11.1's `conv1d` backward pass returns wrong kernel gradients for batches larger
/// than one (and wrong input gradients for 1-wide kernels), and its `conv2d` backward pass
/// breaks when the two spatial sizes need different output paddings; so the length is padded
/// by hand, convolved at stride 1, and subsampled for stride 2.
#[derive(Debug, Clone)]
pub(crate) struct Conv1d {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
    stride: usize,
}

impl Conv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // dmad-ops' conv1d has an exact backward pass only on its CPU f32 kernel (elsewhere it
        // falls back to candle's conv1d), so other dtypes and devices keep the path below.
        if fast() && x.dtype() == DType::F32 && x.device().is_cpu() {
            let cfg = candle_nn::Conv1dConfig {
                padding: self.padding,
                stride: self.stride,
                ..Default::default()
            };
            return Ok(dmad_ops::conv1d(x, &self.weight, Some(&self.bias), &cfg)?);
        }
        let (b, _, _) = x.dims3()?;
        let w = self.weight.unsqueeze(2)?;
        let mut y = x
            .unsqueeze(2)?
            .pad_with_zeros(3, self.padding, self.padding)?
            .conv2d(&w, 0, 1, 1, 1)?
            .squeeze(2)?;
        if self.stride > 1 {
            let (_, c, l) = y.dims3()?;
            let s = self.stride;
            let n = l.div_ceil(s);
            if n * s != l {
                y = y.pad_with_zeros(2, 0, n * s - l)?;
            }
            y = y.reshape((b, c, n, s))?.narrow(3, 0, 1)?.squeeze(3)?;
        }
        let c = self.bias.dim(0)?;
        Ok(y.broadcast_add(&self.bias.reshape((1, c, 1))?)?)
    }
}

impl ConvNd {
    /// A `kernel`-wide convolution with stride `stride` and zero padding `padding`.
    pub(crate) fn new(
        rank: Rank,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(match rank {
            Rank::One => {
                // candle's initialisation, our forward pass.
                let c =
                    candle_nn::conv1d(in_channels, out_channels, kernel, Default::default(), vb)?;
                ConvNd::One(Conv1d {
                    weight: c.weight().clone(),
                    bias: c.bias().expect("conv1d has a bias").clone(),
                    padding,
                    stride,
                })
            }
            Rank::Two => {
                let cfg = candle_nn::Conv2dConfig {
                    padding,
                    stride,
                    ..Default::default()
                };
                ConvNd::Two(candle_nn::conv2d(
                    in_channels,
                    out_channels,
                    kernel,
                    cfg,
                    vb,
                )?)
            }
        })
    }

    /// A "same" convolution: odd `kernel`, stride 1, padding `kernel / 2`.
    pub(crate) fn same(
        rank: Rank,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::new(rank, in_channels, out_channels, kernel, 1, kernel / 2, vb)
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            ConvNd::One(c) => c.forward(x)?,
            ConvNd::Two(c) if fast() => dmad_ops::conv2d_layer(c, x)?,
            ConvNd::Two(c) => c.forward(x)?,
        })
    }
}

/// Nearest-neighbour upsampling by 2 along every spatial dimension.
///
/// Written with `broadcast_as` + `reshape` so that it is differentiable on every device and
/// accumulates gradients correctly.
pub(crate) fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    Ok(match dims.len() {
        3 => {
            let (b, c, l) = (dims[0], dims[1], dims[2]);
            x.unsqueeze(3)?
                .broadcast_as((b, c, l, 2))?
                .reshape((b, c, 2 * l))?
        }
        4 => {
            let (b, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
            x.reshape((b, c, h, 1, w, 1))?
                .broadcast_as((b, c, h, 2, w, 2))?
                .reshape((b, c, 2 * h, 2 * w))?
        }
        _ => {
            return Err(crate::Error::ShapeMismatch {
                context: "nearest upsampling",
                expected: "a rank 3 or 4 tensor".to_string(),
                got: dims,
            })
        }
    })
}

/// An activation function, with diffusers' `act_fn` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Activation {
    /// `x * sigmoid(x)` (`"silu"`, also read from `"swish"`). The default.
    #[default]
    #[serde(rename = "silu", alias = "swish")]
    Silu,
    /// `x * tanh(softplus(x))` (`"mish"`).
    #[serde(rename = "mish")]
    Mish,
    /// The exact (erf) GELU, as PyTorch's `nn.GELU()` (`"gelu"`).
    #[serde(rename = "gelu")]
    Gelu,
    /// `max(x, 0)` (`"relu"`).
    #[serde(rename = "relu")]
    Relu,
}

impl Activation {
    /// Applies the activation element-wise.
    ///
    /// # Errors
    /// Returns an error if a tensor operation fails.
    pub fn forward(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Silu => x.silu(),
            Activation::Gelu => x.gelu_erf(),
            Activation::Relu => x.relu(),
            Activation::Mish => {
                // softplus(x) = relu(x) + log(1 + exp(-|x|)), stable for large |x|.
                let softplus = (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
                x * softplus.tanh()?
            }
        }
    }
}

/// A group norm with affine parameters `weight` and `bias`, with the activation that follows it.
///
/// Under [`Kernels::Fast`] it runs `dmad-ops`' GroupNorm kernel, fused with SiLU where SiLU
/// follows (bit-reproducible: its result does not depend on buffer addresses); under
/// [`Kernels::Candle`] candle's `GroupNorm` and `silu`. Both share the same parameters.
#[derive(Debug, Clone)]
pub(crate) struct GroupNorm {
    fast: dmad_ops::GroupNorm,
    candle: candle_nn::GroupNorm,
}

impl GroupNorm {
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(if fast() {
            self.fast.forward(x)?
        } else {
            self.candle.forward(x)?
        })
    }

    /// The norm followed by SiLU.
    pub(crate) fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        Ok(if fast() {
            self.fast.forward_silu(x)?
        } else {
            self.candle.forward(x)?.silu()?
        })
    }

    /// The norm followed by `act`.
    pub(crate) fn forward_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        match act {
            Activation::Silu => self.forward_silu(x),
            _ => Ok(act.forward(&self.forward(x)?)?),
        }
    }
}

/// A group norm with affine parameters (`weight`, `bias`), checking that `groups` divides
/// `channels` so that a bad config is reported at build time.
pub(crate) fn group_norm(
    groups: usize,
    channels: usize,
    eps: f64,
    field: &'static str,
    vb: VarBuilder,
) -> Result<GroupNorm> {
    if groups == 0 || !channels.is_multiple_of(groups) {
        return Err(invalid(
            field,
            format!(
                "{groups} groups do not divide the {channels} channels of `{}`",
                vb.prefix()
            ),
        ));
    }
    // The same parameters (and initialisation: weight 1, bias 0) as `candle_nn::group_norm`.
    let fast = dmad_ops::GroupNorm::load(groups, channels, eps, vb)?;
    let candle = candle_nn::GroupNorm::new(
        fast.weight().clone(),
        fast.bias().clone(),
        channels,
        groups,
        eps,
    )?;
    Ok(GroupNorm { fast, candle })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// The hand-written 1D convolution equals candle's `conv1d` (the oracle) in the forward
    /// pass over a sweep of lengths, kernels, paddings and strides.
    #[test]
    fn conv1d_matches_candle_conv1d_forward() -> Result<()> {
        let dev = Device::Cpu;
        for &(len, kernel, padding, stride) in &[
            (8, 3, 1, 1),
            (8, 3, 1, 2),
            (9, 3, 1, 2),
            (7, 1, 0, 1),
            (16, 5, 2, 1),
            (10, 3, 0, 2),
        ] {
            let vm = VarMap::new();
            let vb = VarBuilder::from_varmap(&vm, DType::F64, &dev);
            let conv = ConvNd::new(Rank::One, 2, 3, kernel, stride, padding, vb)?;
            let ConvNd::One(c) = &conv else {
                unreachable!("rank one builds a Conv1d")
            };
            let x = Tensor::randn(0f64, 1.0, (2, 2, len), &dev)?;
            let want = x
                .conv1d(&c.weight, padding, stride, 1, 1)?
                .broadcast_add(&c.bias.reshape((1, 3, 1))?)?;
            let got = conv.forward(&x)?;
            assert_eq!(got.dims(), want.dims(), "len {len} k {kernel} s {stride}");
            let err = (got - want)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(err < 1e-12, "len {len} k {kernel} s {stride}: {err}");
        }
        Ok(())
    }

    #[test]
    fn nearest_upsampling_repeats_each_value() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[[1f32, 2.0]]], &dev)?;
        let y = upsample_nearest2x(&x)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(y, vec![1.0, 1.0, 2.0, 2.0]);
        let x = Tensor::arange(0f32, 4.0, &dev)?.reshape((1, 1, 2, 2))?;
        let y = upsample_nearest2x(&x)?;
        let want = x.upsample_nearest2d(4, 4)?;
        let diff = (y - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        Ok(())
    }

    #[test]
    fn mish_gelu_relu_silu_are_finite_for_large_inputs() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::new(&[-100f32, -1.0, 0.0, 1.0, 100.0], &dev)?;
        for act in [
            Activation::Silu,
            Activation::Mish,
            Activation::Gelu,
            Activation::Relu,
        ] {
            let y = act.forward(&x)?.to_vec1::<f32>()?;
            assert!(y.iter().all(|v| v.is_finite()), "{act:?}");
            assert!((y[4] - 100.0).abs() < 1e-3, "{act:?}: {}", y[4]);
        }
        // mish(1) = tanh(ln(1 + e)) = 0.865098...
        let m = Activation::Mish.forward(&x)?.to_vec1::<f32>()?[3];
        assert!((m - 0.865_098_4).abs() < 1e-6);
        Ok(())
    }
}
