//! Blocked scaled dot-product attention with an online softmax (FlashAttention's forward and
//! backward schedules, Dao et al. 2022, arXiv:2205.14135).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::simd::{self, exp};
use crate::util::{cpu_slice, gemm, use_cpu_kernel, with_f32, Mat, SendPtr};
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
    /// Rows of `dv + 1` values: the output row, then the row's log-sum-exp of the scaled
    /// scores (kept for the backward pass).
    fn forward(&self, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f32> {
        let (b, tq, tk, d, dv) = self.dims;
        let w = dv + 1;
        let mut out = vec![0.0f32; b * tq * w];
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
                    std::slice::from_raw_parts_mut(outp.get().add((bi * tq + r0) * w), rows * w)
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
                        let oi = &mut o[i * w..(i + 1) * w];
                        for (o, a) in oi.iter_mut().zip(&acc[i * dv..(i + 1) * dv]) {
                            *o = a * inv;
                        }
                        oi[dv] = m[i] + l[i].ln();
                    }
                }
            },
        );
        out
    }

    /// FlashAttention's backward pass (arXiv:2205.14135, Algorithm 4, with FlashAttention-2's
    /// log-sum-exp statistics, arXiv:2307.08691): per batch entry, query tiles of [`BLOCK_Q`]
    /// rows visit each key tile of [`BLOCK_K`], rebuild the probabilities from the forward
    /// pass's log-sum-exp and accumulate `dV += P^T dO`, `dS = P (dO V^T - D)`, `dQ += dS K`,
    /// `dK += dS^T Q`. Nothing larger than a score tile is held. `o` and `go` have rows of
    /// `dv + 1` values (the forward's output rows with their log-sum-exp, and its gradient).
    /// Returns `(dq, dk, dv)`.
    fn backward(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        o: &[f32],
        go: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (b, tq, tk, d, dv) = self.dims;
        let mut dq = vec![0.0f32; b * tq * d];
        let mut dk = vec![0.0f32; b * tk * d];
        let mut dvv = vec![0.0f32; b * tk * dv];
        let scale = self.scale;
        let (dqp, dkp, dvp) = (
            SendPtr(dq.as_mut_ptr()),
            SendPtr(dk.as_mut_ptr()),
            SendPtr(dvv.as_mut_ptr()),
        );
        let small = d <= SMALL_D && dv <= SMALL_D;
        (0..b).into_par_iter().for_each_init(
            || BackwardScratch::new(d, dv),
            |w, bi| {
                let kb = &k[bi * tk * d..][..tk * d];
                let vb = &v[bi * tk * dv..][..tk * dv];
                // SAFETY: this job alone writes batch entry bi of dq, dk and dv.
                let (dqb, dkb, dvb) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(dqp.get().add(bi * tq * d), tq * d),
                        std::slice::from_raw_parts_mut(dkp.get().add(bi * tk * d), tk * d),
                        std::slice::from_raw_parts_mut(dvp.get().add(bi * tk * dv), tk * dv),
                    )
                };
                // Taken out of `w` so that it can be read while `w` is written.
                let mut go_t = std::mem::take(&mut w.go);
                for r0 in (0..tq).step_by(BLOCK_Q) {
                    let rows = BLOCK_Q.min(tq - r0);
                    let qrows = &q[(bi * tq + r0) * d..][..rows * d];
                    let ow = dv + 1;
                    let orows = &o[(bi * tq + r0) * ow..][..rows * ow];
                    let gorows = &go[(bi * tq + r0) * ow..][..rows * ow];
                    for (a, &x) in w.qs.iter_mut().zip(qrows) {
                        *a = x * scale;
                    }
                    // D_i = dO_i . O_i, the log-sum-exp, and dO as a dense tile.
                    for i in 0..rows {
                        let (oi, gi) = (&orows[i * ow..][..dv], &gorows[i * ow..][..dv]);
                        w.rowdot[i] = oi.iter().zip(gi).map(|(a, b)| a * b).sum();
                        w.m[i] = orows[i * ow + dv];
                        go_t[i * dv..(i + 1) * dv].copy_from_slice(gi);
                    }
                    let gorows = &go_t[..rows * dv];
                    w.dq[..rows * d].fill(0.0);
                    for c0 in (0..tk).step_by(BLOCK_K) {
                        let cols = BLOCK_K.min(tk - c0);
                        w.scores(kb, c0, rows, cols, d, small);
                        for i in 0..rows {
                            simd::exp_sub_sum(&mut w.s[i * cols..(i + 1) * cols], w.m[i]);
                        }
                        let pt = Mat {
                            ptr: w.s.as_ptr(),
                            rs: 1,
                            cs: cols,
                        };
                        let gom = Mat {
                            ptr: gorows.as_ptr(),
                            rs: dv,
                            cs: 1,
                        };
                        // SAFETY (all gemm calls below): every view lies inside its buffer
                        // (tiles of rows x cols, rows x d, cols x d, cols x dv values) and the
                        // destinations are this job's own.
                        // dV[c0..c0+cols] += P^T dO
                        unsafe {
                            gemm(
                                cols,
                                dv,
                                rows,
                                dvb[c0 * dv..].as_mut_ptr(),
                                dv,
                                true,
                                pt,
                                gom,
                                false,
                            )
                        };
                        // dP = dO V^T
                        if small {
                            for (c, row) in w.kt.chunks_mut(cols).take(dv).enumerate() {
                                for (j, x) in row.iter_mut().enumerate() {
                                    *x = vb[(c0 + j) * dv + c];
                                }
                            }
                            simd::qkt(gorows, &w.kt, &mut w.dp, rows, cols, dv);
                        } else {
                            let vt = Mat {
                                ptr: vb[c0 * dv..].as_ptr(),
                                rs: 1,
                                cs: dv,
                            };
                            unsafe {
                                gemm(
                                    rows,
                                    cols,
                                    dv,
                                    w.dp.as_mut_ptr(),
                                    cols,
                                    false,
                                    gom,
                                    vt,
                                    false,
                                )
                            };
                        }
                        // dS = P * (dP - D), in place of dP.
                        for i in 0..rows {
                            let di = w.rowdot[i];
                            let pi = &w.s[i * cols..(i + 1) * cols];
                            for (x, &pv) in w.dp[i * cols..(i + 1) * cols].iter_mut().zip(pi) {
                                *x = pv * (*x - di);
                            }
                        }
                        let ds = Mat {
                            ptr: w.dp.as_ptr(),
                            rs: cols,
                            cs: 1,
                        };
                        let dst = Mat {
                            ptr: w.dp.as_ptr(),
                            rs: 1,
                            cs: cols,
                        };
                        let km = Mat {
                            ptr: kb[c0 * d..].as_ptr(),
                            rs: d,
                            cs: 1,
                        };
                        let qsm = Mat {
                            ptr: w.qs.as_ptr(),
                            rs: d,
                            cs: 1,
                        };
                        unsafe {
                            // dQ (unscaled) += dS K
                            gemm(rows, d, cols, w.dq.as_mut_ptr(), d, true, ds, km, false);
                            // dK += dS^T (scale Q)
                            gemm(
                                cols,
                                d,
                                rows,
                                dkb[c0 * d..].as_mut_ptr(),
                                d,
                                true,
                                dst,
                                qsm,
                                false,
                            );
                        }
                    }
                    for (dst, &x) in dqb[r0 * d..][..rows * d].iter_mut().zip(&w.dq) {
                        *dst = x * scale;
                    }
                }
                w.go = go_t;
            },
        );
        (dq, dk, dvv)
    }
}

