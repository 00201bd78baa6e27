//! The end-to-end detector: fit on normal data, score, threshold, save and load.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use dmad_core::Denoiser;
use dmad_diffusion::NoiseSchedule;
use dmad_metrics::Threshold;
use dmad_score::{
    DenoisingErrorConfig, DenoisingErrorScorer, EfficientNetExtractor, ImputationConfig,
    ImputationScorer, NormKind, Normaliser, ReconstructionScorer, ScoreOutput, Scorer, Terms,
};
use dmad_train::{Control, Progress, Trainer};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::config::{DetectorConfig, NetworkConfig, ScorerConfig, ScoringConfig};
use crate::feature_space::{self, FeatureSpace};
use crate::network::Network;
use crate::{Error, Result};

mod dte;
mod input;
mod persist;
mod pixel;

use dte::DteModel;
use input::RowStandardiser;

/// The format version of saved models written by this dmad.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// What fitting learnt besides the weights: the decision threshold and the statistics of the
/// normal calibration scores. Saved as `calibration.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The decision threshold on the score; a score at or above it is anomalous.
    pub threshold: Threshold,
    /// Mean of the normal calibration scores.
    pub normal_mean: f64,
    /// Standard deviation of the normal calibration scores.
    pub normal_std: f64,
    /// How many normal samples the threshold was set from.
    pub calibration_samples: usize,
    /// How many normal samples the network was trained on.
    pub train_samples: usize,
    /// The combined scorer: each term's statistics on the calibration normals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normaliser: Option<Normaliser>,
    /// How the threshold was set, in words (rule and data), e.g. "the 0.99 quantile of the
    /// scores of 24 held-out normal samples". Empty in models saved before this field.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
}

/// Scores of a batch.
#[derive(Debug, Clone)]
pub struct Scores {
    /// One score per sample; higher is more anomalous.
    pub scores: Vec<f32>,
    /// Per-position anomaly maps, `[batch, H, W]` for images and scalograms, `[batch, length]`
    /// for series windows; `None` for tables.
    pub maps: Option<Tensor>,
}

/// The anomaly detector: a diffusion model trained on normal data, scored by partial
/// diffusion and reconstruction.
///
/// # Example
/// ```no_run
/// # fn main() -> dmad::Result<()> {
/// use candle_core::{Device, Tensor};
/// let normal = Tensor::randn(0f32, 1.0, (64, 1, 32, 32), &Device::Cpu)?;
/// let mut det = dmad::Detector::for_images(1)?;
/// det.fit(&normal, |_| {})?;
/// let scores = det.score(&normal)?;
/// let flags = det.predict(&scores.scores)?;
/// det.save("model")?;
/// # Ok(()) }
/// ```
pub struct Detector {
    cfg: DetectorConfig,
    device: Device,
    schedule: NoiseSchedule,
    net: Network,
    /// The inference copy of `net` (untracked views of the same weights) that scores.
    frozen: Network,
    varmap: VarMap,
    /// DTE's memory of the training rows ([`ScorerConfig::Dte`]) or its trained time
    /// classifier ([`ScorerConfig::DteCategorical`]).
    dte: Option<DteModel>,
    /// The frozen EfficientNet-Lite0 of the feature and combined scorers.
    features: Option<std::sync::Arc<EfficientNetExtractor>>,
    /// The frozen extractor and patch standardisation of a feature-space detector.
    space: Option<FeatureSpace>,
    /// The standardisation of input rows (log-mel statistics), once fitted or loaded.
    rows: Option<RowStandardiser>,
    calibration: Option<Calibration>,
    /// What early stopping measured in the last fit (`train.validate_every`).
    validation: Option<dmad_train::ValidationReport>,
}

/// Noise levels of early stopping's held-out loss.
const VALIDATION_LEVELS: usize = 8;
/// Held-out rows (patches, windows, samples) early stopping measures, at most.
const VALIDATION_SAMPLES: usize = 4096;
/// Mixed into the training seed for the held-out noise, so that it differs from the
/// training stream's draws.
const VALIDATION_SEED: u64 = 0x76a1_1d47;

/// The file holding a feature-space detector's patch standardisation.
const FEATURE_SPACE_FILE: &str = "feature_space.safetensors";

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("cfg", &self.cfg)
            .field("device", &self.device)
            .field("calibration", &self.calibration)
            .finish()
    }
}

