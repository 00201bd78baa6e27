//! The per-modality default configurations of [`DetectorConfig`].

use dmad_diffusion::{BetaSchedule, NoiseScheduleConfig};
use dmad_train::TrainConfig;
use dmad_unet::{DownBlockType, MlpConfig, ModulesConfig, UNetConfig, UpBlockType};

use super::*;

fn small_unet(in_channels: usize, widths: &[usize]) -> UNetConfig {
    let levels = widths.len();
    let mut down = vec![DownBlockType::DownBlock; levels];
    let mut up = vec![UpBlockType::UpBlock; levels];
    // Attention at the lowest resolution, as diffusers' small configs.
    down[levels - 1] = DownBlockType::AttnDownBlock;
    up[0] = UpBlockType::AttnUpBlock;
    UNetConfig {
        sample_size: 32,
        in_channels,
        out_channels: in_channels,
        down_block_types: down,
        up_block_types: up,
        block_out_channels: widths.to_vec(),
        layers_per_block: 1,
        norm_num_groups: Some(8),
        attention_head_dim: Some(8),
        modules: ModulesConfig::all(),
        ..UNetConfig::default()
    }
}

impl DetectorConfig {
    /// Defaults for images of `channels` channels (1 grey, 3 RGB): a small 2D U-Net with all
    /// four modules, reconstruction scoring with DDIM.
    pub fn for_images(channels: usize) -> Self {
        Self {
            modality: Modality::Image,
            input: InputConfig {
                channels,
                ..InputConfig::default()
            },
            network: NetworkConfig::Unet2d(small_unet(channels, &[32, 64, 64])),
            schedule: NoiseScheduleConfig::default(),
            scoring: ScoringConfig::default(),
            scorer: ScorerConfig::Reconstruction,
            train: TrainConfig {
                steps: 2000,
                batch_size: 16,
                learning_rate: 2e-4,
                ..TrainConfig::default()
            },
            threshold: ThresholdRule::Quantile { q: 0.99 },
            calibration_fraction: 0.2,
            feature_space: None,
        }
    }

    /// The feature-space diffusion detector (issue 17) for `modality` (images or audio
    /// scalograms) of `channels` channels: every image becomes 28x28 patch vectors of 152
    /// features (EfficientNet-Lite0 blocks 4 and 10, 3x3 local means, at 224x224), a residual
    /// MLP denoiser (width 256, 3 blocks, epsilon prediction) is trained on the normal
    /// patches, and each patch is scored by its denoising error over 8 noise levels up to
    /// strength 0.5 ([`ScorerConfig::Denoising`]); the map is upsampled to the input,
    /// smoothed (sigma 4 px) and its maximum is the image score. The images keep their size
    /// (`input.image_size`, default 256); the extractor resizes them to 224.
    ///
    /// The weights come from `scoring.feature_weights` or `DMAD_EFFICIENTNET`
    /// (`docs/EFFICIENTNET.md`).
    pub fn feature_diffusion(modality: Modality, channels: usize) -> Self {
        let space = FeatureSpaceConfig::default();
        let dims = 40 + 112; // Lite0's blocks 4 and 10
        let base = match modality {
            Modality::Audio => Self::for_audio(),
            _ => Self::for_images(channels),
        };
        Self {
            modality,
            input: InputConfig {
                image_size: if modality == Modality::Audio {
                    base.input.image_size
                } else {
                    256
                },
                ..base.input.clone()
            },
            network: NetworkConfig::Mlp(MlpConfig {
                width: 256,
                depth: 3,
                ..MlpConfig::new(dims)
            }),
            scorer: ScorerConfig::Denoising {
                levels: 8,
                max_strength: 0.5,
                noise_free: false,
            },
            scoring: ScoringConfig {
                draws: 2,
                batch_size: 16,
                ..ScoringConfig::default()
            },
            train: TrainConfig {
                steps: 2000,
                batch_size: 512,
                learning_rate: 1e-3,
                lr_warmup_steps: 100,
                ..TrainConfig::default()
            },
            feature_space: Some(space),
            ..base
        }
    }

