//! What each subcommand does with data of each modality.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use dmad::data::{NonFinite, Split};
use dmad::prepare::{self, Labelled};
use dmad::{Detector, DetectorConfig, Modality};
use indicatif::{ProgressBar, ProgressStyle};

use crate::layout::{self, Purpose, Source};
use crate::model::{DataInfo, SeriesStats};

mod score;

pub use score::{metrics, pixel_metrics, score_data, score_test, Metrics, Scored};

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

/// The training data of a detector, and what is recorded about it with the model.
fn train_data(
    cfg: &DetectorConfig,
    spec: &DataSpec,
    non_finite: NonFinite,
    dev: &Device,
) -> Result<(Tensor, Option<dmad::data::Series>, DataInfo)> {
    let input = &cfg.input;
    // Series keep the standardised training series: `dmad::series::fit_series` holds a part
    // of it out.
    let mut train_series = None;
    let modality = cfg.modality;
    let mut info = DataInfo {
        source: spec.path.display().to_string(),
        non_finite: non_finite.name().to_string(),
        ..DataInfo::default()
    };
    let source = layout::resolve(modality, &spec.path, Purpose::Fit)?;
    let x = match (modality, source) {
        (Modality::Image, source) => {
            let l = match source {
                Source::Structured(root) => {
                    info.layout = "mvtec".into();
                    prepare::images(&root, Split::Train, input.image_size, input.channels, dev)?
                }
                Source::Files(files) => {
                    info.layout = "files".into();
                    prepare::image_files(&files, input.image_size, input.channels, dev)?
                }
                Source::File(f) => {
                    info.layout = "files".into();
                    prepare::image_files(&[f], input.image_size, input.channels, dev)?
                }
            };
            check_finite(&l)?;
            info.samples = l.labels.len();
            if input.flip_augment {
                prepare::with_flips(&l.x)?
            } else {
                l.x
            }
        }
        (Modality::Audio, source) => {
            let (l, files) = match source {
                Source::Structured(root) => {
                    info.layout = "dcase".into();
                    let l = prepare::audio(&root, Split::Train, input, dev)?;
                    let files = l.sources.iter().map(PathBuf::from).collect::<Vec<_>>();
                    (l, files)
                }
                Source::Files(files) => {
                    info.layout = "files".into();
                    (prepare::audio_files(&files, input, dev)?, files)
                }
                Source::File(f) => {
                    info.layout = "files".into();
                    (
                        prepare::audio_files(std::slice::from_ref(&f), input, dev)?,
                        vec![f],
                    )
                }
            };
            check_finite(&l)?;
            info.samples = l.labels.len();
            let mut rates: Vec<u32> = files
                .iter()
                .filter_map(|f| dmad::data::audio::wav_info(f).ok().map(|w| w.0))
                .collect();
            rates.sort_unstable();
            rates.dedup();
            info.sample_rates = rates;
            l.x
        }
        (Modality::Series, _) if !is_ucr(&spec.path) => {
            info.layout = "series".into();
            let p = prepare::plain_series(
                &spec.path,
                input.window,
                input.train_stride,
                non_finite,
                None,
                dev,
            )?;
            info.samples = p.windows.dim(0)?;
            info.series = Some(SeriesStats {
                mean: p.normaliser.mean.clone(),
                std: p.normaliser.std.clone(),
            });
            train_series = Some(p.series);
            p.windows
        }
        (Modality::Series, _) => {
            info.layout = "ucr".into();
            let (mut split, name) = prepare::ucr_split_with(&spec.path, non_finite)?;
            let t = prepare::series_task(
                split.clone(),
                input.window,
                input.train_stride,
                input.test_stride,
                Some((name.begin, name.end)),
                dev,
            )?;
            split.normalise();
            train_series = Some(split.train);
            info.samples = t.train.dim(0)?;
            t.train
        }
        (Modality::Table, _) => {
            info.layout = "table".into();
            let t = prepare::table_with(
                &spec.path,
                spec.split.as_deref(),
                spec.split_index,
                non_finite,
                dev,
            )?;
            info.samples = t.train.dim(0)?;
            info.table = Some(t.columns);
            t.train
        }
    };
    Ok((x, train_series, info))
}

