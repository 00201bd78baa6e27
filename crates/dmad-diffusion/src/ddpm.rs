//! DDPM ancestral sampling (Ho et al., arXiv 2006.11239), as diffusers' `DDPMScheduler`.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::options::VarianceType;
use crate::plan::{plan_indices, resolve_timesteps};
use crate::sampler::{Plan, Sampler};
use crate::schedule::x0_eps_coefs;
use crate::timesteps::{TimestepRule, TimestepSpacing};
use crate::util::{
    batch_of, check_thresholding, div, lincomb, per_sample, same_shape, scale, threshold_sample,
    timestep_values,
};
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
    /// Dynamic thresholding of the predicted `x0` (Saharia et al., arXiv 2205.11487); replaces
    /// `clip_sample`. Default `false`. For pixel-space models only.
    pub thresholding: bool,
    /// The quantile of `|x0|` that thresholding clamps to. Default 0.995.
    pub dynamic_thresholding_ratio: f64,
    /// The largest threshold. Default 1.0 (then thresholding is clamping to `[-1, 1]`).
    pub sample_max_value: f64,
    /// The variance of each step. Default [`VarianceType::FixedSmall`];
    /// [`VarianceType::FixedLargeLog`] is refused (diffusers returns NaN for it). With
    /// [`VarianceType::Learned`] and [`VarianceType::LearnedRange`] the model's output has
    /// twice the sample's channels (dimension 1): the prediction, then the variance.
    pub variance_type: VarianceType,
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
            thresholding: false,
            dynamic_thresholding_ratio: 0.995,
            sample_max_value: 1.0,
            variance_type: VarianceType::FixedSmall,
        }
    }
}

/// What happens to the predicted `x0` before it is used: nothing, `clip_sample` or dynamic
/// thresholding (which wins over clipping, as in diffusers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum X0Limit {
    None,
    Clip(f64),
    Threshold { ratio: f64, max: f64 },
}

impl X0Limit {
    pub(crate) fn new(
        clip: bool,
        clip_range: f64,
        thresholding: bool,
        ratio: f64,
        max: f64,
    ) -> Result<Self> {
        check_thresholding(thresholding, ratio, max)?;
        Ok(if thresholding {
            Self::Threshold { ratio, max }
        } else if clip {
            check_clip(clip, clip_range)?;
            Self::Clip(clip_range)
        } else {
            Self::None
        })
    }

    pub(crate) fn apply(self, x0: Tensor) -> Result<Tensor> {
        match self {
            Self::None => Ok(x0),
            Self::Clip(r) => Ok(x0.clamp(-r, r)?),
            Self::Threshold { ratio, max } => threshold_sample(&x0, ratio, max),
        }
    }
}

