//! A softmax over the last axis that is both fused on the CPU and differentiable.
//!
//! candle-nn's fused `softmax_last_dim` has no backward pass, and its differentiable
//! `softmax` takes five passes over the scores; attention layers in training spend much of
//! their time there. This op runs one parallel pass per row on the CPU and defines the
//! backward pass `dx = p * (g - sum(g * p))`; other devices use candle-nn's ops.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType, D};
use num_traits::Float;
use rayon::prelude::*;

struct SoftmaxLastDim;

fn softmax_rows<T: WithDType + Float + std::ops::AddAssign + std::ops::MulAssign>(
    src: &[T],
    layout: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let src = match layout.contiguous_offsets() {
        Some((a, b)) => &src[a..b],
        None => candle_core::bail!("softmax: the input must be contiguous"),
    };
    let dims = layout.shape().dims();
    let n = dims[dims.len() - 1];
    let mut dst = vec![T::zero(); src.len()];
    if n > 0 {
        src.par_chunks(n)
            .zip(dst.par_chunks_mut(n))
            .for_each(|(s, d)| {
                let max = s.iter().fold(T::neg_infinity(), |m, &v| Float::max(m, v));
                let mut sum = T::zero();
                for (x, y) in s.iter().zip(d.iter_mut()) {
                    *y = (*x - max).exp();
                    sum += *y;
                }
                let inv = T::one() / sum;
                d.iter_mut().for_each(|y| *y *= inv);
            });
    }
    Ok((WithDType::to_cpu_storage_owned(dst), layout.shape().clone()))
}

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "dmad-softmax-last-dim"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match storage {
            CpuStorage::F32(s) => softmax_rows(s, layout),
            CpuStorage::F64(s) => softmax_rows(s, layout),
            _ => candle_core::bail!("softmax: only f32 and f64 are supported on the CPU"),
        }
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let dot = (grad * res)?.sum_keepdim(D::Minus1)?;
        Ok(Some((grad.broadcast_sub(&dot)? * res)?))
    }
}

/// Softmax over the last axis, differentiable on every device.
pub(crate) fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let cpu_float = x.device().is_cpu()
        && matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64);
    if cpu_float {
        x.contiguous()?.apply_op1(SoftmaxLastDim)
    } else if x.track_op() {
        candle_nn::ops::softmax(x, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_softmax_and_its_gradient() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::randn(0f64, 3.0, (3, 4, 7), &dev)?))?;
        let g = Tensor::randn(0f64, 1.0, (3, 4, 7), &dev)?;
        let ours = softmax_last_dim(&x)?;
        let theirs = candle_nn::ops::softmax(&x, D::Minus1)?;
        let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(d < 1e-15, "forward differs by {d}");
        let ga = (ours * &g)?.sum_all()?.backward()?;
        let gb = (theirs * &g)?.sum_all()?.backward()?;
        let d = (ga.get(&x).unwrap() - gb.get(&x).unwrap())?
            .abs()?
            .max_all()?
            .to_scalar::<f64>()?;
        assert!(d < 1e-14, "gradient differs by {d}");
        let f = Tensor::new(&[[1000f32, 0.0, -1000.0]], &dev)?;
        let p = softmax_last_dim(&f)?.to_vec2::<f32>()?;
        assert_eq!(p[0], vec![1.0, 0.0, 0.0]);
        Ok(())
    }
}
