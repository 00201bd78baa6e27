//! A fully connected layer, `x W^T + b`, as one CPU op: the bias (or a per-row addend) is the
//! initial value of the matrix product's output, and the backward pass writes the three
//! gradients with two matrix products and one column sum.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::util::{cpu_slice, gemm, use_cpu_kernel, with_f32, Mat};
use crate::{Error, Result};

/// `x [n, k] W^T [k, o] + b`, with `b` either `[o]` (a bias) or `[n, o]` (one addend per row).
#[derive(Debug, Clone, Copy)]
struct LinearOp;

/// `(n, k, o, per_row)` of checked shapes.
fn dims(x: &[usize], w: &[usize], b: &[usize]) -> (usize, usize, usize, bool) {
    let (n, k, o) = (x[0], x[1], w[0]);
    (n, k, o, b.len() == 2)
}

impl LinearOp {
    fn forward(&self, x: &[f32], w: &[f32], b: &[f32], d: (usize, usize, usize, bool)) -> Vec<f32> {
        let (n, k, o, per_row) = d;
        let mut out = if per_row {
            b.to_vec()
        } else {
            let mut v = Vec::with_capacity(n * o);
            for _ in 0..n {
                v.extend_from_slice(b);
            }
            v
        };
        if n > 0 && o > 0 && k > 0 {
            // SAFETY: `x` is `n x k` row-major, `w` is `o x k` row-major (read as `W^T`, `k x o`,
            // row stride 1, column stride k) and `out` is `n x o`, a buffer of its own.
            unsafe {
                gemm(
                    n,
                    o,
                    k,
                    out.as_mut_ptr(),
                    o,
                    true,
                    Mat {
                        ptr: x.as_ptr(),
                        rs: k,
                        cs: 1,
                    },
                    Mat {
                        ptr: w.as_ptr(),
                        rs: 1,
                        cs: k,
                    },
                    true,
                );
            }
        }
        out
    }

    /// `(dx, dw, db)`.
    fn backward(
        &self,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        d: (usize, usize, usize, bool),
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (n, k, o, per_row) = d;
        let mut dx = vec![0.0f32; n * k];
        let mut dw = vec![0.0f32; o * k];
        if n > 0 && o > 0 && k > 0 {
            // The two products are independent: each runs on one thread, side by side, which
            // on few cores beats splitting each product over the threads in turn.
            let input_grad = |dx: &mut [f32]| {
                // SAFETY: `dy` is `n x o` and `w` `o x k`, row-major; `dx` is `n x k`, a
                // buffer of its own.
                unsafe {
                    gemm(
                        n,
                        k,
                        o,
                        dx.as_mut_ptr(),
                        k,
                        false,
                        Mat {
                            ptr: dy.as_ptr(),
                            rs: o,
                            cs: 1,
                        },
                        Mat {
                            ptr: w.as_ptr(),
                            rs: k,
                            cs: 1,
                        },
                        false,
                    )
                }
            };
            let weight_grad = |dw: &mut [f32]| {
                // SAFETY: `dy^T` is read with row stride 1 and column stride o, `x` is `n x
                // k` row-major; `dw` is `o x k`, a buffer of its own.
                unsafe {
                    gemm(
                        o,
                        k,
                        n,
                        dw.as_mut_ptr(),
                        k,
                        false,
                        Mat {
                            ptr: dy.as_ptr(),
                            rs: 1,
                            cs: o,
                        },
                        Mat {
                            ptr: x.as_ptr(),
                            rs: k,
                            cs: 1,
                        },
                        false,
                    )
                }
            };
            rayon::join(|| input_grad(&mut dx), || weight_grad(&mut dw));
        }
        let db = if per_row {
            dy.to_vec()
        } else {
            // Rows added in order: the same bits on every run.
            let mut s = vec![0.0f32; o];
            for row in dy.chunks_exact(o.max(1)) {
                for (a, &v) in s.iter_mut().zip(row) {
                    *a += v;
                }
            }
            s
        };
        (dx, dw, db)
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "dmad-linear"
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
        let w = cpu_slice(s2, l2, self.name())?;
        let b = cpu_slice(s3, l3, self.name())?;
        let d = dims(l1.dims(), l2.dims(), l3.dims());
        let out = self.forward(x, w, b, d);
        Ok((CpuStorage::F32(out), Shape::from((d.0, d.2))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = dims(x.dims(), w.dims(), b.dims());
        let (dx, dw, db) = with_f32(&[x, w, grad], self.name(), |s| {
            Ok(self.backward(s[0], s[1], s[2], d))
        })?;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, b.shape(), dev)?),
        ))
    }
}

fn check(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<()> {
    let (n, k) = x.dims2().map_err(|_| Error::ShapeMismatch {
        context: "linear: x",
        expected: "[batch, in_features]".into(),
        got: x.dims().to_vec(),
    })?;
    let o = match weight.dims() {
        &[o, kw] if kw == k => o,
        other => {
            return Err(Error::ShapeMismatch {
                context: "linear: weight",
                expected: format!("[out_features, {k}]"),
                got: other.to_vec(),
            })
        }
    };
    if bias.dims() != [o] && bias.dims() != [n, o] {
        return Err(Error::ShapeMismatch {
            context: "linear: bias",
            expected: format!("[{o}] or [{n}, {o}]"),
            got: bias.dims().to_vec(),
        });
    }
    Ok(())
}

/// `x W^T + b`: `candle_nn::Linear::new(weight, Some(b)).forward(x)` for a bias `b` of shape
/// `[out]`, or the product plus a per-row addend `b` of shape `[batch, out]` (a residual, or a
/// conditioning term, added at no extra pass).
///
/// On the CPU in f32 one op: the output starts as `b` and the `gemm` crate accumulates the
/// product into it; backward is two products and (for a bias) a column sum, with no transposed
/// copies. Elsewhere the plain candle composition.
///
/// # Shapes
/// `x`: `[batch, in]`; `weight`: `[out, in]` (PyTorch's layout); `b`: `[out]` or `[batch, out]`;
/// output `[batch, out]`.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming the argument whose shape does not fit.
///
/// # Example
/// ```
/// use candle_core::{Device, Module, Tensor};
/// let dev = Device::Cpu;
/// let x = Tensor::randn(0f32, 1.0, (4, 3), &dev)?;
/// let w = Tensor::randn(0f32, 1.0, (5, 3), &dev)?;
/// let b = Tensor::randn(0f32, 1.0, 5, &dev)?;
/// let y = dmad_ops::linear(&x, &w, &b)?;
/// let reference = candle_nn::Linear::new(w, Some(b)).forward(&x)?;
/// assert!((y - reference)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn linear(x: &Tensor, weight: &Tensor, b: &Tensor) -> Result<Tensor> {
    check(x, weight, b)?;
    if !use_cpu_kernel(&[x, weight, b]) {
        return Ok(x.matmul(&weight.t()?)?.broadcast_add(b)?);
    }
    Ok(x.contiguous()?
        .apply_op3(&weight.contiguous()?, &b.contiguous()?, LinearOp)?)
}
