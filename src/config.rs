//! The detector's configuration: one JSON-serialisable value that says everything about a
//! model, saved as `config.json` next to its weights.

use dmad_core::masking::GratingMasks;
use dmad_diffusion::NoiseScheduleConfig;
use dmad_train::TrainConfig;
use dmad_unet::{MlpConfig, ModulesConfig, UNetConfig};
use serde::{Deserialize, Serialize};

pub use crate::feature_space::{FeatureSpaceConfig, PatchNorm};

mod input;
mod presets;

use crate::{Error, Result};
pub use dmad_score::maps::MapScore;
pub use dmad_score::FeatureDistance;
pub use input::{AudioFeatures, InputConfig, MelStatistics, WindowNorm, WINDOW_STD_FLOOR};

/// The kind of data a detector models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Images `[C, H, W]` in `[-1, 1]`.
    Image,
    /// Time-series windows `[dims, length]`.
    Series,
    /// Audio as CWT scalograms `[1, scales, frames]`.
    Audio,
    /// Table rows `[features]`.
    Table,
}

impl std::str::FromStr for Modality {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "image" | "images" => Ok(Self::Image),
            "series" | "timeseries" | "time-series" => Ok(Self::Series),
            "audio" => Ok(Self::Audio),
            "table" | "tables" | "tabular" => Ok(Self::Table),
            other => Err(Error::InvalidConfig {
                field: "modality",
                reason: format!(
                    "unknown modality {other:?}; expected image, series, audio or table"
                ),
            }),
        }
    }
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Image => "image",
            Self::Series => "series",
            Self::Audio => "audio",
            Self::Table => "table",
        })
    }
}

/// The denoising network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetworkConfig {
    /// A 2D U-Net (images, scalograms).
    Unet2d(UNetConfig),
    /// A 1D U-Net (series windows).
    Unet1d(UNetConfig),
    /// A residual MLP (tables).
    Mlp(MlpConfig),
}

impl NetworkConfig {
    /// The prediction type of the network.
    pub fn prediction_type(&self) -> dmad_core::PredictionType {
        match self {
            Self::Unet2d(c) | Self::Unet1d(c) => c.prediction_type,
            Self::Mlp(c) => c.prediction_type,
        }
    }

    /// The method's four modules, if the network is a U-Net.
    pub fn modules_mut(&mut self) -> Option<&mut ModulesConfig> {
        match self {
            Self::Unet2d(c) | Self::Unet1d(c) => Some(&mut c.modules),
            Self::Mlp(_) => None,
        }
    }
}

/// The sampler used to denoise back during scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// DDIM with `eta = 0` (deterministic).
    Ddim,
    /// DDPM (stochastic, seeded).
    Ddpm,
    /// DPM-Solver++ 2M.
    DpmSolver,
    /// Euler (EulerDiscreteScheduler).
    Euler,
}