/// Per-thread buffers of [`AttentionOp::backward`].
struct BackwardScratch {
    /// Scaled queries of the tile, `[BLOCK_Q, d]`.
    qs: Vec<f32>,
    /// Scores, then probabilities, `[BLOCK_Q, BLOCK_K]`.
    s: Vec<f32>,
    /// `dP`, then `dS`, `[BLOCK_Q, BLOCK_K]`.
    dp: Vec<f32>,
    /// A transposed key or value tile, `[max(d, dv), BLOCK_K]`.
    kt: Vec<f32>,
    /// The tile's `dQ` before the final scaling, `[BLOCK_Q, d]`.
    dq: Vec<f32>,
    /// Log-sum-exp of each row's scaled scores.
    m: Vec<f32>,
    /// The tile's output gradient, `[BLOCK_Q, dv]`.
    go: Vec<f32>,
    /// `dO_i . O_i` per row.
    rowdot: Vec<f32>,
}

impl BackwardScratch {
    fn new(d: usize, dv: usize) -> Self {
        Self {
            qs: vec![0.0; BLOCK_Q * d],
            s: vec![0.0; BLOCK_Q * BLOCK_K],
            dp: vec![0.0; BLOCK_Q * BLOCK_K],
            kt: vec![0.0; BLOCK_K * d.max(dv)],
            dq: vec![0.0; BLOCK_Q * d],
            m: vec![0.0; BLOCK_Q],
            go: vec![0.0; BLOCK_Q * dv],
            rowdot: vec![0.0; BLOCK_Q],
        }
    }

    /// Scaled scores `qs K^T` of key columns `c0..c0 + cols` into `s` (`[rows, cols]`).
    fn scores(&mut self, kb: &[f32], c0: usize, rows: usize, cols: usize, d: usize, small: bool) {
        if small {
            for (c, row) in self.kt.chunks_mut(cols).take(d).enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = kb[(c0 + j) * d + c];
                }
            }
            simd::qkt(&self.qs, &self.kt, &mut self.s, rows, cols, d);
        } else {
            let lhs = Mat {
                ptr: self.qs.as_ptr(),
                rs: d,
                cs: 1,
            };
            let ktm = Mat {
                ptr: kb[c0 * d..].as_ptr(),
                rs: 1,
                cs: d,
            };
            // SAFETY: the score tile holds rows x cols values; the views lie inside `qs` and `kb`.
            unsafe {
                gemm(
                    rows,
                    cols,
                    d,
                    self.s.as_mut_ptr(),
                    cols,
                    false,
                    lhs,
                    ktm,
                    false,
                )
            };
        }
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
            Shape::from((b, tq, dv + 1)),
        ))
    }

    /// The blocked backward pass of [`AttentionOp::backward`]: no `[batch, tq, tk]` matrix.
    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        o: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dq, dk, dv) = with_f32(&[q, k, v, o, grad], self.name(), |s| {
            Ok(self.backward(s[0], s[1], s[2], s[3], s[4]))
        })?;
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), dev)?),
            Some(Tensor::from_vec(dk, k.shape(), dev)?),
            Some(Tensor::from_vec(dv, v.shape(), dev)?),
        ))
    }
}

/// `softmax(q k^T * scale) v` over the last two dimensions, `scale` defaulting to
/// `1 / sqrt(head width)`.
///
/// On the CPU in f32 the score matrix is never held whole: queries go in tiles of 64 rows, keys
/// in tiles of 256, with FlashAttention's running max and sum (arXiv:2205.14135). Its backward
/// pass is blocked the same way and recomputes the probabilities tile by tile, so training
/// never materialises `[batch, tq, tk]` either; it runs one batch entry per rayon job (a
/// batch smaller than the thread count leaves threads idle). Other devices and dtypes run the
/// plain candle composition
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
    // The op's rows carry the log-sum-exp as one extra value, for its backward pass.
    Ok(q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)?
        .narrow(2, 0, dv)?)
}
