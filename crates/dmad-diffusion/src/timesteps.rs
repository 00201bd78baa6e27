//! Inference timesteps: which training timesteps a sampler visits, exactly as diffusers'
//! schedulers choose them.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How the inference timesteps are spread over the training range, with diffusers'
/// `timestep_spacing` names (see Lin et al., arXiv 2305.08891, Table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TimestepSpacing {
    /// `"leading"`: multiples of `T / n` from 0 upward, plus `steps_offset`; the last timestep
    /// visited is 0 and the first is below `T - 1`.
    #[cfg_attr(feature = "serde", serde(rename = "leading"))]
    Leading,
    /// `"trailing"`: from `T - 1` downward in steps of `T / n`; starts at the last (noisiest)
    /// timestep.
    #[cfg_attr(feature = "serde", serde(rename = "trailing"))]
    Trailing,
    /// `"linspace"`: evenly spaced from `T - 1` to 0, both included (or rounded).
    #[cfg_attr(feature = "serde", serde(rename = "linspace"))]
    Linspace,
}

impl TimestepSpacing {
    /// diffusers' name of this spacing.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leading => "leading",
            Self::Trailing => "trailing",
            Self::Linspace => "linspace",
        }
    }
}

impl fmt::Display for TimestepSpacing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimestepSpacing {
    type Err = Error;

    /// Parses diffusers' names.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "leading" => Ok(Self::Leading),
            "trailing" => Ok(Self::Trailing),
            "linspace" => Ok(Self::Linspace),
            other => Err(Error::InvalidConfig {
                field: "timestep_spacing",
                reason: format!("unknown value {other:?}; expected leading, trailing or linspace"),
            }),
        }
    }
}

/// Whose `set_timesteps` formula to follow: diffusers' schedulers compute the same spacing
/// differently (DPM-Solver spreads `n + 1` points and drops the last; Euler keeps fractional
/// `linspace` timesteps; DDIM inversion walks upward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestepRule {
    /// `DDPMScheduler` and `DDIMScheduler` (whole timesteps, descending).
    Ddpm,
    /// `DDIMInverseScheduler` (whole timesteps, ascending; `linspace` is not supported).
    DdimInverse,
    /// `DPMSolverMultistepScheduler` (whole timesteps, descending).
    DpmSolver,
    /// `EulerDiscreteScheduler` (`f32` timesteps, fractional for `linspace`, descending).
    Euler,
}

/// numpy's `linspace(start, stop, num)` element `i`.
pub(crate) fn np_linspace(start: f64, stop: f64, num: usize, i: usize) -> f64 {
    if num > 1 && i == num - 1 {
        return stop;
    }
    let step = (stop - start) / (num - 1).max(1) as f64;
    i as f64 * step + start
}

/// numpy's `arange(start, stop, step)` for floats: `start + i * ((start + step) - start)`.
fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil().max(0.0) as usize;
    let delta = (start + step) - start;
    (0..len).map(|i| start + i as f64 * delta).collect()
}

/// The inference timesteps diffusers' scheduler `rule` visits for `num_inference_steps` steps,
/// in the order they are visited.
///
/// Values are whole numbers except for [`TimestepRule::Euler`] with
/// [`TimestepSpacing::Linspace`], whose values are `f32`. `steps_offset` is added for
/// [`TimestepSpacing::Leading`] only, as in diffusers. The result may hold repeated values where
/// diffusers' does (DPM-Solver with `leading` and `n + 1 > T`); samplers reject such plans.
///
/// # Errors
/// [`Error::InvalidConfig`] if `num_inference_steps` is 0 or above `num_train_timesteps`, or
/// the spacing is `linspace` for [`TimestepRule::DdimInverse`].
///
/// # Example
/// ```
/// use dmad_diffusion::{inference_timesteps, TimestepRule, TimestepSpacing};
///
/// # fn main() -> dmad_diffusion::Result<()> {
/// let ts = inference_timesteps(TimestepRule::Ddpm, TimestepSpacing::Trailing, 10, 0, 1000)?;
/// assert_eq!(ts[0], 999.0);
/// assert_eq!(ts[9], 99.0);
/// # Ok(())
/// # }
/// ```
pub fn inference_timesteps(
    rule: TimestepRule,
    spacing: TimestepSpacing,
    num_inference_steps: usize,
    steps_offset: usize,
    num_train_timesteps: usize,
) -> Result<Vec<f64>> {
    inference_timesteps_below(
        rule,
        spacing,
        num_inference_steps,
        steps_offset,
        num_train_timesteps,
        num_train_timesteps,
    )
}