/// The predicted `x0` and noise as diffusers' DDPM and DDIM compute them in `f32`, given
/// per-sample `sqrt(alpha_bar_t)` and `sqrt(1 - alpha_bar_t)`. The noise is computed only if
/// `with_eps`.
pub(crate) fn x0_and_eps(
    pred: PredictionType,
    x: &Tensor,
    out: &Tensor,
    sqrt_a: &[f64],
    sqrt_b: &[f64],
    with_eps: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    Ok(match pred {
        PredictionType::Epsilon => (
            div(&(x - scale(out, sqrt_b)?)?, sqrt_a)?,
            with_eps.then(|| out.clone()),
        ),
        PredictionType::Sample => {
            let eps = if with_eps {
                Some(div(&(x - scale(out, sqrt_a)?)?, sqrt_b)?)
            } else {
                None
            };
            (out.clone(), eps)
        }
        PredictionType::VPrediction => {
            let x0 = (scale(x, sqrt_a)? - scale(out, sqrt_b)?)?;
            let eps = if with_eps {
                Some((scale(out, sqrt_a)? + scale(x, sqrt_b)?)?)
            } else {
                None
            };
            (x0, eps)
        }
    })
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

/// DDPM ancestral sampling (Ho et al., arXiv 2006.11239, eq. 6-7), as diffusers'
/// `DDPMScheduler`: by default with the `fixed_small` variance (the posterior variance
/// `beta_tilde_t`); the other variance types, `clip_sample` and dynamic thresholding as in
/// diffusers.
///
/// With fewer steps than training timesteps, each step goes from `t` to the next plan timestep
/// `t'` with `beta = 1 - alpha_bar_t / alpha_bar_t'`. A step at `t = 0` adds no noise.
#[derive(Debug, Clone)]
pub struct DdpmSampler {
    schedule: NoiseSchedule,
    plan: Plan,
    limit: X0Limit,
    variance_type: VarianceType,
}

impl DdpmSampler {
    /// Builds the sampler for `schedule`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad step count, custom timesteps that are not strictly
    /// decreasing below `T`, a non-positive `clip_sample_range` or bad thresholding options;
    /// [`Error::Unsupported`] for [`VarianceType::FixedLargeLog`].
    pub fn new(schedule: &NoiseSchedule, config: DdpmConfig) -> Result<Self> {
        let limit = X0Limit::new(
            config.clip_sample,
            config.clip_sample_range,
            config.thresholding,
            config.dynamic_thresholding_ratio,
            config.sample_max_value,
        )?;
        if config.variance_type == VarianceType::FixedLargeLog {
            return Err(Error::Unsupported {
                field: "variance_type",
                reason: "fixed_large_log: diffusers takes the square root of a negative log \
                         variance and returns NaN; use fixed_large"
                    .into(),
            });
        }
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
            limit,
            variance_type: config.variance_type,
        })
    }

    /// diffusers' step term by term in `f32`, for the options the folded fast path does not
    /// cover (thresholding, clipping, variance types other than `fixed_small`).
    fn step_exact(
        &self,
        model_output: &Tensor,
        idx: &[usize],
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let learned = self.variance_type.is_learned();
        let (out, predicted_variance) = if learned {
            let c = sample.dims().get(1).copied().unwrap_or(0);
            if model_output.rank() != sample.rank()
                || sample.rank() < 2
                || model_output.dims()[1] != 2 * c
                || model_output.dims()[2..] != sample.dims()[2..]
                || model_output.dims()[0] != sample.dims()[0]
            {
                return Err(Error::ShapeMismatch {
                    context: "DdpmSampler::step: model_output with a learned variance",
                    expected: format!("{:?} with twice the channels", sample.dims()),
                    got: model_output.dims().to_vec(),
                });
            }
            (
                model_output.narrow(1, 0, c)?,
                Some(model_output.narrow(1, c, c)?),
            )
        } else {
            same_shape(sample, model_output, "DdpmSampler::step: model_output")?;
            (model_output.clone(), None)
        };
        let ac = self.schedule.alphas_cumprod();
        let (mut sa, mut sb, mut cx0, mut cx) = (vec![], vec![], vec![], vec![]);
        let (mut std, mut min_log, mut max_log, mut noisy) = (vec![], vec![], vec![], vec![]);
        for &i in idx {
            let tt = self.plan.timesteps[i] as usize;
            let a = ac[tt] as f32;
            let ap = match self.plan.timesteps.get(i + 1) {
                Some(&p) => ac[p as usize] as f32,
                None => 1.0,
            };
            let (beta_t, beta_prev) = (1.0 - a, 1.0 - ap);
            let cur_alpha = a / ap;
            let cur_beta = 1.0 - cur_alpha;
            sa.push(a.sqrt() as f64);
            sb.push(beta_t.sqrt() as f64);
            cx0.push((ap.sqrt() * cur_beta / beta_t) as f64);
            cx.push((cur_alpha.sqrt() * beta_prev / beta_t) as f64);
            let var = ((1.0 - ap) / (1.0 - a) * cur_beta).max(1e-20);
            std.push(match self.variance_type {
                VarianceType::FixedSmall => var.sqrt() as f64,
                VarianceType::FixedSmallLog => (0.5 * var.ln()).exp() as f64,
                VarianceType::FixedLarge => cur_beta.sqrt() as f64,
                _ => 0.0,
            });
            min_log.push(var.ln() as f64);
            max_log.push(cur_beta.ln() as f64);
            noisy.push(if tt > 0 { 1.0 } else { 0.0 });
        }
        let (x0, _) = x0_and_eps(self.plan.prediction_type, sample, &out, &sa, &sb, false)?;
        let x0 = self.limit.apply(x0)?;
        let prev = (scale(&x0, &cx0)? + scale(sample, &cx)?)?;
        if noisy.iter().all(|&v| v == 0.0) {
            return Ok(prev);
        }
        let noise = noise.ok_or(Error::MissingNoise {
            sampler: "DdpmSampler",
        })?;
        same_shape(sample, noise, "DdpmSampler::step: noise")?;
        let std = match (self.variance_type, predicted_variance) {
            (VarianceType::Learned, Some(v)) => v.sqrt()?,
            (VarianceType::LearnedRange, Some(v)) => {
                let frac = ((v + 1.0)? / 2.0)?;
                let one_minus = frac.affine(-1.0, 1.0)?;
                let log_var = (scale(&frac, &max_log)? + scale(&one_minus, &min_log)?)?;
                (log_var * 0.5)?.exp()?
            }
            _ => per_sample(&std, sample)?,
        };
        // No noise at t = 0 (per sample).
        let std = std.broadcast_mul(&per_sample(&noisy, sample)?)?;
        Ok((prev + noise.broadcast_mul(&std)?)?)
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
        let batch = batch_of(sample, "DdpmSampler::step: sample")?;
        let ts = timestep_values(t, batch, "DdpmSampler::step: t")?;
        let idx = plan_indices(&self.plan.timesteps, &ts, "DdpmSampler::step")?;
        if self.limit != X0Limit::None || self.variance_type != VarianceType::FixedSmall {
            return self.step_exact(model_output, &idx, sample, noise);
        }
        same_shape(sample, model_output, "DdpmSampler::step: model_output")?;
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
        // x0 is linear in (sample, model_output): fold the coefficients.
        let a: Vec<f64> = (0..n).map(|b| cx0[b] * x0x[b] + cx[b]).collect();
        let o: Vec<f64> = (0..n).map(|b| cx0[b] * x0o[b]).collect();
        let mut prev = lincomb(&a, sample, &o, model_output)?;
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
