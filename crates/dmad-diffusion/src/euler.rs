//! The Euler sampler of Karras et al. (arXiv 2206.00364), as diffusers'
//! `EulerDiscreteScheduler`.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::plan::{plan_indices, plan_sigmas, resolve_timesteps, sigma_table_f32};
use crate::sampler::{Plan, Sampler};
use crate::timesteps::{TimestepRule, TimestepSpacing};
use crate::util::{batch_of, lincomb, same_shape, scale, timestep_values};
use crate::{NoiseSchedule, Result};

/// The configuration of an [`EulerSampler`], with diffusers' names.
///
/// Fixed to diffusers' defaults: `interpolation_type = "linear"`, `timestep_type =
/// "discrete"`, `final_sigmas_type = "zero"`, no Karras/exponential/beta sigmas and no churn
/// (`s_churn = 0`, so the sampler is deterministic).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct EulerConfig {
    /// Number of denoising steps. Default 50.
    pub num_inference_steps: usize,
    /// How the steps are spread over the training timesteps. Default
    /// [`TimestepSpacing::Linspace`] (diffusers' default for Euler), whose timesteps are
    /// fractional.
    pub timestep_spacing: TimestepSpacing,
    /// Added to the `leading` timesteps. Default 0.
    pub steps_offset: usize,
    /// Custom timesteps (strictly decreasing, below `T`); replace the three fields above.
    /// Default `None`.
    pub timesteps: Option<Vec<u32>>,
    /// What the model predicts. Default [`PredictionType::Epsilon`].
    pub prediction_type: PredictionType,
}

impl Default for EulerConfig {
    fn default() -> Self {
        Self {
            num_inference_steps: 50,
            timestep_spacing: TimestepSpacing::Linspace,
            steps_offset: 0,
            timesteps: None,
            prediction_type: PredictionType::Epsilon,
        }
    }
}

/// Euler's method on the probability-flow ODE in the variance-exploding parametrisation
/// `x = x_vp / sqrt(alpha_bar)`, `dx/dsigma = (x - x0) / sigma` (Karras et al., arXiv
/// 2206.00364, Algorithm 1 without churn), as diffusers' `EulerDiscreteScheduler`.
///
/// The sample lives in the variance-exploding space: it starts at `init_noise_sigma` times
/// standard normal noise, and the model sees `x / sqrt(sigma^2 + 1)`
/// ([`Sampler::scale_model_input`]). The sigmas at fractional timesteps are interpolated
/// linearly, as diffusers does.
#[derive(Debug, Clone)]
pub struct EulerSampler {
    plan: Plan,
    /// Variance-exploding sigma of each plan timestep, then the final 0.
    sigmas: Vec<f64>,
}

impl EulerSampler {
    /// Builds the sampler for `schedule`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a bad step count or custom timesteps.
    pub fn new(schedule: &NoiseSchedule, config: EulerConfig) -> Result<Self> {
        let (timesteps, _) = resolve_timesteps(
            TimestepRule::Euler,
            config.timestep_spacing,
            config.num_inference_steps,
            config.steps_offset,
            config.timesteps.as_deref(),
            schedule,
        )?;
        let sigmas = plan_sigmas(&timesteps, &sigma_table_f32(schedule));
        let max_sigma = sigmas.iter().cloned().fold(0.0, f64::max);
        let init_noise_sigma = match config.timestep_spacing {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max_sigma,
            TimestepSpacing::Leading => (max_sigma * max_sigma + 1.0).sqrt(),
        };
        Ok(Self {
            plan: Plan {
                timesteps,
                prediction_type: config.prediction_type,
                init_noise_sigma: init_noise_sigma as f32 as f64,
            },
            sigmas,
        })
    }

    /// The variance-exploding sigmas of the plan's timesteps, followed by the final 0.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    fn sample_sigmas(&self, t: &Tensor, batch: usize, context: &'static str) -> Result<Vec<usize>> {
        let ts = timestep_values(t, batch, context)?;
        plan_indices(&self.plan.timesteps, &ts, context)
    }
}

impl Sampler for EulerSampler {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn step(
        &mut self,
        model_output: &Tensor,
        t: &Tensor,
        sample: &Tensor,
        _noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        same_shape(sample, model_output, "EulerSampler::step: model_output")?;
        let batch = batch_of(sample, "EulerSampler::step: sample")?;
        let idx = self.sample_sigmas(t, batch, "EulerSampler::step: t")?;
        let (mut cx, mut co) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
        for &i in &idx {
            let (s, s_next) = (self.sigmas[i], self.sigmas[i + 1]);
            // x0 = a x + b out
            let (a, b) = match self.plan.prediction_type {
                PredictionType::Epsilon => (1.0, -s),
                PredictionType::VPrediction => (1.0 / (s * s + 1.0), -s / (s * s + 1.0).sqrt()),
                PredictionType::Sample => (0.0, 1.0),
            };
            // prev = x + (x - x0) / s * (s_next - s)
            let r = (s_next - s) / s;
            cx.push(1.0 + r * (1.0 - a));
            co.push(-r * b);
        }
        lincomb(&cx, sample, &co, model_output)
    }

    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        same_shape(x0, noise, "EulerSampler::add_noise: noise")?;
        let batch = batch_of(x0, "EulerSampler::add_noise: x0")?;
        let idx = self.sample_sigmas(t, batch, "EulerSampler::add_noise: t")?;
        let s: Vec<f64> = idx.iter().map(|&i| self.sigmas[i]).collect();
        Ok((x0 + scale(noise, &s)?)?)
    }

    fn scale_model_input(&self, sample: &Tensor, t: &Tensor) -> Result<Tensor> {
        let batch = batch_of(sample, "EulerSampler::scale_model_input: sample")?;
        let idx = self.sample_sigmas(t, batch, "EulerSampler::scale_model_input: t")?;
        let c: Vec<f64> = idx
            .iter()
            .map(|&i| 1.0 / (self.sigmas[i] * self.sigmas[i] + 1.0).sqrt())
            .collect();
        scale(sample, &c)
    }
}
