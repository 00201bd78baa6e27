//! Scoring test data: reading it as the model was fitted, the scores and maps, and the metrics
//! where the data has labels.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use dmad::data::{NonFinite, Split};
use dmad::prepare::{self, Labelled, SeriesTask};
use dmad::{Detector, Modality, Report};
use serde::Serialize;

use super::{bar, check_finite, is_ucr, DataSpec, Lines, Options};
use crate::layout::{self, Purpose, Source};
use crate::model::DataInfo;

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
    /// Whether the data has labels (an MVTec or DCASE test folder, a labelled table or
    /// series); unlabelled data gets scores but no metrics.
    pub labelled: bool,
}

/// The test data at `spec` for `det`, whether it is labelled, and the series task of series.
fn test_data(
    det: &Detector,
    info: Option<&DataInfo>,
    spec: &DataSpec,
    non_finite: NonFinite,
    dev: &Device,
) -> Result<(Labelled, Option<SeriesTask>, bool)> {
    let cfg = det.config();
    let input = &cfg.input;
    let modality = cfg.modality;
    let source = layout::resolve(modality, &spec.path, Purpose::Score)?;
    Ok(match (modality, source) {
        (Modality::Image, Source::Structured(root)) => (
            prepare::images(&root, Split::Test, input.image_size, input.channels, dev)?,
            None,
            true,
        ),
        (Modality::Image, Source::Files(files)) => {
            if let Some(w) = layout::channel_warning(cfg, &files) {
                eprintln!("{w}");
            }
            (
                prepare::image_files(&files, input.image_size, input.channels, dev)?,
                None,
                false,
            )
        }
        (Modality::Audio, source) => {
            let files: Vec<PathBuf> = match &source {
                Source::Structured(root) => layout_wavs(&root.join("test")),
                Source::Files(f) => f.clone(),
                Source::File(f) => vec![f.clone()],
            };
            check_rates(det, info, &files)?;
            match source {
                Source::Structured(root) => {
                    (prepare::audio(&root, Split::Test, input, dev)?, None, true)
                }
                _ => (prepare::audio_files(&files, input, dev)?, None, false),
            }
        }
        (Modality::Series, _) if !is_ucr(&spec.path) => {
            let Some(stats) = info.and_then(|i| i.series.as_ref()) else {
                bail!(
                    "{} is not a UCR Anomaly Archive file, and the model does not record the \
                     statistics of plain series (it was fitted on UCR files, or saved without \
                     data.json): fit a model on plain series files to score them",
                    spec.path.display()
                );
            };
            let normaliser = dmad::data::Normaliser {
                mean: stats.mean.clone(),
                std: stats.std.clone(),
            };
            let p = prepare::plain_series(
                &spec.path,
                input.window,
                input.test_stride,
                non_finite,
                Some(&normaliser),
                dev,
            )?;
            let points = p.series.len();
            let task = SeriesTask {
                name: spec.path.display().to_string(),
                train: p.windows.narrow(0, 0, 0)?,
                test: p.windows.clone(),
                test_starts: p.starts,
                window: input.window,
                test_labels: vec![0; points],
                test_offset: 0,
                anomaly: None,
            };
            let l = Labelled {
                x: p.windows,
                labels: vec![],
                kinds: vec![],
                sources: vec![],
                masks: None,
            };
            (l, Some(task), false)
        }
        (Modality::Series, _) => {
            let task = prepare::ucr_series_with(
                &spec.path,
                input.window,
                input.train_stride,
                input.test_stride,
                non_finite,
                dev,
            )?;
            let labelled = Labelled {
                x: task.test.clone(),
                labels: vec![],
                kinds: vec![],
                sources: vec![],
                masks: None,
            };
            (labelled, Some(task), true)
        }
        (Modality::Table, _) => {
            let (_, labelled) = prepare::read_table(&spec.path, NonFinite::Impute)
                .with_context(|| format!("reading the table {}", spec.path.display()))?;
            let saved = info.and_then(|i| i.table.as_ref());
            match (labelled || spec.split.is_some(), saved) {
                (true, _) => {
                    let t = prepare::table_with(
                        &spec.path,
                        spec.split.as_deref(),
                        spec.split_index,
                        non_finite,
                        dev,
                    )?;
                    (t.test, None, true)
                }
                (false, Some(columns)) => {
                    let (rows, _) = prepare::table_rows(&spec.path, columns, non_finite, dev)?;
                    (rows, None, false)
                }
                (false, None) => bail!(
                    "{} has no label column, and the model does not record the statistics of \
                     its training columns (it was saved without data.json): refit it with this \
                     dmad, or add a `label` column",
                    spec.path.display()
                ),
            }
        }
        (m, source) => bail!("cannot read {source:?} as {m} data"),
    })
}

fn layout_wavs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    out.sort();
    out
}

