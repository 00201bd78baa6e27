//! What each subcommand does with data of each modality.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use dmad::data::Split;
use dmad::prepare::{self, Labelled, SeriesTask};
use dmad::{Detector, DetectorConfig, Modality, Report};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Options shared by every subcommand.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub quiet: bool,
}

/// Where the data is.
pub struct DataSpec {
    pub path: PathBuf,
    pub split: Option<PathBuf>,
    pub split_index: usize,
}

/// The training data of a modality.
fn train_data(
    modality: Modality,
    cfg: &DetectorConfig,
    spec: &DataSpec,
    dev: &Device,
) -> Result<Tensor> {
    let input = &cfg.input;
    Ok(match modality {
        Modality::Image => {
            let l = prepare::images(
                &spec.path,
                Split::Train,
                input.image_size,
                input.channels,
                dev,
            )?;
            if input.flip_augment {
                prepare::with_flips(&l.x)?
            } else {
                l.x
            }
        }
        Modality::Series => {
            prepare::ucr_series(
                &spec.path,
                input.window,
                input.train_stride,
                input.test_stride,
                dev,
            )?
            .train
        }
        Modality::Audio => prepare::audio(&spec.path, Split::Train, input, dev)?.x,
        Modality::Table => {
            prepare::table(&spec.path, spec.split.as_deref(), spec.split_index, dev)?.train
        }
    })
}

/// The default configuration of a modality for the data at `spec`.
pub fn default_config(modality: Modality, spec: &DataSpec, dev: &Device) -> Result<DetectorConfig> {
    Ok(match modality {
        Modality::Image => DetectorConfig::for_images(1),
        Modality::Series => DetectorConfig::for_series(1),
        Modality::Audio => DetectorConfig::for_audio(),
        Modality::Table => {
            let t = prepare::table(&spec.path, spec.split.as_deref(), spec.split_index, dev)?;
            DetectorConfig::for_tables(t.train.dim(1)?)
        }
    })
}

/// Reads a detector configuration: a `DetectorConfig` as JSON, or a saved model's
/// config.json (which wraps it in `detector`).
pub fn read_config(path: &Path) -> Result<DetectorConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if let Some(inner) = value.get_mut("detector") {
        value = inner.take();
    }
    let cfg: DetectorConfig = serde_json::from_value(value)
        .with_context(|| format!("{} is not a detector configuration", path.display()))?;
    cfg.validate()
        .with_context(|| format!("{} is not a valid configuration", path.display()))?;
    Ok(cfg)
}

fn bar(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Fits a detector of `cfg` on the training data at `spec`.
pub fn fit_with(
    mut cfg: DetectorConfig,
    spec: &DataSpec,
    checkpoints: Option<&Path>,
    opts: &Options,
    dev: &Device,
) -> Result<Detector> {
    cfg.train.seed = opts.seed;
    cfg.scoring.seed = opts.seed;
    let data = train_data(cfg.modality, &cfg, spec, dev)
        .with_context(|| format!("reading the training data at {}", spec.path.display()))?;
    let pb = bar(opts.quiet, cfg.train.steps as u64, "training");
    let mut det = Detector::new(cfg, dev)?;
    det.fit_with_checkpoints(&data, checkpoints, |p| {
        pb.set_position(p.step as u64);
        pb.set_message(format!(
            "loss {:.4}, {:.0} samples/s",
            p.loss, p.samples_per_sec
        ));
    })?;
    pb.finish_and_clear();
    Ok(det)
}

/// Fits the modality's default detector.
#[allow(clippy::too_many_arguments)]
/// The scorer `dmad fit --scorer` selects.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScorerArg {
    /// Partial-diffusion reconstruction error of a pixel-space U-Net (tables: an MLP): the
    /// method's network.
    Reconstruction,
    /// Images and audio: diffusion in EfficientNet-Lite0's patch-feature space, scored by the
    /// denoising error over 8 noise levels (needs --efficientnet or DMAD_EFFICIENTNET); the
    /// best trained detector of docs/RESULTS.md on images.
    FeatureDiffusion,
    /// As feature-diffusion, scored by partial-diffusion reconstruction of the patch features.
    FeatureRecon,
    /// Non-parametric diffusion-time estimation (no network, k = 5 neighbours).
    Dte,
}