impl Detector {
    /// A detector with `cfg` on `device`; its network has seeded random weights until
    /// [`Detector::fit`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] and the errors of building the network and schedule.
    pub fn new(cfg: DetectorConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let schedule = NoiseSchedule::new(cfg.schedule.clone())?;
        let (net, varmap) = Network::build(&cfg.network, cfg.train.seed, device)?;
        let frozen = Network::frozen(&cfg.network, &varmap, device)?;
        let features = load_features(&cfg, device)?;
        let space = match &cfg.feature_space {
            Some(fs) => {
                let path = feature_space::weights_path(cfg.scoring.feature_weights.as_ref())?;
                let space = FeatureSpace::load(fs, &path, device)?;
                if let NetworkConfig::Mlp(m) = &cfg.network {
                    if m.in_features != space.model_dims() {
                        return Err(Error::InvalidConfig {
                            field: "network.in_features",
                            reason: format!(
                                "the MLP takes {} features, but the feature space's blocks {:?} \
                                 give {} per patch{}: set network.in_features to that",
                                m.in_features,
                                fs.blocks,
                                space.model_dims(),
                                if fs.positional {
                                    " (with the two positions)"
                                } else {
                                    ""
                                }
                            ),
                        });
                    }
                }
                Some(space)
            }
            None => None,
        };
        Ok(Self {
            cfg,
            device: device.clone(),
            schedule,
            net,
            frozen,
            varmap,
            dte: None,
            rows: None,
            features,
            space,
            calibration: None,
            validation: None,
        })
    }

    /// The image defaults ([`DetectorConfig::for_images`]) on the CPU.
    ///
    /// # Errors
    /// As [`Detector::new`].
    pub fn for_images(channels: usize) -> Result<Self> {
        Self::new(DetectorConfig::for_images(channels), &Device::Cpu)
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// The calibration, once fitted or loaded.
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// The device the detector runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trained denoiser (for sampling and generation).
    pub fn denoiser(&self) -> &dyn Denoiser {
        &self.frozen
    }

    /// The noise schedule.
    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        if self.cfg.log_mel_windows() {
            let d = self.cfg.input.log_mel_row_len();
            if x.rank() != 3 || x.dim(0)? == 0 || x.dim(1)? == 0 || x.dim(2)? != d {
                return Err(Error::ShapeMismatch {
                    context: "log-mel windows detector input",
                    expected: format!(
                        "[clips >= 1, windows >= 1, {d}]: each clip's log-mel windows"
                    ),
                    got: x.dims().to_vec(),
                });
            }
            return Ok(());
        }
        if self.space.is_some() {
            let c = self.cfg.input.channels;
            if x.rank() != 4 || x.dim(0)? == 0 || x.dim(1)? != c {
                return Err(Error::ShapeMismatch {
                    context: "feature-space detector input",
                    expected: format!(
                        "[batch >= 1, {c}, height, width]: images of the model's {c} channel(s)"
                    ),
                    got: x.dims().to_vec(),
                });
            }
            return Ok(());
        }
        let rank = self.net.sample_rank() + 1;
        if x.rank() != rank || x.dim(0)? == 0 {
            return Err(Error::ShapeMismatch {
                context: "detector input",
                expected: match rank {
                    4 => "[batch, channels, height, width] with batch >= 1".into(),
                    3 => "[batch, channels, length] with batch >= 1".into(),
                    _ => "[batch, features] with batch >= 1".into(),
                },
                got: x.dims().to_vec(),
            });
        }
        Ok(())
    }

    /// Trains the network on normal samples `data` (`[n, ...]`), then sets the threshold from
    /// held-out normal samples. `progress` is called after every training step.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for data of the wrong rank or channel count, and the errors of
    /// training and scoring.
    pub fn fit(&mut self, data: &Tensor, progress: impl FnMut(&Progress)) -> Result<()> {
        self.fit_with_checkpoints(data, None, progress)
    }

    /// As [`Detector::fit`], writing training checkpoints to `checkpoint_dir` and resuming
    /// from the newest one there if it exists (so an interrupted fit goes on where it stopped).
    ///
    /// # Errors
    /// As [`Detector::fit`], and checkpoint errors (a checkpoint of another config).
    pub fn fit_with_checkpoints(
        &mut self,
        data: &Tensor,
        checkpoint_dir: Option<&Path>,
        mut progress: impl FnMut(&Progress),
    ) -> Result<()> {
        self.fit_until(data, checkpoint_dir, |p| {
            progress(p);
            Control::Continue
        })
        .map(|_| ())
    }

