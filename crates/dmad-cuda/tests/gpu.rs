//! The CUDA kernels against their CPU twins (and the dispatching functions against the CPU
//! paths), on CUDA device 0. Compiled with the `cuda` feature only; each test returns early
//! with a note when no GPU is present.
//!
//! ```bash
//! cargo test -p dmad-cuda --features cuda --test gpu -- --nocapture
//! ```
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::{assert_close, randn};
use dmad_core::PredictionType;
use dmad_cuda::{
    attention, attention_kernel, group_norm_kernel, group_norm_silu, sampler_step,
    Dwt2dPeriodization, StepCoefs,
};
use dmad_wavelets::Wavelet;

fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

fn on(t: &Tensor, dev: &Device, dtype: DType) -> Tensor {
    t.to_dtype(dtype).unwrap().to_device(dev).unwrap()
}

/// f32 kernels agree with the twins to 1e-4 (f32 sums in another order); bf16 kernels agree
/// with the twin run on the same bf16 inputs to a few bf16 ulps (one rounding each side).
fn tol(dtype: DType) -> f32 {
    if dtype == DType::BF16 {
        3.0 / 128.0
    } else {
        1e-4
    }
}

#[test]
fn group_norm_kernel_matches_its_twin_forward_and_backward() {
    let Some(dev) = gpu() else { return };
    let cases: &[(usize, usize, &[usize], usize)] = &[
        (1, 4, &[5, 7], 2),
        (2, 64, &[16, 16], 32),
        (3, 8, &[1, 9], 8),
        (4, 128, &[32, 32], 32),
        (2, 6, &[2, 3, 2], 2),
        (32, 32, &[64, 64], 8),
    ];
    for dtype in [DType::F32, DType::BF16] {
        for (k, &(n, c, sp, g)) in cases.iter().enumerate() {
            let mut dims = vec![n, c];
            dims.extend_from_slice(sp);
            let seed = 10 * k as u64;
            let (x, w, b) = (
                randn(seed, &dims, 2.0, 0.5),
                randn(seed + 1, &[c], 0.5, 1.0),
                randn(seed + 2, &[c], 0.5, 0.0),
            );
            let up = randn(seed + 3, &dims, 1.0, 0.0);
            for silu in [false, true] {
                let what = format!("{dtype:?} {dims:?} groups {g} silu {silu}");
                let run = |d: &Device| {
                    let xv = Var::from_tensor(&on(&x, d, dtype)).unwrap();
                    let wv = Var::from_tensor(&on(&w, d, dtype)).unwrap();
                    let bv = Var::from_tensor(&on(&b, d, dtype)).unwrap();
                    let y = group_norm_kernel(&xv, g, &wv, &bv, 1e-5, silu).unwrap();
                    let loss = (y.to_dtype(DType::F32).unwrap() * on(&up, d, DType::F32))
                        .unwrap()
                        .sum_all()
                        .unwrap();
                    let gr = loss.backward().unwrap();
                    let grads: Vec<Tensor> = [&xv, &wv, &bv]
                        .iter()
                        .map(|v| gr.get(v).unwrap().clone())
                        .collect();
                    (y, grads)
                };
                let (yg, gg) = run(&dev);
                let (yc, gc) = run(&Device::Cpu);
                assert_close(&yg, &yc, tol(dtype), &format!("{what}: forward"));
                for (i, name) in ["dx", "dweight", "dbias"].iter().enumerate() {
                    // dweight and dbias sum over the batch and the spatial positions.
                    let t = if i == 0 { tol(dtype) } else { 4.0 * tol(dtype) };
                    assert_close(&gg[i], &gc[i], t, &format!("{what}: {name}"));
                }
            }
        }
    }
}

