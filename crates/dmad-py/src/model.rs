//! The native detector behind `dmad.Detector`: a [`dmad::Detector`] plus what the `dmad`
//! command line records about the data in `data.json`, so that a model saved here is one the
//! CLI scores (and the other way round) with the same preparation of the data.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use dmad::data::tabular::Standardiser;
use dmad::data::{Normaliser, Series, Table};
use dmad::prepare::{SeriesTask, TableColumns};
use dmad::train::Control;
use dmad::{Detector, DetectorConfig, Modality};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::{Deserialize, Serialize};

use crate::arrays::{f32_bytes, f32s, f64s};
use crate::error::{to_py, OrRaise};

/// The file of a model directory that describes the data it was fitted on: the format of the
/// `dmad` command line's `data.json` (`crates/dmad-cli/src/model.rs`), whose `score` reads the
/// table and series statistics from it.
pub const DATA_FILE: &str = "data.json";

/// `data.json`: what fitting recorded about the data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DataInfo {
    /// The data the model was fitted on.
    #[serde(default)]
    pub source: String,
    /// How it was read (`table`, `series`, `files`; `mvtec`, `ucr`, `dcase` from the CLI).
    #[serde(default)]
    pub layout: String,
    /// How many samples the fit read.
    #[serde(default)]
    pub samples: usize,
    /// The policy for NaN and infinite values (`error`: the binding rejects them).
    #[serde(default)]
    pub non_finite: String,
    /// How the threshold was chosen, in words.
    #[serde(default)]
    pub threshold: String,
    /// Tables: the columns and the training rows' statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableColumns>,
    /// Plain series: the per-channel statistics the training points were standardised with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesStats>,
    /// Audio: the sample rates of the training clips, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_rates: Vec<u32>,
}

/// The per-channel statistics of a plain series model's training points.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeriesStats {
    /// The mean of each channel.
    pub mean: Vec<f64>,
    /// The standard deviation of each channel (1 for a constant channel).
    pub std: Vec<f64>,
}

/// A NumPy array as it crosses: C-order bytes, the shape, and whether it is `float64`.
pub struct Array<'a> {
    bytes: &'a [u8],
    shape: Vec<usize>,
    f64: bool,
}

impl Array<'_> {
    fn f32s(&self, name: &str) -> PyResult<Vec<f32>> {
        if self.f64 {
            Ok(f64s(name, self.bytes, &self.shape)?
                .into_iter()
                .map(|v| v as f32)
                .collect())
        } else {
            f32s(name, self.bytes, &self.shape)
        }
    }

    fn f64s(&self, name: &str) -> PyResult<Vec<f64>> {
        if self.f64 {
            f64s(name, self.bytes, &self.shape)
        } else {
            Ok(f32s(name, self.bytes, &self.shape)?
                .into_iter()
                .map(f64::from)
                .collect())
        }
    }
}

/// Fit or score: fitting sets the statistics, scoring applies the saved ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Fit,
    Score,
}

/// The prepared network input, and for series how windows map back to points.
struct Prepared {
    x: Tensor,
    task: Option<SeriesTask>,
    /// A series to fit on, standardised (`dmad::series::fit_series` holds a part out).
    series: Option<Series>,
}

/// The native detector.
#[pyclass(module = "dmad._native", name = "Model")]
pub struct Model {
    cfg: DetectorConfig,
    det: Option<Detector>,
    data: DataInfo,
}

