//! The error type of `dmad-ops`.

/// What went wrong in a kernel, and whose fault it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// An argument's shape does not fit the operation.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// The function and argument that were checked.
        context: &'static str,
        /// What the shape should have been, in words.
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// A hyper-parameter is out of range (a zero stride, groups that do not divide the channels).
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The name of the offending parameter.
        field: &'static str,
        /// Why it is invalid and what would be valid.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Converts to candle's error (for `Module` impls), unwrapping candle's own errors.
pub(crate) fn into_candle(e: Error) -> candle_core::Error {
    match e {
        Error::Candle(e) => e,
        other => candle_core::Error::wrap(other),
    }
}
