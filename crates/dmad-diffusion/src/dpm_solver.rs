//! DPM-Solver and DPM-Solver++ (Lu et al., arXiv 2206.00927 and 2211.01095): multistep, orders
//! 1 to 3, ODE and SDE variants, as diffusers' `DPMSolverMultistepScheduler`.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::options::{DpmSolverAlgorithm, DpmSolverType, FinalSigmas, VarianceType};
use crate::plan::{
    check_custom_with_spacing, exponential_sigmas, interp_sigmas, karras_sigmas, log_table_f32,
    lu_sigmas, plan_indices, sigma_table_f32, sigma_to_t, validate_derived_plan, SigmaSpacing,
};
use crate::sampler::{Plan, Sampler};
use crate::schedule::BetaSchedule;
use crate::timesteps::{inference_timesteps_below, validate_plan, TimestepRule, TimestepSpacing};
use crate::util::{
    batch_of, check_thresholding, div, per_sample, same_shape, scale, threshold_sample,
    timestep_values,
};
use crate::{Error, NoiseSchedule, Result};

/// The configuration of a [`DpmSolverSampler`], with diffusers' names and defaults
/// (`DPMSolverMultistepScheduler`): by default DPM-Solver++ 2M, midpoint form, first order on the
/// last step, final sigma 0.
///
/// Not supported (see docs/SAMPLERS.md): `use_beta_sigmas`, `use_flow_sigmas`, `flow_shift`,
/// `use_dynamic_shifting` and the `flow_prediction` prediction type.
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
    /// Default `None`. Not with `use_karras_sigmas`, `use_exponential_sigmas` or
    /// `use_lu_lambdas`.
    pub timesteps: Option<Vec<u32>>,
    /// What the model predicts. Default [`PredictionType::Epsilon`].
    pub prediction_type: PredictionType,
    /// The order of the multistep update, 1 to 3. Default 2. Use 2 for guided sampling, 3 for
    /// unconditional sampling.
    pub solver_order: usize,
    /// DPM-Solver++ or DPM-Solver, ODE or SDE. Default [`DpmSolverAlgorithm::DpmSolverPlusPlus`].
    pub algorithm_type: DpmSolverAlgorithm,
    /// The second-order update. Default [`DpmSolverType::Midpoint`].
    pub solver_type: DpmSolverType,
    /// With fewer than 15 steps, use first order on the last step and at most second order on
    /// the one before (more stable for few steps). Default `true`.
    pub lower_order_final: bool,
    /// Use first order (Euler) on the last step whatever the step count. Default `false`.
    pub euler_at_final: bool,
    /// Replace the timesteps' sigmas by `n` Karras sigmas between the smallest and largest
    /// training sigma (Karras et al., arXiv 2206.00364) and the timesteps by theirs (rounded,
    /// except on `squaredcos_cap_v2`, where they are truncated; small timesteps may repeat).
    /// Default `false`.
    pub use_karras_sigmas: bool,
    /// As `use_karras_sigmas`, with sigmas evenly spaced in `log sigma` (timesteps truncated).
    /// Default `false`. Not together with `use_karras_sigmas`.
    pub use_exponential_sigmas: bool,
    /// As `use_karras_sigmas`, with `lambda = log(alpha / sigma)` evenly spaced (Lu et al.,
    /// arXiv 2206.00927). Default `false`. Ignored under `use_karras_sigmas` (as diffusers).
    pub use_lu_lambdas: bool,
    /// Where the last step lands. Default [`FinalSigmas::Zero`]; the noise-prediction solvers
    /// (`dpmsolver`, `sde-dpmsolver`) need [`FinalSigmas::SigmaMin`].
    pub final_sigmas_type: FinalSigmas,
    /// Leave out the timesteps whose `lambda = log(alpha / sigma)` is below this (diffusers'
    /// `lambda_min_clipped`; `-5.1` stabilises the cosine schedule). Default `None`
    /// (diffusers' `-inf`: no clipping). Not with custom timesteps.
    pub lambda_min_clipped: Option<f64>,
    /// Whether the model's output carries a learned variance as a second half of channels,
    /// which the solver drops (with the epsilon prediction type, as diffusers). `None` (the
    /// default), [`VarianceType::Learned`] or [`VarianceType::LearnedRange`].
    pub variance_type: Option<VarianceType>,
    /// Dynamic thresholding of the predicted `x0` (Saharia et al., arXiv 2205.11487). Default
    /// `false`. For pixel-space models only.
    pub thresholding: bool,
    /// The quantile of `|x0|` that thresholding clamps to. Default 0.995.
    pub dynamic_thresholding_ratio: f64,
    /// The largest threshold. Default 1.0 (then thresholding is clamping to `[-1, 1]`).
    pub sample_max_value: f64,
}

