//! ReLU6, `min(max(x, 0), 6)`, the activation of the Lite variants.
//!
//! On the CPU (`f32`, `f64`) it is a custom op with a one-pass backward (candle's
//! `relu().minimum(6)` backward takes about ten full-size tensor operations); elsewhere it is
//! `relu().minimum(6)`. The gradient is PyTorch's: 1 where `0 < x < 6`, else 0.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor, WithDType};

use crate::Result;

/// ReLU6 of `x`, differentiable.
pub(crate) fn relu6(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) {
        Ok(x.contiguous()?.apply_op1(Relu6)?)
    } else {
        Ok(x.relu()?.minimum(6f64)?)
    }
}

fn contiguous<'a, T>(v: &'a [T], l: &Layout) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("relu6: the input must be contiguous"),
    }
}

fn clamp<T: WithDType>(x: &[T]) -> Vec<T> {
    let six = T::from_f64(6.0);
    x.iter()
        .map(|&v| {
            if v > six {
                six
            } else if v > T::zero() {
                v
            } else {
                T::zero()
            }
        })
        .collect()
}

fn masked<T: WithDType>(grad: &[T], x: &[T]) -> Vec<T> {
    let six = T::from_f64(6.0);
    grad.iter()
        .zip(x)
        .map(|(&g, &v)| {
            if v > T::zero() && v < six {
                g
            } else {
                T::zero()
            }
        })
        .collect()
}

struct Relu6;

impl CustomOp1 for Relu6 {
    fn name(&self) -> &'static str {
        "relu6"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(clamp(contiguous(v, l)?)),
            CpuStorage::F64(v) => CpuStorage::F64(clamp(contiguous(v, l)?)),
            _ => candle_core::bail!("relu6: f32 or f64 only"),
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(arg, &Relu6Grad)?))
    }
}

/// `(grad, x) -> grad * [0 < x < 6]`.
struct Relu6Grad;

impl CustomOp2 for Relu6Grad {
    fn name(&self) -> &'static str {
        "relu6-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match (s1, s2) {
            (CpuStorage::F32(g), CpuStorage::F32(x)) => {
                CpuStorage::F32(masked(contiguous(g, l1)?, contiguous(x, l2)?))
            }
            (CpuStorage::F64(g), CpuStorage::F64(x)) => {
                CpuStorage::F64(masked(contiguous(g, l1)?, contiguous(x, l2)?))
            }
            _ => candle_core::bail!("relu6 backward: f32 or f64 of one dtype only"),
        };
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_gradient_match_the_generic_ops() {
        let v = [
            -3.0, -0.5, 0.25, 1.0, 5.5, 6.5, 9.0, 2.0, 0.75, -1.0, 7.0, 3.0,
        ];
        for dtype in [DType::F32, DType::F64] {
            let x = Tensor::new(&v, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            // A non-contiguous view, to exercise the copy.
            let x = Var::from_tensor(&x.reshape((3, 4)).unwrap()).unwrap();
            let xt = x.as_tensor().t().unwrap();
            let r = Tensor::arange(1f64, 13.0, &Device::Cpu)
                .unwrap()
                .reshape((4, 3))
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let a = relu6(&xt).unwrap();
            let b = xt.relu().unwrap().minimum(6f64).unwrap();
            let diff = (&a - &b)
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            assert_eq!(diff.to_scalar::<f64>().unwrap(), 0.0);
            let ga = (a * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = (b * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let (ga, gb) = (
                ga.get(x.as_tensor()).unwrap(),
                gb.get(x.as_tensor()).unwrap(),
            );
            // No sample sits exactly on 0 or 6, where the two conventions differ.
            let diff = (ga - gb)
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            assert_eq!(diff.to_scalar::<f64>().unwrap(), 0.0);
        }
    }
}
