//! Layer normalisation over the last axis of `[rows, width]` (Ba et al. 2016,
//! arXiv:1607.06450), alone or fused with SiLU, and SiLU alone: one pass forward and one
//! backward per op, rows spread over rayon's pool.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::simd::sigmoid;
use crate::util::{cpu_slice, use_cpu_kernel, with_f32};
use crate::{Error, Result};

/// Rows per parallel task. Fixed (not derived from the thread count), so that the parameter
/// gradients, summed task by task in order, have the same bits on every machine.
const ROWS: usize = 32;

/// LayerNorm with per-feature `gamma` and `beta`, optionally followed by SiLU.
#[derive(Debug, Clone, Copy)]
struct LayerNormOp {
    eps: f32,
    silu: bool,
}

/// Independent accumulators of the row sums: the adds vectorise (one chain per lane instead
/// of one serial chain), and the lanes are added in f64 at the end.
const LANES: usize = 8;

/// `sum(f(i))` for `i` in `0..n`, in [`LANES`] f32 lanes added in f64.
#[inline(always)]
fn lane_sum(n: usize, f: impl Fn(usize) -> f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let full = n / LANES * LANES;
    for base in (0..full).step_by(LANES) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(base + l);
        }
    }
    let mut s: f64 = acc.iter().map(|&a| a as f64).sum();
    for i in full..n {
        s += f(i) as f64;
    }
    s
}

/// `(mean, 1 / sqrt(var + eps))` of one row (biased variance). The mean gets a second-pass
/// correction (the mean of the residuals), so a large offset costs no precision.
fn stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len();
    let m0 = (lane_sum(n, |i| x[i]) / n as f64) as f32;
    let r = lane_sum(n, |i| x[i] - m0) / n as f64;
    let mean = (m0 as f64 + r) as f32;
    let var = lane_sum(n, |i| {
        let d = x[i] - mean;
        d * d
    }) / n as f64;
    (mean, (1.0 / (var + eps as f64).sqrt()) as f32)
}

impl LayerNormOp {
    fn forward(&self, x: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<f32> {
        let w = gamma.len();
        let mut out = vec![0.0f32; x.len()];
        if w == 0 {
            return out;
        }
        out.par_chunks_mut(w * ROWS)
            .zip(x.par_chunks(w * ROWS))
            .for_each(|(o, xs)| {
                for (o, x) in o.chunks_exact_mut(w).zip(xs.chunks_exact(w)) {
                    let (mean, rstd) = stats(x, self.eps);
                    for (((o, &x), &g), &b) in o.iter_mut().zip(x).zip(gamma).zip(beta) {
                        let z = (x - mean) * rstd * g + b;
                        *o = if self.silu { z * sigmoid(z) } else { z };
                    }
                }
            });
        out
    }

    /// `(dx, dgamma, dbeta)`; the statistics are recomputed from `x`.
    fn backward(
        &self,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        dy: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let w = gamma.len();
        let mut dx = vec![0.0f32; x.len()];
        if w == 0 {
            return (dx, vec![], vec![]);
        }
        let parts: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(w * ROWS)
            .zip(x.par_chunks(w * ROWS))
            .zip(dy.par_chunks(w * ROWS))
            .map(|((dxs, xs), dys)| {
                let mut dg = vec![0.0f32; w];
                let mut db = vec![0.0f32; w];
                for ((dx, x), dy) in dxs
                    .chunks_exact_mut(w)
                    .zip(xs.chunks_exact(w))
                    .zip(dys.chunks_exact(w))
                {
                    let (mean, rstd) = stats(x, self.eps);
                    // dx holds d(loss)/d(xhat) until the second pass.
                    for i in 0..w {
                        let xhat = (x[i] - mean) * rstd;
                        let mut dz = dy[i];
                        if self.silu {
                            let z = xhat * gamma[i] + beta[i];
                            let s = sigmoid(z);
                            dz *= s * (1.0 + z * (1.0 - s));
                        }
                        dg[i] += dz * xhat;
                        db[i] += dz;
                        dx[i] = dz * gamma[i];
                    }
                    let m1 = lane_sum(w, |i| dx[i]);
                    let m2 = lane_sum(w, |i| dx[i] * ((x[i] - mean) * rstd));
                    let m1 = (m1 / w as f64) as f32;
                    let m2 = (m2 / w as f64) as f32;
                    for i in 0..w {
                        let xhat = (x[i] - mean) * rstd;
                        dx[i] = rstd * (dx[i] - m1 - xhat * m2);
                    }
                }
                (dg, db)
            })
            .collect();
        let mut dgamma = vec![0.0f32; w];
        let mut dbeta = vec![0.0f32; w];
        for (dg, db) in &parts {
            for i in 0..w {
                dgamma[i] += dg[i];
                dbeta[i] += db[i];
            }
        }
        (dx, dgamma, dbeta)
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        if self.silu {
            "dmad-layer-norm-silu"
        } else {
            "dmad-layer-norm"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_slice(s1, l1, self.name())?;
        let gamma = cpu_slice(s2, l2, self.name())?;
        let beta = cpu_slice(s3, l3, self.name())?;
        let out = self.forward(x, gamma, beta);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dg, db) = with_f32(&[x, gamma, beta, grad], self.name(), |s| {
            Ok(self.backward(s[0], s[1], s[2], s[3]))
        })?;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dg, gamma.shape(), dev)?),
            Some(Tensor::from_vec(db, beta.shape(), dev)?),
        ))
    }
}

