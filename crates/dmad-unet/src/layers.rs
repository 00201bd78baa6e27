//! Building blocks shared by the 1D and 2D networks: the spatial rank, convolutions of either
//! rank, activations and checked group norms.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

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
    One(candle_nn::Conv1d),
    Two(candle_nn::Conv2d),
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
                let cfg = candle_nn::Conv1dConfig {
                    padding,
                    stride,
                    ..Default::default()
                };
                ConvNd::One(candle_nn::conv1d(
                    in_channels,
                    out_channels,
                    kernel,
                    cfg,
                    vb,
                )?)
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

/// A group norm with affine parameters (`weight`, `bias`), checking that `groups` divides
/// `channels` so that a bad config is reported at build time.
pub(crate) fn group_norm(
    groups: usize,
    channels: usize,
    eps: f64,
    field: &'static str,
    vb: VarBuilder,
) -> Result<candle_nn::GroupNorm> {
    if groups == 0 || channels % groups != 0 {
        return Err(invalid(
            field,
            format!(
                "{groups} groups do not divide the {channels} channels of `{}`",
                vb.prefix()
            ),
        ));
    }
    Ok(candle_nn::group_norm(groups, channels, eps, vb)?)
}
