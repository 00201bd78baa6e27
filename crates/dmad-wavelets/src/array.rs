//! A small owned n-dimensional array of `f64`, row-major, for transforms along chosen axes.

use crate::{Error, Result};

/// An owned, row-major (C order) n-dimensional array of `f64`: a shape and its data.
///
/// The batch container of the f64 transforms ([`crate::dwt_axis`], [`crate::dwt2`], ...). Any
/// axis can be transformed; the others are batch axes.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl NdArray {
    /// An array of the given shape over `data` (row-major).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `data.len()` is not the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::ShapeMismatch {
                context: "NdArray::new (product of shape vs data length)",
                expected: vec![n],
                got: vec![data.len()],
            });
        }
        Ok(Self { shape, data })
    }

    /// A one-dimensional array.
    pub fn from_vec(data: Vec<f64>) -> Self {
        Self {
            shape: vec![data.len()],
            data,
        }
    }

    /// An array of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }
    /// The data, row-major.
    pub fn data(&self) -> &[f64] {
        &self.data
    }
    /// The data, row-major, mutably.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }
    /// Gives the data back.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// `(outer, n, inner)`: the products of the dimensions before `axis`, the length of `axis`,
    /// and the product of the dimensions after it.
    pub(crate) fn split(&self, axis: usize) -> Result<(usize, usize, usize)> {
        if axis >= self.shape.len() {
            return Err(Error::InvalidAxis {
                axis,
                ndim: self.shape.len(),
            });
        }
        let outer = self.shape[..axis].iter().product();
        let inner = self.shape[axis + 1..].iter().product();
        Ok((outer, self.shape[axis], inner))
    }

    /// The shape with `axis` set to `len`.
    pub(crate) fn shape_with(&self, axis: usize, len: usize) -> Vec<usize> {
        let mut s = self.shape.clone();
        s[axis] = len;
        s
    }
}
