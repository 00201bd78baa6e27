//! The Euler sampler of Karras et al. (arXiv 2206.00364), as diffusers'
//! `EulerDiscreteScheduler`.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::options::{FinalSigmas, SigmaInterpolation};
use crate::plan::{
    check_custom_with_spacing, exponential_sigmas, interp_sigmas, karras_sigmas, log_table_f32,
    plan_indices, sigma_table_f32, sigma_to_t, validate_derived_plan, SigmaSpacing,
};
use crate::sampler::{Plan, Sampler};
use crate::timesteps::{inference_timesteps, TimestepRule, TimestepSpacing};
use crate::util::{batch_of, div, lincomb, same_shape, scale, timestep_values};
use crate::{Error, NoiseSchedule, Result};

/// The configuration of an [`EulerSampler`], with diffusers' names and defaults
/// (`EulerDiscreteScheduler`, plus the churn arguments of its `step`).
///
/// Not supported (see docs/SAMPLERS.md): `use_beta_sigmas` and `timestep_type =
/// "continuous"`.
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
    /// Default `None`. Not with `use_karras_sigmas` or `use_exponential_sigmas`.
    pub timesteps: Option<Vec<u32>>,
    /// What the model predicts. Default [`PredictionType::Epsilon`].
    pub prediction_type: PredictionType,
    /// How the sigmas of the timesteps are found. Default [`SigmaInterpolation::Linear`].
    pub interpolation_type: SigmaInterpolation,
    /// Replace the sigmas by `n` Karras sigmas (Karras et al., arXiv 2206.00364, eq. 5)
    /// between the first and last sigma of the spacing (or `sigma_min`/`sigma_max`), and the
    /// timesteps by their fractional timesteps. Default `false`.
    pub use_karras_sigmas: bool,
    /// As `use_karras_sigmas`, with sigmas evenly spaced in `log sigma`. Default `false`. Not
    /// together with `use_karras_sigmas`.
    pub use_exponential_sigmas: bool,
    /// The smallest sigma of `use_karras_sigmas` / `use_exponential_sigmas`. Default `None`:
    /// the sigma of the last timestep.
    pub sigma_min: Option<f64>,
    /// The largest sigma of `use_karras_sigmas` / `use_exponential_sigmas`. Default `None`:
    /// the sigma of the first timestep.
    pub sigma_max: Option<f64>,
    /// Where the last step lands. Default [`FinalSigmas::Zero`].
    pub final_sigmas_type: FinalSigmas,
    /// The churn of Karras et al. (Algorithm 2, `S_churn`): each step whose sigma is in
    /// `[s_tmin, s_tmax]` first raises it by the factor `1 + min(s_churn / n, sqrt 2 - 1)` with
    /// fresh noise (`n` = number of sigmas - 1). Default 0: deterministic. diffusers passes it
    /// to `step`.
    pub s_churn: f64,
    /// The smallest sigma that churns. Default 0.
    pub s_tmin: f64,
    /// The largest sigma that churns. Default `None`: no bound (diffusers' `inf`).
    pub s_tmax: Option<f64>,
    /// The scale of the churn noise (`S_noise`). Default 1.
    pub s_noise: f64,
}

impl Default for EulerConfig {
    fn default() -> Self {
        Self {
            num_inference_steps: 50,
            timestep_spacing: TimestepSpacing::Linspace,
            steps_offset: 0,
            timesteps: None,
            prediction_type: PredictionType::Epsilon,
            interpolation_type: SigmaInterpolation::Linear,
            use_karras_sigmas: false,
            use_exponential_sigmas: false,
            sigma_min: None,
            sigma_max: None,
            final_sigmas_type: FinalSigmas::Zero,
            s_churn: 0.0,
            s_tmin: 0.0,
            s_tmax: None,
            s_noise: 1.0,
        }
    }
}

impl EulerConfig {
    fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.use_karras_sigmas && self.use_exponential_sigmas {
            return bad(
                "use_exponential_sigmas",
                "only one of use_karras_sigmas and use_exponential_sigmas can be set".into(),
            );
        }
        for (field, v) in [("sigma_min", self.sigma_min), ("sigma_max", self.sigma_max)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return bad(field, format!("must be positive and finite, got {v}"));
                }
            }
        }
        if !(self.s_churn.is_finite() && self.s_churn >= 0.0) {
            return bad(
                "s_churn",
                format!("must be finite and >= 0, got {}", self.s_churn),
            );
        }
        if !self.s_tmin.is_finite() {
            return bad("s_tmin", format!("must be finite, got {}", self.s_tmin));
        }
        if self.s_tmax.is_some_and(f64::is_nan) {
            return bad("s_tmax", "must not be NaN".into());
        }
        if !self.s_noise.is_finite() {
            return bad("s_noise", format!("must be finite, got {}", self.s_noise));
        }
        Ok(())
    }
}