#[test]
fn group_norm_dispatch_on_cuda_matches_candle() {
    let Some(dev) = gpu() else { return };
    let x = randn(1, &[8, 64, 32, 32], 1.0, 0.0);
    let w = randn(2, &[64], 0.3, 1.0);
    let b = randn(3, &[64], 0.3, 0.0);
    let y = group_norm_silu(
        &on(&x, &dev, DType::F32),
        32,
        &on(&w, &dev, DType::F32),
        &on(&b, &dev, DType::F32),
        1e-5,
    )
    .unwrap();
    let want = dmad_ops::group_norm_silu(&x, 32, &w, &b, 1e-5).unwrap();
    assert_close(&y, &want, 1e-4, "dispatch on CUDA vs dmad-ops on the CPU");
}

#[test]
fn dwt_kernels_match_their_twins_forward_inverse_and_backward() {
    let Some(dev) = gpu() else { return };
    let sizes: &[[usize; 4]] = &[
        [1, 1, 2, 2],
        [2, 3, 8, 8],
        [1, 2, 6, 10],
        [4, 3, 64, 64],
        [2, 4, 256, 256],
    ];
    for dtype in [DType::F32, DType::BF16] {
        for name in ["haar", "db2", "db4", "sym3", "coif2"] {
            let dwt = Dwt2dPeriodization::new(&Wavelet::new(name).unwrap()).unwrap();
            for (k, dims) in sizes.iter().enumerate() {
                let what = format!("{dtype:?} {name} {dims:?}");
                let x = randn(100 + k as u64, dims, 1.0, 0.2);
                let mut bdims = *dims;
                bdims[1] *= 4;
                bdims[2] /= 2;
                bdims[3] /= 2;
                let up = randn(200 + k as u64, &bdims, 1.0, 0.0);
                let run = |d: &Device| {
                    let xv = Var::from_tensor(&on(&x, d, dtype)).unwrap();
                    let y = dwt.forward_kernel(&xv, 0.5).unwrap();
                    let z = dwt.inverse_kernel(&on(&up, d, dtype), 2.0).unwrap();
                    let loss = (y.to_dtype(DType::F32).unwrap() * on(&up, d, DType::F32))
                        .unwrap()
                        .sum_all()
                        .unwrap();
                    let g = loss.backward().unwrap().get(&xv).unwrap().clone();
                    (y, z, g)
                };
                let (yg, zg, gg) = run(&dev);
                let (yc, zc, gc) = run(&Device::Cpu);
                assert_close(&yg, &yc, tol(dtype), &format!("{what}: forward"));
                assert_close(&zg, &zc, tol(dtype), &format!("{what}: inverse"));
                assert_close(&gg, &gc, tol(dtype), &format!("{what}: backward"));
                let fast = dwt.forward_stacked(&on(&x, &dev, dtype), 0.5).unwrap();
                assert_close(&fast, &yc, tol(dtype), &format!("{what}: dispatch"));
            }
        }
    }
}

#[test]
fn sampler_step_kernel_matches_its_twin() {
    let Some(dev) = gpu() else { return };
    let dims = [32, 3, 64, 64];
    let (x, m, aux) = (
        randn(1, &dims, 1.0, 0.0),
        randn(2, &dims, 1.0, 0.0),
        randn(3, &dims, 1.0, 0.0),
    );
    let a: Vec<f64> = (0..32).map(|i| 0.05 + 0.025 * i as f64).collect();
    let ap: Vec<f64> = a.iter().map(|v| (v + 0.1f64).min(1.0)).collect();
    let s0: Vec<f64> = (0..32).map(|i| 10.0 / (1.0 + i as f64)).collect();
    let s1: Vec<Option<f64>> = s0.iter().map(|s| Some(s * 1.5)).collect();
    let st: Vec<f64> = s0.iter().map(|s| s * 0.6).collect();
    let coefs = [
        StepCoefs::ddim(PredictionType::Epsilon, &a, &ap, 0.0, None).unwrap(),
        StepCoefs::ddim(PredictionType::VPrediction, &a, &ap, 0.8, Some(1.0)).unwrap(),
        StepCoefs::dpm_solver_pp(PredictionType::Epsilon, &s1, &s0, &st).unwrap(),
    ];
    for dtype in [DType::F32, DType::BF16] {
        for (k, c) in coefs.iter().enumerate() {
            let run = |d: &Device| {
                sampler_step(
                    &on(&x, d, dtype),
                    &on(&m, d, dtype),
                    Some(&on(&aux, d, dtype)),
                    c,
                    true,
                )
                .unwrap()
            };
            let (og, x0g) = run(&dev);
            let (oc, x0c) = run(&Device::Cpu);
            assert_close(&og, &oc, tol(dtype), &format!("{dtype:?} case {k}: update"));
            assert_close(
                &x0g.unwrap(),
                &x0c.unwrap(),
                tol(dtype),
                &format!("{dtype:?} case {k}: x0"),
            );
        }
    }
}

