//! Time-series specific scores: the UCR anomaly archive's top-1 hit and (clearly labelled) the
//! point-adjusted F1.

use crate::input::{count_positives, finite_scores, linspace, require_positive, scores_and_labels};
use crate::{Error, Result, Score};

/// The tolerance of the UCR anomaly archive: the arg-max may miss the anomaly by this many
/// points on either side.
pub const UCR_MARGIN: usize = 100;

/// The UCR anomaly archive's top-1 hit: whether the arg-max of the test scores lies within
/// `[begin - 100, end + 100)`.
///
/// `scores[i]` is the score of the point at absolute index `offset + i` (for a UCR file,
/// `offset` is `trainEnd`); `begin..end` is the anomaly in absolute indices, as in the file
/// name. The first maximum wins a tie (as `numpy.argmax`). See [`top1_hit`] for another margin.
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFiniteScore`], and [`Error::InvalidParameter`] when
/// `begin >= end`.
///
/// # Example
/// ```
/// // Test part starts at 1000; the anomaly is [1500, 1510); the peak is at 1450.
/// let mut scores = vec![0.0; 1000];
/// scores[450] = 5.0;
/// assert!(dmad_metrics::ucr_top1_hit(&scores, 1000, 1500, 1510)?);
/// # Ok::<(), dmad_metrics::Error>(())
/// ```
pub fn ucr_top1_hit<S: Score>(
    scores: &[S],
    offset: usize,
    begin: usize,
    end: usize,
) -> Result<bool> {
    top1_hit(scores, offset, begin, end, UCR_MARGIN)
}

/// Whether the arg-max of `scores` lies within `[begin - margin, end + margin)` (absolute
/// indices; `scores[i]` is at `offset + i`). See [`ucr_top1_hit`].
///
/// # Errors
/// As [`ucr_top1_hit`].
pub fn top1_hit<S: Score>(
    scores: &[S],
    offset: usize,
    begin: usize,
    end: usize,
    margin: usize,
) -> Result<bool> {
    if begin >= end {
        return Err(Error::InvalidParameter {
            name: "begin",
            value: begin as f64,
            reason: "the anomaly [begin, end) must not be empty",
        });
    }
    let s = finite_scores("scores", scores)?;
    let mut arg = 0;
    for (i, &v) in s.iter().enumerate() {
        if v > s[arg] {
            arg = i;
        }
    }
    let at = offset as u128 + arg as u128;
    let lo = (begin as u128).saturating_sub(margin as u128);
    let hi = end as u128 + margin as u128;
    Ok(lo <= at && at < hi)
}

/// TSB-AD's point adjustment (`basic_metricor._adjust_predicts`): once a predicted point falls
/// in an anomalous run, every point of that run up to there and after it is counted detected.
///
/// Faithful to TSB-AD, including its quirk that the backward fill stops before index 0.
fn adjust(pred: &mut [bool], labels: &[bool]) {
    let mut state = false;
    for i in 0..labels.len() {
        if labels[i] && pred[i] && !state {
            state = true;
            let mut j = i;
            while j > 0 {
                if !labels[j] {
                    break;
                }
                pred[j] = true;
                j -= 1;
            }
        } else if !labels[i] {
            state = false;
        }
        if state {
            pred[i] = true;
        }
    }
}

fn f1_of(pred: &[bool], labels: &[bool]) -> f64 {
    let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
    for (&p, &l) in pred.iter().zip(labels) {
        match (p, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            _ => {}
        }
    }
    if tp == 0 {
        0.0
    } else {
        (2 * tp) as f64 / (2 * tp + fp + fneg) as f64
    }
}

/// **Point-adjusted** F1 at one threshold (`score > threshold` is anomalous), as TSB-AD's
/// `metric_PointF1PA` with given predictions.
///
/// Point adjustment (Xu et al., WWW 2018) counts a whole anomalous run as detected when any of
/// its points is; it inflates F1 a lot (a random detector can score high on long runs), so it is
/// not the F1 of [`crate::f1_max`] and must be reported under its own name.
///
/// # Errors
/// [`Error::Empty`], [`Error::LengthMismatch`], [`Error::NonFiniteScore`], [`Error::OneClass`]
/// (no anomaly), [`Error::InvalidParameter`] (`threshold` NaN).
pub fn point_adjusted_f1<S: Score>(scores: &[S], labels: &[bool], threshold: f64) -> Result<f64> {
    if threshold.is_nan() {
        return Err(Error::InvalidParameter {
            name: "threshold",
            value: threshold,
            reason: "must not be NaN",
        });
    }
    let s = scores_and_labels(scores, labels)?;
    require_positive("point-adjusted F1", count_positives(labels))?;
    let mut pred: Vec<bool> = s.iter().map(|&v| v > threshold).collect();
    adjust(&mut pred, labels);
    Ok(f1_of(&pred, labels))
}

/// The best **point-adjusted** F1 over 100 evenly spaced thresholds between the smallest and
/// the largest score, exactly as TSB-AD's `metric_PointF1PA(label, score)` ("PA-F1"). See
/// [`point_adjusted_f1`] for why this is not a plain F1.
///
/// # Errors
/// As [`point_adjusted_f1`].
pub fn point_adjusted_f1_max<S: Score>(scores: &[S], labels: &[bool]) -> Result<f64> {
    let s = scores_and_labels(scores, labels)?;
    require_positive("point-adjusted F1", count_positives(labels))?;
    let (lo, hi) = s
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let mut best = 0.0f64;
    let mut pred = vec![false; s.len()];
    for t in linspace(lo, hi, 100) {
        for (p, &v) in pred.iter_mut().zip(&s) {
            *p = v > t;
        }
        adjust(&mut pred, labels);
        best = best.max(f1_of(&pred, labels));
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top1_hit_bounds_are_half_open() {
        let mut s = vec![0.0f32; 300];
        // offset 0, anomaly [150, 160): window [50, 260).
        s[50] = 1.0;
        assert!(ucr_top1_hit(&s, 0, 150, 160).unwrap());
        s[50] = 0.0;
        s[49] = 1.0;
        assert!(!ucr_top1_hit(&s, 0, 150, 160).unwrap());
        s[49] = 0.0;
        s[259] = 1.0;
        assert!(ucr_top1_hit(&s, 0, 150, 160).unwrap());
        s[259] = 0.0;
        s[260] = 1.0;
        assert!(!ucr_top1_hit(&s, 0, 150, 160).unwrap());
        // begin < margin: the window starts at 0.
        assert!(top1_hit(&[1.0, 0.0], 0, 5, 6, 10).unwrap());
    }

    #[test]
    fn top1_hit_takes_first_maximum() {
        // Ties: the first maximum (index 0, absolute 10) is outside [200, 400).
        let s = [3.0, 1.0, 3.0];
        assert!(!top1_hit(&s, 10, 300, 301, 100).unwrap());
        assert!(top1_hit(&s, 200, 300, 301, 100).unwrap());
    }

    #[test]
    fn adjustment_fills_the_run() {
        let labels = [false, true, true, true, false, true];
        let mut pred = [false, false, false, true, false, false];
        adjust(&mut pred, &labels);
        assert_eq!(pred, [false, true, true, true, false, false]);
    }
}
