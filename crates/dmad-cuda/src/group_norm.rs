//! Fused GroupNorm (Wu & He 2018, arXiv:1803.08494) + SiLU, forward and backward, with a CUDA
//! kernel and a CPU twin of the same maths.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};

use crate::util::{cpu_f32, cpu_store, supported};
use crate::{Error, Result};

/// The fused op: `x`, `gamma`, `beta` -> GroupNorm (then SiLU when `silu`).
#[derive(Debug, Clone, Copy)]
struct GroupNormSilu {
    groups: usize,
    eps: f32,
    silu: bool,
}

/// Its backward: `x`, `[gamma; beta]` (`[2, C]`), `dy` -> `dx`, then the per-sample partial
/// `dgamma [N, C]` and `dbeta [N, C]`, flat.
#[derive(Debug, Clone, Copy)]
struct GroupNormSiluBwd(GroupNormSilu);

fn split(dims: &[usize]) -> (usize, usize, usize) {
    (dims[0], dims[1], dims[2..].iter().product())
}

impl GroupNormSilu {
    /// `(mean, 1 / sqrt(var + eps))` of one group, in f64 (the kernel accumulates in f32).
    fn stats(&self, x: &[f32]) -> (f64, f64) {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, 1.0 / (var + self.eps as f64).sqrt())
    }

    /// The CPU twin of `gn_fwd`.
    fn forward(&self, x: &[f32], gamma: &[f32], beta: &[f32], dims: &[usize]) -> Vec<f32> {
        let (_, c, hw) = split(dims);
        let cg = c / self.groups;
        let mut y = vec![0.0f32; x.len()];
        if cg * hw == 0 {
            return y;
        }
        for (i, (xs, ys)) in x.chunks(cg * hw).zip(y.chunks_mut(cg * hw)).enumerate() {
            let (mean, rstd) = self.stats(xs);
            let c0 = (i % self.groups) * cg;
            for (k, (&xv, yv)) in xs.iter().zip(ys.iter_mut()).enumerate() {
                let ch = c0 + k / hw;
                let z = (xv as f64 - mean) * rstd * gamma[ch] as f64 + beta[ch] as f64;
                *yv = if self.silu { silu(z) } else { z } as f32;
            }
        }
        y
    }

    /// The CPU twin of `gn_bwd`.
    fn backward(&self, x: &[f32], gb: &[f32], dy: &[f32], dims: &[usize]) -> Vec<f32> {
        let (n, c, hw) = split(dims);
        let cg = c / self.groups;
        let len = cg * hw;
        let (gamma, beta) = gb.split_at(c);
        let mut out = vec![0.0f32; n * c * hw + 2 * n * c];
        if len == 0 {
            return out;
        }
        let (dx, partials) = out.split_at_mut(n * c * hw);
        let (dgamma, dbeta) = partials.split_at_mut(n * c);
        for (i, ((xs, dys), dxs)) in x
            .chunks(len)
            .zip(dy.chunks(len))
            .zip(dx.chunks_mut(len))
            .enumerate()
        {
            let (s, g) = (i / self.groups, i % self.groups);
            let (mean, rstd) = self.stats(xs);
            let dz = |k: usize| -> (f64, f64) {
                let ch = g * cg + k / hw;
                let xh = (xs[k] as f64 - mean) * rstd;
                let mut d = dys[k] as f64;
                if self.silu {
                    let z = xh * gamma[ch] as f64 + beta[ch] as f64;
                    let sg = 1.0 / (1.0 + (-z).exp());
                    d *= sg * (1.0 + z * (1.0 - sg));
                }
                (d, xh)
            };
            let (mut m1, mut m2) = (0.0f64, 0.0f64);
            for ch in 0..cg {
                let (mut sdz, mut sdzx) = (0.0f64, 0.0f64);
                for k in ch * hw..(ch + 1) * hw {
                    let (d, xh) = dz(k);
                    sdz += d;
                    sdzx += d * xh;
                }
                let cc = g * cg + ch;
                dbeta[s * c + cc] = sdz as f32;
                dgamma[s * c + cc] = sdzx as f32;
                m1 += gamma[cc] as f64 * sdz;
                m2 += gamma[cc] as f64 * sdzx;
            }
            let (m1, m2) = (m1 / len as f64, m2 / len as f64);
            for (k, dxv) in dxs.iter_mut().enumerate() {
                let ch = g * cg + k / hw;
                let (d, xh) = dz(k);
                *dxv = (rstd * (gamma[ch] as f64 * d - m1 - xh * m2)) as f32;
            }
        }
        out
    }
}

fn silu(z: f64) -> f64 {
    z / (1.0 + (-z).exp())
}

