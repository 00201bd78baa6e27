//! The benchmark's feature-space cells (issue 17): the PatchCore peer on EfficientNet-Lite0
//! patch features, and dmad's diffusion detector trained on the same features.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use dmad::score::efficientnet::EfficientNetExtractor;
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
    let extractor = EfficientNetExtractor::lite0_with(&weights, space.extractor_config(), dev)?;
    let rows_of = |x: &Tensor| patch::patch_rows(&extractor, x, space.pool, BATCH);
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
const CHOICE_IMAGES: usize = 32;

/// Held-out normal images for the choice of the scoring settings (at most [`CHOICE_IMAGES`],
/// evenly spaced) and as many generated anomalies: each image gets one anomaly of
/// `dmad::generate::ImageAnomaly::ALL` in turn (cut-paste, Perlin, scratch, blob; weight 0.7,
/// not harmonised, since the detector's network denoises patch features, not pixels).
pub(super) fn image_choice_set(held: &Tensor, seed: u64) -> Result<(Tensor, Tensor)> {
    use dmad::generate::{inject_image, ImageAnomaly};
    let n = held.dim(0)?;
    let m = CHOICE_IMAGES.min(n);
    let take: Vec<u32> = (0..m).map(|i| (i * n / m) as u32).collect();
    let normal = held.index_select(&Tensor::new(take.as_slice(), held.device())?, 0)?;
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
    Ok((normal, Tensor::cat(&anomalies, 0)?))
}

/// The candidate scorers of a feature-space detector fitted for `scorer`: for the denoising
/// score, its largest noise level (among [`MAX_STRENGTHS`]), noised or noise-free; for
/// DTE-Categorical, the expected time or the clean bin's surprisal.
fn scoring_candidates(scorer: ScorerConfig) -> Result<Vec<ScorerConfig>> {
    Ok(match scorer {
        ScorerConfig::Denoising { levels, .. } => [false, true]
            .into_iter()
            .flat_map(|noise_free| {
                MAX_STRENGTHS
                    .iter()
                    .map(move |&max_strength| ScorerConfig::Denoising {
                        levels,
                        max_strength,
                        noise_free,
                    })
            })
            .collect(),
        ScorerConfig::DteCategorical { bins, .. } => [false, true]
            .into_iter()
            .map(|surprisal| ScorerConfig::DteCategorical { bins, surprisal })
            .collect(),
        other => anyhow::bail!("no scoring choice for {other:?}"),
    })
}

/// Chooses how a fitted feature-space detector scores ([`scoring_candidates`]) on generated
/// anomalies against held-out normal samples (no real anomaly used): the candidate with the
/// best AUROC of `anomalies` against `normal` wins (the first candidate on ties). Leaves
/// `det` scoring with it, its threshold set on `normal`. Returns the chosen scorer and its
/// AUROC on the generated set.
pub(super) fn choose_scoring(
    det: &mut Detector,
    normal: &Tensor,
    anomalies: &Tensor,
) -> Result<(ScorerConfig, f64)> {
    let x = Tensor::cat(&[normal, anomalies], 0)?;
    let (m, k) = (normal.dim(0)?, anomalies.dim(0)?);
    let labels: Vec<bool> = (0..m + k).map(|i| i >= m).collect();
    let candidates = scoring_candidates(det.config().scorer)?;
    let mut best = (det.config().scorer, f64::NEG_INFINITY);
    for (scorer, s) in candidates
        .iter()
        .zip(det.score_candidates(&x, &candidates)?)
    {
        let auroc = dmad::metrics::auroc(&s.scores, &labels)?;
        if auroc > best.1 {
            best = (*scorer, auroc);
        }
    }
    let scoring = det.config().scoring.clone();
    det.set_scoring(best.0, scoring, normal)?;
    Ok(best)
}

/// A peer's figures read from another tool's results (the audio peers).
struct PeerRow {
    dataset: String,
    method: String,
    auroc: f64,
    auprc: f64,
    pauc: Option<f64>,
    fit_s: Option<f64>,
    score_s: Option<f64>,
}

