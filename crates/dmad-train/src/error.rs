use std::path::PathBuf;

/// Errors of training and checkpointing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the shared traits (a denoiser or feature extractor failed).
    #[error(transparent)]
    Core(#[from] dmad_core::Error),

    /// An error of the noise schedule.
    #[error(transparent)]
    Diffusion(#[from] dmad_diffusion::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A training hyper-parameter is out of range.
    #[error("invalid training config: `{field}`: {reason}")]
    InvalidConfig {
        /// The config field.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// The training data cannot be used (empty, or a batch of the wrong shape).
    #[error("invalid training data: {0}")]
    InvalidData(String),

    /// A checkpoint does not fit the model or the run it is loaded into, or is damaged.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with dmad-train's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
