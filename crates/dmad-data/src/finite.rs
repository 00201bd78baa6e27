//! Non-finite values (NaN, +/-infinity) in loaded data: rejected with their place in the file
//! (the default), or dropped or imputed when the caller asks for it.
//!
//! A CSV cell `NaN`, `inf` or `-inf` parses as a number, and an NPY array can hold them; a
//! model trained or scored on them gives NaN scores that look like results. Each loader of the
//! command line therefore passes its data through [`Table::resolve_non_finite`] or
//! [`resolve_series`] with the user's [`NonFinite`] policy.

use std::path::Path;

use crate::error::{Error, Result};
use crate::tabular::Table;
use crate::timeseries::Series;

/// What to do with NaN and infinite values in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinite {
    /// Fail with [`Error::NonFinite`] naming the file, the row, the line where known, and the
    /// column. The default.
    #[default]
    Reject,
    /// Tables: drop each row that holds one. Series cannot drop points without shifting time,
    /// so for them this is an [`Error::InvalidConfig`] that says to impute instead.
    Drop,
    /// Tables: replace each by the mean of its column's finite values. Series: linear
    /// interpolation between the nearest finite points of the channel (the nearest one at the
    /// ends).
    Impute,
}

impl NonFinite {
    /// The policy's name as the command line spells it: `error`, `drop` or `impute`.
    pub fn name(self) -> &'static str {
        match self {
            NonFinite::Reject => "error",
            NonFinite::Drop => "drop",
            NonFinite::Impute => "impute",
        }
    }
}

impl std::str::FromStr for NonFinite {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "error" | "reject" => Ok(NonFinite::Reject),
            "drop" => Ok(NonFinite::Drop),
            "impute" => Ok(NonFinite::Impute),
            other => Err(Error::InvalidConfig {
                field: "non_finite",
                reason: format!("unknown policy {other:?}; expected error, drop or impute"),
            }),
        }
    }
}

/// What [`Table::resolve_non_finite`] or [`resolve_series`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NonFiniteReport {
    /// Rows dropped.
    pub dropped_rows: usize,
    /// Values imputed.
    pub imputed_values: usize,
}

impl NonFiniteReport {
    /// Whether nothing was changed.
    pub fn is_clean(&self) -> bool {
        self.dropped_rows == 0 && self.imputed_values == 0
    }
}

