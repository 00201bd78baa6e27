//! Diffusion-time estimation in the detector: the non-parametric posterior from the nearest
//! training samples ([`ScorerConfig::Dte`]) and the trained time classifier
//! ([`ScorerConfig::DteCategorical`]), fitted on what the network would have seen (flattened
//! samples, or standardised patch features in feature space) and saved with the model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use dmad_score::dte::{
    DteCategorical, DteCategoricalConfig, DteNonParametric, DteNonParametricConfig, DteTrainConfig,
};
use dmad_score::{ScoreOutput, Scorer};

use crate::config::{DetectorConfig, ScorerConfig};
use crate::{Error, Result};

/// Name of the training rows of a non-parametric DTE scorer in `dte.safetensors`.
const DTE_TRAIN: &str = "dte.train";
/// The file holding a DTE scorer's state: the training rows (non-parametric) or the
/// classifier's weights (categorical).
pub(super) const DTE_FILE: &str = "dte.safetensors";

/// The time classifier's first layer, whose shape gives the features of its rows.
const FIRST_LAYER: &str = "layers.0.weight";
/// The hidden layers of the time classifier: the reference implementation's.
const CATEGORICAL_HIDDEN: [usize; 3] = [256, 512, 256];
/// The L2 weight decay of the time classifier: the reference implementation's.
const CATEGORICAL_WEIGHT_DECAY: f64 = 5e-4;

/// A fitted DTE scorer.
pub(super) enum DteModel {
    /// The closed-form posterior from the `k` nearest training rows.
    NonParametric(DteNonParametric),
    /// The time-bin classifier.
    Categorical(DteCategorical),
}

impl DteModel {
    /// Fits the DTE scorer `cfg.scorer` asks for on `rows` (`[n, d]`); `None` for the
    /// network's scorers.
    pub(super) fn fit(cfg: &DetectorConfig, rows: &Tensor) -> Result<Option<Self>> {
        Ok(match cfg.scorer {
            ScorerConfig::Dte { k } => Some(Self::NonParametric(DteNonParametric::fit(
                non_parametric_config(cfg, k),
                rows,
            )?)),
            ScorerConfig::DteCategorical { bins, .. } => {
                let n = rows.dim(0)?;
                Some(Self::Categorical(DteCategorical::fit(
                    categorical_config(cfg, bins, n),
                    rows,
                )?))
            }
            _ => None,
        })
    }

    /// Whether this fit scores `scorer`: a DTE scorer of the same kind with the fitted
    /// settings (`k` neighbours, or the classifier's `bins`); the expected-time and surprisal
    /// readings of one classifier are both served.
    pub(super) fn serves(&self, scorer: &ScorerConfig) -> bool {
        match (self, scorer) {
            (Self::NonParametric(m), ScorerConfig::Dte { k }) => m.config().k == *k,
            (Self::Categorical(m), ScorerConfig::DteCategorical { bins, .. }) => {
                m.config().num_bins == *bins
            }
            _ => false,
        }
    }

    /// Scores rows `[n, d]`, one score each, as `scorer` (the detector's, or a candidate of
    /// the same kind) says.
    pub(super) fn score(&self, rows: &Tensor, scorer: ScorerConfig) -> Result<ScoreOutput> {
        Ok(match (self, scorer) {
            (
                Self::Categorical(m),
                ScorerConfig::DteCategorical {
                    surprisal: true, ..
                },
            ) => ScoreOutput {
                scores: m.clean_surprisal(rows)?,
                map: None,
            },
            (Self::NonParametric(m), _) => m.score(rows)?,
            (Self::Categorical(m), _) => m.score(rows)?,
        })
    }

