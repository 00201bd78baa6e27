//! The native module `dmad._native` of the Python package `dmad` (`crates/dmad-py/python`):
//! the facade's [`dmad::Detector`] with the data preparation of the `dmad` command line, the
//! metrics, the loaders and generation. Arrays cross as C-order bytes and a shape; the Python
//! package turns them into NumPy arrays and adds the scikit-learn conventions.
//!
//! Build it with maturin (`pip install ./crates/dmad-py`, or `maturin develop` in that folder);
//! `docs/PYTHON.md` has the API.
#![warn(missing_docs)]

mod arrays;
mod error;
mod model;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use dmad::data::{Dataset, Split};
use dmad::{AnomalyKind, DetectorConfig, GenerateConfig, Generator, Modality, ScorerConfig};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use arrays::{f32_bytes, f64s};
use error::{DmadError, NotFittedError, OrRaise};
use model::Model;

/// Bytes and a shape: a NumPy array on its way to Python.
type Out<'py> = (Bound<'py, PyBytes>, Vec<usize>);

fn tensor_out<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Out<'py>> {
    let flat = t
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .or_raise()?;
    Ok((f32_bytes(py, &flat), t.dims().to_vec()))
}

fn modality(name: &str) -> PyResult<Modality> {
    name.parse().or_raise()
}

