//! From files to tensors, per modality: the preparation that the command line, the examples
//! and the benchmark share, so that each modality's protocol is written once.
//!
//! - Images: MVTec AD folders ([`images`]).
//! - Series: the UCR Anomaly Archive ([`ucr_series`]), NAB, labelled CSV and GutenTAG
//!   ([`series`]), windowed; UCR/UEA classification sets one-class ([`ucr_one_class`]).
//! - MNIST-style NPY images one-class ([`npy_one_class`]).
//! - Audio: DCASE task-2 folders as CWT scalograms or log-mel statistics ([`audio`]).
//! - Tables: a CSV with a label column and, optionally, a split file ([`table`]).

use std::path::Path;

use candle_core::{Device, Tensor};
use dmad_data::{Dataset, ImageConfig, ImageFolder, Split};

use crate::Result;

mod audio;

pub use audio::{audio, audio_files, audio_transform, audio_waves, log_mel_transform, AudioInput};

/// Samples with their labels (0 normal, 1 anomalous).
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The samples `[n, ...]`.
    pub x: Tensor,
    /// One label per sample.
    pub labels: Vec<u8>,
    /// The kind of each sample (the defect type, `good`, ...).
    pub kinds: Vec<String>,
    /// Where each sample came from.
    pub sources: Vec<String>,
    /// Pixel masks `[n, H, W]` in `{0, 1}` where the data has them.
    pub masks: Option<Tensor>,
}

/// Loads an MVTec AD split (`train/good`, or every folder of `test/` with masks where
/// `ground_truth/` has them) as grey or RGB `size x size` images in `[-1, 1]`.
///
/// # Errors
/// Errors of the loader, naming the bad file.
pub fn images(
    root: impl AsRef<Path>,
    split: Split,
    size: u32,
    channels: usize,
    device: &Device,
) -> Result<Labelled> {
    let mut cfg = ImageConfig::new(size, size);
    if channels == 3 {
        cfg.color = dmad_data::ColorMode::Rgb;
    }
    let root = root.as_ref();
    let folder = ImageFolder::mvtec(root, split, &cfg)?;
    if folder.is_empty() {
        let part = match split {
            Split::Train => "train/good",
            Split::Test => "test/*",
        };
        return Err(no_files(
            &root.join(part),
            "no images: expected PNG, JPEG, BMP or TIFF files",
        ));
    }
    stack_images(&folder, device)
}

fn no_files(path: &Path, reason: &str) -> crate::Error {
    crate::Error::Data(dmad_data::Error::InvalidInput {
        path: path.to_path_buf(),
        line: None,
        field: None,
        reason: reason.to_string(),
    })
}

/// Loads image files (a plain folder's, one file, the matches of a pattern) as grey or RGB
/// `size x size` images in `[-1, 1]`, unlabelled (label 0, kind empty, no masks).
///
/// # Errors
/// Errors of the loader, naming the bad file; [`dmad_data::Error::InvalidInput`] for an empty
/// list.
pub fn image_files(
    files: &[std::path::PathBuf],
    size: u32,
    channels: usize,
    device: &Device,
) -> Result<Labelled> {
    let mut cfg = ImageConfig::new(size, size);
    if channels == 3 {
        cfg.color = dmad_data::ColorMode::Rgb;
    }
    let folder = ImageFolder::files(files, &cfg)?;
    if folder.is_empty() {
        return Err(no_files(Path::new("."), "no image files given"));
    }
    stack_images(&folder, device)
}

fn stack_images(folder: &ImageFolder, device: &Device) -> Result<Labelled> {
    let mut xs = Vec::with_capacity(folder.len());
    let mut out = Labelled {
        x: Tensor::zeros(0, candle_core::DType::F32, device)?,
        labels: vec![],
        kinds: vec![],
        sources: vec![],
        masks: None,
    };
    let mut masks = Vec::new();
    for i in 0..folder.len() {
        let s = folder.get(i)?;
        xs.push(s.image.to_device(device)?);
        out.labels.push(s.label);
        out.kinds.push(s.kind);
        out.sources.push(s.source);
        if let Some(m) = s.mask {
            masks.push(m.to_device(device)?);
        }
    }
    out.x = Tensor::stack(&xs, 0)?;
    if !masks.is_empty() && masks.len() == xs.len() {
        out.masks = Some(Tensor::cat(&masks, 0)?);
    }
    Ok(out)
}

