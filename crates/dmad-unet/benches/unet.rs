//! Forward and forward+backward timings of dmad's denoisers on the CPU.
//!
//! Run: `cargo bench -p dmad-unet --bench unet -- --warm-up-time 1 --measurement-time 3`
//!
//! The 2D network is the benchmark U-Net: block_out_channels [32, 64, 128], 64x64
//! grey, attention at the two lower levels (diffusers defaults otherwise), here at batch 2 to
//! keep the run short on a shared 2-core machine (the 32x32 attention layers, 8 heads of
//! width 8 over 1024 tokens, dominate the CPU time).

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use dmad_unet::{
    DownBlockType, MlpConfig, MlpDenoiser, ModulesConfig, UNet1d, UNet2d, UNetConfig, UpBlockType,
};

fn bench_config(modules: ModulesConfig) -> UNetConfig {
    UNetConfig {
        sample_size: 64,
        in_channels: 1,
        out_channels: 1,
        block_out_channels: vec![32, 64, 128],
        down_block_types: vec![
            DownBlockType::DownBlock,
            DownBlockType::AttnDownBlock,
            DownBlockType::AttnDownBlock,
        ],
        up_block_types: vec![
            UpBlockType::AttnUpBlock,
            UpBlockType::AttnUpBlock,
            UpBlockType::UpBlock,
        ],
        modules,
        ..UNetConfig::default()
    }
}

fn unet2d(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (2, 1, 64, 64), &dev).unwrap();
    let t = Tensor::new(&[10u32, 700], &dev).unwrap();
    let mut g = c.benchmark_group("unet2d");
    g.sample_size(10);
    let (net, _vars) =
        UNet2d::with_varmap(bench_config(ModulesConfig::none()), DType::F32, &dev).unwrap();
    g.bench_function("cpu_forward_b2_1x64x64_c32-64-128_baseline", |b| {
        b.iter(|| net.forward(&x, &t).unwrap())
    });
    g.bench_function("cpu_forward_backward_b2_1x64x64_c32-64-128_baseline", |b| {
        b.iter(|| {
            let loss = net
                .forward(&x, &t)
                .unwrap()
                .sqr()
                .unwrap()
                .mean_all()
                .unwrap();
            loss.backward().unwrap()
        })
    });
    // The method's modules, with attention everywhere except at full resolution (the
    // full-resolution 4096-token attention alone would dominate).
    let mut modules = ModulesConfig::all();
    modules.multi_head_attention = false;
    let (net, _vars) = UNet2d::with_varmap(bench_config(modules), DType::F32, &dev).unwrap();
    g.bench_function(
        "cpu_forward_b2_1x64x64_c32-64-128_pyramid_adapter_hybrid",
        |b| b.iter(|| net.forward(&x, &t).unwrap()),
    );
    g.finish();
}

fn unet1d_and_mlp(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut g = c.benchmark_group("small");
    g.sample_size(10);
    let mut cfg = bench_config(ModulesConfig::all());
    cfg.in_channels = 4;
    cfg.out_channels = 4;
    let (net, _vars) = UNet1d::with_varmap(cfg, DType::F32, &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (16, 4, 256), &dev).unwrap();
    let t = Tensor::arange(0u32, 16, &dev).unwrap();
    g.bench_function("unet1d_cpu_forward_b16_4x256_c32-64-128_all_modules", |b| {
        b.iter(|| net.forward(&x, &t).unwrap())
    });
    let (mlp, _vars) = MlpDenoiser::with_varmap(MlpConfig::new(32), DType::F32, &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (256, 32), &dev).unwrap();
    let t = Tensor::arange(0u32, 256, &dev).unwrap();
    g.bench_function("mlp_cpu_forward_b256_32_w256_d4", |b| {
        b.iter(|| mlp.forward(&x, &t).unwrap())
    });
    g.finish();
}

criterion_group!(benches, unet2d, unet1d_and_mlp);
criterion_main!(benches);