/// Whether `path` is named as a file of the UCR Anomaly Archive (labelled by its name).
pub fn is_ucr(path: &Path) -> bool {
    dmad::data::timeseries::UcrAnomalyName::parse(path).is_ok()
}

/// Fails on the first sample with a NaN or infinite value, naming its file.
fn check_finite(l: &Labelled) -> Result<()> {
    let n = l.x.dim(0)?;
    if n == 0 {
        return Ok(());
    }
    // x - x is NaN exactly where x is not finite; a sum with one NaN is NaN.
    let sums = l.x.sub(&l.x)?.flatten_from(1)?.sum(1)?.to_vec1::<f32>()?;
    if let Some(i) = sums.iter().position(|v| !v.is_finite()) {
        bail!(
            "{} decodes to NaN or infinite values: fix or remove the file",
            l.sources.get(i).map(String::as_str).unwrap_or("a sample")
        );
    }
    Ok(())
}

/// The default configuration of a modality for the data at `spec`.
pub fn default_config(modality: Modality, spec: &DataSpec, dev: &Device) -> Result<DetectorConfig> {
    let _ = dev;
    Ok(match modality {
        Modality::Image => DetectorConfig::for_images(1),
        Modality::Series if is_ucr(&spec.path) => DetectorConfig::for_series(1),
        Modality::Series => {
            layout::resolve(modality, &spec.path, Purpose::Fit)?;
            let s = dmad::data::read_plain_series(&spec.path)?;
            DetectorConfig::for_series(s.dims)
        }
        Modality::Audio => DetectorConfig::for_audio(),
        Modality::Table => {
            layout::resolve(modality, &spec.path, Purpose::Fit)?;
            // The column count only: NaN handling is the loader's, when the rows are read.
            let (t, _) = prepare::read_table(&spec.path, NonFinite::Impute)
                .with_context(|| format!("reading the table {}", spec.path.display()))?;
            DetectorConfig::for_tables(t.cols())
        }
    })
}

/// The imputation detector of the series at `spec`:
/// [`DetectorConfig::series_imputation_for_period`] with the period of the training series
/// ([`prepare::train_period`]).
pub fn imputation_config(modality: Modality, spec: &DataSpec) -> Result<DetectorConfig> {
    if modality != Modality::Series {
        bail!("--scorer imputation fills masked segments of series windows, not {modality} data");
    }
    let train = if is_ucr(&spec.path) {
        dmad::data::load_ucr_anomaly(&spec.path)?.0.train
    } else {
        layout::resolve(modality, &spec.path, Purpose::Fit)?;
        dmad::data::read_plain_series(&spec.path)?
    };
    Ok(DetectorConfig::series_imputation_for_period(
        train.dims,
        prepare::train_period(&train),
    ))
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
    crate::validate::check_config(&cfg, &path.display().to_string())?;
    Ok(cfg)
}