/// What `dmad fit` was asked for besides the data.
#[derive(Debug, Default)]
pub struct FitArgs<'a> {
    /// A detector configuration file instead of the modality's defaults.
    pub config: Option<&'a Path>,
    /// The scorer (and with it the space the model works in).
    pub scorer: Option<ScorerArg>,
    /// EfficientNet-Lite0's safetensors, for the feature-space scorers.
    pub efficientnet: Option<&'a Path>,
    /// Training steps instead of the configuration's.
    pub steps: Option<usize>,
    /// Switch the method's four modules off.
    pub baseline: bool,
    /// Training checkpoints (resumed from).
    pub checkpoints: Option<&'a Path>,
}

/// Fits a detector of `modality` on the training data at `spec` as `args` asks.
pub fn fit(
    modality: Modality,
    spec: &DataSpec,
    args: &FitArgs<'_>,
    opts: &Options,
    dev: &Device,
) -> Result<Detector> {
    let FitArgs {
        config,
        scorer,
        efficientnet,
        steps,
        baseline,
        checkpoints,
    } = *args;
    let mut cfg = match (config, scorer) {
        (Some(path), _) => read_config(path)?,
        (None, Some(ScorerArg::FeatureDiffusion | ScorerArg::FeatureRecon)) => {
            if !matches!(modality, Modality::Image | Modality::Audio) {
                bail!(
                    "--scorer feature-diffusion and feature-recon work on EfficientNet-Lite0 \
                     features of images and audio scalograms, not {modality} data"
                );
            }
            DetectorConfig::feature_diffusion(modality, 1)
        }
        (None, _) => default_config(modality, spec, dev)?,
    };
    match scorer {
        Some(ScorerArg::FeatureRecon) => cfg.scorer = dmad::ScorerConfig::Reconstruction,
        Some(ScorerArg::Dte) => cfg.scorer = dmad::ScorerConfig::Dte { k: 5 },
        Some(ScorerArg::Reconstruction) if cfg.feature_space.is_none() => {
            cfg.scorer = dmad::ScorerConfig::Reconstruction
        }
        _ => {}
    }
    if let Some(path) = efficientnet {
        cfg.scoring.feature_weights = Some(path.to_path_buf());
    }
    if cfg.modality != modality {
        bail!(
            "{} configures a {} detector, but --modality is {modality}",
            config.map(|p| p.display().to_string()).unwrap_or_default(),
            cfg.modality
        );
    }
    if let Some(s) = steps {
        cfg.train.steps = s;
    }
    if baseline {
        if let Some(m) = cfg.network.modules_mut() {
            *m = dmad::unet::ModulesConfig::none();
        }
    }
    fit_with(cfg, spec, checkpoints, opts, dev)
}

/// Scored test data.
pub struct Scored {
    pub name: String,
    /// One score per sample (per point for series).
    pub scores: Vec<f32>,
    pub labels: Vec<u8>,
    pub kinds: Vec<String>,
    pub sources: Vec<String>,
    /// The inputs (images and scalograms) for overlays.
    pub inputs: Option<Tensor>,
    /// Anomaly maps `[n, H, W]`.
    pub maps: Option<Tensor>,
    /// Pixel masks `[n, H, W]`.
    pub masks: Option<Tensor>,
    /// Series: the test values, for plots.
    pub series: Option<Vec<f32>>,
    pub series_task: Option<SeriesTask>,
    pub threshold: f64,
}

fn test_data(
    det: &Detector,
    spec: &DataSpec,
    dev: &Device,
) -> Result<(Labelled, Option<SeriesTask>)> {
    let cfg = det.config();
    let input = &cfg.input;
    Ok(match cfg.modality {
        Modality::Image => (
            prepare::images(
                &spec.path,
                Split::Test,
                input.image_size,
                input.channels,
                dev,
            )?,
            None,
        ),
        Modality::Series => {
            let task = prepare::ucr_series(
                &spec.path,
                input.window,
                input.train_stride,
                input.test_stride,
                dev,
            )?;
            let labelled = Labelled {
                x: task.test.clone(),
                labels: vec![],
                kinds: vec![],
                sources: vec![],
                masks: None,
            };
            (labelled, Some(task))
        }
        Modality::Audio => (prepare::audio(&spec.path, Split::Test, input, dev)?, None),
        Modality::Table => (
            prepare::table(&spec.path, spec.split.as_deref(), spec.split_index, dev)?.test,
            None,
        ),
    })
}

