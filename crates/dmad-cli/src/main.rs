//! `dmad`: fit, score and evaluate diffusion anomaly detectors from the command line.
//!
//! ```bash
//! dmad demo                                   # the README's main job
//! dmad fit --modality image --data testdata/data/textures-ad/brick --out brick.model
//! dmad score --model brick.model --data testdata/data/textures-ad/brick --out scores/
//! dmad eval --model brick.model --data testdata/data/textures-ad/brick
//! ```

mod bench;
mod demo;
mod generate;
mod layout;
mod model;
mod render;
mod tasks;
mod validate;

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use dmad::Modality;

/// Anomaly detection with diffusion models: images, time series, audio and tables.
#[derive(Parser, Debug)]
#[command(
    name = "dmad",
    version,
    about,
    after_help = "Examples:
  dmad demo
  dmad fit --modality image --data testdata/data/textures-ad/brick --out brick.model
  dmad fit --modality image --scorer feature-dte --efficientnet efficientnet-lite0.safetensors --data testdata/data/textures-ad/brick --out brick-fd.model
  dmad fit --modality audio --scorer log-mel-dte --data testdata/data/audio/hum --out hum.model
  dmad score --model brick.model --data testdata/data/textures-ad/brick --out scores
  dmad eval --model brick.model --data testdata/data/textures-ad/brick
  dmad fit --modality table --data testdata/data/tabular/wbc.csv --split testdata/data/tabular/splits/wbc.json --out wbc.model

