//! Group normalisation (Wu & He 2018, arXiv:1803.08494), alone or fused with SiLU.

use candle_core::{CpuStorage, CustomOp3, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::simd::{self, Affine};
use crate::util::{cpu_slice, use_cpu_kernel, with_f32};
use crate::{Error, Result};

/// GroupNorm with a per-channel affine map, optionally followed by SiLU, as one fused CPU op.
///
/// Same maths as `candle_nn::GroupNorm` (biased variance, `eps` inside the square root), with
/// sums accumulated in f32 lanes and f64 blocks. Backward recomputes the statistics.
#[derive(Debug, Clone, Copy)]
struct GroupNormOp {
    groups: usize,
    eps: f32,
    silu: bool,
}

/// Shape split of a `[batch, channels, ...]` tensor: `(batch, channels, spatial size)`.
fn split(dims: &[usize]) -> (usize, usize, usize) {
    (dims[0], dims[1], dims[2..].iter().product())
}

impl GroupNormOp {
    /// `(mean, residue, 1 / sqrt(var + eps))` of one group's values.
    fn stats(&self, x: &[f32]) -> (f32, f32, f32) {
        let (mean, lo) = simd::mean_split(x);
        let var = simd::sum_sq_dev(x, mean, lo) / x.len() as f64;
        (mean, lo, (1.0 / (var + self.eps as f64).sqrt()) as f32)
    }

    fn forward(&self, x: &[f32], gamma: &[f32], beta: &[f32], dims: &[usize]) -> Vec<f32> {
        let (_, c, hw) = split(dims);
        let cg = c / self.groups;
        let len = cg * hw;
        if len == 0 {
            return vec![0.0; x.len()];
        }
        let mut out: Vec<f32> = Vec::with_capacity(x.len());
        // Skips zeroing 8 MiB that the next pass overwrites anyway: every element of the spare
        // capacity is written by exactly one chunk below before the length is set.
        let spare = out.spare_capacity_mut();
        // SAFETY: `MaybeUninit<f32>` and `f32` have the same layout; nothing reads the slice
        // before it is written.
        let view = unsafe { &mut *(spare as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
        view.par_chunks_mut(len)
            .zip(x.par_chunks(len))
            .enumerate()
            .for_each(|(i, (o, xi))| {
                let c0 = (i % self.groups) * cg;
                let (mean, lo, rstd) = self.stats(xi);
                for ch in 0..cg {
                    let aff = Affine {
                        mean,
                        lo,
                        a: gamma[c0 + ch] * rstd,
                        b: beta[c0 + ch],
                    };
                    let r = ch * hw..(ch + 1) * hw;
                    simd::affine(&xi[r.clone()], &mut o[r], aff, self.silu);
                }
            });
        // SAFETY: the chunks above cover all `x.len()` elements.
        unsafe { out.set_len(x.len()) };
        out
    }

    /// `(dx, dgamma, dbeta)` as CPU tensors shaped like `x`, `gamma` and `beta`.
    fn grads(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let (dx, dg, db) = with_f32(&[x, gamma, beta, dy], self.name(), |s| {
            Ok(self.backward(s[0], s[1], s[2], s[3], x.dims()))
        })?;
        let dev = x.device();
        Ok((
            Tensor::from_vec(dx, x.shape(), dev)?,
            Tensor::from_vec(dg, gamma.shape(), dev)?,
            Tensor::from_vec(db, beta.shape(), dev)?,
        ))
    }

    /// Returns `(dx, dgamma, dbeta)`.
    fn backward(
        &self,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        dy: &[f32],
        dims: &[usize],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (_, c, hw) = split(dims);
        let cg = c / self.groups;
        let len = cg * hw;
        if len == 0 {
            return (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        }
        let mut dx: Vec<f32> = Vec::with_capacity(x.len());
        // As in the forward pass: no zeroing (with freed buffers retained that is a memset of
        // the whole gradient), since `gn_dz` writes every element of each chunk below before
        // `gn_dx` reads it and the length is set.
        // SAFETY: `MaybeUninit<f32>` and `f32` have the same layout; every element is written
        // (by `gn_dz`) before it is read.
        let spare = dx.spare_capacity_mut();
        let view = unsafe { &mut *(spare as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
        // Per (sample, group): the per-channel sums of dz and dz * xhat.
        let parts: Vec<(Vec<f32>, Vec<f32>)> = view
            .par_chunks_mut(len)
            .zip(x.par_chunks(len))
            .zip(dy.par_chunks(len))
            .enumerate()
            .map(|(i, ((dxi, xi), dyi))| {
                let c0 = (i % self.groups) * cg;
                let (mean, lo, rstd) = self.stats(xi);
                let aff = |ch: usize| Affine {
                    mean,
                    lo,
                    a: gamma[c0 + ch],
                    b: beta[c0 + ch],
                };
                let mut sdz = vec![0.0f32; cg];
                let mut sdzx = vec![0.0f32; cg];
                for ch in 0..cg {
                    let r = ch * hw..(ch + 1) * hw;
                    // dz = dL/d(affine output), kept in dx for the second pass.
                    let (s, sx) = simd::gn_dz(
                        &xi[r.clone()],
                        &dyi[r.clone()],
                        &mut dxi[r],
                        aff(ch),
                        rstd,
                        self.silu,
                    );
                    sdz[ch] = s;
                    sdzx[ch] = sx;
                }
                let (mut m1, mut m2) = (0.0f64, 0.0f64);
                for ch in 0..cg {
                    m1 += (gamma[c0 + ch] * sdz[ch]) as f64;
                    m2 += (gamma[c0 + ch] * sdzx[ch]) as f64;
                }
                let m1 = (m1 / len as f64) as f32;
                let m2 = (m2 / len as f64) as f32;
                for ch in 0..cg {
                    let r = ch * hw..(ch + 1) * hw;
                    simd::gn_dx(&xi[r.clone()], &mut dxi[r], aff(ch), rstd, m1, m2);
                }
                (sdz, sdzx)
            })
            .collect();
        // SAFETY: the chunks above cover all `x.len()` elements, each written by `gn_dz`.
        unsafe { dx.set_len(x.len()) };
        let mut dgamma = vec![0.0f32; c];
        let mut dbeta = vec![0.0f32; c];
        for (i, (sdz, sdzx)) in parts.iter().enumerate() {
            let c0 = (i % self.groups) * cg;
            for ch in 0..cg {
                dbeta[c0 + ch] += sdz[ch];
                dgamma[c0 + ch] += sdzx[ch];
            }
        }
        (dx, dgamma, dbeta)
    }
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        if self.silu {
            "dmad-group-norm-silu"
        } else {
            "dmad-group-norm"
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
        let out = self.forward(x, gamma, beta, l1.dims());
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
        let (dx, dg, db) = self.grads(x, gamma, beta, grad)?;
        Ok((Some(dx), Some(dg), Some(db)))
    }
}

fn check(x: &Tensor, num_groups: usize, weight: &Tensor, bias: &Tensor) -> Result<()> {
    let dims = x.dims();
    if dims.len() < 3 {
        return Err(Error::ShapeMismatch {
            context: "group_norm: x",
            expected: "[batch, channels, ...] with at least one spatial dimension".into(),
            got: dims.to_vec(),
        });
    }
    let c = dims[1];
    if num_groups == 0 || !c.is_multiple_of(num_groups) {
        return Err(Error::InvalidConfig {
            field: "num_groups",
            reason: format!("is {num_groups}, which does not divide the {c} channels"),
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

fn apply(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    silu: bool,
) -> Result<Tensor> {
    check(x, num_groups, weight, bias)?;
    if !use_cpu_kernel(&[x, weight, bias]) {
        let c = x.dim(1)?;
        let gn = candle_nn::GroupNorm::new(weight.clone(), bias.clone(), c, num_groups, eps)?;
        let y = gn.forward(x)?;
        return Ok(if silu { y.silu()? } else { y });
    }
    let op = GroupNormOp {
        groups: num_groups,
        eps: eps as f32,
        silu,
    };
    Ok(x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?)
}

/// GroupNorm over `num_groups` channel groups with affine `weight` and `bias`; the same result
/// as `candle_nn::GroupNorm::new(weight, bias, channels, num_groups, eps)?.forward(x)`.
///
/// Fast fused kernel for f32 on the CPU (with backward for `x`, `weight` and `bias`), the plain
/// candle composition elsewhere.
///
/// # Shapes
/// `x`: `[batch, channels, ...]` (at least one trailing dimension); `weight`, `bias`:
/// `[channels]`; output: like `x`.
///
/// # Errors
/// [`Error::ShapeMismatch`] for a rank below 3 or a `weight`/`bias` that is not `[channels]`,
/// [`Error::InvalidConfig`] when `num_groups` does not divide the channels.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::randn(0f32, 1.0, (2, 8, 5, 5), &Device::Cpu)?;
/// let (w, b) = (Tensor::ones(8, candle_core::DType::F32, &Device::Cpu)?, Tensor::zeros(8, candle_core::DType::F32, &Device::Cpu)?);
/// let y = dmad_ops::group_norm(&x, 4, &w, &b, 1e-5)?;
/// assert_eq!(y.dims(), x.dims());
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn group_norm(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    apply(x, num_groups, weight, bias, eps, false)
}

/// [`group_norm`] followed by SiLU (`z * sigmoid(z)`) in one pass: `candle_nn::GroupNorm`'s
/// forward then `.silu()`.
///
/// # Shapes
/// As [`group_norm`].
///
/// # Errors
/// As [`group_norm`].
pub fn group_norm_silu(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    apply(x, num_groups, weight, bias, eps, true)
}

/// The gradients `(dx, dweight, dbias)` of [`group_norm`] (`silu` false) or
/// [`group_norm_silu`] (`silu` true) for the upstream gradient `dy`: the vector-Jacobian
/// product that autograd runs, without a graph.
///
/// On the CPU in f32 this is the fused kernel behind the ops' backward pass (statistics
/// recomputed from `x`); elsewhere candle's autograd of the plain composition.
///
/// # Shapes
/// As [`group_norm`]; `dy` like `x`.
///
/// # Errors
/// As [`group_norm`], and [`Error::ShapeMismatch`] when `dy` is not shaped like `x`.
///
/// # Example
/// ```
/// use candle_core::{DType, Device, Tensor};
/// let x = Tensor::randn(0f32, 1.0, (2, 8, 5, 5), &Device::Cpu)?;
/// let (w, b) = (Tensor::ones(8, DType::F32, &Device::Cpu)?, Tensor::zeros(8, DType::F32, &Device::Cpu)?);
/// let dy = Tensor::ones_like(&x)?;
/// let (dx, dw, db) = dmad_ops::group_norm_backward(&x, 4, &w, &b, 1e-5, true, &dy)?;
/// assert_eq!((dx.dims(), dw.dims(), db.dims()), (x.dims(), w.dims(), b.dims()));
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn group_norm_backward(
    x: &Tensor,
    num_groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    silu: bool,
    dy: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    check(x, num_groups, weight, bias)?;
    if dy.dims() != x.dims() {
        return Err(Error::ShapeMismatch {
            context: "group_norm_backward: dy",
            expected: format!("{:?}, the shape of x", x.dims()),
            got: dy.dims().to_vec(),
        });
    }
    if !use_cpu_kernel(&[x, weight, bias, dy]) {
        let g = crate::util::autograd_vjp(&[x, weight, bias], dy, |t| {
            apply(&t[0], num_groups, &t[1], &t[2], eps, silu)
        })?;
        return Ok((g[0].clone(), g[1].clone(), g[2].clone()));
    }
    let op = GroupNormOp {
        groups: num_groups,
        eps: eps as f32,
        silu,
    };
    Ok(op.grads(x, weight, bias, dy)?)
}

/// A GroupNorm layer (parameters `weight` and `bias`, diffusers' names) running the fast
/// kernels; a drop-in for `candle_nn::GroupNorm` with an extra fused [`GroupNorm::forward_silu`].
#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    num_groups: usize,
    eps: f64,
}

impl GroupNorm {
    /// A layer from its parameters.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `weight` and `bias` are not both `[channels]`,
    /// [`Error::InvalidConfig`] when `num_groups` does not divide the channels.
    pub fn new(weight: Tensor, bias: Tensor, num_groups: usize, eps: f64) -> Result<Self> {
        let c = weight.dims1().map_err(|_| Error::ShapeMismatch {
            context: "GroupNorm::new: weight",
            expected: "[channels]".into(),
            got: weight.dims().to_vec(),
        })?;
        let probe = Tensor::zeros((1, c, 1), weight.dtype(), weight.device())?;
        check(&probe, num_groups, &weight, &bias)?;
        Ok(Self {
            weight,
            bias,
            num_groups,
            eps,
        })
    }

    /// Loads (or, with a `VarMap`, creates: weight 1, bias 0) the parameters from `vb`, like
    /// `candle_nn::group_norm(num_groups, channels, eps, vb)`.
    ///
    /// # Errors
    /// As [`GroupNorm::new`], and candle's errors for missing or mis-shaped tensors.
    pub fn load(num_groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.0))?;
        Self::new(weight, bias, num_groups, eps)
    }

    /// GroupNorm of `x`; see [`group_norm`].
    ///
    /// # Errors
    /// As [`group_norm`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        group_norm(x, self.num_groups, &self.weight, &self.bias, self.eps)
    }

    /// GroupNorm then SiLU, fused; see [`group_norm_silu`].
    ///
    /// # Errors
    /// As [`group_norm`].
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        group_norm_silu(x, self.num_groups, &self.weight, &self.bias, self.eps)
    }

    /// The affine scale, `[channels]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The affine shift, `[channels]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        GroupNorm::forward(self, x).map_err(crate::error::into_candle)
    }
}