    /// This feature-space configuration with each patch's position (row and column, scaled to
    /// `[-1, 1]`) appended to its features, and the MLP's input widened by those two, so that
    /// the model learns what is normal where: for aligned objects (solar cells, parts in a
    /// jig), where a pattern normal in one place is a defect in another (ELPV with parametric
    /// DTE: 0.911 against 0.891 without, 3 seeds; docs/SCORERS.md). Applying it twice changes
    /// nothing more.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `feature_space` when the configuration is not a
    /// feature-space one with an MLP (positions are patch positions).
    pub fn with_patch_positions(mut self) -> Result<Self> {
        let (Some(space), NetworkConfig::Mlp(mlp)) =
            (self.feature_space.as_mut(), &mut self.network)
        else {
            return Err(Error::InvalidConfig {
                field: "feature_space",
                reason: "patch positions need a feature-space detector (the feature-dte, \
                         feature-diffusion or feature-recon scorers) with its MLP"
                    .into(),
            });
        };
        if !space.positional {
            space.positional = true;
            mlp.in_features += 2;
        }
        Ok(self)
    }

    /// This configuration with training restricted to the timesteps its denoising score
    /// queries (`train.timestep_range = [0, t + 1)`, `t` the largest of
    /// [`ScorerConfig::Denoising`]'s levels): the score up to strength 0.5 never asks the
    /// network about the noisier half of the schedule, so every training step goes to the
    /// levels it is scored at, as if the run were up to twice as long there.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `scorer` for a scorer other than the denoising one.
    pub fn with_scored_timesteps(mut self) -> Result<Self> {
        let ScorerConfig::Denoising {
            levels,
            max_strength,
            ..
        } = self.scorer
        else {
            return Err(Error::InvalidConfig {
                field: "scorer",
                reason: "training on the scored timesteps needs the denoising scorer \
                         (feature-diffusion), whose levels fix the timesteps"
                    .into(),
            });
        };
        let t = dmad_score::levels(levels, max_strength, self.schedule.num_train_timesteps);
        let end = t.iter().max().map_or(1, |&m| m + 1);
        self.train.timestep_range = Some([0, end]);
        Ok(self)
    }

    /// Defaults for series windows of `dims` channels: a small 1D U-Net with all four modules.
    pub fn for_series(dims: usize) -> Self {
        Self {
            modality: Modality::Series,
            network: NetworkConfig::Unet1d(small_unet(dims, &[32, 64, 64])),
            ..Self::for_images(dims)
        }
    }

    /// Imputation diffusion for series windows of `dims` channels and `window` steps (issue
    /// 21; ImDiffusion, arXiv 2307.00754): a small 1D U-Net (widths 16, 32, 32; the method's
    /// modules, attention at the lowest level only), 800 steps,
    /// fed the window with its masked steps noised and the mask as one more channel
    /// (`dims + 1` inputs), trained to predict the clean window (`sample`) on grating masks of
    /// [`crate::prepare::imputation_segment`]`(window / 2)` steps (a fifth of a period when
    /// the window is two periods: see there why an odd number of segments per period) with
    /// random shifts, the loss on the masked steps only; scored by
    /// [`ScorerConfig::Imputation`] (both complementary masks, 4 levels up to pure noise).
    /// Windows are z-normalised on their own ([`WindowNorm::Window`]), as the matrix profile
    /// compares subsequences, so a drifting level does not count; set
    /// `input.window_norm` to [`WindowNorm::Global`] where the level itself matters.
    ///
    /// The window is best two periods of the series (`dmad_data::find_length` estimates
    /// the period from the train part, as TSB-AD does); a multiple of 4 suits the U-Net.
    /// [`DetectorConfig::series_imputation_for_period`] takes the period itself.
    pub fn series_imputation(dims: usize, window: usize) -> Self {
        Self::imputation_with(dims, window, crate::prepare::imputation_segment(window / 2))
    }