/// The default configuration (JSON) of `modality` for data of `dims` features / channels,
/// with `scorer` as `dmad fit --scorer` chooses it: `reconstruction`, `dte` (k = 5),
/// `dte-categorical` (7 bins), `feature-diffusion`, `feature-recon`, `feature-dte` (images
/// and audio), `log-mel-dte` / `log-mel-windows-dte` (audio: DTE-Categorical on log-mel
/// statistics / 5-frame windows), `log-mel-unet` (audio: the pixel-space U-Net on log-mel
/// images, scored against the mean of 4 reconstructions), and the
/// library's `denoising`, `feature` and `combined`.
#[pyfunction]
fn default_config(modality_name: &str, dims: usize, scorer: &str) -> PyResult<String> {
    let m = modality(modality_name)?;
    if dims == 0 {
        return Err(PyValueError::new_err("the data has 0 features / channels"));
    }
    let feature_space = matches!(
        scorer,
        "feature-diffusion" | "feature-recon" | "feature-dte"
    );
    if feature_space && !matches!(m, Modality::Image | Modality::Audio) {
        return Err(PyValueError::new_err(format!(
            "scorer {scorer:?} works on EfficientNet-Lite0 features of images and audio \
             scalograms, not {m} data"
        )));
    }
    let log_mel = matches!(
        scorer,
        "log-mel-dte" | "log-mel-windows-dte" | "log-mel-unet"
    );
    if log_mel && m != Modality::Audio {
        return Err(PyValueError::new_err(format!(
            "scorer {scorer:?} works on audio clips, not {m} data"
        )));
    }
    let mut cfg = if feature_space {
        DetectorConfig::feature_diffusion(m, dims)
    } else if scorer == "log-mel-unet" {
        DetectorConfig::for_audio_log_mel_image()
    } else if log_mel {
        DetectorConfig::for_audio_log_mel_features(if scorer == "log-mel-windows-dte" {
            dmad::AudioFeatures::LogMelWindows
        } else {
            dmad::AudioFeatures::LogMelStatistics
        })
    } else {
        match m {
            Modality::Image => DetectorConfig::for_images(dims),
            Modality::Series => DetectorConfig::for_series(dims),
            Modality::Audio => DetectorConfig::for_audio(),
            Modality::Table => DetectorConfig::for_tables(dims),
        }
    };
    cfg.scorer = match scorer {
        "reconstruction" | "feature-recon" | "log-mel-unet" => ScorerConfig::Reconstruction,
        "feature-diffusion" => cfg.scorer,
        "dte" => ScorerConfig::Dte { k: 5 },
        "dte-categorical" | "feature-dte" | "log-mel-dte" | "log-mel-windows-dte" => {
            ScorerConfig::DteCategorical {
                bins: 7,
                surprisal: false,
            }
        }
        "denoising" => ScorerConfig::Denoising {
            levels: 8,
            max_strength: 0.5,
            noise_free: false,
        },
        "feature" => ScorerConfig::Feature,
        "combined" => ScorerConfig::Combined { lambda: 0.5 },
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown scorer {other:?}; expected reconstruction, dte, dte-categorical, \
                 denoising, feature, combined, feature-diffusion, feature-recon, feature-dte, \
                 log-mel-dte, log-mel-windows-dte or log-mel-unet"
            )))
        }
    };
    serde_json::to_string(&cfg).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The imputation-diffusion configuration (JSON) of a series of `dims` channels, as `dmad fit
/// --scorer imputation` builds it: windows of two periods of the training series and grating
/// segments of a fifth of one (`first_channel`, float64 bytes; TSB-AD's `find_length`), or
/// `window` (segments of a tenth of it) when given.
#[pyfunction]
#[pyo3(signature = (first_channel, dims, window=None))]
fn imputation_config(first_channel: &[u8], dims: usize, window: Option<usize>) -> PyResult<String> {
    if dims == 0 {
        return Err(PyValueError::new_err("the data has 0 channels"));
    }
    let cfg = match window {
        Some(w) => DetectorConfig::series_imputation(dims, w),
        None => {
            let x = f64s("X", first_channel, &[first_channel.len() / 8])?;
            let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            DetectorConfig::series_imputation_for_period(dims, dmad::data::find_length(&x))
        }
    };
    serde_json::to_string(&cfg).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A configuration from its JSON: `ValueError` when it is not a `DetectorConfig`.
pub(crate) fn parse_config(config: &str) -> PyResult<DetectorConfig> {
    serde_json::from_str(config)
        .map_err(|e| PyValueError::new_err(format!("not a valid detector configuration: {e}")))
}

/// Validates a configuration (JSON): `ValueError` naming the field when it is not valid.
#[pyfunction]
fn validate_config(config: &str) -> PyResult<()> {
    parse_config(config)?.validate().or_raise()
}

/// The configuration (JSON) with each patch's position appended to its features and the MLP
/// widened to take them (`DetectorConfig::with_patch_positions`): `ValueError` when it is not
/// a feature-space configuration.
#[pyfunction]
fn with_patch_positions(config: &str) -> PyResult<String> {
    let cfg = parse_config(config)?.with_patch_positions().or_raise()?;
    serde_json::to_string(&cfg).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn labels(name: &str, y: &[u8], n: usize) -> PyResult<Vec<bool>> {
    if y.len() != n {
        return Err(PyValueError::new_err(format!(
            "{name} has {} labels for {n} scores",
            y.len()
        )));
    }
    Ok(y.iter().map(|&v| v != 0).collect())
}

fn scores(s: &[u8]) -> PyResult<Vec<f64>> {
    f64s("y_score", s, &[s.len() / 8])
}

/// AUROC (scikit-learn's `roc_auc_score`).
#[pyfunction]
fn roc_auc(y_true: &[u8], y_score: &[u8]) -> PyResult<f64> {
    let s = scores(y_score)?;
    let y = labels("y_true", y_true, s.len())?;
    dmad::metrics::auroc(&s, &y).or_raise()
}

/// Average precision (scikit-learn's `average_precision_score`).
#[pyfunction]
fn auprc(y_true: &[u8], y_score: &[u8]) -> PyResult<f64> {
    let s = scores(y_score)?;
    let y = labels("y_true", y_true, s.len())?;
    dmad::metrics::auprc(&s, &y).or_raise()
}

/// The best F1 over thresholds and the threshold reaching it.
#[pyfunction]
fn f1_max(y_true: &[u8], y_score: &[u8]) -> PyResult<(f64, f64)> {
    let s = scores(y_score)?;
    let y = labels("y_true", y_true, s.len())?;
    let best = dmad::metrics::f1_max(&s, &y).or_raise()?;
    Ok((best.f1, best.threshold))
}

/// Partial AUROC up to `max_fpr`, McClish-standardised (`roc_auc_score(max_fpr=...)`).
#[pyfunction]
fn pauc(y_true: &[u8], y_score: &[u8], max_fpr: f64) -> PyResult<f64> {
    let s = scores(y_score)?;
    let y = labels("y_true", y_true, s.len())?;
    dmad::metrics::pauc(&s, &y, max_fpr).or_raise()
}

/// VUS-PR with a sliding window (TSB-AD 1.5).
#[pyfunction]
fn vus_pr(y_true: &[u8], y_score: &[u8], window: usize) -> PyResult<f64> {
    let s = scores(y_score)?;
    let y = labels("y_true", y_true, s.len())?;
    dmad::metrics::vus_pr(&s, &y, window).or_raise()
}

/// Per-image maps and masks, and the image height and width.
type MapsAndMasks = (Vec<Vec<f64>>, Vec<Vec<bool>>, usize, usize);

fn maps_and_masks(maps: &[u8], masks: &[u8], shape: &[usize]) -> PyResult<MapsAndMasks> {
    let [n, h, w] = shape else {
        return Err(PyValueError::new_err(format!(
            "anomaly maps have shape {shape:?}: expected [n, height, width]"
        )));
    };
    let flat = f64s("maps", maps, shape)?;
    if masks.len() != flat.len() {
        return Err(PyValueError::new_err(format!(
            "masks hold {} pixels, maps {} (shape {shape:?})",
            masks.len(),
            flat.len()
        )));
    }
    let px = h * w;
    let m = flat.chunks(px).map(<[f64]>::to_vec).collect();
    let k = masks
        .chunks(px)
        .map(|c| c.iter().map(|&v| v != 0).collect())
        .collect();
    debug_assert_eq!(flat.len(), n * px);
    Ok((m, k, *h, *w))
}

/// AUPRO up to `fpr_limit` (MVTec AD's per-region overlap) of maps `[n, h, w]` and masks.
#[pyfunction]
fn aupro(maps: &[u8], masks: &[u8], shape: Vec<usize>, fpr_limit: f64) -> PyResult<f64> {
    let (m, k, h, w) = maps_and_masks(maps, masks, &shape)?;
    dmad::metrics::aupro(&m, &k, h, w, fpr_limit).or_raise()
}

/// Pixel AUROC of maps `[n, h, w]` against masks, all pixels pooled.
#[pyfunction]
fn pixel_auroc(maps: &[u8], masks: &[u8], shape: Vec<usize>) -> PyResult<f64> {
    let (m, k, _, _) = maps_and_masks(maps, masks, &shape)?;
    dmad::metrics::pixel_auroc(&m, &k).or_raise()
}

/// A table file (CSV with an optional `label` column, NPY, NPZ with X and y): the raw
/// features, the labels (or `None`) and the column names.
#[allow(clippy::type_complexity)]
#[pyfunction]
fn read_table<'py>(
    py: Python<'py>,
    path: PathBuf,
) -> PyResult<(Out<'py>, Option<Bound<'py, PyBytes>>, Vec<String>)> {
    let (t, labelled) =
        dmad::prepare::read_table(&path, dmad::data::NonFinite::Reject).or_raise()?;
    let bytes: Vec<u8> = t.features.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let x = (PyBytes::new(py, &bytes), vec![t.rows(), t.cols()]);
    let y = labelled.then(|| PyBytes::new(py, &t.labels));
    Ok((x, y, t.names.clone()))
}

/// The train and test row indices of split `index` of a split file (ADBench/DTE protocol).
#[pyfunction]
fn read_split(path: PathBuf, index: usize) -> PyResult<(Vec<usize>, Vec<usize>)> {
    let f = dmad::data::read_split_file(&path).or_raise()?;
    let n = f.splits.len();
    let s = f.splits.into_iter().nth(index).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{} has {n} splits, asked for index {index}",
            path.display()
        ))
    })?;
    Ok((s.train, s.test))
}

