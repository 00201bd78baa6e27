//! DTE-Categorical: an MLP classifies the diffusion-time bin of a noised row.

use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use dmad_train::seeded_var_builder;

use super::network::{train_mlp, Batch, DteMlp, DteTrainConfig};
use super::{check_features, dte_variances, table_rows};
use crate::scorer::{ScoreOutput, Scorer};
use crate::{Error, Result};

/// The configuration of [`DteCategorical`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DteCategoricalConfig {
    /// The network and its training. Default: the reference implementation's hidden layers
    /// `[256, 512, 256]`, dropout 0.5, 400 epochs, batches of 64, learning rate `1e-4`,
    /// weight decay `5e-4`, `T = 400`, betas `1e-4..1e-2`, seed 0.
    pub train: DteTrainConfig,
    /// The number of time bins (classes): timestep `t` is in bin
    /// `min(floor(t * bins / T), bins - 1)`. Default 7. At least 2.
    pub num_bins: usize,
}

impl Default for DteCategoricalConfig {
    fn default() -> Self {
        Self {
            train: DteTrainConfig {
                hidden: vec![256, 512, 256],
                dropout: 0.5,
                epochs: 400,
                batch_size: 64,
                learning_rate: 1e-4,
                weight_decay: 5e-4,
                num_train_timesteps: 400,
                beta_start: 1e-4,
                beta_end: 1e-2,
                seed: 0,
            },
            num_bins: 7,
        }
    }
}

/// DTE-Categorical (arXiv 2305.18593): an MLP trained with cross entropy to classify the
/// time bin of rows noised by `x + sigma_t eps` (`t` uniform). The score of a row is the
/// expected diffusion time under the predicted bin probabilities, each bin taken at its
/// centre: `sum_b p_b (b + 0.5) T / bins` (an affine function of the reference
/// implementation's expected bin index `sum_b p_b b`, so it ranks rows the same way).
pub struct DteCategorical {
    cfg: DteCategoricalConfig,
    net: DteMlp,
    varmap: VarMap,
    d: usize,
}

impl DteCategorical {
    /// Trains the classifier on the normal rows `train` (`[n, d]`), on `train`'s device.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] for a bad configuration (fewer than 2 bins, or
    /// more bins than timesteps); [`dmad_core::Error::ShapeMismatch`] /
    /// [`dmad_core::Error::InvalidInput`] for an empty, non-table or non-finite `train`.
    pub fn fit(cfg: DteCategoricalConfig, train: &Tensor) -> Result<Self> {
        // `untrained` checks the configuration.
        let t = cfg.train.num_train_timesteps;
        let (rows, n, d) = table_rows(train, "DteCategorical::fit: train")?;
        let device = train.device().clone();
        let model = Self::untrained(cfg, d, &device)?;
        let var = dte_variances(t, model.cfg.train.beta_start, model.cfg.train.beta_end)?;
        let bins = model.cfg.num_bins;
        let Self {
            cfg,
            net,
            varmap,
            d,
        } = model;
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
                let target: Vec<u32> =
                    b.t.iter()
                        .map(|&ti| ((ti * bins) / t).min(bins - 1) as u32)
                        .collect();
                let target = Tensor::new(target, b.out.device())?;
                Ok(candle_nn::loss::cross_entropy(b.out, &target)?)
            },
        )?;
        Ok(Self {
            cfg,
            net,
            varmap,
            d,
        })
    }

    /// The classifier of rows of `d` features with its seeded initial weights, not trained:
    /// load trained weights into [`DteCategorical::weights`] (as a saved model does with
    /// `dmad_unet::load_into_varmap`).
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] for a bad configuration or `d = 0`.
    pub fn untrained(
        cfg: DteCategoricalConfig,
        d: usize,
        device: &candle_core::Device,
    ) -> Result<Self> {
        check_config(&cfg)?;
        if d == 0 {
            return Err(Error::config("features", "rows need at least one feature"));
        }
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, cfg.train.seed, DType::F32, device);
        let net = DteMlp::new(d, &cfg.train.hidden, cfg.num_bins, cfg.train.dropout, vb)?;
        Ok(Self {
            cfg,
            net,
            varmap,
            d,
        })
    }

    /// The number of features of a row.
    pub fn features(&self) -> usize {
        self.d
    }

    /// The configuration.
    pub fn config(&self) -> &DteCategoricalConfig {
        &self.cfg
    }

    /// The trained weights (save them with `VarMap::save`).
    pub fn weights(&self) -> &VarMap {
        &self.varmap
    }

    /// The predicted bin probabilities `[batch, bins]` of the rows of `x`.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] if `x` is not a non-empty `[batch, d]` table.
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        let (v, b) = check_features(x, self.d, "DteCategorical: x")?;
        let x = Tensor::from_vec(v, (b, self.d), x.device())?;
        Ok(candle_nn::ops::softmax_last_dim(
            &self.net.forward(&x, None)?,
        )?)
    }

    /// The surprisal of the first (clean) time bin, `-ln p_0`, of each row of `x`: how sure
    /// the classifier is that the row was noised at all. Unlike the expected time, which
    /// saturates at the last bin for rows farther from the training data than the schedule's
    /// largest noise, it grows without bound (the logits of a ReLU network grow linearly far
    /// from the data), so far outliers keep their order.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] if `x` is not a non-empty `[batch, d]` table.
    pub fn clean_surprisal(&self, x: &Tensor) -> Result<Vec<f32>> {
        let (v, b) = check_features(x, self.d, "DteCategorical: x")?;
        let x = Tensor::from_vec(v, (b, self.d), x.device())?;
        let logp = candle_nn::ops::log_softmax(&self.net.forward(&x, None)?, 1)?;
        Ok(logp
            .narrow(1, 0, 1)?
            .flatten_all()?
            .neg()?
            .to_vec1::<f32>()?)
    }
}

/// Checks the training configuration and the number of bins against the timesteps.
fn check_config(cfg: &DteCategoricalConfig) -> Result<()> {
    cfg.train.validate()?;
    let t = cfg.train.num_train_timesteps;
    if cfg.num_bins < 2 || cfg.num_bins > t {
        return Err(Error::config(
            "num_bins",
            format!("must be in 2..={t} (the timesteps), got {}", cfg.num_bins),
        ));
    }
    Ok(())
}

impl Scorer for DteCategorical {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        let p = self.probabilities(x)?.to_vec2::<f32>()?;
        let bins = self.cfg.num_bins as f64;
        let width = self.cfg.train.num_train_timesteps as f64 / bins;
        let scores = p
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(b, &q)| q as f64 * (b as f64 + 0.5) * width)
                    .sum::<f64>() as f32
            })
            .collect();
        Ok(ScoreOutput { scores, map: None })
    }
}

impl std::fmt::Debug for DteCategorical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DteCategorical")
            .field("cfg", &self.cfg)
            .field("features", &self.d)
            .finish_non_exhaustive()
    }
}
