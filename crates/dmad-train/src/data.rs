use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// Training samples the trainer can draw batches from by index.
///
/// The trainer draws the indices from its own seeded RNG, so a run (and its resumption) sees
/// the same batches whatever the source. A tensor `[n, ...]` of samples implements it.
pub trait TrainData {
    /// The number of samples.
    fn len(&self) -> usize;

    /// Stacks the samples at `indices` into a batch `[indices.len(), ...]` on `device`.
    ///
    /// # Errors
    /// Returns an error if a sample cannot be loaded.
    fn batch(&self, indices: &[usize], device: &Device) -> Result<Tensor>;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TrainData for Tensor {
    fn len(&self) -> usize {
        self.dims().first().copied().unwrap_or(0)
    }

    fn batch(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let n = TrainData::len(self);
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::InvalidData(format!(
                "sample index {bad} out of range for {n} samples"
            )));
        }
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let idx = Tensor::from_vec(idx, indices.len(), self.device())?;
        Ok(self.index_select(&idx, 0)?.to_device(device)?)
    }
}