/// [`layer_norm`] as a composition of candle's differentiable tensor ops, over the last axis
/// of any rank: the path off the CPU kernel, and the reference the kernel is compared with.
///
/// # Errors
/// Candle's errors (for example a `weight` that does not broadcast to `x`).
pub fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(xn.broadcast_mul(weight)?.broadcast_add(bias)?)
}

fn apply(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, silu: bool) -> Result<Tensor> {
    let (_, w) = x.dims2().map_err(|_| Error::ShapeMismatch {
        context: "layer_norm: x",
        expected: "[rows, width]".into(),
        got: x.dims().to_vec(),
    })?;
    for (t, what) in [(weight, "layer_norm: weight"), (bias, "layer_norm: bias")] {
        if t.dims() != [w] {
            return Err(Error::ShapeMismatch {
                context: what,
                expected: format!("[{w}]"),
                got: t.dims().to_vec(),
            });
        }
    }
    if !use_cpu_kernel(&[x, weight, bias]) {
        let y = layer_norm_composed(x, weight, bias, eps)?;
        return Ok(if silu { y.silu()? } else { y });
    }
    let op = LayerNormOp {
        eps: eps as f32,
        silu,
    };
    Ok(x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?)
}

/// LayerNorm over the last axis with affine `weight` and `bias` (biased variance, `eps`
/// inside the square root, as `torch.nn.LayerNorm`).
///
/// On the CPU in f32 one fused op (forward and backward one pass each over the rows);
/// elsewhere the plain candle composition.
///
/// # Shapes
/// `x`: `[rows, width]`; `weight`, `bias`: `[width]`; output like `x`.
///
/// # Errors
/// [`Error::ShapeMismatch`] for an `x` that is not rank 2 or parameters that are not `[width]`.
///
/// # Example
/// ```
/// use candle_core::{DType, Device, Tensor};
/// let x = Tensor::randn(0f32, 1.0, (4, 16), &Device::Cpu)?;
/// let (w, b) = (Tensor::ones(16, DType::F32, &Device::Cpu)?, Tensor::zeros(16, DType::F32, &Device::Cpu)?);
/// let y = dmad_ops::layer_norm(&x, &w, &b, 1e-5)?;
/// let row_mean = y.mean(1)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(row_mean < 1e-5);
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    apply(x, weight, bias, eps, false)
}

/// [`layer_norm`] followed by SiLU, in one pass each way.
///
/// # Shapes
/// As [`layer_norm`].
///
/// # Errors
/// As [`layer_norm`].
pub fn layer_norm_silu(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    apply(x, weight, bias, eps, true)
}

/// SiLU, `z * sigmoid(z)`, with a one-pass backward.
#[derive(Debug, Clone, Copy)]
struct SiluOp;

/// Elements per parallel task of [`SiluOp`].
const CHUNK: usize = 1 << 14;

impl CustomOp1 for SiluOp {
    fn name(&self) -> &'static str {
        "dmad-silu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_slice(s, l, self.name())?;
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| {
                for (o, &z) in o.iter_mut().zip(x) {
                    *o = z * sigmoid(z);
                }
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dx = with_f32(&[x, grad], self.name(), |s| {
            let mut dx = vec![0.0f32; s[0].len()];
            dx.par_chunks_mut(CHUNK)
                .zip(s[0].par_chunks(CHUNK))
                .zip(s[1].par_chunks(CHUNK))
                .for_each(|((d, x), g)| {
                    for ((d, &z), &g) in d.iter_mut().zip(x).zip(g) {
                        let s = sigmoid(z);
                        *d = g * s * (1.0 + z * (1.0 - s));
                    }
                });
            Ok(dx)
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// SiLU (`z * sigmoid(z)`, candle's `Tensor::silu`): on the CPU in f32 one op whose backward
/// is one pass (candle's composes nine tensor operations); elsewhere `Tensor::silu`.
///
/// # Errors
/// Candle's errors only.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[-1f32, 0.0, 2.0], &Device::Cpu)?;
/// let d = (dmad_ops::silu(&x)? - x.silu()?)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(d < 1e-6);
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn silu(x: &Tensor) -> Result<Tensor> {
    if !use_cpu_kernel(&[x]) {
        return Ok(x.silu()?);
    }
    Ok(x.contiguous()?.apply_op1(SiluOp)?)
}
