//! The named options of diffusers' schedulers, with diffusers' spellings.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Declares a `Copy` enum of diffusers option values with `as_str`, `Display`, `FromStr`
/// (an error names the config field) and serde renames.
macro_rules! diffusers_enum {
    (
        $(#[$meta:meta])*
        $name:ident, field = $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[cfg_attr(feature = "serde", serde(rename = $text))]
                $variant,
            )+
        }

        impl $name {
            /// diffusers' name of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            /// Parses diffusers' names.
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(Error::InvalidConfig {
                        field: $field,
                        reason: format!(
                            "unknown value {other:?}; expected one of {}",
                            [$($text),+].join(", ")
                        ),
                    }),
                }
            }
        }
    };
}

diffusers_enum! {
    /// The last sigma of the sigma-parametrised samplers (DPM-Solver, Euler): diffusers'
    /// `final_sigmas_type`.
    FinalSigmas, field = "final_sigmas_type" {
        /// `"zero"`: the last step lands on sigma 0, the clean sample. The default.
        #[default]
        Zero = "zero",
        /// `"sigma_min"`: the last step lands on the sigma of training timestep 0,
        /// `sqrt((1 - alpha_bar_0) / alpha_bar_0)`.
        SigmaMin = "sigma_min",
    }
}

diffusers_enum! {
    /// Which DPM-Solver: diffusers' `algorithm_type` of `DPMSolverMultistepScheduler`.
    DpmSolverAlgorithm, field = "algorithm_type" {
        /// `"dpmsolver++"`: the ODE solver in data prediction (Lu et al., arXiv 2211.01095). The
        /// default.
        #[default]
        DpmSolverPlusPlus = "dpmsolver++",
        /// `"dpmsolver"`: the ODE solver in noise prediction (Lu et al., arXiv 2206.00927). Needs
        /// [`FinalSigmas::SigmaMin`] (as diffusers).
        DpmSolver = "dpmsolver",
        /// `"sde-dpmsolver++"`: the SDE solver in data prediction; stochastic (each step takes
        /// noise).
        SdeDpmSolverPlusPlus = "sde-dpmsolver++",
        /// `"sde-dpmsolver"`: the SDE solver in noise prediction; stochastic, at most second
        /// order, needs [`FinalSigmas::SigmaMin`].
        SdeDpmSolver = "sde-dpmsolver",
    }
}

impl DpmSolverAlgorithm {
    /// Whether the solver works on the data prediction `x0` (the `++` variants), not the noise.
    pub fn predicts_data(self) -> bool {
        matches!(self, Self::DpmSolverPlusPlus | Self::SdeDpmSolverPlusPlus)
    }

    /// Whether each step takes noise (the SDE variants).
    pub fn is_stochastic(self) -> bool {
        matches!(self, Self::SdeDpmSolverPlusPlus | Self::SdeDpmSolver)
    }
}

diffusers_enum! {
    /// The second-order update of DPM-Solver: diffusers' `solver_type`.
    DpmSolverType, field = "solver_type" {
        /// `"midpoint"`. The default.
        #[default]
        Midpoint = "midpoint",
        /// `"heun"`.
        Heun = "heun",
    }
}

diffusers_enum! {
    /// The variance of a DDPM step (diffusers' `variance_type`); DPM-Solver only reads whether
    /// the model's output carries a learned variance.
    VarianceType, field = "variance_type" {
        /// `"fixed_small"`: the posterior variance `beta_tilde_t` (Ho et al., arXiv
        /// 2006.11239). The default.
        #[default]
        FixedSmall = "fixed_small",
        /// `"fixed_small_log"`: the same variance, computed as `exp(0.5 log beta_tilde_t)`.
        FixedSmallLog = "fixed_small_log",
        /// `"fixed_large"`: `beta_t` (of the step, `1 - alpha_bar_t / alpha_bar_prev`).
        FixedLarge = "fixed_large",
        /// `"fixed_large_log"`: diffusers takes the square root of `log beta_t < 0` and returns
        /// NaN; refused by the samplers (see docs/SAMPLERS.md).
        FixedLargeLog = "fixed_large_log",
        /// `"learned"`: the model's output carries the variance itself as a second half of
        /// channels (Nichol & Dhariwal, arXiv 2102.09672).
        Learned = "learned",
        /// `"learned_range"`: the second half of the output's channels, `v` in `[-1, 1]`,
        /// interpolates the log variance between `beta_tilde_t` (`v = -1`) and `beta_t`
        /// (`v = 1`) (Nichol & Dhariwal, arXiv 2102.09672, eq. 15).
        LearnedRange = "learned_range",
    }
}

impl VarianceType {
    /// Whether the model's output carries a learned variance as a second half of channels.
    pub fn is_learned(self) -> bool {
        matches!(self, Self::Learned | Self::LearnedRange)
    }
}

diffusers_enum! {
    /// How Euler finds the sigmas of its timesteps: diffusers' `interpolation_type`.
    SigmaInterpolation, field = "interpolation_type" {
        /// `"linear"`: linear interpolation of the sigma table at the (fractional) timesteps.
        /// The default.
        #[default]
        Linear = "linear",
        /// `"log_linear"`: `n + 1` sigmas evenly spaced in `log sigma` from the largest to the
        /// smallest training sigma, independent of the timesteps. As in diffusers, the plan then
        /// ends on the smallest training sigma, not 0.
        LogLinear = "log_linear",
    }
}
