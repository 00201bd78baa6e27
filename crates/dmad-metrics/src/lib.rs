//! The evaluation metrics of anomaly detection, and decision thresholds, on plain slices.
//!
//! This crate depends on nothing but `thiserror` (and `serde` behind a feature): scores are any
//! `&[S]` whose elements convert to `f64` (`f64`, `f32`, small integers), labels are `&[bool]`
//! with `true` = anomalous, and anomaly maps are slices in row-major order. Each metric matches
//! its tool of record to 1e-9 on the reference cases in `testdata/metrics/`.
//!
//! | Function | Tool of record |
//! |---|---|
//! | [`auroc`], [`roc_curve`] | scikit-learn `roc_auc_score`, `roc_curve` |
//! | [`pauc`] | scikit-learn `roc_auc_score(max_fpr=...)` (McClish-standardised) |
//! | [`auprc`], [`pr_curve`] | scikit-learn `average_precision_score`, `precision_recall_curve` |
//! | [`f1_max`] | best F1 over scikit-learn's PR curve thresholds |
//! | [`pixel_auroc`], [`pixel_auprc`] | `roc_auc_score`, `average_precision_score` over all pixels pooled |
//! | [`aupro`], [`pro_curve`] | MVTec AD evaluation code (`compute_pro`, `trapezoid`) |
//! | [`vus`], [`vus_pr`] | TSB-AD 1.5 `generate_curve` (VUS-ROC, VUS-PR) |
//! | [`ucr_top1_hit`] | the UCR anomaly archive's rule `[begin - 100, end + 100)` |
//! | [`point_adjusted_f1_max`] | TSB-AD 1.5 `metric_PointF1PA` (point-adjusted, *not* F1) |
//! | [`Threshold`] | `numpy.quantile`, `mean + k * std`, F1-optimal |
//!
//! # Conventions
//! - Scores are "higher = more anomalous"; a sample is predicted anomalous at threshold `t` when
//!   `score >= t` (as scikit-learn's curves).
//! - Ranking metrics sort once: `O(n log n)`. Tied scores form a single threshold.
//! - Bad input is an [`Error`], never a panic and never NaN: different lengths, empty input, a
//!   non-finite score, labels of one class only where the metric is then undefined, maps and
//!   masks of different shapes.
//!
//! # Example
//! ```
//! use dmad_metrics::{auprc, auroc, f1_max, pauc, Threshold};
//!
//! let scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9];
//! let labels = [false, false, true, true, false, true];
//! assert!((auroc(&scores, &labels)? - 8.0 / 9.0).abs() < 1e-12);
//! let ap = auprc(&scores, &labels)?;
//! let best = f1_max(&scores, &labels)?;
//! let partial = pauc(&scores, &labels, 0.1)?;
//! assert!(ap > 0.8 && best.f1 > 0.8 && partial > 0.5);
//!
//! // A threshold from normal scores alone, saved with the model (feature `serde`).
//! let t = Threshold::quantile(&[0.1, 0.2, 0.3, 0.25], 0.95)?;
//! assert!(t.is_anomalous(0.8));
//!
//! // Bad input is an error, not NaN.
//! assert!(auroc(&[0.1, 0.2], &[false, false]).is_err());
//! # Ok::<(), dmad_metrics::Error>(())
//! ```
//!
//! # Features
//! - `serde`: `Serialize`/`Deserialize` for [`Threshold`] and [`ThresholdMethod`].
#![warn(missing_docs)]

mod error;
mod input;
mod pixel;
mod ranking;
mod series;
mod threshold;
mod vus;

pub use error::{Error, Result};
pub use input::Score;
pub use pixel::{aupro, pixel_auprc, pixel_auroc, pro_curve, ProCurve, AUPRO_MAX_FPR};
pub use ranking::{auprc, auroc, f1_max, pauc, pr_curve, roc_curve, F1Max, PrCurve, RocCurve};
pub use series::{point_adjusted_f1, point_adjusted_f1_max, top1_hit, ucr_top1_hit, UCR_MARGIN};
pub use threshold::{Threshold, ThresholdMethod};
pub use vus::{vus, vus_pr, Vus, VusConfig};
