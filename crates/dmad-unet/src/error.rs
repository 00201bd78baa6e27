use std::path::PathBuf;

/// The error of `dmad-unet`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A `dmad-ops` kernel rejected its arguments or failed.
    #[error(transparent)]
    Ops(#[from] dmad_ops::Error),

    /// An error from dmad-core's shared vocabulary.
    #[error(transparent)]
    Core(#[from] dmad_core::Error),

    /// A configuration value is out of its valid range. The caller must change `field`.
    #[error("invalid config: `{field}`: {reason}")]
    InvalidConfig {
        /// The configuration field, with its config-file (diffusers) name.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// A tensor given to a network does not have the shape the network needs.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// The argument that was checked.
        context: &'static str,
        /// The expected shape, in words (for example `[batch, 3, H, W]`).
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// A weights file cannot be used with this configuration: it is truncated or malformed,
    /// misses a parameter, has a parameter of another shape, or has parameters the
    /// configuration does not know.
    #[error("weights file {}: {reason}", path.display())]
    Checkpoint {
        /// The weights file.
        path: PathBuf,
        /// What is wrong, with the parameter names and shapes involved.
        reason: String,
    },

    /// The wavelet pyramid's DWT failed (a wavelet name or an input it cannot take).
    #[error(transparent)]
    Wavelet(#[from] dmad_wavelets::Error),

    /// Reading a file failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The operation is not supported in this build or for this configuration.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// `Result` with `dmad-unet`'s [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for dmad_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Candle(e) => dmad_core::Error::Candle(e),
            Error::Core(e) => e,
            Error::InvalidConfig { field, reason } => {
                dmad_core::Error::InvalidConfig { field, reason }
            }
            Error::ShapeMismatch {
                context,
                expected,
                got,
            } => dmad_core::Error::ShapeMismatch {
                context,
                expected,
                got,
            },
            Error::Checkpoint { path, reason } => dmad_core::Error::InvalidInput {
                path: Some(path),
                line: None,
                reason,
            },
            Error::Io { path, source } => dmad_core::Error::Io { path, source },
            Error::Wavelet(e) => dmad_core::Error::InvalidInput {
                path: None,
                line: None,
                reason: format!("wavelet pyramid: {e}"),
            },
            Error::Unsupported(what) => dmad_core::Error::Unsupported(what),
            Error::Ops(dmad_ops::Error::Candle(e)) => dmad_core::Error::Candle(e),
            Error::Ops(dmad_ops::Error::ShapeMismatch {
                context,
                expected,
                got,
            }) => dmad_core::Error::ShapeMismatch {
                context,
                expected,
                got,
            },
            Error::Ops(dmad_ops::Error::InvalidConfig { field, reason }) => {
                dmad_core::Error::InvalidConfig { field, reason }
            }
            Error::Ops(e) => dmad_core::Error::InvalidInput {
                path: None,
                line: None,
                reason: format!("kernel: {e}"),
            },
        }
    }
}

/// Shorthand for an [`Error::InvalidConfig`].
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
