//! Building a sampler's timesteps from its config, and the `f32` sigma tables of the
//! sigma-parametrised samplers.

use crate::timesteps::{
    inference_timesteps, np_linspace, validate_plan, TimestepRule, TimestepSpacing,
};
use crate::{Error, NoiseSchedule, Result};

/// The timesteps of a sampler: `custom` if given (whole timesteps, in visiting order), else
/// diffusers' `rule` for the spacing. Returns the plan and whether it is custom.
pub(crate) fn resolve_timesteps(
    rule: TimestepRule,
    spacing: TimestepSpacing,
    num_inference_steps: usize,
    steps_offset: usize,
    custom: Option<&[u32]>,
    schedule: &NoiseSchedule,
) -> Result<(Vec<f64>, bool)> {
    let descending = rule != TimestepRule::DdimInverse;
    let (plan, is_custom) = match custom {
        Some(ts) => (ts.iter().map(|&t| t as f64).collect::<Vec<_>>(), true),
        None => (
            inference_timesteps(
                rule,
                spacing,
                num_inference_steps,
                steps_offset,
                schedule.num_train_timesteps(),
            )?,
            false,
        ),
    };
    validate_plan(&plan, descending, schedule.num_train_timesteps())?;
    Ok((plan, is_custom))
}

/// diffusers' `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5` in `f32` (with the last
/// `alphas_cumprod` set to `2^-24` under zero-SNR rescaling, as DPM-Solver and Euler do).
pub(crate) fn sigma_table_f32(schedule: &NoiseSchedule) -> Vec<f32> {
    let ac = schedule.alphas_cumprod();
    ac.iter()
        .enumerate()
        .map(|(i, &a)| {
            let mut a = a as f32;
            if i == ac.len() - 1 && schedule.config().rescale_betas_zero_snr {
                a = 2f32.powi(-24);
            }
            ((1.0f32 - a) / a).sqrt()
        })
        .collect()
}

/// numpy's `interp(t, arange(len), table)` (in `f64`) at each plan timestep.
pub(crate) fn interp_sigmas(plan: &[f64], table: &[f32]) -> Vec<f64> {
    plan.iter()
        .map(|&t| {
            let lo = (t.floor() as usize).min(table.len() - 1);
            if t.fract() == 0.0 || lo + 1 >= table.len() {
                table[lo] as f64
            } else {
                let (f0, f1) = (table[lo] as f64, table[lo + 1] as f64);
                (f1 - f0) * (t - lo as f64) + f0
            }
        })
        .collect()
}

/// numpy's `log` of the `f32` sigma table, in `f32`.
pub(crate) fn log_table_f32(table: &[f32]) -> Vec<f32> {
    table.iter().map(|&s| (s as f64).ln() as f32).collect()
}

/// diffusers' `_sigma_to_t`: the fractional training timestep of `sigma`, interpolating
/// `log sigma` linearly between the two table entries around it (clamped to the table).
pub(crate) fn sigma_to_t(sigma: f64, log_sigmas: &[f32]) -> f64 {
    let log_sigma = sigma.max(1e-10).ln();
    let n = log_sigmas.len();
    // numpy: `cumsum(dists >= 0).argmax()`, the last entry at or below log_sigma (0 if none).
    let low = log_sigmas
        .iter()
        .rposition(|&l| log_sigma - l as f64 >= 0.0)
        .unwrap_or(0)
        .min(n - 2);
    let (lo, hi) = (log_sigmas[low] as f64, log_sigmas[low + 1] as f64);
    let w = ((lo - log_sigma) / (lo - hi)).clamp(0.0, 1.0);
    (1.0 - w) * low as f64 + w * (low + 1) as f64
}

/// The Karras et al. (arXiv 2206.00364, eq. 5) sigmas: `n` values from `sigma_max` down to
/// `sigma_min`, evenly spaced in `sigma^(1/7)` (diffusers' `_convert_to_karras`).
pub(crate) fn karras_sigmas(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    let rho = 7.0f64;
    let (min_inv, max_inv) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
    (0..n)
        .map(|i| (max_inv + np_linspace(0.0, 1.0, n, i) * (min_inv - max_inv)).powf(rho))
        .collect()
}

/// `n` sigmas from `sigma_max` down to `sigma_min`, evenly spaced in `log sigma` (diffusers'
/// `_convert_to_exponential`).
pub(crate) fn exponential_sigmas(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| np_linspace(sigma_max.ln(), sigma_min.ln(), n, i).exp())
        .collect()
}

/// The per-sample plan indices of timesteps `ts`.
pub(crate) fn plan_indices(plan: &[f64], ts: &[f64], context: &'static str) -> Result<Vec<usize>> {
    ts.iter()
        .map(|&t| {
            crate::util::plan_index(plan, t).ok_or_else(|| Error::InvalidTimestep {
                timestep: t,
                context,
                reason: format!(
                    "not one of the sampler's {} timesteps (first {:?})",
                    plan.len(),
                    &plan[..plan.len().min(4)]
                ),
            })
        })
        .collect()
}

/// `n` sigmas evenly spaced in `lambda = log sigma` from `log_max` down to `log_min` (Lu et al.,
/// arXiv 2206.00927; diffusers' `_convert_to_lu` with `rho = 1`).
pub(crate) fn lu_sigmas(log_min: f64, log_max: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (log_max + np_linspace(0.0, 1.0, n, i) * (log_min - log_max)).exp())
        .collect()
}

