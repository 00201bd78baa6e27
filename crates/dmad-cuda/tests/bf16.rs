//! Mixed precision: bf16 scoring ranks test samples like f32 scoring (Spearman > 0.99 on a
//! fixed batch), and bf16 training over f32 master weights gives the f32 gradients' direction.
//!
//! bf16 runs on CUDA device 0 (with the `cuda` feature and a GPU; skipped otherwise). candle
//! 0.11's CPU matmul has no bf16, so on the CPU the same tests run in f16: they check the
//! mixed-precision path (low-precision network over f32 masters, tracked casts) with the other
//! 16-bit format.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use dmad::NetworkConfig;
use dmad_core::{Denoiser, PredictionType};
use dmad_cuda::{sampler_step, sampling_var_builder, training_var_builder, StepCoefs};
use dmad_diffusion::NoiseScheduleConfig;
use dmad_unet::{UNet2d, UNetConfig};

const SIDE: usize = 16;
const BATCH: usize = 16;

/// The image defaults' U-Net (grey images), at `SIDE` pixels.
fn image_unet() -> UNetConfig {
    match dmad::DetectorConfig::for_images(1).network {
        NetworkConfig::Unet2d(c) => UNetConfig {
            sample_size: SIDE,
            ..c
        },
        other => panic!("image defaults are not a 2D U-Net: {other:?}"),
    }
}

/// A fixed test batch: a smooth texture plus a square defect whose contrast grows with the
/// sample index (0 for the first: a normal sample), and a little noise.
fn test_batch() -> Tensor {
    let noise = common::randn(42, &[BATCH, 1, SIDE, SIDE], 0.05, 0.0);
    let mut v = Vec::with_capacity(BATCH * SIDE * SIDE);
    for b in 0..BATCH {
        for i in 0..SIDE {
            for j in 0..SIDE {
                let base = 0.4 * ((i as f32) * 0.4).sin() * ((j as f32) * 0.3).cos();
                let defect = (4..8).contains(&i) && (9..13).contains(&j);
                v.push(base + if defect { 0.08 * b as f32 } else { 0.0 });
            }
        }
    }
    (Tensor::from_vec(v, (BATCH, 1, SIDE, SIDE), &Device::Cpu).unwrap() + noise).unwrap()
}

/// Reconstruction scores: diffuse to t = 300, run 3 DDIM steps back, mean squared error. The
/// network runs in `dtype`; the sampler state stays in f32 (the fused step in f32).
fn scores(varmap: &VarMap, dtype: DType, dev: &Device) -> Vec<f32> {
    let net = UNet2d::new(image_unet(), sampling_var_builder(varmap, dtype, dev)).unwrap();
    let schedule = NoiseScheduleConfig::default().build().unwrap();
    let ac = schedule.alphas_cumprod();
    let x = test_batch().to_device(dev).unwrap();
    let noise = common::randn(7, x.dims(), 1.0, 0.0).to_device(dev).unwrap();
    let plan = [300usize, 200, 100];
    let a0 = ac[plan[0]];
    let mut s = ((&x * a0.sqrt()).unwrap() + (&noise * (1.0 - a0).sqrt()).unwrap()).unwrap();
    for (k, &t) in plan.iter().enumerate() {
        let tt = Tensor::from_vec(vec![t as u32; BATCH], BATCH, dev).unwrap();
        let eps = net
            .predict(&s.to_dtype(dtype).unwrap(), &tt)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let ap = plan.get(k + 1).map_or(1.0, |&p| ac[p]);
        let coefs = StepCoefs::ddim(
            PredictionType::Epsilon,
            &[ac[t]; BATCH],
            &[ap; BATCH],
            0.0,
            None,
        )
        .unwrap();
        s = sampler_step(&s, &eps, None, &coefs, false).unwrap().0;
    }
    let err = (s - &x).unwrap().sqr().unwrap();
    err.flatten_from(1)
        .unwrap()
        .mean(1)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Ranks with ties averaged, 1-based.
fn ranks(v: &[f32]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The devices to test, each with its low precision.
fn devices() -> Vec<(Device, DType)> {
    let mut d = vec![(Device::Cpu, DType::F16)];
    if dmad_cuda::cuda_enabled() {
        match Device::new_cuda(0) {
            Ok(c) => d.push((c, DType::BF16)),
            Err(e) => eprintln!("bf16 on CUDA skipped: no CUDA device ({e})"),
        }
    }
    d
}

fn seeded_varmap(dev: &Device) -> VarMap {
    let vm = VarMap::new();
    let vb = dmad_train::seeded_var_builder(&vm, 3, DType::F32, dev);
    UNet2d::new(image_unet(), vb).unwrap();
    vm
}

#[test]
fn spearman_helper_is_right() {
    assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
    assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
}

#[test]
fn bf16_scores_rank_the_test_batch_like_f32_scores() {
    for (dev, low) in devices() {
        let vm = seeded_varmap(&dev);
        let s32 = scores(&vm, DType::F32, &dev);
        let s16 = scores(&vm, low, &dev);
        assert!(s32.iter().chain(&s16).all(|v| v.is_finite()));
        let rho = spearman(&s32, &s16);
        eprintln!("{dev:?}: Spearman({low:?}, f32) = {rho:.5}\n f32 {s32:?}\n {low:?} {s16:?}");
        assert!(rho > 0.99, "{dev:?}: Spearman {rho} <= 0.99");
    }
}

#[test]
fn bf16_training_gradients_reach_the_f32_master_weights() {
    for (dev, low) in devices() {
        let vm = seeded_varmap(&dev);
        let x = test_batch()
            .narrow(0, 0, 4)
            .unwrap()
            .to_device(&dev)
            .unwrap();
        let noise = common::randn(9, x.dims(), 1.0, 0.0)
            .to_device(&dev)
            .unwrap();
        let t = Tensor::from_vec(vec![50u32, 300, 600, 900], 4, &dev).unwrap();
        let grads = |dtype: DType| {
            let net = UNet2d::new(image_unet(), training_var_builder(&vm, dtype, &dev)).unwrap();
            let pred = net
                .predict(&x.to_dtype(dtype).unwrap(), &t)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap();
            let loss = (pred - &noise).unwrap().sqr().unwrap().mean_all().unwrap();
            let g = loss.backward().unwrap();
            let mut flat = Vec::new();
            for v in vm.all_vars() {
                let gv = g.get(&v).expect("every master weight gets a gradient");
                assert_eq!(gv.dtype(), DType::F32);
                flat.extend(gv.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            }
            flat
        };
        let (g32, g16) = (grads(DType::F32), grads(low));
        let dot: f64 = g32
            .iter()
            .zip(&g16)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let n = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (n(&g32) * n(&g16));
        eprintln!("{dev:?}: cosine({low:?} grads, f32 grads) = {cos:.5}");
        // Measured: 0.9997 for f16 on the CPU.
        assert!(cos > 0.99, "{dev:?}: cosine {cos}");
    }
}
