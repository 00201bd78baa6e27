//! Criterion benches of dmad-wavelets, single-threaded, on the inputs of
//! `benches/peers/pywt_peer.py` (which times PyWavelets on the same sizes).
//!
//! Run (from the repository root; the peer script runs this and PyWavelets in one go):
//! ```bash
//! python3 benches/peers/pywt_peer.py --with-rust
//! # or only the Rust side:
//! RAYON_NUM_THREADS=1 cargo bench -p dmad-wavelets --bench wavelets -- --warm-up-time 1 --measurement-time 3
//! ```

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use dmad_wavelets::tensor::Dwt2d;
use dmad_wavelets::{
    cwt, wavedec, wavedec2, ContinuousWavelet, CwtConfig, CwtMethod, CwtPlanner, Mode, NdArray,
    Wavelet,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

fn dwt_benches(c: &mut Criterion) {
    let x = noise(1 << 20, 1);
    let db4 = Wavelet::new("db4").unwrap();
    c.bench_function("cpu_f64/wavedec/2^20/db4/symmetric/max_level", |b| {
        b.iter(|| wavedec(&x, &db4, Mode::Symmetric, None).unwrap())
    });
    let img = NdArray::new(vec![1024, 1024], noise(1024 * 1024, 2)).unwrap();
    let db2 = Wavelet::new("db2").unwrap();
    c.bench_function("cpu_f64/wavedec2/1024x1024/db2/symmetric/level3", |b| {
        b.iter(|| wavedec2(&img, &db2, Mode::Symmetric, Some(3), [0, 1]).unwrap())
    });
}

fn cwt_benches(c: &mut Criterion) {
    let x = noise(16000, 3);
    let scales: Vec<f64> = (1..=64).map(f64::from).collect();
    let morl = ContinuousWavelet::new("morl").unwrap();
    let cfg = CwtConfig {
        method: CwtMethod::Fft,
        ..CwtConfig::default()
    };
    c.bench_function("cpu_f64/cwt/16000x64/morl/fft", |b| {
        b.iter(|| cwt(&x, &scales, &morl, &cfg).unwrap())
    });
    let plan = CwtPlanner::new()
        .plan_cwt(&morl, &scales, x.len(), &cfg)
        .unwrap();
    c.bench_function("cpu_f64/cwt/16000x64/morl/fft/planned", |b| {
        b.iter(|| plan.process(&x).unwrap())
    });
}

fn tensor_benches(c: &mut Criterion) {
    let dev = Device::Cpu;
    let data: Vec<f32> = noise(16 * 64 * 64 * 64, 4)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let x = Tensor::from_vec(data, (16, 64, 64, 64), &dev).unwrap();
    let db2 = Wavelet::new("db2").unwrap();
    for mode in [Mode::Symmetric, Mode::Periodization] {
        let op = Dwt2d::new(&db2, mode);
        c.bench_function(
            &format!("cpu_f32/tensor_dwt2d/16x64x64x64/db2/{mode}"),
            |b| b.iter(|| op.forward(&x).unwrap()),
        );
    }
}

fn config() -> Criterion {
    // Single-threaded, like the PyWavelets peer: candle's CPU kernels read this variable.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    Criterion::default().sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = dwt_benches, cwt_benches, tensor_benches
}
criterion_main!(benches);
