//! The depthwise convolution of the MBConv blocks, with TensorFlow `SAME` padding.
//!
//! candle's grouped `conv2d` runs one convolution per group, which is far too slow for the
//! thousands of channels of EfficientNet's depthwise layers. Two implementations:
//! - on the CPU (`f32`, `f64`), a direct loop as a candle custom op with its own backward pass
//!   for the input (the weights are frozen, so they get no gradient);
//! - elsewhere (CUDA), a sum of `k * k` shifted, per-channel scaled views of the padded input,
//!   made of ordinary differentiable candle ops.
//!
//! Both are checked against candle's grouped `conv2d` and against each other (values and
//! gradients) in the tests below.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

use crate::Result;

/// Zero padding of one spatial axis for TensorFlow's `SAME` rule: `(before, after, out_len)`
/// with `out_len = ceil(len / stride)`; an odd total padding puts the extra sample at the end.
pub(crate) fn same_padding(len: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = len.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(len);
    (total / 2, total - total / 2, out)
}

/// Zero-pads `x` (`[b, c, h, w]`) for a `SAME` convolution; returns it with the output size.
pub(crate) fn pad_same(x: &Tensor, kernel: usize, stride: usize) -> Result<(Tensor, usize, usize)> {
    let (_, _, h, w) = x.dims4()?;
    let (top, bottom, oh) = same_padding(h, kernel, stride);
    let (left, right, ow) = same_padding(w, kernel, stride);
    let mut x = x.clone();
    if top + bottom > 0 {
        x = x.pad_with_zeros(2, top, bottom)?;
    }
    if left + right > 0 {
        x = x.pad_with_zeros(3, left, right)?;
    }
    Ok((x, oh, ow))
}

/// Narrows or zero-pads (at the end) axis `dim` of `x` to `len`.
fn fit_axis(x: &Tensor, dim: usize, len: usize) -> Result<Tensor> {
    let have = x.dim(dim)?;
    Ok(if have >= len {
        x.narrow(dim, 0, len)?
    } else {
        x.pad_with_zeros(dim, 0, len - have)?
    })
}

/// The geometry of one depthwise convolution on one input size.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    channels: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    top: usize,
    left: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(channels: usize, h: usize, w: usize, k: usize, s: usize) -> Self {
        let (top, _, oh) = same_padding(h, k, s);
        let (left, _, ow) = same_padding(w, k, s);
        Self {
            channels,
            h,
            w,
            k,
            s,
            top,
            left,
            oh,
            ow,
        }
    }

    /// The input row (or column) read by output `o` and kernel tap `i`, if inside the image.
    #[inline]
    fn src(o: usize, i: usize, s: usize, before: usize, len: usize) -> Option<usize> {
        (o * s + i).checked_sub(before).filter(|&y| y < len)
    }

    fn forward<T: WithDType>(&self, x: &[T], wt: &[T], out: &mut [T]) {
        let g = *self;
        let (kk, plane_in, plane_out) = (g.k * g.k, g.h * g.w, g.oh * g.ow);
        out.par_chunks_mut(plane_out)
            .enumerate()
            .for_each(|(p, o)| {
                let xin = &x[p * plane_in..(p + 1) * plane_in];
                let wc = &wt[(p % g.channels) * kk..(p % g.channels + 1) * kk];
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut acc = T::zero();
                        for i in 0..g.k {
                            let Some(y) = Self::src(oy, i, g.s, g.top, g.h) else {
                                continue;
                            };
                            for j in 0..g.k {
                                if let Some(xx) = Self::src(ox, j, g.s, g.left, g.w) {
                                    acc += xin[y * g.w + xx] * wc[i * g.k + j];
                                }
                            }
                        }
                        o[oy * g.ow + ox] = acc;
                    }
                }
            });
    }

    /// The gradient with respect to the input: each output gradient scattered back through
    /// the taps that produced it.
    fn backward_input<T: WithDType>(&self, grad: &[T], wt: &[T], gx: &mut [T]) {
        let g = *self;
        let (kk, plane_in, plane_out) = (g.k * g.k, g.h * g.w, g.oh * g.ow);
        gx.par_chunks_mut(plane_in)
            .enumerate()
            .for_each(|(p, gxi)| {
                gxi.fill(T::zero());
                let go = &grad[p * plane_out..(p + 1) * plane_out];
                let wc = &wt[(p % g.channels) * kk..(p % g.channels + 1) * kk];
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let v = go[oy * g.ow + ox];
                        for i in 0..g.k {
                            let Some(y) = Self::src(oy, i, g.s, g.top, g.h) else {
                                continue;
                            };
                            for j in 0..g.k {
                                if let Some(xx) = Self::src(ox, j, g.s, g.left, g.w) {
                                    gxi[y * g.w + xx] += v * wc[i * g.k + j];
                                }
                            }
                        }
                    }
                }
            });
    }
}

