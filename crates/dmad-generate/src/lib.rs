//! Generation for dmad: a diffusion model trained on normal data synthesises normal and
//! anomalous samples, and the anomalies calibrate the detector (issue #10).
//!
//! - Normal samples: [`sample_normal`], seeded, with any `dmad_diffusion` sampler and step
//!   count.
//! - Anomalies with exact ground-truth masks ([`Injected`]) and a `strength` in `(0, 1]`:
//!   images ([`inject_image`]: cut-paste, Perlin texture, scratch, blob), series windows
//!   ([`inject_series`]: GutenTAG's spike, level shift, trend, frequency and pattern kinds),
//!   audio ([`inject_audio`]: transient, speed change, drop-out) and table rows
//!   ([`TableInjector`]: ADBench's local, global, cluster and dependency kinds).
//! - Harmonisation, RePaint-style ([`harmonise`], [`Injected::harmonised`]): the masked region
//!   is denoised, the rest is tied to the forward-noised original, so that the defect blends
//!   in but stays; with few steps it is the projection of table rows back towards the normal
//!   manifold.
//! - Calibration on generated anomalies ([`calibrate`]): the scoring start strength, `lambda`
//!   between the reconstruction and feature terms, and an F1-optimal threshold, against
//!   held-out normal data, with no real anomaly.
//! - Fidelity: [`frechet_distance`] on feature vectors (for example pooled EfficientNet-Lite0
//!   features, [`pool_features`]) and a classifier two-sample test ([`two_sample_test`]).
//! - Output: [`scalogram_to_wave`] (generated scalograms back to audio through the inverse CWT
//!   with phase retrieval), [`destandardise`] (table rows back into their columns), and the
//!   writers in [`io`].
//!
//! # Example
//! Sample the exact denoiser of `N(0, 0.5^2)` images, scratch them and harmonise the scratch:
//! ```
//! use candle_core::Device;
//! use dmad_diffusion::{DdimConfig, DdimSampler, GaussianDenoiser, NoiseScheduleConfig};
//! use dmad_generate::{inject_image, sample_normal, HarmoniseConfig, ImageAnomaly, IMAGE_MIN_CHANGE};
//!
//! # fn main() -> dmad_generate::Result<()> {
//! let schedule = NoiseScheduleConfig::default().build()?;
//! let model = GaussianDenoiser::new(&schedule, 0.0, 0.5, Default::default())?;
//! let mut ddim = DdimSampler::new(&schedule, DdimConfig { num_inference_steps: 20, ..Default::default() })?;
//! let normal = sample_normal(&model, &mut ddim, &[2, 1, 16, 16], 0, &Device::Cpu)?.clamp(-1f32, 1f32)?;
//! let scratched = inject_image(&normal, ImageAnomaly::Scratch, 0.9, 1)?;
//! let h = scratched.harmonised(&model, &mut ddim, &normal, &HarmoniseConfig::default(),
//!     IMAGE_MIN_CHANGE, -1.0, 1.0)?;
//! // Off the mask the harmonised images are the normal ones.
//! let off = ((h.x - &normal)?.abs()?.broadcast_mul(&(1.0 - h.mask.unsqueeze(1)?)?))?;
//! assert_eq!(off.max_all()?.to_scalar::<f32>()?, 0.0);
//! # Ok(())
//! # }
//! ```
//!
//! # Conventions
//! - Samples are `[batch, ...]` as the detector takes them: images `[batch, channel, height,
//!   width]` in `[-1, 1]`, series windows `[batch, channel, length]`, waveforms `[batch,
//!   samples]` in `[-1, 1]`, table rows `[batch, features]` (standardised).
//! - Masks are `f32` in `{0, 1}` over positions: `[batch, height, width]`, `[batch, length]`,
//!   `[batch, samples]`, `[batch, features]`. A mask is exact: 1 where the anomalous sample
//!   differs from its normal sample (in every channel, by at least the modality's minimum
//!   change: [`IMAGE_MIN_CHANGE`], [`SERIES_MIN_CHANGE`], [`AUDIO_MIN_CHANGE`],
//!   [`TABLE_MIN_CHANGE`]), 0 where it is bit for bit the normal sample.
//! - Randomness is injected: every function takes a `seed`; sample `i` of a batch has its own
//!   stream, so results do not depend on the batch size.
//!
//! # Features
//! - `cuda`: forwards to candle's CUDA backend.
#![warn(missing_docs)]
// The injectors index samples, channels and positions together; index loops read clearer.
#![allow(clippy::needless_range_loop)]

mod anomaly;
mod audio;
mod calibrate;
mod error;
mod fidelity;
mod harmonise;
mod image;
pub mod io;
mod normal;
mod series;
mod table;
mod util;

pub use anomaly::Injected;
pub use audio::{frame_mask, inject_audio, scalogram_to_wave, AudioAnomaly, AUDIO_MIN_CHANGE};
pub use calibrate::{
    calibrate, Calibrated, CalibrationConfig, Candidate, CandidateResult, ScoreTerms,
};
pub use error::{Error, Result};
pub use fidelity::{
    feature_frechet_distance, frechet_distance, pool_features, two_sample_test, C2st, C2stConfig,
};
pub use harmonise::{harmonise, HarmoniseConfig};
pub use image::{inject_image, ImageAnomaly, IMAGE_MIN_CHANGE};
pub use normal::sample_normal;
pub use series::{inject_series, SeriesAnomaly, SERIES_MIN_CHANGE};
pub use table::{destandardise, TableAnomaly, TableInjector, TABLE_MIN_CHANGE};
