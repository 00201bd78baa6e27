//! Table anomalies as in ADBench (Han et al., *ADBench*, arXiv 2206.09426): local, global,
//! cluster and dependency anomalies made from normal rows, and de-standardisation.

use candle_core::{DType, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::anomaly::Injected;
use crate::util::{check_strength, enforce_change, sample_rng};
use crate::{Error, Result};

/// The smallest change of an anomalous value of a standardised column.
pub const TABLE_MIN_CHANGE: f32 = 1e-3;

/// The kind of a table anomaly. ADBench draws its synthetic anomalies from models fitted to
/// the normal rows (a Gaussian mixture, a vine copula); these are row-level counterparts that
/// need only the normal rows' column statistics, with `strength` in `(0, 1]` where ADBench
/// has its fixed `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableAnomaly {
    /// A normal row plus Gaussian noise of `strength * sqrt(alpha - 1)` column standard
    /// deviations, `alpha = 5`: the row's neighbourhood with its covariance inflated `alpha`
    /// times at strength 1, as ADBench's local anomalies. All columns change.
    Local,
    /// Each column uniform in `[min - strength * range / 2, max + strength * range / 2]` of the
    /// normal rows (ADBench: uniform in `alpha` times the range, `alpha = 1.1`). All columns
    /// change.
    Global,
    /// The rows of one call form a tight cluster (spread 0.1 standard deviations) around the
    /// normal mean moved by `strength * alpha` standard deviations, `alpha = 5`, in every
    /// column with a random sign (ADBench: mixture means scaled by `alpha = 5`). All columns
    /// change.
    Cluster,
    /// A random subset of `max(1, round(strength * features / 2))` columns is replaced, each by
    /// the value of that column in another (random) normal row: the marginals stay normal,
    /// the dependence between columns breaks (ADBench: independent marginals in place of the
    /// copula). Only those columns change.
    Dependency,
}

impl TableAnomaly {
    /// All kinds.
    pub const ALL: [TableAnomaly; 4] = [Self::Local, Self::Global, Self::Cluster, Self::Dependency];

    /// The kind's name: `local`, `global`, `cluster`, `dependency`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Global => "global",
            Self::Cluster => "cluster",
            Self::Dependency => "dependency",
        }
    }
}

/// The normal rows an injector draws from, with their column statistics.
#[derive(Debug, Clone)]
pub struct TableInjector {
    rows: Vec<f32>,
    cols: usize,
    mean: Vec<f32>,
    std: Vec<f32>,
    min: Vec<f32>,
    max: Vec<f32>,
}

