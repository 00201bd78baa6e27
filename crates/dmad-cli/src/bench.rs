//! `dmad bench`: every dataset of `data/PROTOCOL.md`, with that protocol's splits and metrics,
//! for dmad's full model, the plain DDPM baseline, DTE and the ablations of the method's
//! Table III; one JSON record per (dataset, variant) and `docs/RESULTS.md` with the classical
//! peers of `benches/peers/classical.py` beside them.
//!
//! Records are cached: a run skips what its results folder already holds (unless `--force`),
//! so a long benchmark can be run in pieces (`--only`, `--variants`, `--minutes`) and the
//! report is rebuilt from everything measured so far after every record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use dmad::data::Split;
use dmad::prepare::{self, Labelled, SeriesTask};
use dmad::{Detector, DetectorConfig, Modality, ScorerConfig};
use serde::{Deserialize, Serialize};

use crate::tasks::Options;

mod config;
mod dataset;
mod feature_space;
mod fidelity;
mod imputation;
mod log_mel;
mod pixel;
mod record;
mod report;
mod series_peers;
mod variant;

use config::cell_config;
use dataset::{datasets, sorted_entries, Dataset, Source};
use dmad::choose::hold_out;
use fidelity::{run_fidelity, Fidelity, FIDELITY_SAMPLES};
use record::{mean_metrics, record_path, seed_ranges, utc_now, Record, UnitMetrics};
use report::{fmt2, short_id, write_report};

pub use variant::Variant;

/// What `dmad bench` runs.
pub struct BenchArgs {
    /// The protocol's data folder.
    pub data: PathBuf,
    /// One JSON record per (dataset, variant) goes here.
    pub results: PathBuf,
    /// The Markdown report.
    pub report: PathBuf,
    /// The classical peers' JSON (`benches/peers/classical.py`).
    pub classical: PathBuf,
    /// Scales every training budget.
    pub budget: f64,
    /// Only datasets whose id contains one of these.
    pub only: Vec<String>,
    /// The variants to run, in order.
    pub variants: Vec<Variant>,
    /// Re-run records that exist.
    pub force: bool,
    /// Start no new record after this many minutes.
    pub minutes: Option<f64>,
    /// The command line, recorded with each figure.
    pub command: String,
    /// Seeds per cell: `opts.seed`, `opts.seed + 1`, ...; the record holds their mean and
    /// range.
    pub seeds: usize,
}

/// The test side of one unit.
enum TestSet {
    Samples(Labelled),
    Points(SeriesTask),
}

/// Reads unit `unit` of a dataset: the normal training samples and the test set.
fn prepare_unit(
    ds: &Dataset,
    cfg: &DetectorConfig,
    unit: usize,
    dev: &Device,
) -> Result<(Tensor, TestSet)> {
    let input = &cfg.input;
    Ok(match &ds.source {
        Source::Table { csv, split } => {
            let t = prepare::table(csv, Some(split), unit, dev)?;
            (t.train, TestSet::Samples(t.test))
        }
        Source::Series(src) => {
            let task = prepare::series(
                src,
                input.window,
                input.train_stride,
                input.test_stride,
                dev,
            )?;
            (task.train.clone(), TestSet::Points(task))
        }
        Source::UcrClass(dir) => {
            let (train, test) = prepare::ucr_one_class(dir, input.window, dev)?;
            (train, TestSet::Samples(test))
        }
        Source::Mvtec(dir) => {
            let train = prepare::images(dir, Split::Train, input.image_size, 1, dev)?.x;
            let train = if input.flip_augment {
                prepare::with_flips(&train)?
            } else {
                train
            };
            let test = prepare::images(dir, Split::Test, input.image_size, 1, dev)?;
            (train, TestSet::Samples(test))
        }
        Source::Mnist { images, labels } => {
            let (train, test) =
                prepare::npy_one_class(images, labels, unit as i64, input.image_size, dev)?;
            (train, TestSet::Samples(test))
        }
        Source::Audio(dir) => {
            let train = prepare::audio(dir, Split::Train, input, dev)?.x;
            let test = prepare::audio(dir, Split::Test, input, dev)?;
            (train, TestSet::Samples(test))
        }
    })
}

/// The side of the pixel maps for the pixel metrics (PROTOCOL.md: 256x256).
const PIXEL_SIDE: usize = 256;
/// Gaussian smoothing of the upsampled maps, in pixels at 256x256.
const PIXEL_SIGMA: f64 = 4.0;

fn auroc_of(scores: &[f32], labels: &[u8]) -> Result<f64> {
    let y: Vec<bool> = labels.iter().map(|&l| l != 0).collect();
    Ok(dmad::metrics::auroc(scores, &y)?)
}

