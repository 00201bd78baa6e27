//! Threshold-free ranking metrics: AUROC, pAUC, AUPRC, F1-max and the ROC and PR curves.
//!
//! All of them follow scikit-learn's `_binary_clf_curve`: the scores are sorted once in
//! decreasing order (`O(n log n)`), tied scores form one threshold, and the curves have one point
//! per distinct score. A sample is predicted anomalous at threshold `t` when `score >= t`.

use crate::input::{count_positives, require_both_classes, require_positive, scores_and_labels};
use crate::{Error, Result, Score};

/// Cumulative counts at each distinct score, in decreasing score order.
#[derive(Debug, Clone)]
pub(crate) struct Counts {
    /// The distinct scores, decreasing.
    pub thresholds: Vec<f64>,
    /// Anomalies with `score >= thresholds[i]`.
    pub tps: Vec<u64>,
    /// Normal samples with `score >= thresholds[i]`.
    pub fps: Vec<u64>,
}

impl Counts {
    /// Sorts `(score, label)` pairs and accumulates the counts. `scores` must be finite.
    pub(crate) fn new(scores: &[f64], labels: &[bool]) -> Self {
        let mut pairs: Vec<(f64, bool)> =
            scores.iter().copied().zip(labels.iter().copied()).collect();
        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut thresholds = Vec::new();
        let mut tps = Vec::new();
        let mut fps = Vec::new();
        let (mut tp, mut fp) = (0u64, 0u64);
        for (i, &(s, label)) in pairs.iter().enumerate() {
            if label {
                tp += 1;
            } else {
                fp += 1;
            }
            // `!=` (not `total_cmp`) so that -0.0 and 0.0 are one threshold, as in NumPy.
            if i + 1 == pairs.len() || pairs[i + 1].0 != s {
                thresholds.push(s);
                tps.push(tp);
                fps.push(fp);
            }
        }
        Self {
            thresholds,
            tps,
            fps,
        }
    }

    fn positives(&self) -> u64 {
        *self.tps.last().unwrap_or(&0)
    }

    fn negatives(&self) -> u64 {
        *self.fps.last().unwrap_or(&0)
    }
}

/// A receiver operating characteristic curve, exactly as scikit-learn's
/// `roc_curve(y_true, y_score)` (with `drop_intermediate=True`) returns it.
///
/// The first point is `(0, 0)` at threshold `+inf`; then one point per kept distinct score, in
/// decreasing threshold order, ending at `(1, 1)`. Points that lie on a straight line between
/// their neighbours are dropped, as scikit-learn does; the area is unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    /// False-positive rates, increasing.
    pub fpr: Vec<f64>,
    /// True-positive rates, increasing.
    pub tpr: Vec<f64>,
    /// The score threshold of each point (`score >= threshold` is anomalous); `thresholds[0]` is
    /// `f64::INFINITY`.
    pub thresholds: Vec<f64>,
}

/// A precision-recall curve, exactly as scikit-learn's `precision_recall_curve(y_true,
/// y_score)` returns it.
///
/// One point per distinct score in increasing threshold order (so recall decreases), and a final
/// point `(precision 1, recall 0)` that has no threshold: `thresholds` is one shorter than the
/// other two vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    /// Precision at each threshold, then 1.
    pub precision: Vec<f64>,
    /// Recall at each threshold, then 0.
    pub recall: Vec<f64>,
    /// The distinct scores, increasing.
    pub thresholds: Vec<f64>,
}

/// The best F1 over all thresholds and where it is reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F1Max {
    /// The best F1, `2 tp / (2 tp + fp + fn)`.
    pub f1: f64,
    /// The threshold that reaches it: a sample is anomalous when `score >= threshold`. It is one
    /// of the scores; among thresholds with the same F1 the highest is returned.
    pub threshold: f64,
    /// The precision at that threshold.
    pub precision: f64,
    /// The recall at that threshold.
    pub recall: f64,
}

