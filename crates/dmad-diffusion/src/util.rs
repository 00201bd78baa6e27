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

/// `x / a` with a per-sample divisor (a true division, as PyTorch divides by a scalar tensor).
pub(crate) fn div(x: &Tensor, a: &[f64]) -> Result<Tensor> {
    Ok(x.broadcast_div(&per_sample(a, x)?)?)
}

/// `torch.quantile(values, q)` with linear interpolation, in `f32` as PyTorch computes it for
/// `f32` input: rank `q (n - 1)`, then `lerp` between the neighbours.
pub(crate) fn quantile_f32(values: &mut [f32], q: f32) -> f32 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    let rank = q * (n - 1) as f32;
    let below = (rank as usize).min(n - 1);
    let above = (rank.ceil() as usize).min(n - 1);
    let (lo, hi, w) = (values[below], values[above], rank - below as f32);
    // PyTorch's lerp.
    if w < 0.5 {
        lo + w * (hi - lo)
    } else {
        hi - (hi - lo) * (1.0 - w)
    }
}

/// Dynamic thresholding (Saharia et al., arXiv 2205.11487), as diffusers' `_threshold_sample`:
/// per sample, `s` is the `ratio` quantile of `|x0|` clamped to `[1, max]`, and `x0` is clamped
/// to `[-s, s]` and divided by `s`.
///
/// The quantiles are computed on the host: one read-back of `x0` per call.
pub(crate) fn threshold_sample(x0: &Tensor, ratio: f64, max: f64) -> Result<Tensor> {
    let batch = batch_of(x0, "thresholding: x0")?;
    let rows = x0
        .to_dtype(DType::F32)?
        .reshape((batch, ()))?
        .abs()?
        .to_vec2::<f32>()?;
    let s: Vec<f64> = rows
        .into_iter()
        .map(|mut row| {
            let q = quantile_f32(&mut row, ratio as f32);
            q.max(1.0).min(max as f32) as f64
        })
        .collect();
    let hi = per_sample(&s, x0)?;
    Ok(x0
        .broadcast_maximum(&hi.neg()?)?
        .broadcast_minimum(&hi)?
        .broadcast_div(&hi)?)
}

/// Checks diffusers' dynamic-thresholding options when `thresholding` is on.
pub(crate) fn check_thresholding(on: bool, ratio: f64, max: f64) -> Result<()> {
    if !on {
        return Ok(());
    }
    if !(0.0..=1.0).contains(&ratio) {
        return Err(Error::InvalidConfig {
            field: "dynamic_thresholding_ratio",
            reason: format!("must be in [0, 1], got {ratio}"),
        });
    }
    if !(max.is_finite() && max > 0.0) {
        return Err(Error::InvalidConfig {
            field: "sample_max_value",
            reason: format!("must be positive and finite, got {max}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn quantile_interpolates_like_torch() {
        // torch.quantile(tensor([4., 1., 3., 2.]), q): 0 -> 1, 1 -> 4, 0.5 -> 2.5, 0.9 -> 3.7.
        for (q, want) in [(0.0, 1.0), (1.0, 4.0), (0.5, 2.5), (0.9, 3.7)] {
            let got = quantile_f32(&mut [4.0, 1.0, 3.0, 2.0], q);
            assert!((got - want).abs() < 1e-6, "q {q}: {got}");
        }
        assert_eq!(quantile_f32(&mut [7.0], 0.995), 7.0);
    }

    #[test]
    fn thresholding_clamps_and_rescales_per_sample() {
        // Sample 0: |x| quantile 0.5 is 2.5 (clamped to max 2): x clamped to [-2, 2] then / 2.
        // Sample 1: quantile 0.5 is 0.25, raised to 1: plain clipping to [-1, 1].
        let x = Tensor::new(
            &[[4.0f32, -1.0, 3.0, 2.0], [0.5, -0.1, 0.2, 0.3]],
            &Device::Cpu,
        )
        .unwrap();
        let y = threshold_sample(&x, 0.5, 2.0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(y[0], vec![1.0, -0.5, 1.0, 1.0]);
        assert_eq!(y[1], vec![0.5, -0.1, 0.2, 0.3]);
        // With the default max 1 thresholding is clipping to [-1, 1].
        let y = threshold_sample(&x, 0.995, 1.0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(y[0], vec![1.0, -1.0, 1.0, 1.0]);
    }
}