    /// [`DetectorConfig::series_imputation`] for a series of this period: windows of
    /// [`crate::prepare::imputation_window`]`(period)` (two periods, rounded up to a multiple
    /// of 8) and grating segments of [`crate::prepare::imputation_segment`]`(period)` (a
    /// fifth of a period, exact where rounding the window up would shift it). What `dmad fit
    /// --scorer imputation`, the Python `scorer="imputation"` and the benchmark use, with the
    /// period of the training series.
    pub fn series_imputation_for_period(dims: usize, period: usize) -> Self {
        Self::imputation_with(
            dims,
            crate::prepare::imputation_window(period),
            crate::prepare::imputation_segment(period),
        )
    }

    fn imputation_with(dims: usize, window: usize, segment: usize) -> Self {
        // The benchmark's measured recipe: a small U-Net, attention at the lowest level only
        // (at every stage it cost 2.4x the training time on 368-step windows).
        let mut unet = small_unet(dims, &[16, 32, 32]);
        unet.in_channels = dims + 1;
        unet.prediction_type = dmad_core::PredictionType::Sample;
        unet.modules.multi_head_attention = false;
        unet.modules.attention_heads = 2;
        unet.modules.adapter_channels = 16;
        let base = Self::for_series(dims);
        Self {
            modality: Modality::Series,
            input: InputConfig {
                window,
                train_stride: 4,
                test_stride: (window / 8).max(1),
                window_norm: WindowNorm::Window,
                ..base.input.clone()
            },
            network: NetworkConfig::Unet1d(unet),
            scorer: ScorerConfig::Imputation {
                levels: 4,
                max_strength: 1.0,
                phases: 2,
            },
            scoring: ScoringConfig {
                batch_size: 64,
                ..ScoringConfig::default()
            },
            train: TrainConfig {
                steps: 800,
                batch_size: 32,
                learning_rate: 5e-4,
                lr_warmup_steps: 100,
                imputation: Some(GratingMasks { segment }),
                ..TrainConfig::default()
            },
            ..base
        }
    }

    /// Defaults for audio scalograms `[1, scales, frames]`: the image defaults on one channel,
    /// with 64 scales of the narrow-band `cmor10-1.0` wavelet, each clip's maximum as the top
    /// level and 4 frames of a quarter of the clip each. On the protocol's machine sounds
    /// (`benches/peers/audio_representation.py`) the narrow band resolved hum and speed
    /// changes that `cmor1.5-1.0` smeared, averaging the noise's time detail away (4 frames
    /// instead of 32) lifted distance-based AUROC from about 0.6 to 0.8, and a fixed absolute
    /// level did worse than each clip's maximum (normal clips vary in gain).
    pub fn for_audio() -> Self {
        let images = Self::for_images(1);
        Self {
            modality: Modality::Audio,
            input: InputConfig {
                audio_wavelet: "cmor10-1.0".into(),
                image_size: 4,
                ..images.input.clone()
            },
            ..images
        }
    }

    /// The method's pixel-space U-Net on audio (issue 18): each clip's log-mel spectrogram as a
    /// one-channel image ([`AudioFeatures::LogMelImage`]: 64 bands, HTK's mel scale on whole
    /// frames averaged into 32 columns, each band standardised with the training clips'), a
    /// four-level U-Net [16, 32, 64, 64] with the wavelet pyramid, input adapter and hybrid
    /// time embedding (no attention) trained for 600 steps, and each clip scored by the
    /// squared error between it and the mean of 4 reconstructions from strength 0.25 (40 DDIM
    /// steps; `scoring.mean_reconstruction`), the map's mean the clip's score. The
    /// benchmark's `pixel-log-mel-mean` cell: 0.742 / 0.752 AUROC on mining-hard /
    /// sawmill-hard (3 seeds), against 0.976 / 0.849 for [`DetectorConfig::for_audio_log_mel`],
    /// which stays the better audio detector; this one gives a map over bands and time.
    pub fn for_audio_log_mel_image() -> Self {
        let mut unet = small_unet(1, &[16, 32, 64, 64]);
        unet.down_block_types = vec![DownBlockType::DownBlock; 4];
        unet.up_block_types = vec![UpBlockType::UpBlock; 4];
        unet.modules.multi_head_attention = false;
        unet.modules.attention_heads = 2;
        unet.modules.adapter_channels = 16;
        let base = Self::for_audio();
        Self {
            input: InputConfig {
                audio_features: AudioFeatures::LogMelImage,
                n_mels: 64,
                image_size: 32,
                ..base.input.clone()
            },
            network: NetworkConfig::Unet2d(unet),
            scorer: ScorerConfig::Reconstruction,
            scoring: ScoringConfig {
                strength: 0.25,
                steps: 40,
                draws: 4,
                mean_reconstruction: true,
                batch_size: 64,
                ..base.scoring.clone()
            },
            train: TrainConfig {
                steps: 600,
                batch_size: 8,
                lr_warmup_steps: 60,
                ..base.train.clone()
            },
            ..base
        }
    }