impl Default for DpmSolverConfig {
    fn default() -> Self {
        Self {
            num_inference_steps: 20,
            timestep_spacing: TimestepSpacing::Linspace,
            steps_offset: 0,
            timesteps: None,
            prediction_type: PredictionType::Epsilon,
            solver_order: 2,
            algorithm_type: DpmSolverAlgorithm::DpmSolverPlusPlus,
            solver_type: DpmSolverType::Midpoint,
            lower_order_final: true,
            euler_at_final: false,
            use_karras_sigmas: false,
            use_exponential_sigmas: false,
            use_lu_lambdas: false,
            final_sigmas_type: FinalSigmas::Zero,
            lambda_min_clipped: None,
            variance_type: None,
            thresholding: false,
            dynamic_thresholding_ratio: 0.995,
            sample_max_value: 1.0,
        }
    }
}

impl DpmSolverConfig {
    fn sigma_spacing(&self) -> SigmaSpacing {
        // diffusers' precedence in `set_timesteps`.
        if self.use_karras_sigmas {
            SigmaSpacing::Karras
        } else if self.use_lu_lambdas {
            SigmaSpacing::LuLambdas
        } else if self.use_exponential_sigmas {
            SigmaSpacing::Exponential
        } else {
            SigmaSpacing::Timesteps
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if !(1..=3).contains(&self.solver_order) {
            return bad(
                "solver_order",
                format!("must be 1, 2 or 3, got {}", self.solver_order),
            );
        }
        if self.algorithm_type == DpmSolverAlgorithm::SdeDpmSolver && self.solver_order == 3 {
            return bad(
                "solver_order",
                "sde-dpmsolver has no third-order update (diffusers fails on it); use 1 or 2"
                    .into(),
            );
        }
        if !self.algorithm_type.predicts_data() && self.final_sigmas_type == FinalSigmas::Zero {
            return bad(
                "final_sigmas_type",
                format!(
                    "`zero` is not supported for algorithm_type {} (as diffusers); use sigma_min",
                    self.algorithm_type
                ),
            );
        }
        if self.use_karras_sigmas && self.use_exponential_sigmas {
            return bad(
                "use_exponential_sigmas",
                "only one of use_karras_sigmas and use_exponential_sigmas can be set".into(),
            );
        }
        if let Some(v) = self.variance_type {
            if !v.is_learned() {
                return bad(
                    "variance_type",
                    format!("must be None, learned or learned_range for DPM-Solver, got {v}"),
                );
            }
        }
        if let Some(l) = self.lambda_min_clipped {
            if l.is_nan() {
                return bad("lambda_min_clipped", "must not be NaN".into());
            }
        }
        check_thresholding(
            self.thresholding,
            self.dynamic_thresholding_ratio,
            self.sample_max_value,
        )
    }
}

/// The state DPM-Solver keeps between steps: the previous converted model outputs (data
/// predictions for DPM-Solver++, noise predictions for DPM-Solver), newest last, each with the
/// plan index of every sample when it was made.
///
/// A step uses an output of an earlier step for a sample only when that sample took the plan
/// steps just before; otherwise (first step, after [`Sampler::reset`], a skipped or repeated
/// step) it lowers the order. So a stale state can never be misused.
#[derive(Debug, Clone, Default)]
pub struct DpmSolverState {
    history: Vec<(Tensor, Vec<usize>)>,
}

impl DpmSolverState {
    /// The previous converted model output and the plan index of each sample, if any.
    pub fn previous(&self) -> Option<(&Tensor, &[usize])> {
        self.history.last().map(|(t, i)| (t, i.as_slice()))
    }