/// Adds the horizontal and vertical flips of each image (`[n, C, H, W]` to `[3n, C, H, W]`):
/// cheap augmentation for small training sets of textures.
///
/// # Errors
/// Errors of candle.
pub fn with_flips(x: &Tensor) -> Result<Tensor> {
    let h = x.dim(2)?;
    let w = x.dim(3)?;
    let rev = |n: usize| -> Result<Tensor> {
        Ok(Tensor::from_vec(
            (0..n as u32).rev().collect::<Vec<_>>(),
            n,
            x.device(),
        )?)
    };
    let fh = x.index_select(&rev(w)?, 3)?;
    let fv = x.index_select(&rev(h)?, 2)?;
    Ok(Tensor::cat(&[x, &fh, &fv], 0)?)
}

/// A windowed series task: train windows, test windows and how test windows map back to the
/// test points.
#[derive(Debug, Clone)]
pub struct SeriesTask {
    /// The series' name.
    pub name: String,
    /// Train windows `[n, dims, window]`, normalised with the train part's statistics.
    pub train: Tensor,
    /// Test windows `[m, dims, window]`, normalised the same way.
    pub test: Tensor,
    /// The first point of each test window (in test coordinates).
    pub test_starts: Vec<usize>,
    /// The window length.
    pub window: usize,
    /// Labels of the test points.
    pub test_labels: Vec<u8>,
    /// The offset of the test part in the whole series.
    pub test_offset: usize,
    /// The anomaly `[begin, end)` in whole-series coordinates, for the UCR top-1 hit.
    pub anomaly: Option<(usize, usize)>,
}

impl SeriesTask {
    /// Maps one score per test window (or a per-step map `[m, window]`) to one score per test
    /// point, taking the mean over the windows that cover a point (a score peaks where the
    /// anomaly is, instead of spreading over every window that touches it). Not smoothed:
    /// [`SeriesTask::detector_points`] is what a detector's scores need.
    ///
    /// # Errors
    /// Errors of the mapping (lengths that do not fit).
    pub fn point_scores(&self, window_scores: &[f32], maps: Option<&Tensor>) -> Result<Vec<f32>> {
        crate::series::covering_mean(
            window_scores,
            maps,
            &self.test_starts,
            self.window,
            self.test_labels.len(),
        )
    }

    /// The test points' scores from `det`'s scores of the test windows, as
    /// [`crate::series::point_scores`]: per-step maps where the scorer scores steps, smoothed
    /// by `scoring.point_sigma`.
    ///
    /// # Errors
    /// Errors of the mapping (lengths that do not fit).
    pub fn detector_points(
        &self,
        det: &crate::Detector,
        scored: &crate::Scores,
    ) -> Result<Vec<f32>> {
        crate::series::point_scores(
            det,
            scored,
            &self.test_starts,
            self.window,
            self.test_labels.len(),
        )
    }
}

/// Normalises a split series with its train part's statistics and cuts train windows (stride
/// `train_stride`) and test windows (stride `test_stride`). `anomaly` is the UCR anomaly
/// `[begin, end)` in whole-series coordinates, where there is one.
///
/// # Errors
/// Errors of windowing (a part shorter than one window).
pub fn series_task(
    mut split: dmad_data::SeriesSplit,
    window: usize,
    train_stride: usize,
    test_stride: usize,
    anomaly: Option<(usize, usize)>,
    device: &Device,
) -> Result<SeriesTask> {
    split.normalise();
    let (train, _) = dmad_data::windows(&split.train, window, train_stride, device)?;
    let (test, test_starts) = dmad_data::windows(&split.test, window, test_stride, device)?;
    Ok(SeriesTask {
        name: split.name.clone(),
        train,
        test,
        test_starts,
        window,
        test_labels: split.test.labels.clone(),
        test_offset: split.test_offset,
        anomaly,
    })
}

/// Loads a UCR Anomaly Archive file, normalises it with the train part's statistics, and cuts
/// train windows (stride `train_stride`) and test windows (stride `test_stride`).
///
/// # Errors
/// Errors of the loader (a file name that does not match the archive's pattern, a bad value).
pub fn ucr_series(
    path: impl AsRef<Path>,
    window: usize,
    train_stride: usize,
    test_stride: usize,
    device: &Device,
) -> Result<SeriesTask> {
    let (split, name) = dmad_data::load_ucr_anomaly(path)?;
    series_task(
        split,
        window,
        train_stride,
        test_stride,
        Some((name.begin, name.end)),
        device,
    )
}

