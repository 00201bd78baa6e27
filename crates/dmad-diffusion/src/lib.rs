//! Noise schedules, the forward process and the samplers of diffusion models, matching
//! diffusers 0.42.1.
//!
//! - [`NoiseSchedule`] (from [`NoiseScheduleConfig`], with diffusers' names): betas,
//!   `alpha_bar` (`alphas_cumprod`), sigmas and SNR for the `linear`, `scaled_linear`,
//!   `squaredcos_cap_v2` and `sigmoid` schedules, optionally rescaled to zero terminal SNR; the
//!   forward process [`NoiseSchedule::add_noise`], the velocity target
//!   [`NoiseSchedule::velocity`] and conversions between epsilon, `v` and `x0` predictions.
//! - [`inference_timesteps`]: the timesteps each diffusers scheduler visits for the `leading`,
//!   `trailing` and `linspace` spacings and `steps_offset`.
//! - The [`Sampler`] trait and its implementations: [`DdpmSampler`], [`DdimSampler`] (any
//!   `eta >= 0`), [`DdimInverseSampler`] (`x0 -> x_T`), [`DpmSolverSampler`] (DPM-Solver and
//!   DPM-Solver++, orders 1 to 3, ODE and SDE; by default DPM-Solver++ 2M) and
//!   [`EulerSampler`], each for the three prediction types, with diffusers' options that change
//!   the numbers (Karras / exponential / Lu sigmas, final sigmas, thresholding, variance types,
//!   churn; see `docs/SAMPLERS.md`).
//! - [`SchedulerConfig`]: reads and writes diffusers' `scheduler_config.json`, refusing a class,
//!   field or value it cannot honour with an error naming it; builds an [`AnySampler`].
//! - The loops [`sample`] and [`reconstruct`] (partial diffusion: noise `x0` to a start step,
//!   denoise back), optionally returning their [`Trajectory`], with noise from a
//!   [`NoiseSource`] such as the reproducible [`SeededNoise`].
//! - [`GaussianDenoiser`]: the exact denoiser of Gaussian data, an oracle for samplers.
//! - [`Conditioned`]: a denoiser nudged toward a reference at every step (DDAD's conditioned
//!   reconstruction).
//!
//! Every schedule table, timestep list, forward-process value and sampler trajectory is tested
//! against reference values from diffusers 0.42.1 (`testdata/diffusers/`): each sampler option
//! step by step within `1e-5 max(1, |x|)`.
//!
//! # Example
//! Sample the exact denoiser of `N(1, 0.5^2)` data with DPM-Solver++ 2M:
//! ```
//! use candle_core::Device;
//! use dmad_core::PredictionType;
//! use dmad_diffusion::{sample, DpmSolverConfig, DpmSolverSampler, GaussianDenoiser,
//!     NoiseScheduleConfig, NoiseSource, Sampler, SeededNoise};
//!
//! # fn main() -> dmad_diffusion::Result<()> {
//! let schedule = NoiseScheduleConfig::default().build()?;
//! let model = GaussianDenoiser::new(&schedule, 1.0, 0.5, PredictionType::Epsilon)?;
//! let mut sampler = DpmSolverSampler::new(&schedule, DpmSolverConfig::default())?;
//!
//! let mut noise = SeededNoise::new(42);
//! let x_t = (noise.draw(&[4096, 1], &Device::Cpu)? * sampler.init_noise_sigma())?;
//! let x0 = sample(&model, &mut sampler, &x_t, &mut noise)?;
//!
//! let mean = x0.mean_all()?.to_scalar::<f32>()?;
//! assert!((mean - 1.0).abs() < 0.05);
//! # Ok(())
//! # }
//! ```
//!
//! # Conventions
//! - Tensors are `[batch, ...]` (`[batch, channel, height, width]` for images); the maths runs
//!   in `f32` on candle tensors on any device. Tables are `f64`, computed as diffusers computes
//!   them in `f32` PyTorch.
//! - Timesteps are per sample: a `[batch]` tensor (any dtype) of training timesteps in
//!   `[0, T - 1]`. Loops hand the denoiser `u32` timesteps, or `f32` where they are fractional
//!   (Euler with `linspace` spacing).
//! - Plans are in visiting order: descending for sampling, ascending for inversion.
//! - Randomness is injected: stochastic steps take their noise as an argument; the loops draw it
//!   from a [`NoiseSource`].
//! - Defaults follow diffusers, except `clip_sample`, which is off (diffusers: on). Reading a
//!   diffusers config ([`SchedulerConfig::from_diffusers_json`]) takes diffusers' defaults.
//! - Options have diffusers' names; values diffusers writes as `-inf` / `inf`
//!   (`lambda_min_clipped`, `s_tmax`) are `Option<f64>`, `None` for no bound.
//!
//! # References
//! - DDPM: Ho, Jain, Abbeel, *Denoising Diffusion Probabilistic Models*, arXiv 2006.11239.
//! - DDIM: Song, Meng, Ermon, *Denoising Diffusion Implicit Models*, arXiv 2010.02502.
//! - DPM-Solver: Lu et al., *DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model
//!   Sampling in Around 10 Steps*, arXiv 2206.00927.
//! - DPM-Solver++: Lu et al., *DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
//!   Probabilistic Models*, arXiv 2211.01095.
//! - Dynamic thresholding: Saharia et al., *Photorealistic Text-to-Image Diffusion Models with
//!   Deep Language Understanding*, arXiv 2205.11487.
//! - Learned variances: Nichol & Dhariwal, arXiv 2102.09672 (below).
//! - Euler / sigma parametrisation: Karras et al., *Elucidating the Design Space of
//!   Diffusion-Based Generative Models*, arXiv 2206.00364.
//! - Zero terminal SNR and timestep spacings: Lin et al., *Common Diffusion Noise Schedules and
//!   Sample Steps Are Flawed*, arXiv 2305.08891.
//! - v-prediction: Salimans & Ho, *Progressive Distillation for Fast Sampling of Diffusion
//!   Models*, arXiv 2202.00512.
//! - Cosine schedule: Nichol & Dhariwal, *Improved Denoising Diffusion Probabilistic Models*,
//!   arXiv 2102.09672.
//!
//! # Features
//! - `serde`: `Serialize`/`Deserialize` for the configs, with diffusers' spellings. (Reading and
//!   writing diffusers' `scheduler_config.json` does not need it.)
//! - `cuda`: forwards to `candle-core/cuda`.
#![warn(missing_docs)]