fn bar(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Progress of a long loop when stderr is not a terminal: a line every few seconds, with an
/// ETA (a terminal gets the bar of [`bar`] instead).
struct Lines {
    on: bool,
    start: Instant,
    last: Instant,
    what: &'static str,
}

impl Lines {
    fn new(quiet: bool, what: &'static str) -> Self {
        Self {
            on: !quiet && !std::io::stderr().is_terminal(),
            start: Instant::now(),
            last: Instant::now(),
            what,
        }
    }

    fn tick(&mut self, done: usize, total: usize, extra: &str) {
        if !self.on || self.last.elapsed() < Duration::from_secs(5) || done == 0 {
            return;
        }
        self.last = Instant::now();
        let spent = self.start.elapsed().as_secs_f64();
        let eta = spent / done as f64 * total.saturating_sub(done) as f64;
        eprintln!(
            "{}: {done}/{total} {extra} ({spent:.0} s, ETA {eta:.0} s)",
            self.what
        );
    }
}

/// Fits a detector of `cfg` on the training data at `spec`.
pub fn fit_with(
    cfg: DetectorConfig,
    spec: &DataSpec,
    checkpoints: Option<&Path>,
    opts: &Options,
    dev: &Device,
) -> Result<Detector> {
    fit_with_info(cfg, spec, checkpoints, NonFinite::Reject, opts, dev).map(|(det, _)| det)
}

/// As [`fit_with`], also returning what is recorded about the data with the model.
pub fn fit_with_info(
    mut cfg: DetectorConfig,
    spec: &DataSpec,
    checkpoints: Option<&Path>,
    non_finite: NonFinite,
    opts: &Options,
    dev: &Device,
) -> Result<(Detector, DataInfo)> {
    cfg.train.seed = opts.seed;
    cfg.scoring.seed = opts.seed;
    let (data, train_series, info) = train_data(&cfg, spec, non_finite, dev)
        .with_context(|| format!("reading the training data at {}", spec.path.display()))?;
    if !opts.quiet {
        let work = match cfg.scorer {
            dmad::ScorerConfig::Dte { .. } => "DTE keeps the samples: no training".to_string(),
            dmad::ScorerConfig::DteCategorical { .. } => format!(
                "a diffusion-time classifier, about {} steps in whole passes, no checkpoints",
                cfg.train.steps
            ),
            _ => format!("{} training steps", cfg.train.steps),
        };
        eprintln!(
            "fitting on {} {} samples from {} ({work})",
            info.samples,
            cfg.modality,
            spec.path.display(),
        );
    }
    // DTE trains no denoiser: nothing to checkpoint.
    let checkpoints = checkpoints.filter(|_| !cfg.scorer.is_dte());
    if let Some(dir) = checkpoints {
        match dmad::train::checkpoint::latest(dir)? {
            Some(step) => eprintln!(
                "resuming from the checkpoint {} (delete {} to start afresh)",
                step.display(),
                dir.display()
            ),
            None if !opts.quiet => eprintln!(
                "checkpoints go to {}: if this fit is interrupted, run the same command again \
                 to resume",
                dir.display()
            ),
            None => {}
        }
    } else if !opts.quiet && cfg.train.steps >= 500 && !cfg.scorer.is_dte() {
        eprintln!(
            "tip: --checkpoints DIR saves the training as it goes, so that an interrupted fit \
             resumes where it stopped"
        );
    }
    let pb = bar(opts.quiet, cfg.train.steps as u64, "training");
    let mut lines = Lines::new(opts.quiet, "training");
    let total = cfg.train.steps;
    let mut det = Detector::new(cfg, dev)?;
    let progress = |p: &dmad::train::Progress| {
        pb.set_position(p.step as u64);
        let msg = format!("loss {:.4}, {:.0} samples/s", p.loss, p.samples_per_sec);
        lines.tick(p.step, total, &msg);
        pb.set_message(msg);
    };
    match &train_series {
        Some(series) => {
            let mut progress = progress;
            let fit = dmad::series::fit_series(&mut det, series, checkpoints, |p| {
                progress(p);
                dmad::train::Control::Continue
            })?;
            pb.finish_and_clear();
            if let (Some(c), false) = (fit.choice, opts.quiet) {
                let part = if c.in_sample {
                    "the training series (too short to hold a fifth out of the fit)"
                } else {
                    "the training series' last fifth (held out of the fit)"
                };
                let levels = match c.scorer {
                    dmad::ScorerConfig::Imputation { max_strength, .. } => {
                        format!("noise levels up to strength {max_strength}, ")
                    }
                    _ => String::new(),
                };
                eprintln!(
                    "point scoring: {levels}smoothing sigma {} steps, chosen on anomalies \
                     injected into {part}",
                    c.point_sigma
                );
            }
        }
        None => {
            det.fit_with_checkpoints(&data, checkpoints, progress)?;
            pb.finish_and_clear();
        }
    }
    Ok((det, info))
}

/// Time bins of the parametric DTE scorers `dmad fit --scorer` selects: the reference's.
pub const DTE_CATEGORICAL_BINS: usize = 7;

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
    /// Images and audio: parametric diffusion-time estimation (DTE-Categorical, 7 time bins)
    /// on EfficientNet-Lite0's patch features: a classifier of the diffusion time of noised
    /// training patches; each patch scored by its expected time.
    FeatureDte,
    /// Audio: parametric diffusion-time estimation (DTE-Categorical, 7 time bins) on each
    /// clip's log-mel statistics (per band of a 64-band log-mel the mean and deviation, as the
    /// DCASE baselines, and the deviation of the frame-to-frame differences), standardised with
    /// the training clips'; no EfficientNet needed.
    LogMelDte,
    /// Audio: as log-mel-dte on every 5-frame log-mel window of a clip (the DCASE 2020
    /// baseline's features), a clip scored by its largest window, with a map over time: keeps
    /// short transients that clip statistics average away.
    LogMelWindowsDte,
    /// Audio: the method's pixel-space U-Net on each clip's log-mel spectrogram (64 bands x 32
    /// columns, each band standardised), scored by the error against the mean of 4
    /// reconstructions; maps over bands and time. Below log-mel-dte on clip AUROC.
    LogMelUnet,
    /// Non-parametric diffusion-time estimation (no network, k = 5 neighbours).
    Dte,
    /// Parametric diffusion-time estimation (DTE-Categorical, 7 time bins) on the samples
    /// themselves: a trained classifier of the diffusion time instead of DTE's neighbours.
    DteCategorical,
    /// Series: imputation diffusion (a 1D U-Net fills grating-masked segments of z-normalised
    /// windows; each point scored by its imputation error), the window two periods of the
    /// training series (its autocorrelation's peak, as TSB-AD's find_length).
    Imputation,
}