/// As [`ucr_series`], with a policy for NaN and infinite points (the loader itself reads
/// `NaN` as a value): [`dmad_data::NonFinite::Reject`] fails naming the file and the point.
///
/// # Errors
/// As [`ucr_series`]; [`dmad_data::Error::NonFinite`] naming the point (in whole-series
/// coordinates).
pub fn ucr_series_with(
    path: impl AsRef<Path>,
    window: usize,
    train_stride: usize,
    test_stride: usize,
    non_finite: dmad_data::NonFinite,
    device: &Device,
) -> Result<SeriesTask> {
    let (split, name) = ucr_split_with(path, non_finite)?;
    series_task(
        split,
        window,
        train_stride,
        test_stride,
        Some((name.begin, name.end)),
        device,
    )
}

/// A UCR Anomaly Archive file's split, NaN and infinite points treated by `non_finite` (a
/// test point named in whole-series coordinates), not normalised.
///
/// # Errors
/// As [`ucr_series_with`].
pub fn ucr_split_with(
    path: impl AsRef<Path>,
    non_finite: dmad_data::NonFinite,
) -> Result<(dmad_data::SeriesSplit, dmad_data::UcrAnomalyName)> {
    let path = path.as_ref();
    let (mut split, name) = dmad_data::load_ucr_anomaly(path)?;
    dmad_data::resolve_series(&mut split.train, path, non_finite)?;
    let offset = split.test_offset;
    dmad_data::resolve_series(&mut split.test, path, non_finite).map_err(|e| match e {
        dmad_data::Error::NonFinite {
            path,
            row,
            line,
            column,
            value,
        } => dmad_data::Error::NonFinite {
            path,
            row: row + offset,
            line,
            column,
            value,
        },
        e => e,
    })?;
    Ok((split, name))
}

/// A plain (unlabelled) series file as windows for a model: [`dmad_data::read_plain_series`],
/// with a policy for NaN and infinite points, standardised per channel.
#[derive(Debug, Clone)]
pub struct PlainSeries {
    /// The windows `[n, dims, window]`.
    pub windows: Tensor,
    /// The first point of each window.
    pub starts: Vec<usize>,
    /// The series, standardised, time-major `[points, dims]`.
    pub series: dmad_data::Series,
    /// The per-channel statistics it was standardised with.
    pub normaliser: dmad_data::Normaliser,
}

/// Reads the plain series file at `path` and cuts windows of `window` points every `stride`,
/// standardised with `stats` (a model's training statistics) or, without them, the file's
/// own (for a fit).
///
/// # Errors
/// Errors of the loader (naming the file, line and column); [`crate::Error::ShapeMismatch`]
/// for `stats` of another channel count; errors of windowing (a series shorter than a window).
pub fn plain_series(
    path: &Path,
    window: usize,
    stride: usize,
    non_finite: dmad_data::NonFinite,
    stats: Option<&dmad_data::Normaliser>,
    device: &Device,
) -> Result<PlainSeries> {
    let mut series = dmad_data::read_plain_series(path)?;
    dmad_data::resolve_series(&mut series, path, non_finite)?;
    let normaliser = match stats {
        Some(n) if n.mean.len() != series.dims => {
            return Err(crate::Error::ShapeMismatch {
                context: "series channels",
                expected: format!(
                    "{} channels (the model's), {} has {}",
                    n.mean.len(),
                    path.display(),
                    series.dims
                ),
                got: vec![series.len(), series.dims],
            })
        }
        Some(n) => n.clone(),
        None => dmad_data::Normaliser::fit(&series),
    };
    normaliser.apply(&mut series);
    let (windows, starts) = dmad_data::windows(&series, window, stride, device)?;
    Ok(PlainSeries {
        windows,
        starts,
        series,
        normaliser,
    })
}

/// A labelled series in any of the layouts of `data/PROTOCOL.md`, split as the protocol says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesSource {
    /// A UCR Anomaly Archive file (`NNN_UCR_Anomaly_<name>_<trainEnd>_<begin>_<end>.txt`).
    UcrAnomaly(std::path::PathBuf),
    /// A NAB series: the NAB root (with `data/` and `labels/`) and the key
    /// (`realKnownCause/nyc_taxi.csv`); the first 15% of points train.
    Nab(std::path::PathBuf, String),
    /// A labelled CSV (`value..., label`; Yahoo): the first 30% of points train.
    LabelledCsv(std::path::PathBuf),
    /// A GutenTAG pair in a folder: `<name>_TRAIN_NA.csv` trains, `<name>_TEST.csv` tests.
    Gutentag(std::path::PathBuf, String),
}

