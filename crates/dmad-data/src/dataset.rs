use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// A random-access collection of samples, decoded on demand (like burn's `Dataset`).
///
/// Loaders list their files when they are opened and decode one sample per [`Dataset::get`],
/// so a large folder is never held in memory at once.
pub trait Dataset {
    /// The sample type.
    type Item;

    /// The number of samples.
    fn len(&self) -> usize;

    /// Decodes sample `index`.
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`] if `index >= len()`, or the loader's error for a file
    /// that cannot be decoded (it names the file).
    fn get(&self, index: usize) -> Result<Self::Item>;

    /// Whether the dataset has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the samples in batches of `batch_size` (the last batch may be smaller).
    ///
    /// With `shuffle = Some(seed)` the order is a permutation drawn from ChaCha8 seeded with
    /// `seed` (the same seed gives the same order); with `None` the order is `0..len()`.
    ///
    /// # Panics
    /// If `batch_size == 0`.
    fn batches(&self, batch_size: usize, shuffle: Option<u64>) -> Batches<'_, Self>
    where
        Self: Sized,
    {
        assert!(batch_size > 0, "batch_size must be positive");
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(seed) = shuffle {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        }
        Batches {
            dataset: self,
            order,
            pos: 0,
            batch_size,
        }
    }
}

/// The iterator of [`Dataset::batches`]: each item is the batch's samples, or the first error.
#[derive(Debug)]
pub struct Batches<'a, D> {
    dataset: &'a D,
    order: Vec<usize>,
    pos: usize,
    batch_size: usize,
}

impl<D> Batches<'_, D> {
    /// The sample indices in iteration order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl<D: Dataset> Iterator for Batches<'_, D> {
    type Item = Result<Vec<D::Item>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let batch = self.order[self.pos..end]
            .iter()
            .map(|&i| self.dataset.get(i))
            .collect::<Result<Vec<_>>>();
        self.pos = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.pos).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl<D: Dataset> ExactSizeIterator for Batches<'_, D> {}

/// Checks `index < len`, for [`Dataset::get`] implementations.
pub(crate) fn check_index(index: usize, len: usize) -> Result<()> {
    if index >= len {
        return Err(crate::Error::IndexOutOfRange {
            index,
            len,
            context: None,
        });
    }
    Ok(())
}

/// An in-memory dataset of tensors (for example table rows or series windows).
#[derive(Debug, Clone)]
pub struct TensorDataset {
    data: candle_core::Tensor,
}

impl TensorDataset {
    /// Wraps `data` of shape `[n, ...]`; sample `i` is `data[i]`.
    ///
    /// # Errors
    /// [`crate::Error::ShapeMismatch`] if `data` is a scalar.
    pub fn new(data: candle_core::Tensor) -> Result<Self> {
        if data.rank() == 0 {
            return Err(crate::Error::ShapeMismatch {
                context: "TensorDataset::new".into(),
                expected: "[n, ...]".into(),
                got: vec![],
            });
        }
        Ok(Self { data })
    }

    /// The whole tensor `[n, ...]`.
    pub fn tensor(&self) -> &candle_core::Tensor {
        &self.data
    }
}

impl Dataset for TensorDataset {
    type Item = candle_core::Tensor;

    fn len(&self) -> usize {
        self.data.dim(0).unwrap_or(0)
    }

    fn get(&self, index: usize) -> Result<Self::Item> {
        check_index(index, self.len())?;
        Ok(self.data.get(index)?)
    }
}

/// Stacks samples `[...]` into a batch `[B, ...]`.
///
/// # Errors
/// [`crate::Error::ShapeMismatch`] if `items` is empty; a candle error if shapes differ.
pub fn stack(items: &[candle_core::Tensor]) -> Result<candle_core::Tensor> {
    if items.is_empty() {
        return Err(crate::Error::ShapeMismatch {
            context: "stack".into(),
            expected: "at least one sample".into(),
            got: vec![0],
        });
    }
    Ok(candle_core::Tensor::stack(items, 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Range(usize);
    impl Dataset for Range {
        type Item = usize;
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, index: usize) -> Result<usize> {
            check_index(index, self.0)?;
            Ok(index)
        }
    }

    #[test]
    fn batches_cover_every_sample_once() {
        let d = Range(10);
        let batches: Vec<Vec<usize>> = d.batches(3, None).map(|b| b.unwrap()).collect();
        assert_eq!(
            batches,
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]]
        );
        let mut all: Vec<usize> = d.batches(4, Some(7)).flat_map(|b| b.unwrap()).collect();
        assert_ne!(all, (0..10).collect::<Vec<_>>());
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_is_seeded() {
        let d = Range(50);
        let a = d.batches(8, Some(1)).order().to_vec();
        let b = d.batches(8, Some(1)).order().to_vec();
        let c = d.batches(8, Some(2)).order().to_vec();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(d.batches(8, None).len(), 7);
    }

    #[test]
    fn get_out_of_range_is_an_error() {
        assert!(matches!(
            Range(3).get(3),
            Err(crate::Error::IndexOutOfRange {
                index: 3,
                len: 3,
                ..
            })
        ));
    }

    #[test]
    fn tensor_dataset_rows() {
        let t = candle_core::Tensor::arange(0f32, 6.0, &candle_core::Device::Cpu)
            .unwrap()
            .reshape((3, 2))
            .unwrap();
        let d = TensorDataset::new(t).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.get(1).unwrap().to_vec1::<f32>().unwrap(), vec![2.0, 3.0]);
        let b = stack(&d.batches(2, None).next().unwrap().unwrap()).unwrap();
        assert_eq!(b.dims(), &[2, 2]);
        assert!(stack(&[]).is_err());
    }
}