#[test]
fn attention_kernel_matches_its_twin_forward_and_backward() {
    let Some(dev) = gpu() else { return };
    let cases = [
        (2, 5, 7, 8),
        (3, 70, 130, 16),
        (1, 1, 1, 32),
        (2, 129, 65, 64),
        (64, 1024, 1024, 8),
    ];
    for dtype in [DType::F32, DType::BF16] {
        for (k, &(bh, tq, tk, d)) in cases.iter().enumerate() {
            let what = format!("{dtype:?} {:?}", (bh, tq, tk, d));
            let seed = 1000 + 10 * k as u64;
            let (q, kk, v) = (
                randn(seed, &[bh, tq, d], 1.0, 0.0),
                randn(seed + 1, &[bh, tk, d], 1.0, 0.0),
                randn(seed + 2, &[bh, tk, d], 1.0, 0.0),
            );
            let up = randn(seed + 3, &[bh, tq, d], 1.0, 0.0);
            let run = |dv: &Device| {
                let vars: Vec<Var> = [&q, &kk, &v]
                    .iter()
                    .map(|t| Var::from_tensor(&on(t, dv, dtype)).unwrap())
                    .collect();
                let y = attention_kernel(&vars[0], &vars[1], &vars[2], None).unwrap();
                let loss = (y.to_dtype(DType::F32).unwrap() * on(&up, dv, DType::F32))
                    .unwrap()
                    .sum_all()
                    .unwrap();
                let g = loss.backward().unwrap();
                let grads: Vec<Tensor> = vars.iter().map(|x| g.get(x).unwrap().clone()).collect();
                (y, grads)
            };
            let (yg, gg) = run(&dev);
            // The twin is O(tq * tk * d) scalar code: skip the largest case on the CPU and
            // compare with candle's composition on the GPU instead.
            if tq * tk > 100_000 {
                let (qg, kg, vg) = (
                    on(&q, &dev, dtype),
                    on(&kk, &dev, dtype),
                    on(&v, &dev, dtype),
                );
                let s = (qg
                    .to_dtype(DType::F32)
                    .unwrap()
                    .matmul(&kg.to_dtype(DType::F32).unwrap().t().unwrap())
                    .unwrap()
                    / (d as f64).sqrt())
                .unwrap();
                let want = candle_nn::ops::softmax_last_dim(&s)
                    .unwrap()
                    .matmul(&vg.to_dtype(DType::F32).unwrap())
                    .unwrap();
                assert_close(
                    &yg,
                    &want,
                    tol(dtype),
                    &format!("{what}: forward vs candle"),
                );
                let dispatched = attention(&qg, &kg, &vg, None).unwrap();
                assert_close(&dispatched, &want, tol(dtype), &format!("{what}: dispatch"));
                continue;
            }
            let (yc, gc) = run(&Device::Cpu);
            assert_close(&yg, &yc, tol(dtype), &format!("{what}: forward"));
            for (i, name) in ["dq", "dk", "dv"].iter().enumerate() {
                assert_close(&gg[i], &gc[i], 4.0 * tol(dtype), &format!("{what}: {name}"));
            }
        }
    }
}