/// Loads a [`SeriesSource`] as a windowed [`SeriesTask`] (see [`series_task`]).
///
/// # Errors
/// Errors of the loaders, naming the file, and of windowing.
pub fn series(
    source: &SeriesSource,
    window: usize,
    train_stride: usize,
    test_stride: usize,
    device: &Device,
) -> Result<SeriesTask> {
    let (split, anomaly) = series_split(source)?;
    series_task(split, window, train_stride, test_stride, anomaly, device)
}

/// Loads a [`SeriesSource`] split as the protocol says, not normalised or windowed, with the
/// UCR anomaly `[begin, end)` (whole-series coordinates) where there is one.
///
/// # Errors
/// Errors of the loaders, naming the file.
pub fn series_split(
    source: &SeriesSource,
) -> Result<(dmad_data::SeriesSplit, Option<(usize, usize)>)> {
    Ok(match source {
        SeriesSource::UcrAnomaly(p) => {
            let (split, name) = dmad_data::load_ucr_anomaly(p)?;
            (split, Some((name.begin, name.end)))
        }
        SeriesSource::Nab(root, key) => (dmad_data::load_nab(root, key)?, None),
        SeriesSource::LabelledCsv(p) => (
            dmad_data::load_labelled_csv(p, &dmad_data::timeseries::CsvSeriesConfig::default())?,
            None,
        ),
        SeriesSource::Gutentag(dir, name) => (dmad_data::load_gutentag(dir, name)?, None),
    })
}

/// The dominant period of a series' train part ([`dmad_data::find_length`] on its first
/// channel): a window length chosen without looking at the test part.
pub fn train_period(train: &dmad_data::Series) -> usize {
    let first: Vec<f32> = train
        .values
        .iter()
        .step_by(train.dims.max(1))
        .copied()
        .collect();
    dmad_data::find_length(&first)
}

/// A window length for imputation diffusion from a period: two periods, rounded up to a
/// multiple of 8 (the U-Net halves it twice), within `[32, 512]`.
pub fn imputation_window(period: usize) -> usize {
    (2 * period).div_ceil(8).saturating_mul(8).clamp(32, 512)
}

/// The grating segment for imputation diffusion of a series with this period: about a fifth
/// of it, chosen so that the step one period away from a masked step falls in the grating's
/// other phase, where it is observed.
///
/// The imputer of a periodic series predicts a masked step best from the same phase of the
/// neighbouring period. With a segment of a quarter period (the first recipe: an eighth of a
/// two-period window) the grating's period, half the series' period, divided it: the same
/// phase of every period was masked together, the imputer never saw it, and on sharp
/// periodic shapes (GutenTAG's ECG beats) its error was as large on normal windows as on
/// anomalous ones (AUROC 0.51). Here, among the segments from an eighth to a third of the
/// period, those that put the step a period away in the other phase best (within 5 % of the
/// best share of masked steps whose partner is observed) are kept, and the one nearest a
/// fifth of the period is taken: 20 -> 4, 24 -> 8, 48 -> 16, 184 -> 37.
pub fn imputation_segment(period: usize) -> usize {
    if period < 3 {
        return 1;
    }
    let lo = (period / 8).max(1);
    let hi = period.div_ceil(3).max(lo);
    let best = (lo..=hi)
        .map(|s| opposite_phase_share(period, s))
        .fold(0.0, f64::max);
    let fifth = period as f64 / 5.0;
    (lo..=hi)
        .filter(|&s| opposite_phase_share(period, s) >= best - 0.05)
        .min_by(|&a, &b| {
            (a as f64 - fifth)
                .abs()
                .total_cmp(&(b as f64 - fifth).abs())
        })
        .unwrap_or(lo)
}

/// The share of a grating's masked steps (segments of `segment`, period `2 * segment`) whose
/// step `period` later is observed: 1 when `period` is an odd number of segments.
fn opposite_phase_share(period: usize, segment: usize) -> f64 {
    let r = (period % (2 * segment)) as f64;
    1.0 - (r - segment as f64).abs() / segment as f64
}

