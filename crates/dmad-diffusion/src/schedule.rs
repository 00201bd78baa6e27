//! Noise schedules (betas, alpha_bar) and the forward process.

use std::fmt;
use std::str::FromStr;

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::util::{batch_of, lincomb, same_shape, timestep_values};
use crate::{Error, Result};

/// How the betas grow over the training timesteps, with diffusers' `beta_schedule` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BetaSchedule {
    /// `"linear"`: betas evenly spaced from `beta_start` to `beta_end` (Ho et al., arXiv
    /// 2006.11239). The default.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "linear"))]
    Linear,
    /// `"scaled_linear"`: square roots of the betas evenly spaced (Stable Diffusion).
    #[cfg_attr(feature = "serde", serde(rename = "scaled_linear"))]
    ScaledLinear,
    /// `"squaredcos_cap_v2"`: the cosine schedule of Nichol & Dhariwal (arXiv 2102.09672),
    /// `alpha_bar(t) = cos((t + 0.008) / 1.008 * pi / 2)^2`, betas capped at 0.999.
    /// `beta_start` and `beta_end` are not used.
    #[cfg_attr(feature = "serde", serde(rename = "squaredcos_cap_v2"))]
    SquaredcosCapV2,
    /// `"sigmoid"`: `sigmoid(linspace(-6, 6)) * (beta_end - beta_start) + beta_start` (GeoDiff).
    #[cfg_attr(feature = "serde", serde(rename = "sigmoid"))]
    Sigmoid,
}

impl BetaSchedule {
    /// diffusers' name of this schedule.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::ScaledLinear => "scaled_linear",
            Self::SquaredcosCapV2 => "squaredcos_cap_v2",
            Self::Sigmoid => "sigmoid",
        }
    }
}

impl fmt::Display for BetaSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BetaSchedule {
    type Err = Error;

    /// Parses diffusers' names.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "linear" => Ok(Self::Linear),
            "scaled_linear" => Ok(Self::ScaledLinear),
            "squaredcos_cap_v2" => Ok(Self::SquaredcosCapV2),
            "sigmoid" => Ok(Self::Sigmoid),
            other => Err(Error::InvalidConfig {
                field: "beta_schedule",
                reason: format!(
                    "unknown value {other:?}; expected linear, scaled_linear, squaredcos_cap_v2 or sigmoid"
                ),
            }),
        }
    }
}

/// The configuration of a [`NoiseSchedule`], with diffusers' names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct NoiseScheduleConfig {
    /// Number of training timesteps `T`; timesteps run `0..T`. Default 1000. At least 2.
    pub num_train_timesteps: usize,
    /// First beta of the linear, scaled-linear and sigmoid schedules. Default `0.0001`.
    pub beta_start: f64,
    /// Last beta of the linear, scaled-linear and sigmoid schedules. Default `0.02`.
    pub beta_end: f64,
    /// How the betas grow. Default [`BetaSchedule::Linear`].
    pub beta_schedule: BetaSchedule,
    /// Rescale the betas so that the last timestep has zero SNR (Lin et al., arXiv 2305.08891,
    /// Algorithm 1). Default `false`. Use it with v-prediction: at zero SNR an epsilon model
    /// cannot recover `x0`.
    pub rescale_betas_zero_snr: bool,
}

impl Default for NoiseScheduleConfig {
    fn default() -> Self {
        Self {
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            rescale_betas_zero_snr: false,
        }
    }
}

impl NoiseScheduleConfig {
    /// Validates the config and computes the schedule's tables.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `num_train_timesteps < 2`, or (for the schedules that use
    /// them) `beta_start`/`beta_end` are not in `(0, 1)`.
    pub fn build(&self) -> Result<NoiseSchedule> {
        NoiseSchedule::new(self.clone())
    }
}

/// A discrete noise schedule: betas and `alpha_bar` (diffusers' `alphas_cumprod`) for the
/// training timesteps `0..T`, and the forward process built on them.
///
/// The tables are stored as `f64` but computed as diffusers computes them in PyTorch, so that
/// they agree with diffusers to the last bit of `f32`: the betas are rounded to `f32`,
/// `alphas = 1 - betas` in `f32`, and `alphas_cumprod` is their running product accumulated in
/// `f64` and rounded to `f32` (what `torch.cumprod` does on the CPU).
///
/// The forward process is `x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps`
/// (Ho et al., arXiv 2006.11239).
///
/// # Example
/// ```
/// use dmad_diffusion::{BetaSchedule, NoiseScheduleConfig};
///
/// # fn main() -> dmad_diffusion::Result<()> {
/// let schedule = NoiseScheduleConfig {
///     beta_schedule: BetaSchedule::SquaredcosCapV2,
///     ..Default::default()
/// }
/// .build()?;
/// assert_eq!(schedule.alphas_cumprod().len(), 1000);
/// assert!(schedule.alphas_cumprod()[999] < 1e-3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    config: NoiseScheduleConfig,
    betas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
}

