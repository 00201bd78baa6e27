//! dmad: anomaly detection with diffusion models, for images, time series, audio and tables.
//!
//! A diffusion model is trained on normal data only. To score a sample, it is noised part of
//! the way (partial diffusion) and denoised back; what the model cannot restore is anomalous.
//! This facade composes the workspace's crates into a [`Detector`] with `fit`, `score`,
//! `threshold`, `save` and `load`, and re-exports each crate:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`core`] | dmad-core | `Denoiser`, `FeatureExtractor`, shared types |
//! | [`diffusion`] | dmad-diffusion | noise schedules and samplers, verified against diffusers |
//! | [`wavelets`] | dmad-wavelets | DWT/IDWT, CWT/ICWT, verified against PyWavelets |
//! | [`unet`] | dmad-unet | the U-Net with the method's four modules, the MLP denoiser |
//! | [`train`] | dmad-train | training with exact resume |
//! | [`score`] | dmad-score | scorers and the EfficientNet-Lite0 feature extractor |
//! | [`metrics`] | dmad-metrics | AUROC, AUPRC, F1-max, pAUC, AUPRO, VUS-PR, thresholds |
//! | [`data`] | dmad-data | loaders for MVTec AD, UCR, NAB, WAV folders, tables |
//!
//! On the CPU, call [`init_cpu`] first thing in `main` (the `dmad` command line and the
//! examples do): it keeps candle's spinning thread pool out of the way of dmad's kernels and
//! makes glibc's malloc reuse freed tensor buffers, which together make training several times
//! faster on a small machine (`docs/PERFORMANCE.md`).
//!
//! # Example
//! ```
//! use candle_core::{Device, Tensor};
//! use dmad::{Detector, DetectorConfig};
//!
//! # fn main() -> dmad::Result<()> {
//! dmad::init_cpu();
//! // Tables of 4 features: normal rows near the origin.
//! let normal = (Tensor::randn(0f32, 1.0, (128, 4), &Device::Cpu)? * 0.3)?;
//! let mut cfg = DetectorConfig::for_tables(4);
//! cfg.train.steps = 50; // a tiny budget for the example
//! let mut det = Detector::new(cfg, &Device::Cpu)?;
//! det.fit(&normal, |_| {})?;
//! let test = Tensor::new(&[[0.0f32, 0.1, -0.1, 0.0], [4.0, -4.0, 4.0, -4.0]], &Device::Cpu)?;
//! let s = det.score(&test)?.scores;
//! assert!(s[1] > s[0]);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod choose;
pub mod config;
mod detector;
mod error;
mod feature_space;
pub mod generate;
mod network;
pub mod prepare;
pub mod report;
mod runtime;
mod sampler;
pub mod series;

pub use config::{
    AudioFeatures, DetectorConfig, FeatureDistance, FeatureSpaceConfig, InputConfig, MapScore,
    MelStatistics, Modality, NetworkConfig, PatchNorm, SamplerKind, ScorerConfig, ScoringConfig,
    ThresholdRule, WindowNorm,
};
pub use detector::{Calibration, Detector, Scores, MODEL_FORMAT_VERSION};
pub use error::{Error, Result};
pub use generate::{AnomalyKind, GenerateConfig, Generator};
pub use report::{evaluate, Report};
pub use runtime::{device, device_from_env, init_cpu, init_cpu_threads};
pub use sampler::AnySampler;

pub use dmad_core as core;
pub use dmad_core::{Denoiser, FeatureExtractor, PredictionType};
pub use dmad_data as data;
pub use dmad_diffusion as diffusion;
pub use dmad_metrics as metrics;
pub use dmad_score as score;
pub use dmad_train as train;
pub use dmad_unet as unet;
pub use dmad_wavelets as wavelets;
