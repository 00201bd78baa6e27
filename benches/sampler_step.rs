//! One step of each sampler on a `[16, 3, 64, 64]` tensor on the CPU.
//!
//! Run: `cargo bench --bench sampler_step` (brief: add
//! `-- --warm-up-time 1 --measurement-time 3`).
//!
//! Each step is a few element-wise passes over 196608 values, so it is memory bound. On a busy
//! machine candle's spinning CPU thread pool can make it 5-10x slower; compare with
//! `CANDLE_NUM_THREADS=1`.

use std::hint::black_box;

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use dmad::diffusion::{
    DdimConfig, DdimSampler, DdpmConfig, DdpmSampler, DpmSolverConfig, DpmSolverSampler,
    EulerConfig, EulerSampler, NoiseScheduleConfig, NoiseSource, Sampler, SeededNoise,
};

const SHAPE: [usize; 4] = [16, 3, 64, 64];

/// Times `sampler.step` at plan index `index`, on a fresh clone of the primed sampler each
/// iteration (cloning copies the plan and `Arc`s of the state, not the tensors).
fn bench_step<S: Sampler + Clone>(
    c: &mut Criterion,
    name: &str,
    sampler: &S,
    index: usize,
    inputs: &(Tensor, Tensor, Tensor),
) {
    let (x, out, z) = inputs;
    let tv = sampler.timesteps()[index] as f32;
    let t = Tensor::new(vec![tv; SHAPE[0]], &Device::Cpu).expect("timesteps");
    c.bench_function(&format!("{name}/cpu/16x3x64x64"), |b| {
        b.iter(|| {
            let mut s = sampler.clone();
            black_box(s.step(out, &t, x, Some(z)).expect("step"))
        })
    });
}

fn samplers(c: &mut Criterion) {
    let schedule = NoiseScheduleConfig::default().build().expect("schedule");
    let mut noise = SeededNoise::new(0);
    let dev = Device::Cpu;
    let inputs = (
        noise.draw(&SHAPE, &dev).expect("x"),
        noise.draw(&SHAPE, &dev).expect("model output"),
        noise.draw(&SHAPE, &dev).expect("noise"),
    );
    let ddpm = DdpmSampler::new(&schedule, DdpmConfig::default()).expect("ddpm");
    bench_step(c, "ddpm", &ddpm, 10, &inputs);
    let ddim = DdimSampler::new(&schedule, DdimConfig::default()).expect("ddim");
    bench_step(c, "ddim", &ddim, 10, &inputs);
    let ddim1 = DdimSampler::new(
        &schedule,
        DdimConfig {
            eta: 1.0,
            ..Default::default()
        },
    )
    .expect("ddim eta 1");
    bench_step(c, "ddim_eta1", &ddim1, 10, &inputs);
    // DPM-Solver++ 2M: prime the state with the step before, so the timed step is second order.
    let mut dpm = DpmSolverSampler::new(&schedule, DpmSolverConfig::default()).expect("dpm");
    let t9 = Tensor::new(vec![dpm.timesteps()[9] as f32; SHAPE[0]], &dev).expect("t");
    dpm.step(&inputs.1, &t9, &inputs.0, None).expect("prime");
    bench_step(c, "dpm_solver_2m", &dpm, 10, &inputs);
    let euler = EulerSampler::new(&schedule, EulerConfig::default()).expect("euler");
    bench_step(c, "euler", &euler, 10, &inputs);
    let (x, _, _) = &inputs;
    let t = Tensor::new(vec![euler.timesteps()[10] as f32; SHAPE[0]], &dev).expect("t");
    c.bench_function("euler_scale_model_input/cpu/16x3x64x64", |b| {
        b.iter(|| black_box(euler.scale_model_input(x, &t).expect("scale")))
    });
}

criterion_group!(benches, samplers);
criterion_main!(benches);
