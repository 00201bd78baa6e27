use std::path::PathBuf;

/// The error shared by dmad's traits.
///
/// Each library crate has its own error enum that wraps this one; this enum covers what the
/// shared traits can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A configuration value is out of its valid range. The caller must change `field`.
    #[error("invalid config: `{field}`: {reason}")]
    InvalidConfig {
        /// The configuration field, with its config-file name.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// A tensor does not have the shape an operation needs.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// The operation or argument that was checked.
        context: &'static str,
        /// The expected shape, in words (for example `[batch, 3, H, W]`).
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// Input data is malformed: the file (if any), the place in it and what is wrong.
    #[error("invalid input{}{}: {reason}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default(), line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    InvalidInput {
        /// The file the input came from, if any.
        path: Option<PathBuf>,
        /// The 1-based line, if known.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },

    /// The operation is not supported in this build or for this configuration.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),

    /// Reading or writing a file failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with dmad-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