    /// As [`Detector::fit_with_checkpoints`], with a `progress` callback that may stop the
    /// training (a user's Ctrl-C): when it returns [`Control::Stop`], training ends after that
    /// step and the fit returns `Ok(false)` without calibrating, so the detector stays
    /// unfitted (with a checkpoint directory, the next fit resumes). `Ok(true)` when the fit
    /// completed.
    ///
    /// # Errors
    /// As [`Detector::fit_with_checkpoints`].
    pub fn fit_until(
        &mut self,
        data: &Tensor,
        checkpoint_dir: Option<&Path>,
        mut progress: impl FnMut(&Progress) -> Control,
    ) -> Result<bool> {
        self.check_input(data)?;
        let data = data.to_device(&self.device)?;
        let n = data.dim(0)?;
        let (cal_idx, train_idx) = self.calibration_split(n);
        let (cal_idx, train_idx) = (cal_idx.as_slice(), train_idx.as_slice());
        let device = self.device.clone();
        let pick = |idx: &[u32]| -> Result<Tensor> {
            let idx = Tensor::new(idx, &device)?;
            Ok(data.index_select(&idx, 0)?)
        };
        let train = self.training_rows(&pick(train_idx)?, true)?;
        if let Some(fs) = self.cfg.feature_space.as_mut() {
            if let Some(space) = self.space.as_ref() {
                fs.extractor_sha256 = Some(space.sha256().to_string());
            }
        }
        // Early stopping measures the held-out normals, prepared as the training rows are.
        let validation = match self.cfg.train.validate_every {
            Some(_) if !self.cfg.scorer.is_dte() => {
                if cal_idx.is_empty() {
                    return Err(Error::InvalidConfig {
                        field: "train.validate_every",
                        reason: "early stopping needs held-out normals: set \
                                 calibration_fraction above 0 (with at least 2 samples)"
                            .into(),
                    });
                }
                let rows = self.training_rows(&pick(cal_idx)?, false)?;
                // At the levels the network trains on.
                let v = dmad_train::Validation::new_in(
                    &rows,
                    &self.schedule,
                    self.cfg
                        .train
                        .timesteps(self.schedule.num_train_timesteps())?,
                    VALIDATION_LEVELS,
                    VALIDATION_SAMPLES,
                    self.cfg.train.seed ^ VALIDATION_SEED,
                )?;
                Some(v)
            }
            _ => None,
        };
        let model_config =
            serde_json::to_value(&self.cfg.network).map_err(|e| Error::InvalidConfig {
                field: "network",
                reason: e.to_string(),
            })?;
        let resume = checkpoint_dir
            .map(dmad_train::checkpoint::latest)
            .transpose()?
            .flatten()
            .is_some();
        let mut trainer = if resume {
            Trainer::resume(
                self.cfg.train.clone(),
                self.schedule.clone(),
                &self.varmap,
                model_config,
                checkpoint_dir.unwrap_or(Path::new(".")),
            )?
        } else {
            Trainer::new(
                self.cfg.train.clone(),
                self.schedule.clone(),
                &self.varmap,
                model_config,
            )?
        };
        if self.cfg.scorer.is_dte() {
            // DTE trains no denoiser: its posterior over diffusion times comes from the
            // distances to the k nearest training samples, or from a classifier of the time
            // trained here on noised copies of them.
            self.dte = DteModel::fit(&self.cfg, &train.flatten_from(1)?)?;
        } else {
            let mut stopped = false;
            let callback = |p: &Progress| {
                let control = progress(p);
                stopped |= control == Control::Stop;
                control
            };
            match &validation {
                Some(v) => {
                    let report = trainer.fit_validated(
                        &self.net,
                        &train,
                        None,
                        checkpoint_dir,
                        v,
                        callback,
                    )?;
                    self.validation = Some(report);
                }
                None => trainer.fit(&self.net, &train, None, checkpoint_dir, callback)?,
            }
            if stopped {
                return Ok(false);
            }
            trainer.apply_ema()?;
        }

        // Calibrate on the held-out normals (or on the training data when none is held out).
        let cal = if cal_idx.is_empty() {
            pick(train_idx)?
        } else {
            pick(cal_idx)?
        };
        self.calibrate_on(&cal, train_idx.len())?;
        Ok(true)
    }

