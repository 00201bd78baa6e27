//! The benchmark's pixel-space cells of issue 18: the method's U-Net trained on the images
//! themselves at 128x128 and scored with DDAD's repairs added one at a time (map-level cosine
//! feature term, conditioned reconstruction, `lambda` and the start chosen on generated
//! anomalies). Every cell of a dataset and seed scores the same trained network: it is fitted
//! once and kept in [`CACHE_DIR`], so a repair's cell differs from the one before it only in
//! how it scores.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use dmad::{Detector, DetectorConfig, MapScore, ScorerConfig, ScoringConfig};

/// Where the fitted networks of the pixel cells are kept (relative to the working directory),
/// one folder per dataset, seed and training configuration.
pub(super) const CACHE_DIR: &str = "target/bench-models";

/// The image side the pixel cells train and score at (the protocol's maps are resized to
/// 256x256 for the pixel metrics).
pub(super) const SIZE: u32 = 128;

/// The scalogram rows (CWT scales) of the audio pixel cells: the library's default.
pub(super) const AUDIO_SCALES: usize = 64;

/// The scalogram columns (frames of 31 ms) of the audio pixel cells: enough time detail for a
/// transient or a drop-out to stay a feature of the map, a width the four-level U-Net halves
/// three times. The other audio cells average a clip to 4 frames (distance detectors on the
/// whole map lose to the clip's noise, `benches/peers/audio_representation.py`); a map scored
/// by its largest smoothed region does not average.
pub(super) const AUDIO_FRAMES: u32 = 32;

/// DDAD's conditioning weight of the `pixel-cond` and `pixel-ddad` cells: at the start
/// strength 0.25 the first step moves the estimate about half-way to the input
/// (`w (1 - alpha_bar) = 0.48`), the last steps hardly at all.
pub(super) const CONDITION: f64 = 1.0;

/// The Gaussian smoothing of the maps, in pixels at [`SIZE`] (DDAD and PatchCore use 4 at
/// 256).
pub(super) const SIGMA: f64 = 2.0;

/// The start strength of the cells that do not choose it (DDAD's `t = 250` of 1000).
pub(super) const STRENGTH: f64 = 0.25;

/// Which repair a pixel cell adds to the 128x128 network's `combined` scoring (one at a
/// time, on the same network), or all of them chosen on generated anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repair {
    /// 128x128 and the larger U-Net only: the `combined` cell's scoring (mean squared error of
    /// both terms, `lambda` 0.5, unguided reconstruction).
    Resolution,
    /// `Resolution` + the feature term as DDAD's per-position `1 - cos` over the layers, both
    /// maps smoothed and summarised by their maximum.
    MapLevel,
    /// `Resolution` + the reconstruction conditioned on the input ([`CONDITION`]).
    Conditioned,
    /// The conditioning (0 or [`CONDITION`]), the map summary (mean or maximum), the feature
    /// distance, `lambda` and the start strength chosen on generated anomalies ([`choices`],
    /// [`CHOICE_STRENGTHS`]), maps smoothed.
    Calibrated,
    /// The reconstruction term alone (`lambda` 1), the input compared with the mean of
    /// [`MEAN_DRAWS`] reconstructions (`scoring.mean_reconstruction`).
    MeanOfDraws,
    /// The denoising error over 8 noise levels up to [`STRENGTH`] (the survey's ELBO-style
    /// density score) instead of a reconstruction: one network call per level.
    Denoising,
    /// As `Calibrated`, with the mean of [`MEAN_DRAWS`] reconstructions (unguided and
    /// conditioned, the maps' mean) among the candidates.
    CalibratedMean,
    /// As `CalibratedMean`, on generated anomalies of graded strengths ([`graded_anomalies`])
    /// instead of all at the benchmark's 0.7.
    CalibratedGraded,
}

