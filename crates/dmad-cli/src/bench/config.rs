//! The configuration of each benchmark cell: the dataset's base detector at the budget, with
//! the variant's changes.

use anyhow::Result;
use dmad::{DetectorConfig, Modality};

use super::dataset::{Dataset, Source};
use super::variant::Variant;
use super::{feature_space, imputation, pixel};

/// A small U-Net for the benchmark: the demo's width, all four modules.
pub(super) fn bench_unet(cfg: &mut DetectorConfig) {
    if let dmad::NetworkConfig::Unet2d(u) | dmad::NetworkConfig::Unet1d(u) = &mut cfg.network {
        u.block_out_channels = vec![16, 32, 32];
        u.norm_num_groups = Some(8);
        u.modules.attention_heads = 2;
        u.modules.adapter_channels = 16;
    }
}

/// The benchmark's configuration of a dataset (before the variant is applied).
pub(super) fn base_config(ds: &Dataset, features: usize, budget: f64) -> DetectorConfig {
    let steps = |n: usize| ((n as f64 * budget).round() as usize).max(1);
    let mut cfg = match ds.modality() {
        Modality::Table => {
            let mut c = DetectorConfig::for_tables(features);
            c.train.steps = steps(1000);
            c.scoring.steps = 20;
            c
        }
        Modality::Series => {
            let mut c = DetectorConfig::for_series(1);
            bench_unet(&mut c);
            c.train.steps = steps(300);
            c.train.batch_size = 32;
            c.input.window = 64;
            c.input.train_stride = 4;
            c.input.test_stride = 4;
            c.scoring.batch_size = 64;
            c
        }
        Modality::Image => {
            let mut c = DetectorConfig::for_images(1);
            bench_unet(&mut c);
            c.input.image_size = 32;
            c.train.steps = steps(200);
            c.train.batch_size = 8;
            // Digits are not flip-invariant; textures and solar cells are.
            c.input.flip_augment = !matches!(ds.source, Source::Mnist { .. });
            c.scoring.batch_size = 64;
            c
        }
        Modality::Audio => {
            let mut c = DetectorConfig::for_audio();
            bench_unet(&mut c);
            // 32 scales of the narrow-band cmor10-1.0 (for_audio's wavelet), each clip's
            // maximum at the top, and 4 frames of 0.25 s: the noise's time detail averaged
            // away (benches/peers/audio_representation.py).
            c.input.image_size = 4;
            c.input.scales = 32;
            c.train.steps = steps(200);
            c.train.batch_size = 8;
            c.scoring.batch_size = 64;
            c
        }
    };
    cfg.train.lr_warmup_steps = cfg.train.lr_warmup_steps.min(cfg.train.steps / 10);
    cfg.scoring.steps = 20;
    cfg.scoring.strength = if ds.modality() == Modality::Table {
        0.2
    } else {
        0.1
    };
    cfg
}