    /// What early stopping measured in this detector's last fit (`train.validate_every`):
    /// the held-out loss at each measured step and the step whose weights were kept; `None`
    /// without early stopping or for a loaded detector.
    pub fn validation(&self) -> Option<&dmad_train::ValidationReport> {
        self.validation.as_ref()
    }

    /// The rows the network learns from, made from samples `x` as fitting makes them:
    /// windows normalised, log-mel features standardised (their statistics fitted here when
    /// `fit`), images tiled, patch features extracted and standardised (likewise).
    fn training_rows(&mut self, x: &Tensor, fit: bool) -> Result<Tensor> {
        let rows = input::normalise_windows(&self.cfg, x)?;
        // A clip's log-mel windows are rows of their own.
        let rows = if self.cfg.log_mel_windows() {
            rows.flatten(0, 1)?
        } else {
            rows
        };
        // Row features (log-mel statistics or windows) are standardised with the training
        // rows' own, log-mel images band by band.
        let rows = if self.cfg.log_mel() {
            if fit {
                self.rows = Some(if self.cfg.log_mel_image() {
                    RowStandardiser::fit_bands(&rows)?
                } else {
                    RowStandardiser::fit(&rows)?
                });
            }
            self.prepare_input(&rows)?
        } else {
            rows
        };
        // A network that sees images in tiles learns from every tile of the training images.
        let rows = match self.tiling()? {
            Some(t) => t.split(&rows)?,
            None => rows,
        };
        // In feature space the model learns the standardised patch vectors of the images.
        Ok(match self.space.as_mut() {
            Some(space) => {
                let (raw, hw) = space.raw_rows(&rows)?;
                if fit {
                    space.fit_stats(&raw, hw)?;
                }
                space.standardise(&raw, hw)?
            }
            None => rows,
        })
    }

