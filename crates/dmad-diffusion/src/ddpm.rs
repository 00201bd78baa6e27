//! DDPM ancestral sampling (Ho et al., arXiv 2006.11239), as diffusers' `DDPMScheduler`.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::plan::{plan_indices, resolve_timesteps};
use crate::sampler::{Plan, Sampler};
use crate::schedule::x0_eps_coefs;
use crate::timesteps::{TimestepRule, TimestepSpacing};
use crate::util::{batch_of, lincomb, per_sample, same_shape, timestep_values};
use crate::{Error, NoiseSchedule, Result};

/// The configuration of a [`DdpmSampler`], with diffusers' names.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct DdpmConfig {
    /// Number of denoising steps. Default 50.
    pub num_inference_steps: usize,
    /// How the steps are spread over the training timesteps. Default
    /// [`TimestepSpacing::Leading`] (diffusers' default for DDPM).
    pub timestep_spacing: TimestepSpacing,
    /// Added to the `leading` timesteps. Default 0.
    pub steps_offset: usize,
    /// Custom timesteps (strictly decreasing, below `T`); replace the three fields above.
    /// Default `None`.
    pub timesteps: Option<Vec<u32>>,
    /// What the model predicts. Default [`PredictionType::Epsilon`].
    pub prediction_type: PredictionType,
    /// Clamp the predicted `x0` to `[-clip_sample_range, clip_sample_range]`. Default `false`
    /// (diffusers defaults to `true`; set it for data normalised to `[-1, 1]`).
    pub clip_sample: bool,
    /// The clamp bound of `clip_sample`. Default 1.0. Must be positive.
    pub clip_sample_range: f64,
}

impl Default for DdpmConfig {
    fn default() -> Self {
        Self {
            num_inference_steps: 50,
            timestep_spacing: TimestepSpacing::Leading,
            steps_offset: 0,
            timesteps: None,
            prediction_type: PredictionType::Epsilon,
            clip_sample: false,
            clip_sample_range: 1.0,
        }
    }
}

pub(crate) fn check_clip(clip: bool, range: f64) -> Result<()> {
    if clip && !(range.is_finite() && range > 0.0) {
        return Err(Error::InvalidConfig {
            field: "clip_sample_range",
            reason: format!("must be positive and finite, got {range}"),
        });
    }
    Ok(())
}

/// DDPM ancestral sampling with the `fixed_small` variance (the posterior variance
/// `beta_tilde_t`), as diffusers' `DDPMScheduler` (Ho et al., arXiv 2006.11239, eq. 6-7).
///
/// With fewer steps than training timesteps, each step goes from `t` to the next plan timestep
/// `t'` with `beta = 1 - alpha_bar_t / alpha_bar_t'`. The last step (to `t = 0`) adds no noise.
#[derive(Debug, Clone)]
pub struct DdpmSampler {
    schedule: NoiseSchedule,
    plan: Plan,
    clip: Option<f64>,
}

impl DdpmSampler {
    /// Builds the sampler for `schedule`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad step count, custom timesteps that are not strictly
    /// decreasing below `T`, or a non-positive `clip_sample_range`.
    pub fn new(schedule: &NoiseSchedule, config: DdpmConfig) -> Result<Self> {
        check_clip(config.clip_sample, config.clip_sample_range)?;
        let (timesteps, _) = resolve_timesteps(
            TimestepRule::Ddpm,
            config.timestep_spacing,
            config.num_inference_steps,
            config.steps_offset,
            config.timesteps.as_deref(),
            schedule,
        )?;
        Ok(Self {
            schedule: schedule.clone(),
            plan: Plan {
                timesteps,
                prediction_type: config.prediction_type,
                init_noise_sigma: 1.0,
            },
            clip: config.clip_sample.then_some(config.clip_sample_range),
        })
    }
}

impl Sampler for DdpmSampler {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn step(
        &mut self,
        model_output: &Tensor,
        t: &Tensor,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        same_shape(sample, model_output, "DdpmSampler::step: model_output")?;
        let batch = batch_of(sample, "DdpmSampler::step: sample")?;
        let ts = timestep_values(t, batch, "DdpmSampler::step: t")?;
        let idx = plan_indices(&self.plan.timesteps, &ts, "DdpmSampler::step")?;
        let n = batch;
        let ac = self.schedule.alphas_cumprod();
        let (mut x0x, mut x0o) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut cx0, mut cx, mut std) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for &i in &idx {
            let tt = self.plan.timesteps[i] as usize;
            let a = ac[tt];
            let ap = match self.plan.timesteps.get(i + 1) {
                Some(&p) => ac[p as usize],
                None => 1.0,
            };
            let (bt, bp) = (1.0 - a, 1.0 - ap);
            let cur_alpha = a / ap;
            let cur_beta = 1.0 - cur_alpha;
            let (x0c, _) = x0_eps_coefs(self.plan.prediction_type, a);
            x0x.push(x0c[0]);
            x0o.push(x0c[1]);
            cx0.push(ap.sqrt() * cur_beta / bt);
            cx.push(cur_alpha.sqrt() * bp / bt);
            let var = (bp / bt * cur_beta).max(1e-20);
            std.push(if tt > 0 { var.sqrt() } else { 0.0 });
        }
        let mut prev = if let Some(r) = self.clip {
            let x0 = lincomb(&x0x, sample, &x0o, model_output)?.clamp(-r, r)?;
            lincomb(&cx0, &x0, &cx, sample)?
        } else {
            // x0 is linear in (sample, model_output): fold the coefficients.
            let a: Vec<f64> = (0..n).map(|b| cx0[b] * x0x[b] + cx[b]).collect();
            let o: Vec<f64> = (0..n).map(|b| cx0[b] * x0o[b]).collect();
            lincomb(&a, sample, &o, model_output)?
        };
        if std.iter().any(|&s| s > 0.0) {
            let noise = noise.ok_or(Error::MissingNoise {
                sampler: "DdpmSampler",
            })?;
            same_shape(sample, noise, "DdpmSampler::step: noise")?;
            prev = (prev + noise.broadcast_mul(&per_sample(&std, noise)?)?)?;
        }
        Ok(prev)
    }

    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        self.schedule.add_noise(x0, noise, t)
    }

    fn needs_noise(&self) -> bool {
        true
    }
}
