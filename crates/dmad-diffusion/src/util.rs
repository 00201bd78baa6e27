//! Small tensor helpers shared by the schedule and the samplers.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// Reads the per-sample timesteps `t: [batch]` (any dtype) as `f64`.
///
/// `batch` is the leading dimension of the sample the timesteps go with.
pub(crate) fn timestep_values(t: &Tensor, batch: usize, context: &'static str) -> Result<Vec<f64>> {
    if t.dims() != [batch] {
        return Err(Error::ShapeMismatch {
            context,
            expected: format!("t: [{batch}] (one timestep per sample)"),
            got: t.dims().to_vec(),
        });
    }
    Ok(t.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// The leading (batch) dimension of a sample, which must have rank >= 1.
pub(crate) fn batch_of(x: &Tensor, context: &'static str) -> Result<usize> {
    match x.dims().first() {
        Some(&b) => Ok(b),
        None => Err(Error::ShapeMismatch {
            context,
            expected: "[batch, ...]".into(),
            got: vec![],
        }),
    }
}

/// Checks that `b` has the shape of `a`.
pub(crate) fn same_shape(a: &Tensor, b: &Tensor, context: &'static str) -> Result<()> {
    if a.dims() != b.dims() {
        return Err(Error::ShapeMismatch {
            context,
            expected: format!("{:?} (the sample's shape)", a.dims()),
            got: b.dims().to_vec(),
        });
    }
    Ok(())
}

/// Builds a `[batch, 1, 1, ...]` coefficient tensor of `like`'s rank, dtype and device from
/// per-sample `f64` values.
pub(crate) fn per_sample(values: &[f64], like: &Tensor) -> Result<Tensor> {
    let mut shape = vec![1usize; like.rank().max(1)];
    shape[0] = values.len();
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    let c = Tensor::from_vec(v, shape, like.device())?;
    Ok(if like.dtype() == DType::F32 {
        c
    } else {
        c.to_dtype(like.dtype())?
    })
}

/// `a * x + b * y` with per-sample coefficients (`a`, `b` of length batch).
pub(crate) fn lincomb(a: &[f64], x: &Tensor, b: &[f64], y: &Tensor) -> Result<Tensor> {
    let ca = per_sample(a, x)?;
    let cb = per_sample(b, x)?;
    Ok((x.broadcast_mul(&ca)? + y.broadcast_mul(&cb)?)?)
}

/// `x * a` with a per-sample coefficient.
pub(crate) fn scale(x: &Tensor, a: &[f64]) -> Result<Tensor> {
    Ok(x.broadcast_mul(&per_sample(a, x)?)?)
}

/// The timestep tensor handed to a denoiser: `u32` when every value is a whole number,
/// `f32` otherwise (Euler's fractional timesteps).
pub(crate) fn timestep_tensor(values: &[f64], device: &candle_core::Device) -> Result<Tensor> {
    if values.iter().all(|v| v.fract() == 0.0 && *v >= 0.0) {
        let v: Vec<u32> = values.iter().map(|&x| x as u32).collect();
        Ok(Tensor::from_vec(v, values.len(), device)?)
    } else {
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Ok(Tensor::from_vec(v, values.len(), device)?)
    }
}

/// The index of `t` in a plan of timesteps (matching within 1e-3, since plans are stored as
/// `f32` values and callers may pass `f32` tensors).
pub(crate) fn plan_index(plan: &[f64], t: f64) -> Option<usize> {
    plan.iter().position(|&p| (p - t).abs() <= 1e-3)
}