/// The share of `scores` at or above `threshold` (flagged, as `dmad::evaluate` decides) and
/// the F1 of flagging every sample.
fn flag_shares(scores: &[f32], labels: &[u8], threshold: f64) -> (f64, f64) {
    let n = scores.len().max(1) as f64;
    let flagged = scores
        .iter()
        .filter(|&&s| f64::from(s) >= threshold)
        .count() as f64
        / n;
    let p = labels.iter().filter(|&&l| l != 0).count() as f64 / n;
    (flagged, 2.0 * p / (1.0 + p))
}

fn per_kind(scores: &[f32], labels: &[u8], kinds: &[String]) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    let mut names: Vec<&String> = kinds
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l != 0)
        .map(|(k, _)| k)
        .collect();
    names.sort();
    names.dedup();
    if names.len() < 2 {
        return Ok(out);
    }
    for name in names {
        let (s, l): (Vec<f32>, Vec<u8>) = scores
            .iter()
            .zip(labels.iter().zip(kinds))
            .filter(|(_, (&l, k))| l == 0 || *k == name)
            .map(|(&s, (&l, _))| (s, l))
            .unzip();
        out.insert(name.clone(), auroc_of(&s, &l)?);
    }
    Ok(out)
}

/// Pixel AUROC and AUPRO@0.3 of maps `[n, h, w]` against the dataset's masks at 256x256.
fn pixel_metrics(maps: &Tensor, dir: &Path, dev: &Device) -> Result<(f64, f64)> {
    let masks = prepare::images(dir, Split::Test, PIXEL_SIDE as u32, 1, dev)?
        .masks
        .context("the test set has no masks")?;
    let maps = dmad::score::maps::resize_map(maps, &[PIXEL_SIDE, PIXEL_SIDE])?;
    let maps = dmad::score::maps::gaussian_smooth(&maps, PIXEL_SIGMA)?;
    crate::tasks::pixel_metrics(&maps, &masks)
}

/// Candidate start strengths of the calibration on generated anomalies.
const CALIBRATION_STRENGTHS: [f64; 5] = [0.05, 0.1, 0.2, 0.3, 0.5];
/// How far from normal the generated anomalies are (`dmad::generate`'s strength).
const GENERATED_STRENGTH: f64 = 0.7;

/// The `combined` variant's hand-set weight of the reconstruction term (the method leaves
/// `lambda` to the user; 0.5 weighs the two z-scored terms alike).
const COMBINED_LAMBDA: f64 = 0.5;

/// The normal training clips of an audio dataset as waveforms `[n, samples]`, in the order of
/// `prepare::audio`'s scalograms (the same folder listing, each clip resampled to the input's
/// rate and cropped or padded to one second, as `prepare::audio` reads them): audio anomalies
/// are injected into waveforms, not scalograms.
fn audio_train_waves(dir: &Path, input: &dmad::InputConfig, dev: &Device) -> Result<Tensor> {
    Ok(dmad::prepare::audio_waves(dir, Split::Train, input, dev)?)
}

/// Calibrates a fitted detector on anomalies generated from the held-out normals `held` (in
/// the detector's input space): the start strength and an F1-optimal threshold
/// (reconstruction scoring). The anomalies are injected into `bases`: `held` itself, or for
/// audio the waveforms of the same clips.
fn calibrate_on_generated(
    det: &mut Detector,
    held: &Tensor,
    bases: &Tensor,
    fit_part: &Tensor,
    seed: u64,
    features: Option<&dyn dmad::FeatureExtractor>,
    m: &mut UnitMetrics,
) -> Result<()> {
    use dmad::generate::{CalibrationConfig, GenerateConfig, Generator};
    let table = det.config().modality == Modality::Table;
    let anomalies = {
        let gen = Generator::new(det, GenerateConfig::default())?;
        gen.mixed_anomalies(bases, GENERATED_STRENGTH, seed, table.then_some(fit_part))?
    };
    if anomalies.x.dims() != held.dims() {
        bail!(
            "the generated anomalies {:?} do not match the held-out samples {:?}",
            anomalies.x.dims(),
            held.dims()
        );
    }
    let c = dmad::generate::calibrate_on_generated(
        det,
        held,
        &anomalies.x,
        &CALIBRATION_STRENGTHS,
        features,
        &CalibrationConfig::default(),
    )?;
    dmad::generate::apply_calibration(det, &c, held)?;
    m.calibrated_strength = Some(c.strength);
    if features.is_some() {
        m.calibrated_lambda = Some(c.lambda);
    }
    m.generated_auroc = Some(c.auroc);
    Ok(())
}