/// Euler's method on the probability-flow ODE in the variance-exploding parametrisation
/// `x = x_vp / sqrt(alpha_bar)`, `dx/dsigma = (x - x0) / sigma` (Karras et al., arXiv
/// 2206.00364, Algorithm 2; without churn Algorithm 1), as diffusers' `EulerDiscreteScheduler`.
///
/// The sample lives in the variance-exploding space: it starts at `init_noise_sigma` times
/// standard normal noise, and the model sees `x / sqrt(sigma^2 + 1)`
/// ([`Sampler::scale_model_input`]). The sigmas at fractional timesteps are interpolated
/// linearly, as diffusers does. With `s_churn > 0` the steps take noise.
#[derive(Debug, Clone)]
pub struct EulerSampler {
    plan: Plan,
    /// Variance-exploding sigma of each plan timestep, then the final ones.
    sigmas: Vec<f64>,
    s_churn: f64,
    s_tmin: f64,
    s_tmax: f64,
    s_noise: f64,
}

/// torch's `linspace(start, end, steps)` element `i` in `f32` (the second half counted back
/// from `end`).
fn torch_linspace_f32(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    if steps == 1 {
        return start;
    }
    let step = (end - start) / (steps - 1) as f32;
    if i < steps / 2 {
        start + step * i as f32
    } else {
        end - step * (steps - i - 1) as f32
    }
}

impl EulerSampler {
    /// Builds the sampler for `schedule`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a bad step count, custom timesteps or option (the
    /// error names the field).
    pub fn new(schedule: &NoiseSchedule, config: EulerConfig) -> Result<Self> {
        config.validate()?;
        let t_train = schedule.num_train_timesteps();
        let spacing = if config.use_karras_sigmas {
            SigmaSpacing::Karras
        } else if config.use_exponential_sigmas {
            SigmaSpacing::Exponential
        } else {
            SigmaSpacing::Timesteps
        };
        let (base, custom) = match &config.timesteps {
            Some(ts) => (ts.iter().map(|&t| t as f64).collect::<Vec<_>>(), true),
            None => (
                inference_timesteps(
                    TimestepRule::Euler,
                    config.timestep_spacing,
                    config.num_inference_steps,
                    config.steps_offset,
                    t_train,
                )?,
                false,
            ),
        };
        check_custom_with_spacing(custom, spacing)?;
        let n = base.len();
        let table = sigma_table_f32(schedule);
        let log_table = log_table_f32(&table);
        let sigmas = match config.interpolation_type {
            SigmaInterpolation::Linear => interp_sigmas(&base, &table),
            SigmaInterpolation::LogLinear => {
                let (hi, lo) = (log_table[t_train - 1], log_table[0]);
                (0..=n)
                    .map(|i| torch_linspace_f32(hi, lo, n + 1, i).exp() as f64)
                    .collect()
            }
        };
        let range = |s: &[f64]| {
            let lo = config.sigma_min.unwrap_or(s[s.len() - 1]);
            let hi = config.sigma_max.unwrap_or(s[0]);
            (lo, hi)
        };
        let (timesteps, sigmas) = match spacing {
            SigmaSpacing::Karras | SigmaSpacing::Exponential => {
                let (lo, hi) = range(&sigmas);
                let s = if spacing == SigmaSpacing::Karras {
                    karras_sigmas(lo, hi, n)
                } else {
                    exponential_sigmas(lo, hi, n)
                };
                let ts = s
                    .iter()
                    .map(|&v| sigma_to_t(v, &log_table) as f32 as f64)
                    .collect();
                (ts, s)
            }
            _ => (base, sigmas),
        };
        validate_derived_plan(&timesteps, spacing, t_train, false)?;
        let mut sigmas: Vec<f64> = sigmas.into_iter().map(|v| v as f32 as f64).collect();
        sigmas.push(match config.final_sigmas_type {
            FinalSigmas::Zero => 0.0,
            FinalSigmas::SigmaMin => table[0] as f64,
        });
        let max_sigma = sigmas.iter().cloned().fold(0.0, f64::max) as f32;
        let init_noise_sigma = match config.timestep_spacing {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max_sigma,
            TimestepSpacing::Leading => (max_sigma * max_sigma + 1.0).sqrt(),
        };
        Ok(Self {
            plan: Plan {
                timesteps,
                prediction_type: config.prediction_type,
                init_noise_sigma: init_noise_sigma as f64,
            },
            sigmas,
            s_churn: config.s_churn,
            s_tmin: config.s_tmin,
            s_tmax: config.s_tmax.unwrap_or(f64::INFINITY),
            s_noise: config.s_noise,
        })
    }

