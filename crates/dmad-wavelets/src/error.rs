//! The error type of `dmad-wavelets`.

/// What went wrong in a wavelet transform, and whose fault it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// The input signal (or coefficient array) has no samples along the transformed axis.
    #[error("empty input in {context}: the transformed axis has no samples")]
    EmptyInput {
        /// The function or argument that was empty.
        context: &'static str,
    },

    /// The input holds a NaN or an infinity; transforms refuse it rather than spread it.
    #[error("non-finite value in {context} at flat index {index}")]
    NonFinite {
        /// The function or argument that was checked.
        context: &'static str,
        /// The row-major index of the first offending value.
        index: usize,
    },

    /// The wavelet name is not one this crate knows (see [`crate::wavelist`]).
    #[error("unknown wavelet `{name}`; known families: haar, db1-db38, sym2-sym20, coif1-coif17 (discrete), morl, mexh, gaus1-8, cgau1-8, cmorB-C, shanB-C, fbspM-B-C (continuous)")]
    UnknownWavelet {
        /// The name that was given.
        name: String,
    },

    /// The signal extension mode name is not one of PyWavelets' nine.
    #[error("unknown signal extension mode `{name}`; expected zero, constant, symmetric, periodic, smooth, periodization, reflect, antisymmetric or antireflect")]
    UnknownMode {
        /// The name that was given.
        name: String,
    },

    /// A user-supplied filter bank cannot be used.
    #[error("invalid filter bank: {reason}")]
    InvalidFilterBank {
        /// What is wrong with the filters.
        reason: &'static str,
    },

    /// The requested decomposition level is above [`crate::dwt_max_level`] for this signal.
    ///
    /// PyWavelets only warns here; dmad refuses, because every coefficient of such a level is
    /// dominated by the boundary extension.
    #[error(
        "decomposition level {level} is above the maximum {max} for this signal length and wavelet"
    )]
    LevelTooHigh {
        /// The requested level.
        level: usize,
        /// The largest useful level.
        max: usize,
    },

    /// The input along the transformed axis is too short for this operation.
    #[error("input too short in {context}: length {len}, need at least {min}")]
    TooShort {
        /// The function and mode that needs more samples.
        context: &'static str,
        /// The given length.
        len: usize,
        /// The smallest accepted length.
        min: usize,
    },

    /// Array shapes do not fit together.
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// The operation or argument that was checked.
        context: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The given shape.
        got: Vec<usize>,
    },

    /// An axis index is not below the number of dimensions, or axes repeat.
    #[error("invalid axis {axis} for an array of {ndim} dimensions (axes must be distinct)")]
    InvalidAxis {
        /// The axis that was given.
        axis: usize,
        /// The number of dimensions of the array.
        ndim: usize,
    },

    /// A numeric argument is out of its valid range.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is allowed.
        reason: &'static str,
    },

    /// The operation is not supported for this wavelet, mode or configuration.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns `NonFinite` for the first NaN or infinity of `x`.
pub(crate) fn check_finite(x: &[f64], context: &'static str) -> Result<()> {
    // Branch-free scan of 64-sample chunks (vectorises); the index only once one fails.
    let bad_chunk = x
        .chunks(64)
        .position(|c| c.iter().fold(false, |bad, v| bad | !v.is_finite()));
    let Some(chunk) = bad_chunk else {
        return Ok(());
    };
    match x[chunk * 64..]
        .iter()
        .position(|v| !v.is_finite())
        .map(|i| i + chunk * 64)
    {
        Some(index) => Err(Error::NonFinite { context, index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_finite_reports_the_first_bad_index_in_any_chunk() {
        let mut x = vec![0.5; 200];
        assert!(check_finite(&x, "t").is_ok());
        x[130] = f64::NAN;
        x[199] = f64::INFINITY;
        assert!(matches!(
            check_finite(&x, "t"),
            Err(Error::NonFinite { index: 130, .. })
        ));
        x[63] = f64::NEG_INFINITY;
        assert!(matches!(
            check_finite(&x, "t"),
            Err(Error::NonFinite { index: 63, .. })
        ));
    }
}