/// Fits and evaluates one unit.
fn run_unit(
    ds: &Dataset,
    cfg: &DetectorConfig,
    unit: usize,
    variant: Variant,
    opts: &Options,
    dev: &Device,
) -> Result<UnitMetrics> {
    let start = Instant::now();
    let (train, mut test) = prepare_unit(ds, cfg, unit, dev)
        .with_context(|| format!("reading {} (unit {unit})", ds.id))?;
    let mut m = UnitMetrics::default();
    if let Some(ratio) = variant.patchcore_ratio() {
        let TestSet::Samples(test) = test else {
            bail!("PatchCore scores images and scalograms, not series points");
        };
        let run = feature_space::patchcore(&train, &test.x, ratio, opts.seed, dev)?;
        let s = dmad::Scores {
            scores: run.scores,
            maps: Some(run.maps),
        };
        sample_metrics(ds, &s, &test, None, &mut m, dev)?;
        (m.fit_s, m.score_s) = (Some(run.fit_s), Some(run.score_s));
        m.wall_s = start.elapsed().as_secs_f64();
        return Ok(m);
    }
    let mut cfg = cfg.clone();
    cfg.train.seed = opts.seed;
    cfg.scoring.seed = opts.seed;
    let mut det = Detector::new(cfg.clone(), dev)?;
    let fit_start = Instant::now();
    if variant.imputes() {
        // The library's recipe as `dmad fit --scorer imputation` runs it: each window
        // z-normalised (the normalisation was once chosen on GutenTAG-kind anomalies injected
        // into a held-out fifth; that choice took `global` wherever the anomalies were level
        // changes and lost to the a-priori `window` on UCR #135, NAB and GutenTAG:
        // docs/results/notes.md). A point-labelled series is fitted by
        // `dmad::series::fit_series`: on the first four fifths of its train part, the point
        // smoothing chosen on anomalies injected into the last fifth.
        match &ds.source {
            Source::Series(src) => {
                let (mut split, _) = prepare::series_split(src)?;
                split.normalise();
                let fit = dmad::series::fit_series(&mut det, &split.train, None, |_| {
                    dmad::train::Control::Continue
                })?;
                if let Some(c) = fit.choice {
                    m.point_sigma = Some(c.point_sigma);
                    if let dmad::ScorerConfig::Imputation { max_strength, .. } = c.scorer {
                        m.imputation_strength = Some(max_strength);
                    }
                    m.scoring_choice = Some(format!(
                        "noise levels and point sigma (steps) by injected-point AUROC on {} {} \
                         train points: {}",
                        if c.in_sample {
                            "all (in sample)"
                        } else {
                            "the last"
                        },
                        c.held_out,
                        c.describe_candidates()
                    ));
                    m.generated_auroc = Some(c.auroc());
                }
            }
            _ => det.fit(&train, |_| {})?,
        }
        m.window_norm = Some(format!("{:?}", det.config().input.window_norm).to_lowercase());
    } else if matches!(
        variant,
        Variant::FeatureDiffusion
            | Variant::FeatureDiffusionPos
            | Variant::FeatureDiffusionIsotropic
            | Variant::FeatureDteChosen
    ) {
        // The scoring settings (the denoising score's largest level and noise-free or not;
        // DTE's expected time or surprisal), chosen on anomalies generated from a held-out
        // fifth of the normal training samples (no real anomaly used): images get injected
        // image defects, audio clips the audio anomalies injected into their waveforms.
        let copies = match ds.source {
            Source::Mvtec(_) if det.config().input.flip_augment => 3,
            _ => 1,
        };
        let (fit_part, held) = hold_out(&train, copies)?;
        det.fit(&fit_part, |_| {})?;
        let (normal, anomalies) = match &ds.source {
            Source::Audio(dir) => {
                let waves = audio_train_waves(dir, &det.config().input, dev)?;
                let held_waves = hold_out(&waves, 1)?.1;
                let gen = dmad::Generator::new(&det, dmad::GenerateConfig::default())?;
                let a = gen.mixed_anomalies(&held_waves, GENERATED_STRENGTH, opts.seed, None)?;
                (held, a.x)
            }
            _ => feature_space::image_choice_set(&held, opts.seed)?,
        };
        let (scorer, auroc) = feature_space::choose_scoring(&mut det, &normal, &anomalies)?;
        match scorer {
            ScorerConfig::Denoising {
                max_strength,
                noise_free,
                ..
            } => {
                m.calibrated_strength = Some(max_strength);
                m.noise_free = Some(noise_free);
            }
            ScorerConfig::DteCategorical { surprisal, .. } => m.dte_surprisal = Some(surprisal),
            _ => {}
        }
        m.generated_auroc = Some(auroc);
    } else if let Some(candidates) = variant.log_mel_candidates() {
        let Source::Audio(dir) = &ds.source else {
            bail!("{}: log-mel cells take DCASE audio folders", ds.id);
        };
        let chosen = log_mel::fit_chosen(dir, &cfg, candidates, opts.seed, dev)?;
        det = chosen.det;
        m.scoring_choice = Some(chosen.describe);
        m.log_mel_choice = Some(chosen.short);
        m.generated_auroc = Some(chosen.auroc);
        if det.config().input != cfg.input {
            // The test clips as the chosen detector reads them.
            test = prepare_unit(ds, det.config(), unit, dev)?.1;
        }
    } else if let Some(repair) = variant.pixel_repair() {
        det = pixel::run(ds, &cfg, &train, repair, opts, dev, &mut m)?;
    } else if variant.calibrates() {
        let copies = match ds.source {
            Source::Mvtec(_) if det.config().input.flip_augment => 3,
            _ => 1,
        };
        let (fit_part, held) = hold_out(&train, copies)?;
        det.fit(&fit_part, |_| {})?;
        let held_waves = match &ds.source {
            Source::Audio(dir) => {
                let waves = audio_train_waves(dir, &det.config().input, dev)?;
                if waves.dim(0)? != train.dim(0)? {
                    bail!(
                        "{}: {} training waveforms for {} scalograms",
                        dir.display(),
                        waves.dim(0)?,
                        train.dim(0)?
                    );
                }
                Some(hold_out(&waves, 1)?.1)
            }
            _ => None,
        };
        let bases = held_waves.as_ref().unwrap_or(&held);
        let extractor = if variant.uses_features() {
            Some(efficientnet_from_env(dev)?.with_context(|| {
                format!("{EFFICIENTNET_ENV} must name EfficientNet-Lite0's safetensors")
            })?)
        } else {
            None
        };
        let features = extractor.as_ref().map(|e| e as &dyn dmad::FeatureExtractor);
        calibrate_on_generated(
            &mut det, &held, bases, &fit_part, opts.seed, features, &mut m,
        )?;
    } else {
        det.fit(&train, |_| {})?;
        if let Some(r) = det.validation() {
            let history: Vec<String> = r
                .history
                .iter()
                .map(|(step, loss)| format!("{step}: {loss:.5}"))
                .collect();
            m.early_stopping = Some(format!(
                "kept step {} of {} (held-out loss {})",
                r.best_step,
                det.config().train.steps,
                history.join(", ")
            ));
        }
    }
    // A pixel cell's network may come from the cache: its fit time is the fit's own.
    m.fit_s.get_or_insert(fit_start.elapsed().as_secs_f64());
    let score_start = Instant::now();
    let threshold = det.threshold()?.value;
    match test {
        TestSet::Points(task) => {
            let s = det.score(&task.test)?;
            let points = task.detector_points(&det, &s)?;
            let r = dmad::evaluate(&points, &task.test_labels, Some(threshold))?;
            (m.auroc, m.auprc, m.f1_max, m.f1_at_threshold) =
                (r.auroc, r.auprc, r.f1_max, r.f1_at_threshold);
            let (flagged, all) = flag_shares(&points, &task.test_labels, threshold);
            (m.flagged, m.f1_flag_all) = (Some(flagged), Some(all));
            let y: Vec<bool> = task.test_labels.iter().map(|&l| l != 0).collect();
            m.vus_pr = Some(dmad::metrics::vus_pr(&points, &y, 100)?);
            if let Some((begin, end)) = task.anomaly {
                let hit = dmad::metrics::ucr_top1_hit(&points, task.test_offset, begin, end)?;
                m.ucr_top1_hit = Some(if hit { 1.0 } else { 0.0 });
            }
        }
        TestSet::Samples(test) => {
            let s = det.score(&test.x)?;
            m.score_s = Some(score_start.elapsed().as_secs_f64());
            sample_metrics(ds, &s, &test, Some(threshold), &mut m, dev)?;
        }
    }
    m.score_s.get_or_insert(score_start.elapsed().as_secs_f64());
    m.wall_s = start.elapsed().as_secs_f64();
    Ok(m)
}

