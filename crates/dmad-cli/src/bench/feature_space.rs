//! The benchmark's feature-space cells (issue 17): the PatchCore peer on EfficientNet-Lite0
//! patch features, and dmad's diffusion detector trained on the same features.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use dmad::score::efficientnet::{EfficientNetExtractor, ExtractorConfig, FeatureTaps};
use dmad::score::{maps, patch, PatchCore, PatchCoreConfig};
use dmad::{Detector, DetectorConfig, FeatureSpaceConfig, Modality, ScorerConfig};

use super::EFFICIENTNET_ENV;

/// Images scored (and run through the extractor) at once by the PatchCore peer.
const BATCH: usize = 8;

/// Scores, maps and the fit / score wall times of one run of a detector.
pub(super) struct Run {
    pub scores: Vec<f32>,
    pub maps: Tensor,
    pub fit_s: f64,
    pub score_s: f64,
}

/// The benchmark's feature-space detector of a dataset: [`DetectorConfig::feature_diffusion`]
/// at `budget` (2000 training steps at budget 1), scored by `scorer`.
pub(super) fn config(modality: Modality, budget: f64, scorer: ScorerConfig) -> DetectorConfig {
    let mut cfg = DetectorConfig::feature_diffusion(modality, 1);
    cfg.train.steps = ((2000.0 * budget).round() as usize).max(1);
    cfg.train.lr_warmup_steps = cfg.train.lr_warmup_steps.min(cfg.train.steps / 10);
    cfg.scorer = scorer;
    cfg
}

/// The PatchCore peer (issue 17): patch features of EfficientNet-Lite0 blocks 4 and 10 (3x3
/// local means, block 10 resized to 28x28, 152 features) of every training image, a greedy
/// k-center coreset of `ratio` of them as the memory bank; a test patch's score is its
/// distance to the nearest bank entry, the map those distances upsampled to the input and
/// smoothed (sigma 4 px), the image score the map's maximum. The same features, resizing and
/// map post-processing as dmad's feature-space detector, so that only the detector differs.
pub(super) fn patchcore(
    train: &Tensor,
    test: &Tensor,
    ratio: f64,
    seed: u64,
    dev: &Device,
) -> Result<Run> {
    let weights = std::env::var_os(EFFICIENTNET_ENV).with_context(|| {
        format!("{EFFICIENTNET_ENV} must name EfficientNet-Lite0's safetensors")
    })?;
    let space = FeatureSpaceConfig::default();
    let extractor = EfficientNetExtractor::lite0_with(
        &weights,
        ExtractorConfig {
            image_size: Some((space.extractor_size, space.extractor_size)),
            taps: FeatureTaps::Blocks(space.blocks.clone()),
            ..ExtractorConfig::default()
        },
        dev,
    )?;
    let rows_of = |x: &Tensor| -> Result<(Tensor, (usize, usize))> {
        let n = x.dim(0)?;
        let mut parts = Vec::new();
        let mut hw = (0, 0);
        for start in (0..n).step_by(BATCH) {
            let len = BATCH.min(n - start);
            let f = patch::patch_features(&extractor, &x.narrow(0, start, len)?, space.pool)?;
            hw = (f.dim(2)?, f.dim(3)?);
            parts.push(patch::to_rows(&f)?);
        }
        Ok((Tensor::cat(&parts, 0)?, hw))
    };
    let t0 = Instant::now();
    let (train_rows, _) = rows_of(train)?;
    let pc = PatchCore::fit(
        &PatchCoreConfig {
            coreset_ratio: ratio,
            seed,
        },
        &train_rows,
    )?;
    let fit_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (test_rows, hw) = rows_of(test)?;
    let d = pc.nearest_distances(&test_rows)?;
    let (n, h, w) = (test.dim(0)?, test.dim(2)?, test.dim(3)?);
    let map = maps::patch_maps(&d, n, hw, (h, w), space.smoothing_sigma, dev)?;
    let scores = maps::reduce_maps(&map, space.map_score)?;
    let score_s = t1.elapsed().as_secs_f64();
    Ok(Run {
        scores,
        maps: map,
        fit_s,
        score_s,
    })
}

/// The candidate largest noise levels (strengths) of the denoising score, among which the
/// benchmark's feature-space detector chooses on generated anomalies.
pub(super) const MAX_STRENGTHS: [f64; 4] = [0.1, 0.2, 0.3, 0.5];
/// Held-out normal images used for that choice, at most (evenly spaced).
const CHOICE_IMAGES: usize = 48;

/// Chooses the denoising score's largest noise level (among [`MAX_STRENGTHS`]) and whether it
/// scores noised copies or the noise-free input, on anomalies
/// injected into held-out normal images, no real anomaly used: each image gets one anomaly of
/// `dmad::generate::ImageAnomaly::ALL` in turn (cut-paste, Perlin, scratch, blob; weight 0.7,
/// not harmonised, since the detector's network denoises patch features, not pixels), and the
/// candidate with the best image AUROC of the generated anomalies against their normal
/// originals wins (the first candidate on ties). Leaves `det` scoring with it, its threshold
/// set on the held-out normals. Returns the chosen scorer and its AUROC on the generated set.
pub(super) fn choose_max_strength(
    det: &mut Detector,
    held: &Tensor,
    seed: u64,
) -> Result<(ScorerConfig, f64)> {
    use dmad::generate::{inject_image, ImageAnomaly};
    let n = held.dim(0)?;
    let take: Vec<u32> = (0..CHOICE_IMAGES.min(n))
        .map(|i| (i * n / CHOICE_IMAGES.min(n)) as u32)
        .collect();
    let normal = held.index_select(&Tensor::new(take.as_slice(), held.device())?, 0)?;
    let m = normal.dim(0)?;
    let anomalies = (0..m)
        .map(|i| {
            let kind = ImageAnomaly::ALL[i % ImageAnomaly::ALL.len()];
            Ok(inject_image(
                &normal.narrow(0, i, 1)?,
                kind,
                0.7,
                seed.wrapping_add(i as u64),
            )?
            .x)
        })
        .collect::<Result<Vec<_>>>()?;
    let x = Tensor::cat(&[normal.clone(), Tensor::cat(&anomalies, 0)?], 0)?;
    let labels: Vec<bool> = (0..2 * m).map(|i| i >= m).collect();
    let ScorerConfig::Denoising { levels, .. } = det.config().scorer else {
        anyhow::bail!("the level choice needs the denoising scorer");
    };
    let scoring = det.config().scoring.clone();
    let mut best = (det.config().scorer, f64::NEG_INFINITY);
    for noise_free in [false, true] {
        for &max_strength in &MAX_STRENGTHS {
            let scorer = ScorerConfig::Denoising {
                levels,
                max_strength,
                noise_free,
            };
            det.set_scoring(scorer, scoring.clone(), &normal)?;
            let auroc = dmad::metrics::auroc(&det.score(&x)?.scores, &labels)?;
            if auroc > best.1 {
                best = (scorer, auroc);
            }
        }
    }
    det.set_scoring(best.0, scoring, &normal)?;
    Ok(best)
}
