//! Shared helpers of the integration tests.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// A seeded normal `N(mean, std^2)` f32 tensor on the CPU.
pub fn randn(seed: u64, dims: &[usize], std: f32, mean: f32) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let dist = Normal::new(mean, std).unwrap();
    let v: Vec<f32> = (0..n).map(|_| dist.sample(&mut rng)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Asserts `|a - b| <= tol * max(1, |b|)` elementwise (both read as f32 on the CPU).
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let f = |t: &Tensor| -> Vec<f32> {
        t.to_device(&Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (av, bv) = (f(a), f(b));
    let mut worst = (0.0f32, 0usize);
    for (i, (x, y)) in av.iter().zip(&bv).enumerate() {
        assert!(x.is_finite(), "{what}: non-finite value at {i}");
        let err = (x - y).abs() / y.abs().max(1.0);
        if err > worst.0 {
            worst = (err, i);
        }
    }
    assert!(
        worst.0 <= tol,
        "{what}: error {} at {} (got {}, want {}) above {tol}",
        worst.0,
        worst.1,
        av[worst.1],
        bv[worst.1]
    );
}
