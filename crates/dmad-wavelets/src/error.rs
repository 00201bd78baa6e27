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
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite { context, index }),
        None => Ok(()),
    }
}