fn split(name: &str) -> PyResult<Split> {
    match name {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        other => Err(PyValueError::new_err(format!(
            "split {other:?}: expected \"train\" or \"test\""
        ))),
    }
}

fn files_with(dir: &std::path::Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
        })
        .collect();
    out.sort();
    out
}

/// Images from disk as the CLI reads them, resized to `image_size`: an MVTec AD category
/// folder (`split` of it, with labels, kinds and masks), a plain folder or one file. The
/// images come back in `[0, 1]`.
#[allow(clippy::type_complexity)]
#[pyfunction]
#[pyo3(signature = (path, split_name="train", image_size=64, channels=1))]
fn load_images<'py>(
    py: Python<'py>,
    path: PathBuf,
    split_name: &str,
    image_size: u32,
    channels: usize,
) -> PyResult<(
    Out<'py>,
    Vec<u8>,
    Vec<String>,
    Option<Out<'py>>,
    Vec<String>,
)> {
    let dev = Device::Cpu;
    let l = if path.join("train").is_dir() || path.join("test").is_dir() {
        dmad::prepare::images(&path, split(split_name)?, image_size, channels, &dev)
    } else if path.is_dir() {
        let files = files_with(&path, &["png", "jpg", "jpeg", "bmp", "tif", "tiff"]);
        dmad::prepare::image_files(&files, image_size, channels, &dev)
    } else {
        dmad::prepare::image_files(std::slice::from_ref(&path), image_size, channels, &dev)
    }
    .or_raise()?;
    let x = l.x.affine(0.5, 0.5).or_raise()?;
    let masks = l.masks.as_ref().map(|m| tensor_out(py, m)).transpose()?;
    Ok((tensor_out(py, &x)?, l.labels, l.kinds, masks, l.sources))
}

