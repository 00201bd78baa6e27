//! Decision thresholds chosen from scores, saved with a model.

use crate::input::{count_positives, finite_scores, require_positive, scores_and_labels};
use crate::ranking::{f1_max_from_counts, Counts};
use crate::{Error, Result, Score};

/// How a [`Threshold`] was chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ThresholdMethod {
    /// The `q` quantile of normal scores (NumPy's default linear interpolation).
    Quantile {
        /// The quantile, in `[0, 1]`.
        q: f64,
    },
    /// Mean plus `k` standard deviations (population, `ddof = 0`) of normal scores.
    MeanStd {
        /// The number of standard deviations.
        k: f64,
    },
    /// The threshold of the best F1 on labelled scores (see [`crate::f1_max`]).
    F1Optimal,
    /// Given by the user.
    Fixed,
}

/// A decision threshold: a score is anomalous when `score >= value`.
///
/// It records how it was chosen; with the `serde` feature it serialises (for example to JSON,
/// as `{"method":{"kind":"quantile","q":0.99},"value":1.7}`) so that it can be saved next to a
/// model.
///
/// # Example
/// ```
/// use dmad_metrics::Threshold;
/// let normal = [0.1, 0.2, 0.3, 0.4, 0.5];
/// let t = Threshold::quantile(&normal, 0.75)?;
/// assert!((t.value - 0.4).abs() < 1e-12);
/// assert!(t.is_anomalous(0.45) && !t.is_anomalous(0.35));
/// # Ok::<(), dmad_metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Threshold {
    /// How the value was chosen.
    pub method: ThresholdMethod,
    /// The threshold; `score >= value` is anomalous.
    pub value: f64,
}

impl Threshold {
    /// The `q` quantile of the normal scores, as `numpy.quantile(normal, q)` (linear
    /// interpolation between order statistics, NumPy's default).
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::NonFiniteScore`], [`Error::InvalidParameter`] unless
    /// `0 <= q <= 1`.
    pub fn quantile<S: Score>(normal: &[S], q: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&q) {
            return Err(Error::InvalidParameter {
                name: "q",
                value: q,
                reason: "a quantile must lie in [0, 1]",
            });
        }
        let mut s = finite_scores("normal", normal)?;
        s.sort_unstable_by(f64::total_cmp);
        let n = s.len();
        let virtual_index = (n - 1) as f64 * q;
        let below = (virtual_index.floor() as usize).min(n - 1);
        let above = (below + 1).min(n - 1);
        let gamma = virtual_index - below as f64;
        let (a, b) = (s[below], s[above]);
        // numpy's `_lerp`: from the nearer end, so that the result stays within [a, b].
        let diff = b - a;
        let value = if gamma >= 0.5 {
            b - diff * (1.0 - gamma)
        } else {
            a + diff * gamma
        };
        Ok(Self {
            method: ThresholdMethod::Quantile { q },
            value,
        })
    }

    /// Mean plus `k` population standard deviations of the normal scores, as
    /// `np.mean(normal) + k * np.std(normal)`.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::NonFiniteScore`], [`Error::InvalidParameter`] when `k` is not
    /// finite.
    pub fn mean_std<S: Score>(normal: &[S], k: f64) -> Result<Self> {
        if !k.is_finite() {
            return Err(Error::InvalidParameter {
                name: "k",
                value: k,
                reason: "must be finite",
            });
        }
        let s = finite_scores("normal", normal)?;
        let n = s.len() as f64;
        let mean = s.iter().sum::<f64>() / n;
        let var = s.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let value = mean + k * var.sqrt();
        if !value.is_finite() {
            return Err(Error::InvalidParameter {
                name: "k",
                value: k,
                reason: "mean + k * std overflows",
            });
        }
        Ok(Self {
            method: ThresholdMethod::MeanStd { k },
            value,
        })
    }

    /// The threshold of the best F1 on labelled scores (`true` = anomalous; real or generated
    /// anomalies): [`crate::f1_max`]'s threshold.
    ///
    /// # Errors
    /// As [`crate::f1_max`].
    pub fn f1_optimal<S: Score>(scores: &[S], labels: &[bool]) -> Result<Self> {
        let s = scores_and_labels(scores, labels)?;
        require_positive("F1-optimal threshold", count_positives(labels))?;
        let best = f1_max_from_counts(&Counts::new(&s, labels));
        Ok(Self {
            method: ThresholdMethod::F1Optimal,
            value: best.threshold,
        })
    }

    /// [`Threshold::f1_optimal`] from separate normal and anomalous scores.
    ///
    /// # Errors
    /// [`Error::Empty`] when `anomalous` is empty, [`Error::NonFiniteScore`].
    pub fn f1_optimal_split<S: Score>(normal: &[S], anomalous: &[S]) -> Result<Self> {
        if anomalous.is_empty() {
            return Err(Error::Empty { what: "anomalous" });
        }
        let normal = finite_scores_allow_empty("normal", normal)?;
        let anomalous = finite_scores("anomalous", anomalous)?;
        let labels: Vec<bool> = std::iter::repeat_n(false, normal.len())
            .chain(std::iter::repeat_n(true, anomalous.len()))
            .collect();
        let scores: Vec<f64> = normal.into_iter().chain(anomalous).collect();
        Self::f1_optimal(&scores, &labels)
    }

    /// A threshold given by the user.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `value` is not finite.
    pub fn fixed(value: f64) -> Result<Self> {
        if !value.is_finite() {
            return Err(Error::InvalidParameter {
                name: "value",
                value,
                reason: "a threshold must be finite",
            });
        }
        Ok(Self {
            method: ThresholdMethod::Fixed,
            value,
        })
    }

    /// Whether `score` is anomalous (`score >= value`). NaN is never anomalous.
    pub fn is_anomalous(&self, score: f64) -> bool {
        score >= self.value
    }

    /// [`Threshold::is_anomalous`] for each score.
    pub fn predict<S: Score>(&self, scores: &[S]) -> Vec<bool> {
        scores
            .iter()
            .map(|&s| self.is_anomalous(s.into()))
            .collect()
    }
}

fn finite_scores_allow_empty<S: Score>(what: &'static str, scores: &[S]) -> Result<Vec<f64>> {
    if scores.is_empty() {
        Ok(Vec::new())
    } else {
        finite_scores(what, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_linearly() {
        let s = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(Threshold::quantile(&s, 0.0).unwrap().value, 1.0);
        assert_eq!(Threshold::quantile(&s, 1.0).unwrap().value, 4.0);
        assert!((Threshold::quantile(&s, 0.5).unwrap().value - 2.5).abs() < 1e-15);
        assert_eq!(Threshold::quantile(&[7.0], 0.3).unwrap().value, 7.0);
    }

    #[test]
    fn mean_std_is_population_std() {
        let t = Threshold::mean_std(&[1.0, 3.0], 2.0).unwrap();
        assert!((t.value - 4.0).abs() < 1e-15);
    }

    #[test]
    fn f1_optimal_split_separates_perfectly() {
        let t = Threshold::f1_optimal_split(&[0.1, 0.2], &[0.5, 0.7]).unwrap();
        assert_eq!(t.value, 0.5);
        assert_eq!(t.predict(&[0.2, 0.5, 0.6]), vec![false, true, true]);
    }
}
