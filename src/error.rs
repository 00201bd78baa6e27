use std::path::PathBuf;

/// Errors of the detector facade.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the shared traits.
    #[error(transparent)]
    Core(#[from] dmad_core::Error),
    /// An error of the noise schedule or a sampler.
    #[error(transparent)]
    Diffusion(#[from] dmad_diffusion::Error),
    /// An error of the networks (including a weights file that does not fit the config).
    #[error(transparent)]
    Network(#[from] dmad_unet::Error),
    /// An error of training or a training checkpoint.
    #[error(transparent)]
    Train(#[from] dmad_train::Error),
    /// An error of a metric or threshold.
    #[error(transparent)]
    Metrics(#[from] dmad_metrics::Error),
    /// An error of a wavelet transform.
    #[error(transparent)]
    Wavelets(#[from] dmad_wavelets::Error),
    /// An error of a data loader (names the file).
    #[error(transparent)]
    Data(#[from] dmad_data::Error),
    /// An error of a scorer.
    #[error(transparent)]
    Score(#[from] dmad_score::Error),
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A configuration value is out of range.
    #[error("invalid detector config: `{field}`: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The data does not fit the detector.
    #[error("shape mismatch: {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// What was checked.
        context: &'static str,
        /// The expected shape in words.
        expected: String,
        /// The shape given.
        got: Vec<usize>,
    },
    /// The detector must be fitted first.
    #[error("the detector is not fitted: call fit() or load a saved model")]
    NotFitted,
    /// A saved model directory is damaged, incomplete or of another format version.
    #[error("model {}: {reason}", path.display())]
    Model {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
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

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
