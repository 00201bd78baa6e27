//! Volume under the surface (VUS) of the range-based ROC and PR curves, as TSB-AD computes it.

use crate::input::{count_positives, linspace, require_both_classes, scores_and_labels};
use crate::{Error, Result, Score};

/// Settings of [`vus`]; the defaults are TSB-AD's (`get_metrics(..., slidingWindow=100,
/// thre=250)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VusConfig {
    /// The largest buffer window `L`: the surface is averaged over the windows `0..=window`.
    /// Default 100 (the protocol's sliding window).
    pub window: usize,
    /// The number of score thresholds, taken at evenly spaced ranks of the sorted scores.
    /// Default 250. Must be at least 1.
    pub thresholds: usize,
}

impl Default for VusConfig {
    fn default() -> Self {
        Self {
            window: 100,
            thresholds: 250,
        }
    }
}

/// The two volumes of [`vus`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vus {
    /// VUS-ROC: the range-AUC-ROC averaged over the buffer windows.
    pub roc: f64,
    /// VUS-PR: the range-AUC-PR averaged over the buffer windows.
    pub pr: f64,
}

/// Maximal runs of anomalous labels, `(start, end)` inclusive.
fn runs(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().enumerate() {
        match (l, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, labels.len() - 1));
    }
    out
}

/// TSB-AD's `new_sequence`: the runs widened by `window / 2` on each side, merged where they
/// touch. `runs` must be non-empty.
fn widened(n: usize, runs: &[(usize, usize)], window: usize) -> Vec<(usize, usize)> {
    let h = window / 2;
    let mut out = Vec::new();
    let mut a = runs[0].0.saturating_sub(h);
    for pair in runs.windows(2) {
        let (end, next_start) = (pair[0].1, pair[1].0);
        // TSB-AD compares `end + h < next_start - h` in signed integers.
        if (end + 2 * h) < next_start {
            out.push((a, end + h));
            a = next_start - h;
        }
    }
    let last_end = runs[runs.len() - 1].1;
    out.push((a, (last_end + h).min(n - 1)));
    out
}

