//! DDIM (Song et al., arXiv 2010.02502) and its deterministic inversion, as diffusers'
//! `DDIMScheduler` and `DDIMInverseScheduler`.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::ddpm::{check_clip, x0_and_eps, X0Limit};
use crate::plan::{plan_indices, resolve_timesteps};
use crate::sampler::{Plan, Sampler};
use crate::schedule::x0_eps_coefs;
use crate::timesteps::{TimestepRule, TimestepSpacing};
use crate::util::{batch_of, div, lincomb, per_sample, same_shape, scale, timestep_values};
use crate::{Error, NoiseSchedule, Result};

/// The configuration of a [`DdimSampler`], with diffusers' names.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct DdimConfig {
    /// Number of denoising steps. Default 50.
    pub num_inference_steps: usize,
    /// How the steps are spread over the training timesteps. Default
    /// [`TimestepSpacing::Leading`] (diffusers' default for DDIM).
    pub timestep_spacing: TimestepSpacing,
    /// Added to the `leading` timesteps. Default 0.
    pub steps_offset: usize,
    /// Custom timesteps (strictly decreasing, below `T`); replace the three fields above. Each
    /// step then goes to the next custom timestep. Default `None`.
    pub timesteps: Option<Vec<u32>>,
    /// What the model predicts. Default [`PredictionType::Epsilon`].
    pub prediction_type: PredictionType,
    /// The stochasticity `eta >= 0`: 0 is deterministic DDIM, 1 is DDPM-like ancestral
    /// sampling. Default 0.
    pub eta: f64,
    /// Clamp the predicted `x0` to `[-clip_sample_range, clip_sample_range]`. Default `false`
    /// (diffusers defaults to `true`).
    pub clip_sample: bool,
    /// The clamp bound of `clip_sample`. Default 1.0.
    pub clip_sample_range: f64,
    /// Whether the step after the last timestep uses `alpha_bar = 1` (else `alpha_bar_0`).
    /// Default `true`.
    pub set_alpha_to_one: bool,
    /// Dynamic thresholding of the predicted `x0` (Saharia et al., arXiv 2205.11487); replaces
    /// `clip_sample`. Default `false`. For pixel-space models only.
    pub thresholding: bool,
    /// The quantile of `|x0|` that thresholding clamps to. Default 0.995.
    pub dynamic_thresholding_ratio: f64,
    /// The largest threshold. Default 1.0 (then thresholding is clamping to `[-1, 1]`).
    pub sample_max_value: f64,
    /// Recompute the noise from the clipped or thresholded `x0` (diffusers passes it to
    /// `step`). Default `false`. Without clipping or thresholding it changes nothing.
    pub use_clipped_model_output: bool,
}

impl Default for DdimConfig {
    fn default() -> Self {
        Self {
            num_inference_steps: 50,
            timestep_spacing: TimestepSpacing::Leading,
            steps_offset: 0,
            timesteps: None,
            prediction_type: PredictionType::Epsilon,
            eta: 0.0,
            clip_sample: false,
            clip_sample_range: 1.0,
            set_alpha_to_one: true,
            thresholding: false,
            dynamic_thresholding_ratio: 0.995,
            sample_max_value: 1.0,
            use_clipped_model_output: false,
        }
    }
}

/// Denoising diffusion implicit models (Song et al., arXiv 2010.02502, eq. 12), as diffusers'
/// `DDIMScheduler`.
///
/// Each step goes from `t` to `t - T / n` (diffusers' rule, also for `linspace` and `trailing`
/// spacings; custom timesteps step to the next one), and below 0 to `alpha_bar = 1` (or
/// `alpha_bar_0` without `set_alpha_to_one`). `clip_sample` and dynamic thresholding as in
/// diffusers.
#[derive(Debug, Clone)]
pub struct DdimSampler {
    schedule: NoiseSchedule,
    plan: Plan,
    /// The timestep each plan entry steps to (negative: the final `alpha_bar`).
    prev: Vec<i64>,
    final_alpha_cumprod: f64,
    eta: f64,
    limit: X0Limit,
    use_clipped_model_output: bool,
}

