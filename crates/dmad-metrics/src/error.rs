/// Why a metric or a threshold could not be computed.
///
/// Every variant names the argument that is wrong, so that the caller knows what to fix. No
/// function of this crate returns NaN or panics on bad input: it returns one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input slice is empty.
    #[error("empty input: `{what}` has no elements")]
    Empty {
        /// The argument that is empty.
        what: &'static str,
    },

    /// Two inputs that must pair up element by element have different lengths.
    #[error("length mismatch: `{what}` has {got} elements, expected {expected}")]
    LengthMismatch {
        /// The argument whose length is wrong.
        what: &'static str,
        /// The length it must have (that of the argument it pairs with).
        expected: usize,
        /// The length it has.
        got: usize,
    },

    /// A score is NaN or infinite.
    #[error("non-finite score in `{what}` at index {index}: {value}")]
    NonFiniteScore {
        /// The argument holding the score.
        what: &'static str,
        /// The flat index of the first non-finite score.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// The labels hold one class only, so the metric is undefined (for example AUROC without
    /// any anomaly, or without any normal sample).
    #[error("{metric} is undefined: the labels contain no {missing} samples")]
    OneClass {
        /// The metric that was asked for.
        metric: &'static str,
        /// The class that is missing: `"anomalous"` or `"normal"`.
        missing: &'static str,
    },

    /// An anomaly map and its ground-truth mask (or the list of maps and the list of masks) do
    /// not have the same shape.
    #[error("shape mismatch in {context}: expected {expected} elements, got {got}")]
    ShapeMismatch {
        /// Which map or mask, in words (for example `"mask 3"`).
        context: String,
        /// The number of elements the shape implies.
        expected: usize,
        /// The number of elements given.
        got: usize,
    },

    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The value that was given.
        value: f64,
        /// What is allowed.
        reason: &'static str,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