    /// Whether no step has been taken since the last reset.
    pub fn is_empty(&self) -> bool {
        self.history.is_empty()
    }
}

/// DPM-Solver(++): multistep solvers of the diffusion ODE or SDE (Lu et al., arXiv 2206.00927,
/// 2211.01095), as diffusers' `DPMSolverMultistepScheduler`; by default DPM-Solver++ 2M
/// (Algorithm 2 of arXiv 2211.01095: midpoint form, first order on the first and last steps,
/// final sigma 0).
///
/// It works on `lambda = log(alpha / sigma)`; the sigmas of the plan are the `f32` values
/// diffusers computes, and the update follows diffusers' `f32` arithmetic term by term. The
/// sampler keeps an explicit [`DpmSolverState`]. The SDE variants take noise at every step.
#[derive(Debug, Clone)]
pub struct DpmSolverSampler {
    plan: Plan,
    /// Variance-exploding sigma of each plan timestep, then the final one.
    sigmas: Vec<f64>,
    order: usize,
    algorithm: DpmSolverAlgorithm,
    solver_type: DpmSolverType,
    lower_order_final: bool,
    euler_at_final: bool,
    final_zero: bool,
    learned_variance: bool,
    threshold: Option<(f64, f64)>,
    state: DpmSolverState,
}

/// `(alpha_t, sigma_t)` of a variance-exploding sigma in `f32` (diffusers'
/// `_sigma_to_alpha_sigma_t`).
fn alpha_sigma(s: f32) -> (f32, f32) {
    let alpha = 1.0 / (s * s + 1.0).sqrt();
    (alpha, s * alpha)
}

/// `lambda = log(alpha) - log(sigma)` in `f32`.
fn lambda(s: f32) -> f32 {
    let (a, sg) = alpha_sigma(s);
    a.ln() - sg.ln()
}

/// `T` minus the number of training timesteps with `lambda < lambda_min_clipped` (diffusers'
/// `last_timestep`).
fn clipped_last_timestep(
    schedule: &NoiseSchedule,
    lambda_min_clipped: Option<f64>,
) -> Result<usize> {
    let t = schedule.num_train_timesteps();
    let Some(min) = lambda_min_clipped else {
        return Ok(t);
    };
    let ac = schedule.alphas_cumprod();
    let clipped = ac
        .iter()
        .enumerate()
        .filter(|&(i, &a)| {
            let mut a = a as f32;
            if i == t - 1 && schedule.config().rescale_betas_zero_snr {
                a = 2f32.powi(-24);
            }
            let l = a.sqrt().ln() - (1.0 - a).sqrt().ln();
            (l as f64) < min
        })
        .count();
    if clipped >= t {
        return Err(Error::InvalidConfig {
            field: "lambda_min_clipped",
            reason: format!("{min} clips every training timestep"),
        });
    }
    Ok(t - clipped)
}

/// Per-sample coefficients of one update: `x = a x + b D0 + p D1 + q D2 + n noise`.
#[derive(Default)]
struct Coefs {
    a: Vec<f64>,
    b: Vec<f64>,
    p: Vec<f64>,
    q: Vec<f64>,
    n: Vec<f64>,
    /// `1 / r0`, `1 / r1`, `r0 / (r0 + r1)` and `1 / (r0 + r1)` of the differences.
    inv_r0: Vec<f64>,
    inv_r1: Vec<f64>,
    k01: Vec<f64>,
    inv_r01: Vec<f64>,
}

impl DpmSolverSampler {
    /// Builds the sampler for `schedule`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a bad step count, custom timesteps or option (the
    /// error names the field), or a plan with repeated timesteps where diffusers' steps would
    /// not match (`leading` spacing with `n + 1 > T`; a sigma spacing that repeats the first
    /// timestep, such as Karras sigmas on the cosine schedule). Karras, exponential or Lu sigmas
    /// may repeat later timesteps (e.g. 50 Karras steps on Stable Diffusion's schedule end
    /// `1, 1, 0`): each step then takes the next plan entry, as in diffusers.
    pub fn new(schedule: &NoiseSchedule, config: DpmSolverConfig) -> Result<Self> {
        config.validate()?;
        let spacing = config.sigma_spacing();
        let t_train = schedule.num_train_timesteps();
        let n = config.num_inference_steps;
        let (base, custom) = match &config.timesteps {
            Some(ts) => (ts.iter().map(|&t| t as f64).collect::<Vec<_>>(), true),
            None => {
                let last = clipped_last_timestep(schedule, config.lambda_min_clipped)?;
                let ts = inference_timesteps_below(
                    TimestepRule::DpmSolver,
                    config.timestep_spacing,
                    n,
                    config.steps_offset,
                    t_train,
                    last,
                )?;
                (ts, false)
            }
        };
        check_custom_with_spacing(custom, spacing)?;
        if custom {
            if config.lambda_min_clipped.is_some() {
                return Err(Error::InvalidConfig {
                    field: "lambda_min_clipped",
                    reason:
                        "clips the computed timesteps; it cannot be combined with custom timesteps"
                            .into(),
                });
            }
            validate_plan(&base, true, t_train)?;
        }
        let table = sigma_table_f32(schedule);
        let log_table = log_table_f32(&table);
        let (s_min, s_max) = (table[0] as f64, table[t_train - 1] as f64);
        let cosine = schedule.config().beta_schedule == BetaSchedule::SquaredcosCapV2;
        // diffusers rounds the timesteps of Karras and Lu sigmas (except on the cosine schedule)
        // and then truncates them to integers.
        let to_t = |s: &f64, round: bool| {
            let t = sigma_to_t(*s, &log_table);
            if round {
                t.round_ties_even()
            } else {
                t.trunc()
            }
        };
        let (timesteps, sigmas) = match spacing {
            SigmaSpacing::Timesteps => {
                let s = interp_sigmas(&base, &table);
                (base, s)
            }
            SigmaSpacing::Karras => {
                let s = karras_sigmas(s_min, s_max, n);
                (s.iter().map(|v| to_t(v, !cosine)).collect(), s)
            }
            SigmaSpacing::LuLambdas => {
                let s = lu_sigmas(log_table[0] as f64, log_table[t_train - 1] as f64, n);
                (s.iter().map(|v| to_t(v, !cosine)).collect(), s)
            }
            SigmaSpacing::Exponential => {
                let s = exponential_sigmas(s_min, s_max, n);
                (s.iter().map(|v| to_t(v, false)).collect(), s)
            }
        };
        validate_derived_plan(&timesteps, spacing, t_train, true)?;
        let mut sigmas: Vec<f64> = sigmas.into_iter().map(|v| v as f32 as f64).collect();
        sigmas.push(match config.final_sigmas_type {
            FinalSigmas::Zero => 0.0,
            FinalSigmas::SigmaMin => s_min,
        });
        Ok(Self {
            plan: Plan {
                timesteps,
                prediction_type: config.prediction_type,
                init_noise_sigma: 1.0,
            },
            sigmas,
            order: config.solver_order,
            algorithm: config.algorithm_type,
            solver_type: config.solver_type,
            lower_order_final: config.lower_order_final,
            euler_at_final: config.euler_at_final,
            final_zero: config.final_sigmas_type == FinalSigmas::Zero,
            learned_variance: config.variance_type.is_some_and(VarianceType::is_learned),
            threshold: config
                .thresholding
                .then_some((config.dynamic_thresholding_ratio, config.sample_max_value)),
            state: DpmSolverState::default(),
        })
    }