impl DdimSampler {
    /// Builds the sampler for `schedule`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad step count or custom timesteps, a negative or
    /// non-finite `eta`, a non-positive `clip_sample_range` or bad thresholding options.
    pub fn new(schedule: &NoiseSchedule, config: DdimConfig) -> Result<Self> {
        let limit = X0Limit::new(
            config.clip_sample,
            config.clip_sample_range,
            config.thresholding,
            config.dynamic_thresholding_ratio,
            config.sample_max_value,
        )?;
        if !(config.eta.is_finite() && config.eta >= 0.0) {
            return Err(Error::InvalidConfig {
                field: "eta",
                reason: format!("must be finite and >= 0, got {}", config.eta),
            });
        }
        let (timesteps, custom) = resolve_timesteps(
            TimestepRule::Ddpm,
            config.timestep_spacing,
            config.num_inference_steps,
            config.steps_offset,
            config.timesteps.as_deref(),
            schedule,
        )?;
        let prev = if custom {
            (0..timesteps.len())
                .map(|i| timesteps.get(i + 1).map_or(-1, |&p| p as i64))
                .collect()
        } else {
            let ratio = (schedule.num_train_timesteps() / config.num_inference_steps) as i64;
            timesteps.iter().map(|&t| t as i64 - ratio).collect()
        };
        Ok(Self {
            schedule: schedule.clone(),
            plan: Plan {
                timesteps,
                prediction_type: config.prediction_type,
                init_noise_sigma: 1.0,
            },
            prev,
            final_alpha_cumprod: if config.set_alpha_to_one {
                1.0
            } else {
                schedule.alphas_cumprod()[0]
            },
            eta: config.eta,
            limit,
            use_clipped_model_output: config.use_clipped_model_output,
        })
    }

    /// diffusers' step term by term in `f32`, for clipping and thresholding.
    fn step_exact(
        &self,
        model_output: &Tensor,
        idx: &[usize],
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let ac = self.schedule.alphas_cumprod();
        let (mut sa, mut sb, mut sap, mut dir, mut std) = (vec![], vec![], vec![], vec![], vec![]);
        for &i in idx {
            let a = ac[self.plan.timesteps[i] as usize] as f32;
            let p = self.prev[i];
            let ap = if p >= 0 {
                ac[p as usize] as f32
            } else {
                self.final_alpha_cumprod as f32
            };
            let beta_t = 1.0 - a;
            let variance = ((1.0 - ap) / beta_t) * (1.0 - a / ap);
            let s = self.eta as f32 * variance.sqrt();
            sa.push(a.sqrt() as f64);
            sb.push(beta_t.sqrt() as f64);
            sap.push(ap.sqrt() as f64);
            dir.push((1.0 - ap - s * s).sqrt() as f64);
            std.push(s as f64);
        }
        let (x0, eps) = x0_and_eps(
            self.plan.prediction_type,
            sample,
            model_output,
            &sa,
            &sb,
            true,
        )?;
        let x0 = self.limit.apply(x0)?;
        let eps = match eps {
            Some(e) if !self.use_clipped_model_output => e,
            _ => div(&(sample - scale(&x0, &sa)?)?, &sb)?,
        };
        let mut prev = (scale(&x0, &sap)? + scale(&eps, &dir)?)?;
        if self.eta > 0.0 {
            let noise = noise.ok_or(Error::MissingNoise {
                sampler: "DdimSampler",
            })?;
            same_shape(sample, noise, "DdimSampler::step: noise")?;
            prev = (prev + scale(noise, &std)?)?;
        }
        Ok(prev)
    }
}