/// Audio clips from disk as the CLI reads them: a DCASE folder (`split` of it, labelled by
/// file name), a plain folder of WAV files or one file; each resampled to `sample_rate` and
/// cropped or padded to one second. Returns the waveforms `[n, sample_rate]`, labels, kinds
/// and files.
#[allow(clippy::type_complexity)]
#[pyfunction]
#[pyo3(signature = (path, split_name="train", sample_rate=16000))]
fn load_audio<'py>(
    py: Python<'py>,
    path: PathBuf,
    split_name: &str,
    sample_rate: u32,
) -> PyResult<(Out<'py>, Vec<u8>, Vec<String>, Vec<String>)> {
    let cfg = dmad::data::AudioConfig {
        sample_rate,
        length: Some(sample_rate as usize),
        ..dmad::data::AudioConfig::default()
    };
    let folder = if path.join("train").is_dir() || path.join("test").is_dir() {
        dmad::data::DcaseFolder::open(&path, split(split_name)?, &cfg)
    } else if path.is_dir() {
        dmad::data::DcaseFolder::files(&files_with(&path, &["wav"]), &cfg)
    } else {
        dmad::data::DcaseFolder::files(std::slice::from_ref(&path), &cfg)
    }
    .or_raise()?;
    let (mut waves, mut labels, mut kinds, mut sources) = (vec![], vec![], vec![], vec![]);
    for i in 0..folder.len() {
        let clip = folder.get(i).or_raise()?;
        waves.extend(
            clip.waveform
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .or_raise()?,
        );
        labels.push(clip.label);
        kinds.push(clip.kind);
        sources.push(clip.source);
    }
    let n = labels.len();
    Ok((
        (f32_bytes(py, &waves), vec![n, sample_rate as usize]),
        labels,
        kinds,
        sources,
    ))
}

/// A plain series file (one time step a line, optional header) as `[points, channels]`.
#[pyfunction]
fn read_series<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Out<'py>> {
    let s = dmad::data::read_plain_series(&path).or_raise()?;
    Ok((f32_bytes(py, &s.values), vec![s.len(), s.dims]))
}

/// A UCR Anomaly Archive file split as the archive says: the train points, the test points,
/// the test labels and the anomaly `[begin, end)` in whole-series coordinates.
#[allow(clippy::type_complexity)]
#[pyfunction]
fn load_ucr_anomaly<'py>(
    py: Python<'py>,
    path: PathBuf,
) -> PyResult<(
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Vec<u8>,
    (usize, usize),
)> {
    let (split, name) = dmad::data::load_ucr_anomaly(&path).or_raise()?;
    Ok((
        f32_bytes(py, &split.train.values),
        f32_bytes(py, &split.test.values),
        split.test.labels.clone(),
        (name.begin, name.end),
    ))
}

