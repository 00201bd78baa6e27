//! Validation of the inputs shared by every metric.

use crate::{Error, Result};

/// A score type: anything that converts losslessly to `f64` (`f64`, `f32`, the small integers).
///
/// Every metric converts its scores to `f64` once and computes in `f64`.
pub trait Score: Copy + Into<f64> {}

impl<T: Copy + Into<f64>> Score for T {}

/// Converts `scores` to `f64`, rejecting an empty slice and non-finite values.
pub(crate) fn finite_scores<S: Score>(what: &'static str, scores: &[S]) -> Result<Vec<f64>> {
    if scores.is_empty() {
        return Err(Error::Empty { what });
    }
    let mut out = Vec::with_capacity(scores.len());
    for (index, &s) in scores.iter().enumerate() {
        let value: f64 = s.into();
        if !value.is_finite() {
            return Err(Error::NonFiniteScore { what, index, value });
        }
        out.push(value);
    }
    Ok(out)
}

/// Checks that `scores` and `labels` are non-empty, pair up and are finite; returns the scores
/// as `f64`.
pub(crate) fn scores_and_labels<S: Score>(scores: &[S], labels: &[bool]) -> Result<Vec<f64>> {
    if scores.is_empty() {
        return Err(Error::Empty { what: "scores" });
    }
    if labels.len() != scores.len() {
        return Err(Error::LengthMismatch {
            what: "labels",
            expected: scores.len(),
            got: labels.len(),
        });
    }
    finite_scores("scores", scores)
}

/// Counts the anomalous (`true`) labels.
pub(crate) fn count_positives(labels: &[bool]) -> usize {
    labels.iter().filter(|&&l| l).count()
}

/// Checks that both classes are present.
pub(crate) fn require_both_classes(metric: &'static str, positives: usize, n: usize) -> Result<()> {
    if positives == 0 {
        return Err(Error::OneClass {
            metric,
            missing: "anomalous",
        });
    }
    if positives == n {
        return Err(Error::OneClass {
            metric,
            missing: "normal",
        });
    }
    Ok(())
}

/// Checks that at least one anomaly is present.
pub(crate) fn require_positive(metric: &'static str, positives: usize) -> Result<()> {
    if positives == 0 {
        return Err(Error::OneClass {
            metric,
            missing: "anomalous",
        });
    }
    Ok(())
}

/// `numpy.linspace(start, stop, num)` with NumPy's exact arithmetic (`k * step + start`, the
/// last point set to `stop`).
pub(crate) fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut y: Vec<f64> = if step == 0.0 {
        (0..num).map(|k| (k as f64 / div) * delta + start).collect()
    } else {
        (0..num).map(|k| k as f64 * step + start).collect()
    };
    y[num - 1] = stop;
    y
}
