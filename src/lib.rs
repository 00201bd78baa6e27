//! dmad: anomaly detection with diffusion models.
//!
//! This facade re-exports the workspace's crates under one name.
#![warn(missing_docs)]

pub use dmad_core as core;
pub use dmad_core::{Denoiser, PredictionType};
pub use dmad_diffusion as diffusion;
