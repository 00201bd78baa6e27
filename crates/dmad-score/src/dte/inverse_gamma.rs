//! DTE-InverseGamma: an MLP predicts the scale of an inverse-gamma posterior over the
//! diffusion variance.

use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use dmad_train::seeded_var_builder;

use super::network::{train_mlp, Batch, DteMlp, DteTrainConfig};
use super::{check_features, dte_variances, summarise, table_rows, time_posterior, DteEstimate};
use crate::scorer::{invalid_input, ScoreOutput, Scorer};
use crate::Result;

/// Added to `beta` inside the logarithm of the loss, as the reference implementation.
const LOG_EPS: f64 = 1e-5;

/// The configuration of [`DteInverseGamma`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DteInverseGammaConfig {
    /// The network and its training. Default: the reference implementation's hidden layers
    /// `[128, 128]`, dropout 0.5, 400 epochs, batches of 64, learning rate `1e-4`, no weight
    /// decay, `T = 300`, betas `1e-4..1e-2`, seed 0.
    pub train: DteTrainConfig,
    /// The summary of the posterior that is the score. Default [`DteEstimate::Mean`].
    pub estimate: DteEstimate,
}

impl Default for DteInverseGammaConfig {
    fn default() -> Self {
        Self {
            train: DteTrainConfig {
                hidden: vec![128, 128],
                dropout: 0.5,
                epochs: 400,
                batch_size: 64,
                learning_rate: 1e-4,
                weight_decay: 0.0,
                num_train_timesteps: 300,
                beta_start: 1e-4,
                beta_end: 1e-2,
                seed: 0,
            },
            estimate: DteEstimate::Mean,
        }
    }
}

/// DTE-InverseGamma (arXiv 2305.18593): an MLP predicts `sqrt(beta)` from a row noised by
/// `x + sigma_t eps`; training maximises the inverse-gamma log-likelihood of the true
/// variance, `(d/2 - 1) ln(beta + 1e-5) - beta / sigma_t^2` (the terms that depend on
/// `beta`, with the shape `alpha = d/2 - 1` fixed by the Gaussian noise). The score of a row is
/// the mean (or mode) over `t = 0..T` of the posterior `InvGamma(sigma_t^2; d/2 - 1, beta)` of
/// the predicted `beta`, the same discrete posterior as [`super::DteNonParametric`]'s. (The
/// reference implementation returns the network's output `sqrt(beta)`; the expected time
/// increases with `beta`, so both rank rows alike where the output is positive.)
///
/// The likelihood has a finite maximiser only for `alpha > 0`: tables need at least 3
/// features.
pub struct DteInverseGamma {
    cfg: DteInverseGammaConfig,
    net: DteMlp,
    varmap: VarMap,
    d: usize,
    var: Vec<f64>,
}

impl DteInverseGamma {
    /// Trains the network on the normal rows `train` (`[n, d]`), on `train`'s device.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] for a bad configuration;
    /// [`dmad_core::Error::InvalidInput`] for fewer than 3 features or a value that is not
    /// finite; [`dmad_core::Error::ShapeMismatch`] for an empty or non-table `train`.
    pub fn fit(cfg: DteInverseGammaConfig, train: &Tensor) -> Result<Self> {
        cfg.train.validate()?;
        let (rows, n, d) = table_rows(train, "DteInverseGamma::fit: train")?;
        if d < 3 {
            return Err(invalid_input(format!(
                "DTE-InverseGamma needs at least 3 features (shape d/2 - 1 > 0), got {d}"
            )));
        }
        let device = train.device().clone();
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, cfg.train.seed, DType::F32, &device);
        let net = DteMlp::new(d, &cfg.train.hidden, 1, cfg.train.dropout, vb)?;
        let var = dte_variances(
            cfg.train.num_train_timesteps,
            cfg.train.beta_start,
            cfg.train.beta_end,
        )?;
        let alpha = d as f64 / 2.0 - 1.0;
        train_mlp(
            &net,
            &varmap,
            &rows,
            n,
            d,
            &var,
            &cfg.train,
            &device,
            |b: Batch<'_>| {
                let beta = b.out.sqr()?.squeeze(1)?;
                let inv_var: Vec<f32> = b.t.iter().map(|&ti| (1.0 / var[ti]) as f32).collect();
                let inv_var = Tensor::new(inv_var, b.out.device())?;
                let ll = ((beta.affine(1.0, LOG_EPS)?.log()? * alpha)? - (beta * inv_var)?)?;
                Ok(ll.mean_all()?.neg()?)
            },
        )?;
        Ok(Self {
            cfg,
            net,
            varmap,
            d,
            var,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DteInverseGammaConfig {
        &self.cfg
    }

    /// The trained weights (save them with `VarMap::save`).
    pub fn weights(&self) -> &VarMap {
        &self.varmap
    }

    /// The predicted scale `beta` of the inverse-gamma posterior of each row of `x`.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] if `x` is not a non-empty `[batch, d]` table.
    pub fn beta(&self, x: &Tensor) -> Result<Vec<f64>> {
        let (v, b) = check_features(x, self.d, "DteInverseGamma: x")?;
        let x = Tensor::from_vec(v, (b, self.d), x.device())?;
        let out = self.net.forward(&x, None)?.squeeze(1)?.to_vec1::<f32>()?;
        Ok(out.into_iter().map(|s| (s as f64) * (s as f64)).collect())
    }
}

impl Scorer for DteInverseGamma {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        let alpha = self.d as f64 / 2.0 - 1.0;
        let scores = self
            .beta(x)?
            .into_iter()
            .map(|beta| {
                summarise(&time_posterior(alpha, beta, &self.var), self.cfg.estimate) as f32
            })
            .collect();
        Ok(ScoreOutput { scores, map: None })
    }
}

impl std::fmt::Debug for DteInverseGamma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DteInverseGamma")
            .field("cfg", &self.cfg)
            .field("features", &self.d)
            .finish_non_exhaustive()
    }
}