fn contiguous_slice<'a, T>(v: &'a [T], l: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("depthwise convolution: {what} must be contiguous"),
    }
}

/// `y = depthwise_conv(x, w)`: `x` `[b, c, h, w]`, `w` `[c, k * k]`, both contiguous.
struct CpuDepthwise {
    kernel: usize,
    stride: usize,
}

impl CpuDepthwise {
    fn geometry(&self, l1: &Layout) -> candle_core::Result<(usize, Geometry)> {
        let (b, c, h, w) = l1.shape().dims4()?;
        Ok((b, Geometry::new(c, h, w, self.kernel, self.stride)))
    }
}

impl CustomOp2 for CpuDepthwise {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-same"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, g) = self.geometry(l1)?;
        let shape = Shape::from((b, g.channels, g.oh, g.ow));
        let n = shape.elem_count();
        let storage = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => {
                let mut out = vec![0f32; n];
                g.forward(
                    contiguous_slice(x, l1, "x")?,
                    contiguous_slice(w, l2, "w")?,
                    &mut out,
                );
                CpuStorage::F32(out)
            }
            (CpuStorage::F64(x), CpuStorage::F64(w)) => {
                let mut out = vec![0f64; n];
                g.forward(
                    contiguous_slice(x, l1, "x")?,
                    contiguous_slice(w, l2, "w")?,
                    &mut out,
                );
                CpuStorage::F64(out)
            }
            _ => candle_core::bail!("depthwise convolution: f32 or f64 of one dtype only"),
        };
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, c, h, wd) = x.dims4()?;
        let op = CpuDepthwiseBackward {
            geometry: Geometry::new(c, h, wd, self.kernel, self.stride),
        };
        let gx = grad.contiguous()?.apply_op2_no_bwd(w, &op)?;
        // The weights are frozen: no gradient for them.
        Ok((Some(gx), None))
    }
}

/// The input gradient of [`CpuDepthwise`]: `(grad [b, c, oh, ow], w) -> [b, c, h, w]`.
struct CpuDepthwiseBackward {
    geometry: Geometry,
}

impl CustomOp2 for CpuDepthwiseBackward {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-same-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geometry;
        let (b, _, _, _) = l1.shape().dims4()?;
        let shape = Shape::from((b, g.channels, g.h, g.w));
        let n = shape.elem_count();
        let storage = match (s1, s2) {
            (CpuStorage::F32(go), CpuStorage::F32(w)) => {
                let mut gx = vec![0f32; n];
                g.backward_input(
                    contiguous_slice(go, l1, "grad")?,
                    contiguous_slice(w, l2, "w")?,
                    &mut gx,
                );
                CpuStorage::F32(gx)
            }
            (CpuStorage::F64(go), CpuStorage::F64(w)) => {
                let mut gx = vec![0f64; n];
                g.backward_input(
                    contiguous_slice(go, l1, "grad")?,
                    contiguous_slice(w, l2, "w")?,
                    &mut gx,
                );
                CpuStorage::F64(gx)
            }
            _ => candle_core::bail!("depthwise convolution backward: f32 or f64 of one dtype only"),
        };
        Ok((storage, shape))
    }
}

/// A depthwise `k x k` convolution with `SAME` padding and a per-channel bias (the folded
/// batch normalisation).
#[derive(Debug, Clone)]
pub(crate) struct Depthwise {
    /// `[c, k * k]`, row-major over the kernel.
    weight: Tensor,
    /// `k * k` tensors `[1, c, 1, 1]`, for the generic path.
    taps: Vec<Tensor>,
    /// `[1, c, 1, 1]`.
    bias: Tensor,
    kernel: usize,
    stride: usize,
}