/// A UCR/UEA classification archive used one-class (`data/PROTOCOL.md`): the train rows of
/// the normal class and every test row, each series linearly resampled to `length` points
/// (missing values filled by linear interpolation within the row) and z-normalised on its
/// own, as `[n, channels, length]`.
///
/// # Errors
/// Errors of the loader; [`crate::Error::InvalidConfig`] for `length < 2`;
/// [`crate::Error::ShapeMismatch`] when rows have different channel counts.
pub fn ucr_one_class(
    dir: impl AsRef<Path>,
    length: usize,
    device: &Device,
) -> Result<(Tensor, Labelled)> {
    if length < 2 {
        return Err(crate::Error::InvalidConfig {
            field: "length",
            reason: format!("series length {length} is shorter than 2"),
        });
    }
    let dir = dir.as_ref();
    let oc = dmad_data::load_ucr_one_class(dir)?;
    let to_tensor = |rows: &[dmad_data::timeseries::ClassSeries]| -> Result<Tensor> {
        let dims = rows.first().map_or(1, |r| r.channels.len());
        let mut buf = Vec::with_capacity(rows.len() * dims * length);
        for r in rows {
            if r.channels.len() != dims {
                return Err(crate::Error::ShapeMismatch {
                    context: "UCR one-class rows",
                    expected: format!("{dims} channels"),
                    got: vec![r.channels.len()],
                });
            }
            for c in &r.channels {
                buf.extend(resample_row(c, length));
            }
        }
        Ok(Tensor::from_vec(buf, (rows.len(), dims, length), device)?)
    };
    let train = to_tensor(&oc.train)?;
    let x = to_tensor(&oc.test)?;
    let name = dir.display().to_string();
    Ok((
        train,
        Labelled {
            x,
            kinds: oc.test.iter().map(|r| r.class.clone()).collect(),
            sources: vec![name; oc.test.len()],
            labels: oc.test_labels,
            masks: None,
        },
    ))
}

/// Fills NaNs by linear interpolation (constant at the ends), resamples linearly to `length`
/// points and z-normalises (a constant row becomes zeros).
fn resample_row(x: &[f32], length: usize) -> Vec<f32> {
    let known: Vec<usize> = (0..x.len()).filter(|&i| x[i].is_finite()).collect();
    if known.is_empty() {
        return vec![0.0; length];
    }
    let mut filled = x.to_vec();
    for (i, v) in filled.iter_mut().enumerate() {
        if !v.is_finite() {
            let next = known.partition_point(|&k| k < i);
            *v = match (next.checked_sub(1).map(|j| known[j]), known.get(next)) {
                (Some(a), Some(&b)) => {
                    let w = (i - a) as f32 / (b - a) as f32;
                    x[a] + w * (x[b] - x[a])
                }
                (Some(a), None) => x[a],
                (None, Some(&b)) => x[b],
                (None, None) => 0.0,
            };
        }
    }
    let n = filled.len();
    let mut out: Vec<f32> = (0..length)
        .map(|j| {
            if n == 1 {
                return filled[0];
            }
            let pos = j as f64 * (n - 1) as f64 / (length - 1) as f64;
            let i = (pos.floor() as usize).min(n - 2);
            let w = (pos - i as f64) as f32;
            filled[i] + w * (filled[i + 1] - filled[i])
        })
        .collect();
    let mean = out.iter().map(|&v| v as f64).sum::<f64>() / length as f64;
    let var = out.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / length as f64;
    let std = if var > 1e-12 { var.sqrt() } else { 1.0 };
    for v in &mut out {
        *v = ((*v as f64 - mean) / std) as f32;
    }
    out
}

/// MNIST-style one-class images (`data/PROTOCOL.md`): the NPY images and labels, the train
/// images of class `digit` (index `i % 5 != 0`) and every test image (`i % 5 == 0`,
/// anomalous where the class is not `digit`), resized to `size x size` in `[-1, 1]`.
///
/// # Errors
/// Errors of the loader, naming the file.
pub fn npy_one_class(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    digit: i64,
    size: u32,
    device: &Device,
) -> Result<(Tensor, Labelled)> {
    let cfg = ImageConfig::new(size, size);
    let all = dmad_data::NpyImages::open(images, Some(labels.as_ref()), &cfg)?;
    let (train, test) = all.one_class(digit);
    let stack = |set: &dmad_data::NpyImages| -> Result<(Tensor, Vec<u8>)> {
        let mut xs = Vec::with_capacity(set.len());
        for i in 0..set.len() {
            xs.push(set.get(i)?.image.to_device(device)?);
        }
        Ok((Tensor::stack(&xs, 0)?, set.labels().to_vec()))
    };
    let (train, _) = stack(&train)?;
    let (x, labels) = stack(&test)?;
    let n = labels.len();
    Ok((
        train,
        Labelled {
            x,
            kinds: labels
                .iter()
                .map(|&l| if l == 1 { "other digit" } else { "normal" }.to_string())
                .collect(),
            sources: vec![format!("digit {digit}"); n],
            labels,
            masks: None,
        },
    ))
}

