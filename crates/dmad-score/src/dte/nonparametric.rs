//! The non-parametric DTE: the closed-form posterior of the diffusion time from the k nearest
//! training rows.

use candle_core::Tensor;

use super::{check_features, check_schedule, dte_variances, summarise, table_rows};
use super::{time_posterior, DteEstimate};
use crate::scorer::{ScoreOutput, Scorer};
use crate::{Error, Result};

/// The configuration of [`DteNonParametric`]; the defaults are the reference implementation's.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct DteNonParametricConfig {
    /// The number of nearest training rows whose squared distances are averaged. Default 5.
    /// At least 1, at most the number of training rows.
    pub k: usize,
    /// The number of diffusion timesteps `T`. Default 300.
    pub num_train_timesteps: usize,
    /// The first beta of the linear schedule. Default `1e-4`.
    pub beta_start: f64,
    /// The last beta of the linear schedule. Default `1e-2`.
    pub beta_end: f64,
    /// The summary of the posterior that is the score. Default [`DteEstimate::Mean`] (the
    /// reference implementation takes the mode).
    pub estimate: DteEstimate,
}

impl Default for DteNonParametricConfig {
    fn default() -> Self {
        Self {
            k: 5,
            num_train_timesteps: 300,
            beta_start: 1e-4,
            beta_end: 1e-2,
            estimate: DteEstimate::Mean,
        }
    }
}

/// The non-parametric DTE (arXiv 2305.18593, section 4): for a row `x` with `d` features,
/// `r^2` is the mean of the squared Euclidean distances to its `k` nearest training rows and
/// the posterior over the training timesteps is
/// `p(t | x) ∝ (sigma_t^2)^(-d/2) exp(-r^2 / (2 sigma_t^2))` (`InvGamma(sigma_t^2; d/2 - 1,
/// r^2/2)` up to a constant), normalised over `t = 0..T`. The score is its mean (or mode).
///
/// Distances are computed exactly in `f64` by brute force: `O(n_train d)` per row.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// use dmad_score::{DteNonParametric, DteNonParametricConfig, Scorer};
///
/// # fn main() -> dmad_score::Result<()> {
/// let dev = Device::Cpu;
/// let train = Tensor::new(&[[0f32, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1]], &dev)?;
/// let cfg = DteNonParametricConfig { k: 2, ..Default::default() };
/// let dte = DteNonParametric::fit(cfg, &train)?;
/// let out = dte.score(&Tensor::new(&[[0.05f32, 0.05], [1.0, 1.0]], &dev)?)?;
/// assert!(out.scores[1] > out.scores[0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DteNonParametric {
    cfg: DteNonParametricConfig,
    train: Vec<f64>,
    n: usize,
    d: usize,
    var: Vec<f64>,
}

impl DteNonParametric {
    /// Stores the normal training rows `train` (`[n, d]`).
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] if `train` is not a non-empty `[n, d]` float table;
    /// [`dmad_core::Error::InvalidInput`] for a value that is not finite;
    /// [`dmad_core::Error::InvalidConfig`] for `k = 0`, `k > n` or a bad schedule.
    pub fn fit(cfg: DteNonParametricConfig, train: &Tensor) -> Result<Self> {
        check_schedule(cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end)?;
        let (v, n, d) = table_rows(train, "DteNonParametric::fit: train")?;
        if cfg.k == 0 || cfg.k > n {
            return Err(Error::config(
                "k",
                format!("must be in 1..={n} (the training rows), got {}", cfg.k),
            ));
        }
        let var = dte_variances(cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end)?;
        Ok(Self {
            train: v.into_iter().map(f64::from).collect(),
            n,
            d,
            var,
            cfg,
        })
    }

    /// The remembered training rows `[n, d]` (f32), for saving: `fit` on them again restores
    /// this scorer exactly.
    ///
    /// # Errors
    /// Errors of candle.
    pub fn train_rows(&self, device: &candle_core::Device) -> Result<Tensor> {
        let rows: Vec<f32> = self.train.iter().map(|&v| v as f32).collect();
        Ok(Tensor::from_vec(rows, (self.n, self.d), device)?)
    }

    /// The configuration.
    pub fn config(&self) -> &DteNonParametricConfig {
        &self.cfg
    }

    /// `sigma_t^2 = 1 - alpha_bar_t` for `t = 0..T`.
    pub fn variances(&self) -> &[f64] {
        &self.var
    }

    /// The mean squared distance of each row of `x` to its `k` nearest training rows.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] if `x` is not a non-empty `[batch, d]` table;
    /// [`dmad_core::Error::InvalidInput`] for a value that is not finite.
    pub fn knn_sq_distances(&self, x: &Tensor) -> Result<Vec<f64>> {
        let (v, b) = check_features(x, self.d, "DteNonParametric: x")?;
        let k = self.cfg.k;
        let mut dist = vec![0f64; self.n];
        Ok((0..b)
            .map(|i| {
                let row = &v[i * self.d..(i + 1) * self.d];
                for (j, dj) in dist.iter_mut().enumerate() {
                    let tr = &self.train[j * self.d..(j + 1) * self.d];
                    *dj = row
                        .iter()
                        .zip(tr)
                        .map(|(&a, &b)| (a as f64 - b) * (a as f64 - b))
                        .sum();
                }
                dist.select_nth_unstable_by(k - 1, f64::total_cmp);
                dist[..k].iter().sum::<f64>() / k as f64
            })
            .collect())
    }

    /// The posterior `p(t | x)` over `t = 0..T` of each row of `x`.
    ///
    /// # Errors
    /// As [`DteNonParametric::knn_sq_distances`].
    pub fn posterior(&self, x: &Tensor) -> Result<Vec<Vec<f64>>> {
        let alpha = self.d as f64 / 2.0 - 1.0;
        Ok(self
            .knn_sq_distances(x)?
            .into_iter()
            .map(|r2| time_posterior(alpha, r2 / 2.0, &self.var))
            .collect())
    }
}

impl Scorer for DteNonParametric {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        let scores = self
            .posterior(x)?
            .iter()
            .map(|p| summarise(p, self.cfg.estimate) as f32)
            .collect();
        Ok(ScoreOutput { scores, map: None })
    }
}
