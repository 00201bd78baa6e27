//! CUDA kernels for dmad's hot spots, as candle custom ops, each with a CPU twin.
//!
//! - [`group_norm_silu`], [`group_norm`], [`group_norm_kernel`]: fused GroupNorm (+ SiLU),
//!   forward and backward.
//! - [`Dwt2dPeriodization`]: the single-level 2D DWT of the U-Net's wavelet pyramid and its
//!   inverse (periodization mode), forward and backward.
//! - [`attention`], [`attention_kernel`]: blocked softmax attention with an online softmax for
//!   head widths 8 to 64 (candle has no f32 flash attention; `candle-flash-attn` is f16/bf16
//!   only and its build takes hours on small machines).
//! - [`sampler_step`] with [`StepCoefs`]: the DDIM and DPM-Solver++ 2M updates fused into one
//!   kernel over the batch.
//! - [`training_var_builder`], [`sampling_var_builder`]: bf16 networks over f32 master weights
//!   (mixed-precision training and bf16 sampling).
//!
//! Every op has one CUDA kernel (`kernels/*.cu`, compiled to PTX by nvcc at build time) and a
//! CPU twin: plain loops with f64 accumulation that implement the same formula. On a CUDA
//! device the op runs the kernel, on the CPU the twin; tests compare the twins with the tools
//! of record (candle's GroupNorm, `dmad-wavelets`, `dmad-diffusion`'s samplers) on the CPU,
//! and the kernels with the twins on a GPU (`tests/gpu.rs`, skipped without one).
//!
//! The dispatching functions ([`group_norm_silu`], [`Dwt2dPeriodization::forward_stacked`])
//! take the kernel on CUDA and the fastest existing path elsewhere (`dmad-ops`' CPU kernels,
//! `dmad-wavelets`), so callers can use them unconditionally.
//!
//! # Conventions
//! Layouts are candle's `[batch, channels, ...]`. Kernels take f32 or bf16 (bf16 is loaded,
//! computed in f32 and rounded once on store).
//!
//! # Feature flags
//! - `cuda`: compiles the kernels with nvcc (see `docs/CUDA.md`) and enables candle's CUDA
//!   backend. Without it the API is the same; there are no CUDA devices, so the CPU paths run.
//!
//! # Example
//! ```
//! use candle_core::{DType, Device, Tensor};
//! let x = Tensor::randn(0f32, 1.0, (2, 8, 6, 6), &Device::Cpu)?;
//! let (w, b) = (Tensor::ones(8, DType::F32, &Device::Cpu)?, Tensor::zeros(8, DType::F32, &Device::Cpu)?);
//! let fast = dmad_cuda::group_norm_silu(&x, 4, &w, &b, 1e-5)?; // dmad-ops on the CPU
//! let twin = dmad_cuda::group_norm_kernel(&x, 4, &w, &b, 1e-5, true)?; // the kernel's twin
//! assert!(fast.sub(&twin)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
//! # Ok::<(), dmad_cuda::Error>(())
//! ```
#![warn(missing_docs)]

mod attention;
#[cfg(feature = "cuda")]
mod cuda;
mod dwt;
mod error;
mod group_norm;
mod precision;
mod sampler;
mod util;

pub use attention::{attention, attention_kernel, ATTENTION_HEAD_WIDTHS};
pub use dwt::{Dwt2dPeriodization, MAX_TAPS};
pub use error::{Error, Result};
pub use group_norm::{group_norm, group_norm_kernel, group_norm_silu};
pub use precision::{sampling_var_builder, training_var_builder};
pub use sampler::{sampler_step, StepCoefs};

/// Whether this build has the CUDA kernels (the `cuda` feature).
pub const fn cuda_enabled() -> bool {
    cfg!(feature = "cuda")
}