/// Samples generated by a fitted model's network, in its input space (standardised rows and
/// windows, images in `[-1, 1]`, waveforms for audio): `n` normal samples, or with `kind`
/// (`scratch`, `level_shift`, `dropout`, ...) anomalies injected into them and harmonised,
/// with their masks.
#[allow(clippy::type_complexity)]
#[pyfunction]
#[pyo3(signature = (model, n, kind=None, strength=0.5, seed=0, steps=50))]
fn generate<'py>(
    py: Python<'py>,
    model: &Model,
    n: usize,
    kind: Option<&str>,
    strength: f64,
    seed: u64,
    steps: usize,
) -> PyResult<(Out<'py>, Option<Out<'py>>)> {
    if n == 0 {
        return Err(PyValueError::new_err("n must be at least 1"));
    }
    let det = model.detector()?;
    let cfg = GenerateConfig {
        steps,
        ..GenerateConfig::default()
    };
    let g = Generator::new(det, cfg).or_raise()?;
    let m = det.config().modality;
    let kind = match kind {
        None => None,
        Some(name) => Some(
            AnomalyKind::all(m)
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = AnomalyKind::all(m).iter().map(|k| k.name()).collect();
                    PyValueError::new_err(format!(
                        "{name:?} is not an anomaly kind of {m} data; expected one of {}",
                        names.join(", ")
                    ))
                })?,
        ),
    };
    let out = py.detach(|| -> dmad::Result<(Tensor, Option<Tensor>)> {
        if m == Modality::Audio {
            let (_, waves) = g.normal_audio(n, seed)?;
            return match kind {
                Some(AnomalyKind::Audio(k)) => {
                    let a = g.anomalous_audio(&waves, k, strength, seed)?;
                    Ok((a.injected.x, Some(a.injected.mask)))
                }
                _ => Ok((waves, None)),
            };
        }
        let normal = g.normal(n, seed)?;
        match kind {
            Some(k) => {
                let inj = g.anomalous(&normal, k, strength, seed, None)?;
                Ok((inj.x, Some(inj.mask)))
            }
            None => Ok((normal, None)),
        }
    });
    let (x, mask) = out.or_raise()?;
    let mask = mask.as_ref().map(|m| tensor_out(py, m)).transpose()?;
    Ok((tensor_out(py, &x)?, mask))
}

/// The native module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One candle thread and malloc settings that reuse tensor buffers: several times faster
    // training on a small machine (docs/PERFORMANCE.md). Once, at import.
    dmad::init_cpu();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DmadError", m.py().get_type::<DmadError>())?;
    m.add("NotFittedError", m.py().get_type::<NotFittedError>())?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(default_config, m)?)?;
    m.add_function(wrap_pyfunction!(validate_config, m)?)?;
    m.add_function(wrap_pyfunction!(with_patch_positions, m)?)?;
    m.add_function(wrap_pyfunction!(imputation_config, m)?)?;
    m.add_function(wrap_pyfunction!(roc_auc, m)?)?;
    m.add_function(wrap_pyfunction!(auprc, m)?)?;
    m.add_function(wrap_pyfunction!(f1_max, m)?)?;
    m.add_function(wrap_pyfunction!(pauc, m)?)?;
    m.add_function(wrap_pyfunction!(vus_pr, m)?)?;
    m.add_function(wrap_pyfunction!(aupro, m)?)?;
    m.add_function(wrap_pyfunction!(pixel_auroc, m)?)?;
    m.add_function(wrap_pyfunction!(read_table, m)?)?;
    m.add_function(wrap_pyfunction!(read_split, m)?)?;
    m.add_function(wrap_pyfunction!(load_images, m)?)?;
    m.add_function(wrap_pyfunction!(load_audio, m)?)?;
    m.add_function(wrap_pyfunction!(read_series, m)?)?;
    m.add_function(wrap_pyfunction!(load_ucr_anomaly, m)?)?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    Ok(())
}