/// How a sample is scored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScorerConfig {
    /// Reconstruction error `E_recon = ||x0 - x0_hat||^2`.
    Reconstruction,
    /// The perceptual feature distance `E_feat = sum_l ||f_l(x0) - f_l(x0_hat)||^2` through
    /// a frozen EfficientNet-Lite0 (images and scalograms; the weights come from
    /// [`ScoringConfig::feature_weights`] or `DMAD_EFFICIENTNET`, see `docs/EFFICIENTNET.md`).
    Feature,
    /// The method's weighted combination `lambda * z(E_recon) + (1 - lambda) * z(E_feat)` of
    /// the two terms, each z-scored with its statistics on the held-out normal data.
    Combined {
        /// The weight of the reconstruction term, in `[0, 1]`.
        lambda: f64,
    },
    /// Non-parametric diffusion-time estimation (DTE; arXiv 2305.18593) from the `k` nearest
    /// training neighbours. It needs no network (fitting skips training); samples of every
    /// modality are flattened to vectors. It is the best configuration of every modality in
    /// `docs/RESULTS.md`. For series, set `input.train_stride` and `input.test_stride` to 1
    /// (as `dmad bench` does): with no training to save, every window is worth its scoring
    /// time (UCR #135: AUPRC 0.017 with strides 4 / 4, 1.000 with 1 / 1).
    Dte {
        /// Neighbours used.
        k: usize,
    },
    /// Parametric diffusion-time estimation, DTE-Categorical (arXiv 2305.18593): an MLP
    /// (hidden layers 256, 512, 256, as the reference) trained with cross entropy to tell which
    /// of `bins` equal ranges of diffusion time a training sample was noised to
    /// (`x + sigma_t eps`, `sigma_t^2 = 1 - alpha_bar_t` of the detector's schedule); a
    /// sample's score is its expected diffusion time under the predicted probabilities. It
    /// trains this classifier instead of a denoiser, for about `train.steps` steps of
    /// `train.batch_size` samples (whole passes), in one go (no checkpoints). In feature space
    /// ([`DetectorConfig::feature_diffusion`]) every patch gets its own time: a map.
    DteCategorical {
        /// Time bins (classes), at least 2 and at most the schedule's timesteps. The
        /// reference uses 7.
        bins: usize,
        /// Score by the surprisal of the clean bin, `-ln p_0`, instead of the expected time:
        /// unbounded, so samples (patches) farther from the normal data than the schedule's
        /// largest noise keep their order, where the expected time saturates at the last bin.
        /// Default false (the reference's expected time).
        #[serde(default)]
        surprisal: bool,
    },
    /// The denoising error `||eps_theta(x_t, t) - eps||^2` averaged over `levels` noise
    /// levels evenly spaced in strength up to `max_strength` (`dmad_score::levels`), with
    /// [`ScoringConfig::draws`] noise draws each: the survey's density (ELBO-style) score. One
    /// network call per level and draw, no sampler run. The scorer of the feature-space
    /// detector ([`DetectorConfig::feature_diffusion`]).
    Denoising {
        /// Noise levels averaged, at least 1.
        levels: usize,
        /// The largest level's strength, in `(0, 1]`.
        max_strength: f64,
        /// Score the noise-free input (`||eps_theta(sqrt(alpha_bar) x, t)||^2`, the multiscale
        /// score norm of MSMA, arXiv 2010.13132) instead of the error on noised copies:
        /// deterministic, one call per level. Default false.
        #[serde(default)]
        noise_free: bool,
    },
    /// The imputation error of series windows (ImDiffusion, arXiv 2307.00754): each window is
    /// masked by `phases` shifts of the grating the network was trained with
    /// ([`dmad_train::TrainConfig::imputation`]), its masked steps noised to `levels` levels
    /// evenly spaced in strength up to `max_strength` (1: pure imputation from the observed
    /// steps) with [`ScoringConfig::draws`] draws each, and the network's estimate of the clean
    /// steps compared with the window's; the per-step map's mean over the windows covering a
    /// point is the point's score ([`DetectorConfig::series_imputation`]).
    Imputation {
        /// Noise levels averaged, at least 1.
        levels: usize,
        /// The largest level's strength, in `(0, 1]`.
        max_strength: f64,
        /// Shifts of the grating per window (2: its two complementary masks), at least 1.
        phases: usize,
    },
}

impl ScorerConfig {
    /// Whether a series point takes the per-step map of the windows covering it (the
    /// imputation score is per step) rather than their window scores.
    pub fn scores_steps(&self) -> bool {
        matches!(self, Self::Imputation { .. })
    }

    /// Whether the scorer is a diffusion-time estimate (fitted instead of the denoiser).
    pub fn is_dte(&self) -> bool {
        matches!(self, Self::Dte { .. } | Self::DteCategorical { .. })
    }

    /// Whether the scorer needs the EfficientNet-Lite0 feature network.
    pub fn needs_features(&self) -> bool {
        matches!(self, Self::Feature | Self::Combined { .. })
    }
}