/// Which sigma spacing replaces the timesteps' own sigmas (diffusers' `use_*_sigmas`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigmaSpacing {
    /// The sigmas of the timesteps.
    Timesteps,
    /// `use_karras_sigmas`.
    Karras,
    /// `use_exponential_sigmas`.
    Exponential,
    /// `use_lu_lambdas` (DPM-Solver).
    LuLambdas,
}

/// Rejects custom timesteps together with a sigma spacing that replaces them (as diffusers).
pub(crate) fn check_custom_with_spacing(custom: bool, spacing: SigmaSpacing) -> Result<()> {
    let field = match spacing {
        SigmaSpacing::Timesteps => return Ok(()),
        SigmaSpacing::Karras => "use_karras_sigmas",
        SigmaSpacing::Exponential => "use_exponential_sigmas",
        SigmaSpacing::LuLambdas => "use_lu_lambdas",
    };
    if custom {
        return Err(Error::InvalidConfig {
            field,
            reason: "cannot be combined with custom timesteps (as diffusers)".into(),
        });
    }
    Ok(())
}

/// Re-checks a plan derived from sigmas: a spacing that crowds the small sigmas can map several
/// of them to one timestep. With `allow_repeats` (DPM-Solver, whose multistep state tells the
/// repeats apart) a timestep may repeat, but not the first one (diffusers starts a repeated
/// first timestep at its second occurrence and then runs out of sigmas); otherwise the plan must
/// be strictly decreasing.
pub(crate) fn validate_derived_plan(
    plan: &[f64],
    spacing: SigmaSpacing,
    num_train_timesteps: usize,
    allow_repeats: bool,
) -> Result<()> {
    let field = match spacing {
        SigmaSpacing::Timesteps => return validate_plan(plan, true, num_train_timesteps),
        SigmaSpacing::Karras => "use_karras_sigmas",
        SigmaSpacing::Exponential => "use_exponential_sigmas",
        SigmaSpacing::LuLambdas => "use_lu_lambdas",
    };
    let bad = |reason: String| Error::InvalidConfig { field, reason };
    let first_repeats = plan.len() > 1 && plan[1] == plan[0];
    if allow_repeats && !first_repeats {
        let last = (num_train_timesteps - 1) as f64;
        if plan.is_empty() || plan.iter().any(|v| !(0.0..=last).contains(v)) {
            return Err(bad(format!("timesteps outside [0, {last}]: {plan:?}")));
        }
        if plan.windows(2).any(|w| w[1] > w[0]) {
            return Err(bad(format!("timesteps increase: {plan:?}")));
        }
        return Ok(());
    }
    validate_plan(plan, true, num_train_timesteps).map_err(|e| match e {
        Error::InvalidConfig { reason, .. } => bad(format!(
            "the sigmas map to timesteps that are not strictly decreasing ({reason}); use \
             fewer steps or another schedule"
        )),
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_to_t_inverts_the_table() {
        let table: Vec<f32> = (0..100).map(|i| 0.01 * 1.1f32.powi(i)).collect();
        let logs = log_table_f32(&table);
        for (i, &s) in table.iter().enumerate() {
            assert!((sigma_to_t(s as f64, &logs) - i as f64).abs() < 1e-4, "{i}");
        }
        // Halfway in log sigma is halfway in t; outside the table it clamps.
        let mid = ((table[10] as f64).ln() + (table[11] as f64).ln()) / 2.0;
        assert!((sigma_to_t(mid.exp(), &logs) - 10.5).abs() < 1e-4);
        assert_eq!(sigma_to_t(1e-6, &logs), 0.0);
        assert_eq!(sigma_to_t(1e9, &logs), 99.0);
    }

    #[test]
    fn spacings_run_from_max_to_min() {
        for s in [
            karras_sigmas(0.01, 80.0, 7),
            exponential_sigmas(0.01, 80.0, 7),
            lu_sigmas(0.01f64.ln(), 80.0f64.ln(), 7),
        ] {
            assert_eq!(s.len(), 7);
            assert!(
                (s[0] - 80.0).abs() < 1e-9 && (s[6] - 0.01).abs() < 1e-12,
                "{s:?}"
            );
            assert!(s.windows(2).all(|w| w[1] < w[0]));
        }
        // Karras: evenly spaced in sigma^(1/7).
        let k = karras_sigmas(0.01, 80.0, 5);
        let r: Vec<f64> = k.iter().map(|v| v.powf(1.0 / 7.0)).collect();
        assert!((r[1] - r[0] - (r[4] - r[3])).abs() < 1e-12);
    }

    #[test]
    fn repeats_are_allowed_only_after_the_first_timestep() {
        let ok = [999.0, 500.0, 1.0, 1.0, 0.0];
        assert!(validate_derived_plan(&ok, SigmaSpacing::Karras, 1000, true).is_ok());
        assert!(matches!(
            validate_derived_plan(&ok, SigmaSpacing::Karras, 1000, false),
            Err(Error::InvalidConfig {
                field: "use_karras_sigmas",
                ..
            })
        ));
        let first = [998.0, 998.0, 500.0];
        assert!(validate_derived_plan(&first, SigmaSpacing::LuLambdas, 1000, true).is_err());
        assert!(validate_derived_plan(&[1.0, 2.0], SigmaSpacing::Exponential, 1000, true).is_err());
    }
}
