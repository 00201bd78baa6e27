use std::path::PathBuf;

/// The error of dmad-score.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the shared vocabulary: an invalid configuration value
    /// ([`dmad_core::Error::InvalidConfig`]), a tensor of the wrong shape
    /// ([`dmad_core::Error::ShapeMismatch`]), an unsupported operation or a failed read.
    #[error(transparent)]
    Core(#[from] dmad_core::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A weights file (safetensors or PyTorch `.pth`) cannot be used: it is malformed or
    /// truncated, or a tensor is missing, unexpected, or has the wrong shape or dtype.
    #[error("invalid weights file {}{}: {reason}", path.display(), tensor.as_ref().map(|t| format!(", tensor `{t}`")).unwrap_or_default())]
    Weights {
        /// The file that was read.
        path: PathBuf,
        /// The tensor concerned, if the problem is with one tensor.
        tensor: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// A sampler or the partial-diffusion loop of `dmad-diffusion` failed (for example a start
    /// step outside the sampler's plan, or a prediction-type mismatch).
    #[error(transparent)]
    Diffusion(#[from] dmad_diffusion::Error),

    /// A helper of `dmad-data` failed (mapping window scores back to points).
    #[error(transparent)]
    Data(#[from] dmad_data::Error),

    /// A metric of `dmad-metrics` failed (AUROC while choosing `lambda`): scores that are not
    /// finite, or labels of one class only.
    #[error(transparent)]
    Metrics(#[from] dmad_metrics::Error),

    /// The optimiser of `dmad-train` failed while a DTE network was trained.
    #[error(transparent)]
    Train(#[from] dmad_train::Error),
}

/// `Result` with dmad-score's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`dmad_core::Error::InvalidConfig`] wrapped in [`Error::Core`].
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Core(dmad_core::Error::InvalidConfig {
            field,
            reason: reason.into(),
        })
    }

    /// An [`dmad_core::Error::ShapeMismatch`] wrapped in [`Error::Core`].
    pub(crate) fn shape(context: &'static str, expected: impl Into<String>, got: &[usize]) -> Self {
        Self::Core(dmad_core::Error::ShapeMismatch {
            context,
            expected: expected.into(),
            got: got.to_vec(),
        })
    }

    /// An [`Error::Weights`] about the file as a whole or one of its tensors.
    pub(crate) fn weights(
        path: impl Into<PathBuf>,
        tensor: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Weights {
            path: path.into(),
            tensor: tensor.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// Lets dmad-score's errors cross the [`dmad_core::FeatureExtractor`] trait.
impl From<Error> for dmad_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            Error::Candle(e) => dmad_core::Error::Candle(e),
            Error::Weights {
                path,
                tensor,
                reason,
            } => dmad_core::Error::InvalidInput {
                path: Some(path),
                line: None,
                reason: match tensor {
                    Some(t) => format!("tensor `{t}`: {reason}"),
                    None => reason,
                },
            },
            Error::Diffusion(e) => match e {
                dmad_diffusion::Error::Core(c) => c,
                dmad_diffusion::Error::Candle(c) => dmad_core::Error::Candle(c),
                other => other_input(other),
            },
            Error::Data(e) => other_input(e),
            Error::Metrics(e) => other_input(e),
            Error::Train(e) => other_input(e),
        }
    }
}

/// A dependency's error that has no counterpart in [`dmad_core::Error`], as its message.
fn other_input(e: impl std::fmt::Display) -> dmad_core::Error {
    dmad_core::Error::InvalidInput {
        path: None,
        line: None,
        reason: e.to_string(),
    }
}
