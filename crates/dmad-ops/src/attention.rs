//! Blocked scaled dot-product attention with an online softmax (FlashAttention's forward
//! schedule, Dao et al. 2022, arXiv:2205.14135).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::simd::{self, exp};
use crate::util::{cpu_slice, gemm, use_cpu_kernel, Mat, SendPtr};
use crate::{Error, Result};

/// Query rows per tile.
const BLOCK_Q: usize = 64;
/// Key columns per tile: the score tile is at most `BLOCK_Q x BLOCK_K` floats.
const BLOCK_K: usize = 256;
/// Head widths up to this use the register-blocked score kernel instead of `gemm`.
const SMALL_D: usize = 64;

#[derive(Debug, Clone, Copy)]
struct AttentionOp {
    scale: f32,
    /// `(batch, query tokens, key tokens, head width, value width)`.
    dims: (usize, usize, usize, usize, usize),
}

impl AttentionOp {
    fn forward(&self, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f32> {
        let (b, tq, tk, d, dv) = self.dims;
        let mut out = vec![0.0f32; b * tq * dv];
        let qblocks = tq.div_ceil(BLOCK_Q);
        let outp = SendPtr(out.as_mut_ptr());
        let scale = self.scale;
        (0..b * qblocks).into_par_iter().for_each_init(
            || {
                (
                    vec![0.0f32; BLOCK_Q * d],
                    vec![0.0f32; BLOCK_Q * BLOCK_K],
                    vec![0.0f32; BLOCK_Q * dv],
                    vec![0.0f32; 2 * BLOCK_Q],
                    vec![0.0f32; BLOCK_K * d],
                )
            },
            |(qs, s, acc, ml, kt), job| {
                let (bi, qb) = (job / qblocks, job % qblocks);
                let r0 = qb * BLOCK_Q;
                let rows = BLOCK_Q.min(tq - r0);
                let kb = &k[bi * tk * d..][..tk * d];
                let vb = &v[bi * tk * dv..][..tk * dv];
                // SAFETY: this job alone writes rows r0..r0+rows of batch entry bi.
                let o = unsafe {
                    std::slice::from_raw_parts_mut(outp.get().add((bi * tq + r0) * dv), rows * dv)
                };
                {
                    for (a, &b) in qs.iter_mut().zip(&q[(bi * tq + r0) * d..][..rows * d]) {
                        *a = b * scale;
                    }
                    let (m, l) = ml.split_at_mut(BLOCK_Q);
                    m[..rows].fill(f32::NEG_INFINITY);
                    l[..rows].fill(0.0);
                    acc[..rows * dv].fill(0.0);
                    for c0 in (0..tk).step_by(BLOCK_K) {
                        let cols = BLOCK_K.min(tk - c0);
                        if d <= SMALL_D {
                            for (c, row) in kt.chunks_mut(cols).take(d).enumerate() {
                                for (j, v) in row.iter_mut().enumerate() {
                                    *v = kb[(c0 + j) * d + c];
                                }
                            }
                            simd::qkt(qs, kt, s, rows, cols, d);
                        } else {
                            let lhs = Mat {
                                ptr: qs.as_ptr(),
                                rs: d,
                                cs: 1,
                            };
                            let ktm = Mat {
                                ptr: kb[c0 * d..].as_ptr(),
                                rs: 1,
                                cs: d,
                            };
                            // SAFETY: the score tile holds rows x cols values.
                            unsafe {
                                gemm(rows, cols, d, s.as_mut_ptr(), cols, false, lhs, ktm, false)
                            };
                        }
                        for i in 0..rows {
                            let si = &mut s[i * cols..(i + 1) * cols];
                            let row_max = simd::max(si, m[i]);
                            let corr = exp(m[i] - row_max);
                            l[i] = l[i] * corr + simd::exp_sub_sum(si, row_max);
                            m[i] = row_max;
                            if corr != 1.0 {
                                for a in &mut acc[i * dv..(i + 1) * dv] {
                                    *a *= corr;
                                }
                            }
                        }
                        let p = Mat {
                            ptr: s.as_ptr(),
                            rs: cols,
                            cs: 1,
                        };
                        let vt = Mat {
                            ptr: vb[c0 * dv..].as_ptr(),
                            rs: dv,
                            cs: 1,
                        };
                        // SAFETY: acc holds rows x dv values.
                        unsafe { gemm(rows, dv, cols, acc.as_mut_ptr(), dv, true, p, vt, false) };
                    }
                    for i in 0..rows {
                        let inv = 1.0 / l[i];
                        for (o, a) in o[i * dv..(i + 1) * dv].iter_mut().zip(&acc[i * dv..]) {
                            *o = a * inv;
                        }
                    }
                }
            },
        );
        out
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "dmad-attention"
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
        let q = cpu_slice(s1, l1, self.name())?;
        let k = cpu_slice(s2, l2, self.name())?;
        let v = cpu_slice(s3, l3, self.name())?;
        let (b, tq, _, _, dv) = self.dims;
        Ok((
            CpuStorage::F32(self.forward(q, k, v)),
            Shape::from((b, tq, dv)),
        ))
    }

    /// Recomputes the probabilities with candle ops (this materialises the
    /// `[batch, tq, tk]` matrix) and applies the softmax-attention gradient.
    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        o: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let scale = self.scale as f64;
        let p = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * scale)?)?;
        let dv = p.t()?.matmul(grad)?;
        let dp = grad.matmul(&v.t()?)?;
        let rowdot = (grad * o)?.sum_keepdim(D::Minus1)?;
        let ds = (p * dp.broadcast_sub(&rowdot)?)?;
        let dq = (ds.matmul(k)? * scale)?;
        let dk = (ds.t()?.matmul(q)? * scale)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// `softmax(q k^T * scale) v` over the last two dimensions, `scale` defaulting to