impl Sampler for DdimSampler {
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
        same_shape(sample, model_output, "DdimSampler::step: model_output")?;
        let batch = batch_of(sample, "DdimSampler::step: sample")?;
        let ts = timestep_values(t, batch, "DdimSampler::step: t")?;
        let idx = plan_indices(&self.plan.timesteps, &ts, "DdimSampler::step")?;
        if self.limit != X0Limit::None || self.use_clipped_model_output {
            return self.step_exact(model_output, &idx, sample, noise);
        }
        let ac = self.schedule.alphas_cumprod();
        let mut c = [const { Vec::new() }; 7];
        for &i in &idx {
            let a = ac[self.plan.timesteps[i] as usize];
            let p = self.prev[i];
            let ap = if p >= 0 {
                ac[p as usize]
            } else {
                self.final_alpha_cumprod
            };
            let (x0c, epsc) = x0_eps_coefs(self.plan.prediction_type, a);
            let var = ((1.0 - ap) / (1.0 - a)) * (1.0 - a / ap);
            let std = self.eta * var.sqrt();
            c[0].push(x0c[0]);
            c[1].push(x0c[1]);
            c[2].push(epsc[0]);
            c[3].push(epsc[1]);
            c[4].push(ap.sqrt());
            c[5].push((1.0 - ap - std * std).max(0.0).sqrt());
            c[6].push(std);
        }
        // x0 and eps are both linear in (sample, model_output): fold the coefficients.
        let cx: Vec<f64> = (0..batch)
            .map(|b| c[4][b] * c[0][b] + c[5][b] * c[2][b])
            .collect();
        let co: Vec<f64> = (0..batch)
            .map(|b| c[4][b] * c[1][b] + c[5][b] * c[3][b])
            .collect();
        let mut prev = lincomb(&cx, sample, &co, model_output)?;
        if self.eta > 0.0 {
            let noise = noise.ok_or(Error::MissingNoise {
                sampler: "DdimSampler",
            })?;
            same_shape(sample, noise, "DdimSampler::step: noise")?;
            prev = (prev + noise.broadcast_mul(&per_sample(&c[6], noise)?)?)?;
        }
        Ok(prev)
    }

    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        self.schedule.add_noise(x0, noise, t)
    }

    fn needs_noise(&self) -> bool {
        self.eta > 0.0
    }
}

/// The configuration of a [`DdimInverseSampler`], with diffusers' names.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct DdimInverseConfig {
    /// Number of inversion steps. Default 50.
    pub num_inference_steps: usize,
    /// [`TimestepSpacing::Leading`] (the default) or [`TimestepSpacing::Trailing`].
    pub timestep_spacing: TimestepSpacing,
    /// Added to the `leading` timesteps. Default 0.
    pub steps_offset: usize,
    /// Custom timesteps (strictly increasing, below `T`); replace the three fields above. Each
    /// step comes from the previous custom timestep (from `x0` for the first). Default `None`.
    pub timesteps: Option<Vec<u32>>,
    /// What the model predicts. Default [`PredictionType::Epsilon`].
    pub prediction_type: PredictionType,
    /// Clamp the predicted `x0`. Default `false` (diffusers defaults to `true`).
    pub clip_sample: bool,
    /// The clamp bound of `clip_sample`. Default 1.0.
    pub clip_sample_range: f64,
    /// Whether the first step starts from `alpha_bar = 1` (else `alpha_bar_0`). Default `true`.
    pub set_alpha_to_one: bool,
}

impl Default for DdimInverseConfig {
    fn default() -> Self {
        Self {
            num_inference_steps: 50,
            timestep_spacing: TimestepSpacing::Leading,
            steps_offset: 0,
            timesteps: None,
            prediction_type: PredictionType::Epsilon,
            clip_sample: false,
            clip_sample_range: 1.0,
            set_alpha_to_one: true,
        }
    }
}

