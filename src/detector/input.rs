//! What the detector does to its input before the model sees it: a series window's own
//! normalisation ([`WindowNorm::Window`]), and the standardisation of row features (log-mel
//! statistics) or of log-mel images' bands with the training clips' statistics, which the
//! model saves.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::config::{DetectorConfig, Modality, WindowNorm, WINDOW_STD_FLOOR};
use crate::{Error, Result};

/// The file holding the row standardisation of a detector that standardises its input rows.
pub(super) const ROWS_FILE: &str = "input_stats.safetensors";
const MEAN: &str = "input.mean";
const INV_STD: &str = "input.inv_std";

/// Z-normalises each window of a series detector with [`WindowNorm::Window`] on its own (per
/// channel, the deviation floored at [`WINDOW_STD_FLOOR`]); anything else passes unchanged.
pub(super) fn normalise_windows(cfg: &DetectorConfig, x: &Tensor) -> Result<Tensor> {
    if cfg.modality != Modality::Series || cfg.input.window_norm != WindowNorm::Window {
        return Ok(x.clone());
    }
    let mean = x.mean_keepdim(2)?;
    let centred = x.broadcast_sub(&mean)?;
    let std = centred
        .sqr()?
        .mean_keepdim(2)?
        .sqrt()?
        .clamp(WINDOW_STD_FLOOR as f32, f32::MAX)?;
    Ok(centred.broadcast_div(&std)?)
}

/// Per-feature standardisation of rows `[n, d]` with the training rows' mean and (population)
/// deviation; a feature constant in training maps to 0, as the tables' protocol has it.
#[derive(Debug, Clone)]
pub(super) struct RowStandardiser {
    /// `[1, d]`.
    mean: Tensor,
    /// `[1, d]`: `1 / std`, or 0 where the deviation is 0.
    inv_std: Tensor,
}

impl RowStandardiser {
    /// Fits the statistics of the rows of `x` (`[n, d]`, `n >= 1`).
    pub(super) fn fit(x: &Tensor) -> Result<Self> {
        let x = x.to_dtype(candle_core::DType::F64)?;
        let mean = x.mean_keepdim(0)?;
        let std = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?.sqrt()?;
        let inv: Vec<f64> = std
            .flatten_all()?
            .to_vec1::<f64>()?
            .into_iter()
            .map(|s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect();
        let d = inv.len();
        let f32 = candle_core::DType::F32;
        Ok(Self {
            mean: mean.to_dtype(f32)?,
            inv_std: Tensor::from_vec(inv, (1, d), x.device())?.to_dtype(f32)?,
        })
    }

    /// The standardised rows of `x` (`[n, d]`, or `[n, rows, d]` for sets of rows).
    pub(super) fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.mean.dim(1)?;
        if !(2..=3).contains(&x.rank()) || x.dims().last() != Some(&d) {
            return Err(Error::ShapeMismatch {
                context: "standardised detector input",
                expected: format!("[batch, {d}]: rows of the {d} features the model was fitted on"),
                got: x.dims().to_vec(),
            });
        }
        Ok(x.broadcast_sub(&self.mean)?.broadcast_mul(&self.inv_std)?)
    }

    /// Fits per-band statistics of log-mel images `[n, 1, bands, columns]`: each band (row)
    /// over every clip and column.
    pub(super) fn fit_bands(x: &Tensor) -> Result<Self> {
        Self::fit(&bands_last(x)?.flatten(0, 1)?)
    }

    /// The log-mel images `[n, 1, bands, columns]` with each band standardised.
    pub(super) fn apply_bands(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 4 || x.dim(1)? != 1 || x.dim(2)? != self.mean.dim(1)? {
            return Err(Error::ShapeMismatch {
                context: "log-mel image detector input",
                expected: format!(
                    "[clips, 1, {}, columns]: one-channel log-mel images",
                    self.mean.dim(1)?
                ),
                got: x.dims().to_vec(),
            });
        }
        Ok(self
            .apply(&bands_last(x)?)?
            .transpose(1, 2)?
            .unsqueeze(1)?
            .contiguous()?)
    }

    /// The tensors [`RowStandardiser::load`] reads back.
    pub(super) fn tensors(&self) -> HashMap<String, Tensor> {
        [
            (MEAN.to_string(), self.mean.clone()),
            (INV_STD.to_string(), self.inv_std.clone()),
        ]
        .into()
    }

    /// Reads the statistics saved at `path`.
    ///
    /// # Errors
    /// [`Error::Model`] naming the file when a tensor is missing or the two differ in shape.
    pub(super) fn load(path: &Path, device: &Device) -> Result<Self> {
        let mut t = dmad_train::checkpoint::load_tensors(path, device)?;
        let mut take = |name: &str| {
            t.remove(name).ok_or_else(|| Error::Model {
                path: path.to_path_buf(),
                reason: format!("has no tensor `{name}`"),
            })
        };
        let (mean, inv_std) = (take(MEAN)?, take(INV_STD)?);
        if mean.rank() != 2 || mean.dim(0)? != 1 || mean.dims() != inv_std.dims() {
            return Err(Error::Model {
                path: path.to_path_buf(),
                reason: format!(
                    "`{MEAN}` and `{INV_STD}` must both be [1, features], got {:?} and {:?}",
                    mean.dims(),
                    inv_std.dims()
                ),
            });
        }
        Ok(Self { mean, inv_std })
    }
}

/// `[n, 1, bands, columns]` as `[n, columns, bands]`.
fn bands_last(x: &Tensor) -> Result<Tensor> {
    Ok(x.squeeze(1)?.transpose(1, 2)?.contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_standardised_with_the_fitted_statistics_and_constants_become_zero() {
        let dev = Device::Cpu;
        let train = Tensor::new(&[[1f32, 5.0, 2.0], [3.0, 5.0, 6.0]], &dev).unwrap();
        let st = RowStandardiser::fit(&train).unwrap();
        let z = st
            .apply(&Tensor::new(&[[2f32, 7.0, 8.0]], &dev).unwrap())
            .unwrap();
        assert_eq!(z.to_vec2::<f32>().unwrap(), vec![vec![0.0, 0.0, 2.0]]);
        let err = st
            .apply(&Tensor::zeros((1, 2), candle_core::DType::F32, &dev).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[batch, 3]"), "{err}");
    }

    #[test]
    fn log_mel_images_are_standardised_per_band() {
        let dev = Device::Cpu;
        // Two clips of two bands (rows) and two columns: band 0 is 1 and 3, band 1 is 10 and 30.
        let x = Tensor::new(
            &[[[[1f32, 3.0], [10.0, 30.0]]], [[[1.0, 3.0], [10.0, 30.0]]]],
            &dev,
        )
        .unwrap();
        let st = RowStandardiser::fit_bands(&x).unwrap();
        let z = st
            .apply_bands(&x.get(0).unwrap().unsqueeze(0).unwrap())
            .unwrap();
        assert_eq!(z.dims(), &[1, 1, 2, 2]);
        assert_eq!(
            z.get(0).unwrap().get(0).unwrap().to_vec2::<f32>().unwrap(),
            vec![vec![-1.0, 1.0], vec![-1.0, 1.0]]
        );
        let err = st
            .apply_bands(&Tensor::zeros((1, 2, 2, 2), candle_core::DType::F32, &dev).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[clips, 1, 2, columns]"), "{err}");
    }
}
