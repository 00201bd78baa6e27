//! Saving and loading a detector: a model directory written next to its target and renamed
//! into place, and read back with every file checked.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::dte::{self, DteModel};
use super::input::{self, RowStandardiser};
use super::{Calibration, Detector, FEATURE_SPACE_FILE, MODEL_FORMAT_VERSION};
use crate::config::DetectorConfig;
use crate::feature_space::{self, FeatureSpace};
use crate::{Error, Result};

/// The wrapper written as `config.json`.
#[derive(Serialize, Deserialize)]
struct SavedConfig {
    format_version: u32,
    dmad_version: String,
    detector: DetectorConfig,
}

impl Detector {
    /// Saves the model as a directory: `config.json` (with the format version),
    /// `weights.safetensors`, `calibration.json`, and `dte.safetensors` (the training rows)
    /// for DTE. The directory is written next to the
    /// target and renamed into place, so an existing model is replaced only by a complete one.
    ///
    /// # Errors
    /// [`Error::NotFitted`] before fitting; [`Error::Io`] naming the path.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let cal = self.calibration.as_ref().ok_or(Error::NotFitted)?;
        dmad_train::checkpoint::write_dir_atomic(dir.as_ref(), "tmp", |tmp| {
            self.write_files(tmp, cal)
        })
    }

    /// Writes the model's files into the empty directory `tmp`.
    fn write_files(&self, tmp: &Path, cal: &Calibration) -> Result<()> {
        let json = |v: &dyn erased::Json, file: &str| -> Result<()> {
            let path = tmp.join(file);
            let bytes = v.to_json().map_err(|e| Error::Model {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            dmad_train::checkpoint::write_atomic(&path, &bytes)?;
            Ok(())
        };
        json(
            &SavedConfig {
                format_version: MODEL_FORMAT_VERSION,
                dmad_version: env!("CARGO_PKG_VERSION").into(),
                detector: self.cfg.clone(),
            },
            "config.json",
        )?;
        json(cal, "calibration.json")?;
        let weights: std::collections::HashMap<String, Tensor> = self
            .varmap
            .data()
            .lock()
            .map_err(|_| Error::NotFitted)?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        if let Some(dte) = &self.dte {
            dmad_train::checkpoint::save_tensors(
                &tmp.join(dte::DTE_FILE),
                &dte.tensors(&self.device)?,
            )?;
        }
        if let Some((mean, std)) = self.space.as_ref().and_then(FeatureSpace::stats) {
            let stats = [
                (feature_space::MEAN.to_string(), mean.clone()),
                (feature_space::STD.to_string(), std.clone()),
            ]
            .into();
            dmad_train::checkpoint::save_tensors(&tmp.join(FEATURE_SPACE_FILE), &stats)?;
        }
        if let Some(rows) = &self.rows {
            dmad_train::checkpoint::save_tensors(&tmp.join(input::ROWS_FILE), &rows.tensors())?;
        }
        dmad_train::checkpoint::save_tensors(&tmp.join("weights.safetensors"), &weights)?;
        Ok(())
    }

    /// Loads a model saved by [`Detector::save`] onto `device`.
    ///
    /// # Errors
    /// [`Error::Model`] naming the file when the directory is incomplete, of another format
    /// version, or its weights do not fit its config (truncated, another config);
    /// [`Error::Io`] when it cannot be read.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |file: &str| -> Result<(PathBuf, Vec<u8>)> {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::Model {
                    path: path.clone(),
                    reason: "missing: not a dmad model directory, or an incomplete one".into(),
                },
                _ => Error::Io {
                    path: path.clone(),
                    source: e,
                },
            })?;
            Ok((path, bytes))
        };
        let (cfg_path, bytes) = read("config.json")?;
        let version: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Model {
                path: cfg_path.clone(),
                reason: format!("not valid JSON: {e}"),
            })?;
        let found = version.get("format_version").and_then(|v| v.as_u64());
        if found != Some(MODEL_FORMAT_VERSION as u64) {
            return Err(Error::Model {
                path: cfg_path,
                reason: format!(
                    "format version {} (written by dmad {}); this dmad {} reads version {MODEL_FORMAT_VERSION}",
                    found.map_or("missing".to_string(), |v| v.to_string()),
                    version.get("dmad_version").and_then(|v| v.as_str()).unwrap_or("?"),
                    env!("CARGO_PKG_VERSION"),
                ),
            });
        }
        let saved: SavedConfig = serde_json::from_value(version).map_err(|e| Error::Model {
            path: cfg_path.clone(),
            reason: format!("invalid config: {e}"),
        })?;
        let (cal_path, bytes) = read("calibration.json")?;
        let calibration: Calibration =
            serde_json::from_slice(&bytes).map_err(|e| Error::Model {
                path: cal_path,
                reason: format!("invalid calibration: {e}"),
            })?;
        let mut det = Self::new(saved.detector, device)?;
        let weights = dir.join("weights.safetensors");
        dmad_unet::load_into_varmap(&det.varmap, &weights)?;
        det.dte = DteModel::load(&det.cfg, &dir.join(dte::DTE_FILE), device)?;
        if det.cfg.log_mel() {
            det.rows = Some(RowStandardiser::load(&dir.join(input::ROWS_FILE), device)?);
        }
        if let Some(space) = det.space.as_mut() {
            let path = dir.join(FEATURE_SPACE_FILE);
            let mut stats = dmad_train::checkpoint::load_tensors(&path, device)?;
            let mut take = |name: &str| {
                stats.remove(name).ok_or_else(|| Error::Model {
                    path: path.clone(),
                    reason: format!("has no tensor `{name}`"),
                })
            };
            let (mean, std) = (take(feature_space::MEAN)?, take(feature_space::STD)?);
            space.set_stats(mean, std).map_err(|e| Error::Model {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
        det.calibration = Some(calibration);
        Ok(det)
    }
}

/// Object-safe JSON serialisation for the two files `save` writes.
mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec_pretty(self)
        }
    }
}
