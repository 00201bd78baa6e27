//! The candle tensor DWTs against the f64 transforms, and their gradients against finite
//! differences.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::{assert_close, signal};
use dmad_wavelets::tensor::{Dwt1d, Dwt2d};
use dmad_wavelets::{dwt, dwt2, idwt, idwt2, Error, Mode, NdArray, Wavelet};

fn t1(x: &[f64]) -> Tensor {
    Tensor::from_vec(x.to_vec(), x.len(), &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

#[test]
fn tensor_dwt1d_matches_f64_dwt_in_every_mode() {
    for name in ["haar", "db2", "db4", "sym5"] {
        let w = Wavelet::new(name).unwrap();
        for mode in Mode::ALL {
            for len in [2usize, 3, 7, 16, 33] {
                let x = signal(len, len as u64 + 5);
                let (ca, cd) = dwt(&x, &w, mode).unwrap();
                let y = idwt(Some(&ca), Some(&cd), &w, mode).unwrap();
                for dense in [0, usize::MAX] {
                    let op = Dwt1d::new(&w, mode).with_dense_max_len(dense);
                    let (ta, td) = op.forward(&t1(&x)).unwrap();
                    let what = format!("{name} {mode} n={len} dense<={dense}");
                    assert_close(&flat(&ta), &ca, 1e-12, &format!("{what} cA"));
                    assert_close(&flat(&td), &cd, 1e-12, &format!("{what} cD"));
                    let ty = op.inverse(&t1(&ca), &t1(&cd)).unwrap();
                    assert_close(&flat(&ty), &y, 1e-12, &format!("{what} idwt"));
                }
            }
        }
    }
}

#[test]
fn tensor_dwt1d_works_on_batches() {
    let w = Wavelet::new("db3").unwrap();
    let (b, c, n) = (2, 3, 20);
    let data = signal(b * c * n, 3);
    let x = Tensor::from_vec(data.clone(), (b, c, n), &Device::Cpu).unwrap();
    let (ta, _) = Dwt1d::new(&w, Mode::Symmetric).forward(&x).unwrap();
    let m = ta.dim(2).unwrap();
    let ta = flat(&ta);
    for row in 0..b * c {
        let (ca, _) = dwt(&data[row * n..(row + 1) * n], &w, Mode::Symmetric).unwrap();
        assert_close(&ta[row * m..(row + 1) * m], &ca, 1e-12, "batch row");
    }
}

#[test]
fn tensor_dwt2d_matches_f64_dwt2_in_every_mode() {
    for name in ["haar", "db2", "sym4"] {
        let w = Wavelet::new(name).unwrap();
        for mode in Mode::ALL {
            for (h, wd) in [(8usize, 8usize), (7, 12), (13, 5)] {
                let data = signal(2 * h * wd, (h * wd) as u64);
                let x = NdArray::new(vec![2, h, wd], data.clone()).unwrap();
                let (ca, ds) = dwt2(&x, &w, mode, [1, 2]).unwrap();
                let y = idwt2(&ca, &ds, &w, mode, [1, 2]).unwrap();
                let tx = Tensor::from_vec(data, (2, h, wd), &Device::Cpu).unwrap();
                for (dense, cpu) in [(0, false), (usize::MAX, false), (0, true)] {
                    let op = Dwt2d::new(&w, mode)
                        .with_dense_max_len(dense)
                        .with_cpu_kernels(cpu);
                    let (ta, tds) = op.forward(&tx).unwrap();
                    let what = format!("{name} {mode} {h}x{wd} dense<={dense} cpu={cpu}");
                    assert_eq!(ta.dims(), ca.shape(), "{what}");
                    assert_close(&flat(&ta), ca.data(), 1e-12, &format!("{what} cA"));
                    for k in 0..3 {
                        assert_close(&flat(&tds[k]), ds[k].data(), 1e-12, &format!("{what} d{k}"));
                    }
                    let ty = op.inverse(&ta, &tds).unwrap();
                    assert_eq!(ty.dims(), y.shape(), "{what} idwt2 shape");
                    assert_close(&flat(&ty), y.data(), 1e-12, &format!("{what} idwt2"));
                }
            }
        }
    }
}

#[test]
fn stacked_layout_and_f32_round_trip() {
    let w = Wavelet::new("db2").unwrap();
    let op = Dwt2d::new(&w, Mode::Periodization);
    let x = Tensor::from_vec(
        signal(2 * 3 * 16 * 16, 9)
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<f32>>(),
        (2, 3, 16, 16),
        &Device::Cpu,
    )
    .unwrap();
    let s = op.forward_stacked(&x).unwrap();
    assert_eq!(s.dims(), &[2, 12, 8, 8]);
    let (ca, ds) = op.forward(&x).unwrap();
    let diff = |a: &Tensor, b: &Tensor| {
        a.sub(b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert_eq!(diff(&s.narrow(1, 0, 3).unwrap(), &ca), 0.0);
    assert_eq!(diff(&s.narrow(1, 9, 3).unwrap(), &ds[2]), 0.0);
    let y = op.inverse_stacked(&s).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    assert!(diff(&y, &x) < 1e-5);
}

/// Loss `sum(g * op(x))` for fixed random `g`: its gradient by autograd against central
/// differences.
fn check_grad(op: impl Fn(&Tensor) -> Tensor, shape: &[usize], seed: u64) {
    let n: usize = shape.iter().product();
    let x0 = signal(n, seed);
    let xv = Var::from_tensor(&Tensor::from_vec(x0.clone(), shape, &Device::Cpu).unwrap()).unwrap();
    let y = op(xv.as_tensor());
    let g = Tensor::from_vec(signal(y.elem_count(), seed + 1), y.dims(), &Device::Cpu).unwrap();
    let loss = y.mul(&g).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let grad = flat(grads.get(xv.as_tensor()).expect("gradient"));
    let eps = 1e-6;
    for i in (0..n).step_by((n / 17).max(1)) {
        let f = |delta: f64| {
            let mut x = x0.clone();
            x[i] += delta;
            let xt = Tensor::from_vec(x, shape, &Device::Cpu).unwrap();
            op(&xt)
                .mul(&g)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let fd = (f(eps) - f(-eps)) / (2.0 * eps);
        assert!(
            (fd - grad[i]).abs() <= 1e-6 * fd.abs().max(1.0),
            "index {i}: autograd {} vs fd {fd}",
            grad[i]
        );
    }
}

#[test]
fn gradients_pass_finite_difference_checks() {
    let w = Wavelet::new("db2").unwrap();
    for (mode, dense) in [
        (Mode::Periodization, 0),
        (Mode::Periodization, usize::MAX),
        (Mode::Symmetric, usize::MAX),
        (Mode::Antireflect, usize::MAX),
        (Mode::Symmetric, 0),
        (Mode::Zero, 0),
        (Mode::Smooth, 0),
        (Mode::Antisymmetric, 0),
    ] {
        let op1 = Dwt1d::new(&w, mode).with_dense_max_len(dense);
        check_grad(
            |x| {
                let (a, d) = op1.forward(x).unwrap();
                Tensor::cat(&[&a, &d], 2).unwrap()
            },
            &[2, 2, 11],
            1,
        );
        check_grad(
            |x| {
                let a = x.narrow(1, 0, 1).unwrap();
                let d = x.narrow(1, 1, 1).unwrap();
                op1.inverse(&a, &d).unwrap()
            },
            &[3, 2, 7],
            4,
        );
        let op2 = Dwt2d::new(&w, mode).with_dense_max_len(dense);
        check_grad(|x| op2.forward_stacked(x).unwrap(), &[1, 2, 9, 10], 2);
        let op3 = Dwt2d::new(&w, mode)
            .with_cpu_kernels(false)
            .with_dense_max_len(dense);
        check_grad(|x| op3.forward_stacked(x).unwrap(), &[1, 2, 9, 10], 2);
        check_grad(|x| op2.inverse_stacked(x).unwrap(), &[1, 4, 6, 6], 3);
    }
}

#[test]
fn tensor_bad_input() {
    let w = Wavelet::new("db2").unwrap();
    let op = Dwt1d::new(&w, Mode::Symmetric);
    let empty = Tensor::zeros((2, 0), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(op.forward(&empty), Err(Error::EmptyInput { .. })));
    let a = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    let d = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        op.inverse(&a, &d),
        Err(Error::ShapeMismatch { .. })
    ));
    let op2 = Dwt2d::new(&w, Mode::Periodization);
    let bad = Tensor::zeros((1, 6, 4, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        op2.inverse_stacked(&bad),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        op2.forward_stacked(&a),
        Err(Error::ShapeMismatch { .. })
    ));
}