/// Scores the test data at `spec`.
pub fn score_test(det: &Detector, spec: &DataSpec, opts: &Options) -> Result<Scored> {
    let dev = det.device().clone();
    let (test, task) = test_data(det, spec, &dev)
        .with_context(|| format!("reading the test data at {}", spec.path.display()))?;
    // The detector batches (and seeds each batch's noise) itself: one call scores the set
    // exactly as the library would.
    let pb = bar(opts.quiet, 1, "scoring");
    let scored = det.score(&test.x)?;
    pb.finish_and_clear();
    let (scores, maps) = (scored.scores, scored.maps);
    let threshold = det.threshold()?.value;
    let name = spec
        .path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(task) = task {
        let points = task.point_scores(&scores, None)?;
        let split = dmad::data::load_ucr_anomaly(&spec.path)?.0;
        return Ok(Scored {
            name,
            labels: task.test_labels.clone(),
            kinds: vec![],
            sources: vec![],
            scores: points,
            inputs: None,
            maps: None,
            masks: None,
            series: Some(split.test.values.clone()),
            series_task: Some(task),
            threshold,
        });
    }
    Ok(Scored {
        name,
        scores,
        labels: test.labels,
        kinds: test.kinds,
        sources: test.sources,
        inputs: matches!(det.config().modality, Modality::Image | Modality::Audio)
            .then_some(test.x),
        maps,
        masks: test.masks,
        series: None,
        series_task: None,
        threshold,
    })
}

/// Metrics of one evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    #[serde(flatten)]
    pub report: Report,
    /// Images with masks: pixel AUROC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_auroc: Option<f64>,
    /// Images with masks: AUPRO up to FPR 0.3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aupro_03: Option<f64>,
    /// Series: the UCR top-1 hit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucr_hit: Option<bool>,
    /// Series: VUS-PR (window 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vus_pr: Option<f64>,
}

/// Pixel AUROC and AUPRO up to FPR 0.3 of anomaly maps `[n, h, w]` against masks of the same
/// shape (a mask value above 0.5 is a defect pixel).
pub fn pixel_metrics(maps: &Tensor, masks: &Tensor) -> Result<(f64, f64)> {
    let n = maps.dim(0)?;
    let (mut ms, mut ks) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        ms.push(maps.get(i)?.flatten_all()?.to_vec1::<f32>()?);
        let k = masks.get(i)?.flatten_all()?.to_vec1::<f32>()?;
        ks.push(k.iter().map(|&v| v > 0.5).collect::<Vec<bool>>());
    }
    let (h, w) = (maps.dim(1)?, maps.dim(2)?);
    Ok((
        dmad::metrics::pixel_auroc(&ms, &ks)?,
        dmad::metrics::aupro(&ms, &ks, h, w, 0.3)?,
    ))
}

/// Computes the metrics of `scored`.
pub fn metrics(_det: &Detector, scored: &Scored) -> Result<Metrics> {
    if scored.labels.iter().all(|&l| l == scored.labels[0]) {
        bail!(
            "the test data of {} has one class only: metrics need normal and anomalous samples",
            scored.name
        );
    }
    let report = dmad::evaluate(&scored.scores, &scored.labels, Some(scored.threshold))?;
    let mut m = Metrics {
        report,
        pixel_auroc: None,
        aupro_03: None,
        ucr_hit: None,
        vus_pr: None,
    };
    if let (Some(maps), Some(masks)) = (&scored.maps, &scored.masks) {
        let (px, pro) = pixel_metrics(maps, masks)?;
        m.pixel_auroc = Some(px);
        m.aupro_03 = Some(pro);
    }
    if let Some(task) = &scored.series_task {
        if let Some((begin, end)) = task.anomaly {
            m.ucr_hit = Some(dmad::metrics::ucr_top1_hit(
                &scored.scores,
                task.test_offset,
                begin,
                end,
            )?);
        }
        let y: Vec<bool> = scored.labels.iter().map(|&l| l != 0).collect();
        m.vus_pr = Some(dmad::metrics::vus_pr(&scored.scores, &y, 100)?);
    }
    Ok(m)
}