/// The ROC points kept by scikit-learn's `drop_intermediate=True`, with `(0, 0)` prepended:
/// `(fps, tps, thresholds)`.
fn roc_points(c: &Counts) -> (Vec<u64>, Vec<u64>, Vec<f64>) {
    let m = c.thresholds.len();
    let keep = |i: usize| -> bool {
        if m <= 2 || i == 0 || i == m - 1 {
            return true;
        }
        let d2 = |v: &[u64]| v[i + 1] as i128 - 2 * v[i] as i128 + v[i - 1] as i128;
        d2(&c.fps) != 0 || d2(&c.tps) != 0
    };
    let mut fps = vec![0u64];
    let mut tps = vec![0u64];
    let mut thresholds = vec![f64::INFINITY];
    for i in (0..m).filter(|&i| keep(i)) {
        fps.push(c.fps[i]);
        tps.push(c.tps[i]);
        thresholds.push(c.thresholds[i]);
    }
    (fps, tps, thresholds)
}

fn checked_counts<S: Score>(scores: &[S], labels: &[bool]) -> Result<(Counts, usize)> {
    let s = scores_and_labels(scores, labels)?;
    let positives = count_positives(labels);
    Ok((Counts::new(&s, labels), positives))
}

/// Area under the ROC curve by the trapezoid rule, as scikit-learn's `roc_auc_score`.
///
/// Tied scores form one threshold, so a tie between an anomaly and a normal sample counts one
/// half (the Mann-Whitney statistic). The area is accumulated in exact integer arithmetic and
/// divided once.
///
/// # Errors
/// [`Error::Empty`], [`Error::LengthMismatch`], [`Error::NonFiniteScore`], and
/// [`Error::OneClass`] when the labels lack anomalies or normal samples.
///
/// # Example
/// ```
/// let auc = dmad_metrics::auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert!((auc - 0.75).abs() < 1e-12);
/// # Ok::<(), dmad_metrics::Error>(())
/// ```
pub fn auroc<S: Score>(scores: &[S], labels: &[bool]) -> Result<f64> {
    let (c, positives) = checked_counts(scores, labels)?;
    require_both_classes("AUROC", positives, labels.len())?;
    Ok(auroc_from_counts(&c))
}

pub(crate) fn auroc_from_counts(c: &Counts) -> f64 {
    // Twice the area in units of one (negative, positive) pair.
    let mut area2: u128 = 0;
    let (mut fp0, mut tp0) = (0u64, 0u64);
    for (&fp, &tp) in c.fps.iter().zip(&c.tps) {
        area2 += (fp - fp0) as u128 * (tp + tp0) as u128;
        fp0 = fp;
        tp0 = tp;
    }
    area2 as f64 / (2.0 * c.positives() as f64 * c.negatives() as f64)
}

/// The ROC curve, exactly as scikit-learn's `roc_curve` (see [`RocCurve`]).
///
/// # Errors
/// As [`auroc`].
pub fn roc_curve<S: Score>(scores: &[S], labels: &[bool]) -> Result<RocCurve> {
    let (c, positives) = checked_counts(scores, labels)?;
    require_both_classes("ROC curve", positives, labels.len())?;
    let (fps, tps, thresholds) = roc_points(&c);
    let (n, p) = (c.negatives() as f64, c.positives() as f64);
    Ok(RocCurve {
        fpr: fps.iter().map(|&f| f as f64 / n).collect(),
        tpr: tps.iter().map(|&t| t as f64 / p).collect(),
        thresholds,
    })
}

/// Standardised partial AUC up to a false-positive rate `max_fpr`, exactly as scikit-learn's
/// `roc_auc_score(y_true, y_score, max_fpr=max_fpr)` (McClish, 1989).
///
/// The ROC curve is cut at `max_fpr` (its value there linearly interpolated), its area `A` is
/// standardised to `0.5 * (1 + (A - max_fpr^2 / 2) / (max_fpr - max_fpr^2 / 2))`, so that a
/// random ranking gives 0.5 and a perfect one 1. `max_fpr = 1` gives the plain [`auroc`]. The
/// DCASE challenge reports `max_fpr = 0.1`.
///
/// # Errors
/// As [`auroc`], and [`Error::InvalidParameter`] unless `0 < max_fpr <= 1`.
pub fn pauc<S: Score>(scores: &[S], labels: &[bool], max_fpr: f64) -> Result<f64> {
    // `!(a && b)` also rejects NaN.
    if !(max_fpr > 0.0 && max_fpr <= 1.0) {
        return Err(Error::InvalidParameter {
            name: "max_fpr",
            value: max_fpr,
            reason: "must lie in (0, 1]",
        });
    }
    let roc = roc_curve(scores, labels)?;
    if max_fpr == 1.0 {
        return Ok(trapezoid(&roc.fpr, &roc.tpr));
    }
    // numpy.searchsorted(fpr, max_fpr, "right"); fpr[0] = 0 < max_fpr < 1 = fpr[last], so
    // 0 < stop < len.
    let stop = roc.fpr.partition_point(|&x| x <= max_fpr);
    let (x0, x1) = (roc.fpr[stop - 1], roc.fpr[stop]);
    let (y0, y1) = (roc.tpr[stop - 1], roc.tpr[stop]);
    let y_at = if max_fpr == x0 {
        y0
    } else {
        (y1 - y0) / (x1 - x0) * (max_fpr - x0) + y0
    };
    let mut fpr = roc.fpr[..stop].to_vec();
    let mut tpr = roc.tpr[..stop].to_vec();
    fpr.push(max_fpr);
    tpr.push(y_at);
    let partial = trapezoid(&fpr, &tpr);
    let min_area = 0.5 * max_fpr * max_fpr;
    let max_area = max_fpr;
    Ok(0.5 * (1.0 + (partial - min_area) / (max_area - min_area)))
}

