//! DPM-Solver++ 2M (Lu et al., arXiv 2211.01095), as diffusers' `DPMSolverMultistepScheduler`
//! with its defaults.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::plan::{plan_indices, plan_sigmas, resolve_timesteps, sigma_table_f32};
use crate::sampler::{Plan, Sampler};
use crate::timesteps::{TimestepRule, TimestepSpacing};
use crate::util::{batch_of, lincomb, per_sample, same_shape, timestep_values};
use crate::{NoiseSchedule, Result};

/// The configuration of a [`DpmSolverSampler`], with diffusers' names.
///
/// The solver itself is fixed to diffusers' defaults: `solver_order = 2`,
/// `algorithm_type = "dpmsolver++"`, `solver_type = "midpoint"`, `lower_order_final = true`,
/// `final_sigmas_type = "zero"`, no Karras/exponential/beta/Lu sigmas, no thresholding.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct DpmSolverConfig {
    /// Number of denoising steps. Default 20.
    pub num_inference_steps: usize,
    /// How the steps are spread over the training timesteps. Default
    /// [`TimestepSpacing::Linspace`] (diffusers' default for DPM-Solver).
    pub timestep_spacing: TimestepSpacing,
    /// Added to the `leading` timesteps. Default 0.
    pub steps_offset: usize,
    /// Custom timesteps (strictly decreasing, below `T`); replace the three fields above.
    /// Default `None`.
    pub timesteps: Option<Vec<u32>>,
    /// What the model predicts. Default [`PredictionType::Epsilon`].
    pub prediction_type: PredictionType,
}

impl Default for DpmSolverConfig {
    fn default() -> Self {
        Self {
            num_inference_steps: 20,
            timestep_spacing: TimestepSpacing::Linspace,
            steps_offset: 0,
            timesteps: None,
            prediction_type: PredictionType::Epsilon,
        }
    }
}

/// The state DPM-Solver++ 2M keeps between steps: the previous data prediction `x0` and the
/// plan index each sample was at when it was made.
///
/// A step uses the second-order update for a sample only when that sample's previous step was
/// the plan step just before; otherwise (first step, after [`Sampler::reset`], a skipped or
/// repeated step) it uses the first-order update. So a stale state can never be misused.
#[derive(Debug, Clone, Default)]
pub struct DpmSolverState {
    previous: Option<(Tensor, Vec<usize>)>,
}

impl DpmSolverState {
    /// The previous data prediction `x0` and the plan index of each sample, if any.
    pub fn previous(&self) -> Option<(&Tensor, &[usize])> {
        self.previous.as_ref().map(|(t, i)| (t, i.as_slice()))
    }

    /// Whether no step has been taken since the last reset.
    pub fn is_empty(&self) -> bool {
        self.previous.is_none()
    }
}

/// DPM-Solver++ 2M: the multistep second-order solver of the diffusion ODE in data
/// prediction (Lu et al., arXiv 2211.01095, Algorithm 2), as diffusers'
/// `DPMSolverMultistepScheduler` with its defaults (midpoint form, first order on the first and
/// last steps, final sigma 0).
///
/// It works on `lambda = log(alpha / sigma)`; the sigmas of the plan are the `f32` values
/// diffusers interpolates. The sampler keeps an explicit [`DpmSolverState`].
#[derive(Debug, Clone)]
pub struct DpmSolverSampler {
    plan: Plan,
    /// Variance-exploding sigma of each plan timestep, then the final 0.
    sigmas: Vec<f64>,
    state: DpmSolverState,
}

/// `(alpha_t, sigma_t, lambda_t)` of a variance-exploding sigma (diffusers'
/// `_sigma_to_alpha_sigma_t`).
fn alpha_sigma_lambda(s: f64) -> (f64, f64, f64) {
    let alpha = 1.0 / (s * s + 1.0).sqrt();
    let sigma = s * alpha;
    (alpha, sigma, alpha.ln() - sigma.ln())
}