    /// The multistep state.
    pub fn state(&self) -> &DpmSolverState {
        &self.state
    }

    /// The variance-exploding sigmas of the plan's timesteps, followed by the final one (0 for
    /// [`FinalSigmas::Zero`]).
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// The model's output without a learned-variance half (diffusers keeps the first channels
    /// for epsilon prediction).
    fn mean_output(&self, model_output: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let learned = self.learned_variance && self.plan.prediction_type == PredictionType::Epsilon;
        if learned && sample.rank() >= 2 && model_output.rank() == sample.rank() {
            let c = sample.dims()[1];
            if model_output.dims()[1] == 2 * c {
                return Ok(model_output.narrow(1, 0, c)?);
            }
        }
        same_shape(sample, model_output, "DpmSolverSampler::step: model_output")?;
        Ok(model_output.clone())
    }

    /// diffusers' `convert_model_output`: the data prediction (`++`) or the noise prediction,
    /// thresholded if asked.
    fn convert(&self, out: &Tensor, x: &Tensor, alpha: &[f64], sigma: &[f64]) -> Result<Tensor> {
        let th = |x0: &Tensor| match self.threshold {
            Some((ratio, max)) => threshold_sample(x0, ratio, max),
            None => Ok(x0.clone()),
        };
        let pred = self.plan.prediction_type;
        if self.algorithm.predicts_data() {
            let x0 = match pred {
                PredictionType::Epsilon => div(&(x - scale(out, sigma)?)?, alpha)?,
                PredictionType::Sample => out.clone(),
                PredictionType::VPrediction => (scale(x, alpha)? - scale(out, sigma)?)?,
            };
            th(&x0)
        } else {
            let eps = match pred {
                PredictionType::Epsilon => out.clone(),
                PredictionType::Sample => div(&(x - scale(out, alpha)?)?, sigma)?,
                PredictionType::VPrediction => (scale(out, alpha)? + scale(x, sigma)?)?,
            };
            if self.threshold.is_none() {
                return Ok(eps);
            }
            let x0 = th(&div(&(x - scale(&eps, sigma)?)?, alpha)?)?;
            div(&(x - scale(&x0, alpha)?)?, sigma)
        }
    }