impl Table {
    /// Applies `policy` to the table's non-finite feature values (the label column is checked
    /// when it is read).
    ///
    /// # Errors
    /// With [`NonFinite::Reject`], [`Error::NonFinite`] for the first one, naming the file, the
    /// 1-based row, the line (CSV) and the column. [`Error::InvalidInput`] naming the file when
    /// dropping leaves no row, or when imputing finds a column with no finite value.
    pub fn resolve_non_finite(&mut self, policy: NonFinite) -> Result<NonFiniteReport> {
        let cols = self.cols();
        let bad_at = self.features.iter().position(|v| !v.is_finite());
        let Some(first) = bad_at else {
            return Ok(NonFiniteReport::default());
        };
        let mut report = NonFiniteReport::default();
        match policy {
            NonFinite::Reject => {
                let (r, c) = (first / cols, first % cols);
                return Err(Error::NonFinite {
                    path: self.path.clone(),
                    row: r + 1,
                    line: self.lines.get(r).copied(),
                    column: self.names[c].clone(),
                    value: self.features[first],
                });
            }
            NonFinite::Drop => {
                let keep: Vec<usize> = (0..self.rows())
                    .filter(|&r| self.row(r).iter().all(|v| v.is_finite()))
                    .collect();
                if keep.is_empty() {
                    return Err(Error::invalid(
                        &self.path,
                        None,
                        None,
                        "every row holds a NaN or infinite value: dropping them leaves nothing",
                    ));
                }
                report.dropped_rows = self.rows() - keep.len();
                let mut features = Vec::with_capacity(keep.len() * cols);
                for &r in &keep {
                    features.extend_from_slice(self.row(r));
                }
                self.features = features;
                self.labels = keep.iter().map(|&r| self.labels[r]).collect();
                self.classes = keep.iter().map(|&r| self.classes[r]).collect();
                if !self.lines.is_empty() {
                    self.lines = keep.iter().map(|&r| self.lines[r]).collect();
                }
            }
            NonFinite::Impute => {
                for c in 0..cols {
                    let (mut sum, mut n) = (0f64, 0usize);
                    for r in 0..self.rows() {
                        let v = self.features[r * cols + c];
                        if v.is_finite() {
                            sum += v;
                            n += 1;
                        }
                    }
                    if n == 0 {
                        return Err(Error::invalid(
                            &self.path,
                            None,
                            Some(&self.names[c]),
                            "the column has no finite value to impute from",
                        ));
                    }
                    let mean = sum / n as f64;
                    for r in 0..self.rows() {
                        let v = &mut self.features[r * cols + c];
                        if !v.is_finite() {
                            *v = mean;
                            report.imputed_values += 1;
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}

/// Applies `policy` to the non-finite values of `series` read from `path` (series are
/// time-major, `[len, dims]`).
///
/// # Errors
/// With [`NonFinite::Reject`], [`Error::NonFinite`] for the first one, naming the file, the
/// 1-based point (`row`) and the channel (`column`, `value 0`, `value 1`, ...);
/// [`Error::InvalidConfig`] for [`NonFinite::Drop`] when there is one;
/// [`Error::InvalidInput`] naming the file when a channel has no finite value to impute from.
pub fn resolve_series(
    series: &mut Series,
    path: &Path,
    policy: NonFinite,
) -> Result<NonFiniteReport> {
    let d = series.dims.max(1);
    let Some(first) = series.values.iter().position(|v| !v.is_finite()) else {
        return Ok(NonFiniteReport::default());
    };
    match policy {
        NonFinite::Reject => Err(Error::NonFinite {
            path: path.to_path_buf(),
            row: first / d + 1,
            line: None,
            column: format!("value {}", first % d),
            value: series.values[first] as f64,
        }),
        NonFinite::Drop => Err(Error::InvalidConfig {
            field: "non_finite",
            reason: format!(
                "{} holds NaN or infinite points (the first at point {}); a series cannot drop \
                 points without shifting time: impute them instead",
                path.display(),
                first / d + 1
            ),
        }),
        NonFinite::Impute => {
            let n = series.values.len() / d;
            let mut report = NonFiniteReport::default();
            for c in 0..d {
                let at = |i: usize| series.values[i * d + c];
                let known: Vec<usize> = (0..n).filter(|&i| at(i).is_finite()).collect();
                if known.is_empty() {
                    return Err(Error::invalid(
                        path,
                        None,
                        Some(&format!("value {c}")),
                        "the channel has no finite value to impute from",
                    ));
                }
                let filled: Vec<(usize, f32)> = (0..n)
                    .filter(|&i| !at(i).is_finite())
                    .map(|i| {
                        let next = known.partition_point(|&k| k < i);
                        let v = match (next.checked_sub(1).map(|j| known[j]), known.get(next)) {
                            (Some(a), Some(&b)) => {
                                let w = (i - a) as f32 / (b - a) as f32;
                                at(a) + w * (at(b) - at(a))
                            }
                            (Some(a), None) => at(a),
                            (None, Some(&b)) => at(b),
                            (None, None) => 0.0,
                        };
                        (i, v)
                    })
                    .collect();
                report.imputed_values += filled.len();
                for (i, v) in filled {
                    series.values[i * d + c] = v;
                }
            }
            Ok(report)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            features: vec![1.0, 2.0, f64::NAN, 4.0, 5.0, f64::INFINITY],
            names: vec!["a".into(), "b".into()],
            labels: vec![0, 0, 1],
            classes: vec![0.0, 0.0, 1.0],
            path: "t.csv".into(),
            lines: vec![2, 3, 4],
        }
    }

    #[test]
    fn tables_reject_drop_or_impute() {
        let e = table().resolve_non_finite(NonFinite::Reject).unwrap_err();
        assert!(
            matches!(&e, Error::NonFinite { row: 2, line: Some(3), column, .. } if column == "a"),
            "{e}"
        );
        assert!(e.to_string().contains("t.csv"), "{e}");
        let mut t = table();
        let r = t.resolve_non_finite(NonFinite::Drop).unwrap();
        assert_eq!(r.dropped_rows, 2);
        assert_eq!(
            (t.rows(), t.labels.clone(), t.lines.clone()),
            (1, vec![0], vec![2])
        );
        let mut t = table();
        let r = t.resolve_non_finite(NonFinite::Impute).unwrap();
        assert_eq!(r.imputed_values, 2);
        assert_eq!(t.features, vec![1.0, 2.0, 3.0, 4.0, 5.0, 3.0]);
    }

    #[test]
    fn series_reject_or_interpolate() {
        let s = || Series {
            values: vec![f32::NAN, 1.0, 2.0, f32::NAN, 4.0, f32::NAN],
            dims: 1,
            labels: vec![0; 6],
        };
        let p = Path::new("s.txt");
        let e = resolve_series(&mut s(), p, NonFinite::Reject).unwrap_err();
        assert!(matches!(e, Error::NonFinite { row: 1, .. }), "{e}");
        assert!(matches!(
            resolve_series(&mut s(), p, NonFinite::Drop),
            Err(Error::InvalidConfig { .. })
        ));
        let mut x = s();
        assert_eq!(
            resolve_series(&mut x, p, NonFinite::Impute)
                .unwrap()
                .imputed_values,
            3
        );
        assert_eq!(x.values, vec![1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
    }
}
