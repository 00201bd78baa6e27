/// The error of `dmad-diffusion`.
///
/// Every variant says whose fault it is: a bad configuration (`InvalidConfig`), bad arguments to
/// a call (`ShapeMismatch`, `InvalidTimestep`, `MissingNoise`), or a failure below us (`Candle`,
/// `Core`).
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
    #[error("{sampler} step needs noise (eta > 0 or DDPM) but none was given")]
    MissingNoise {
        /// The sampler that needed the noise.
        sampler: &'static str,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