impl Depthwise {
    /// From the weight `[c, 1, k, k]` (or `[c, k * k]`) and the bias `[c]`.
    pub(crate) fn new(
        weight: &Tensor,
        bias: &Tensor,
        kernel: usize,
        stride: usize,
    ) -> Result<Self> {
        let c = weight.dim(0)?;
        let weight = weight.reshape((c, kernel * kernel))?.contiguous()?;
        let taps = (0..kernel * kernel)
            .map(|t| Ok(weight.narrow(1, t, 1)?.reshape((1, c, 1, 1))?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            weight,
            taps,
            bias: bias.reshape((1, c, 1, 1))?,
            kernel,
            stride,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) {
            self.forward_cpu(x)?
        } else {
            self.forward_taps(x)?
        };
        Ok(y.broadcast_add(&self.bias)?)
    }

    fn forward_cpu(&self, x: &Tensor) -> Result<Tensor> {
        let op = CpuDepthwise {
            kernel: self.kernel,
            stride: self.stride,
        };
        Ok(x.contiguous()?.apply_op2(&self.weight, op)?)
    }

    fn forward_taps(&self, x: &Tensor) -> Result<Tensor> {
        let (k, s) = (self.kernel, self.stride);
        let (xp, oh, ow) = pad_same(x, k, s)?;
        let (b, c, _, _) = xp.dims4()?;
        // For stride s, split the padded input into s * s phases: phase (p, q) holds the rows
        // p, p + s, ... and the columns q, q + s, ...; tap (i, j) then reads phase
        // (i % s, j % s) from row i / s and column j / s on.
        let (qh, qw) = (oh + (k - 1) / s, ow + (k - 1) / s);
        let phases: Vec<Tensor> = if s == 1 {
            vec![xp]
        } else {
            let xp = fit_axis(&fit_axis(&xp, 2, qh * s)?, 3, qw * s)?;
            let xp = xp.reshape((b, c, qh, s, qw, s))?;
            let mut v = Vec::with_capacity(s * s);
            for p in 0..s {
                for q in 0..s {
                    v.push(
                        xp.narrow(3, p, 1)?
                            .narrow(5, q, 1)?
                            .reshape((b, c, qh, qw))?,
                    );
                }
            }
            v
        };
        let mut acc: Option<Tensor> = None;
        for i in 0..k {
            for j in 0..k {
                let phase = &phases[(i % s) * s + (j % s)];
                let patch = phase.narrow(2, i / s, oh)?.narrow(3, j / s, ow)?;
                let term = patch.broadcast_mul(&self.taps[i * k + j])?;
                acc = Some(match acc {
                    None => term,
                    Some(a) => (a + term)?,
                });
            }
        }
        Ok(acc.expect("a kernel has at least one tap"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn same_padding_matches_the_reference_formula() {
        // Conv2dStaticSamePadding for a 224 input: stem (0, 1); 3x3 stride 1 (1, 1);
        // 5x5 stride 2 on 56 (1, 2); 5x5 stride 2 on 14 (1, 2).
        assert_eq!(same_padding(224, 3, 2), (0, 1, 112));
        assert_eq!(same_padding(112, 3, 1), (1, 1, 112));
        assert_eq!(same_padding(56, 5, 2), (1, 2, 28));
        assert_eq!(same_padding(14, 5, 2), (1, 2, 7));
        assert_eq!(same_padding(7, 3, 2), (1, 1, 4));
        assert_eq!(same_padding(1, 5, 2), (2, 2, 1));
    }

    const CASES: [(usize, usize, usize, usize); 7] = [
        (3, 1, 7, 6),
        (3, 2, 8, 8),
        (5, 2, 9, 7),
        (5, 1, 5, 5),
        (3, 2, 1, 2),
        (5, 2, 14, 14),
        (3, 2, 7, 7),
    ];

    fn seeded(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v: Vec<f64> = (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// Both implementations against candle's grouped `conv2d` on the same padded input.
    #[test]
    fn both_paths_match_grouped_conv2d() {
        for (n, &(k, s, h, w)) in CASES.iter().enumerate() {
            let c = 4;
            let x = seeded(&[2, c, h, w], n as u64);
            let wt = seeded(&[c, 1, k, k], 100 + n as u64);
            let zero = Tensor::zeros(c, DType::F64, &Device::Cpu).unwrap();
            let dw = Depthwise::new(&wt, &zero, k, s).unwrap();
            let (xp, oh, ow) = pad_same(&x, k, s).unwrap();
            let want = xp.conv2d(&wt, 0, s, 1, c).unwrap();
            for got in [dw.forward_cpu(&x).unwrap(), dw.forward_taps(&x).unwrap()] {
                assert_eq!(got.dims(), &[2, c, oh, ow]);
                assert!(max_diff(&got, &want) < 1e-12, "k {k} s {s} {h}x{w}");
            }
        }
    }

    /// The custom op's input gradient equals the gradient through the differentiable ops.
    #[test]
    fn cpu_backward_matches_the_generic_path() {
        for (n, &(k, s, h, w)) in CASES.iter().enumerate() {
            let c = 3;
            let x = Var::from_tensor(&seeded(&[2, c, h, w], 200 + n as u64)).unwrap();
            let wt = seeded(&[c, 1, k, k], 300 + n as u64);
            let zero = Tensor::zeros(c, DType::F64, &Device::Cpu).unwrap();
            let dw = Depthwise::new(&wt, &zero, k, s).unwrap();
            let (_, oh, ow) = pad_same(x.as_tensor(), k, s).unwrap();
            let r = seeded(&[2, c, oh, ow], 400 + n as u64);
            let grad = |y: Tensor| {
                let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                g.get(x.as_tensor()).unwrap().clone()
            };
            let a = grad(dw.forward_cpu(x.as_tensor()).unwrap());
            let b = grad(dw.forward_taps(x.as_tensor()).unwrap());
            assert_eq!(a.dims(), &[2, c, h, w]);
            assert!(max_diff(&a, &b) < 1e-12, "k {k} s {s} {h}x{w}");
        }
    }
}
