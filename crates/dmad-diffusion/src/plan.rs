//! Building a sampler's timesteps from its config, and the `f32` sigma tables of the
//! sigma-parametrised samplers.

use crate::timesteps::{inference_timesteps, validate_plan, TimestepRule, TimestepSpacing};
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

/// numpy's `interp(t, arange(len), table)` rounded to `f32`, for each plan timestep, followed by
/// a final sigma of 0 (diffusers' `final_sigmas_type = "zero"`).
pub(crate) fn plan_sigmas(plan: &[f64], table: &[f32]) -> Vec<f64> {
    let mut out: Vec<f64> = plan
        .iter()
        .map(|&t| {
            let lo = (t.floor() as usize).min(table.len() - 1);
            let v = if t.fract() == 0.0 || lo + 1 >= table.len() {
                table[lo] as f64
            } else {
                let (f0, f1) = (table[lo] as f64, table[lo + 1] as f64);
                (f1 - f0) * (t - lo as f64) + f0
            };
            v as f32 as f64
        })
        .collect();
    out.push(0.0);
    out
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