/// A table task: standardised normal train rows and labelled test rows.
#[derive(Debug, Clone)]
pub struct TableTask {
    /// Train rows `[n, features]` (normal only).
    pub train: Tensor,
    /// Test rows with labels (every row, labelled 0, for an unlabelled table).
    pub test: Labelled,
    /// The columns and the train rows' statistics the rows were standardised with.
    pub columns: TableColumns,
    /// Whether the file has labels (a label column, or an NPZ `y`).
    pub labelled: bool,
}

/// A table model's columns and the statistics of its training rows, saved with the model so
/// that new (unlabelled) rows are standardised exactly as the training rows were.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableColumns {
    /// The feature columns, in order.
    pub names: Vec<String>,
    /// The mean of each column over the training rows.
    pub mean: Vec<f64>,
    /// The population standard deviation of each column (0 for a constant column).
    pub std: Vec<f64>,
}

/// Reads a table in any of the formats a user has, by its extension: `.npy` (features
/// `(rows, features)`, unlabelled), `.npz` (arrays `X` and `y`, labelled) or CSV (optionally
/// gzipped; labelled when it has a `label` column), with `non_finite` applied to its values.
/// Returns the table and whether it is labelled.
///
/// # Errors
/// Errors of the loaders, naming the file, the row and the column.
pub fn read_table(
    path: &Path,
    non_finite: dmad_data::NonFinite,
) -> Result<(dmad_data::Table, bool)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let (mut table, labelled) = if name.ends_with(".npy") {
        (dmad_data::tabular::read_npy_features(path)?, false)
    } else if name.ends_with(".npz") {
        (dmad_data::read_npz_table(path, "X", "y")?, true)
    } else {
        let cfg = dmad_data::TableConfig {
            non_finite,
            ..dmad_data::TableConfig::default()
        };
        if dmad_data::csv_has_column(path, &cfg.label_column, cfg.has_header)? {
            (dmad_data::read_csv_table(path, &cfg)?, true)
        } else {
            (dmad_data::read_csv_features(path, &cfg)?, false)
        }
    };
    table.resolve_non_finite(non_finite)?;
    Ok((table, labelled))
}

/// Loads a CSV table (label column `label`) and the split `seed_index` of its split file
/// (the ADBench/DTE semi-supervised protocol); without a split file, half of the normal rows
/// (every other one) train and the rest test.
///
/// # Errors
/// Errors of the loaders.
pub fn table(
    csv: impl AsRef<Path>,
    split_file: Option<&Path>,
    seed_index: usize,
    device: &Device,
) -> Result<TableTask> {
    table_with(
        csv.as_ref(),
        split_file,
        seed_index,
        dmad_data::NonFinite::Reject,
        device,
    )
}

