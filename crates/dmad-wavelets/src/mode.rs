//! PyWavelets' nine signal extension modes.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How a signal is extended past its ends before filtering, as in PyWavelets
/// (`pywt.Modes`). Names and behaviour are PyWavelets 1.8.0's.
///
/// With `x = [x0 .. x(N-1)]`, the left extension is (the right one mirrors it):
///
/// | mode | extension |
/// |---|---|
/// | `Zero` | `... 0 0 \| x0 x1 ...` |
/// | `Constant` | `... x0 x0 \| x0 x1 ...` |
/// | `Symmetric` | `... x1 x0 \| x0 x1 ...` (half-sample symmetric) |
/// | `Reflect` | `... x2 x1 \| x0 x1 ...` (whole-sample symmetric) |
/// | `Periodic` | `... x(N-2) x(N-1) \| x0 x1 ...` |
/// | `Smooth` | first-derivative extrapolation |
/// | `Antisymmetric` | `... -x1 -x0 \| x0 x1 ...` (half-sample antisymmetric) |
/// | `Antireflect` | `... 2x0-x2 2x0-x1 \| x0 x1 ...` (whole-sample antisymmetric) |
/// | `Periodization` | periodic, with an odd signal padded by its last sample; gives `ceil(N/2)` coefficients |
///
/// Every mode but `Periodization` gives `floor((N + F - 1) / 2)` coefficients for a filter of
/// length `F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Zero padding.
    Zero,
    /// Repeats the edge values.
    Constant,
    /// Half-sample symmetric (PyWavelets' default).
    Symmetric,
    /// Periodic extension.
    Periodic,
    /// First-derivative (linear) extrapolation.
    Smooth,
    /// Periodic extension with the minimal number of coefficients.
    Periodization,
    /// Whole-sample symmetric.
    Reflect,
    /// Half-sample antisymmetric.
    Antisymmetric,
    /// Whole-sample antisymmetric.
    Antireflect,
}

impl Mode {
    /// All nine modes, in PyWavelets' `Modes.modes` order.
    pub const ALL: [Mode; 9] = [
        Mode::Zero,
        Mode::Constant,
        Mode::Symmetric,
        Mode::Periodic,
        Mode::Smooth,
        Mode::Periodization,
        Mode::Reflect,
        Mode::Antisymmetric,
        Mode::Antireflect,
    ];

    /// The PyWavelets name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Zero => "zero",
            Mode::Constant => "constant",
            Mode::Symmetric => "symmetric",
            Mode::Periodic => "periodic",
            Mode::Smooth => "smooth",
            Mode::Periodization => "periodization",
            Mode::Reflect => "reflect",
            Mode::Antisymmetric => "antisymmetric",
            Mode::Antireflect => "antireflect",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Parses a PyWavelets mode name (also its aliases `zpd`, `cpd`, `sym`, `ppd`, `sp1`,
    /// `per`).
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "zero" | "zpd" => Mode::Zero,
            "constant" | "cpd" => Mode::Constant,
            "symmetric" | "sym" => Mode::Symmetric,
            "periodic" | "ppd" => Mode::Periodic,
            "smooth" | "sp1" => Mode::Smooth,
            "periodization" | "per" => Mode::Periodization,
            "reflect" => Mode::Reflect,
            "antisymmetric" => Mode::Antisymmetric,
            "antireflect" => Mode::Antireflect,
            _ => {
                return Err(Error::UnknownMode {
                    name: s.to_string(),
                })
            }
        })
    }
}
