//! The error type of `dmad-cuda`.

/// What went wrong in a kernel call, and whose fault it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle (including CUDA launch errors).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// The CPU kernels of `dmad-ops` rejected the call.
    #[error(transparent)]
    Ops(#[from] dmad_ops::Error),

    /// The wavelet transforms of `dmad-wavelets` rejected the call.
    #[error(transparent)]
    Wavelets(#[from] dmad_wavelets::Error),

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

    /// A hyper-parameter is out of range.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The name of the offending parameter.
        field: &'static str,
        /// Why it is invalid and what would be valid.
        reason: String,
    },

    /// The kernel does not handle this input (dtype, wavelet length); the message says which
    /// path does.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