    /// Defaults for audio clips seen as their log-mel statistics
    /// ([`AudioFeatures::LogMelStatistics`], 64 bands; per band the mean and the deviation
    /// over the clip, the DCASE baselines' features, and the deviation of the frame-to-frame
    /// differences, [`MelStatistics::MeanStdDelta`]: 192 numbers a clip, standardised with the
    /// training clips' statistics): the tables' MLP denoiser and schedule, scored by the
    /// parametric DTE (7 time bins, the reference's), which on rows detects where
    /// reconstruction does not. The delta deviations were chosen over the plain statistics on
    /// audio anomalies generated from held-out training clips (every seed of both protocol
    /// sets, `docs/results/notes.md`, 2026-12-07).
    pub fn for_audio_log_mel() -> Self {
        Self::for_audio_log_mel_features(AudioFeatures::LogMelStatistics)
    }

    /// As [`DetectorConfig::for_audio_log_mel`], the clips seen as `features`: statistics, or
    /// [`AudioFeatures::LogMelWindows`] of 5 frames (320 numbers a window). Scalograms are
    /// [`DetectorConfig::for_audio`]'s; asked for here they give the statistics.
    pub fn for_audio_log_mel_features(features: AudioFeatures) -> Self {
        Self::for_audio_log_mel_input(InputConfig {
            audio_features: features,
            mel_statistics: MelStatistics::MeanStdDelta,
            ..InputConfig::default()
        })
    }

    /// As [`DetectorConfig::for_audio_log_mel`] with the log-mel settings of `input` (its
    /// features, bands, mel scale, centring, statistics, window frames, rate): the MLP is as
    /// wide as those rows ([`InputConfig::log_mel_row_len`]). Scalograms are
    /// [`DetectorConfig::for_audio`]'s; asked for here they give the statistics.
    pub fn for_audio_log_mel_input(input: InputConfig) -> Self {
        let mut input = input;
        if input.audio_features == AudioFeatures::Scalogram {
            input.audio_features = AudioFeatures::LogMelStatistics;
        }
        let tables = Self::for_tables(input.log_mel_row_len());
        Self {
            modality: Modality::Audio,
            input,
            scorer: ScorerConfig::DteCategorical {
                bins: 7,
                surprisal: false,
            },
            ..tables
        }
    }

    /// Defaults for tables of `features` columns: a residual MLP, scored by reconstruction
    /// from a fixed partial-diffusion start, as the DTE paper's DDPM baseline.
    pub fn for_tables(features: usize) -> Self {
        Self {
            modality: Modality::Table,
            network: NetworkConfig::Mlp(MlpConfig {
                width: 128,
                depth: 3,
                ..MlpConfig::new(features)
            }),
            schedule: NoiseScheduleConfig {
                beta_schedule: BetaSchedule::Linear,
                ..NoiseScheduleConfig::default()
            },
            scoring: ScoringConfig {
                strength: 0.2,
                batch_size: 256,
                ..ScoringConfig::default()
            },
            train: TrainConfig {
                steps: 2000,
                batch_size: 64,
                learning_rate: 1e-3,
                ..TrainConfig::default()
            },
            ..Self::for_images(1)
        }
    }
}
