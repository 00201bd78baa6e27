//! Differentiable bilinear resizing, as PyTorch's `F.interpolate(mode="bilinear",
//! align_corners=False, antialias=False)`.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// The `[out_len, in_len]` matrix that resamples one axis like PyTorch's bilinear
/// interpolation with `align_corners=False`.
///
/// Output index `o` reads the source position `src = (o + 0.5) * in_len / out_len - 0.5`,
/// clamped below at 0, and mixes the samples `floor(src)` and `floor(src) + 1` (the latter
/// clamped to the last sample) with weights `1 - frac` and `frac`. The arithmetic is done in
/// `f32`, as PyTorch does for `f32` tensors on the CPU, so the weights are PyTorch's bit for bit.
pub(crate) fn interpolation_weights(in_len: usize, out_len: usize) -> Vec<f32> {
    let mut w = vec![0f32; out_len * in_len];
    let scale = in_len as f32 / out_len as f32;
    for o in 0..out_len {
        let src = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
        let i0 = (src as usize).min(in_len - 1);
        let i1 = if i0 < in_len - 1 { i0 + 1 } else { i0 };
        let l1 = src - i0 as f32;
        let l0 = 1.0 - l1;
        w[o * in_len + i0] += l0;
        w[o * in_len + i1] += l1;
    }
    w
}

fn matrix(in_len: usize, out_len: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let w = interpolation_weights(in_len, out_len);
    Ok(Tensor::from_vec(w, (out_len, in_len), device)?.to_dtype(dtype)?)
}

/// Resizes `x` to `out_h x out_w` with bilinear interpolation (`align_corners=False`, no
/// antialiasing: the behaviour of PyTorch's `F.interpolate(x, size, mode="bilinear")`).
///
/// The resize is two matrix products with constant interpolation matrices, so gradients flow
/// back to `x`. When the size is unchanged `x` is returned as is.
///
/// # Shapes
/// - `x`: `[batch, channel, height, width]`, a float dtype;
/// - returns `[batch, channel, out_h, out_w]`.
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] if `x` is not 4-D or has an empty spatial axis, and
/// [`dmad_core::Error::InvalidConfig`] if `out_h` or `out_w` is 0.
///
/// # Example
/// ```
/// # fn main() -> dmad_score::Result<()> {
/// use candle_core::{Device, Tensor};
/// let x = Tensor::arange(0f32, 4.0, &Device::Cpu)?.reshape((1, 1, 2, 2))?;
/// let y = dmad_score::efficientnet::resize_bilinear(&x, 4, 4)?;
/// assert_eq!(y.dims(), &[1, 1, 4, 4]);
/// // PyTorch: F.interpolate(x, size=4, mode="bilinear")[0, 0, 0] = [0, 0.25, 0.75, 1]
/// assert_eq!(y.get(0)?.get(0)?.get(0)?.to_vec1::<f32>()?, [0.0, 0.25, 0.75, 1.0]);
/// # Ok(())
/// # }
/// ```
pub fn resize_bilinear(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    const CONTEXT: &str = "resize_bilinear input";
    let (_, _, h, w) = x
        .dims4()
        .map_err(|_| Error::shape(CONTEXT, "[batch, channel, height, width]", x.dims()))?;
    if h == 0 || w == 0 {
        return Err(Error::shape(
            CONTEXT,
            "height and width at least 1",
            x.dims(),
        ));
    }
    if out_h == 0 || out_w == 0 {
        return Err(Error::config(
            "image_size",
            format!("the output size must be at least 1x1, got {out_h}x{out_w}"),
        ));
    }
    let mut y = x.clone();
    if out_w != w {
        let mw = matrix(w, out_w, x.dtype(), x.device())?.t()?;
        y = y.contiguous()?.broadcast_matmul(&mw)?;
    }
    if out_h != h {
        let mh = matrix(h, out_h, x.dtype(), x.device())?;
        y = mh.broadcast_matmul(&y.contiguous()?)?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's `upsample_bilinear2d` CPU kernel, written out pixel by pixel.
    fn oracle(x: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
        let src = |o: usize, inl: usize, outl: usize| {
            let scale = inl as f32 / outl as f32;
            let s = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
            let i0 = s as usize;
            let i1 = if i0 < inl - 1 { i0 + 1 } else { i0 };
            let l1 = s - i0 as f32;
            (i0, i1, 1.0 - l1, l1)
        };
        let mut y = vec![0f32; oh * ow];
        for r in 0..oh {
            let (h0, h1, a0, a1) = src(r, h, oh);
            for c in 0..ow {
                let (w0, w1, b0, b1) = src(c, w, ow);
                y[r * ow + c] = a0 * (b0 * x[h0 * w + w0] + b1 * x[h0 * w + w1])
                    + a1 * (b0 * x[h1 * w + w0] + b1 * x[h1 * w + w1]);
            }
        }
        y
    }

    #[test]
    fn matches_the_pixel_by_pixel_oracle_over_a_sweep_of_sizes() {
        let sizes = [
            (1, 1),
            (2, 3),
            (5, 4),
            (7, 16),
            (16, 7),
            (13, 13),
            (224, 3),
            (3, 224),
        ];
        let dev = Device::Cpu;
        let mut seed = 12345u64;
        for &(h, w) in &sizes {
            for &(oh, ow) in &sizes {
                let x: Vec<f32> = (0..h * w)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
                    })
                    .collect();
                let t = Tensor::from_vec(x.clone(), (1, 1, h, w), &dev).unwrap();
                let y = resize_bilinear(&t, oh, ow).unwrap();
                assert_eq!(y.dims(), &[1, 1, oh, ow]);
                let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let want = oracle(&x, h, w, oh, ow);
                for (a, b) in y.iter().zip(&want) {
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{h}x{w} -> {oh}x{ow}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn rows_of_the_interpolation_matrix_sum_to_one() {
        for (i, o) in [(1, 5), (5, 1), (512, 224), (224, 512), (3, 3)] {
            let w = interpolation_weights(i, o);
            for r in 0..o {
                let s: f32 = w[r * i..(r + 1) * i].iter().sum();
                assert!((s - 1.0).abs() <= 1e-6, "{i}->{o} row {r}: {s}");
            }
        }
    }

    #[test]
    fn bad_shapes_and_sizes_are_errors() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        let e = resize_bilinear(&x, 4, 4).unwrap_err().to_string();
        assert!(e.contains("resize_bilinear") && e.contains("[2, 3]"), "{e}");
        let x = Tensor::zeros((1, 1, 4, 4), DType::F32, &dev).unwrap();
        let e = resize_bilinear(&x, 0, 4).unwrap_err().to_string();
        assert!(e.contains("image_size"), "{e}");
        let x = Tensor::zeros((1, 1, 0, 4), DType::F32, &dev).unwrap();
        assert!(resize_bilinear(&x, 2, 2).is_err());
    }
}
