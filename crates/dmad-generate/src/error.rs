//! The crate's error.

use std::path::PathBuf;

/// Errors of dmad-generate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error of a shared trait (the denoiser, the feature extractor).
    #[error(transparent)]
    Core(#[from] dmad_core::Error),
    /// An error of the noise schedule or a sampler.
    #[error(transparent)]
    Diffusion(#[from] dmad_diffusion::Error),
    /// An error of a scorer or the score normalisation.
    #[error(transparent)]
    Score(#[from] dmad_score::Error),
    /// An error of a metric (AUROC, the F1-optimal threshold).
    #[error(transparent)]
    Metrics(#[from] dmad_metrics::Error),
    /// An error of the audio transform.
    #[error(transparent)]
    Data(#[from] dmad_data::Error),
    /// A configuration value is out of its valid range; the caller must change `field`.
    #[error("invalid config: `{field}`: {reason}")]
    InvalidConfig {
        /// The parameter.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A tensor or slice does not have the shape the operation needs.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// The operation or argument that was checked.
        context: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// Writing a file failed.
    #[error("cannot write {}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn shape(context: &'static str, expected: impl Into<String>, got: &[usize]) -> Self {
        Self::ShapeMismatch {
            context,
            expected: expected.into(),
            got: got.to_vec(),
        }
    }
}