mod analytic;
mod conditioned;
mod ddim;
mod ddpm;
mod diffusers_config;
mod dpm_solver;
mod error;
mod euler;
mod noise;
mod options;
mod pipeline;
mod plan;
mod sampler;
mod schedule;
mod timesteps;
mod util;

pub use analytic::GaussianDenoiser;
pub use conditioned::Conditioned;
pub use ddim::{DdimConfig, DdimInverseConfig, DdimInverseSampler, DdimSampler};
pub use ddpm::{DdpmConfig, DdpmSampler};
pub use diffusers_config::{AnySampler, SamplerConfig, SchedulerConfig, DIFFUSERS_VERSION};
pub use dpm_solver::{DpmSolverConfig, DpmSolverSampler, DpmSolverState};
pub use error::{Error, Result};
pub use euler::{EulerConfig, EulerSampler};
pub use noise::{NoiseSource, SeededNoise};
pub use options::{
    DpmSolverAlgorithm, DpmSolverType, FinalSigmas, SigmaInterpolation, VarianceType,
};
pub use pipeline::{
    reconstruct, reconstruct_trajectory, sample, sample_trajectory, start_index, Start, Trajectory,
};
pub use sampler::{Plan, Sampler};
pub use schedule::{BetaSchedule, NoiseSchedule, NoiseScheduleConfig};
pub use timesteps::{inference_timesteps, partial_timesteps, TimestepRule, TimestepSpacing};

pub use dmad_core::{Denoiser, PredictionType};
