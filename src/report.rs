//! The metrics a run reports, computed with `dmad-metrics` from scores and labels.

use serde::{Deserialize, Serialize};

use crate::Result;

/// Image-, sample- or point-level metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Average precision.
    pub auprc: f64,
    /// The best F1 over all thresholds.
    pub f1_max: f64,
    /// pAUC at max FPR 0.1 (McClish-standardised).
    pub pauc_01: f64,
    /// F1 at the detector's calibrated threshold (set from normal data only).
    pub f1_at_threshold: Option<f64>,
    /// Number of samples (or points).
    pub n: usize,
    /// Number of anomalous samples (or points).
    pub anomalies: usize,
}

/// Computes the [`Report`] of `scores` against `labels` (1 = anomaly); `threshold`, when
/// given, also yields the F1 of the calibrated decision.
///
/// # Errors
/// The metrics' errors: lengths that differ, one class only, a NaN score.
pub fn evaluate(scores: &[f32], labels: &[u8], threshold: Option<f64>) -> Result<Report> {
    let y: Vec<bool> = labels.iter().map(|&l| l != 0).collect();
    let f1_at_threshold = threshold.map(|t| {
        let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
        for (&s, &l) in scores.iter().zip(&y) {
            match ((s as f64) >= t, l) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
        if tp == 0 {
            0.0
        } else {
            2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
        }
    });
    Ok(Report {
        auroc: dmad_metrics::auroc(scores, &y)?,
        auprc: dmad_metrics::auprc(scores, &y)?,
        f1_max: dmad_metrics::f1_max(scores, &y)?.f1,
        pauc_01: dmad_metrics::pauc(scores, &y, 0.1)?,
        f1_at_threshold,
        n: y.len(),
        anomalies: y.iter().filter(|&&b| b).count(),
    })
}
