//! Shared traits, value types and the shared error of the dmad workspace.
//!
//! `dmad-core` is deliberately small: it holds the vocabulary that every other dmad crate
//! speaks, and nothing else.
//!
//! - [`Denoiser`]: a network (or an analytic model) that predicts the model output for a noisy
//!   sample `x_t` at per-sample timesteps `t`.
//! - [`PredictionType`]: what that output is: the noise (`epsilon`), the velocity
//!   (`v_prediction`) or the clean sample (`sample`), with diffusers' names.
//! - [`FeatureExtractor`]: a frozen network giving feature maps, for perceptual losses and
//!   scores.
//! - [`masking`]: grating masks and the conditioned input of imputation diffusion (series).
//! - [`Error`] and [`Result`]: the shared error.
//! - [`alloc::zeroed`]: large zero-filled buffers prefaulted in one system call, for the
//!   workspace's CPU kernels.
//!
//! # Conventions
//! - Tensors are laid out `[batch, channel, ...]`: `[batch, channel, height, width]` for images
//!   and scalograms, `[batch, channel, time]` for series windows, `[batch, features]` for tables.
//! - Timesteps are per sample: a `[batch]` tensor of training-timestep indices (`u32`, or a float
//!   dtype for fractional timesteps), never one scalar for the whole batch.
//! - Samples live in the data's normalised range (images in `[-1, 1]`).
//!
//! # Example
//! ```
//! use candle_core::{Device, Tensor};
//! use dmad_core::{Denoiser, PredictionType};
//!
//! /// The denoiser of data that is always zero: its noise estimate is `x_t / sqrt(1 - alpha_bar)`,
//! /// but for the example we only scale the input.
//! struct Halve;
//!
//! impl Denoiser for Halve {
//!     fn predict(&self, x_t: &Tensor, _t: &Tensor) -> dmad_core::Result<Tensor> {
//!         Ok((x_t * 0.5)?)
//!     }
//! }
//!
//! # fn main() -> dmad_core::Result<()> {
//! let dev = Device::Cpu;
//! let x = Tensor::ones((2, 1, 4, 4), candle_core::DType::F32, &dev)?;
//! let t = Tensor::new(&[10u32, 500], &dev)?;
//! let eps = Halve.predict(&x, &t)?;
//! assert_eq!(eps.dims(), &[2, 1, 4, 4]);
//! assert_eq!(Halve.prediction_type(), PredictionType::Epsilon);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! - `serde`: `Serialize`/`Deserialize` for the value types, with diffusers' spellings.
//! - `cuda`: forwards to `candle-core/cuda`.
#![warn(missing_docs)]

pub mod alloc;
mod denoiser;
mod error;
mod features;
pub mod masking;
mod prediction;

pub use denoiser::Denoiser;
pub use error::{Error, Result};
pub use features::FeatureExtractor;
pub use prediction::PredictionType;

/// The tensor type every dmad crate exchanges (re-exported from candle).
pub use candle_core::Tensor;