impl DpmSolverSampler {
    /// Builds the sampler for `schedule`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a bad step count or custom timesteps, or a plan with
    /// repeated timesteps (diffusers' `leading` spacing with `n + 1 > T`).
    pub fn new(schedule: &NoiseSchedule, config: DpmSolverConfig) -> Result<Self> {
        let (timesteps, _) = resolve_timesteps(
            TimestepRule::DpmSolver,
            config.timestep_spacing,
            config.num_inference_steps,
            config.steps_offset,
            config.timesteps.as_deref(),
            schedule,
        )?;
        let sigmas = plan_sigmas(&timesteps, &sigma_table_f32(schedule));
        Ok(Self {
            plan: Plan {
                timesteps,
                prediction_type: config.prediction_type,
                init_noise_sigma: 1.0,
            },
            sigmas,
            state: DpmSolverState::default(),
        })
    }

    /// The multistep state.
    pub fn state(&self) -> &DpmSolverState {
        &self.state
    }

    /// The variance-exploding sigmas of the plan's timesteps, followed by the final 0.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }
}

impl Sampler for DpmSolverSampler {
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
        same_shape(sample, model_output, "DpmSolverSampler::step: model_output")?;
        let batch = batch_of(sample, "DpmSolverSampler::step: sample")?;
        let ts = timestep_values(t, batch, "DpmSolverSampler::step: t")?;
        let idx = plan_indices(&self.plan.timesteps, &ts, "DpmSolverSampler::step")?;
        let last = self.plan.timesteps.len() - 1;

        // Convert the model output to the data prediction x0.
        let (mut x0x, mut x0o) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
        for &i in &idx {
            let (alpha, sigma, _) = alpha_sigma_lambda(self.sigmas[i]);
            let (cx, co) = match self.plan.prediction_type {
                PredictionType::Epsilon => (1.0 / alpha, -sigma / alpha),
                PredictionType::VPrediction => (alpha, -sigma),
                PredictionType::Sample => (0.0, 1.0),
            };
            x0x.push(cx);
            x0o.push(co);
        }
        let m0 = lincomb(&x0x, sample, &x0o, model_output)?;

        // Per-sample previous output, usable if the sample was at the plan step just before.
        let prev = self
            .state
            .previous
            .as_ref()
            .filter(|(m1, _)| m1.dims() == m0.dims());
        let (mut cx, mut c0, mut c1) = (Vec::new(), Vec::new(), Vec::new());
        let mut any_second = false;
        for (b, &i) in idx.iter().enumerate() {
            let (alpha_t, sigma_t, lambda_t) = alpha_sigma_lambda(self.sigmas[i + 1]);
            let (_, sigma_s0, lambda_s0) = alpha_sigma_lambda(self.sigmas[i]);
            let h = lambda_t - lambda_s0;
            let bcoef = alpha_t * ((-h).exp() - 1.0);
            let second = i != last && i > 0 && prev.is_some_and(|(_, pi)| pi[b] + 1 == i);
            let k = if second {
                let (_, _, lambda_s1) = alpha_sigma_lambda(self.sigmas[i - 1]);
                let r0 = (lambda_s0 - lambda_s1) / h;
                any_second = true;
                0.5 * bcoef / r0
            } else {
                0.0
            };
            // x_t = (sigma_t / sigma_s0) x - b D0 - 0.5 b D1, with D1 = (m0 - m1) / r0.
            cx.push(if sigma_t == 0.0 {
                0.0
            } else {
                sigma_t / sigma_s0
            });
            c0.push(-(bcoef + k));
            c1.push(k);
        }
        let mut out = lincomb(&cx, sample, &c0, &m0)?;
        if any_second {
            if let Some((m1, _)) = prev {
                out = (out + m1.broadcast_mul(&per_sample(&c1, m1)?)?)?;
            }
        }
        self.state.previous = Some((m0, idx));
        Ok(out)
    }

    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        same_shape(x0, noise, "DpmSolverSampler::add_noise: noise")?;
        let batch = batch_of(x0, "DpmSolverSampler::add_noise: x0")?;
        let ts = timestep_values(t, batch, "DpmSolverSampler::add_noise: t")?;
        let idx = plan_indices(&self.plan.timesteps, &ts, "DpmSolverSampler::add_noise")?;
        let (a, s): (Vec<f64>, Vec<f64>) = idx
            .iter()
            .map(|&i| {
                let (alpha, sigma, _) = alpha_sigma_lambda(self.sigmas[i]);
                (alpha, sigma)
            })
            .unzip();
        lincomb(&a, x0, &s, noise)
    }

    fn reset(&mut self) {
        self.state = DpmSolverState::default();
    }
}