fn bad(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

fn shape_words(shape: &[usize]) -> String {
    format!("{shape:?}")
}

impl Model {
    pub(crate) fn detector(&self) -> PyResult<&Detector> {
        self.det
            .as_ref()
            .ok_or_else(|| to_py(dmad::Error::NotFitted))
    }

    /// Turns `x` into the network's input as the CLI prepares the same data from files.
    /// Audio `x` (`[n_clips, n_samples]` or one 1-D clip at `sample_rate` Hz) as the model
    /// reads clips: resampled to its rate and cropped or padded to one second, as the WAV
    /// loader does. Fitting records the rate in `data.json`.
    fn audio_waves(
        &mut self,
        x: &Array<'_>,
        sample_rate: Option<u32>,
        purpose: Purpose,
    ) -> PyResult<Vec<Vec<f32>>> {
        let shape = x.shape.clone();
        let (n, len) = match shape.as_slice() {
            [l] => (1, *l),
            [n, l] => (*n, *l),
            _ => {
                return Err(bad(format!(
                    "X has shape {}: audio is [n_clips, n_samples] waveforms (or one 1-D clip)",
                    shape_words(&shape)
                )))
            }
        };
        if n == 0 || len == 0 {
            return Err(bad(format!(
                "X has shape {}: audio needs at least one clip of at least one sample",
                shape_words(&shape)
            )));
        }
        let rate = sample_rate
            .ok_or_else(|| bad("audio needs its sample rate: pass sample_rate=... (Hz)".into()))?;
        if rate == 0 {
            return Err(bad("sample_rate must be positive".into()));
        }
        if purpose == Purpose::Fit {
            self.data.sample_rates = vec![rate];
        }
        let values = x.f32s("X")?;
        let model_rate = self.cfg.input.sample_rate;
        let mut waves = Vec::with_capacity(n);
        for clip in values.chunks_exact(len) {
            let mut wave = if rate == model_rate {
                clip.to_vec()
            } else {
                dmad::data::audio::resample(clip, rate, model_rate).or_raise()?
            };
            wave.resize(model_rate as usize, 0.0);
            waves.push(wave);
        }
        Ok(waves)
    }

    fn prepare(
        &mut self,
        x: &Array<'_>,
        sample_rate: Option<u32>,
        purpose: Purpose,
    ) -> PyResult<Prepared> {
        let dev = Device::Cpu;
        let shape = x.shape.clone();
        let input = self.cfg.input.clone();
        match self.cfg.modality {
            Modality::Table => {
                if shape.len() != 2 {
                    return Err(bad(format!(
                        "X has shape {}: table data is [n_samples, n_features]",
                        shape_words(&shape)
                    )));
                }
                let (n, cols) = (shape[0], shape[1]);
                let table = Table {
                    features: x.f64s("X")?,
                    names: (0..cols).map(|c| format!("x{c}")).collect(),
                    labels: vec![0; n],
                    classes: vec![0.0; n],
                    path: PathBuf::from("<array>"),
                    lines: Vec::new(),
                };
                let rows: Vec<usize> = (0..n).collect();
                let st = match purpose {
                    Purpose::Fit => {
                        let st = Standardiser::fit(&table, &rows).or_raise()?;
                        self.data.table = Some(TableColumns {
                            names: table.names.clone(),
                            mean: st.mean.clone(),
                            std: st.std.clone(),
                        });
                        st
                    }
                    Purpose::Score => match &self.data.table {
                        Some(c) if c.names.len() != cols => {
                            return Err(bad(format!(
                                "X has {cols} features (shape {}), the model was fitted on {}",
                                shape_words(&shape),
                                c.names.len()
                            )))
                        }
                        Some(c) => Standardiser {
                            mean: c.mean.clone(),
                            std: c.std.clone(),
                        },
                        // A model saved by the Rust library: its rows were given prepared.
                        None => Standardiser {
                            mean: vec![0.0; cols],
                            std: vec![1.0; cols],
                        },
                    },
                };
                let x = Tensor::from_vec(st.apply(&table, &rows), (n, cols), &dev).or_raise()?;
                Ok(Prepared {
                    x,
                    task: None,
                    series: None,
                })
            }
            Modality::Series => {
                let (points, dims) = match shape.as_slice() {
                    [p] => (*p, 1),
                    [p, d] => (*p, *d),
                    _ => {
                        return Err(bad(format!(
                            "X has shape {}: a series is 1-D [n_points] or [n_points, n_channels]",
                            shape_words(&shape)
                        )))
                    }
                };
                let mut series = Series {
                    values: x.f32s("X")?,
                    dims,
                    labels: vec![0; points],
                };
                let (normaliser, stride) = match purpose {
                    Purpose::Fit => {
                        let n = Normaliser::fit(&series);
                        self.data.series = Some(SeriesStats {
                            mean: n.mean.clone(),
                            std: n.std.clone(),
                        });
                        (n, input.train_stride)
                    }
                    Purpose::Score => {
                        let Some(s) = &self.data.series else {
                            return Err(bad(
                                "the model does not record the statistics of plain series (it \
                                 was fitted by the CLI on UCR files, or saved without \
                                 data.json): fit a model on series arrays to score them"
                                    .into(),
                            ));
                        };
                        if s.mean.len() != dims {
                            return Err(bad(format!(
                                "X has {dims} channel(s) (shape {}), the model was fitted on {}",
                                shape_words(&shape),
                                s.mean.len()
                            )));
                        }
                        let n = Normaliser {
                            mean: s.mean.clone(),
                            std: s.std.clone(),
                        };
                        (n, input.test_stride)
                    }
                };
                normaliser.apply(&mut series);
                if points < input.window {
                    return Err(bad(format!(
                        "X has {points} points (shape {}), fewer than one window of {}",
                        shape_words(&shape),
                        input.window
                    )));
                }
                let (windows, starts) =
                    dmad::data::windows(&series, input.window, stride, &dev).or_raise()?;
                let task = (purpose == Purpose::Score).then(|| SeriesTask {
                    name: "<array>".into(),
                    train: windows.clone(),
                    test: windows.clone(),
                    test_starts: starts,
                    window: input.window,
                    test_labels: vec![0; points],
                    test_offset: 0,
                    anomaly: None,
                });
                Ok(Prepared {
                    x: windows,
                    task,
                    series: (purpose == Purpose::Fit).then_some(series),
                })
            }
            Modality::Image => {
                let (n, c, h, w) = match shape.as_slice() {
                    [n, h, w] => (*n, 1, *h, *w),
                    [n, c, h, w] => (*n, *c, *h, *w),
                    _ => {
                        return Err(bad(format!(
                            "X has shape {}: images are [n, height, width] or \
                             [n, channels, height, width]",
                            shape_words(&shape)
                        )))
                    }
                };
                if c != input.channels {
                    return Err(bad(format!(
                        "X has {c} channel(s) (shape {}), the model takes {}",
                        shape_words(&shape),
                        input.channels
                    )));
                }
                let values = x.f32s("X")?;
                if let Some(i) = values.iter().position(|v| !(-1e-3..=1.001).contains(v)) {
                    return Err(bad(format!(
                        "X holds {} at flat index {i} (shape {}): images are floats in [0, 1] \
                         (or uint8, divided by 255)",
                        values[i],
                        shape_words(&shape)
                    )));
                }
                let x = Tensor::from_vec(values, (n, c, h, w), &dev)
                    .and_then(|t| t.affine(2.0, -1.0))
                    .or_raise()?;
                let x = if purpose == Purpose::Fit && input.flip_augment {
                    dmad::prepare::with_flips(&x).or_raise()?
                } else {
                    x
                };
                Ok(Prepared {
                    x,
                    task: None,
                    series: None,
                })
            }
            Modality::Audio => {
                let waves = self.audio_waves(x, sample_rate, purpose)?;
                let transform = dmad::prepare::AudioInput::new(&input).or_raise()?;
                let images = waves
                    .iter()
                    .map(|w| transform.sample(w, &dev))
                    .collect::<dmad::Result<Vec<_>>>()
                    .or_raise()?;
                let x = Tensor::stack(&images, 0).or_raise()?;
                Ok(Prepared {
                    x,
                    task: None,
                    series: None,
                })
            }
        }
    }
}

/// Calls the Python progress callback, and stops on Ctrl-C (or an exception it raises).
fn call_back(callback: Option<&Py<PyAny>>, args: (usize, usize, f64), err: &mut Option<PyErr>) {
    if err.is_some() {
        return;
    }
    Python::attach(|py| {
        let res = py.check_signals().and_then(|()| match callback {
            Some(cb) => cb.call1(py, args).map(|_| ()),
            None => Ok(()),
        });
        if let Err(e) = res {
            *err = Some(e);
        }
    });
}

#[pymethods]
impl Model {
    /// A detector of the configuration `config` (a `DetectorConfig` as JSON).
    #[new]
    fn new(config: &str) -> PyResult<Self> {
        let cfg = crate::parse_config(config)?;
        cfg.validate().or_raise()?;
        Ok(Self {
            cfg,
            det: None,
            data: DataInfo::default(),
        })
    }

    /// Fits on normal data; `progress(step, total, loss)` is called after each training step.
    /// Ctrl-C (or an exception raised by `progress`) stops the training: the model stays
    /// unfitted and the exception propagates.
    #[pyo3(signature = (x, shape, f64, sample_rate=None, progress=None))]
    fn fit(
        &mut self,
        py: Python<'_>,
        x: &[u8],
        shape: Vec<usize>,
        f64: bool,
        sample_rate: Option<u32>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let x = Array {
            bytes: x,
            shape,
            f64,
        };
        self.det = None;
        self.data = DataInfo {
            source: "a NumPy array (Python)".into(),
            non_finite: "error".into(),
            ..DataInfo::default()
        };
        let prepared = self.prepare(&x, sample_rate, Purpose::Fit)?;
        self.data.layout = match self.cfg.modality {
            Modality::Table => "table",
            Modality::Series => "series",
            Modality::Image | Modality::Audio => "files",
        }
        .into();
        self.data.samples = match self.cfg.modality {
            // Flipped copies are not samples of the data.
            Modality::Image => x.shape[0],
            _ => prepared.x.dim(0).or_raise()?,
        };
        let mut det = Detector::new(self.cfg.clone(), &Device::Cpu).or_raise()?;
        let mut err: Option<PyErr> = None;
        let finished = py.detach(|| {
            let progress = |p: &dmad::train::Progress| {
                call_back(progress.as_ref(), (p.step, p.total_steps, p.loss), &mut err);
                if err.is_some() {
                    Control::Stop
                } else {
                    Control::Continue
                }
            };
            match &prepared.series {
                Some(series) => {
                    dmad::series::fit_series(&mut det, series, None, progress).map(|f| f.finished)
                }
                None => det.fit_until(&prepared.x, None, progress),
            }
        });
        let finished = finished.or_raise()?;
        if let Some(e) = err {
            return Err(e);
        }
        if !finished {
            return Err(PyKeyboardInterrupt::new_err("the fit was stopped"));
        }
        if let Some(cal) = det.calibration() {
            self.data.threshold = cal.method.clone();
        }
        self.cfg = det.config().clone();
        self.det = Some(det);
        Ok(())
    }

    /// Fits audio clips as `fit` does, with the log-mel statistics and time bins chosen on
    /// audio anomalies generated in a held-out fifth of the clips, as `dmad fit --scorer
    /// log-mel-dte --choose` ([`dmad::choose::choose_audio`] over
    /// [`dmad::choose::log_mel_candidates`] of this model's configuration; at least 10 clips).
    /// Returns each candidate's configuration (JSON), its mean AUROC on the generated
    /// anomalies, and the index of the chosen one, which is refitted on every clip. Five fits:
    /// no progress callback.
    #[pyo3(signature = (x, shape, f64, sample_rate=None, seed=0))]
    fn fit_choose(
        &mut self,
        py: Python<'_>,
        x: &[u8],
        shape: Vec<usize>,
        f64: bool,
        sample_rate: Option<u32>,
        seed: u64,
    ) -> PyResult<(Vec<String>, Vec<f64>, usize)> {
        if self.cfg.modality != Modality::Audio {
            return Err(bad(format!(
                "choose=True picks log-mel settings of audio detectors, not {} ones",
                self.cfg.modality
            )));
        }
        let candidates = dmad::choose::log_mel_candidates(&self.cfg).or_raise()?;
        let x = Array {
            bytes: x,
            shape,
            f64,
        };
        self.det = None;
        self.data = DataInfo {
            source: "a NumPy array (Python)".into(),
            non_finite: "error".into(),
            layout: "files".into(),
            ..DataInfo::default()
        };
        let waves = self.audio_waves(&x, sample_rate, Purpose::Fit)?;
        self.data.samples = waves.len();
        let len = self.cfg.input.sample_rate as usize;
        let flat: Vec<f32> = waves.concat();
        let waves = Tensor::from_vec(flat, (self.data.samples, len), &Device::Cpu).or_raise()?;
        let choice = py
            .detach(|| dmad::choose::choose_audio(&waves, &candidates, seed, &Device::Cpu))
            .or_raise()?;
        let configs = candidates
            .iter()
            .map(|c| serde_json::to_string(c).map_err(|e| bad(e.to_string())))
            .collect::<PyResult<Vec<_>>>()?;
        let det = choice.detector;
        if let Some(cal) = det.calibration() {
            self.data.threshold = cal.method.clone();
        }
        self.cfg = det.config().clone();
        self.det = Some(det);
        Ok((configs, choice.aurocs, choice.index))
    }

    /// Scores `x`: the scores (bytes of float32: one per sample, one per point for series) and
    /// the anomaly maps as (bytes, shape) where the modality has them.
    /// `progress(done, total, 0.0)` is called after each scoring batch.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (x, shape, f64, sample_rate=None, progress=None))]
    fn score<'py>(
        &mut self,
        py: Python<'py>,
        x: &[u8],
        shape: Vec<usize>,
        f64: bool,
        sample_rate: Option<u32>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(
        Bound<'py, PyBytes>,
        Option<(Bound<'py, PyBytes>, Vec<usize>)>,
    )> {
        let x = Array {
            bytes: x,
            shape,
            f64,
        };
        self.detector()?;
        let prepared = self.prepare(&x, sample_rate, Purpose::Score)?;
        let det = self.detector()?;
        let mut err: Option<PyErr> = None;
        let scored = py.detach(|| {
            det.score_with_progress(&prepared.x, |done, total| {
                call_back(progress.as_ref(), (done, total, 0.0), &mut err);
            })
        });
        let scored = scored.or_raise()?;
        if let Some(e) = err {
            // Scoring cannot stop part-way: the interruption is raised once it is done.
            return Err(e);
        }
        let scores = match &prepared.task {
            Some(task) => task.detector_points(det, &scored).or_raise()?,
            None => scored.scores,
        };
        let maps = match (&scored.maps, self.cfg.modality) {
            (Some(m), Modality::Image | Modality::Audio) => {
                let shape = m.dims().to_vec();
                let flat = m
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .or_raise()?;
                Some((f32_bytes(py, &flat), shape))
            }
            _ => None,
        };
        Ok((f32_bytes(py, &scores), maps))
    }

    /// 0/1 flags of `scores` (bytes of float32) against the calibrated threshold.
    fn predict<'py>(&self, py: Python<'py>, scores: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let s = f32s("scores", scores, &[scores.len() / 4])?;
        let flags = self.detector()?.predict(&s).or_raise()?;
        let bytes: Vec<u8> = flags.into_iter().map(u8::from).collect();
        Ok(PyBytes::new(py, &bytes))
    }

    /// The calibrated threshold (a score at or above it is anomalous).
    #[getter]
    fn threshold(&self) -> PyResult<f64> {
        Ok(self.detector()?.threshold().or_raise()?.value)
    }

    /// Replaces the threshold.
    fn set_threshold(&mut self, value: f64) -> PyResult<()> {
        let t = dmad::metrics::Threshold::fixed(value).or_raise()?;
        self.det
            .as_mut()
            .ok_or_else(|| to_py(dmad::Error::NotFitted))?
            .set_threshold(t)
            .or_raise()
    }

    /// The configuration as JSON.
    fn config_json(&self) -> String {
        serde_json::to_string(&self.cfg).unwrap_or_default()
    }

    /// The calibration (threshold, normal statistics, method) as JSON.
    fn calibration_json(&self) -> PyResult<String> {
        let cal = self.detector()?.calibration().ok_or(dmad::Error::NotFitted);
        serde_json::to_string(cal.or_raise()?).map_err(|e| bad(e.to_string()))
    }

    /// The data description (`data.json`) as JSON.
    fn data_json(&self) -> String {
        serde_json::to_string(&self.data).unwrap_or_default()
    }

    /// Whether the model is fitted (or loaded).
    #[getter]
    fn fitted(&self) -> bool {
        self.det.is_some()
    }

    /// Saves the model directory (the CLI's format, with `data.json`), written beside `path`
    /// and swapped into place; an existing model there is replaced, any other file or folder
    /// is an error.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let det = self.detector()?;
        if path.exists() && !path.join("config.json").is_file() {
            return Err(bad(format!(
                "{} exists and is not a dmad model: choose another path (save never replaces \
                 other files)",
                path.display()
            )));
        }
        save(det, &path, &self.data).or_raise()
    }

    /// Loads a model directory saved by `Detector.save` or `dmad fit`.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let det = Detector::load(&path, &Device::Cpu).or_raise()?;
        let file = path.join(DATA_FILE);
        let data = if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(|source| {
                to_py(dmad::Error::Io {
                    path: file.clone(),
                    source,
                })
            })?;
            serde_json::from_str(&text).map_err(|e| {
                to_py(dmad::Error::Model {
                    path: file.clone(),
                    reason: format!("not a dmad data description: {e}"),
                })
            })?
        } else {
            DataInfo::default()
        };
        Ok(Self {
            cfg: det.config().clone(),
            det: Some(det),
            data,
        })
    }
}

/// Saves `det` with `data.json` as the directory `dir`: written beside it, completed, then
/// renamed into place, so `dir` is always the old model or the whole new one.
fn save(det: &Detector, dir: &Path, data: &DataInfo) -> dmad::Result<()> {
    dmad::train::checkpoint::write_dir_atomic(dir, "py", |tmp| {
        det.save(tmp)?;
        let json = serde_json::to_vec_pretty(data).map_err(|e| dmad::Error::Model {
            path: tmp.join(DATA_FILE),
            reason: e.to_string(),
        })?;
        dmad::train::checkpoint::write_atomic(&tmp.join(DATA_FILE), &json)?;
        Ok(())
    })
}