/// Scoring by partial diffusion: noise to a start step, denoise back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoringConfig {
    /// The sampler. Default DDIM.
    pub sampler: SamplerKind,
    /// Inference steps of the sampler's full plan. Default 50.
    pub steps: usize,
    /// Fraction of the plan run back from the noised sample (diffusers' `strength`); the start
    /// timestep is about `strength * num_train_timesteps`. Default 0.3.
    pub strength: f64,
    /// Seeded noise draws averaged per sample. Default 1.
    pub draws: usize,
    /// With several [`ScoringConfig::draws`], compare the input with the mean of the draws'
    /// reconstructions (an estimate of the posterior mean) instead of averaging the draws'
    /// errors: detail the model regenerates differently in every draw (a random texture, a
    /// machine's noise) averages out of the reconstruction, what it replaces in every draw
    /// does not ([`dmad_score::Reconstructor::mean_of_draws`]). Default false.
    pub mean_reconstruction: bool,
    /// Seed of the scoring noise. Default 0.
    pub seed: u64,
    /// Samples scored at once. Default 16.
    pub batch_size: usize,
    /// The EfficientNet-Lite0 safetensors file of the feature and combined scorers; `None`
    /// takes the environment variable `DMAD_EFFICIENTNET`. Default `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_weights: Option<std::path::PathBuf>,
    /// DDAD's conditioning weight `w` (arXiv 2305.15956): every denoising step of the
    /// reconstruction moves its clean-sample estimate a fraction `min(1, w (1 - alpha_bar))`
    /// toward the input ([`dmad_diffusion::Conditioned`]), so normal regions stay put while
    /// the model still replaces what it has not seen. 0 (the default): unguided.
    pub condition: f64,
    /// How the feature and combined scorers compare the features of the input and of its
    /// reconstruction at each position: the squared error (the default, the method's `E_feat`)
    /// or DDAD's `1 - cos`.
    pub feature_distance: FeatureDistance,
    /// Standard deviation, in pixels (or steps), of the Gaussian that smooths the
    /// reconstruction and feature maps before they are summarised; 0 (the default): none.
    pub smoothing_sigma: f64,
    /// How each term's (smoothed) map becomes the sample's score: [`MapScore::Inner`] (the
    /// default) keeps the mean over all positions; [`MapScore::Max`] (DDAD, PatchCore) or
    /// [`MapScore::TopKMean`] let a small defect count in full instead of being averaged away.
    /// The combined scorer combines the summaries of its two terms.
    pub map_score: MapScore,
    /// Series: standard deviation, in steps, of the Gaussian that smooths the per-point scores
    /// (after each point has taken the mean over the windows covering it); 0 (the default):
    /// none. An imputation error peaks at the sharp parts of a periodic series, normal or
    /// not; smoothing over about a period lets an anomalous stretch stand out as a whole.
    /// [`crate::series::fit_series`] chooses it on anomalies injected into a held-out part
    /// of the training series.
    pub point_sigma: f64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            sampler: SamplerKind::Ddim,
            steps: 50,
            strength: 0.3,
            draws: 1,
            mean_reconstruction: false,
            seed: 0,
            batch_size: 16,
            feature_weights: None,
            condition: 0.0,
            feature_distance: FeatureDistance::SquaredError,
            smoothing_sigma: 0.0,
            map_score: MapScore::Inner,
            point_sigma: 0.0,
        }
    }
}

/// How the decision threshold is set from normal data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThresholdRule {
    /// The `q` quantile of the normal calibration scores.
    Quantile {
        /// The quantile in `[0, 1]`.
        q: f64,
    },
    /// Mean plus `k` standard deviations of the normal calibration scores.
    MeanStd {
        /// Standard deviations.
        k: f64,
    },
}

impl ThresholdRule {
    /// The threshold this rule sets on normal `scores`.
    ///
    /// # Errors
    /// The errors of [`dmad_metrics::Threshold::quantile`] and
    /// [`dmad_metrics::Threshold::mean_std`] (no scores, a
    /// non-finite one, a bad parameter).
    pub fn threshold(&self, scores: &[f32]) -> crate::Result<dmad_metrics::Threshold> {
        Ok(match *self {
            Self::Quantile { q } => dmad_metrics::Threshold::quantile(scores, q)?,
            Self::MeanStd { k } => dmad_metrics::Threshold::mean_std(scores, k)?,
        })
    }

    /// The rule in words: "the 0.99 quantile", "the mean + 3 standard deviations".
    pub fn describe(&self) -> String {
        match *self {
            Self::Quantile { q } => format!("the {q} quantile"),
            Self::MeanStd { k } => format!("the mean + {k} standard deviations"),
        }
    }
}

