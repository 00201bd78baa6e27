//! Shared helpers for the integration tests: seeded tensors and tolerance checks.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded standard-normal tensor scaled by `scale`, plus `shift`.
pub fn randn(seed: u64, dims: &[usize], scale: f32, shift: f32) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            z * scale + shift
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Asserts `|a - b| <= tol * max(1, |b|)` elementwise, naming `what` on failure.
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(!a.is_empty() || b.is_empty());
    let mut worst = 0.0f32;
    let mut at = 0;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(x.is_finite(), "{what}: non-finite value at {i}");
        let e = (x - y).abs() / y.abs().max(1.0);
        if e > worst {
            worst = e;
            at = i;
        }
    }
    assert!(
        worst <= tol,
        "{what}: error {worst} at {at} ({} vs {})",
        a[at],
        b[at]
    );
}