/// Deterministic DDIM inversion, `x0 -> x_T` (Song et al., arXiv 2010.02502, sec. 4.3), as
/// diffusers' `DDIMInverseScheduler`.
///
/// The plan ascends. The step at timestep `t` takes the sample from `t - T / n` (from `x0`
/// below 0) to `t`, with the model evaluated at `t` on the less noisy sample: the usual
/// inversion approximation. Running [`crate::sample`] with this sampler from `x0` gives the
/// `x_T` that a [`DdimSampler`] with the same steps (and `eta = 0`) maps back to about `x0`;
/// the round-trip error is first order in the step size.
///
/// With the `sample` prediction type, set `set_alpha_to_one = false`: at `alpha_bar = 1` the
/// noise estimate `(x - x0) / sqrt(1 - alpha_bar)` is undefined (diffusers gives infinities
/// too).
#[derive(Debug, Clone)]
pub struct DdimInverseSampler {
    schedule: NoiseSchedule,
    plan: Plan,
    /// The timestep each plan entry steps from (negative: the initial `alpha_bar`).
    from: Vec<i64>,
    initial_alpha_cumprod: f64,
    clip: Option<f64>,
}

impl DdimInverseSampler {
    /// Builds the inverse sampler for `schedule`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad step count, `linspace` spacing, custom timesteps
    /// that are not strictly increasing below `T`, or a non-positive `clip_sample_range`.
    pub fn new(schedule: &NoiseSchedule, config: DdimInverseConfig) -> Result<Self> {
        check_clip(config.clip_sample, config.clip_sample_range)?;
        let (timesteps, custom) = resolve_timesteps(
            TimestepRule::DdimInverse,
            config.timestep_spacing,
            config.num_inference_steps,
            config.steps_offset,
            config.timesteps.as_deref(),
            schedule,
        )?;
        let last = schedule.num_train_timesteps() as i64 - 1;
        let from = if custom {
            (0..timesteps.len())
                .map(|i| if i == 0 { -1 } else { timesteps[i - 1] as i64 })
                .collect()
        } else {
            let ratio = (schedule.num_train_timesteps() / config.num_inference_steps) as i64;
            timesteps
                .iter()
                .map(|&t| (t as i64 - ratio).min(last))
                .collect()
        };
        Ok(Self {
            schedule: schedule.clone(),
            plan: Plan {
                timesteps,
                prediction_type: config.prediction_type,
                init_noise_sigma: 1.0,
            },
            from,
            initial_alpha_cumprod: if config.set_alpha_to_one {
                1.0
            } else {
                schedule.alphas_cumprod()[0]
            },
            clip: config.clip_sample.then_some(config.clip_sample_range),
        })
    }
}

impl Sampler for DdimInverseSampler {
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
        same_shape(
            sample,
            model_output,
            "DdimInverseSampler::step: model_output",
        )?;
        let batch = batch_of(sample, "DdimInverseSampler::step: sample")?;
        let ts = timestep_values(t, batch, "DdimInverseSampler::step: t")?;
        let idx = plan_indices(&self.plan.timesteps, &ts, "DdimInverseSampler::step")?;
        let ac = self.schedule.alphas_cumprod();
        let mut c = [const { Vec::new() }; 6];
        for &i in &idx {
            let f = self.from[i];
            let a = if f >= 0 {
                ac[f as usize]
            } else {
                self.initial_alpha_cumprod
            };
            let an = ac[self.plan.timesteps[i] as usize];
            let (x0c, epsc) = x0_eps_coefs(self.plan.prediction_type, a);
            c[0].push(x0c[0]);
            c[1].push(x0c[1]);
            c[2].push(epsc[0]);
            c[3].push(epsc[1]);
            c[4].push(an.sqrt());
            c[5].push((1.0 - an).sqrt());
        }
        if let Some(r) = self.clip {
            let x0 = lincomb(&c[0], sample, &c[1], model_output)?.clamp(-r, r)?;
            let eps = lincomb(&c[2], sample, &c[3], model_output)?;
            return lincomb(&c[4], &x0, &c[5], &eps);
        }
        let cx: Vec<f64> = (0..batch)
            .map(|b| c[4][b] * c[0][b] + c[5][b] * c[2][b])
            .collect();
        let co: Vec<f64> = (0..batch)
            .map(|b| c[4][b] * c[1][b] + c[5][b] * c[3][b])
            .collect();
        lincomb(&cx, sample, &co, model_output)
    }

    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        self.schedule.add_noise(x0, noise, t)
    }
}