/// The metrics of scored samples (and their maps, where the dataset has masks); the
/// threshold's F1 and flag share where a threshold is given.
fn sample_metrics(
    ds: &Dataset,
    s: &dmad::Scores,
    test: &Labelled,
    threshold: Option<f64>,
    m: &mut UnitMetrics,
    dev: &Device,
) -> Result<()> {
    let r = dmad::evaluate(&s.scores, &test.labels, threshold)?;
    (m.auroc, m.auprc, m.f1_max) = (r.auroc, r.auprc, r.f1_max);
    if let Some(threshold) = threshold {
        m.f1_at_threshold = r.f1_at_threshold;
        let (flagged, all) = flag_shares(&s.scores, &test.labels, threshold);
        (m.flagged, m.f1_flag_all) = (Some(flagged), Some(all));
    }
    if ds.modality() == Modality::Audio {
        m.pauc_01 = Some(r.pauc_01);
    }
    if matches!(ds.source, Source::Audio(_) | Source::Mvtec(_)) {
        m.auroc_per_kind = per_kind(&s.scores, &test.labels, &test.kinds)?;
    }
    if let (Source::Mvtec(dir), Some(maps), Some(_)) = (&ds.source, &s.maps, &test.masks) {
        let (px, pro) = pixel_metrics(maps, dir, dev)?;
        m.pixel_auroc = Some(px);
        m.aupro_03 = Some(pro);
    }
    Ok(())
}