    /// The plan index of each sample's timestep. A timestep the plan repeats (Karras or Lu
    /// sigmas crowding the small timesteps) is the first occurrence after the sample's previous
    /// step, as diffusers' step counter goes.
    fn step_indices(&self, ts: &[f64]) -> Result<Vec<usize>> {
        let mut idx = plan_indices(&self.plan.timesteps, ts, "DpmSolverSampler::step")?;
        let previous = self
            .state
            .history
            .last()
            .map(|(_, pi)| pi)
            .filter(|pi| pi.len() == ts.len());
        if let Some(previous) = previous {
            for (b, i) in idx.iter_mut().enumerate() {
                let t = self.plan.timesteps[*i];
                if let Some(next) = (previous[b] + 1..self.plan.timesteps.len())
                    .find(|&j| self.plan.timesteps[j] == t)
                {
                    *i = next;
                }
            }
        }
        Ok(idx)
    }

    /// The order of the update for a sample at plan index `i` with `k` consecutive earlier
    /// outputs available (diffusers' `lower_order_nums`, `lower_order_final`,
    /// `lower_order_second`).
    fn order_at(&self, i: usize, k: usize) -> usize {
        let n = self.plan.timesteps.len();
        let few = self.lower_order_final && n < 15;
        let order = self.order.min(1 + k);
        if i + 1 == n && (self.euler_at_final || few || self.final_zero) {
            1
        } else if i + 2 == n && few {
            order.min(2)
        } else {
            order
        }
    }