Your own data (a plain folder of normal images, then any images to score):
  dmad fit --modality image --data my-normal-images/ --out my.model
  dmad score --model my.model --data new-images/ --out my-scores"
)]
struct Cli {
    /// Device: cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, global = true, default_value = "cpu")]
    device: DeviceArg,
    /// Seed of training and scoring (0 to 2^64 - 1).
    #[arg(long, global = true, default_value_t = 0, allow_hyphen_values = true, value_parser = validate::seed)]
    seed: u64,
    /// NaN and infinite values in tables and series: error (name the file, row and column),
    /// drop (tables: the rows that hold one) or impute (tables: the column mean; series:
    /// linear interpolation).
    #[arg(long = "nan", global = true, value_enum, default_value = "error")]
    nan: NanArg,
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum NanArg {
    Error,
    Drop,
    Impute,
}

impl From<NanArg> for dmad::data::NonFinite {
    fn from(n: NanArg) -> Self {
        match n {
            NanArg::Error => Self::Reject,
            NanArg::Drop => Self::Drop,
            NanArg::Impute => Self::Impute,
        }
    }
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum ModalityArg {
    Image,
    Series,
    Audio,
    Table,
}

impl From<ModalityArg> for Modality {
    fn from(m: ModalityArg) -> Self {
        match m {
            ModalityArg::Image => Modality::Image,
            ModalityArg::Series => Modality::Series,
            ModalityArg::Audio => Modality::Audio,
            ModalityArg::Table => Modality::Table,
        }
    }
}

/// Where the data is and how to read it.
#[derive(clap::Args, Debug, Clone)]
struct DataArgs {
    /// The data. Images: a folder of PNG/JPEG/BMP/TIFF files, one file, a quoted pattern
    /// ('shots/*.png'), or an MVTec AD category folder (train/good, test/). Audio: WAV files
    /// likewise, or a DCASE folder (train/, test/). Series: a UCR Anomaly Archive file.
    /// Tables: a CSV (a `label` column is optional), an NPY array (rows, features) or an NPZ
    /// with X and y. Unlabelled data is scored without metrics.
    #[arg(long)]
    data: PathBuf,
    /// Tables: the split file (ADBench/DTE protocol); without it half the normal rows train.
    #[arg(long)]
    split: Option<PathBuf>,
    /// Tables: which split of the split file (0 to 999).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = validate::split_index)]
    split_index: usize,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a detector on the normal data of PATH and save it.
    Fit {
        /// The kind of data.
        #[arg(long)]
        modality: ModalityArg,
        #[command(flatten)]
        data: DataArgs,
        /// Where to save the model (a directory; an existing model is kept unless --force).
        #[arg(long)]
        out: PathBuf,
        /// Replace the model at --out if there is one.
        #[arg(long)]
        force: bool,
        /// Training steps, 1 to 10000000 (default: the modality's default).
        #[arg(long, allow_hyphen_values = true, value_parser = validate::train_steps)]
        steps: Option<usize>,
        /// Training checkpoints go here; an interrupted fit resumes from them. Default: a
        /// hidden folder beside --out (`.NAME.checkpoints`), removed once the model is saved,
        /// so running the same command again after an interruption resumes.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// Ablation: switch all four modules of the method off (the DDPM baseline).
        #[arg(long)]
        baseline: bool,
        /// A detector configuration (JSON: a `DetectorConfig`, or a saved model's
        /// config.json) instead of the modality's defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The scorer, and with it the space the diffusion model works in (docs/SCORERS.md).
        #[arg(long, value_enum)]
        scorer: Option<tasks::ScorerArg>,
        /// EfficientNet-Lite0's safetensors (docs/EFFICIENTNET.md) for the feature-space
        /// scorers; default: $DMAD_EFFICIENTNET.
        #[arg(long)]
        efficientnet: Option<PathBuf>,
        /// Images: a small labelled validation set, an MVTec AD category folder whose test/
        /// holds it (good/ and one folder per defect). The scoring start strength, lambda (the
        /// combined scorer) and the threshold are then chosen on it (best AUROC, F1-optimal
        /// threshold) instead of kept as configured. Keep it apart from the data you evaluate on.
        #[arg(long)]
        validation: Option<PathBuf>,
        /// Audio with --scorer log-mel-dte, a DCASE folder of at least 10 training clips:
        /// choose the clip statistics (with or without the frame-difference deviations) and the
        /// time bins (7 or 50) on audio anomalies generated in a held-out fifth of the training
        /// clips (no labels; dmad::choose::choose_audio), then refit the best on all: five fits
        /// instead of one.
        #[arg(long)]
        choose: bool,
        /// Feature-space scorers: append each patch's position to its features, so that the
        /// model learns what is normal where. For aligned objects (solar cells, parts in a
        /// jig), not for textures or objects that move (docs/SCORERS.md).
        #[arg(long)]
        positions: bool,
        /// Feature-space scorers: how the patch features are standardised before the model
        /// sees them: one spread per feature (global, the default), one spread for all
        /// (isotropic: the extractor's own distances, PatchCore's metric), or per feature and
        /// patch position (per-position). docs/SCORERS.md says which to pick.
        #[arg(long, value_enum)]
        patch_norm: Option<tasks::PatchNormArg>,
    },
    /// Score the test data of PATH: scores.csv, heat-map overlays (images) and plots (series).
    Score {
        /// The saved model.
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Output directory.
        #[arg(long, default_value = "dmad-scores")]
        out: PathBuf,
        /// Also write an HTML report (scores, anomaly maps or the series plot) to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Evaluate on the labelled test data of PATH: metrics as JSON and as a table.
    Eval {
        /// The saved model.
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Also write the metrics to this JSON file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write an HTML report (metrics, ROC curve, scores, anomaly maps) to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Run every dataset of data/PROTOCOL.md with its protocol (dmad full, the DDPM baseline,
    /// DTE and the ablations) and write docs/RESULTS.md with the classical peers beside them.
    /// Results are cached per dataset and variant; run it in pieces with --only/--variants.
    #[command(after_help = "Examples:
  DMAD_DATA=../shared/data dmad bench
  dmad bench --data ../shared/data --only tabular --variants full,dte
  dmad bench --data ../shared/data --quick --results /tmp/r --report /tmp/RESULTS.md")]
    Bench {
        /// The protocol's data folder (default: $DMAD_DATA, else ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Folder of the per-cell JSON records.
        #[arg(long, default_value = "docs/results/dmad")]
        results: PathBuf,
        /// The Markdown report to (re)write.
        #[arg(long, default_value = "docs/RESULTS.md")]
        report: PathBuf,
        /// The classical peers' results (benches/peers/run_classical.sh).
        #[arg(long, default_value = "docs/results/classical.json")]
        classical: PathBuf,
        /// Scale every training budget by this factor, in (0, 100].
        #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, value_parser = validate::budget)]
        budget: f64,
        /// Only datasets whose id contains this (repeatable), e.g. tabular, ucr/, mnist.
        #[arg(long)]
        only: Vec<String>,
        /// Variants to run, in this order.
        #[arg(long, value_delimiter = ',', value_enum)]
        variants: Option<Vec<bench::Variant>>,
        /// Re-run cells that already have a record.
        #[arg(long)]
        force: bool,
        /// Start no new cell after this many minutes, in (0, 10080].
        #[arg(long, allow_hyphen_values = true, value_parser = validate::minutes)]
        minutes: Option<f64>,
        /// The short version for CI: budget 0.05, two datasets (wbc and UCR #135), full and DTE.
        #[arg(long)]
        quick: bool,
        /// Run every cell with this many seeds (--seed, --seed + 1, ...) and record their
        /// mean and range.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=20))]
        seeds: u64,
    },
    /// Fit and evaluate one small model per modality on the data the repository ships, print
    /// the metrics and write an HTML report.
    Demo {
        /// The repository's shipped data.
        #[arg(long, default_value = "testdata/data")]
        data: PathBuf,
        /// Output directory for the report and the models.
        #[arg(long, default_value = "dmad-demo")]
        out: PathBuf,
        /// Scale every training budget by this factor (e.g. 0.1 for a smoke test), in (0, 100].
        #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, value_parser = validate::budget)]
        budget: f64,
        /// EfficientNet-Lite0's safetensors: images then use the feature-space detector
        /// (default: $DMAD_EFFICIENTNET; without it, the pixel-space U-Net).
        #[arg(long)]
        efficientnet: Option<PathBuf>,
    },
    /// Generate normal or anomalous samples from a saved model: PNG, WAV or CSV files with
    /// their masks, and an HTML page with a grid of them.
    Generate(generate::Args),
}

fn device(d: DeviceArg) -> Result<Device> {
    match d {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Cuda => Device::new_cuda(0).context(
            "cannot open CUDA device 0: build with `cargo build --release --features cuda` \
             on a machine with an NVIDIA GPU (see docs/CUDA.md)",
        ),
    }
}

/// The command line, with the numeric arguments of `generate` (whose definitions live in
/// generate.rs) checked against their ranges too.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("generate", |g| {
        g.mut_arg("n", |a| {
            a.allow_hyphen_values(true)
                .value_parser(validate::sample_count)
                .help("How many samples, 1 to 100000.")
        })
        .mut_arg("steps", |a| {
            a.allow_hyphen_values(true)
                .value_parser(validate::sampler_steps)
                .help("Sampler steps of the normal samples and of harmonisation, 1 to 1000.")
        })
        .mut_arg("strength", |a| {
            a.allow_hyphen_values(true).value_parser(validate::strength)
        })
        .mut_arg("split_index", |a| {
            a.allow_hyphen_values(true)
                .value_parser(validate::split_index)
        })
    })
}

/// Checks, from the model's configuration alone, that `generate` can hold what it is asked
/// for before anything is allocated.
fn check_generate(matches: &clap::ArgMatches) -> Result<()> {
    let Some(("generate", g)) = matches.subcommand() else {
        return Ok(());
    };
    let (Some(model), Some(&n)) = (g.get_one::<PathBuf>("model"), g.get_one::<usize>("n")) else {
        return Ok(());
    };
    let cfg = validate::saved_config(model)?;
    validate::check_sample_memory(&cfg, n, "generating")
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(h) = hint(&e) {
                eprintln!("hint: {h}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// What to do about an error, where the command line knows better than the library.
fn hint(e: &anyhow::Error) -> Option<&'static str> {
    let non_finite = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<dmad::data::Error>(),
            Some(dmad::data::Error::NonFinite { .. })
        ) || matches!(
            c.downcast_ref::<dmad::Error>(),
            Some(dmad::Error::Data(dmad::data::Error::NonFinite { .. }))
        )
    });
    non_finite.then_some(
        "fix the value, or pass --nan drop (tables: drop such rows) or --nan impute (column \
         means; series: interpolation)",
    )
}

fn run() -> Result<()> {
    dmad::init_cpu();
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    check_generate(&matches)?;
    let dev = device(cli.device)?;
    let opts = tasks::Options {
        seed: cli.seed,
        quiet: cli.quiet,
    };
    let non_finite: dmad::data::NonFinite = cli.nan.into();
    match cli.command {
        Command::Fit {
            modality,
            data,
            out,
            force,
            steps,
            checkpoints,
            baseline,
            config,
            scorer,
            efficientnet,
            validation,
            choose,
            positions,
            patch_norm,
        } => {
            model::check_out(&out, force)?;
            // Without --checkpoints the training is checkpointed beside the model, so that the
            // same command after an interruption resumes (and says so); the folder goes once the
            // model is saved.
            let own_checkpoints = checkpoints.is_none();
            let checkpoints = checkpoints.unwrap_or_else(|| {
                let name = out
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "model".into());
                out.with_file_name(format!(".{name}.checkpoints"))
            });
            let args = tasks::FitArgs {
                config: config.as_deref(),
                scorer,
                efficientnet: efficientnet.as_deref(),
                steps,
                baseline,
                checkpoints: Some(&checkpoints),
                non_finite,
                choose,
                positions,
                patch_norm,
            };
            let (mut det, mut info) =
                tasks::fit(modality.into(), &data.into(), &args, &opts, &dev)?;
            if let Some(dir) = &validation {
                let chosen = tasks::choose_on_validation(&mut det, dir, &dev)?;
                if !opts.quiet {
                    println!("{chosen}");
                }
            }
            let cal = det
                .calibration()
                .context("fitted model has a calibration")?
                .clone();
            // The library's own account of the threshold (rule, data, per-step or not).
            info.threshold = cal.method.clone();
            model::save(&det, &out, &info)?;
            if own_checkpoints && checkpoints.is_dir() {
                std::fs::remove_dir_all(&checkpoints)
                    .with_context(|| format!("removing {}", checkpoints.display()))?;
            }
            println!(
                "saved {} (threshold {} = {})",
                out.display(),
                render::number(cal.threshold.value),
                info.threshold
            );
            if cal.calibration_samples < 20 {
                eprintln!(
                    "warning: the threshold was set from only {} held-out normal samples; with \
                     fewer than 20 it is a rough guess: give fit more normal data",
                    cal.calibration_samples
                );
            }
        }
        Command::Score {
            model,
            data,
            out,
            report,
        } => {
            let (det, info) = load_for(&model, &data.data, &dev)?;
            let start = std::time::Instant::now();
            let scored = tasks::score_data(&det, info.as_ref(), &data.into(), non_finite, &opts)?;
            let seconds = start.elapsed().as_secs_f64();
            render::write_scores(&det, &scored, &out)?;
            if let Some(path) = &report {
                let title = format!("dmad score: {} with {}", scored.name, model.display());
                render::write_report(path, &title, &scored, None, seconds)?;
                println!("report: {}", path.display());
            }
            println!("{}", render::score_summary(&scored));
            println!("wrote scores and plots to {}", out.display());
        }
        Command::Eval {
            model,
            data,
            json,
            report,
        } => {
            let (det, info) = load_for(&model, &data.data, &dev)?;
            let start = std::time::Instant::now();
            let scored = tasks::score_data(&det, info.as_ref(), &data.into(), non_finite, &opts)?;
            let seconds = start.elapsed().as_secs_f64();
            let metrics = tasks::metrics(&det, &scored)?;
            if let Some(path) = &report {
                let title = format!("dmad eval: {} with {}", scored.name, model.display());
                render::write_report(path, &title, &scored, Some(&metrics), seconds)?;
                println!("report: {}", path.display());
            }
            println!(
                "{}",
                render::metrics_table(&[(scored.name.clone(), metrics.clone())])
            );
            let text = serde_json::to_string_pretty(&metrics)?;
            println!("{text}");
            if let Some(path) = json {
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Command::Demo {
            data,
            out,
            budget,
            efficientnet,
        } => demo::run(&data, &out, budget, efficientnet.as_deref(), &opts, &dev)?,
        Command::Bench {
            data,
            results,
            report,
            classical,
            budget,
            mut only,
            variants,
            force,
            minutes,
            quick,
            seeds,
        } => {
            let data = data
                .or_else(|| std::env::var_os("DMAD_DATA").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("../shared/data"));
            let mut budget = budget;
            let mut variants = variants.unwrap_or_else(|| bench::Variant::ALL.to_vec());
            if quick {
                budget = budget.min(0.05);
                if only.is_empty() {
                    only = vec!["tabular/wbc".into(), "ucr-anomaly/135_".into()];
                }
                variants.retain(|v| matches!(v, bench::Variant::Full | bench::Variant::Dte));
            }
            // As a user types it: the binary's name, not its path.
            let command = std::iter::once("dmad".to_string())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" ");
            let args = bench::BenchArgs {
                data,
                results,
                report,
                classical,
                budget,
                only,
                variants,
                force,
                minutes,
                command,
                seeds: seeds as usize,
            };
            bench::run(&args, &opts, &dev)?
        }
        Command::Generate(args) => generate::run(&args, opts.seed, &dev)?,
    }
    Ok(())
}

/// Loads the model at `model` for the data at `data`: its configuration is read and checked
/// against the data (modality, columns) before the weights are loaded.
fn load_for(
    model: &std::path::Path,
    data: &std::path::Path,
    dev: &Device,
) -> Result<(dmad::Detector, Option<model::DataInfo>)> {
    let cfg = validate::saved_config(model)?;
    validate::check_config(&cfg, &model.join("config.json").display().to_string())?;
    let info = model::data_info(model)?;
    layout::check_model_data(&cfg, model, data)?;
    if let Some(t) = info.as_ref().and_then(|i| i.table.as_ref()) {
        if let Some(cols) = layout::table_columns(data) {
            if cols != t.names.len() {
                anyhow::bail!(
                    "model/data mismatch: the model {} was trained on {} columns, the file {} \
                     has {cols}",
                    model.display(),
                    t.names.len(),
                    data.display()
                );
            }
        }
    }
    let det = dmad::Detector::load(model, dev)
        .with_context(|| format!("loading the model {}", model.display()))?;
    check_weights(model)?;
    Ok((det, info))
}

/// Fails when a model's weights hold NaN or infinite values (a corrupt or diverged model),
/// naming the file and the tensor, instead of letting them surface as non-finite scores.
fn check_weights(model: &std::path::Path) -> Result<()> {
    for file in [
        "weights.safetensors",
        "dte.safetensors",
        "feature_space.safetensors",
    ] {
        let path = model.join(file);
        if !path.is_file() {
            continue;
        }
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut names: Vec<&String> = tensors.keys().collect();
        names.sort();
        for name in names {
            let t = &tensors[name];
            let t = t.to_dtype(candle_core::DType::F32)?.flatten_all()?;
            let bad = t.to_vec1::<f32>()?.iter().any(|v| !v.is_finite());
            if bad {
                anyhow::bail!(
                    "the model {} is corrupt: {} holds NaN or infinite values in tensor `{name}` \
                     (a damaged file, or a fit that diverged): refit it",
                    model.display(),
                    path.display()
                );
            }
        }
    }
    Ok(())
}

impl From<DataArgs> for tasks::DataSpec {
    fn from(d: DataArgs) -> Self {
        tasks::DataSpec {
            path: d.data,
            split: d.split,
            split_index: d.split_index,
        }
    }
}