/// Volumes under the range-based ROC and PR surfaces (Paparrizos et al., "Volume Under the
/// Surface", VLDB 2022), exactly as TSB-AD 1.5's `generate_curve(label, score, slidingWindow,
/// 'opt', thre)` computes them (`basic_metricor.RangeAUC_volume_opt`).
///
/// For each buffer window `l` in `0..=cfg.window`, the labels are softened around each anomalous
/// run (a ramp `sqrt(1 - d / l)` over `l / 2` points on either side); at each of `cfg.thresholds`
/// thresholds (the sorted scores at `numpy.linspace` ranks) the range recall is multiplied by the
/// fraction of (widened) anomalous ranges hit, and the range precision is computed; the PR area
/// is the step sum `sum (TPR_k - TPR_{k-1}) precision_k`, the ROC area the trapezoid rule. Both
/// are averaged over the windows.
///
/// Runs in `O(n log n + (window + 1) * (thresholds + a))`, where `a` is the number of points
/// within `window / 2` of an anomaly, not TSB-AD's `O(window * thresholds * n)`.
///
/// # Errors
/// [`Error::Empty`], [`Error::LengthMismatch`], [`Error::NonFiniteScore`], [`Error::OneClass`],
/// and [`Error::InvalidParameter`] when `cfg.thresholds` is 0.
pub fn vus<S: Score>(scores: &[S], labels: &[bool], cfg: &VusConfig) -> Result<Vus> {
    let scores = scores_and_labels(scores, labels)?;
    let n = scores.len();
    let positives = count_positives(labels);
    require_both_classes("VUS", positives, n)?;
    if cfg.thresholds == 0 {
        return Err(Error::InvalidParameter {
            name: "thresholds",
            value: 0.0,
            reason: "VUS needs at least one threshold",
        });
    }
    let thre = cfg.thresholds;
    let p = positives as f64;
    let seq = runs(labels);

    // Thresholds: the sorted (decreasing) scores at `linspace(0, n - 1, thre).astype(int)`.
    let mut sorted = scores.clone();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let thr: Vec<f64> = linspace(0.0, (n - 1) as f64, thre)
        .into_iter()
        .map(|r| sorted[r as usize])
        .collect();
    // Number of points predicted anomalous (`score >= thr[k]`) at each threshold.
    let n_pred: Vec<f64> = thr
        .iter()
        .map(|&t| sorted.partition_point(|&s| s >= t) as f64)
        .collect();
    // The first threshold index at which each point is predicted anomalous (`thre`: never).
    let first: Vec<usize> = scores
        .iter()
        .map(|&s| thr.partition_point(|&t| t > s))
        .collect();
    // Anomalous points predicted at each threshold (cumulative).
    let mut tp_anomalous = vec![0.0f64; thre];
    for (i, &l) in labels.iter().enumerate() {
        if l && first[i] < thre {
            tp_anomalous[first[i]] += 1.0;
        }
    }
    for k in 1..thre {
        tp_anomalous[k] += tp_anomalous[k - 1];
    }

    let mut soft = vec![0.0f64; n];
    let mut extra = vec![0.0f64; thre];
    let mut hits = vec![0usize; thre];
    let (mut sum_auc, mut sum_ap) = (0.0f64, 0.0f64);
    for window in 0..=cfg.window {
        let ranges = widened(n, &seq, window);
        // TSB-AD's `sequencing`: soft labels, built in its order of additions, then capped at 1.
        for &(a, b) in &ranges {
            for x in a..=b {
                soft[x] = if labels[x] { 1.0 } else { 0.0 };
            }
        }
        let h = window / 2;
        for &(s, e) in &seq {
            // After the run: distances 1..=h, clipped at the end of the series.
            let stop = (e + h + 1).min(n);
            for (d, v) in soft[e + 1..stop].iter_mut().enumerate() {
                *v += (1.0 - (d + 1) as f64 / window as f64).sqrt();
            }
            // Before the run: distances min(h, s)..=1, clipped at the start.
            let lo = s.saturating_sub(h);
            for (i, v) in soft[lo..s].iter_mut().enumerate() {
                *v += (1.0 - (s - lo - i) as f64 / window as f64).sqrt();
            }
        }
        extra.iter_mut().for_each(|v| *v = 0.0);
        hits.iter_mut().for_each(|v| *v = 0);
        for &(a, b) in &ranges {
            let mut first_hit = thre;
            for x in a..=b {
                soft[x] = soft[x].min(1.0);
                first_hit = first_hit.min(first[x]);
                if !labels[x] && first[x] < thre {
                    extra[first[x]] += soft[x];
                }
            }
            if first_hit < thre {
                hits[first_hit] += 1;
            }
        }
        let ranges_count = ranges.len() as f64;
        let (mut extra_cum, mut hits_cum) = (0.0f64, 0usize);
        let (mut tpr_prev, mut fpr_prev) = (0.0f64, 0.0f64);
        let (mut auc, mut ap) = (0.0f64, 0.0f64);
        for k in 0..thre {
            extra_cum += extra[k];
            hits_cum += hits[k];
            let tp = tp_anomalous[k] + extra_cum;
            let n_labels = p + extra_cum;
            let p_new = (p + n_labels) / 2.0;
            let recall = (tp / p_new).min(1.0);
            let tpr = recall * (hits_cum as f64 / ranges_count);
            let fpr = (n_pred[k] - tp) / (n as f64 - p_new);
            let precision = tp / n_pred[k];
            auc += (fpr - fpr_prev) * ((tpr + tpr_prev) / 2.0);
            ap += (tpr - tpr_prev) * precision;
            tpr_prev = tpr;
            fpr_prev = fpr;
        }
        auc += (1.0 - fpr_prev) * ((1.0 + tpr_prev) / 2.0);
        sum_auc += auc;
        sum_ap += ap;
    }
    let windows = (cfg.window + 1) as f64;
    Ok(Vus {
        roc: sum_auc / windows,
        pr: sum_ap / windows,
    })
}

/// VUS-PR with TSB-AD's defaults (250 thresholds) and buffer window `window` (the protocol uses
/// 100). See [`vus`].
///
/// # Errors
/// As [`vus`].
pub fn vus_pr<S: Score>(scores: &[S], labels: &[bool], window: usize) -> Result<f64> {
    let cfg = VusConfig {
        window,
        ..VusConfig::default()
    };
    Ok(vus(scores, labels, &cfg)?.pr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_edges() {
        assert_eq!(runs(&[true, true, false, true]), vec![(0, 1), (3, 3)]);
        assert_eq!(runs(&[false, true, false]), vec![(1, 1)]);
    }

    #[test]
    fn widened_merges_close_runs() {
        // window 4 -> 2 points each side: (3,3) and (8,8) stay apart, (8,8) and (11,11) merge.
        assert_eq!(
            widened(20, &[(3, 3), (8, 8), (11, 11)], 4),
            vec![(1, 5), (6, 13)]
        );
        // Clipped at the ends.
        assert_eq!(widened(10, &[(0, 1), (9, 9)], 4), vec![(0, 3), (7, 9)]);
    }

    #[test]
    fn perfect_detector_has_full_volume_at_window_zero() {
        let labels: Vec<bool> = (0..50).map(|i| (20..25).contains(&i)).collect();
        let scores: Vec<f64> = labels.iter().map(|&l| if l { 1.0 } else { 0.0 }).collect();
        let cfg = VusConfig {
            window: 0,
            thresholds: 50,
        };
        let v = vus(&scores, &labels, &cfg).unwrap();
        assert!(
            (v.pr - 1.0).abs() < 1e-12 && (v.roc - 1.0).abs() < 1e-12,
            "{v:?}"
        );
    }
}