    /// The variance-exploding sigmas of the plan's timesteps, followed by the final one (0 for
    /// [`FinalSigmas::Zero`]; with [`SigmaInterpolation::LogLinear`] the smallest training
    /// sigma and 0, as diffusers).
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    fn sample_sigmas(&self, t: &Tensor, batch: usize, context: &'static str) -> Result<Vec<usize>> {
        let ts = timestep_values(t, batch, context)?;
        plan_indices(&self.plan.timesteps, &ts, context)
    }

    /// The churn `gamma` at a sigma (diffusers' `step`).
    fn gamma(&self, sigma: f32) -> f64 {
        let s = sigma as f64;
        if self.s_churn > 0.0 && self.s_tmin <= s && s <= self.s_tmax {
            (self.s_churn / (self.sigmas.len() - 1) as f64).min(2f64.sqrt() - 1.0)
        } else {
            0.0
        }
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
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        same_shape(sample, model_output, "EulerSampler::step: model_output")?;
        let batch = batch_of(sample, "EulerSampler::step: sample")?;
        let idx = self.sample_sigmas(t, batch, "EulerSampler::step: t")?;
        // Per sample, in f32 as diffusers: sigma_hat, the churn noise scale and dt.
        let (mut hat, mut churn, mut dt) = (Vec::new(), Vec::new(), Vec::new());
        for &i in &idx {
            let (s, s_next) = (self.sigmas[i] as f32, self.sigmas[i + 1] as f32);
            let gamma = self.gamma(s);
            let s_hat = s * (gamma + 1.0) as f32;
            hat.push(s_hat as f64);
            churn.push(if gamma > 0.0 {
                (s_hat * s_hat - s * s).sqrt() as f64
            } else {
                0.0
            });
            dt.push((s_next - s_hat) as f64);
        }
        let x = if churn.iter().any(|&c| c > 0.0) {
            let noise = noise.ok_or(Error::MissingNoise {
                sampler: "EulerSampler",
            })?;
            same_shape(sample, noise, "EulerSampler::step: noise")?;
            let eps = scale(noise, &vec![self.s_noise as f32 as f64; batch])?;
            (sample + scale(&eps, &churn)?)?
        } else {
            sample.clone()
        };
        // prev = x + (x - x0) / sigma_hat * dt with x0 = a x + b out: fold the coefficients
        // (in f64, from the f32 sigmas; more accurate than term-by-term f32 where the sigmas
        // are large and the terms cancel).
        let (mut cx, mut co) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
        for (k, &i) in idx.iter().enumerate() {
            let s = self.sigmas[i];
            let (a, b) = match self.plan.prediction_type {
                PredictionType::Epsilon => (1.0, -hat[k]),
                PredictionType::VPrediction => (1.0 / (s * s + 1.0), -s / (s * s + 1.0).sqrt()),
                PredictionType::Sample => (0.0, 1.0),
            };
            let r = dt[k] / hat[k];
            cx.push(1.0 + r * (1.0 - a));
            co.push(-r * b);
        }
        lincomb(&cx, &x, &co, model_output)
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
            .map(|&i| {
                let s = self.sigmas[i] as f32;
                (s * s + 1.0).sqrt() as f64
            })
            .collect();
        div(sample, &c)
    }

    fn needs_noise(&self) -> bool {
        self.s_churn > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_linspace_hits_both_ends() {
        for steps in [2usize, 3, 10, 51] {
            let v: Vec<f32> = (0..steps)
                .map(|i| torch_linspace_f32(5.0, -4.6, steps, i))
                .collect();
            assert_eq!(v[0], 5.0);
            assert_eq!(v[steps - 1], -4.6);
            assert!(v.windows(2).all(|w| w[1] < w[0]));
        }
    }
}