impl CustomOp3 for GroupNormSilu {
    fn name(&self) -> &'static str {
        "dmad-cuda-group-norm-silu"
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
        let x = cpu_f32(s1, l1, self.name())?;
        let g = cpu_f32(s2, l2, self.name())?;
        let b = cpu_f32(s3, l3, self.name())?;
        let y = self.forward(&x, &g, &b, l1.dims());
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
        let out = crate::cuda::group_norm_fwd(
            (s1, l1),
            (s2, l2),
            (s3, l3),
            self.groups,
            self.eps,
            self.silu,
        )?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, _) = split(x.dims());
        let gb = Tensor::stack(&[gamma, beta], 0)?.contiguous()?;
        let packed =
            x.contiguous()?
                .apply_op3_no_bwd(&gb, &grad.contiguous()?, &GroupNormSiluBwd(*self))?;
        let numel = x.elem_count();
        let dx = packed.narrow(0, 0, numel)?.reshape(x.shape())?;
        // Partial sums per sample, summed over the batch in f32.
        let part = |k: usize| -> candle_core::Result<Tensor> {
            packed
                .narrow(0, numel + k * n * c, n * c)?
                .reshape((n, c))?
                .to_dtype(DType::F32)?
                .sum(0)?
                .to_dtype(gamma.dtype())
        };
        Ok((Some(dx), Some(part(0)?), Some(part(1)?)))
    }
}

impl CustomOp3 for GroupNormSiluBwd {
    fn name(&self) -> &'static str {
        "dmad-cuda-group-norm-silu-bwd"
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
        let x = cpu_f32(s1, l1, self.name())?;
        let gb = cpu_f32(s2, l2, self.name())?;
        let dy = cpu_f32(s3, l3, self.name())?;
        let out = self.0.backward(&x, &gb, &dy, l1.dims());
        let len = out.len();
        Ok((cpu_store(out, s1.dtype()), Shape::from(len)))
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
        let (n, c, hw) = split(l1.dims());
        let out = crate::cuda::group_norm_bwd(
            (s1, l1),
            (s2, l2),
            (s3, l3),
            self.0.groups,
            self.0.eps,
            self.0.silu,
        )?;
        Ok((out, Shape::from(n * c * hw + 2 * n * c)))
    }
}

fn check(x: &Tensor, groups: usize, weight: &Tensor, bias: &Tensor) -> Result<()> {
    let dims = x.dims();
    if dims.len() < 3 {
        return Err(Error::ShapeMismatch {
            context: "group_norm: x",
            expected: "[batch, channels, ...] with at least one spatial dimension".into(),
            got: dims.to_vec(),
        });
    }
    let c = dims[1];
    if groups == 0 || !c.is_multiple_of(groups) {
        return Err(Error::InvalidConfig {
            field: "num_groups",
            reason: format!("is {groups}, which does not divide the {c} channels"),
        });
    }
    for (t, what) in [(weight, "group_norm: weight"), (bias, "group_norm: bias")] {
        if t.dims() != [c] {
            return Err(Error::ShapeMismatch {
                context: what,
                expected: format!("[{c}]"),
                got: t.dims().to_vec(),
            });
        }
    }
    Ok(())
}

/// GroupNorm, then SiLU when `silu`, through this crate's fused kernel on any device: the CUDA
/// kernel on a CUDA device, its CPU twin (plain loops, f64 statistics) on the CPU.
///
/// Same maths as `candle_nn::GroupNorm` (biased variance, `eps` inside the square root).
/// Differentiable in `x`, `weight` and `bias`. Inputs of one dtype, f32 or bf16 (bf16 is
/// computed in f32 and rounded once).
///
/// # Shapes
/// `x`: `[batch, channels, ...]` (rank >= 3); `weight`, `bias`: `[channels]`; output like `x`.
///
/// # Errors
/// [`Error::ShapeMismatch`] for a rank below 3 or a `weight`/`bias` that is not
/// `[channels]`, [`Error::InvalidConfig`] when `num_groups` does not divide the channels,
/// [`Error::Unsupported`] for dtypes other than f32 and bf16 or mixed dtypes.
pub fn group_norm_kernel(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    silu: bool,
) -> Result<Tensor> {
    check(x, num_groups, weight, bias)?;
    if !supported(x.dtype()) || weight.dtype() != x.dtype() || bias.dtype() != x.dtype() {
        return Err(Error::Unsupported(
            "group_norm_kernel takes f32 or bf16 tensors of one dtype; use dmad_ops::group_norm",
        ));
    }
    let op = GroupNormSilu {
        groups: num_groups,
        eps: eps as f32,
        silu,
    };
    Ok(x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?)
}

/// GroupNorm + SiLU on the fastest path for the tensor's device: this crate's CUDA kernel on
/// CUDA (f32 and bf16), `dmad_ops::group_norm_silu` otherwise (the fast CPU kernel, or candle's
/// composition).
///
/// # Errors
/// As [`group_norm_kernel`].
pub fn group_norm_silu(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    dispatch(x, num_groups, weight, bias, eps, true)
}

/// GroupNorm on the fastest path for the tensor's device; see [`group_norm_silu`].
///
/// # Errors
/// As [`group_norm_kernel`].
pub fn group_norm(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    dispatch(x, num_groups, weight, bias, eps, false)
}

fn dispatch(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    silu: bool,
) -> Result<Tensor> {
    let same = weight.dtype() == x.dtype() && bias.dtype() == x.dtype();
    if x.device().is_cuda() && supported(x.dtype()) && same {
        return group_norm_kernel(x, num_groups, weight, bias, eps, silu);
    }
    Ok(if silu {
        dmad_ops::group_norm_silu(x, num_groups, weight, bias, eps)?
    } else {
        dmad_ops::group_norm(x, num_groups, weight, bias, eps)?
    })
}