    /// Which of `n` fitting samples [`Detector::fit`] holds out to calibrate the threshold
    /// (the first `calibration_fraction` of a shuffle seeded by `train.seed`; none when that
    /// would leave nothing to train on) and which it trains on, as indices.
    pub fn calibration_split(&self, n: usize) -> (Vec<u32>, Vec<u32>) {
        let n_cal = ((n as f64) * self.cfg.calibration_fraction).round() as usize;
        let n_cal = if n - n_cal.min(n) < 1 { 0 } else { n_cal };
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
            self.cfg.train.seed,
        ));
        let train = order.split_off(n_cal);
        (order, train)
    }

    /// Sets the threshold (and, for the combined scorer, each term's normalisation) from
    /// normal samples `normal`, as fitting does with its held-out normals.
    ///
    /// # Errors
    /// The errors of scoring; [`Error::Score`] when the normal scores do not spread (a
    /// combined term cannot be normalised).
    pub fn calibrate(&mut self, normal: &Tensor) -> Result<()> {
        let train_samples = self.calibration.as_ref().map_or(0, |c| c.train_samples);
        self.calibrate_on(normal, train_samples)
    }

    fn calibrate_on(&mut self, cal: &Tensor, train_samples: usize) -> Result<()> {
        self.check_input(cal)?;
        let normaliser = match self.cfg.scorer {
            ScorerConfig::Combined { .. } => {
                let terms = self.terms(cal)?;
                Some(Normaliser::fit(&terms, NormKind::MeanStd)?)
            }
            _ => None,
        };
        let out = self.score_with(cal, normaliser.as_ref())?;
        let samples = out.scores.len();
        // A scorer whose series points take the per-step map is thresholded on its steps.
        let steps = self.cfg.scorer.scores_steps() && out.maps.is_some();
        // Smoothed as the points will be (each window on its own: an approximation of the
        // smoothing over the whole series).
        let sigma = self.cfg.scoring.point_sigma;
        let scores = match (&out.maps, steps) {
            (Some(m), true) if sigma > 0.0 => dmad_score::maps::gaussian_smooth(m, sigma)?
                .flatten_all()?
                .to_vec1::<f32>()?,
            (Some(m), true) => m.flatten_all()?.to_vec1::<f32>()?,
            _ => out.scores,
        };
        let threshold = self.cfg.threshold.threshold(&scores)?;
        let mean = scores.iter().map(|&s| s as f64).sum::<f64>() / scores.len() as f64;
        let var = scores
            .iter()
            .map(|&s| (s as f64 - mean).powi(2))
            .sum::<f64>()
            / scores.len() as f64;
        let rule = self.cfg.threshold.describe();
        let method = format!(
            "{rule} of the {}scores of {samples} held-out normal samples{}",
            match (steps, sigma > 0.0) {
                (true, true) => "smoothed per-step ",
                (true, false) => "per-step ",
                _ => "",
            },
            if samples < 20 {
                " (fewer than 20: a rough threshold)"
            } else {
                ""
            }
        );
        self.calibration = Some(Calibration {
            threshold,
            normal_mean: mean,
            normal_std: var.sqrt(),
            calibration_samples: samples,
            train_samples,
            normaliser,
            method,
        });
        Ok(())
    }

    /// Changes how the detector scores (the scorer and the partial-diffusion settings, for
    /// example as chosen by a calibration on generated anomalies) and recalibrates the
    /// threshold on the normal samples `normal`. The network is not retrained.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a scorer or settings the detector cannot use (nothing
    /// changes then); the errors of [`Detector::calibrate`].
    pub fn set_scoring(
        &mut self,
        scorer: ScorerConfig,
        scoring: ScoringConfig,
        normal: &Tensor,
    ) -> Result<()> {
        self.check_fit_serves(&scorer)?;
        let mut cfg = self.cfg.clone();
        cfg.scorer = scorer;
        cfg.scoring = scoring;
        cfg.validate()?;
        let features = if cfg.scorer.needs_features() && self.features.is_none() {
            load_features(&cfg, &self.device)?
        } else {
            self.features.clone()
        };
        let old = std::mem::replace(&mut self.cfg, cfg);
        let old_features = std::mem::replace(&mut self.features, features);
        if let Err(e) = self.calibrate(normal) {
            self.cfg = old;
            self.features = old_features;
            return Err(e);
        }
        Ok(())
    }

    /// Sets `scoring.point_sigma`, the smoothing of a series' point scores
    /// ([`crate::series::point_scores`]); window scores and maps are unchanged, and so is the
    /// threshold until [`Detector::calibrate`] is called (calibration smooths the per-step
    /// scores by `point_sigma` as the points are).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a negative or non-finite sigma, or a detector that does not
    /// score series (nothing changes then).
    pub fn set_point_sigma(&mut self, sigma: f64) -> Result<()> {
        self.set_point_scoring(self.cfg.scorer, sigma)
    }

    /// Sets the settings of a scorer of the kind the detector has (for example the imputation
    /// scorer's noise levels, as [`crate::series::fit_series`] chooses them) and
    /// `scoring.point_sigma`, without retraining or recalibrating: the threshold is unchanged
    /// until [`Detector::calibrate`] or [`Detector::set_threshold`] is called.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a scorer of another kind (use [`Detector::set_scoring`]),
    /// settings the configuration rejects, or a sigma as [`Detector::set_point_sigma`]
    /// rejects (nothing changes then).
    pub fn set_point_scoring(&mut self, scorer: ScorerConfig, sigma: f64) -> Result<()> {
        if std::mem::discriminant(&scorer) != std::mem::discriminant(&self.cfg.scorer) {
            return Err(Error::InvalidConfig {
                field: "scorer",
                reason: format!(
                    "set_point_scoring keeps the scorer's kind ({:?}); got {scorer:?}",
                    self.cfg.scorer
                ),
            });
        }
        let mut cfg = self.cfg.clone();
        cfg.scorer = scorer;
        cfg.scoring.point_sigma = sigma;
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }

    /// Checks that what was fitted scores `scorer`: a DTE fit (training rows or a time
    /// classifier) serves only DTE of its own kind and settings, a network only the
    /// network's scorers.
    fn check_fit_serves(&self, scorer: &ScorerConfig) -> Result<()> {
        let served = match &self.dte {
            Some(dte) => dte.serves(scorer),
            None => !scorer.is_dte(),
        };
        if served {
            return Ok(());
        }
        Err(Error::InvalidConfig {
            field: "scorer",
            reason: format!(
                "{scorer:?} needs a new fit: the detector was fitted for {:?} (DTE keeps \
                 training rows or a time classifier instead of a denoiser, fitted for its \
                 own k or bins)",
                self.cfg.scorer
            ),
        })
    }

    /// Scores a batch (`[batch, ...]`): one score per sample and, where the data has
    /// positions, an anomaly map.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for input of the wrong rank; errors of the network.
    pub fn score(&self, x: &Tensor) -> Result<Scores> {
        let normaliser = self
            .calibration
            .as_ref()
            .and_then(|c| c.normaliser.as_ref());
        self.score_with(x, normaliser)
    }

    /// As [`Detector::score`], calling `progress(done, total)` after each batch of
    /// `scoring.batch_size` samples (the same scores: batching and seeding are unchanged).
    ///
    /// # Errors
    /// As [`Detector::score`].
    pub fn score_with_progress(
        &self,
        x: &Tensor,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Scores> {
        let normaliser = self
            .calibration
            .as_ref()
            .and_then(|c| c.normaliser.as_ref());
        let mut all = self.score_each(x, normaliser, &[self.cfg.scorer], &mut progress)?;
        Ok(all.pop().expect("one scorer, one result"))
    }

    fn score_with(&self, x: &Tensor, normaliser: Option<&Normaliser>) -> Result<Scores> {
        let mut all = self.score_each(x, normaliser, &[self.cfg.scorer], &mut |_, _| {})?;
        Ok(all.pop().expect("one scorer, one result"))
    }

    /// Scores `x` under each of `scorers` with the same trained network, as the detector would
    /// with each of them in its configuration, without changing the detector (no threshold is
    /// recalibrated): for choosing scoring settings, for example on generated anomalies. A
    /// feature-space detector extracts the patch features once for all candidates. Scoring
    /// settings other than the scorer (`scoring`) are the detector's.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a scorer the detector cannot use (see
    /// [`Detector::set_scoring`]); the errors of [`Detector::score`].
    pub fn score_candidates(&self, x: &Tensor, scorers: &[ScorerConfig]) -> Result<Vec<Scores>> {
        for &scorer in scorers {
            let cfg = DetectorConfig {
                scorer,
                ..self.cfg.clone()
            };
            cfg.validate()?;
            self.check_fit_serves(&scorer)?;
            if scorer.needs_features() && self.features.is_none() {
                return Err(Error::InvalidConfig {
                    field: "scorer",
                    reason: "the feature network is not loaded (use set_scoring)".to_string(),
                });
            }
        }
        let normaliser = self
            .calibration
            .as_ref()
            .and_then(|c| c.normaliser.as_ref());
        self.score_each(x, normaliser, scorers, &mut |_, _| {})
    }

    fn score_each(
        &self,
        x: &Tensor,
        normaliser: Option<&Normaliser>,
        scorers: &[ScorerConfig],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Scores>> {
        self.check_input(x)?;
        let x = self.prepare_input(&x.to_device(&self.device)?)?;
        let n = x.dim(0)?;
        let bs = self.cfg.scoring.batch_size;
        let mut scores = vec![Vec::with_capacity(n); scorers.len()];
        let mut maps = vec![Vec::new(); scorers.len()];
        let mut start = 0;
        while start < n {
            let len = bs.min(n - start);
            let chunk = x.narrow(0, start, len)?;
            let outs = match &self.space {
                Some(space) => self.score_patches(space, &chunk, start as u64, scorers)?,
                None if self.cfg.log_mel_windows() => {
                    self.score_windows(&chunk, start as u64, scorers)?
                }
                None => scorers
                    .iter()
                    .map(|&sc| self.score_chunk(&chunk, start as u64, normaliser, sc))
                    .collect::<Result<Vec<_>>>()?,
            };
            for (k, out) in outs.into_iter().enumerate() {
                scores[k].extend(out.scores);
                if let Some(m) = out.map {
                    maps[k].push(m);
                }
            }
            start += len;
            progress(start, n);
        }
        scores
            .into_iter()
            .zip(maps)
            .map(|(scores, maps)| {
                let maps = if maps.is_empty() {
                    None
                } else {
                    Some(Tensor::cat(&maps, 0)?)
                };
                Ok(Scores { scores, maps })
            })
            .collect()
    }

    /// The input as the model sees it: series windows z-normalised on their own under
    /// `WindowNorm::Window`, rows (log-mel statistics or windows) standardised, log-mel
    /// images band by band.
    fn prepare_input(&self, x: &Tensor) -> Result<Tensor> {
        let x = input::normalise_windows(&self.cfg, x)?;
        match &self.rows {
            Some(rows) if self.cfg.log_mel_image() => rows.apply_bands(&x),
            Some(rows) => rows.apply(&x),
            None => Ok(x),
        }
    }

    fn imputation_scorer(
        &self,
        levels: usize,
        max_strength: f64,
        phases: usize,
        offset: u64,
    ) -> Result<ImputationScorer<&Network>> {
        let masks = self.cfg.train.imputation.ok_or(Error::InvalidConfig {
            field: "train.imputation",
            reason: "the imputation scorer needs a network trained to impute".to_string(),
        })?;
        let s = &self.cfg.scoring;
        let cfg = ImputationConfig {
            masks,
            phases,
            timesteps: dmad_score::levels(
                levels,
                max_strength,
                self.schedule.num_train_timesteps(),
            ),
            draws: s.draws,
            seed: s
                .seed
                .wrapping_add(offset.wrapping_mul(0x2545_f491_4f6c_dd1d)),
        };
        Ok(ImputationScorer::new(
            &self.frozen,
            self.schedule.clone(),
            cfg,
        )?)
    }

    fn denoising_scorer(
        &self,
        levels: usize,
        max_strength: f64,
        noise_free: bool,
        offset: u64,
    ) -> Result<DenoisingErrorScorer<&Network>> {
        let s = &self.cfg.scoring;
        let cfg = DenoisingErrorConfig {
            timesteps: dmad_score::levels(
                levels,
                max_strength,
                self.schedule.num_train_timesteps(),
            ),
            draws: s.draws,
            seed: s
                .seed
                .wrapping_add(offset.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            noise_free,
        };
        Ok(DenoisingErrorScorer::new(
            &self.frozen,
            self.schedule.clone(),
            cfg,
        )?)
    }

    /// Scores of a feature-space detector: per-patch scores of the standardised patch rows,
    /// turned into maps at the input's size and image scores.
    fn score_patches(
        &self,
        space: &FeatureSpace,
        x0: &Tensor,
        offset: u64,
        scorers: &[ScorerConfig],
    ) -> Result<Vec<ScoreOutput>> {
        let n = x0.dim(0)?;
        let (h, w) = (x0.dim(2)?, x0.dim(3)?);
        let (rows, hw) = space.rows(x0)?;
        scorers
            .iter()
            .map(|&scorer| {
                let out = self.patch_scores(&rows, offset, scorer)?;
                let (scores, map) = space.to_output(&out.scores, n, hw, (h, w), &self.device)?;
                Ok(ScoreOutput {
                    scores,
                    map: Some(map),
                })
            })
            .collect()
    }

    /// Scores of clips `[n, windows, d]` of standardised log-mel windows: each window scored as
    /// a row, a clip by its largest window, its map the window scores `[n, windows]`.
    fn score_windows(
        &self,
        x0: &Tensor,
        offset: u64,
        scorers: &[ScorerConfig],
    ) -> Result<Vec<ScoreOutput>> {
        let (n, w) = (x0.dim(0)?, x0.dim(1)?);
        let rows = x0.flatten(0, 1)?;
        scorers
            .iter()
            .map(|&scorer| {
                let out = self.patch_scores(&rows, offset, scorer)?;
                let map = Tensor::from_vec(out.scores, (n, w), &self.device)?;
                let scores = map.max(1)?.to_vec1::<f32>()?;
                Ok(ScoreOutput {
                    scores,
                    map: Some(map),
                })
            })
            .collect()
    }

    /// Per-patch scores of standardised patch rows.
    fn patch_scores(
        &self,
        rows: &Tensor,
        offset: u64,
        scorer: ScorerConfig,
    ) -> Result<ScoreOutput> {
        Ok(match scorer {
            ScorerConfig::Dte { .. } | ScorerConfig::DteCategorical { .. } => self
                .dte
                .as_ref()
                .ok_or(Error::NotFitted)?
                .score(rows, scorer)?,
            ScorerConfig::Reconstruction => {
                ReconstructionScorer::new(self.reconstructor(offset, self.cfg.scoring.strength)?)
                    .score(rows)?
            }
            ScorerConfig::Denoising {
                levels,
                max_strength,
                noise_free,
            } => self
                .denoising_scorer(levels, max_strength, noise_free, offset)?
                .score(rows)?,
            ScorerConfig::Feature
            | ScorerConfig::Combined { .. }
            | ScorerConfig::Imputation { .. } => {
                return Err(Error::InvalidConfig {
                    field: "scorer",
                    reason: "the feature, combined and imputation scorers do not apply in \
                             feature space"
                        .to_string(),
                })
            }
        })
    }

    fn score_chunk(
        &self,
        x0: &Tensor,
        offset: u64,
        normaliser: Option<&Normaliser>,
        scorer: ScorerConfig,
    ) -> Result<ScoreOutput> {
        Ok(match scorer {
            ScorerConfig::Dte { .. } | ScorerConfig::DteCategorical { .. } => {
                let dte = self.dte.as_ref().ok_or(Error::NotFitted)?;
                dte.score(&x0.flatten_from(1)?, scorer)?
            }
            ScorerConfig::Reconstruction => {
                self.pixel_terms(x0, offset, self.cfg.scoring.strength, None)?
                    .0
            }
            ScorerConfig::Denoising {
                levels,
                max_strength,
                noise_free,
            } => self
                .denoising_scorer(levels, max_strength, noise_free, offset)?
                .score(x0)?,
            ScorerConfig::Imputation {
                levels,
                max_strength,
                phases,
            } => self
                .imputation_scorer(levels, max_strength, phases, offset)?
                .score(x0)?,
            ScorerConfig::Feature => self
                .pixel_terms(
                    x0,
                    offset,
                    self.cfg.scoring.strength,
                    Some(self.perceptual()?),
                )?
                .1
                .expect("features were given"),
            ScorerConfig::Combined { lambda } => {
                let normaliser = normaliser.ok_or(Error::NotFitted)?;
                let (recon, feat) = self.pixel_terms(
                    x0,
                    offset,
                    self.cfg.scoring.strength,
                    Some(self.perceptual()?),
                )?;
                let feat = feat.expect("features were given");
                normaliser.combine(lambda, &Terms { recon, feat })?
            }
        })
    }

    /// Flags scores at or above the calibrated threshold.
    ///
    /// # Errors
    /// [`Error::NotFitted`] before [`Detector::fit`] or [`Detector::load`].
    pub fn predict(&self, scores: &[f32]) -> Result<Vec<bool>> {
        let cal = self.calibration.as_ref().ok_or(Error::NotFitted)?;
        Ok(cal.threshold.predict(scores))
    }

    /// The calibrated threshold.
    ///
    /// # Errors
    /// [`Error::NotFitted`] before [`Detector::fit`] or [`Detector::load`].
    pub fn threshold(&self) -> Result<Threshold> {
        Ok(self.calibration.as_ref().ok_or(Error::NotFitted)?.threshold)
    }

    /// Replaces the threshold (for example by one set from labelled or generated anomalies).
    ///
    /// # Errors
    /// [`Error::NotFitted`] before [`Detector::fit`] or [`Detector::load`].
    pub fn set_threshold(&mut self, threshold: Threshold) -> Result<()> {
        self.set_threshold_described(
            threshold,
            "set by the caller (Detector::set_threshold)".into(),
        )
    }

    /// As [`Detector::set_threshold`], recording how the threshold was set in
    /// [`Calibration::method`].
    pub(crate) fn set_threshold_described(
        &mut self,
        threshold: Threshold,
        method: String,
    ) -> Result<()> {
        let cal = self.calibration.as_mut().ok_or(Error::NotFitted)?;
        cal.threshold = threshold;
        cal.method = method;
        Ok(())
    }
}

/// Loads EfficientNet-Lite0 when the scorer needs it: from `scoring.feature_weights`, else
/// from the file named by `DMAD_EFFICIENTNET`.
fn load_features(
    cfg: &DetectorConfig,
    device: &Device,
) -> Result<Option<std::sync::Arc<EfficientNetExtractor>>> {
    if !cfg.scorer.needs_features() {
        return Ok(None);
    }
    let path = feature_space::weights_path(cfg.scoring.feature_weights.as_ref())?;
    Ok(Some(std::sync::Arc::new(EfficientNetExtractor::lite0(
        &path, device,
    )?)))
}
