//! The benchmark's records: one JSON file per (dataset, variant) with each unit's and seed's
//! metrics, their mean and range, and how the cell was run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fidelity::Fidelity;
use super::variant::Variant;

/// A figure that JSON stores as `null` when it is not a number (serde_json writes non-finite
/// floats as `null`): read back as NaN.
pub(super) fn nan_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The metrics of one unit (or their mean over units). A `fidelity` record has no detection
/// metrics (NaN, `null` in JSON) and its figures in `fidelity`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct UnitMetrics {
    #[serde(deserialize_with = "nan_if_null")]
    pub(super) auroc: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub(super) auprc: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub(super) f1_max: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) f1_at_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pauc_01: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) vus_pr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ucr_top1_hit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pixel_auroc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) aupro_03: Option<f64>,
    /// Audio: AUROC per anomaly kind; textures: per defect type (`good` against that type).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) auroc_per_kind: BTreeMap<String, f64>,
    /// Calibrated variant: the chosen start strength and the AUROC on the generated
    /// anomalies at that strength.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) calibrated_strength: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) generated_auroc: Option<f64>,
    /// Feature-diffusion variant: whether the noise-free score norm was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) noise_free: Option<bool>,
    /// Feature DTE variants: whether the clean bin's surprisal was chosen over the expected
    /// time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) dte_surprisal: Option<bool>,
    /// Imputation variants: the window normalisation chosen on generated anomalies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) window_norm: Option<String>,
    /// Imputation variants on point-labelled series: the smoothing of the point scores (in
    /// steps) chosen on anomalies injected into the held-out fifth of the training series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) point_sigma: Option<f64>,
    /// Imputation variants on point-labelled series: the largest noise level of the scorer (a
    /// strength), chosen with the smoothing (mean over seeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) imputation_strength: Option<f64>,
    /// Pixel variants: the scoring options chosen on generated anomalies, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scoring_choice: Option<String>,
    /// Early-stopped variants: the step kept and the held-out loss at each measured step,
    /// in words (per seed; the aggregate leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) early_stopping: Option<String>,
    /// Log-mel DTE, chosen: the mel scale and time bins chosen (e.g. "HTK, 50 bins").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) log_mel_choice: Option<String>,
    /// Combined, calibrated variant: the chosen weight of the reconstruction term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) calibrated_lambda: Option<f64>,
    /// The share of the test samples (series: points) that the thresholded decision flags,
    /// and the F1 of flagging every one (`2 p / (1 + p)` for an anomaly share `p`): an F1 at
    /// the threshold near the latter comes from a threshold that flags nearly everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) flagged: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) f1_flag_all: Option<f64>,
    /// Fidelity variant: how close generated normal samples come to real ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fidelity: Option<Fidelity>,
    #[serde(default)]
    pub(super) wall_s: f64,
    /// Wall time of fitting (feature extraction, training, calibration) and of scoring the
    /// test set, where recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fit_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) score_s: Option<f64>,
}

/// One (dataset, variant) record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) dataset: String,
    pub(super) group: String,
    pub(super) variant: String,
    pub(super) method: String,
    pub(super) metrics: UnitMetrics,
    pub(super) per_unit: Vec<UnitMetrics>,
    /// The seeds of the cell (one run per seed and unit; `metrics` is their mean).
    #[serde(default)]
    pub(super) seeds: Vec<u64>,
    /// Over the seeds: the smallest and largest per-seed mean of each headline figure.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) seed_range: BTreeMap<String, [f64; 2]>,
    pub(super) wall_s: f64,
    pub(super) train_steps: usize,
    pub(super) budget: f64,
    pub(super) command: String,
    pub(super) generated: String,
    pub(super) config: Value,
}

pub(super) fn mean_metrics(units: &[UnitMetrics]) -> UnitMetrics {
    let n = units.len().max(1) as f64;
    let mean = |f: &dyn Fn(&UnitMetrics) -> f64| units.iter().map(f).sum::<f64>() / n;
    let mean_opt = |f: &dyn Fn(&UnitMetrics) -> Option<f64>| {
        let v: Vec<f64> = units.iter().filter_map(f).collect();
        (v.len() == units.len() && !v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let mut per_kind = BTreeMap::new();
    if units.len() == 1 {
        per_kind = units[0].auroc_per_kind.clone();
    }
    UnitMetrics {
        auroc: mean(&|u| u.auroc),
        auprc: mean(&|u| u.auprc),
        f1_max: mean(&|u| u.f1_max),
        f1_at_threshold: mean_opt(&|u| u.f1_at_threshold),
        pauc_01: mean_opt(&|u| u.pauc_01),
        vus_pr: mean_opt(&|u| u.vus_pr),
        ucr_top1_hit: mean_opt(&|u| u.ucr_top1_hit),
        pixel_auroc: mean_opt(&|u| u.pixel_auroc),
        aupro_03: mean_opt(&|u| u.aupro_03),
        calibrated_strength: mean_opt(&|u| u.calibrated_strength),
        generated_auroc: mean_opt(&|u| u.generated_auroc),
        calibrated_lambda: mean_opt(&|u| u.calibrated_lambda),
        flagged: mean_opt(&|u| u.flagged),
        f1_flag_all: mean_opt(&|u| u.f1_flag_all),
        fidelity: if units.len() == 1 {
            units[0].fidelity.clone()
        } else {
            None
        },
        auroc_per_kind: per_kind,
        wall_s: units.iter().map(|u| u.wall_s).sum(),
        fit_s: mean_opt(&|u| u.fit_s),
        noise_free: units.first().and_then(|u| u.noise_free),
        dte_surprisal: units.first().and_then(|u| u.dte_surprisal),
        window_norm: units.first().and_then(|u| u.window_norm.clone()),
        point_sigma: mean_opt(&|u| u.point_sigma),
        imputation_strength: mean_opt(&|u| u.imputation_strength),
        scoring_choice: units.first().and_then(|u| u.scoring_choice.clone()),
        early_stopping: None,
        log_mel_choice: None,
        score_s: mean_opt(&|u| u.score_s),
    }
}

/// The smallest and largest of each headline figure over the per-seed means.
pub(super) fn seed_ranges(per_seed: &[UnitMetrics]) -> BTreeMap<String, [f64; 2]> {
    let mut out = BTreeMap::new();
    type Figure<'a> = (&'a str, &'a dyn Fn(&UnitMetrics) -> Option<f64>);
    let figures: [Figure; 5] = [
        ("auroc", &|u| Some(u.auroc)),
        ("auprc", &|u| Some(u.auprc)),
        ("pixel_auroc", &|u| u.pixel_auroc),
        ("aupro_03", &|u| u.aupro_03),
        ("pauc_01", &|u| u.pauc_01),
    ];
    for (name, f) in figures {
        let v: Vec<f64> = per_seed.iter().filter_map(f).collect();
        if v.len() == per_seed.len() && !v.is_empty() {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            out.insert(name.to_string(), [lo, hi]);
        }
    }
    out
}

pub(super) fn record_path(results: &Path, dataset: &str, variant: Variant) -> PathBuf {
    results.join(format!(
        "{}__{}.json",
        dataset.replace('/', "__"),
        variant.id()
    ))
}

pub(super) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let (h, mi) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02} UTC")
}
