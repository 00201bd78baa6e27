//! Benches of dmad-metrics on the protocol's largest inputs.
//!
//! ```bash
//! cargo bench -p dmad-metrics --bench metrics -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `cpu/aupro/200x256x256`: AUPRO over 200 maps of 256x256 (13.1 M pixels), as the textures-ad
//!   pixel protocol; `cpu/pixel_auroc/200x256x256` the pooled pixel AUROC of the same maps.
//! - `cpu/auroc/1M`, `cpu/auprc/1M`: one million scores with ties.
//! - `cpu/vus_pr/100k`: VUS-PR (window 100, 250 thresholds) of a 100 000-point series.

use criterion::{criterion_group, criterion_main, Criterion};
use dmad_metrics::{auprc, aupro, auroc, pixel_auroc, vus_pr, AUPRO_MAX_FPR};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn maps(n: usize, h: usize, w: usize) -> (Vec<Vec<f32>>, Vec<Vec<bool>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut maps = Vec::with_capacity(n);
    let mut masks = Vec::with_capacity(n);
    for i in 0..n {
        let mut mask = vec![false; h * w];
        if i % 2 == 1 {
            for _ in 0..3 {
                let (cy, cx) = (rng.random_range(0..h) as f32, rng.random_range(0..w) as f32);
                let r = rng.random_range(3.0f32..20.0);
                for y in 0..h {
                    for x in 0..w {
                        if (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2) <= r * r {
                            mask[y * w + x] = true;
                        }
                    }
                }
            }
        }
        let map: Vec<f32> = mask
            .iter()
            .map(|&m| rng.random::<f32>() + if m { 0.7 } else { 0.0 })
            .collect();
        maps.push(map);
        masks.push(mask);
    }
    (maps, masks)
}

fn bench(c: &mut Criterion) {
    let (m, k) = maps(200, 256, 256);
    let mut g = c.benchmark_group("cpu");
    g.sample_size(10);
    g.bench_function("aupro/200x256x256", |b| {
        b.iter(|| aupro(&m, &k, 256, 256, AUPRO_MAX_FPR).unwrap())
    });
    g.bench_function("pixel_auroc/200x256x256", |b| {
        b.iter(|| pixel_auroc(&m, &k).unwrap())
    });

    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let labels: Vec<bool> = (0..1_000_000).map(|_| rng.random::<f32>() < 0.1).collect();
    let scores: Vec<f64> = labels
        .iter()
        .map(|&l| (rng.random_range(0..1000u32) + if l { 200 } else { 0 }) as f64)
        .collect();
    g.bench_function("auroc/1M", |b| b.iter(|| auroc(&scores, &labels).unwrap()));
    g.bench_function("auprc/1M", |b| b.iter(|| auprc(&scores, &labels).unwrap()));

    let n = 100_000;
    let series_labels: Vec<bool> = (0..n).map(|i| (i % 5000) >= 4900).collect();
    let series: Vec<f64> = series_labels
        .iter()
        .map(|&l| rng.random::<f64>() + if l { 0.5 } else { 0.0 })
        .collect();
    g.bench_function("vus_pr/100k", |b| {
        b.iter(|| vus_pr(&series, &series_labels, 100).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