/// As [`inference_timesteps`], with DPM-Solver's timesteps spread below `last_timestep`
/// instead of `num_train_timesteps` (diffusers' `lambda_min_clipped`: `linspace` ends at
/// `last_timestep - 1`, `leading` steps by `last_timestep / (n + 1)`, `trailing` starts from
/// `last_timestep`). Other rules ignore `last_timestep`.
pub(crate) fn inference_timesteps_below(
    rule: TimestepRule,
    spacing: TimestepSpacing,
    num_inference_steps: usize,
    steps_offset: usize,
    num_train_timesteps: usize,
    last_timestep: usize,
) -> Result<Vec<f64>> {
    let (n, t) = (num_inference_steps, num_train_timesteps);
    let last = last_timestep as f64;
    if n == 0 || n > t {
        return Err(Error::InvalidConfig {
            field: "num_inference_steps",
            reason: format!("must be in 1..={t} (num_train_timesteps), got {n}"),
        });
    }
    let offset = steps_offset as f64;
    let tf = t as f64;
    let trailing = |start: f64| -> Vec<f64> {
        np_arange(start, 0.0, -(tf / n as f64))
            .into_iter()
            .map(|v| v.round_ties_even() - 1.0)
            .collect()
    };
    let out = match (rule, spacing) {
        (TimestepRule::Ddpm, TimestepSpacing::Linspace) => (0..n)
            .rev()
            .map(|i| np_linspace(0.0, tf - 1.0, n, i).round_ties_even())
            .collect(),
        (TimestepRule::Ddpm | TimestepRule::Euler, TimestepSpacing::Leading) => {
            let ratio = (t / n) as f64;
            (0..n).rev().map(|i| i as f64 * ratio + offset).collect()
        }
        (TimestepRule::Ddpm | TimestepRule::Euler, TimestepSpacing::Trailing) => trailing(tf),
        (TimestepRule::DdimInverse, TimestepSpacing::Leading) => {
            let ratio = (t / n) as f64;
            (0..n).map(|i| i as f64 * ratio + offset).collect()
        }
        (TimestepRule::DdimInverse, TimestepSpacing::Trailing) => {
            let mut v = trailing(tf);
            v.reverse();
            v
        }
        (TimestepRule::DdimInverse, TimestepSpacing::Linspace) => {
            return Err(Error::InvalidConfig {
                field: "timestep_spacing",
                reason: "DDIM inversion supports leading and trailing (as diffusers)".into(),
            })
        }
        (TimestepRule::DpmSolver, TimestepSpacing::Linspace) => (1..=n)
            .rev()
            .map(|i| np_linspace(0.0, last - 1.0, n + 1, i).round_ties_even())
            .collect(),
        (TimestepRule::DpmSolver, TimestepSpacing::Leading) => {
            let ratio = (last_timestep / (n + 1)) as f64;
            (1..=n).rev().map(|i| i as f64 * ratio + offset).collect()
        }
        (TimestepRule::DpmSolver, TimestepSpacing::Trailing) => trailing(last),
        (TimestepRule::Euler, TimestepSpacing::Linspace) => (0..n)
            .rev()
            .map(|i| np_linspace(0.0, tf - 1.0, n, i) as f32 as f64)
            .collect(),
    };
    Ok(out)
}

/// A plan that denoises from `t_start` down to 0 in `steps` evenly spaced whole timesteps
/// (`linspace(t_start, 0, steps)`, rounded): the custom timesteps of partial diffusion "noise to
/// `t_start`, denoise back in `k` steps". Pass it as a sampler's `timesteps`.
///
/// # Errors
/// [`Error::InvalidConfig`] if `steps` is 0 or larger than `t_start + 1`.
pub fn partial_timesteps(t_start: usize, steps: usize) -> Result<Vec<u32>> {
    if steps == 0 || steps > t_start + 1 {
        return Err(Error::InvalidConfig {
            field: "num_inference_steps",
            reason: format!(
                "must be in 1..={} for t_start = {t_start}, got {steps}",
                t_start + 1
            ),
        });
    }
    if steps == 1 {
        return Ok(vec![t_start as u32]);
    }
    Ok((0..steps)
        .map(|i| np_linspace(t_start as f64, 0.0, steps, i).round_ties_even() as u32)
        .collect())
}

/// Checks that a plan of timesteps is non-empty, strictly monotone in the given direction and
/// inside `[0, T - 1]`.
pub(crate) fn validate_plan(
    plan: &[f64],
    descending: bool,
    num_train_timesteps: usize,
) -> Result<()> {
    let last = (num_train_timesteps - 1) as f64;
    if plan.is_empty() {
        return Err(Error::InvalidConfig {
            field: "timesteps",
            reason: "the plan has no timesteps".into(),
        });
    }
    if let Some(bad) = plan.iter().find(|v| !(0.0..=last).contains(*v)) {
        return Err(Error::InvalidConfig {
            field: "timesteps",
            reason: format!("timestep {bad} is outside [0, {last}]"),
        });
    }
    let ok = plan
        .windows(2)
        .all(|w| if descending { w[1] < w[0] } else { w[1] > w[0] });
    if !ok {
        return Err(Error::InvalidConfig {
            field: "timesteps",
            reason: format!(
                "timesteps must be strictly {} (got {:?}...)",
                if descending {
                    "decreasing"
                } else {
                    "increasing"
                },
                &plan[..plan.len().min(8)]
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_plans() {
        assert_eq!(
            partial_timesteps(250, 6).unwrap(),
            vec![250, 200, 150, 100, 50, 0]
        );
        assert_eq!(partial_timesteps(10, 1).unwrap(), vec![10]);
        assert!(matches!(
            partial_timesteps(3, 5),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            partial_timesteps(3, 0),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn rejects_bad_step_counts() {
        for n in [0, 1001] {
            assert!(matches!(
                inference_timesteps(TimestepRule::Ddpm, TimestepSpacing::Leading, n, 0, 1000),
                Err(Error::InvalidConfig {
                    field: "num_inference_steps",
                    ..
                })
            ));
        }
        assert!(matches!(
            inference_timesteps(
                TimestepRule::DdimInverse,
                TimestepSpacing::Linspace,
                10,
                0,
                1000
            ),
            Err(Error::InvalidConfig {
                field: "timestep_spacing",
                ..
            })
        ));
        assert!("even".parse::<TimestepSpacing>().is_err());
    }

    #[test]
    fn validate_plan_rejects_repeats_and_range() {
        assert!(validate_plan(&[0.0, 0.0], true, 1000).is_err());
        assert!(validate_plan(&[1000.0, 10.0], true, 1000).is_err());
        assert!(validate_plan(&[], true, 1000).is_err());
        assert!(validate_plan(&[10.0, 20.0], false, 1000).is_ok());
    }
}
