use std::fmt;
use std::str::FromStr;

use crate::Error;

/// What a denoiser predicts, with diffusers' `prediction_type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PredictionType {
    /// The noise `epsilon` that was added (`"epsilon"`). The default, as in diffusers.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "epsilon"))]
    Epsilon,
    /// The velocity `v = sqrt(alpha_bar) * epsilon - sqrt(1 - alpha_bar) * x0`
    /// (`"v_prediction"`; Salimans & Ho, arXiv 2202.00512).
    #[cfg_attr(feature = "serde", serde(rename = "v_prediction"))]
    VPrediction,
    /// The clean sample `x0` itself (`"sample"`).
    #[cfg_attr(feature = "serde", serde(rename = "sample"))]
    Sample,
}

impl PredictionType {
    /// diffusers' name of this prediction type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Epsilon => "epsilon",
            Self::VPrediction => "v_prediction",
            Self::Sample => "sample",
        }
    }
}

impl fmt::Display for PredictionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PredictionType {
    type Err = Error;

    /// Parses diffusers' names (`epsilon`, `v_prediction`, `sample`); `v` is accepted too.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "epsilon" => Ok(Self::Epsilon),
            "v_prediction" | "v" => Ok(Self::VPrediction),
            "sample" => Ok(Self::Sample),
            other => Err(Error::InvalidConfig {
                field: "prediction_type",
                reason: format!(
                    "unknown value {other:?}; expected epsilon, v_prediction or sample"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [
            PredictionType::Epsilon,
            PredictionType::VPrediction,
            PredictionType::Sample,
        ] {
            assert_eq!(p.as_str().parse::<PredictionType>().unwrap(), p);
        }
        assert!(matches!(
            "x0".parse::<PredictionType>(),
            Err(Error::InvalidConfig {
                field: "prediction_type",
                ..
            })
        ));
    }
}