fn linspace(start: f64, end: f64, n: usize, i: usize) -> f64 {
    start + (end - start) * i as f64 / (n - 1) as f64
}

fn check_beta(field: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            field,
            reason: format!("must be in (0, 1), got {v}"),
        })
    }
}

/// Algorithm 1 of Lin et al. (arXiv 2305.08891): shift and scale `sqrt(alpha_bar)` so that the
/// last one is zero and the first is unchanged, then recover the betas. Computed in `f32` step
/// by step as diffusers does in PyTorch (the cumulative product accumulates in `f64`), since
/// the recovered small betas suffer cancellation that must be reproduced to match.
fn rescale_zero_terminal_snr(betas: &[f64]) -> Vec<f64> {
    let mut acc = 1.0f64;
    let mut sqrt_ab: Vec<f32> = betas
        .iter()
        .map(|&b| {
            acc *= (1.0f32 - b as f32) as f64;
            (acc as f32).sqrt()
        })
        .collect();
    let first = sqrt_ab[0];
    let last = sqrt_ab[sqrt_ab.len() - 1];
    let factor = first / (first - last);
    for s in &mut sqrt_ab {
        *s -= last;
        *s *= factor;
    }
    let ab: Vec<f32> = sqrt_ab.iter().map(|s| s * s).collect();
    (0..ab.len())
        .map(|i| {
            let alpha = if i == 0 { ab[0] } else { ab[i] / ab[i - 1] };
            (1.0f32 - alpha) as f64
        })
        .collect()
}

impl NoiseSchedule {
    /// Computes the schedule of `config`.
    ///
    /// # Errors
    /// As [`NoiseScheduleConfig::build`].
    pub fn new(config: NoiseScheduleConfig) -> Result<Self> {
        let n = config.num_train_timesteps;
        if n < 2 {
            return Err(Error::InvalidConfig {
                field: "num_train_timesteps",
                reason: format!("must be at least 2, got {n}"),
            });
        }
        if config.beta_schedule != BetaSchedule::SquaredcosCapV2 {
            check_beta("beta_start", config.beta_start)?;
            check_beta("beta_end", config.beta_end)?;
        }
        let (b0, b1) = (config.beta_start, config.beta_end);
        let f32r = |x: f64| x as f32 as f64;
        let betas: Vec<f64> = match config.beta_schedule {
            BetaSchedule::Linear => (0..n).map(|i| f32r(linspace(b0, b1, n, i))).collect(),
            BetaSchedule::ScaledLinear => (0..n)
                .map(|i| {
                    let s = f32r(linspace(b0.sqrt(), b1.sqrt(), n, i));
                    f32r(s * s)
                })
                .collect(),
            BetaSchedule::SquaredcosCapV2 => {
                let alpha_bar = |t: f64| {
                    ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
                        .cos()
                        .powi(2)
                };
                (0..n)
                    .map(|i| {
                        let t1 = i as f64 / n as f64;
                        let t2 = (i + 1) as f64 / n as f64;
                        f32r((1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999))
                    })
                    .collect()
            }
            BetaSchedule::Sigmoid => (0..n)
                .map(|i| {
                    let x = f32r(linspace(-6.0, 6.0, n, i));
                    let s = f32r(1.0 / (1.0 + (-x).exp()));
                    f32r(s * (b1 - b0) + b0)
                })
                .collect(),
        };
        Ok(Self::from_betas_unchecked(config, betas))
    }

    /// A schedule with given betas (diffusers' `trained_betas`): `config.beta_schedule`,
    /// `beta_start` and `beta_end` are not used; `rescale_betas_zero_snr` still applies. The
    /// betas are rounded to `f32`, as diffusers stores them.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (field `trained_betas`) if there are not
    /// `config.num_train_timesteps` betas (at least 2), or one is not in `(0, 1]`.
    pub fn from_betas(config: NoiseScheduleConfig, betas: &[f64]) -> Result<Self> {
        let n = config.num_train_timesteps;
        if betas.len() != n || n < 2 {
            return Err(Error::InvalidConfig {
                field: "trained_betas",
                reason: format!(
                    "{} betas for num_train_timesteps = {n} (need that many, at least 2)",
                    betas.len()
                ),
            });
        }
        if let Some(b) = betas.iter().find(|b| !(**b > 0.0 && **b <= 1.0)) {
            return Err(Error::InvalidConfig {
                field: "trained_betas",
                reason: format!("every beta must be in (0, 1], got {b}"),
            });
        }
        let betas = betas.iter().map(|&b| b as f32 as f64).collect();
        Ok(Self::from_betas_unchecked(config, betas))
    }