impl Repair {
    /// The scorer of a cell with this repair, `base` the pixel cells' (combined).
    pub(super) fn scorer(self, base: ScorerConfig) -> ScorerConfig {
        match self {
            Repair::MeanOfDraws => ScorerConfig::Reconstruction,
            Repair::Denoising => ScorerConfig::Denoising {
                levels: 8,
                max_strength: STRENGTH,
                noise_free: false,
            },
            _ => base,
        }
    }
}

/// The reconstructions averaged by the `MeanOfDraws` cells.
pub(super) const MEAN_DRAWS: usize = 4;

/// The pixel cells' detector of an image dataset: `base` (the benchmark's image config) at
/// [`SIZE`] (audio: scalograms of [`AUDIO_SCALES`] x [`AUDIO_FRAMES`]) with a four-level U-Net [16, 32, 64, 64] whose lowest level is 16x16 (no
/// attention: 1024 tokens at 32x32 would dominate the CPU time), 1000 training steps x
/// `budget`, trained on every normal image it is given (the held-out fifth calibrates).
pub(super) fn config(base: &DetectorConfig, budget: f64) -> DetectorConfig {
    let mut cfg = base.clone();
    if cfg.modality == dmad::Modality::Audio {
        cfg.input.scales = AUDIO_SCALES;
        cfg.input.image_size = AUDIO_FRAMES;
    } else {
        cfg.input.image_size = SIZE;
    }
    if let dmad::NetworkConfig::Unet2d(u) = &mut cfg.network {
        u.block_out_channels = vec![16, 32, 64, 64];
        u.down_block_types = vec![dmad::unet::DownBlockType::DownBlock; 4];
        u.up_block_types = vec![dmad::unet::UpBlockType::UpBlock; 4];
        u.modules.multi_head_attention = false;
    }
    cfg.train.steps = ((1000.0 * budget).round() as usize).max(1);
    cfg.train.lr_warmup_steps = (cfg.train.steps / 10).min(100);
    cfg.calibration_fraction = 0.0;
    cfg.scorer = ScorerConfig::Combined {
        lambda: super::COMBINED_LAMBDA,
    };
    cfg.scoring.steps = 40;
    cfg.scoring.strength = STRENGTH;
    cfg
}

/// The start strengths the `pixel-ddad` cell chooses among.
pub(super) const CHOICE_STRENGTHS: [f64; 3] = [0.05, 0.1, 0.25];

/// The scoring options the `pixel-ddad` cell chooses among (each with its own `lambda` and
/// start strength): unguided or conditioned, mean or maximum of the smoothed maps, with the
/// squared feature error; and DDAD's own (conditioned, cosine, maximum).
pub(super) fn choices(cfg: &DetectorConfig) -> Vec<ScoringConfig> {
    let mut out = Vec::new();
    for condition in [0.0, CONDITION] {
        for map_score in [MapScore::Inner, MapScore::Max] {
            let mut s = cfg.scoring.clone();
            s.condition = condition;
            s.map_score = map_score;
            s.smoothing_sigma = SIGMA;
            out.push(s);
        }
    }
    let mut ddad = scoring(cfg, Repair::MapLevel);
    ddad.condition = CONDITION;
    out.push(ddad);
    out
}

/// [`choices`] and the mean of [`MEAN_DRAWS`] reconstructions, unguided and conditioned (the
/// `CalibratedMean` cells).
pub(super) fn choices_with_mean(cfg: &DetectorConfig) -> Vec<ScoringConfig> {
    let mut out = choices(cfg);
    for condition in [0.0, CONDITION] {
        let mut s = scoring(cfg, Repair::MeanOfDraws);
        s.condition = condition;
        s.smoothing_sigma = SIGMA;
        out.push(s);
    }
    out
}

fn describe(s: &ScoringConfig) -> String {
    let mean = if s.mean_reconstruction {
        format!(", the mean of {} draws", s.draws)
    } else {
        String::new()
    };
    format!(
        "condition {}, {:?} of the maps, {:?} features{mean}",
        s.condition, s.map_score, s.feature_distance
    )
}