/// Everything about a detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// The kind of data.
    pub modality: Modality,
    /// How raw data is prepared.
    #[serde(default)]
    pub input: InputConfig,
    /// The denoising network, with the method's four modules.
    pub network: NetworkConfig,
    /// The noise schedule.
    pub schedule: NoiseScheduleConfig,
    /// Partial-diffusion scoring.
    pub scoring: ScoringConfig,
    /// The anomaly score.
    pub scorer: ScorerConfig,
    /// The training budget and optimiser.
    pub train: TrainConfig,
    /// The decision threshold rule.
    pub threshold: ThresholdRule,
    /// Fraction of the normal training data held out for calibration (threshold and score
    /// normalisation), in `[0, 0.5]`. Default 0.2.
    pub calibration_fraction: f64,
    /// Images and scalograms: run the diffusion model on the patch features of a frozen
    /// EfficientNet-Lite0 instead of on pixels (see [`DetectorConfig::feature_diffusion`]);
    /// `None` (the default, and every model saved before this field): pixel space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_space: Option<FeatureSpaceConfig>,
}

impl DetectorConfig {
    /// Checks the fields the facade itself owns (the network, schedule and trainer check
    /// theirs when built).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        let s = &self.scoring;
        if !(s.strength > 0.0 && s.strength <= 1.0) {
            return bad(
                "scoring.strength",
                format!("{} is not in (0, 1]", s.strength),
            );
        }
        if s.steps == 0 || s.draws == 0 || s.batch_size == 0 {
            return bad(
                "scoring",
                "steps, draws and batch_size must be at least 1".to_string(),
            );
        }
        if !(s.condition.is_finite() && s.condition >= 0.0) {
            return bad(
                "scoring.condition",
                format!(
                    "the conditioning weight must be finite and >= 0, got {}",
                    s.condition
                ),
            );
        }
        if !(s.smoothing_sigma.is_finite() && s.smoothing_sigma >= 0.0) {
            return bad(
                "scoring.smoothing_sigma",
                format!("must be finite and >= 0, got {}", s.smoothing_sigma),
            );
        }
        if !(s.point_sigma.is_finite() && s.point_sigma >= 0.0) {
            return bad(
                "scoring.point_sigma",
                format!("must be finite and >= 0, got {}", s.point_sigma),
            );
        }
        if s.point_sigma > 0.0 && self.modality != Modality::Series {
            return bad(
                "scoring.point_sigma",
                "smooths the point scores of a series; keep 0 for other modalities".to_string(),
            );
        }
        if let MapScore::TopKMean { k: 0 } = s.map_score {
            return bad("scoring.map_score", "a top-k mean needs k >= 1".to_string());
        }
        if s.map_score != MapScore::Inner && self.modality == Modality::Table {
            return bad(
                "scoring.map_score",
                "table rows have no map to summarise; keep `inner`".to_string(),
            );
        }
        self.validate_image_size()?;
        if self.train.timestep_range.is_some() {
            match self.train.timesteps(self.schedule.num_train_timesteps) {
                Err(dmad_train::Error::InvalidConfig { reason, .. }) => {
                    return bad("train.timestep_range", reason)
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            if self.scorer.is_dte() {
                return bad(
                    "train.timestep_range",
                    "the DTE scorers do not train a denoiser on timesteps (DTE-Categorical \
                     classifies the whole schedule); the range is for the other scorers"
                        .to_string(),
                );
            }
        }
        if !(0.0..=0.5).contains(&self.calibration_fraction) {
            return bad(
                "calibration_fraction",
                format!("{} is not in [0, 0.5]", self.calibration_fraction),
            );
        }
        match self.scorer {
            ScorerConfig::Dte { k: 0 } => {
                return bad(
                    "scorer",
                    "DTE needs k >= 1 neighbours (got k = 0)".to_string(),
                )
            }
            ScorerConfig::DteCategorical { bins, .. }
                if bins < 2 || bins > self.schedule.num_train_timesteps =>
            {
                return bad(
                    "scorer",
                    format!(
                        "DTE-Categorical needs 2 to {} time bins (the schedule's timesteps), \
                         got {bins}",
                        self.schedule.num_train_timesteps
                    ),
                )
            }
            ScorerConfig::Combined { lambda } if !(0.0..=1.0).contains(&lambda) => {
                return bad("scorer", format!("lambda {lambda} is not in [0, 1]"))
            }
            ScorerConfig::Denoising {
                levels,
                max_strength,
                ..
            } if levels == 0 || !(max_strength > 0.0 && max_strength <= 1.0) => {
                return bad(
                    "scorer",
                    format!(
                        "the denoising score needs levels >= 1 and max_strength in (0, 1], \
                         got levels {levels}, max_strength {max_strength}"
                    ),
                )
            }
            ScorerConfig::Imputation {
                levels,
                max_strength,
                phases,
            } if levels == 0 || phases == 0 || !(max_strength > 0.0 && max_strength <= 1.0) => {
                return bad(
                    "scorer",
                    format!(
                        "the imputation score needs levels >= 1, phases >= 1 and max_strength \
                         in (0, 1], got levels {levels}, phases {phases}, max_strength \
                         {max_strength}"
                    ),
                )
            }
            s if s.needs_features()
                && !matches!(self.modality, Modality::Image | Modality::Audio) =>
            {
                return bad(
                    "scorer",
                    format!(
                        "the feature and combined scorers need images or scalograms \
                         (EfficientNet features), not {} data",
                        self.modality
                    ),
                )
            }
            _ => {}
        }
        self.validate_imputation()?;
        if self.log_mel_rows() {
            return self.validate_log_mel();
        }
        if self.log_mel_image() {
            self.validate_log_mel_image()?;
        }
        if let Some(space) = &self.feature_space {
            space.validate()?;
            if !matches!(self.modality, Modality::Image | Modality::Audio) {
                return bad(
                    "feature_space",
                    format!(
                        "the feature space is EfficientNet-Lite0's, for images and \
                         scalograms, not {} data",
                        self.modality
                    ),
                );
            }
            if !matches!(self.network, NetworkConfig::Mlp(_)) {
                return bad(
                    "network",
                    "a feature-space detector denoises patch vectors: its network must be \
                     an MLP"
                        .to_string(),
                );
            }
            if self.input.tile_size.is_some() {
                return bad(
                    "input.tile_size",
                    "a feature-space detector sees whole images (the extractor resizes them); \
                     tiling is for the pixel-space U-Net"
                        .to_string(),
                );
            }
            if self.scorer.needs_features() {
                return bad(
                    "scorer",
                    "the feature and combined scorers compare pixel reconstructions; in \
                     feature space use denoising, reconstruction or dte"
                        .to_string(),
                );
            }
            return Ok(());
        }
        let network_fits = matches!(
            (self.modality, &self.network),
            (Modality::Image | Modality::Audio, NetworkConfig::Unet2d(_))
                | (Modality::Series, NetworkConfig::Unet1d(_))
                | (Modality::Table | Modality::Series, NetworkConfig::Mlp(_))
        );
        if !network_fits {
            return bad(
                "network",
                format!(
                    "a {:?} network does not fit {} data",
                    self.network_kind(),
                    self.modality
                ),
            );
        }
        Ok(())
    }

    /// Whether the detector sees audio clips through their log-mel spectrogram (statistics,
    /// windows or the image), which it standardises with the training clips' statistics: its
    /// model's samples are not clips.
    pub fn log_mel(&self) -> bool {
        self.log_mel_rows() || self.log_mel_image()
    }

    /// Whether the detector sees audio clips as rows of log-mel features (statistics or
    /// windows) for an MLP or a DTE scorer.
    pub fn log_mel_rows(&self) -> bool {
        self.modality == Modality::Audio
            && matches!(
                self.input.audio_features,
                AudioFeatures::LogMelStatistics | AudioFeatures::LogMelWindows
            )
    }

    /// Whether the detector sees audio clips as log-mel images ([`AudioFeatures::LogMelImage`])
    /// for the U-Net.
    pub fn log_mel_image(&self) -> bool {
        self.modality == Modality::Audio && self.input.audio_features == AudioFeatures::LogMelImage
    }

    /// Whether each clip is a set of log-mel windows ([`AudioFeatures::LogMelWindows`]),
    /// scored by its largest window.
    pub fn log_mel_windows(&self) -> bool {
        self.modality == Modality::Audio
            && self.input.audio_features == AudioFeatures::LogMelWindows
    }

    /// Log-mel rows (statistics or windows) hold [`InputConfig::log_mel_row_len`] numbers:
    /// an MLP of that width (or DTE) models them; the scorers of scalogram reconstructions and
    /// the feature space do not apply.
    fn validate_log_mel(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        let n = self.input.n_mels;
        if n == 0 {
            return bad(
                "input.n_mels",
                "log-mel features need at least one band".into(),
            );
        }
        if self.log_mel_windows() && self.input.mel_window_frames == 0 {
            return bad(
                "input.mel_window_frames",
                "a log-mel window needs at least one frame".into(),
            );
        }
        if self.feature_space.is_some() {
            return bad(
                "feature_space",
                "log-mel features are rows, not scalograms: the EfficientNet feature space \
                 needs `audio_features: scalogram`"
                    .into(),
            );
        }
        if self.scorer.needs_features() {
            return bad(
                "scorer",
                "the feature and combined scorers compare scalogram reconstructions; log-mel \
                 features are rows (use reconstruction, denoising or a DTE scorer)"
                    .into(),
            );
        }
        let len = self.input.log_mel_row_len();
        match &self.network {
            NetworkConfig::Mlp(m) if m.in_features == len => Ok(()),
            NetworkConfig::Mlp(m) => bad(
                "network",
                format!(
                    "the MLP takes {} features, but a log-mel row of {n} bands is {len} \
                     numbers ({})",
                    m.in_features,
                    if self.log_mel_windows() {
                        format!("{} frames of {n} bands", self.input.mel_window_frames)
                    } else {
                        match self.input.mel_statistics {
                            MelStatistics::MeanStd => "a mean and a deviation per band",
                            MelStatistics::MeanStdDelta => {
                                "a mean, a deviation and a frame-difference deviation per band"
                            }
                        }
                        .to_string()
                    }
                ),
            ),
            _ => bad(
                "network",
                format!(
                    "log-mel features are rows: a {:?} network does not fit them (use an MLP)",
                    self.network_kind()
                ),
            ),
        }
    }

    /// An imputation scorer needs an imputation network and training, on series, and the
    /// other way round.
    fn validate_imputation(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        let scorer = matches!(self.scorer, ScorerConfig::Imputation { .. });
        let Some(masks) = self.train.imputation else {
            if scorer {
                return bad(
                    "train.imputation",
                    "the imputation scorer needs a network trained to impute: set \
                     train.imputation (DetectorConfig::series_imputation does)"
                        .to_string(),
                );
            }
            return Ok(());
        };
        if !scorer {
            return bad(
                "scorer",
                "a network trained to impute (train.imputation) is scored by the imputation \
                 scorer only"
                    .to_string(),
            );
        }
        if self.modality != Modality::Series {
            return bad(
                "modality",
                format!(
                    "imputation diffusion is for series windows, not {} data",
                    self.modality
                ),
            );
        }
        if let Err(e) = masks.validate(self.input.window) {
            return bad("train.imputation.segment", e.to_string());
        }
        match &self.network {
            NetworkConfig::Unet1d(u) if u.in_channels == u.out_channels + 1 => Ok(()),
            NetworkConfig::Unet1d(u) => bad(
                "network",
                format!(
                    "an imputation U-Net takes the window's channels plus the mask: \
                     in_channels must be out_channels + 1, got {} and {}",
                    u.in_channels, u.out_channels
                ),
            ),
            _ => bad(
                "network",
                "imputation diffusion needs a 1D U-Net (unet1d)".to_string(),
            ),
        }
    }

    /// A log-mel image has bands and columns the U-Net's levels can halve; the feature space
    /// takes scalograms.
    fn validate_log_mel_image(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        let (bands, columns) = (self.input.n_mels, self.input.image_size as usize);
        if bands == 0 || columns == 0 {
            return bad(
                "input.n_mels",
                format!(
                    "a log-mel image needs at least one band and one column, got {bands} bands \
                     and image_size {columns}"
                ),
            );
        }
        if self.feature_space.is_some() {
            return bad(
                "feature_space",
                "the EfficientNet feature space takes scalograms (`audio_features: \
                 scalogram`); a log-mel image is for the pixel-space U-Net"
                    .into(),
            );
        }
        if let NetworkConfig::Unet2d(u) = &self.network {
            let halvings = u.block_out_channels.len().saturating_sub(1) as u32;
            let unit = 1usize << halvings;
            for (field, n, what) in [
                ("input.n_mels", bands, "bands"),
                ("input.image_size", columns, "columns"),
            ] {
                if n % unit != 0 {
                    return bad(
                        field,
                        format!(
                            "the U-Net's {} levels halve the log-mel image {halvings} times: \
                             its {what} must be a multiple of {unit}, got {n}",
                            u.block_out_channels.len()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Images: a size the network can take (its levels halve the side), and a tiling that
    /// fits the image.
    fn validate_image_size(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        let input = &self.input;
        if self.modality != Modality::Image {
            if input.tile_size.is_some() {
                return bad(
                    "input.tile_size",
                    format!("tiling is for images, not {} data", self.modality),
                );
            }
            return Ok(());
        }
        if !(8..=4096).contains(&input.image_size) {
            return bad(
                "input.image_size",
                format!("must be in [8, 4096] pixels, got {}", input.image_size),
            );
        }
        let side = match input.tile_size {
            Some(t) if t == 0 || t > input.image_size => {
                return bad(
                    "input.tile_size",
                    format!("must be in [1, image_size = {}], got {t}", input.image_size),
                )
            }
            Some(t) if input.tile_overlap >= t => {
                return bad(
                    "input.tile_overlap",
                    format!(
                        "must be below the tile size {t}, got {}",
                        input.tile_overlap
                    ),
                )
            }
            Some(t) => t,
            None => input.image_size,
        };
        if let (NetworkConfig::Unet2d(u), None) = (&self.network, &self.feature_space) {
            let halvings = u.block_out_channels.len().saturating_sub(1) as u32;
            let unit = 1u32 << halvings;
            if side % unit != 0 {
                return bad(
                    if input.tile_size.is_some() {
                        "input.tile_size"
                    } else {
                        "input.image_size"
                    },
                    format!(
                        "the U-Net's {} levels halve the side {halvings} times: it must be a \
                         multiple of {unit}, got {side}",
                        u.block_out_channels.len()
                    ),
                );
            }
        }
        Ok(())
    }

    fn network_kind(&self) -> &'static str {
        match self.network {
            NetworkConfig::Unet2d(_) => "unet2d",
            NetworkConfig::Unet1d(_) => "unet1d",
            NetworkConfig::Mlp(_) => "mlp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_positions_widen_the_mlp_once_and_need_a_feature_space() {
        let base = DetectorConfig::feature_diffusion(Modality::Image, 3);
        let with = base.clone().with_patch_positions().unwrap();
        assert!(with.feature_space.as_ref().unwrap().positional);
        let width = |c: &DetectorConfig| match &c.network {
            NetworkConfig::Mlp(m) => m.in_features,
            _ => unreachable!(),
        };
        assert_eq!(width(&with), width(&base) + 2);
        let twice = with.clone().with_patch_positions().unwrap();
        assert_eq!(twice, with);
        for plain in [DetectorConfig::for_images(3), DetectorConfig::for_tables(5)] {
            let err = plain.with_patch_positions().unwrap_err().to_string();
            assert!(err.contains("feature_space"), "{err}");
        }
    }

    #[test]
    fn scored_timesteps_cover_the_denoising_levels_and_need_that_scorer() {
        // The preset scores 8 levels up to strength 0.5: timesteps 62, 124, ..., 499.
        let cfg = DetectorConfig::feature_diffusion(Modality::Image, 3)
            .with_scored_timesteps()
            .unwrap();
        assert_eq!(cfg.train.timestep_range, Some([0, 500]));
        let levels = dmad_score::levels(8, 0.5, 1000);
        assert_eq!(levels.last(), Some(&499));
        let mut low = DetectorConfig::feature_diffusion(Modality::Image, 3);
        low.scorer = ScorerConfig::Denoising {
            levels: 4,
            max_strength: 0.2,
            noise_free: true,
        };
        let low = low.with_scored_timesteps().unwrap();
        assert_eq!(low.train.timestep_range, Some([0, 200]));
        // Saved and read back with the range; configs without it read as before.
        let back: DetectorConfig =
            serde_json::from_str(&serde_json::to_string(&low).unwrap()).unwrap();
        assert_eq!(back.train.timestep_range, Some([0, 200]));
        let json = serde_json::to_string(&DetectorConfig::for_tables(3)).unwrap();
        assert!(!json.contains("timestep_range"), "{json}");
        for other in [DetectorConfig::for_images(3), DetectorConfig::for_tables(5)] {
            let err = other.with_scored_timesteps().unwrap_err().to_string();
            assert!(err.contains("scorer"), "{err}");
        }
        // Checked with the configuration, before any data is read: a range past the
        // schedule, an empty one, and one on a DTE scorer (which trains no denoiser).
        assert!(cfg.validate().is_ok());
        for range in [[0, 1001], [10, 10]] {
            let mut bad = cfg.clone();
            bad.train.timestep_range = Some(range);
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains("train.timestep_range"), "{range:?}: {err}");
        }
        let mut dte = cfg.clone();
        dte.scorer = ScorerConfig::DteCategorical {
            bins: 7,
            surprisal: false,
        };
        let err = dte.validate().unwrap_err().to_string();
        assert!(err.contains("train.timestep_range"), "{err}");
    }

    #[test]
    fn a_config_saved_before_the_audio_fields_keeps_the_old_scalogram() {
        // config.json of an audio model saved before the wavelet, range and reference fields.
        let mut v = serde_json::to_value(DetectorConfig::for_audio()).unwrap();
        let input = v["input"].as_object_mut().unwrap();
        for field in [
            "audio_wavelet",
            "audio_dynamic_range_db",
            "audio_reference_db",
        ] {
            assert!(input.remove(field).is_some(), "{field} is not saved");
        }
        let old: DetectorConfig = serde_json::from_value(v).unwrap();
        assert_eq!(old.input.audio_wavelet, "cmor1.5-1.0");
        assert_eq!(old.input.audio_dynamic_range_db, 80.0);
        assert_eq!(old.input.audio_reference_db, None);
        // New models take the narrow-band wavelet and say so in their config.json.
        let new = DetectorConfig::for_audio();
        assert_eq!(new.input.audio_wavelet, "cmor10-1.0");
        assert_eq!((new.input.scales, new.input.image_size), (64, 4));
        let back: DetectorConfig =
            serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back, new);
        let fixed = DetectorConfig {
            input: InputConfig {
                audio_reference_db: Some(-6.0),
                ..new.input.clone()
            },
            ..new
        };
        let back: DetectorConfig =
            serde_json::from_str(&serde_json::to_string(&fixed).unwrap()).unwrap();
        assert_eq!(back.input.audio_reference_db, Some(-6.0));
    }

    #[test]
    fn the_default_audio_detector_fits_and_scores_its_four_frame_maps() {
        let mut cfg = DetectorConfig::for_audio();
        cfg.train.steps = 2;
        cfg.train.lr_warmup_steps = 0;
        cfg.scoring.steps = 4;
        cfg.scoring.strength = 0.5;
        let dev = candle_core::Device::Cpu;
        let (s, f) = crate::prepare::audio_transform(&cfg.input).unwrap().shape();
        assert_eq!((s, f), (64, 4));
        let x = candle_core::Tensor::rand(-1f32, 1.0, (6, 1, s, f), &dev).unwrap();
        let mut det = crate::Detector::new(cfg, &dev).unwrap();
        det.fit(&x, |_| {}).unwrap();
        let scores = det.score(&x).unwrap().scores;
        assert_eq!(scores.len(), 6);
        assert!(scores.iter().all(|v| v.is_finite()));
    }
}