    fn from_betas_unchecked(config: NoiseScheduleConfig, mut betas: Vec<f64>) -> Self {
        let f32r = |x: f64| x as f32 as f64;
        if config.rescale_betas_zero_snr {
            betas = rescale_zero_terminal_snr(&betas)
                .into_iter()
                .map(f32r)
                .collect();
        }
        let mut acc = 1.0f64;
        let alphas_cumprod = betas
            .iter()
            .map(|&b| {
                acc *= f32r(1.0 - b);
                f32r(acc)
            })
            .collect();
        Self {
            config,
            betas,
            alphas_cumprod,
        }
    }

    /// The configuration this schedule was built from.
    pub fn config(&self) -> &NoiseScheduleConfig {
        &self.config
    }

    /// Number of training timesteps `T`.
    pub fn num_train_timesteps(&self) -> usize {
        self.config.num_train_timesteps
    }

    /// `beta_t` for `t = 0..T`.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// `alpha_bar_t = prod_{s <= t} (1 - beta_s)` for `t = 0..T` (diffusers' `alphas_cumprod`).
    pub fn alphas_cumprod(&self) -> &[f64] {
        &self.alphas_cumprod
    }

    /// The variance-exploding noise levels `sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t)`
    /// (Karras et al., arXiv 2206.00364); infinite where `alpha_bar_t = 0` (zero SNR).
    pub fn sigmas(&self) -> Vec<f64> {
        self.alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt())
            .collect()
    }

    /// The signal-to-noise ratio `alpha_bar_t / (1 - alpha_bar_t)` for `t = 0..T`.
    pub fn snr(&self) -> Vec<f64> {
        self.alphas_cumprod.iter().map(|&a| a / (1.0 - a)).collect()
    }

    /// `alpha_bar` at a possibly fractional timestep `t` in `[0, T - 1]`.
    ///
    /// Whole timesteps read the table. Between them, `sigma = sqrt((1 - alpha_bar) /
    /// alpha_bar)` is interpolated linearly, as diffusers' Euler scheduler does, and
    /// `alpha_bar = 1 / (1 + sigma^2)`.
    ///
    /// # Errors
    /// [`Error::InvalidTimestep`] if `t` is not finite or outside `[0, T - 1]`.
    pub fn alpha_bar_at(&self, t: f64) -> Result<f64> {
        let last = (self.num_train_timesteps() - 1) as f64;
        if !(0.0..=last).contains(&t) {
            return Err(Error::InvalidTimestep {
                timestep: t,
                context: "NoiseSchedule",
                reason: format!("training timesteps run from 0 to {last}"),
            });
        }
        if t.fract() == 0.0 {
            return Ok(self.alphas_cumprod[t as usize]);
        }
        let lo = t.floor() as usize;
        let w = t - lo as f64;
        let sig = |a: f64| ((1.0 - a) / a).sqrt();
        let s = (1.0 - w) * sig(self.alphas_cumprod[lo]) + w * sig(self.alphas_cumprod[lo + 1]);
        Ok(1.0 / (1.0 + s * s))
    }

    /// `alpha_bar` for each per-sample timestep of `t: [batch]`.
    pub(crate) fn alpha_bars(
        &self,
        t: &Tensor,
        batch: usize,
        context: &'static str,
    ) -> Result<Vec<f64>> {
        timestep_values(t, batch, context)?
            .into_iter()
            .map(|v| self.alpha_bar_at(v))
            .collect()
    }

    /// The forward process: `x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise`, one
    /// timestep per sample (diffusers' `add_noise`).
    ///
    /// # Shapes
    /// `x0`, `noise`: `[batch, ...]`; `t`: `[batch]` (any dtype); returns `[batch, ...]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes do not fit, [`Error::InvalidTimestep`] if a
    /// timestep is outside `[0, T - 1]`.
    pub fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        same_shape(x0, noise, "add_noise: noise")?;
        let batch = batch_of(x0, "add_noise: x0")?;
        let ab = self.alpha_bars(t, batch, "add_noise: t")?;
        let a: Vec<f64> = ab.iter().map(|a| a.sqrt()).collect();
        let s: Vec<f64> = ab.iter().map(|a| (1.0 - a).sqrt()).collect();
        lincomb(&a, x0, &s, noise)
    }

    /// The velocity target `v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x0` (Salimans &
    /// Ho, arXiv 2202.00512; diffusers' `get_velocity`).
    ///
    /// # Shapes
    /// As [`NoiseSchedule::add_noise`].
    ///
    /// # Errors
    /// As [`NoiseSchedule::add_noise`].
    pub fn velocity(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        same_shape(x0, noise, "velocity: noise")?;
        let batch = batch_of(x0, "velocity: x0")?;
        let ab = self.alpha_bars(t, batch, "velocity: t")?;
        let a: Vec<f64> = ab.iter().map(|a| a.sqrt()).collect();
        let s: Vec<f64> = ab.iter().map(|a| -(1.0 - a).sqrt()).collect();
        lincomb(&a, noise, &s, x0)
    }

    /// Converts a model output of one prediction type into another, given the noisy sample
    /// `x_t` it was predicted from: epsilon, `v` and `x0` are linear in each other for fixed
    /// `x_t` and `t`.
    ///
    /// # Shapes
    /// `output`, `x_t`: `[batch, ...]`; `t`: `[batch]`.
    ///
    /// # Errors
    /// As [`NoiseSchedule::add_noise`]. Converting to or from epsilon at a timestep with
    /// `alpha_bar = 0` (zero SNR) or `alpha_bar = 1` gives non-finite values, not an error.
    pub fn convert_prediction(
        &self,
        output: &Tensor,
        from: PredictionType,
        to: PredictionType,
        x_t: &Tensor,
        t: &Tensor,
    ) -> Result<Tensor> {
        same_shape(x_t, output, "convert_prediction: output")?;
        if from == to {
            return Ok(output.clone());
        }
        let batch = batch_of(x_t, "convert_prediction: x_t")?;
        let ab = self.alpha_bars(t, batch, "convert_prediction: t")?;
        let (cx, co): (Vec<f64>, Vec<f64>) = ab
            .iter()
            .map(|&a| {
                let (x0, eps) = x0_eps_coefs(from, a);
                let target = match to {
                    PredictionType::Sample => x0,
                    PredictionType::Epsilon => eps,
                    PredictionType::VPrediction => {
                        let (sa, s1) = (a.sqrt(), (1.0 - a).sqrt());
                        [sa * eps[0] - s1 * x0[0], sa * eps[1] - s1 * x0[1]]
                    }
                };
                (target[0], target[1])
            })
            .unzip();
        lincomb(&cx, x_t, &co, output)
    }
}

