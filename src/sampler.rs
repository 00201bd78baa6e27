//! The sampler a detector scores with, chosen by [`SamplerKind`] in its config.

use dmad_diffusion::{
    DdimConfig, DdpmConfig, DpmSolverConfig, EulerConfig, NoiseSchedule, PredictionType,
    SamplerConfig,
};

use crate::config::SamplerKind;
use crate::Result;

pub use dmad_diffusion::AnySampler;

/// Builds the sampler of `kind` with `steps` inference steps for a model predicting `pred`
/// (every other option at diffusers' default): dmad-diffusion's [`AnySampler`].
///
/// # Errors
/// Errors of the sampler's config (for example zero steps).
pub(crate) fn build(
    kind: SamplerKind,
    schedule: &NoiseSchedule,
    steps: usize,
    pred: PredictionType,
) -> Result<AnySampler> {
    let cfg = match kind {
        SamplerKind::Ddim => SamplerConfig::Ddim(DdimConfig {
            num_inference_steps: steps,
            prediction_type: pred,
            ..DdimConfig::default()
        }),
        SamplerKind::Ddpm => SamplerConfig::Ddpm(DdpmConfig {
            num_inference_steps: steps,
            prediction_type: pred,
            ..DdpmConfig::default()
        }),
        SamplerKind::DpmSolver => SamplerConfig::DpmSolver(DpmSolverConfig {
            num_inference_steps: steps,
            prediction_type: pred,
            ..DpmSolverConfig::default()
        }),
        SamplerKind::Euler => SamplerConfig::Euler(EulerConfig {
            num_inference_steps: steps,
            prediction_type: pred,
            ..EulerConfig::default()
        }),
    };
    Ok(cfg.build(schedule)?)
}
