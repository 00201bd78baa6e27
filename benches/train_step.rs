//! One training step of the feature-space MLP denoiser (152 patch features, batch 512, depth 3)
//! on the CPU, at widths 256 and 512, with one timestep per sample and with 32 timesteps per
//! batch shared by 16 samples each (`TrainConfig::distinct_timesteps`, the setting of the
//! `feature-diffusion-*-long` benchmark cells).
//!
//! Run: `cargo bench --bench train_step` (brief: add
//! `-- --warm-up-time 2 --measurement-time 10`).

use std::hint::black_box;

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use dmad::diffusion::NoiseScheduleConfig;
use dmad::train::{TrainConfig, Trainer};
use dmad::unet::{MlpConfig, MlpDenoiser};

const FEATURES: usize = 152;
const BATCH: usize = 512;

fn step(c: &mut Criterion) {
    dmad::init_cpu();
    let dev = Device::Cpu;
    let data = Tensor::randn(0f32, 1.0, (20_000, FEATURES), &dev).expect("data");
    let mut group = c.benchmark_group("mlp_train_step");
    group.sample_size(20);
    for width in [256, 512] {
        for distinct in [None, Some(32)] {
            let cfg = MlpConfig {
                width,
                depth: 3,
                ..MlpConfig::new(FEATURES)
            };
            let (net, varmap) = MlpDenoiser::with_varmap(cfg, DType::F32, &dev).expect("network");
            let train = TrainConfig {
                steps: 1_000_000,
                batch_size: BATCH,
                learning_rate: 1e-3,
                distinct_timesteps: distinct,
                checkpoint_every: None,
                ..TrainConfig::default()
            };
            let schedule = NoiseScheduleConfig::default().build().expect("schedule");
            let mut trainer =
                Trainer::new(train, schedule, &varmap, serde_json::Value::Null).expect("trainer");
            let name = match distinct {
                None => format!("width{width}/per-sample-t"),
                Some(k) => format!("width{width}/{k}-distinct-t"),
            };
            group.bench_function(&name, |b| {
                b.iter(|| black_box(trainer.train_step(&net, &data, None).expect("step")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
