//! Diffusion time estimation (DTE; Livernoche, Jain, Hezaveh, Ravanbakhsh, *On Diffusion
//! Modeling for Anomaly Detection*, arXiv 2305.18593) for tables `[n, features]`.
//!
//! DTE noises the training rows with the variance-exploding forward process
//! `x_t = x_0 + sigma_t eps`, `sigma_t^2 = 1 - alpha_bar_t` of a linear beta schedule
//! (`beta` from `1e-4` to `1e-2`), and scores a test row by the diffusion time that would
//! explain it: far from the normal data means a large time.
//!
//! - [`DteNonParametric`]: the closed-form posterior over the diffusion time from the mean
//!   squared distance `r^2` to the `k` nearest training rows. With a Gaussian kernel of
//!   variance `sigma_t^2` around the neighbours and a uniform prior over `t`,
//!   `p(t | x) ∝ (sigma_t^2)^(-d/2) exp(-r^2 / (2 sigma_t^2))`, which is the inverse-gamma
//!   density `InvGamma(sigma_t^2; d/2 - 1, r^2 / 2)` up to a constant, normalised over the
//!   training timesteps.
//! - [`DteInverseGamma`]: an MLP predicts `sqrt(beta)` of the inverse-gamma posterior
//!   `InvGamma(sigma^2; d/2 - 1, beta)` from a noised row, trained by maximum likelihood; the
//!   score uses the same discrete posterior with the predicted `beta`.
//! - [`DteCategorical`]: an MLP classifies the diffusion-time bin of a noised row (cross
//!   entropy); the score is the expected time under the predicted bin probabilities.
//!
//! Every DTE score is an expected diffusion time in training timesteps (`0..T`), or, with
//! [`DteEstimate::Mode`], its most probable timestep.

mod categorical;
mod inverse_gamma;
mod network;
mod nonparametric;

pub use categorical::{DteCategorical, DteCategoricalConfig};
pub use inverse_gamma::{DteInverseGamma, DteInverseGammaConfig};
pub use network::DteTrainConfig;
pub use nonparametric::{DteNonParametric, DteNonParametricConfig};

use candle_core::{DType, Tensor};
use dmad_diffusion::{BetaSchedule, NoiseScheduleConfig};

use crate::scorer::{check_batch, check_finite};
use crate::{Error, Result};

/// Which summary of the posterior over the diffusion time is the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DteEstimate {
    /// The expected timestep `sum_t t p(t | x)`. The default.
    #[default]
    Mean,
    /// The most probable timestep (the first one on ties), as the reference implementation's
    /// `argmax`.
    Mode,
}

/// `sigma_t^2 = 1 - alpha_bar_t` for `t = 0..T` of DTE's linear schedule, with `alpha_bar`
/// as `dmad_diffusion` (and PyTorch) computes it.
pub(crate) fn dte_variances(t: usize, beta_start: f64, beta_end: f64) -> Result<Vec<f64>> {
    let schedule = NoiseScheduleConfig {
        num_train_timesteps: t,
        beta_start,
        beta_end,
        beta_schedule: BetaSchedule::Linear,
        rescale_betas_zero_snr: false,
    }
    .build()?;
    Ok(schedule.alphas_cumprod().iter().map(|a| 1.0 - a).collect())
}

/// The posterior over the timesteps of `InvGamma(sigma_t^2; alpha, beta)` with a uniform
/// prior: `w_t ∝ (sigma_t^2)^(-(alpha + 1)) exp(-beta / sigma_t^2)`, normalised (computed in
/// log space).
pub(crate) fn time_posterior(alpha: f64, beta: f64, var: &[f64]) -> Vec<f64> {
    let logw: Vec<f64> = var
        .iter()
        .map(|&v| -(alpha + 1.0) * v.ln() - beta / v)
        .collect();
    let m = logw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = w.iter().sum();
    w.into_iter().map(|x| x / s).collect()
}

/// The mean or mode of a posterior over the timesteps `0..T`.
pub(crate) fn summarise(post: &[f64], estimate: DteEstimate) -> f64 {
    match estimate {
        DteEstimate::Mean => post.iter().enumerate().map(|(t, p)| t as f64 * p).sum(),
        DteEstimate::Mode => {
            let mut best = 0;
            for (t, &p) in post.iter().enumerate() {
                if p > post[best] {
                    best = t;
                }
            }
            best as f64
        }
    }
}

/// Checks the schedule fields shared by the DTE configurations.
pub(crate) fn check_schedule(t: usize, beta_start: f64, beta_end: f64) -> Result<()> {
    if t < 2 {
        return Err(Error::config(
            "num_train_timesteps",
            format!("must be at least 2, got {t}"),
        ));
    }
    if !(beta_start > 0.0 && beta_start < beta_end && beta_end < 1.0) {
        return Err(Error::config(
            "beta_start/beta_end",
            format!("need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}"),
        ));
    }
    Ok(())
}

/// The rows of a table `[n, d]` as `f32`, checked to be non-empty and finite.
pub(crate) fn table_rows(x: &Tensor, context: &'static str) -> Result<(Vec<f32>, usize, usize)> {
    check_batch(x, context, &[2])?;
    let (n, d) = x.dims2()?;
    let v = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    check_finite(&v, context)?;
    Ok((v, n, d))
}

/// Checks that a table to score has the training data's number of features.
pub(crate) fn check_features(
    x: &Tensor,
    d: usize,
    context: &'static str,
) -> Result<(Vec<f32>, usize)> {
    let (v, n, got) = table_rows(x, context)?;
    if got != d {
        return Err(Error::shape(
            context,
            format!("[batch, {d}] (the training data's features)"),
            x.dims(),
        ));
    }
    Ok((v, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posterior_is_normalised_and_summarised() {
        let var = dte_variances(300, 1e-4, 1e-2).unwrap();
        assert_eq!(var.len(), 300);
        assert!(var.windows(2).all(|w| w[1] > w[0]));
        let p = time_posterior(0.5, 0.3, &var);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let mean = summarise(&p, DteEstimate::Mean);
        assert!((0.0..300.0).contains(&mean));
        let mode = summarise(&p, DteEstimate::Mode) as usize;
        assert!(p.iter().all(|&q| q <= p[mode]));
        // beta = 0: the density grows as sigma shrinks, so all mass goes to small t.
        let p0 = time_posterior(1.0, 0.0, &var);
        assert_eq!(summarise(&p0, DteEstimate::Mode), 0.0);
    }

    #[test]
    fn bad_schedules_are_rejected() {
        assert!(check_schedule(1, 1e-4, 1e-2).is_err());
        assert!(check_schedule(10, 1e-2, 1e-4).is_err());
        assert!(check_schedule(10, 0.0, 1e-2).is_err());
        assert!(check_schedule(10, 1e-4, 1e-2).is_ok());
    }
}