/// The DCASE-style audio peers of `benches/peers/audio_dcase.py`, if their JSON is there.
fn audio_peers(path: &std::path::Path) -> Vec<PeerRow> {
    let Some(v) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return Vec::new();
    };
    let f = |r: &serde_json::Value, a: &str, b: &str| {
        r.get(a).and_then(|x| x.get(b)).and_then(|x| x.as_f64())
    };
    v.get("records")
        .and_then(|r| r.as_array())
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    Some(PeerRow {
                        dataset: r.get("dataset")?.as_str()?.to_string(),
                        method: format!("{} (peer)", r.get("method")?.as_str()?),
                        auroc: f(r, "metrics", "auroc")?,
                        auprc: f(r, "metrics", "auprc")?,
                        pauc: f(r, "metrics", "pauc_0.1"),
                        fit_s: f(r, "wall_s", "fit"),
                        score_s: f(r, "wall_s", "score"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The section of the report that compares the feature-space diffusion detector with PatchCore
/// (images, scalograms) and the DCASE log-mel kNN peers (audio), with seeds, ranges and the
/// fit / score times.
pub(super) fn write_section(
    md: &mut String,
    records: &[super::Record],
    audio_peers_json: &std::path::Path,
) {
    use std::fmt::Write as _;
    let ids = [
        "patchcore",
        "patchcore-10",
        "feature-diffusion",
        "feature-diffusion-pos",
        "feature-diffusion-isotropic",
        "feature-diffusion-isotropic-all",
        "feature-diffusion-isotropic-all-scored-t",
        "feature-diffusion-isotropic-all-short",
        "feature-diffusion-positional-isotropic-all",
        "feature-diffusion-isotropic-all-draws8",
        "feature-diffusion-isotropic-all-wide",
        "feature-diffusion-isotropic-all-wide-long",
        "feature-diffusion-isotropic-all-wide-budget",
        "feature-diffusion-isotropic-all-wide-budget-scored-t",
        "feature-diffusion-isotropic-all-wide-full-scored-t",
        "feature-diffusion-isotropic-all-long",
        "feature-diffusion-isotropic-all-long-validated",
        "feature-diffusion-positional-isotropic-all-long",
        "feature-diffusion-positional-isotropic-all-long-scored-t",
        "feature-dte",
        "feature-dte-chosen",
        "feature-dte-50",
        "feature-dte-surprisal",
        "feature-dte-positional",
        "feature-dte-low-noise",
        "feature-dte-no-flips",
        "feature-dte-positional-no-flips",
        "feature-dte-isotropic",
        "feature-dte-positional-isotropic",
        "feature-recon",
        "log-mel-dte",
        "log-mel-dte-50",
        "log-mel-dte-htk",
        "log-mel-dte-librosa",
        "log-mel-windows-dte",
        "log-mel-dte-chosen",
        "log-mel-dte-delta",
        "log-mel-dte-delta-chosen",
        "log-mel-recon",
    ];
    let mut rows: Vec<&super::Record> = records
        .iter()
        .filter(|r| ids.contains(&r.variant.as_str()))
        .collect();
    if rows.is_empty() {
        return;
    }
    rows.sort_by_key(|r| (r.dataset.clone(), ids.iter().position(|i| *i == r.variant)));
    let _ = writeln!(
        md,
        "## Diffusion in a feature space against PatchCore (issue 17)\n\n\
         `feature diffusion`: an MLP denoiser (width 256, 3 blocks) trained on the standardised \
         EfficientNet-Lite0 patch features (blocks 4 and 10, 3x3 local means, 28x28 x 152 per \
         224x224 image) of the normal images, each patch scored by its denoising error over 8 \
         noise levels, fitted on 4/5 of the normal training samples, the largest level (0.1, \
         0.2, 0.3, 0.5) and noised or noise-free scoring chosen on anomalies generated from \
         the other fifth (images: injected cut-paste, Perlin, scratch and blob defects; audio: \
         the audio anomalies injected into the held-out clips' waveforms); the map resized to the input, smoothed (sigma 4 px), its \
         maximum the image score; `per-position norm`: the same, with the features standardised \
         per patch position (PaDiM's statistics) instead of globally. `feature DTE-Categorical`: \
         parametric diffusion-time estimation on the same standardised patch features, a \
         classifier (MLP 256-512-256) of which of 7 ranges of diffusion time a noised training \
         patch came from, trained on all the normal images (about 2000 steps of 512 patches, \
         whole passes), each patch scored by its expected time (the reference's score, fixed \
         before any run); `score chosen`: fitted on 4/5 of the normal images, the expected time \
         or the clean bin's surprisal (-ln p0) chosen on anomalies generated from the other \
         fifth; `50 bins`: as the first, with 50 time bins; `surprisal`: as the first, scored \
         by the clean bin's surprisal; `positions`: as the first, each patch's row and column \
         appended to its features; `low noise`: as the first on a schedule ending at beta \
         0.005 (the bins span noise sd 0.26-3.4 per feature); `no flips`: fitted without the \
         flipped training copies (as PatchCore's bank); `isotropic scale`: the features \
         centred and divided by one spread for all (`PatchNorm::Isotropic`) instead of \
         standardised one by one, so the noise is measured in the extractor's own distances \
         (PatchCore's); `all normals, preset scoring`: the feature denoiser fitted on all the \
         normal images and scored as the library's preset (8 levels up to strength 0.5, noised, \
         2 draws; no hold-out, no choice), as `dmad fit --scorer feature-diffusion` fits; `8 \
         draws`: the same score averaged over 8 noise draws per level; `width 512`: the same with \
         a denoiser twice as wide (four times the training compute). `PatchCore`: the same \
         features, a greedy k-center coreset \
         (1 % or 10 %) of the training patches, the distance to the nearest bank entry, the \
         same map post-processing. `log-mel DTE-Categorical` (audio): the same classifier \
         (7 bins) on each clip's log-mel statistics (64-band log-mel, HTK's mel scale on whole \
         frames as `classical.py`; per band the mean and deviation over the clip, standardised \
         with the training clips'), the library's `dmad fit --scorer log-mel-dte` (2000 steps \
         of 64 rows); `50 bins`: 50 time bins; `librosa's log-mel`: librosa's defaults (Slaney's \
         mel scale, centred frames); `HTK mel`: HTK's mel scale on centred frames; `chosen`: \
         the log-mel (the library's or librosa's) and the bins (7, 50) chosen on the audio \
         anomalies injected into a held-out fifth of the training clips (the mean AUROC over \
         strengths 0.1, 0.2, 0.35 and 0.7), then refitted on all; `delta deviation`: per band \
         also the deviation of the frame-to-frame differences (192 numbers, \
         `MelStatistics::MeanStdDelta`); `statistics chosen`: the statistics (with or without \
         the delta deviation) and the bins (7, 50) chosen as `chosen` does; \
         `log-mel windows`: the classifier on every 5-frame log-mel window of a clip (the DCASE \
         2020 baseline's 320 numbers, standardised with the training windows'), a clip scored \
         by its largest window; `log-mel diffusion, recon`: the tables' MLP denoiser on the \
         statistics, scored by \
         partial-diffusion reconstruction. Audio rows add the DCASE-style log-mel kNN peers \
         (`benches/peers/audio_dcase.py`; deterministic), among them kNN on the library's own \
         delta statistics; `classical.py`'s KNN on HTK log-mel statistics scores mining-hard \
         0.891, sawmill-hard 0.675 (the classical peers' section). AUROC cells with several seeds read \
         `mean [min, max]`; times are seconds on the benchmark machine's 2 cores, per seed.\n"
    );
    let _ = writeln!(
        md,
        "| dataset | method | seeds | image AUROC | AUPRC | pixel AUROC | AUPRO@0.3 | pAUC@0.1 | \
         fit s | score s | chosen per seed (max level, nf = noise-free; DTE: time or surprisal; log-mel: scale, bins) |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    let ranged = |r: &super::Record, name: &str, v: Option<f64>| -> String {
        match (v, r.seed_range.get(name)) {
            (Some(v), Some([lo, hi])) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
            (Some(v), None) => format!("{v:.3}"),
            (None, _) => "-".into(),
        }
    };
    let mut last = String::new();
    for r in &rows {
        if r.dataset != last && r.dataset.starts_with("audio/") {
            for p in audio_peers(audio_peers_json)
                .iter()
                .filter(|p| p.dataset == r.dataset)
            {
                let _ = writeln!(
                    md,
                    "| {} | {} | - | {:.3} | {:.3} | - | - | {} | {} | {} | - |",
                    super::short_id(&p.dataset),
                    p.method,
                    p.auroc,
                    p.auprc,
                    opt(p.pauc),
                    p.fit_s.map_or("-".into(), |s| format!("{s:.2}")),
                    p.score_s.map_or("-".into(), |s| format!("{s:.2}")),
                );
            }
        }
        last = r.dataset.clone();
        let m = &r.metrics;
        // Per seed: the chosen largest level, with "nf" where the noise-free score won; for
        // DTE, the expected time ("time") or the clean bin's surprisal ("surprisal").
        let chosen: Vec<String> = r
            .per_unit
            .iter()
            .filter_map(|u| {
                if let Some(c) = &u.log_mel_choice {
                    return Some(c.clone());
                }
                if let Some(surprisal) = u.dte_surprisal {
                    return Some(if surprisal { "surprisal" } else { "time" }.to_string());
                }
                let s = u.calibrated_strength?;
                Some(format!("{s}{}", if u.noise_free? { " nf" } else { "" }))
            })
            .collect();
        let chosen = if chosen.is_empty() {
            "-".to_string()
        } else {
            chosen.join(", ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            super::short_id(&r.dataset),
            r.method,
            r.seeds.len().max(1),
            ranged(r, "auroc", Some(m.auroc)),
            opt(Some(m.auprc)),
            ranged(r, "pixel_auroc", m.pixel_auroc),
            ranged(r, "aupro_03", m.aupro_03),
            opt(m.pauc_01),
            m.fit_s.map_or("-".into(), |s| format!("{s:.0}")),
            m.score_s.map_or("-".into(), |s| format!("{s:.0}")),
            chosen,
        );
    }
    let _ = writeln!(md);
}