/// How `dmad fit --patch-norm` standardises the patch features of a feature-space detector
/// ([`dmad::PatchNorm`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PatchNormArg {
    /// One mean and spread per feature over every training patch (the default).
    Global,
    /// One mean per feature, one spread for all features: the extractor's own distances.
    Isotropic,
    /// One mean and spread per feature and patch position (aligned objects).
    PerPosition,
}

impl From<PatchNormArg> for dmad::PatchNorm {
    fn from(a: PatchNormArg) -> Self {
        match a {
            PatchNormArg::Global => dmad::PatchNorm::Global,
            PatchNormArg::Isotropic => dmad::PatchNorm::Isotropic,
            PatchNormArg::PerPosition => dmad::PatchNorm::PerPosition,
        }
    }
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
    /// What to do with NaN and infinite values in the data (`--nan`).
    pub non_finite: NonFinite,
    /// `--choose`: the log-mel settings chosen on generated anomalies ([`choose_log_mel`])
    /// instead of one fit of the configured ones.
    pub choose: bool,
    /// `--positions`: each patch's position appended to its features (feature space).
    pub positions: bool,
    /// `--patch-norm`: the standardisation of the patch features (feature space).
    pub patch_norm: Option<PatchNormArg>,
}

/// Fits a detector of `modality` on the training data at `spec` as `args` asks; returns it
/// with what is recorded about the data.
pub fn fit(
    modality: Modality,
    spec: &DataSpec,
    args: &FitArgs<'_>,
    opts: &Options,
    dev: &Device,
) -> Result<(Detector, DataInfo)> {
    let FitArgs {
        config,
        scorer,
        efficientnet,
        steps,
        baseline,
        checkpoints,
        non_finite,
        choose,
        positions,
        patch_norm,
    } = *args;
    let mut cfg = match (config, scorer) {
        (Some(path), _) => read_config(path)?,
        (
            None,
            Some(ScorerArg::FeatureDiffusion | ScorerArg::FeatureRecon | ScorerArg::FeatureDte),
        ) => {
            if !matches!(modality, Modality::Image | Modality::Audio) {
                bail!(
                    "--scorer feature-diffusion, feature-recon and feature-dte work on \
                     EfficientNet-Lite0 features of images and audio scalograms, not {modality} \
                     data"
                );
            }
            DetectorConfig::feature_diffusion(modality, 1)
        }
        (None, Some(arg @ (ScorerArg::LogMelDte | ScorerArg::LogMelWindowsDte))) => {
            if modality != Modality::Audio {
                bail!(
                    "--scorer log-mel-dte and log-mel-windows-dte work on audio clips, not \
                     {modality} data"
                );
            }
            DetectorConfig::for_audio_log_mel_features(if arg == ScorerArg::LogMelWindowsDte {
                dmad::AudioFeatures::LogMelWindows
            } else {
                dmad::AudioFeatures::LogMelStatistics
            })
        }
        (None, Some(ScorerArg::LogMelUnet)) => {
            if modality != Modality::Audio {
                bail!("--scorer log-mel-unet works on audio clips, not {modality} data");
            }
            DetectorConfig::for_audio_log_mel_image()
        }
        (None, Some(ScorerArg::Imputation)) => imputation_config(modality, spec)?,
        (None, _) => default_config(modality, spec, dev)?,
    };
    match scorer {
        Some(ScorerArg::FeatureRecon) => cfg.scorer = dmad::ScorerConfig::Reconstruction,
        Some(ScorerArg::Dte) => cfg.scorer = dmad::ScorerConfig::Dte { k: 5 },
        Some(
            ScorerArg::FeatureDte
            | ScorerArg::DteCategorical
            | ScorerArg::LogMelDte
            | ScorerArg::LogMelWindowsDte,
        ) => {
            cfg.scorer = dmad::ScorerConfig::DteCategorical {
                bins: DTE_CATEGORICAL_BINS,
                surprisal: false,
            }
        }
        Some(ScorerArg::Reconstruction) if cfg.feature_space.is_none() => {
            cfg.scorer = dmad::ScorerConfig::Reconstruction
        }
        _ => {}
    }
    if let Some(path) = efficientnet {
        cfg.scoring.feature_weights = Some(path.to_path_buf());
    }
    if positions {
        cfg = cfg.with_patch_positions().context(
            "--positions appends each patch's position to its EfficientNet-Lite0 features: \
             use it with --scorer feature-dte, feature-diffusion or feature-recon",
        )?;
    }
    if let Some(norm) = patch_norm {
        let Some(space) = cfg.feature_space.as_mut() else {
            bail!(
                "--patch-norm standardises the EfficientNet-Lite0 patch features of a \
                 feature-space detector: use it with --scorer feature-dte, feature-diffusion or \
                 feature-recon (this {} detector has no feature_space)",
                cfg.modality
            );
        };
        space.normalisation = norm.into();
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
    if choose {
        cfg.train.seed = opts.seed;
        cfg.scoring.seed = opts.seed;
        // The data's account for the model (layout, clips, rate); the candidates read the
        // clips as waveforms themselves.
        let (_, _, info) = train_data(&cfg, spec, non_finite, dev)
            .with_context(|| format!("reading the training data at {}", spec.path.display()))?;
        let (det, words) = choose_log_mel(&cfg, &spec.path, opts, dev)?;
        // The result, not progress: said under --quiet too, as "saved" is.
        println!("{words}");
        return Ok((det, info));
    }
    fit_with_info(cfg, spec, checkpoints, non_finite, opts, dev)
}

/// `--choose`: the log-mel DTE detector `base` and three variations of it (the
/// plain statistics instead of the delta ones or the other way round, and 50 time bins instead
/// of 7) compared on audio anomalies generated in a held-out fifth of the training clips of the
/// DCASE folder `data` ([`dmad::choose::choose_audio`]; `base` first, so it wins ties); returns
/// the chosen detector, refitted on every clip, and what was chosen, in words.
pub fn choose_log_mel(
    base: &DetectorConfig,
    data: &Path,
    opts: &Options,
    dev: &Device,
) -> Result<(Detector, String)> {
    if base.modality != Modality::Audio
        || base.input.audio_features != dmad::AudioFeatures::LogMelStatistics
        || !matches!(base.scorer, dmad::ScorerConfig::DteCategorical { .. })
    {
        bail!(
            "--choose picks log-mel statistics and time bins: it needs --scorer log-mel-dte \
             (audio)"
        );
    }
    let root = match layout::resolve(Modality::Audio, data, Purpose::Fit)? {
        Source::Structured(root) => root,
        _ => bail!(
            "--choose needs a DCASE folder (train/normal_*.wav), not loose WAV files: {}",
            data.display()
        ),
    };
    let waves = prepare::audio_waves(&root, Split::Train, &base.input, dev)?;
    let candidates = dmad::choose::log_mel_candidates(base)?;
    let choice = dmad::choose::choose_audio(&waves, &candidates, opts.seed, dev)?;
    let words = |c: &DetectorConfig| {
        format!(
            "{}, {} bins",
            match c.input.mel_statistics {
                dmad::MelStatistics::MeanStd => "mean and deviation",
                dmad::MelStatistics::MeanStdDelta => "with frame-difference deviations",
            },
            match c.scorer {
                dmad::ScorerConfig::DteCategorical { bins, .. } => bins,
                _ => 0,
            }
        )
    };
    let tried = candidates
        .iter()
        .zip(&choice.aurocs)
        .map(|(c, a)| format!("{}: {a:.3}", words(c)))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((
        choice.detector,
        format!(
            "chosen on audio anomalies generated in a held-out fifth of {} training clips (mean \
             AUROC over strengths {:?}): {} ({tried})",
            waves.dim(0)?,
            dmad::choose::CHOICE_STRENGTHS,
            words(&candidates[choice.index])
        ),
    ))
}

/// Chooses `det`'s scoring start strength, `lambda` (combined scorer) and threshold on the
/// labelled validation images of `dir` (an MVTec AD category folder; its `test/` split), with
/// [`dmad::generate::calibrate_on_validation`]; returns what was chosen, in words.
pub fn choose_on_validation(det: &mut Detector, dir: &Path, dev: &Device) -> Result<String> {
    let cfg = det.config().clone();
    if cfg.modality != Modality::Image {
        bail!(
            "--validation takes labelled images (an MVTec AD folder), not {} data",
            cfg.modality
        );
    }
    let v = dmad::prepare::images(
        dir,
        Split::Test,
        cfg.input.image_size,
        cfg.input.channels,
        dev,
    )
    .with_context(|| format!("reading the validation images of {}", dir.display()))?;
    let pick = |want: u8| -> Result<Tensor> {
        let idx: Vec<u32> = (0..v.labels.len() as u32)
            .filter(|&i| v.labels[i as usize] == want)
            .collect();
        if idx.is_empty() {
            bail!(
                "the validation set {} has no {} image",
                dir.display(),
                if want == 0 {
                    "normal (good)"
                } else {
                    "anomalous"
                }
            );
        }
        let n = idx.len();
        Ok(v.x.index_select(&Tensor::from_vec(idx, n, dev)?, 0)?)
    };
    let (normal, anomalous) = (pick(0)?, pick(1)?);
    let extractor = if matches!(cfg.scorer, dmad::ScorerConfig::Combined { .. }) {
        let path = match &cfg.scoring.feature_weights {
            Some(p) => p.clone(),
            None => std::env::var_os("DMAD_EFFICIENTNET")
                .map(std::path::PathBuf::from)
                .context("the combined scorer needs EfficientNet-Lite0 (--efficientnet or DMAD_EFFICIENTNET)")?,
        };
        Some(dmad::score::EfficientNetExtractor::lite0(&path, dev)?)
    } else {
        None
    };
    let features = extractor.as_ref().map(|e| e as &dyn dmad::FeatureExtractor);
    let c = dmad::generate::calibrate_on_validation(det, &normal, &anomalous, features)?;
    Ok(format!(
        "chosen on {} normal and {} anomalous validation images: start strength {}, lambda {}, \
         validation AUROC {:.3}",
        normal.dim(0)?,
        anomalous.dim(0)?,
        c.strength,
        c.lambda,
        c.auroc
    ))
}