/// `1 / sqrt(head width)`.
///
/// On the CPU in f32 the score matrix is never held whole: queries go in tiles of 64 rows, keys
/// in tiles of 256, with FlashAttention's running max and sum (arXiv:2205.14135). Its backward
/// pass recomputes the probabilities with candle ops, so training does materialise
/// `[batch, tq, tk]`. Other devices and dtypes run the plain candle composition
/// (`softmax_last_dim(q.matmul(k^T) * scale).matmul(v)`).
///
/// # Shapes
/// `q`: `[batch * heads, tq, d]`, `k`: `[batch * heads, tk, d]`, `v`: `[batch * heads, tk, dv]`;
/// output: `[batch * heads, tq, dv]`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when the shapes do not fit together or a rank is not 3.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// let q = Tensor::randn(0f32, 1.0, (4, 100, 16), &Device::Cpu)?;
/// let y = dmad_ops::attention(&q, &q, &q, None)?;
/// assert_eq!(y.dims(), &[4, 100, 16]);
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: Option<f64>) -> Result<Tensor> {
    let mismatch = |context, expected: String, t: &Tensor| Error::ShapeMismatch {
        context,
        expected,
        got: t.dims().to_vec(),
    };
    let (b, tq, d) = q
        .dims3()
        .map_err(|_| mismatch("attention: q", "[batch * heads, tokens, d]".into(), q))?;
    let (bk, tk, dk) = k
        .dims3()
        .map_err(|_| mismatch("attention: k", format!("[{b}, tokens, {d}]"), k))?;
    if bk != b || dk != d {
        return Err(mismatch("attention: k", format!("[{b}, tokens, {d}]"), k));
    }
    let (bv, tv, dv) = v
        .dims3()
        .map_err(|_| mismatch("attention: v", format!("[{b}, {tk}, dv]"), v))?;
    if bv != b || tv != tk {
        return Err(mismatch("attention: v", format!("[{b}, {tk}, dv]"), v));
    }
    let scale = scale.unwrap_or(1.0 / (d as f64).sqrt());
    if !use_cpu_kernel(&[q, k, v]) || b * tq * tk * d * dv == 0 {
        let s = (q.matmul(&k.t()?)? * scale)?;
        let p = if s.track_op() {
            candle_nn::ops::softmax(&s, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&s)?
        };
        return Ok(p.matmul(v)?);
    }
    let op = AttentionOp {
        scale: scale as f32,
        dims: (b, tq, tk, d, dv),
    };
    Ok(q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)?)
}
