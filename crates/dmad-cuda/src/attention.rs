//! Blocked scaled dot-product attention (FlashAttention's online softmax, Dao et al. 2022,
//! arXiv:2205.14135) for small head widths, with a CUDA kernel and a CPU twin.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, D};

use crate::util::{cpu_f32, cpu_store, supported};
use crate::{Error, Result};

/// Head widths with a kernel.
pub const ATTENTION_HEAD_WIDTHS: [usize; 4] = [8, 16, 32, 64];

#[derive(Debug, Clone, Copy)]
struct AttentionOp {
    scale: f32,
}

impl AttentionOp {
    /// The CPU twin: per query row, softmax in f64, then the weighted sum of the values.
    /// `dims` = `(bh, tq, tk, d)`.
    fn run(&self, q: &[f32], k: &[f32], v: &[f32], dims: (usize, usize, usize, usize)) -> Vec<f32> {
        let (bh, tq, tk, d) = dims;
        let mut out = vec![0.0f32; bh * tq * d];
        let mut s = vec![0.0f64; tk];
        for b in 0..bh {
            for i in 0..tq {
                let qr = &q[(b * tq + i) * d..(b * tq + i + 1) * d];
                for (j, sj) in s.iter_mut().enumerate() {
                    let kr = &k[(b * tk + j) * d..(b * tk + j + 1) * d];
                    *sj = qr
                        .iter()
                        .zip(kr)
                        .map(|(&x, &y)| x as f64 * y as f64)
                        .sum::<f64>()
                        * self.scale as f64;
                }
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for sj in s.iter_mut() {
                    *sj = (*sj - mx).exp();
                    sum += *sj;
                }
                let o = &mut out[(b * tq + i) * d..(b * tq + i + 1) * d];
                for (c, oc) in o.iter_mut().enumerate() {
                    let acc: f64 = (0..tk).map(|j| s[j] * v[(b * tk + j) * d + c] as f64).sum();
                    *oc = (acc / sum) as f32;
                }
            }
        }
        out
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "dmad-cuda-attention"
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
        let (bh, tq, d) = l1.shape().dims3()?;
        let tk = l2.dims()[1];
        let q = cpu_f32(s1, l1, self.name())?;
        let k = cpu_f32(s2, l2, self.name())?;
        let v = cpu_f32(s3, l3, self.name())?;
        let y = self.run(&q, &k, &v, (bh, tq, tk, d));
        Ok((cpu_store(y, s1.dtype()), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (bh, tq, d) = l1.shape().dims3()?;
        let tk = l2.dims()[1];
        let out = crate::cuda::attention((s1, l1), (s2, l2), (s3, l3), bh, tq, tk, d, self.scale)?;
        Ok((out, l1.shape().clone()))
    }

    /// Recomputes the probabilities with candle ops (training materialises `[bh, tq, tk]`).
    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dt = q.dtype();
        let f = |t: &Tensor| t.to_dtype(DType::F32);
        let (q, k, v, g) = (f(q)?, f(k)?, f(v)?, f(grad)?);
        let scale = self.scale as f64;
        let p = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * scale)?)?;
        let dv = p.t()?.matmul(&g)?;
        let dp = g.matmul(&v.t()?)?;
        let ds = (&p * dp.broadcast_sub(&(&dp * &p)?.sum_keepdim(D::Minus1)?)?)?;
        let dq = (ds.matmul(&k)? * scale)?;
        let dk = (ds.t()?.matmul(&q)? * scale)?;
        Ok((
            Some(dq.to_dtype(dt)?),
            Some(dk.to_dtype(dt)?),
            Some(dv.to_dtype(dt)?),
        ))
    }
}

fn check(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<(usize, usize, usize, usize)> {
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
    if v.dims() != k.dims() {
        return Err(mismatch(
            "attention: v",
            format!("{:?} (k's shape)", k.dims()),
            v,
        ));
    }
    Ok((b, tq, tk, d))
}

/// `softmax(q k^T * scale) v` through this crate's blocked kernel on any device: CUDA on a CUDA
/// device, the CPU twin (f64 softmax per row) on the CPU. `scale` defaults to `1 / sqrt(d)`.
/// Differentiable (the backward pass recomputes the probabilities with candle ops).
///
/// # Shapes
/// `q`: `[batch * heads, tq, d]`, `k` and `v`: `[batch * heads, tk, d]` with `d` one of
/// [`ATTENTION_HEAD_WIDTHS`]; output `[batch * heads, tq, d]`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when the shapes do not fit, [`Error::Unsupported`] for another
/// head width, an empty key set, or dtypes other than f32 and bf16.
pub fn attention_kernel(q: &Tensor, k: &Tensor, v: &Tensor, scale: Option<f64>) -> Result<Tensor> {
    let (_, _, tk, d) = check(q, k, v)?;
    if !ATTENTION_HEAD_WIDTHS.contains(&d) || tk == 0 {
        return Err(Error::Unsupported(
            "the attention kernel takes head widths 8, 16, 32 or 64 and at least one key; \
             use dmad_ops::attention",
        ));
    }
    if !supported(q.dtype()) || k.dtype() != q.dtype() || v.dtype() != q.dtype() {
        return Err(Error::Unsupported(
            "the attention kernel takes f32 or bf16 tensors of one dtype",
        ));
    }
    let op = AttentionOp {
        scale: scale.unwrap_or(1.0 / (d as f64).sqrt()) as f32,
    };
    Ok(q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)?)
}

/// Attention on the fastest path for the tensors' device: the blocked CUDA kernel on CUDA
/// (head widths [`ATTENTION_HEAD_WIDTHS`], f32 and bf16), `dmad_ops::attention` otherwise.
///
/// # Errors
/// As the path taken.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: Option<f64>) -> Result<Tensor> {
    if q.device().is_cuda() {
        let (_, _, tk, d) = check(q, k, v)?;
        let same = k.dtype() == q.dtype() && v.dtype() == q.dtype();
        if ATTENTION_HEAD_WIDTHS.contains(&d) && tk > 0 && supported(q.dtype()) && same {
            return attention_kernel(q, k, v, scale);
        }
    }
    Ok(dmad_ops::attention(q, k, v, scale)?)
}