/// For a model output of type `kind` at `alpha_bar = a`, the coefficients `[c_x, c_out]` with
/// `x0 = c_x x_t + c_out out` and `eps = c_x' x_t + c_out' out` (diffusers' formulas).
pub(crate) fn x0_eps_coefs(kind: PredictionType, a: f64) -> ([f64; 2], [f64; 2]) {
    let (sa, s1) = (a.sqrt(), (1.0 - a).sqrt());
    match kind {
        PredictionType::Epsilon => ([1.0 / sa, -s1 / sa], [0.0, 1.0]),
        PredictionType::VPrediction => ([sa, -s1], [s1, sa]),
        PredictionType::Sample => ([0.0, 1.0], [1.0 / s1, -sa / s1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_configs() {
        let bad = |c: NoiseScheduleConfig, f: &str| match c.build() {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, f),
            other => panic!("expected InvalidConfig({f}), got {other:?}"),
        };
        bad(
            NoiseScheduleConfig {
                num_train_timesteps: 1,
                ..Default::default()
            },
            "num_train_timesteps",
        );
        bad(
            NoiseScheduleConfig {
                beta_start: 0.0,
                ..Default::default()
            },
            "beta_start",
        );
        bad(
            NoiseScheduleConfig {
                beta_end: f64::NAN,
                ..Default::default()
            },
            "beta_end",
        );
        assert!(matches!(
            "cosine".parse::<BetaSchedule>(),
            Err(Error::InvalidConfig {
                field: "beta_schedule",
                ..
            })
        ));
    }

    #[test]
    fn names_round_trip() {
        for s in [
            BetaSchedule::Linear,
            BetaSchedule::ScaledLinear,
            BetaSchedule::SquaredcosCapV2,
            BetaSchedule::Sigmoid,
        ] {
            assert_eq!(s.as_str().parse::<BetaSchedule>().unwrap(), s);
        }
    }

    #[test]
    fn fractional_alpha_bar_lies_between_neighbours() {
        let s = NoiseScheduleConfig::default().build().unwrap();
        let a = s.alpha_bar_at(500.5).unwrap();
        assert!(a < s.alphas_cumprod()[500] && a > s.alphas_cumprod()[501]);
        assert!(matches!(
            s.alpha_bar_at(1000.0),
            Err(Error::InvalidTimestep { .. })
        ));
        assert!(matches!(
            s.alpha_bar_at(-0.5),
            Err(Error::InvalidTimestep { .. })
        ));
    }
}