/// The configuration of `variant`'s cell on `ds` (`features`: a table's columns) at `budget`.
pub(super) fn cell_config(
    ds: &Dataset,
    features: usize,
    variant: Variant,
    budget: f64,
) -> Result<DetectorConfig> {
    let mut cfg = if variant.imputes() {
        imputation::config(ds, budget)?
    } else {
        base_config(ds, features, budget)
    };
    variant.apply(&mut cfg);
    if let Some(c) = variant.log_mel_config(budget) {
        // The library's defaults, as `dmad fit --scorer log-mel-dte` fits.
        cfg = c;
    }
    if variant.log_mel_image() {
        cfg.input.audio_features = dmad::AudioFeatures::LogMelImage;
    }
    if variant.pixel_repair().is_some() {
        cfg = pixel::config(&cfg, budget);
    }
    if variant.patch_features() {
        let input = cfg.input.clone();
        if let Some(scorer) = variant.feature_scorer() {
            cfg = feature_space::config(ds.modality(), budget, scorer);
            cfg.scoring.strength = 0.3;
            if variant == Variant::FeatureDiffusionIsotropicAllDraws8 {
                cfg.scoring.draws = 8;
            }
            if matches!(
                variant,
                Variant::FeatureDiffusionIsotropicAllWide
                    | Variant::FeatureDiffusionIsotropicAllWideLong
                    | Variant::FeatureDiffusionIsotropicAllWideBudget
                    | Variant::FeatureDiffusionIsotropicAllWideBudgetScoredT
                    | Variant::FeatureDiffusionIsotropicAllWideFullScoredT
            ) {
                if let dmad::NetworkConfig::Mlp(m) = &mut cfg.network {
                    m.width = 512;
                }
            }
            if variant == Variant::FeatureDiffusionIsotropicAllWideLong {
                cfg.train.steps = cfg.train.steps * 7 / 4;
                cfg.train.distinct_timesteps = Some(32);
            }
            if matches!(
                variant,
                Variant::FeatureDiffusionIsotropicAllWideBudget
                    | Variant::FeatureDiffusionIsotropicAllWideBudgetScoredT
            ) {
                cfg.train.steps = cfg.train.steps * 3 / 2;
                cfg.train.distinct_timesteps = Some(32);
            }
            if variant == Variant::FeatureDiffusionIsotropicAllShort {
                cfg.train.steps /= 2;
            }
            if variant == Variant::FeatureDiffusionIsotropicAllWideFullScoredT {
                cfg.train.steps = cfg.train.steps * 5 / 2;
                cfg.train.distinct_timesteps = Some(32);
            }
            if matches!(
                variant,
                Variant::FeatureDiffusionIsotropicAllLong
                    | Variant::FeatureDiffusionIsotropicAllLongValidated
                    | Variant::FeatureDiffusionPositionalIsotropicAllLong
                    | Variant::FeatureDiffusionPositionalIsotropicAllLongScoredT
            ) {
                cfg.train.steps *= 3;
                cfg.train.distinct_timesteps = Some(32);
            }
            if variant == Variant::FeatureDiffusionIsotropicAllLongValidated {
                cfg.train.validate_every = Some(500);
            }
            if matches!(
                variant,
                Variant::FeatureDiffusionPositionalIsotropicAllLong
                    | Variant::FeatureDiffusionPositionalIsotropicAllLongScoredT
                    | Variant::FeatureDtePositional
                    | Variant::FeatureDtePositionalNoFlips
                    | Variant::FeatureDtePositionalIsotropic
                    | Variant::FeatureDiffusionPositionalIsotropicAll
            ) {
                cfg = cfg.with_patch_positions()?;
            }
            if variant.scored_timesteps() {
                cfg = cfg.with_scored_timesteps()?;
            }
            if variant == Variant::FeatureDteLowNoise {
                cfg.schedule.beta_end = 0.005;
            }
            if let Some(fs) = cfg.feature_space.as_mut() {
                fs.normalisation = variant.patch_norm();
            }
        }
        cfg.input = input;
        if ds.modality() == Modality::Image {
            // Full resolution (the protocol's 256x256 maps); PatchCore's memory bank
            // takes the training images as they are.
            cfg.input.image_size = 256;
            cfg.input.flip_augment &= variant.feature_scorer().is_some()
                && !matches!(
                    variant,
                    Variant::FeatureDteNoFlips | Variant::FeatureDtePositionalNoFlips
                );
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_log_mel_unet_preset_is_the_pixel_log_mel_mean_cell_at_budget_0_6() {
        // The figures SCORERS.md quotes for `--scorer log-mel-unet` are this cell's.
        let ds = Dataset {
            id: "audio/machine".into(),
            group: "audio",
            source: Source::Audio(PathBuf::from("machine")),
        };
        let mut cell = cell_config(&ds, 0, Variant::PixelLogMelMean, 0.6).unwrap();
        let repair = Variant::PixelLogMelMean.pixel_repair().unwrap();
        cell.scorer = repair.scorer(cell.scorer);
        cell.scoring = pixel::scoring(&cell, repair);
        let preset = DetectorConfig::for_audio_log_mel_image();
        fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
            serde_json::to_value(v).unwrap()
        }
        assert_eq!(json(&cell.input), json(&preset.input));
        assert_eq!(json(&cell.network), json(&preset.network));
        assert_eq!(json(&cell.schedule), json(&preset.schedule));
        assert_eq!(json(&cell.train), json(&preset.train));
        assert_eq!(json(&cell.scoring), json(&preset.scoring));
        assert_eq!(json(&cell.scorer), json(&preset.scorer));
    }
}
