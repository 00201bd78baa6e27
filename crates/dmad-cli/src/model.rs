//! Saving a fitted model with what the command line knows about its data (`data.json`), as
//! one directory swapped into place, and refusing to replace a model without `--force`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use dmad::prepare::TableColumns;
use serde::{Deserialize, Serialize};

/// The file of a model directory that describes the data it was fitted on.
pub const DATA_FILE: &str = "data.json";

/// What `dmad fit` records about its data, so that `score` can prepare new data as the
/// training data was and name a mismatch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The data the model was fitted on, as given.
    pub source: String,
    /// The layout it was read in (`mvtec`, `dcase`, `files`, `ucr`, `table`).
    pub layout: String,
    /// How many samples (images, clips, windows, rows) the fit read.
    pub samples: usize,
    /// What was done with NaN and infinite values (`error`, `drop`, `impute`).
    pub non_finite: String,
    /// How the decision threshold was chosen, in words (the rule and how many held-out normal
    /// samples set it).
    #[serde(default)]
    pub threshold: String,
    /// Tables: the columns and the training rows' statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableColumns>,
    /// Plain series files: the per-channel statistics the training points were standardised
    /// with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesStats>,
    /// Audio: the sample rates of the training clips (before resampling), each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_rates: Vec<u32>,
}

/// The per-channel mean and standard deviation of a plain series model's training points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesStats {
    /// The mean of each channel.
    pub mean: Vec<f64>,
    /// The standard deviation of each channel (1 for a constant channel).
    pub std: Vec<f64>,
}

/// Reads a model's `data.json`, if it has one (models saved by `fit` before it existed, or
/// by the library, do not).
///
/// # Errors
/// One naming the file when it exists but cannot be read.
pub fn data_info(model: &Path) -> Result<Option<DataInfo>> {
    let path = model.join(DATA_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| {
        format!("{} is not a dmad data description", path.display())
    })?))
}

/// Checks, before any work, that `out` may be written: it does not exist, or `force` is set
/// and it is a model directory (never another kind of folder or a file).
///
/// # Errors
/// One that says what is there and how to go on.
pub fn check_out(out: &Path, force: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let is_model = out.join("config.json").is_file();
    if !is_model {
        bail!(
            "{} exists and is not a dmad model: choose another --out (fit never replaces \
             other files)",
            out.display()
        );
    }
    if !force {
        bail!(
            "{} already holds a model: pass --force to replace it, or choose another --out",
            out.display()
        );
    }
    Ok(())
}

/// Saves `det` with `info` as the directory `out`: written beside it, completed, then swapped
/// into place, so that `out` is always either the old model or the whole new one.
///
/// # Errors
/// I/O errors naming the path.
pub fn save(det: &dmad::Detector, out: &Path, info: &DataInfo) -> Result<()> {
    dmad::train::checkpoint::write_dir_atomic(out, "fit", |tmp| -> Result<()> {
        det.save(tmp)?;
        let json = serde_json::to_vec_pretty(info)?;
        let data = tmp.join(DATA_FILE);
        dmad::train::checkpoint::write_atomic(&data, &json)?;
        Ok(())
    })
    .with_context(|| format!("saving the model to {}", out.display()))
}