/// Anomalies generated from `bases`, a quarter of them (every fourth sample) at each strength
/// of `dmad::choose::CHOICE_STRENGTHS` (0.1 to 0.7): an AUROC against them is the mean of the
/// AUROCs at each strength, so a candidate gains by finding weak anomalies too, where at 0.7
/// alone every candidate finds nearly all.
fn graded_anomalies(
    gen: &dmad::generate::Generator<'_>,
    bases: &Tensor,
    seed: u64,
) -> Result<Tensor> {
    let strengths = dmad::choose::CHOICE_STRENGTHS;
    let n = bases.dim(0)?;
    let mut parts = Vec::with_capacity(strengths.len());
    for (g, &strength) in strengths.iter().enumerate() {
        let idx: Vec<u32> = (g..n).step_by(strengths.len()).map(|i| i as u32).collect();
        if idx.is_empty() {
            continue;
        }
        let part = bases.index_select(&Tensor::new(idx.as_slice(), bases.device())?, 0)?;
        let s = seed.wrapping_add(1000 * g as u64);
        parts.push(gen.mixed_anomalies(&part, strength, s, None)?.x);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Chooses among the candidates of `repair` ([`choices`], or [`choices_with_mean`] for
/// `CalibratedMean` and `CalibratedGraded`) on anomalies generated from the held-out normals
/// (each with its own `lambda` and start strength among [`CHOICE_STRENGTHS`],
/// `dmad::generate`; graded strengths for `CalibratedGraded`, [`graded_anomalies`]), the one
/// with the best AUROC on them, and makes `det` score so with its scorer (threshold from the
/// generated anomalies' F1-optimum, as the other calibrated cells). No real anomaly is used.
fn choose_on_generated(
    ds: &super::Dataset,
    repair: Repair,
    det: &mut Detector,
    held: &Tensor,
    seed: u64,
    dev: &Device,
    m: &mut super::UnitMetrics,
) -> Result<()> {
    use dmad::generate::{CalibrationConfig, GenerateConfig, Generator};
    let scorer = det.config().scorer;
    let candidates = match repair {
        Repair::Calibrated => choices(det.config()),
        _ => choices_with_mean(det.config()),
    };
    let bases = match &ds.source {
        super::Source::Audio(dir) => {
            let waves = super::audio_train_waves(dir, &det.config().input, dev)?;
            super::hold_out(&waves, 1)?.1
        }
        _ => held.clone(),
    };
    let gen = Generator::new(det, GenerateConfig::default())?;
    let anomalies = if repair == Repair::CalibratedGraded {
        graded_anomalies(&gen, &bases, seed)?
    } else {
        gen.mixed_anomalies(&bases, super::GENERATED_STRENGTH, seed, None)?
            .x
    };
    let extractor = super::efficientnet_from_env(dev)?.with_context(|| {
        format!(
            "{} must name EfficientNet-Lite0's safetensors",
            super::EFFICIENTNET_ENV
        )
    })?;
    let features: &dyn dmad::FeatureExtractor = &extractor;
    let mut best: Option<(ScoringConfig, dmad::generate::Calibrated)> = None;
    for s in candidates {
        det.set_scoring(scorer, s.clone(), held)?;
        let c = dmad::generate::calibrate_on_generated(
            det,
            held,
            &anomalies,
            &CHOICE_STRENGTHS,
            Some(features),
            &CalibrationConfig::default(),
        )?;
        if best.as_ref().is_none_or(|(_, b)| c.auroc > b.auroc) {
            best = Some((s, c));
        }
    }
    let (s, c) = best.expect("at least one choice");
    det.set_scoring(scorer, s.clone(), held)?;
    dmad::generate::apply_calibration(det, &c, held)?;
    m.calibrated_strength = Some(c.strength);
    m.calibrated_lambda = Some(c.lambda);
    m.generated_auroc = Some(c.auroc);
    m.scoring_choice = Some(describe(&s));
    Ok(())
}

/// How a cell with `repair` scores.
pub(super) fn scoring(cfg: &DetectorConfig, repair: Repair) -> ScoringConfig {
    let mut s = cfg.scoring.clone();
    match repair {
        Repair::Resolution
        | Repair::Calibrated
        | Repair::CalibratedMean
        | Repair::CalibratedGraded
        | Repair::Denoising => {}
        Repair::MeanOfDraws => {
            s.draws = MEAN_DRAWS;
            s.mean_reconstruction = true;
        }
        Repair::MapLevel => {
            s.feature_distance = dmad::FeatureDistance::Cosine;
            s.smoothing_sigma = SIGMA;
            s.map_score = MapScore::Max;
        }
        Repair::Conditioned => s.condition = CONDITION,
    }
    s
}

/// FNV-1a of `bytes`, for the cache's folder names.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The detector of `cfg` fitted on `train` (`dataset`'s normal images, seed `cfg.train.seed`):
/// loaded from [`CACHE_DIR`] when a fit of the same training configuration and data is
/// there, else fitted and saved. Returns it with the seconds the fit took (when it was
/// fitted, by the run that fitted it).
pub(super) fn fit_cached(
    cfg: &DetectorConfig,
    dataset: &str,
    train: &Tensor,
    dev: &Device,
) -> Result<(Detector, f64)> {
    let key = serde_json::to_vec(&(
        dataset,
        &cfg.input,
        &cfg.network,
        &cfg.schedule,
        &cfg.train,
        train.dims(),
        train.sum_all()?.to_scalar::<f32>()?.to_bits(),
    ))?;
    let name: String = dataset
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir =
        PathBuf::from(CACHE_DIR).join(format!("{name}-seed{}-{:016x}", cfg.train.seed, fnv(&key)));
    let fit_s_file = dir.join("fit_seconds.txt");
    if let (Ok(det), Ok(s)) = (
        Detector::load(&dir, dev),
        std::fs::read_to_string(&fit_s_file),
    ) {
        if let Ok(fit_s) = s.trim().parse::<f64>() {
            return Ok((det, fit_s));
        }
    }
    let t0 = Instant::now();
    let mut det = Detector::new(cfg.clone(), dev)?;
    det.fit(train, |_| {})?;
    let fit_s = t0.elapsed().as_secs_f64();
    det.save(&dir)
        .with_context(|| format!("caching the fitted network in {}", dir.display()))?;
    std::fs::write(&fit_s_file, format!("{fit_s}\n"))?;
    Ok((det, fit_s))
}

/// Fits (or loads) a pixel cell's network on 4/5 of the normal training samples and makes it
/// score as `repair` says, with its threshold (and the combined score's normalisation) from
/// the held-out fifth; `m.fit_s` gets the fit's seconds plus this run's calibration.
pub(super) fn run(
    ds: &super::Dataset,
    cfg: &DetectorConfig,
    train: &Tensor,
    repair: Repair,
    opts: &crate::tasks::Options,
    dev: &Device,
    m: &mut super::UnitMetrics,
) -> Result<Detector> {
    let copies = match ds.source {
        super::Source::Mvtec(_) if cfg.input.flip_augment => 3,
        _ => 1,
    };
    let (fit_part, held) = super::hold_out(train, copies)?;
    let (mut det, fit_s) = fit_cached(cfg, &ds.id, &fit_part, dev)?;
    let t0 = Instant::now();
    det.set_scoring(repair.scorer(cfg.scorer), scoring(cfg, repair), &held)?;
    match repair {
        Repair::Calibrated | Repair::CalibratedMean | Repair::CalibratedGraded => {
            choose_on_generated(ds, repair, &mut det, &held, opts.seed, dev, m)?
        }
        _ => {}
    }
    m.fit_s = Some(fit_s + t0.elapsed().as_secs_f64());
    Ok(det)
}

/// The section of the report that shows what each repair of the pixel-space pipeline
/// contributes (issue 18), beside the `combined` cell it repairs (32x32) and PatchCore.
pub(super) fn write_section(md: &mut String, records: &[super::Record]) {
    use std::fmt::Write as _;
    let ids = [
        "combined",
        "pixel-128",
        "pixel-map",
        "pixel-cond",
        "pixel-ddad",
        "pixel-mean",
        "pixel-denoise",
        "pixel-log-mel",
        "pixel-log-mel-cond",
        "pixel-log-mel-mean",
        "pixel-log-mel-denoise",
        "pixel-log-mel-ddad",
        "pixel-log-mel-graded",
        "pixel-log-mel-ddpm",
        "pixel-log-mel-no-wavelet",
        "pixel-log-mel-no-adapter",
        "pixel-log-mel-no-time-conv",
        "patchcore",
    ];
    let has_pixel = |d: &str| {
        records
            .iter()
            .any(|r| r.dataset == d && r.variant.starts_with("pixel-"))
    };
    let mut rows: Vec<&super::Record> = records
        .iter()
        .filter(|r| ids.contains(&r.variant.as_str()) && has_pixel(&r.dataset))
        .collect();
    if rows.is_empty() {
        return;
    }
    rows.sort_by_key(|r| (r.dataset.clone(), ids.iter().position(|i| *i == r.variant)));
    const GRADED: [f64; 4] = dmad::choose::CHOICE_STRENGTHS;
    let _ = writeln!(
        md,
        "## The method's pixel-space pipeline, repaired (issue 18)\n\n\
         The method's U-Net trained on the images themselves, scored by the method's combined \
         score `lambda z(E_recon) + (1 - lambda) z(E_feat)` (EfficientNet-Lite0 feature term). \
         `full, combined` is the earlier cell (32x32, budget 0.5). `pixel 128, combined`: a \
         four-level U-Net [16, 32, 64, 64] (wavelet pyramid, input adapter and hybrid time \
         embedding on; no attention) trained at 128x128 on 4/5 of the normal images (1000 \
         steps x budget), scored as before (mean of both error maps, lambda 0.5, DDIM from \
         strength 0.25, unguided). The next two cells score the same network with one repair \
         each: `+ map-level cosine` (DDAD's per-position `1 - cos` feature distance, both maps \
         smoothed with sigma {SIGMA} px and summarised by their maximum) and `+ conditioned` \
         (each step's estimate pulled toward the input, DDAD's w = {CONDITION}). `pixel \
         DDAD-style, calibrated` chooses among them (conditioned or not, mean or maximum of the \
         smoothed maps, squared or cosine feature distance), with lambda and the start \
         strength ({CHOICE_STRENGTHS:?}), on anomalies generated from the held-out fifth: no \
         test label. `recon of the mean of {MEAN_DRAWS} draws`: the reconstruction term alone \
         (lambda 1), the input compared with the mean of {MEAN_DRAWS} reconstructions \
         (`scoring.mean_reconstruction`); `denoising error`: the denoising error over 8 noise \
         levels up to strength {STRENGTH}, no reconstruction (both on the `pixel 128` \
         network). Audio: scalograms of {AUDIO_SCALES} scales x {AUDIO_FRAMES} frames (32x4 \
         before 2026-12-07) with the same U-Net; `log-mel image`: the U-Net trained on each \
         clip's log-mel spectrogram (64 bands, whole frames averaged into {AUDIO_FRAMES} \
         columns, each band standardised with the training clips'; \
         `AudioFeatures::LogMelImage`) instead, scored as the cells of the same name; its \
         `calibrated with the mean of draws` chooses as `pixel DDAD-style, calibrated` does, \
         the mean of {MEAN_DRAWS} reconstructions (unguided or conditioned) among the \
         candidates; `calibrated on graded anomalies` chooses so on generated anomalies a \
         quarter each at strengths {GRADED:?} instead of all at 0.7. The ablations (`mean of \
         {MEAN_DRAWS} draws - wavelet` and so on) refit the log-mel image U-Net without one of \
         the method's modules (`DDPM U-Net`: without any) and score it as `recon of the mean \
         of {MEAN_DRAWS} draws`. Cells with several seeds read `mean [min, max]`; fit s is the network's fit plus the cell's own \
         calibration, per seed, on the benchmark machine's 2 cores.\n"
    );
    let _ = writeln!(
        md,
        "| dataset | method | seeds | image AUROC | pixel AUROC | AUPRO@0.3 | fit s | score s | \
         chosen (on generated anomalies) |\n|---|---|---|---|---|---|---|---|---|"
    );
    let ranged = |r: &super::Record, name: &str, v: Option<f64>| -> String {
        match (v, r.seed_range.get(name)) {
            (Some(v), Some([lo, hi])) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
            (Some(v), None) => format!("{v:.3}"),
            (None, _) => "-".into(),
        }
    };
    for r in rows {
        let m = &r.metrics;
        let chosen: Vec<String> = r
            .per_unit
            .iter()
            .filter_map(|u| {
                Some(format!(
                    "{}; start {}, lambda {}",
                    u.scoring_choice.as_ref()?,
                    u.calibrated_strength?,
                    u.calibrated_lambda?
                ))
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            super::short_id(&r.dataset),
            r.method,
            r.seeds.len().max(1),
            ranged(r, "auroc", Some(m.auroc)),
            ranged(r, "pixel_auroc", m.pixel_auroc),
            ranged(r, "aupro_03", m.aupro_03),
            m.fit_s.map_or("-".into(), |s| format!("{s:.0}")),
            m.score_s.map_or("-".into(), |s| format!("{s:.0}")),
            if chosen.is_empty() {
                "-".to_string()
            } else {
                chosen.join("<br>")
            },
        );
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graded_anomalies_are_every_fourth_base_at_each_strength_in_order() {
        let mut cfg = DetectorConfig::for_images(1);
        cfg.input.image_size = 16;
        if let dmad::NetworkConfig::Unet2d(u) = &mut cfg.network {
            u.block_out_channels = vec![8, 8];
            u.down_block_types = vec![dmad::unet::DownBlockType::DownBlock; 2];
            u.up_block_types = vec![dmad::unet::UpBlockType::UpBlock; 2];
            u.norm_num_groups = Some(4);
            u.modules = dmad::unet::ModulesConfig::none();
        }
        let dev = Device::Cpu;
        let det = Detector::new(cfg, &dev).unwrap();
        let gen = dmad::generate::Generator::new(&det, Default::default()).unwrap();
        let bases = Tensor::rand(-0.5f32, 0.5, (32, 1, 16, 16), &dev).unwrap();
        let out = graded_anomalies(&gen, &bases, 3).unwrap();
        assert_eq!(out.dims(), bases.dims());
        // The output is the groups in order: every fourth base, at 0.1, 0.2, 0.35, 0.7, each
        // generated as mixed_anomalies generates it at that strength.
        for (g, &strength) in dmad::choose::CHOICE_STRENGTHS.iter().enumerate() {
            let idx: Vec<u32> = (g..32).step_by(4).map(|i| i as u32).collect();
            let part = bases
                .index_select(&Tensor::new(idx.as_slice(), &dev).unwrap(), 0)
                .unwrap();
            let want = gen
                .mixed_anomalies(&part, strength, 3 + 1000 * g as u64, None)
                .unwrap()
                .x;
            let got = out.narrow(0, 8 * g, 8).unwrap();
            let diff = (got - &want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(
                diff, 0.0,
                "group {g} (strength {strength}) differs by {diff}"
            );
            let changed = (want - part)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(changed > 0.0, "strength {strength} changed nothing");
        }
    }
}