    /// The tensors [`DteModel::load`] rebuilds the scorer from.
    pub(super) fn tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        Ok(match self {
            Self::NonParametric(m) => [(DTE_TRAIN.to_string(), m.train_rows(device)?)].into(),
            Self::Categorical(m) => m
                .weights()
                .data()
                .lock()
                .map_err(|_| Error::NotFitted)?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
                .collect(),
        })
    }

    /// Rebuilds the DTE scorer of `cfg.scorer` from `path` (written from
    /// [`DteModel::tensors`]); `None` for the network's scorers.
    ///
    /// # Errors
    /// [`Error::Model`] naming the file when it lacks a tensor or holds weights of another
    /// shape.
    pub(super) fn load(cfg: &DetectorConfig, path: &Path, device: &Device) -> Result<Option<Self>> {
        Ok(match cfg.scorer {
            ScorerConfig::Dte { k } => {
                let mut rows = dmad_train::checkpoint::load_tensors(path, device)?;
                let train = rows.remove(DTE_TRAIN).ok_or_else(|| Error::Model {
                    path: path.to_path_buf(),
                    reason: format!("has no tensor `{DTE_TRAIN}`"),
                })?;
                Some(Self::NonParametric(DteNonParametric::fit(
                    non_parametric_config(cfg, k),
                    &train,
                )?))
            }
            ScorerConfig::DteCategorical { bins, .. } => {
                // The classifier's first layer, `[hidden, d]`, says how many features it takes.
                let tensors = dmad_train::checkpoint::load_tensors(path, device)?;
                let d = tensors
                    .get(FIRST_LAYER)
                    .and_then(|w| w.dims().get(1).copied())
                    .ok_or_else(|| Error::Model {
                        path: path.to_path_buf(),
                        reason: format!("has no `[hidden, features]` tensor `{FIRST_LAYER}`"),
                    })?;
                let m = DteCategorical::untrained(categorical_config(cfg, bins, 1), d, device)?;
                dmad_unet::load_into_varmap(m.weights(), path)?;
                Some(Self::Categorical(m))
            }
            _ => None,
        })
    }
}

/// Non-parametric DTE with `k` neighbours on the detector's noise schedule.
fn non_parametric_config(cfg: &DetectorConfig, k: usize) -> DteNonParametricConfig {
    let sc = &cfg.schedule;
    DteNonParametricConfig {
        k,
        num_train_timesteps: sc.num_train_timesteps,
        beta_start: sc.beta_start,
        beta_end: sc.beta_end,
        ..DteNonParametricConfig::default()
    }
}

/// The time classifier of `bins` bins on the detector's noise schedule, trained on about
/// `train.steps x train.batch_size` rows (whole passes over the `n` training rows, at least
/// one) and at most `train.steps` passes: with fewer rows than a batch every step is one
/// short pass, and the cap keeps them to `steps` (5 rows and 2000 steps of 64 were 25,600
/// small steps and 5 minutes for six clips before it); with `n >= batch` it never binds. At
/// `train.learning_rate`, seeded by `train.seed`. No dropout:
/// the reference's 0.5 guards 400 passes over a few hundred table rows, while a feature-space
/// detector makes a few passes over 10^5 patches.
fn categorical_config(cfg: &DetectorConfig, bins: usize, n: usize) -> DteCategoricalConfig {
    let t = &cfg.train;
    let sc = &cfg.schedule;
    let batch = t.batch_size.max(1);
    let epochs = (t.steps * batch).div_ceil(n.max(1)).min(t.steps).max(1);
    DteCategoricalConfig {
        train: DteTrainConfig {
            hidden: CATEGORICAL_HIDDEN.to_vec(),
            dropout: 0.0,
            epochs,
            batch_size: batch,
            learning_rate: t.learning_rate,
            weight_decay: CATEGORICAL_WEIGHT_DECAY,
            num_train_timesteps: sc.num_train_timesteps,
            beta_start: sc.beta_start,
            beta_end: sc.beta_end,
            seed: t.seed,
        },
        num_bins: bins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classifier_sees_about_steps_times_batch_rows_in_at_most_steps_passes() {
        let mut cfg = DetectorConfig::for_audio_log_mel();
        cfg.train.steps = 2000;
        cfg.train.batch_size = 64;
        let epochs = |n| categorical_config(&cfg, 7, n).train.epochs;
        // Many rows: whole passes covering 2000 x 64 rows.
        assert_eq!(epochs(100_000), 2);
        assert_eq!(epochs(96), 1334);
        assert_eq!(epochs(64), 2000);
        // Fewer rows than a batch: one short step a pass, at most `steps` of them.
        assert_eq!(epochs(5), 2000);
        assert_eq!(epochs(1), 2000);
    }
}
