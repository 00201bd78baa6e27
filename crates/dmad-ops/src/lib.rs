//! Fast CPU kernels for dmad's networks, as candle custom ops with backward passes.
//!
//! - [`conv2d`], [`conv1d`]: convolutions (stride, padding, dilation, groups, optional bias)
//!   through tiled im2col and the `gemm` crate (the kernel behind candle's matmul); 3x3
//!   kernels at stride 1 with at least 8 channels per group through Winograd F(2x2, 3x3)
//!   (arXiv:1509.09308), forward and backward.
//! - [`group_norm`], [`group_norm_silu`], [`GroupNorm`]: GroupNorm alone or fused with SiLU.
//! - [`linear`]: `x W^T + b` with the bias (or a per-row addend) accumulated into the product;
//!   [`layer_norm`], [`layer_norm_silu`], [`silu`]: row-wise LayerNorm (+SiLU) and SiLU, one
//!   pass each way (the MLP denoiser's layers).
//! - [`attention`]: blocked `softmax(Q K^T / sqrt(d)) V` with an online softmax that never holds
//!   more than a tile of the score matrix.
//!
//! # Conventions
//! - Layouts are candle's: `[batch, channels, ...]` for images and signals, weights
//!   `[out, in / groups, k...]`, attention `[batch * heads, tokens, head_dim]`.
//! - Each function takes and returns candle tensors and keeps the same API on every device and
//!   dtype: the fast kernels run for f32 tensors on the CPU, anything else goes through the plain
//!   candle composition (CUDA twins are future work).
//! - Gradients: every op has a backward pass on the CPU (attention's recomputes the
//!   probabilities tile by tile and never holds `[batch * heads, tq, tk]`).
//! - Determinism: on one machine and thread count, the same input values give bit-identical
//!   outputs and gradients, wherever the buffers lie in memory (no alignment-dependent code
//!   paths, reductions in a fixed order).
//! - Work is spread over rayon's global pool (`RAYON_NUM_THREADS`), like candle's CPU ops.
//!
//! # Feature flags
//! - `cuda`: forwards to `candle-core/cuda` and `candle-nn/cuda`; on a CUDA device the ops run
//!   candle's own kernels (same API).
//!
//! # Example
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! let dev = Device::Cpu;
//! let x = Tensor::randn(0f32, 1.0, (2, 8, 9, 9), &dev)?;
//! let (w, b) = (Tensor::ones(8, DType::F32, &dev)?, Tensor::zeros(8, DType::F32, &dev)?);
//! let y = dmad_ops::group_norm_silu(&x, 4, &w, &b, 1e-5)?;
//! let reference = candle_nn::GroupNorm::new(w, b, 8, 4, 1e-5)?.forward(&x)?.silu()?;
//! let diff = (y - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
//! assert!(diff < 1e-4);
//! # Ok::<(), dmad_ops::Error>(())
//! ```
#![warn(missing_docs)]

mod attention;
mod conv;
mod error;
mod group_norm;
mod layer_norm;
mod linear;
mod simd;
mod util;

pub use attention::attention;
pub use conv::{conv1d, conv1d_layer, conv2d, conv2d_backward, conv2d_layer};
pub use error::{Error, Result};
pub use group_norm::{group_norm, group_norm_backward, group_norm_silu, GroupNorm};
pub use layer_norm::{layer_norm, layer_norm_composed, layer_norm_silu, silu};
pub use linear::linear;