/// Audio: each clip's sample rate must be one the model's training clips had (when the model
/// records them); a clip at another rate has another band, and its scores would mislead.
fn check_rates(det: &Detector, info: Option<&DataInfo>, files: &[PathBuf]) -> Result<()> {
    let Some(rates) = info.map(|i| &i.sample_rates).filter(|r| !r.is_empty()) else {
        return Ok(());
    };
    for f in files {
        let Ok((rate, _, _)) = dmad::data::audio::wav_info(f) else {
            continue; // the loader names a bad file
        };
        if !rates.contains(&rate) {
            let list: Vec<String> = rates.iter().map(|r| format!("{r} Hz")).collect();
            bail!(
                "model/data mismatch: the model was trained on clips at {} (resampled to {} \
                 Hz); {} is {rate} Hz: resample it to the training rate, or fit a model on \
                 clips like it",
                list.join(", "),
                det.config().input.sample_rate,
                f.display()
            );
        }
    }
    Ok(())
}

/// Scores the test data at `spec`.
pub fn score_test(det: &Detector, spec: &DataSpec, opts: &Options) -> Result<Scored> {
    score_data(det, None, spec, NonFinite::Reject, opts)
}

/// Scores the data at `spec` (a labelled test set, or unlabelled data) with `det`, using
/// what `info` (the model's `data.json`) records about the training data.
pub fn score_data(
    det: &Detector,
    info: Option<&DataInfo>,
    spec: &DataSpec,
    non_finite: NonFinite,
    opts: &Options,
) -> Result<Scored> {
    let dev = det.device().clone();
    let (test, task, labelled) = test_data(det, info, spec, non_finite, &dev)
        .with_context(|| format!("reading the data at {}", spec.path.display()))?;
    check_finite(&test)?;
    // The detector batches (and seeds each batch's noise) itself: one call scores the set
    // exactly as the library would.
    let total = test.x.dim(0)?;
    let pb = bar(opts.quiet, total as u64, "scoring");
    let mut lines = Lines::new(opts.quiet, "scoring");
    if !opts.quiet {
        eprintln!(
            "scoring {total} {} samples from {}",
            det.config().modality,
            spec.path.display()
        );
    }
    let scored = det.score_with_progress(&test.x, |done, total| {
        pb.set_position(done as u64);
        lines.tick(done, total, "samples");
    })?;
    pb.finish_and_clear();
    let (scores, maps) = (scored.scores, scored.maps);
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        bail!(
            "the model gives a non-finite score ({}) to {}: its weights or calibration are \
             corrupt (refit it), or the input is out of range",
            scores[i],
            test.sources
                .get(i)
                .map_or(format!("sample {i}"), |s| s.to_string())
        );
    }
    let threshold = det.threshold()?.value;
    let name = spec
        .path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(task) = task {
        let points = task.detector_points(
            det,
            &dmad::Scores {
                scores: scores.clone(),
                maps: maps.clone(),
            },
        )?;
        let values = if labelled {
            let mut split = dmad::data::load_ucr_anomaly(&spec.path)?.0;
            dmad::data::resolve_series(&mut split.test, &spec.path, NonFinite::Impute)?;
            split.test.values
        } else {
            let mut s = dmad::data::read_plain_series(&spec.path)?;
            dmad::data::resolve_series(&mut s, &spec.path, NonFinite::Impute)?;
            s.channel(0)
        };
        return Ok(Scored {
            name,
            labels: task.test_labels.clone(),
            kinds: vec![],
            sources: vec![],
            scores: points,
            inputs: None,
            maps: None,
            masks: None,
            series: Some(values),
            series_task: Some(task),
            threshold,
            labelled,
        });
    }
    Ok(Scored {
        name,
        scores,
        labels: test.labels,
        kinds: test.kinds,
        sources: test.sources,
        // Images, scalograms and log-mel images are drawn under their maps; log-mel rows are
        // not images.
        inputs: (matches!(det.config().modality, Modality::Image | Modality::Audio)
            && !det.config().log_mel_rows())
        .then_some(test.x),
        maps,
        masks: test.masks,
        series: None,
        series_task: None,
        threshold,
        labelled,
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
    if !scored.labelled {
        bail!(
            "{} has no labels, so there is nothing to evaluate against: `dmad eval` needs \
             labelled data (an MVTec folder with test/good and defect folders, a DCASE folder \
             with test/, a table with a `label` column); `dmad score` scores unlabelled data",
            scored.name
        );
    }
    if scored.labels.is_empty() || scored.labels.iter().all(|&l| l == scored.labels[0]) {
        bail!(
            "the test data of {} has one class only ({} samples, all {}): metrics need normal \
             and anomalous samples",
            scored.name,
            scored.labels.len(),
            if scored.labels.first() == Some(&1) {
                "anomalous"
            } else {
                "normal"
            }
        );
    }
    let anomalous = scored.labels.iter().filter(|&&l| l != 0).count();
    let normal = scored.labels.len() - anomalous;
    if normal < 10 || anomalous < 10 {
        eprintln!(
            "warning: a small test set ({normal} normal, {anomalous} anomalous samples): AUROC \
             moves in steps of {:.3} and the metrics can change a lot with one sample",
            1.0 / (normal.max(1) * anomalous.max(1)) as f64
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