/// `numpy.trapezoid(y, x)` for increasing `x`.
pub(crate) fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[1] + ys[0]) / 2.0)
        .sum()
}

/// Average precision, exactly as scikit-learn's `average_precision_score`: the step integral
/// `sum_k (R_k - R_{k-1}) P_k` over the distinct scores in decreasing order (no interpolation).
///
/// Labels with anomalies only are allowed (the result is 1).
///
/// # Errors
/// [`Error::Empty`], [`Error::LengthMismatch`], [`Error::NonFiniteScore`], and
/// [`Error::OneClass`] when there is no anomaly.
pub fn auprc<S: Score>(scores: &[S], labels: &[bool]) -> Result<f64> {
    let (c, positives) = checked_counts(scores, labels)?;
    require_positive("AUPRC", positives)?;
    let p = c.positives() as f64;
    let mut ap = 0.0;
    let mut tp0 = 0u64;
    for (&tp, &fp) in c.tps.iter().zip(&c.fps) {
        if tp > tp0 {
            ap += (tp - tp0) as f64 / p * (tp as f64 / (tp + fp) as f64);
        }
        tp0 = tp;
    }
    Ok(ap)
}

/// The precision-recall curve, exactly as scikit-learn's `precision_recall_curve` (see
/// [`PrCurve`]).
///
/// # Errors
/// As [`auprc`].
pub fn pr_curve<S: Score>(scores: &[S], labels: &[bool]) -> Result<PrCurve> {
    let (c, positives) = checked_counts(scores, labels)?;
    require_positive("precision-recall curve", positives)?;
    let p = c.positives() as f64;
    let m = c.thresholds.len();
    let mut precision = Vec::with_capacity(m + 1);
    let mut recall = Vec::with_capacity(m + 1);
    let mut thresholds = Vec::with_capacity(m);
    for i in (0..m).rev() {
        let (tp, fp) = (c.tps[i] as f64, c.fps[i] as f64);
        precision.push(tp / (tp + fp));
        recall.push(tp / p);
        thresholds.push(c.thresholds[i]);
    }
    precision.push(1.0);
    recall.push(0.0);
    Ok(PrCurve {
        precision,
        recall,
        thresholds,
    })
}

/// The best F1 score over all thresholds (one per distinct score) and the threshold that reaches
/// it.
///
/// F1 is computed as `2 tp / (2 tp + fp + fn)`, so equal F1 values compare equal exactly; among
/// them the highest threshold wins.
///
/// # Errors
/// As [`auprc`].
///
/// # Example
/// ```
/// let best = dmad_metrics::f1_max(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert!((best.f1 - 0.8).abs() < 1e-12);
/// assert_eq!(best.threshold, 0.35);
/// # Ok::<(), dmad_metrics::Error>(())
/// ```
pub fn f1_max<S: Score>(scores: &[S], labels: &[bool]) -> Result<F1Max> {
    let (c, positives) = checked_counts(scores, labels)?;
    require_positive("F1-max", positives)?;
    Ok(f1_max_from_counts(&c))
}

