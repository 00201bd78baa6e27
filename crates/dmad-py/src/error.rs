//! dmad's errors as Python exceptions, with the Rust error's message: bad input (shapes,
//! values, configuration, data files, model directories) is a `ValueError`, an unfitted
//! detector a `NotFittedError` (a `ValueError`),
//! I/O an `OSError`, anything else a `dmad.DmadError` (a `RuntimeError`).

use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _native,
    NotFittedError,
    PyValueError,
    "The detector must be fitted (or loaded) first."
);
create_exception!(
    _native,
    DmadError,
    PyRuntimeError,
    "An error of dmad's numerical core (a network, the trainer, a sampler)."
);

/// The exception of `e`, carrying its message.
pub fn to_py(e: dmad::Error) -> PyErr {
    let msg = e.to_string();
    match e {
        dmad::Error::ShapeMismatch { .. }
        | dmad::Error::InvalidConfig { .. }
        | dmad::Error::Model { .. }
        | dmad::Error::Data(_)
        | dmad::Error::Metrics(_) => PyValueError::new_err(msg),
        dmad::Error::NotFitted => NotFittedError::new_err(msg),
        dmad::Error::Io { .. } => PyOSError::new_err(msg),
        _ => DmadError::new_err(msg),
    }
}

/// A dmad result as a Python one: `result.or_raise()?` in the binding's functions.
pub trait OrRaise<T> {
    /// The value, or the Python exception of the error.
    fn or_raise(self) -> PyResult<T>;
}

impl<T, E: Into<dmad::Error>> OrRaise<T> for Result<T, E> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(|e| to_py(e.into()))
    }
}