/// As [`table`] for any format of [`read_table`], with a policy for NaN and infinite
/// values. An unlabelled table trains on every row, and every row is a test row.
///
/// # Errors
/// Errors of the loaders; [`crate::Error::InvalidConfig`] for a split file given with an
/// unlabelled table, or a split index the file does not have.
pub fn table_with(
    path: &Path,
    split_file: Option<&Path>,
    seed_index: usize,
    non_finite: dmad_data::NonFinite,
    device: &Device,
) -> Result<TableTask> {
    let (table, labelled) = read_table(path, non_finite)?;
    let split = match split_file {
        Some(p) if !labelled => {
            return Err(crate::Error::InvalidConfig {
                field: "split",
                reason: format!(
                    "{} has no label column, so the split file {} cannot apply to it",
                    path.display(),
                    p.display()
                ),
            })
        }
        Some(p) => {
            let f = dmad_data::read_split_file(p)?;
            let n = f.splits.len();
            f.splits
                .into_iter()
                .nth(seed_index)
                .ok_or_else(|| crate::Error::InvalidConfig {
                    field: "seed_index",
                    reason: format!(
                        "{} has {n} splits, asked for index {seed_index}",
                        p.display()
                    ),
                })?
        }
        None if !labelled => dmad_data::tabular::Split {
            seed: 0,
            train: (0..table.rows()).collect(),
            test: (0..table.rows()).collect(),
        },
        None => {
            let normals: Vec<usize> = (0..table.rows())
                .filter(|&r| table.labels[r] == 0)
                .collect();
            let train: Vec<usize> = normals.iter().copied().step_by(2).collect();
            let test: Vec<usize> = (0..table.rows()).filter(|r| !train.contains(r)).collect();
            dmad_data::tabular::Split {
                seed: 0,
                train,
                test,
            }
        }
    };
    let s = table.split(&split)?;
    let cols = s.cols;
    let n_train = s.train.len() / cols;
    let n_test = s.test.len() / cols;
    let train = Tensor::from_vec(s.train, (n_train, cols), device)?;
    let x = Tensor::from_vec(s.test, (n_test, cols), device)?;
    Ok(TableTask {
        train,
        test: Labelled {
            x,
            kinds: table_kinds(&s.test_labels, labelled),
            sources: vec![path.display().to_string(); n_test],
            labels: s.test_labels,
            masks: None,
        },
        columns: TableColumns {
            names: table.names.clone(),
            mean: s.standardiser.mean,
            std: s.standardiser.std,
        },
        labelled,
    })
}

/// Every row of the table at `path` (any format of [`read_table`]), standardised with a
/// model's saved `columns`: new data scored as the model's training rows were prepared.
/// Returns the rows and whether the file is labelled.
///
/// # Errors
/// Errors of the loaders; [`crate::Error::ShapeMismatch`] when the file has another number of
/// columns than the model was trained on.
pub fn table_rows(
    path: &Path,
    columns: &TableColumns,
    non_finite: dmad_data::NonFinite,
    device: &Device,
) -> Result<(Labelled, bool)> {
    let (table, labelled) = read_table(path, non_finite)?;
    if table.cols() != columns.names.len() {
        return Err(crate::Error::ShapeMismatch {
            context: "table columns",
            expected: format!(
                "{} columns (the model was trained on {}), {} has {}",
                columns.names.len(),
                columns.names.len(),
                path.display(),
                table.cols()
            ),
            got: vec![table.rows(), table.cols()],
        });
    }
    let st = dmad_data::tabular::Standardiser {
        mean: columns.mean.clone(),
        std: columns.std.clone(),
    };
    let rows: Vec<usize> = (0..table.rows()).collect();
    let x = Tensor::from_vec(
        st.apply(&table, &rows),
        (table.rows(), table.cols()),
        device,
    )?;
    Ok((
        Labelled {
            x,
            kinds: table_kinds(&table.labels, labelled),
            sources: vec![path.display().to_string(); table.rows()],
            labels: table.labels,
            masks: None,
        },
        labelled,
    ))
}

/// The kind of each table row: `anomaly` / `normal` from its label, empty when the file has no
/// labels.
fn table_kinds(labels: &[u8], labelled: bool) -> Vec<String> {
    labels
        .iter()
        .map(|&l| match (labelled, l) {
            (false, _) => "",
            (true, 1) => "anomaly",
            (true, _) => "normal",
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imputation_segments_put_the_next_period_in_the_other_phase() {
        for (period, segment) in [(20, 4), (24, 8), (40, 8), (48, 16), (184, 37)] {
            assert_eq!(imputation_segment(period), segment, "period {period}");
        }
        for period in 8..=512 {
            let s = imputation_segment(period);
            assert!(
                (period / 8..=period.div_ceil(3)).contains(&s),
                "period {period}: segment {s}"
            );
            let share = opposite_phase_share(period, s);
            assert!(share >= 0.6, "period {period}: segment {s}, share {share}");
            // The share read off the masks themselves, over one period of the grating.
            let g = dmad_core::masking::GratingMasks { segment: s };
            let m = g.mask(g.period() + period, 0);
            let masked: Vec<usize> = (0..g.period()).filter(|&i| m[i] == 1.0).collect();
            let observed = masked.iter().filter(|&&i| m[i + period] == 0.0).count();
            let direct = observed as f64 / masked.len() as f64;
            assert!(
                (direct - share).abs() < 1e-12,
                "period {period}: {direct} vs {share}"
            );
        }
    }
}
