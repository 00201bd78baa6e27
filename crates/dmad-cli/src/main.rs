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
mod render;
mod tasks;

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::{Parser, Subcommand, ValueEnum};
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
  dmad fit --modality image --scorer feature-diffusion --efficientnet efficientnet-lite0.safetensors --data testdata/data/textures-ad/brick --out brick-fd.model
  dmad score --model brick.model --data testdata/data/textures-ad/brick --out scores
  dmad eval --model brick.model --data testdata/data/textures-ad/brick
  dmad fit --modality table --data testdata/data/tabular/wbc.csv --split testdata/data/tabular/splits/wbc.json --out wbc.model"
)]
struct Cli {
    /// Device: cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, global = true, default_value = "cpu")]
    device: DeviceArg,
    /// Seed of training and scoring.
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
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
    /// The data: an MVTec AD category folder (image), a UCR Anomaly Archive file (series), a
    /// DCASE folder with train/ and test/ (audio), or a CSV with a `label` column (table).
    #[arg(long)]
    data: PathBuf,
    /// Tables: the split file (ADBench/DTE protocol); without it half the normal rows train.
    #[arg(long)]
    split: Option<PathBuf>,
    /// Tables: which split of the split file.
    #[arg(long, default_value_t = 0)]
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
        /// Where to save the model (a directory).
        #[arg(long)]
        out: PathBuf,
        /// Training steps (default: the modality's default).
        #[arg(long)]
        steps: Option<usize>,
        /// Training checkpoints go here; an interrupted fit resumes from them.
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
        /// Scale every training budget by this factor.
        #[arg(long, default_value_t = 1.0)]
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
        /// Start no new cell after this many minutes.
        #[arg(long)]
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
        /// Scale every training budget by this factor (e.g. 0.1 for a smoke test).
        #[arg(long, default_value_t = 1.0)]
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

fn main() -> Result<()> {
    dmad::init_cpu();
    let cli = Cli::parse();
    let dev = device(cli.device)?;
    let opts = tasks::Options {
        seed: cli.seed,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Fit {
            modality,
            data,
            out,
            steps,
            checkpoints,
            baseline,
            config,
            scorer,
            efficientnet,
        } => {
            let args = tasks::FitArgs {
                config: config.as_deref(),
                scorer,
                efficientnet: efficientnet.as_deref(),
                steps,
                baseline,
                checkpoints: checkpoints.as_deref(),
            };
            let det = tasks::fit(modality.into(), &data.into(), &args, &opts, &dev)?;
            det.save(&out)
                .with_context(|| format!("saving the model to {}", out.display()))?;
            let cal = det
                .calibration()
                .context("fitted model has a calibration")?;
            println!(
                "saved {} (threshold {:.6} from {} held-out normal samples)",
                out.display(),
                cal.threshold.value,
                cal.calibration_samples
            );
        }
        Command::Score { model, data, out } => {
            let det = dmad::Detector::load(&model, &dev)
                .with_context(|| format!("loading the model {}", model.display()))?;
            let scored = tasks::score_test(&det, &data.into(), &opts)?;
            render::write_scores(&det, &scored, &out)?;
            println!("wrote scores and plots to {}", out.display());
        }
        Command::Eval { model, data, json } => {
            let det = dmad::Detector::load(&model, &dev)
                .with_context(|| format!("loading the model {}", model.display()))?;
            let scored = tasks::score_test(&det, &data.into(), &opts)?;
            let metrics = tasks::metrics(&det, &scored)?;
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

impl From<DataArgs> for tasks::DataSpec {
    fn from(d: DataArgs) -> Self {
        tasks::DataSpec {
            path: d.data,
            split: d.split,
            split_index: d.split_index,
        }
    }
}
