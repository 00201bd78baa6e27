//! The sampler a detector scores with, chosen by [`SamplerKind`] in its config.

use candle_core::Tensor;
use dmad_diffusion::{
    DdimConfig, DdimSampler, DdpmConfig, DdpmSampler, DpmSolverConfig, DpmSolverSampler,
    EulerConfig, EulerSampler, NoiseSchedule, Plan, PredictionType, Sampler,
};

use crate::config::SamplerKind;
use crate::Result;

/// One of dmad-diffusion's samplers, as a `Clone`-able value (the scorers copy their sampler
/// for each noise draw).
#[derive(Debug, Clone)]
pub enum AnySampler {
    /// DDIM, `eta = 0`.
    Ddim(DdimSampler),
    /// DDPM.
    Ddpm(DdpmSampler),
    /// DPM-Solver++ 2M.
    DpmSolver(DpmSolverSampler),
    /// Euler.
    Euler(EulerSampler),
}

impl AnySampler {
    /// Builds the sampler of `kind` with `steps` inference steps for a model predicting `pred`.
    ///
    /// # Errors
    /// Errors of the sampler's config (for example zero steps).
    pub fn new(
        kind: SamplerKind,
        schedule: &NoiseSchedule,
        steps: usize,
        pred: PredictionType,
    ) -> Result<Self> {
        Ok(match kind {
            SamplerKind::Ddim => Self::Ddim(DdimSampler::new(
                schedule,
                DdimConfig {
                    num_inference_steps: steps,
                    prediction_type: pred,
                    ..DdimConfig::default()
                },
            )?),
            SamplerKind::Ddpm => Self::Ddpm(DdpmSampler::new(
                schedule,
                DdpmConfig {
                    num_inference_steps: steps,
                    prediction_type: pred,
                    ..DdpmConfig::default()
                },
            )?),
            SamplerKind::DpmSolver => Self::DpmSolver(DpmSolverSampler::new(
                schedule,
                DpmSolverConfig {
                    num_inference_steps: steps,
                    prediction_type: pred,
                    ..DpmSolverConfig::default()
                },
            )?),
            SamplerKind::Euler => Self::Euler(EulerSampler::new(
                schedule,
                EulerConfig {
                    num_inference_steps: steps,
                    prediction_type: pred,
                    ..EulerConfig::default()
                },
            )?),
        })
    }

    fn inner(&self) -> &dyn Sampler {
        match self {
            Self::Ddim(s) => s,
            Self::Ddpm(s) => s,
            Self::DpmSolver(s) => s,
            Self::Euler(s) => s,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn Sampler {
        match self {
            Self::Ddim(s) => s,
            Self::Ddpm(s) => s,
            Self::DpmSolver(s) => s,
            Self::Euler(s) => s,
        }
    }
}

impl Sampler for AnySampler {
    fn plan(&self) -> &Plan {
        self.inner().plan()
    }

    fn step(
        &mut self,
        model_output: &Tensor,
        t: &Tensor,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> dmad_diffusion::Result<Tensor> {
        self.inner_mut().step(model_output, t, sample, noise)
    }

    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> dmad_diffusion::Result<Tensor> {
        self.inner().add_noise(x0, noise, t)
    }

    fn scale_model_input(&self, sample: &Tensor, t: &Tensor) -> dmad_diffusion::Result<Tensor> {
        self.inner().scale_model_input(sample, t)
    }

    fn needs_noise(&self) -> bool {
        self.inner().needs_noise()
    }

    fn reset(&mut self) {
        self.inner_mut().reset()
    }
}