/// The environment variable naming EfficientNet-Lite0's safetensors (`docs/EFFICIENTNET.md`).
const EFFICIENTNET_ENV: &str = "DMAD_EFFICIENTNET";

/// EfficientNet-Lite0 from the file that `DMAD_EFFICIENTNET` names; `None` when it is unset.
fn efficientnet_from_env(dev: &Device) -> Result<Option<dmad::score::EfficientNetExtractor>> {
    let Some(weights) = std::env::var_os(EFFICIENTNET_ENV) else {
        return Ok(None);
    };
    let ex = dmad::score::EfficientNetExtractor::lite0(&weights, dev)
        .with_context(|| format!("loading {}", Path::new(&weights).display()))?;
    Ok(Some(ex))
}

/// Runs the benchmark and rewrites the report.
pub fn run(args: &BenchArgs, opts: &Options, dev: &Device) -> Result<()> {
    if !args.data.is_dir() {
        bail!(
            "the protocol data folder {} does not exist: pass --data or set DMAD_DATA",
            args.data.display()
        );
    }
    let all = datasets(&args.data)?;
    if all.is_empty() {
        bail!(
            "no dataset of PROTOCOL.md found under {}",
            args.data.display()
        );
    }
    let chosen: Vec<&Dataset> = all
        .iter()
        .filter(|d| args.only.is_empty() || args.only.iter().any(|o| d.id.contains(o.as_str())))
        .collect();
    if chosen.is_empty() {
        bail!("--only {:?} matches no dataset", args.only);
    }
    std::fs::create_dir_all(&args.results)
        .with_context(|| format!("creating {}", args.results.display()))?;
    let start = Instant::now();
    'outer: for &variant in &args.variants {
        for ds in &chosen {
            if !variant.applies(ds.modality()) {
                continue;
            }
            let path = record_path(&args.results, &ds.id, variant);
            if path.is_file() && !args.force {
                continue;
            }
            if let Some(limit) = args.minutes {
                if start.elapsed().as_secs_f64() > limit * 60.0 {
                    println!("time limit of {limit} minutes reached");
                    break 'outer;
                }
            }
            let features = match &ds.source {
                Source::Table { csv, split } => {
                    prepare::table(csv, Some(split), 0, dev)?.train.dim(1)?
                }
                _ => 0,
            };
            if variant.patch_features() && matches!(ds.source, Source::Mnist { .. }) {
                // Ten digits of 10,000 test images through EfficientNet at 224x224: hours.
                continue;
            }
            let cfg = cell_config(ds, features, variant, args.budget)?;
            let t0 = Instant::now();
            // A fidelity cell measures unit 0 only (a table's split seed 0, MNIST's digit 0).
            let n_units = if variant.detects() { ds.units() } else { 1 };
            let n_seeds = if variant.detects() {
                args.seeds.max(1)
            } else {
                1
            };
            let mut units = Vec::with_capacity(n_units * n_seeds);
            let mut per_seed = Vec::with_capacity(n_seeds);
            let mut failed = None;
            'seeds: for k in 0..n_seeds {
                let opts = Options {
                    seed: opts.seed + k as u64,
                    ..opts.clone()
                };
                let first = units.len();
                for unit in 0..n_units {
                    let r = if variant.detects() {
                        run_unit(ds, &cfg, unit, variant, &opts, dev)
                    } else {
                        run_fidelity(ds, &cfg, &opts, dev)
                    };
                    let r = r.with_context(|| {
                        format!("{} {} unit {unit} seed {}", ds.id, variant.id(), opts.seed)
                    });
                    match r {
                        Ok(u) => units.push(u),
                        Err(e) => {
                            failed = Some(e);
                            break 'seeds;
                        }
                    }
                }
                per_seed.push(mean_metrics(&units[first..]));
            }
            if let Some(e) = failed {
                // One cell's failure is reported and the benchmark goes on with the others.
                eprintln!("error: {e:#}");
                continue;
            }
            let wall_s = t0.elapsed().as_secs_f64();
            let metrics = mean_metrics(&units);
            if !opts.quiet {
                match &metrics.fidelity {
                    Some(f) => println!(
                        "{:<60} {:<13} C2ST {:.3}/{:.3}  FD {}  ({wall_s:.0} s)",
                        ds.id,
                        variant.id(),
                        f.c2st_logistic,
                        f.c2st_knn,
                        f.fd_generated.map_or("-".into(), fmt2),
                    ),
                    None => println!(
                        "{:<60} {:<13} AUROC {:.3}  AUPRC {:.3}  ({wall_s:.0} s)",
                        ds.id,
                        variant.id(),
                        metrics.auroc,
                        metrics.auprc
                    ),
                }
            }
            let rec = Record {
                dataset: ds.id.clone(),
                group: ds.group.to_string(),
                variant: variant.id().to_string(),
                method: variant.label().to_string(),
                metrics,
                per_unit: units,
                seeds: (0..n_seeds as u64).map(|k| opts.seed + k).collect(),
                seed_range: if n_seeds > 1 {
                    seed_ranges(&per_seed)
                } else {
                    BTreeMap::new()
                },
                wall_s,
                train_steps: if variant == Variant::Dte || variant.patchcore_ratio().is_some() {
                    0
                } else {
                    cfg.train.steps
                },
                budget: args.budget,
                command: args.command.clone(),
                generated: utc_now(),
                config: serde_json::to_value(&cfg)?,
            };
            let text = serde_json::to_string_pretty(&rec)?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            write_report(args, &all)?;
        }
    }
    write_report(args, &all)?;
    println!("report: {}", args.report.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::config::base_config;
    use super::fidelity::{evenly_spaced, normal_test_samples, FIDELITY_STEPS};
    use super::report::{group_modality, missing, write_fidelity};
    use super::*;

    #[test]
    fn short_ids() {
        assert_eq!(
            short_id("timeseries/ucr-anomaly/135_UCR_Anomaly_InternalBleeding16_1200_4187_4199"),
            "UCR 135 InternalBleeding16"
        );
        assert_eq!(short_id("tabular/wbc"), "wbc");
    }

    #[test]
    fn a_held_out_image_takes_its_flips_with_it() {
        let x = Tensor::arange(0u32, 15, &Device::Cpu).unwrap();
        let (fit, held) = hold_out(&x, 1).unwrap();
        assert_eq!(held.to_vec1::<u32>().unwrap(), [0, 5, 10]);
        assert_eq!(fit.dim(0).unwrap(), 12);
        // Ten images and their two flips: image 0 and 5 are held out with their copies.
        let x = Tensor::arange(0u32, 30, &Device::Cpu).unwrap();
        let (fit, held) = hold_out(&x, 3).unwrap();
        assert_eq!(held.to_vec1::<u32>().unwrap(), [0, 5, 10, 15, 20, 25]);
        assert_eq!(fit.dim(0).unwrap(), 24);
        let e = hold_out(&Tensor::arange(0u32, 10, &Device::Cpu).unwrap(), 3).unwrap_err();
        assert!(e.to_string().contains("not 3 copies"), "{e}");
    }

    #[test]
    fn flag_shares_count_scores_at_the_threshold() {
        let (flagged, all) = flag_shares(&[0.1, 0.5, 0.5, 0.9], &[0, 0, 1, 1], 0.5);
        assert!((flagged - 0.75).abs() < 1e-12);
        // p = 0.5: flagging all gives precision 0.5, recall 1, F1 2/3.
        assert!((all - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn per_kind_auroc() {
        let scores = [0.1, 0.2, 0.9, 0.3, 0.8];
        let labels = [0, 0, 1, 1, 1];
        let kinds: Vec<String> = ["good", "good", "a", "b", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let k = per_kind(&scores, &labels, &kinds).unwrap();
        assert_eq!(k["a"], 1.0);
        assert_eq!(k["b"], 1.0);
        let one: Vec<String> = ["good", "a", "a"].iter().map(|s| s.to_string()).collect();
        let k = per_kind(&[0.1, 0.5, 0.2], &[0, 1, 1], &one).unwrap();
        assert!(k.is_empty(), "one kind only: no per-kind table");
    }

    /// A DCASE-style folder of one-second clips at 4 kHz: `train` normal tones, `test` tones
    /// and tones with clicks.
    fn tiny_audio_folder(dir: &Path, n_train: usize) {
        use dmad::generate::io::write_wav;
        let rate = 4000u32;
        let tone = |i: usize, click: bool| -> Vec<f32> {
            (0..rate as usize)
                .map(|t| {
                    let x = t as f32 / rate as f32;
                    let f = 300.0 + 10.0 * i as f32;
                    let mut v = 0.4 * (std::f32::consts::TAU * f * x + i as f32).sin();
                    if click && t % 997 < 8 {
                        v += 0.5;
                    }
                    v
                })
                .collect()
        };
        std::fs::create_dir_all(dir.join("train")).unwrap();
        std::fs::create_dir_all(dir.join("test")).unwrap();
        for i in 0..n_train {
            let p = dir.join(format!("train/normal_{i:03}.wav"));
            write_wav(p, &tone(i, false), rate).unwrap();
        }
        for i in 0..3 {
            let p = dir.join(format!("test/normal_{i:03}.wav"));
            write_wav(p, &tone(i + 50, false), rate).unwrap();
            let p = dir.join(format!("test/anomaly_00_click_{i:03}.wav"));
            write_wav(p, &tone(i + 60, true), rate).unwrap();
        }
    }

    fn tiny_audio_config(ds: &Dataset) -> DetectorConfig {
        let mut cfg = base_config(ds, 0, 1.0);
        cfg.input.sample_rate = 4000;
        cfg.input.scales = 16;
        cfg.input.image_size = 16;
        cfg.train.steps = 2;
        cfg.train.lr_warmup_steps = 0;
        cfg
    }

    #[test]
    fn the_calibrated_audio_cell_injects_into_the_held_out_waveforms() {
        let dir = tempfile::tempdir().unwrap();
        tiny_audio_folder(dir.path(), 15);
        let ds = Dataset {
            id: "audio/tiny".into(),
            group: "audio",
            source: Source::Audio(dir.path().to_path_buf()),
        };
        let cfg = tiny_audio_config(&ds);
        // The waveforms line up with prepare::audio's scalograms, clip by clip.
        let waves = audio_train_waves(dir.path(), &cfg.input, &Device::Cpu).unwrap();
        assert_eq!(waves.dims(), &[15, 4000]);
        let scalograms = prepare::audio(dir.path(), Split::Train, &cfg.input, &Device::Cpu)
            .unwrap()
            .x;
        let transform = prepare::audio_transform(&cfg.input).unwrap();
        let first = waves.get(3).unwrap().to_vec1::<f32>().unwrap();
        let again = transform.forward(&first, &Device::Cpu).unwrap().image;
        let diff = (again - scalograms.get(3).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff <= 1e-6, "clip 3's scalogram differs by {diff}");

        let opts = Options {
            seed: 0,
            quiet: true,
        };
        let m = run_unit(&ds, &cfg, 0, Variant::Calibrated, &opts, &Device::Cpu).unwrap();
        let s = m.calibrated_strength.expect("a calibrated strength");
        assert!(CALIBRATION_STRENGTHS.contains(&s), "strength {s}");
        let g = m.generated_auroc.expect("an AUROC on generated anomalies");
        assert!((0.0..=1.0).contains(&g));
        assert!((0.0..=1.0).contains(&m.auroc));
        assert!(m.f1_at_threshold.is_some());
        assert!(m.pauc_01.is_some());
        assert!(m.flagged.is_some_and(|f| (0.0..=1.0).contains(&f)));
        // Three anomalies of six test clips.
        assert!((m.f1_flag_all.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_missing_audio_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let input = DetectorConfig::for_audio().input;
        let e = audio_train_waves(&dir.path().join("nope"), &input, &Device::Cpu).unwrap_err();
        assert!(format!("{e:#}").contains("nope"), "{e:#}");
        std::fs::create_dir_all(dir.path().join("empty/train")).unwrap();
        let e = audio_train_waves(&dir.path().join("empty"), &input, &Device::Cpu).unwrap_err();
        assert!(format!("{e:#}").contains("no training clip"), "{e:#}");
    }

    #[test]
    fn the_fidelity_cell_of_an_audio_set_records_two_sample_tests() {
        let dir = tempfile::tempdir().unwrap();
        tiny_audio_folder(dir.path(), 8);
        let ds = Dataset {
            id: "audio/tiny".into(),
            group: "audio",
            source: Source::Audio(dir.path().to_path_buf()),
        };
        let mut cfg = tiny_audio_config(&ds);
        Variant::Fidelity.apply(&mut cfg);
        let opts = Options {
            seed: 0,
            quiet: true,
        };
        let m = run_fidelity(&ds, &cfg, &opts, &Device::Cpu).unwrap();
        assert!(m.auroc.is_nan());
        let f = m.fidelity.clone().expect("fidelity figures");
        assert_eq!((f.generated, f.reference, f.steps), (8, 3, FIDELITY_STEPS));
        for a in [f.c2st_logistic, f.c2st_knn] {
            assert!((0.0..=1.0).contains(&a), "{a}");
        }
        // Three normal test clips are too few for the reference test.
        assert_eq!(f.reference_c2st_logistic, None);
        let note = f.note.clone().unwrap();
        assert!(note.contains("3 normal test samples"), "{note}");
        if std::env::var_os(EFFICIENTNET_ENV).is_none() {
            assert_eq!(f.fd_generated, None);
            assert!(note.contains(EFFICIENTNET_ENV), "{note}");
        }

        // The record keeps NaN detection metrics through JSON (as null) and the report
        // renders its row.
        let rec = Record {
            dataset: ds.id.clone(),
            group: "audio".into(),
            variant: "fidelity".into(),
            method: Variant::Fidelity.label().into(),
            metrics: mean_metrics(std::slice::from_ref(&m)),
            per_unit: vec![m],
            seeds: vec![0],
            seed_range: BTreeMap::new(),
            wall_s: 1.0,
            train_steps: 2,
            budget: 1.0,
            command: "dmad bench".into(),
            generated: utc_now(),
            config: Value::Null,
        };
        let text = serde_json::to_string(&rec).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert!(back.metrics.auroc.is_nan());
        assert_eq!(back.metrics.fidelity, Some(f));
        let mut md = String::new();
        write_fidelity(&mut md, &[back]);
        assert!(md.contains("| tiny | 8 / 3 |"), "{md}");
        // One header, one rule and one row, each of nine cells.
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 3, "{md}");
        assert!(table[1].starts_with("|---|"), "{md}");
        for l in &table {
            assert_eq!(l.matches('|').count(), 9, "{l}");
        }
        assert!(!md.contains("  "), "stray indentation: {md}");
    }

    #[test]
    fn normal_test_windows_hold_no_anomalous_point() {
        let test = Tensor::arange(0f32, 4.0 * 4.0, &Device::Cpu)
            .unwrap()
            .reshape((4, 1, 4))
            .unwrap();
        // Points 0..10, the anomaly at point 5: windows at 0, 2, 4, 6 of length 4.
        let mut labels = vec![0u8; 10];
        labels[5] = 1;
        let task = SeriesTask {
            name: "toy".into(),
            train: test.clone(),
            test,
            test_starts: vec![0, 2, 4, 6],
            window: 4,
            test_labels: labels,
            test_offset: 0,
            anomaly: None,
        };
        let n = normal_test_samples(&TestSet::Points(task)).unwrap();
        let first: Vec<f32> = n.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(n.dims(), &[2, 1, 4]);
        // Windows 0 (points 0-3) and 3 (points 6-9).
        assert_eq!(first[0], 0.0);
        assert_eq!(first[4], 12.0);
        let x = Tensor::arange(0f32, 10.0, &Device::Cpu).unwrap();
        let e: Vec<f32> = evenly_spaced(&x, 4).unwrap().to_vec1().unwrap();
        assert_eq!(e, [0.0, 2.0, 5.0, 7.0]);
        assert_eq!(evenly_spaced(&x, 20).unwrap().dim(0).unwrap(), 10);
    }

    #[test]
    fn variants_apply() {
        let mut c = DetectorConfig::for_images(1);
        Variant::Ddpm.apply(&mut c);
        assert_eq!(
            c.network.modules_mut().cloned(),
            Some(dmad::unet::ModulesConfig::none())
        );
        let mut c = DetectorConfig::for_images(1);
        Variant::NoWavelet.apply(&mut c);
        let m = c.network.modules_mut().unwrap();
        assert!(!m.wavelet_pyramid && m.multi_head_attention);
        assert!(!Variant::NoAdapter.applies(Modality::Table));
        assert!(Variant::Dte.applies(Modality::Table));
        // DTE takes every series window, as the classical peers do; other modalities keep
        // their input preparation.
        let mut c = DetectorConfig::for_series(1);
        c.input.train_stride = 4;
        c.input.test_stride = 4;
        Variant::Dte.apply(&mut c);
        assert_eq!(c.scorer, ScorerConfig::Dte { k: 5 });
        assert_eq!((c.input.train_stride, c.input.test_stride), (1, 1));
        let mut c = DetectorConfig::for_images(1);
        let before = (c.input.train_stride, c.input.test_stride);
        Variant::Dte.apply(&mut c);
        assert_eq!((c.input.train_stride, c.input.test_stride), before);
        // The perceptual term exists for images and scalograms only.
        let mut c = DetectorConfig::for_images(1);
        Variant::Combined.apply(&mut c);
        assert_eq!(c.scorer, ScorerConfig::Combined { lambda: 0.5 });
        let mut c = DetectorConfig::for_images(1);
        Variant::CombinedCalibrated.apply(&mut c);
        assert_eq!(c.scorer, ScorerConfig::Reconstruction);
        for v in [Variant::Combined, Variant::CombinedCalibrated] {
            assert!(v.applies(Modality::Image) && v.applies(Modality::Audio));
            assert!(!v.applies(Modality::Series) && !v.applies(Modality::Table));
        }
        assert!(Variant::CombinedCalibrated.calibrates() && !Variant::Combined.calibrates());
        // The imputation recipe and its ablations are for series only; each ablation turns
        // its module off and keeps the imputation network and scorer.
        let mut c = DetectorConfig::series_imputation(1, 64);
        Variant::ImputationNoAdapter.apply(&mut c);
        let m = c.network.modules_mut().unwrap();
        assert!(!m.input_adapter && m.wavelet_pyramid && m.hybrid_time_embedding);
        assert!(c.scorer.scores_steps() && c.train.imputation.is_some());
        for v in [Variant::Imputation, Variant::ImputationDdpm] {
            assert!(v.applies(Modality::Series) && !v.applies(Modality::Image));
        }
    }

    #[test]
    fn empty_cells_say_whether_the_variant_exists() {
        assert_eq!(missing("- adapter", Some(Modality::Table)), " n/a |");
        assert_eq!(missing("full, combined", Some(Modality::Series)), " n/a |");
        assert_eq!(missing("full, combined", Some(Modality::Audio)), " - |");
        assert_eq!(missing("DTE", Some(Modality::Table)), " - |");
        assert_eq!(missing("KNN", Some(Modality::Table)), " - |");
        assert_eq!(missing("- adapter", group_modality("tables")), " n/a |");
    }
}
