/// The error of `dmad-diffusion`.
///
/// Every variant says whose fault it is: a bad configuration (`InvalidConfig`), a diffusers
/// scheduler config this crate cannot honour (`UnknownClass`, `UnknownField`, `Unsupported`), a
/// config file that cannot be read or parsed (`Io`, `Json`, `ConfigFile`), bad arguments to a call
/// (`ShapeMismatch`, `InvalidTimestep`, `MissingNoise`), or a failure below us (`Candle`, `Core`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A [`dmad_core::Denoiser`] (or another shared trait) failed.
    #[error(transparent)]
    Core(#[from] dmad_core::Error),

    /// A configuration value is out of its valid range. The caller must change `field`.
    #[error("invalid config: `{field}`: {reason}")]
    InvalidConfig {
        /// The configuration field, with diffusers' name.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// A diffusers `scheduler_config.json` names a scheduler class this crate does not
    /// implement. Use `DDPMScheduler`, `DDIMScheduler`, `DPMSolverMultistepScheduler` or
    /// `EulerDiscreteScheduler`.
    #[error("unknown diffusers scheduler class {class_name:?}; expected DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler or EulerDiscreteScheduler")]
    UnknownClass {
        /// The `_class_name` of the config (empty if it had none).
        class_name: String,
    },

    /// A diffusers scheduler config has a field this crate does not know for its class, so it
    /// cannot say whether the field changes the numbers. Remove the field (or check that the
    /// config belongs to this class).
    #[error("diffusers {class} config: unknown field `{field}`")]
    UnknownField {
        /// The scheduler class (`_class_name`).
        class: &'static str,
        /// The unknown field.
        field: String,
    },

    /// A diffusers option with a value this crate does not implement (see docs/SAMPLERS.md).
    /// Change `field` to a supported value.
    #[error("unsupported diffusers option `{field}`: {reason}")]
    Unsupported {
        /// The configuration field, with diffusers' name.
        field: &'static str,
        /// Which value is not supported and why.
        reason: String,
    },

    /// A scheduler config is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },

    /// A config file was read but could not be used; `source` says why.
    #[error("{}: {source}", path.display())]
    ConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it could not be used.
        #[source]
        source: Box<Error>,
    },

    /// A tensor argument does not have the shape the call needs.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// The call and argument that was checked.
        context: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// A timestep is outside the training range, or not one of the sampler's inference
    /// timesteps. Pass a value from [`crate::Sampler::timesteps`].
    #[error("invalid timestep {timestep} for {context}: {reason}")]
    InvalidTimestep {
        /// The offending timestep.
        timestep: f64,
        /// The call that rejected it.
        context: &'static str,
        /// What is allowed.
        reason: String,
    },

    /// A stochastic step was called without its noise. Pass standard normal noise of the
    /// sample's shape (see [`crate::Sampler::needs_noise`]).
    #[error(
        "{sampler} step needs noise (DDPM, eta > 0, an SDE solver or churn) but none was given"
    )]
    MissingNoise {
        /// The sampler that needed the noise.
        sampler: &'static str,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// This error as a [`dmad_core::Error`], for a [`dmad_core::Denoiser`] implemented in
    /// this crate: candle, core and shape errors keep their kind, anything else becomes
    /// `InvalidInput` with this error's message.
    pub(crate) fn into_core(self) -> dmad_core::Error {
        match self {
            Error::Candle(c) => dmad_core::Error::Candle(c),
            Error::Core(c) => c,
            Error::ShapeMismatch {
                context,
                expected,
                got,
            } => dmad_core::Error::ShapeMismatch {
                context,
                expected,
                got,
            },
            other => dmad_core::Error::InvalidInput {
                path: None,
                line: None,
                reason: other.to_string(),
            },
        }
    }
}