pub(crate) fn f1_max_from_counts(c: &Counts) -> F1Max {
    let p = c.positives();
    let mut best = F1Max {
        f1: -1.0,
        threshold: f64::INFINITY,
        precision: 0.0,
        recall: 0.0,
    };
    for i in 0..c.thresholds.len() {
        let (tp, fp) = (c.tps[i], c.fps[i]);
        let f1 = (2 * tp) as f64 / (tp + fp + p) as f64;
        if f1 > best.f1 {
            best = F1Max {
                f1,
                threshold: c.thresholds[i],
                precision: tp as f64 / (tp + fp) as f64,
                recall: tp as f64 / p as f64,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    /// Mann-Whitney oracle: P(score_anomaly > score_normal) + 0.5 P(=).
    fn auroc_oracle(scores: &[f64], labels: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (&a, _) in scores.iter().zip(labels).filter(|&(_, &l)| l) {
            for (&b, _) in scores.iter().zip(labels).filter(|&(_, &l)| !l) {
                pairs += 1.0;
                if a > b {
                    wins += 1.0;
                } else if a == b {
                    wins += 0.5;
                }
            }
        }
        wins / pairs
    }

    /// Pseudo-random tie-heavy data (xorshift, fixed seed).
    fn data(n: usize, levels: u64, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut s = Vec::new();
        let mut l = Vec::new();
        for i in 0..n {
            let anomalous = i % 3 == 0 || next() % 5 == 0;
            let shift = if anomalous {
                0.5 * (next() % 2) as f64
            } else {
                0.0
            };
            l.push(anomalous);
            s.push((next() % levels) as f64 + shift);
        }
        (s, l)
    }

    #[test]
    fn auroc_matches_mann_whitney_oracle_over_sizes() {
        for (n, levels) in [(2, 2), (7, 3), (50, 4), (200, 10), (333, 1000)] {
            let (s, l) = data(n, levels, n as u64 + 11);
            if count_positives(&l) == 0 || count_positives(&l) == n {
                continue;
            }
            let got = auroc(&s, &l).unwrap();
            assert!(close(got, auroc_oracle(&s, &l), 1e-12), "n={n}");
        }
    }

    #[test]
    fn f1_max_matches_brute_force() {
        let (s, l) = data(300, 7, 5);
        let best = f1_max(&s, &l).unwrap();
        let p = count_positives(&l) as f64;
        let mut brute = 0.0f64;
        for &t in &s {
            let tp = s.iter().zip(&l).filter(|&(&x, &y)| y && x >= t).count() as f64;
            let fp = s.iter().zip(&l).filter(|&(&x, &y)| !y && x >= t).count() as f64;
            brute = brute.max(2.0 * tp / (tp + fp + p));
        }
        assert!(close(best.f1, brute, 1e-15));
        let tp = s
            .iter()
            .zip(&l)
            .filter(|&(&x, &y)| y && x >= best.threshold)
            .count() as f64;
        assert!(close(best.recall, tp / p, 1e-15));
    }

    #[test]
    fn perfect_and_inverted_rankings() {
        let s = [1.0, 2.0, 3.0, 4.0];
        let l = [false, false, true, true];
        assert_eq!(auroc(&s, &l).unwrap(), 1.0);
        assert_eq!(auprc(&s, &l).unwrap(), 1.0);
        assert_eq!(pauc(&s, &l, 0.1).unwrap(), 1.0);
        let inv = [true, true, false, false];
        assert_eq!(auroc(&s, &inv).unwrap(), 0.0);
        // All scores tied: chance level.
        assert_eq!(auroc(&[3.0f32; 4], &l).unwrap(), 0.5);
        assert_eq!(pauc(&[3.0f32; 4], &l, 0.5).unwrap(), 0.5);
    }

    #[test]
    fn pauc_at_one_is_auroc() {
        let (s, l) = data(100, 5, 3);
        assert!(close(
            pauc(&s, &l, 1.0).unwrap(),
            auroc(&s, &l).unwrap(),
            1e-12
        ));
    }

    #[test]
    fn all_anomalous_labels_give_ap_one_but_no_auroc() {
        let s = [0.3, 0.1, 0.2];
        let l = [true; 3];
        assert_eq!(auprc(&s, &l).unwrap(), 1.0);
        assert_eq!(f1_max(&s, &l).unwrap().f1, 1.0);
        assert_eq!(f1_max(&s, &l).unwrap().threshold, 0.1);
        assert!(matches!(
            auroc(&s, &l),
            Err(Error::OneClass {
                missing: "normal",
                ..
            })
        ));
    }
}