    /// The update coefficients of one sample at plan index `i` with the given order, in `f32`
    /// as diffusers computes them.
    fn coefs_into(&self, c: &mut Coefs, i: usize, order: usize) {
        let sg = |j: usize| self.sigmas[j] as f32;
        let (alpha_t, sigma_t) = alpha_sigma(sg(i + 1));
        let (alpha_s0, sigma_s0) = alpha_sigma(sg(i));
        let h = lambda(sg(i + 1)) - lambda(sg(i));
        let (mut r0, mut r1) = (f32::NAN, f32::NAN);
        if order >= 2 {
            r0 = (lambda(sg(i)) - lambda(sg(i - 1))) / h;
        }
        if order >= 3 {
            r1 = (lambda(sg(i - 1)) - lambda(sg(i - 2))) / h;
        }
        let heun = self.solver_type == DpmSolverType::Heun;
        // x = a x + b D0 + p D1 + q D2 + n noise, term by term as diffusers writes it.
        let (a, b, p, q, nz) = match self.algorithm {
            DpmSolverAlgorithm::DpmSolverPlusPlus => {
                let bb = alpha_t * ((-h).exp() - 1.0);
                let c1 = alpha_t * (((-h).exp() - 1.0) / h + 1.0);
                let (p, q) = match (order, heun) {
                    (1, _) => (0.0, 0.0),
                    (2, false) => (-(0.5 * bb), 0.0),
                    (2, true) => (c1, 0.0),
                    _ => (c1, -(alpha_t * (((-h).exp() - 1.0 + h) / (h * h) - 0.5))),
                };
                (sigma_t / sigma_s0, -bb, p, q, 0.0)
            }
            DpmSolverAlgorithm::DpmSolver => {
                let bb = sigma_t * (h.exp() - 1.0);
                let c1 = -(sigma_t * ((h.exp() - 1.0) / h - 1.0));
                let (p, q) = match (order, heun) {
                    (1, _) => (0.0, 0.0),
                    (2, false) => (-(0.5 * bb), 0.0),
                    (2, true) => (c1, 0.0),
                    _ => (c1, -(sigma_t * ((h.exp() - 1.0 - h) / (h * h) - 0.5))),
                };
                (alpha_t / alpha_s0, -bb, p, q, 0.0)
            }
            DpmSolverAlgorithm::SdeDpmSolverPlusPlus => {
                let e2 = (-2.0 * h).exp();
                let bb = alpha_t * (1.0 - e2);
                let c1 = alpha_t * ((1.0 - e2) / (-2.0 * h) + 1.0);
                let (p, q) = match (order, heun) {
                    (1, _) => (0.0, 0.0),
                    (2, false) => (0.5 * bb, 0.0),
                    (2, true) => (c1, 0.0),
                    _ => {
                        let two_h = 2.0 * h;
                        (c1, alpha_t * ((1.0 - e2 - 2.0 * h) / (two_h * two_h) - 0.5))
                    }
                };
                let a = sigma_t / sigma_s0 * (-h).exp();
                (a, bb, p, q, sigma_t * (1.0 - e2).sqrt())
            }
            DpmSolverAlgorithm::SdeDpmSolver => {
                let bb = sigma_t * (h.exp() - 1.0);
                let p = match (order, heun) {
                    (1, _) => 0.0,
                    (_, false) => -bb,
                    (_, true) => -(2.0 * (sigma_t * ((h.exp() - 1.0) / h - 1.0))),
                };
                let nz = sigma_t * ((2.0 * h).exp() - 1.0).sqrt();
                (alpha_t / alpha_s0, -(2.0 * bb), p, 0.0, nz)
            }
        };
        c.a.push(a as f64);
        c.b.push(b as f64);
        c.p.push(p as f64);
        c.q.push(q as f64);
        c.n.push(nz as f64);
        c.inv_r0
            .push(if order >= 2 { (1.0 / r0) as f64 } else { 0.0 });
        c.inv_r1
            .push(if order >= 3 { (1.0 / r1) as f64 } else { 0.0 });
        c.k01.push(if order >= 3 {
            (r0 / (r0 + r1)) as f64
        } else {
            0.0
        });
        c.inv_r01.push(if order >= 3 {
            (1.0 / (r0 + r1)) as f64
        } else {
            0.0
        });
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
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let batch = batch_of(sample, "DpmSolverSampler::step: sample")?;
        let model_output = self.mean_output(model_output, sample)?;
        let ts = timestep_values(t, batch, "DpmSolverSampler::step: t")?;
        let idx = self.step_indices(&ts)?;

        let (alpha, sigma): (Vec<f64>, Vec<f64>) = idx
            .iter()
            .map(|&i| {
                let (a, s) = alpha_sigma(self.sigmas[i] as f32);
                (a as f64, s as f64)
            })
            .unzip();
        let m0 = self.convert(&model_output, sample, &alpha, &sigma)?;

        // The earlier outputs usable for each sample: those made at the plan steps just before.
        let hist: Vec<&(Tensor, Vec<usize>)> = self
            .state
            .history
            .iter()
            .rev()
            .filter(|(m, _)| m.dims() == m0.dims())
            .take(2)
            .collect();
        let mut c = Coefs::default();
        let mut max_order = 1;
        for (b, &i) in idx.iter().enumerate() {
            let k = hist
                .iter()
                .enumerate()
                .take_while(|(j, (_, pi))| pi[b] + j + 1 == i)
                .count();
            let order = self.order_at(i, k);
            max_order = max_order.max(order);
            self.coefs_into(&mut c, i, order);
        }

        let mut out = (scale(sample, &c.a)? + scale(&m0, &c.b)?)?;
        if max_order >= 2 {
            let m1 = &hist[0].0;
            let d1_0 = scale(&(&m0 - m1)?, &c.inv_r0)?;
            if max_order >= 3 {
                let m2 = &hist[1].0;
                let d1_1 = scale(&(m1 - m2)?, &c.inv_r1)?;
                let diff = (&d1_0 - &d1_1)?;
                let d1 = (&d1_0 + scale(&diff, &c.k01)?)?;
                let d2 = scale(&diff, &c.inv_r01)?;
                out = ((out + scale(&d1, &c.p)?)? + scale(&d2, &c.q)?)?;
            } else {
                out = (out + scale(&d1_0, &c.p)?)?;
            }
        }
        if self.algorithm.is_stochastic() {
            let noise = noise.ok_or(Error::MissingNoise {
                sampler: "DpmSolverSampler",
            })?;
            same_shape(sample, noise, "DpmSolverSampler::step: noise")?;
            out = (out + noise.broadcast_mul(&per_sample(&c.n, noise)?)?)?;
        }
        self.state.history.push((m0, idx));
        let keep = self.order.max(2) - 1;
        if self.state.history.len() > keep {
            self.state.history.remove(0);
        }
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
                let (alpha, sigma) = alpha_sigma(self.sigmas[i] as f32);
                (alpha as f64, sigma as f64)
            })
            .unzip();
        Ok((scale(x0, &a)? + scale(noise, &s)?)?)
    }

    fn needs_noise(&self) -> bool {
        self.algorithm.is_stochastic()
    }

    fn reset(&mut self) {
        self.state = DpmSolverState::default();
    }
}
