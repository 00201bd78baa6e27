//! The benchmark's imputation-diffusion cells for series (issue 21).

use anyhow::Result;
use dmad::core::masking::GratingMasks;
use dmad::prepare;
use dmad::DetectorConfig;

use super::{Dataset, Source};

/// Training steps at budget 1.
const STEPS: usize = 800;

/// The window of the UCR classification sets: each whole series resampled to it.
const UCR_CLASS_WINDOW: usize = 64;

/// The benchmark's imputation detector of a series dataset:
/// [`DetectorConfig::series_imputation_for_period`] with the period of the train part alone
/// ([`prepare::train_period`]: windows of two periods, segments of a fifth); the UCR
/// classification sets' whole series are resampled to 64 steps, as the other variants do.
/// `STEPS * budget` steps of the benchmark's small U-Net.
pub(super) fn config(ds: &Dataset, budget: f64) -> Result<DetectorConfig> {
    let mut cfg = match &ds.source {
        Source::Series(src) => {
            let (split, _) = prepare::series_split(src)?;
            DetectorConfig::series_imputation_for_period(1, prepare::train_period(&split.train))
        }
        _ => {
            // Not periodic (whole series resampled): segments of an eighth, the first recipe's.
            let mut c = DetectorConfig::series_imputation(1, UCR_CLASS_WINDOW);
            c.train.imputation = Some(GratingMasks {
                segment: UCR_CLASS_WINDOW / 8,
            });
            c
        }
    };
    // The benchmark's small U-Net (as the other series variants), and attention only at the
    // lowest resolution: at every stage it cost 2.4x the training time on UCR #135's 368-step
    // windows (0.41 against 0.17 s a step), fixed before any test figure was seen.
    super::config::bench_unet(&mut cfg);
    if let Some(m) = cfg.network.modules_mut() {
        m.multi_head_attention = false;
    }
    cfg.train.steps = ((STEPS as f64 * budget).round() as usize).max(1);
    cfg.train.lr_warmup_steps = cfg.train.lr_warmup_steps.min(cfg.train.steps / 10);
    Ok(cfg)
}