impl TableInjector {
    /// Fits the column statistics of the normal rows `normal` (`[n, features]`, n >= 2).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for another rank, fewer than 2 rows or no column;
    /// [`Error::InvalidConfig`] (field `normal`) for a non-finite value.
    pub fn fit(normal: &Tensor) -> Result<Self> {
        let dims = normal.dims();
        if dims.len() != 2 || dims[0] < 2 || dims[1] == 0 {
            return Err(Error::shape(
                "TableInjector::fit: normal",
                "[rows >= 2, features >= 1]",
                dims,
            ));
        }
        let (n, d) = (dims[0], dims[1]);
        let rows = normal
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if rows.iter().any(|v| !v.is_finite()) {
            return Err(Error::config(
                "normal",
                "the normal rows hold a non-finite value",
            ));
        }
        let mut mean = vec![0f32; d];
        let mut std = vec![0f32; d];
        let mut min = vec![f32::INFINITY; d];
        let mut max = vec![f32::NEG_INFINITY; d];
        for j in 0..d {
            let col: Vec<f64> = (0..n).map(|r| rows[r * d + j] as f64).collect();
            let m = col.iter().sum::<f64>() / n as f64;
            let v = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
            mean[j] = m as f32;
            std[j] = if v > 1e-12 { v.sqrt() as f32 } else { 1.0 };
            for &x in &col {
                min[j] = min[j].min(x as f32);
                max[j] = max[j].max(x as f32);
            }
        }
        Ok(Self {
            rows,
            cols: d,
            mean,
            std,
            min,
            max,
        })
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Makes anomalies of `kind` from the rows `x` (`[batch, features]`, normal rows to start
    /// from; `Global` and `Cluster` ignore their values). The mask `[batch, features]` is 1
    /// exactly on the values that changed (by at least [`TABLE_MIN_CHANGE`]). Row `i` uses its
    /// own stream of `seed`; the cluster centre is drawn from `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a strength outside `(0, 1]`; [`Error::ShapeMismatch`] if
    /// `x` is not `[batch >= 1, features]`.
    pub fn inject(
        &self,
        x: &Tensor,
        kind: TableAnomaly,
        strength: f64,
        seed: u64,
    ) -> Result<Injected> {
        check_strength(strength)?;
        let d = self.cols;
        let dims = x.dims().to_vec();
        if dims.len() != 2 || dims[0] == 0 || dims[1] != d {
            return Err(Error::shape(
                "TableInjector::inject: x",
                format!("[batch >= 1, {d}]"),
                &dims,
            ));
        }
        let b = dims[0];
        let s = strength as f32;
        let data = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut out = data.clone();
        let mut mask = vec![0f32; b * d];
        let n_rows = self.rows.len() / d;
        let mut centre_rng = sample_rng(seed, usize::MAX);
        let centre: Vec<f32> = (0..d)
            .map(|j| {
                let sign = if centre_rng.random_bool(0.5) {
                    1.0
                } else {
                    -1.0
                };
                self.mean[j] + sign * s * 5.0 * self.std[j]
            })
            .collect();
        for i in 0..b {
            let mut rng = sample_rng(seed, i);
            let orig = &data[i * d..(i + 1) * d];
            let o = &mut out[i * d..(i + 1) * d];
            let mut region = vec![true; d];
            match kind {
                TableAnomaly::Local => {
                    for j in 0..d {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        o[j] = orig[j] + s * 2.0 * self.std[j] * z;
                    }
                }
                TableAnomaly::Global => {
                    for j in 0..d {
                        let half = s * (self.max[j] - self.min[j]).max(1e-3) / 2.0;
                        o[j] = rng.random_range(self.min[j] - half..=self.max[j] + half);
                    }
                }
                TableAnomaly::Cluster => {
                    for j in 0..d {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        o[j] = centre[j] + 0.1 * self.std[j] * z;
                    }
                }
                TableAnomaly::Dependency => {
                    let k = ((strength * d as f64 / 2.0).round() as usize).clamp(1, d);
                    let mut cols: Vec<usize> = (0..d).collect();
                    for c in 0..k {
                        let r = rng.random_range(c..d);
                        cols.swap(c, r);
                    }
                    region = vec![false; d];
                    for &j in &cols[..k] {
                        region[j] = true;
                        // A donor value that differs, if one of a few tries finds it.
                        for _ in 0..8 {
                            let r = rng.random_range(0..n_rows);
                            o[j] = self.rows[r * d + j];
                            if (o[j] - orig[j]).abs() >= TABLE_MIN_CHANGE {
                                break;
                            }
                        }
                    }
                }
            }
            enforce_change(orig, o, |j| region[j], TABLE_MIN_CHANGE, f32::MIN, f32::MAX);
            for j in 0..d {
                mask[i * d + j] = if region[j] { 1.0 } else { 0.0 };
            }
        }
        Ok(Injected {
            x: Tensor::from_vec(out, dims, x.device())?,
            mask: Tensor::from_vec(mask, (b, d), x.device())?,
        })
    }
}

/// De-standardises rows `[batch, features]` back into the original columns:
/// `x * std + mean` (a column with `std = 0` becomes its mean), the inverse of dmad-data's
/// standardisation.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `mean` or `std` does not have one value per column.
pub fn destandardise(x: &Tensor, mean: &[f64], std: &[f64]) -> Result<Vec<Vec<f64>>> {
    let (_, d) = x.dims2()?;
    if mean.len() != d || std.len() != d {
        return Err(Error::shape(
            "destandardise: mean/std",
            format!("{d} values each (one per column)"),
            &[mean.len(), std.len()],
        ));
    }
    let rows = x.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    Ok(rows
        .into_iter()
        .map(|r| {
            r.iter()
                .zip(mean.iter().zip(std))
                .map(|(&v, (&m, &s))| v as f64 * s + m)
                .collect()
        })
        .collect())
}
