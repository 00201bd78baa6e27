//! Arrays between Python and Rust: NumPy arrays cross as C-order bytes plus a shape (the
//! Python side makes them contiguous `float32`/`float64`), so the binding needs no NumPy C API
//! and stays abi3. Every check here names the array, its shape and the bad element.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The elements of a `float32` array given as bytes, checked against `shape`: non-empty, the
/// right byte count, every value finite.
pub fn f32s(name: &str, bytes: &[u8], shape: &[usize]) -> PyResult<Vec<f32>> {
    let values: Vec<f32> = elements(name, bytes, shape, 4)?
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    check_finite(name, shape, values.iter().map(|&v| v as f64))?;
    Ok(values)
}

/// As [`f32s`] for a `float64` array.
pub fn f64s(name: &str, bytes: &[u8], shape: &[usize]) -> PyResult<Vec<f64>> {
    let values: Vec<f64> = elements(name, bytes, shape, 8)?
        .map(|c| f64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    check_finite(name, shape, values.iter().copied())?;
    Ok(values)
}

fn elements<'a>(
    name: &str,
    bytes: &'a [u8],
    shape: &[usize],
    size: usize,
) -> PyResult<std::slice::ChunksExact<'a, u8>> {
    let count: usize = shape.iter().product();
    if shape.is_empty() || count == 0 {
        return Err(PyValueError::new_err(format!(
            "{name} is empty (shape {shape:?}): give at least one sample"
        )));
    }
    if bytes.len() != count * size {
        return Err(PyValueError::new_err(format!(
            "{name}: {} bytes do not hold shape {shape:?} of {size}-byte floats",
            bytes.len()
        )));
    }
    Ok(bytes.chunks_exact(size))
}

/// The index of element `flat` of an array of `shape`, as `[i, j, ...]`.
fn index(shape: &[usize], mut flat: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        idx[k] = flat % d.max(1);
        flat /= d.max(1);
    }
    idx
}

fn check_finite(name: &str, shape: &[usize], values: impl Iterator<Item = f64>) -> PyResult<()> {
    for (i, v) in values.enumerate() {
        if !v.is_finite() {
            return Err(PyValueError::new_err(format!(
                "{name}{:?} is {v} (shape {shape:?}): dmad needs finite values; drop or impute \
                 NaN and infinite values first",
                index(shape, i)
            )));
        }
    }
    Ok(())
}

/// `values` as native-endian bytes, for `numpy.frombuffer`.
pub fn f32_bytes<'py>(py: Python<'py>, values: &[f32]) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    PyBytes::new(py, &bytes)
}
