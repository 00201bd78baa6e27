//! GPU benchmarks (CUDA device 0): the image defaults' U-Net at 256x256, batch 32 (one U-Net
//! step and a 10-step DDIM reconstruction, f32 and bf16), and dmad-cuda's kernels against the
//! candle compositions they replace. Needs the `cuda` feature and a GPU.
//!
//! ```bash
//! cargo bench -p dmad-cuda --features cuda --bench gpu -- --warm-up-time 2 --measurement-time 10
//! ```
//!
//! Throughputs are images per second (criterion's `elem/s`): 32 images per U-Net step, 32 per
//! reconstruction. Every timed closure synchronises the device before it returns. The peer of
//! the U-Net rows (PyTorch with diffusers) is `benches/peers/unet_cuda_peer.py`: the same
//! network with the method's modules off (`modules_off` rows); the `all_modules` rows are the
//! image defaults proper, which diffusers has no counterpart for.

#[cfg(not(feature = "cuda"))]
fn main() {
    eprintln!("benches/gpu.rs needs the `cuda` feature: cargo bench -p dmad-cuda --features cuda --bench gpu");
}

#[cfg(feature = "cuda")]
criterion::criterion_main!(gpu::benches);

#[cfg(feature = "cuda")]
mod gpu {
    use std::time::Duration;

    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarMap;
    use criterion::{criterion_group, Criterion, Throughput};
    use dmad::NetworkConfig;
    use dmad_core::{Denoiser, PredictionType};
    use dmad_cuda::{sampler_step, sampling_var_builder, Dwt2dPeriodization, StepCoefs};
    use dmad_diffusion::NoiseScheduleConfig;
    use dmad_unet::{ModulesConfig, UNet2d, UNetConfig};
    use dmad_wavelets::{tensor::Dwt2d, Mode, Wavelet};

    const BATCH: usize = 32;
    const SIDE: usize = 256;
    const CHANNELS: usize = 3;

    fn image_unet(all_modules: bool) -> UNetConfig {
        let NetworkConfig::Unet2d(c) = dmad::DetectorConfig::for_images(CHANNELS).network else {
            panic!("image defaults are not a 2D U-Net")
        };
        UNetConfig {
            sample_size: SIDE,
            modules: if all_modules {
                c.modules.clone()
            } else {
                ModulesConfig::none()
            },
            ..c
        }
    }

    fn randn(dims: &[usize], dev: &Device) -> Tensor {
        Tensor::randn(0f32, 1.0, dims, dev).unwrap()
    }

    fn unet(c: &mut Criterion) {
        let dev = Device::new_cuda(0).expect("a CUDA device");
        dev.set_seed(0).unwrap();
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let ac = schedule.alphas_cumprod().to_vec();
        let x0 = randn(&[BATCH, CHANNELS, SIDE, SIDE], &dev);
        let noise = randn(&[BATCH, CHANNELS, SIDE, SIDE], &dev);
        // diffusers' 10-step DDIM plan (leading spacing): 900, 800, ..., 0.
        let plan: Vec<usize> = (0..10).rev().map(|i| i * 100).collect();
        let mut g = c.benchmark_group("unet_256_b32");
        g.sample_size(10)
            .throughput(Throughput::Elements(BATCH as u64));
        for (label, all) in [("modules_off", false), ("all_modules", true)] {
            let vm = VarMap::new();
            let cfg = image_unet(all);
            UNet2d::new(
                cfg.clone(),
                dmad_train::seeded_var_builder(&vm, 0, DType::F32, &dev),
            )
            .unwrap();
            for dtype in [DType::F32, DType::BF16] {
                let net = UNet2d::new(cfg.clone(), sampling_var_builder(&vm, dtype, &dev)).unwrap();
                let name = format!(
                    "cuda_{}_{label}",
                    if dtype == DType::F32 { "f32" } else { "bf16" }
                );
                let xt = x0.to_dtype(dtype).unwrap();
                let t = Tensor::from_vec(vec![500u32; BATCH], BATCH, &dev).unwrap();
                g.bench_function(format!("{name}/step"), |b| {
                    b.iter(|| {
                        let y = net.predict(&xt, &t).unwrap();
                        dev.synchronize().unwrap();
                        y
                    })
                });
                g.bench_function(format!("{name}/ddim10"), |b| {
                    b.iter(|| {
                        let a0 = ac[plan[0]];
                        let mut s = ((&x0 * a0.sqrt()).unwrap()
                            + (&noise * (1.0 - a0).sqrt()).unwrap())
                        .unwrap();
                        for (k, &tt) in plan.iter().enumerate() {
                            let tv = Tensor::from_vec(vec![tt as u32; BATCH], BATCH, &dev).unwrap();
                            let eps = net
                                .predict(&s.to_dtype(dtype).unwrap(), &tv)
                                .unwrap()
                                .to_dtype(DType::F32)
                                .unwrap();
                            let ap = plan.get(k + 1).map_or(1.0, |&p| ac[p]);
                            let coefs = StepCoefs::ddim(
                                PredictionType::Epsilon,
                                &[ac[tt]; BATCH],
                                &[ap; BATCH],
                                0.0,
                                None,
                            )
                            .unwrap();
                            s = sampler_step(&s, &eps, None, &coefs, false).unwrap().0;
                        }
                        dev.synchronize().unwrap();
                        s
                    })
                });
            }
        }
        g.finish();
    }

    fn ops(c: &mut Criterion) {
        let dev = Device::new_cuda(0).expect("a CUDA device");
        let mut g = c.benchmark_group("ops_cuda");
        g.sample_size(20);
        let sync = |t: Tensor| {
            dev.synchronize().unwrap();
            t
        };
        for dtype in [DType::F32, DType::BF16] {
            let ty = if dtype == DType::F32 { "f32" } else { "bf16" };
            // GroupNorm + SiLU on the U-Net's first level at 256x256: [32, 32, 256, 256], 8 groups.
            let x = randn(&[BATCH, 32, SIDE, SIDE], &dev)
                .to_dtype(dtype)
                .unwrap();
            let w = Tensor::ones(32, dtype, &dev).unwrap();
            let bias = Tensor::zeros(32, dtype, &dev).unwrap();
            g.bench_function(format!("group_norm_silu_{ty}/dmad_cuda"), |b| {
                b.iter(|| sync(dmad_cuda::group_norm_kernel(&x, 8, &w, &bias, 1e-5, true).unwrap()))
            });
            let gn = candle_nn::GroupNorm::new(w.clone(), bias.clone(), 32, 8, 1e-5).unwrap();
            g.bench_function(format!("group_norm_silu_{ty}/candle"), |b| {
                b.iter(|| {
                    sync(
                        candle_core::Module::forward(&gn, &x)
                            .unwrap()
                            .silu()
                            .unwrap(),
                    )
                })
            });
            // The pyramid's DWT of the input: [32, 3, 256, 256], db4.
            let img = randn(&[BATCH, CHANNELS, SIDE, SIDE], &dev)
                .to_dtype(dtype)
                .unwrap();
            let wav = Wavelet::new("db4").unwrap();
            let ours = Dwt2dPeriodization::new(&wav).unwrap();
            let theirs = Dwt2d::new(&wav, Mode::Periodization);
            g.bench_function(format!("dwt2_db4_{ty}/dmad_cuda"), |b| {
                b.iter(|| sync(ours.forward_kernel(&img, 0.5).unwrap()))
            });
            g.bench_function(format!("dwt2_db4_{ty}/dmad_wavelets_candle_ops"), |b| {
                b.iter(|| sync((theirs.forward_stacked(&img).unwrap() * 0.5).unwrap()))
            });
            // Attention at the U-Net's 64x64 level: 8 heads of width 8, batch 32 (tokens 4096).
            let q = randn(&[BATCH * 8, 4096, 8], &dev).to_dtype(dtype).unwrap();
            g.bench_function(format!("attention_4096_d8_{ty}/dmad_cuda"), |b| {
                b.iter(|| sync(dmad_cuda::attention_kernel(&q, &q, &q, None).unwrap()))
            });
            // candle's composition holds [256, 4096, 4096] scores (17 GB in f32): one head group.
            let q8 = q.narrow(0, 0, 8).unwrap();
            g.bench_function(format!("attention_4096_d8_{ty}_bh8/dmad_cuda"), |b| {
                b.iter(|| sync(dmad_cuda::attention_kernel(&q8, &q8, &q8, None).unwrap()))
            });
            g.bench_function(format!("attention_4096_d8_{ty}_bh8/candle"), |b| {
                b.iter(|| {
                    let s = (q8.matmul(&q8.t().unwrap()).unwrap() / 8f64.sqrt()).unwrap();
                    sync(
                        candle_nn::ops::softmax_last_dim(&s)
                            .unwrap()
                            .matmul(&q8)
                            .unwrap(),
                    )
                })
            });
        }
        // The DDIM update on [32, 3, 256, 256]: fused kernel vs dmad-diffusion's candle ops.
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let x = randn(&[BATCH, CHANNELS, SIDE, SIDE], &dev);
        let m = randn(&[BATCH, CHANNELS, SIDE, SIDE], &dev);
        let coefs = StepCoefs::ddim(
            PredictionType::Epsilon,
            &[0.5; BATCH],
            &[0.6; BATCH],
            0.0,
            None,
        )
        .unwrap();
        g.bench_function("ddim_step_f32/dmad_cuda", |b| {
            b.iter(|| sync(sampler_step(&x, &m, None, &coefs, false).unwrap().0))
        });
        let mut ddim = dmad_diffusion::DdimSampler::new(
            &schedule,
            dmad_diffusion::DdimConfig {
                num_inference_steps: 10,
                ..Default::default()
            },
        )
        .unwrap();
        let t = Tensor::from_vec(vec![901u32; BATCH], BATCH, &dev).unwrap();
        g.bench_function("ddim_step_f32/dmad_diffusion", |b| {
            b.iter(|| sync(dmad_diffusion::Sampler::step(&mut ddim, &m, &t, &x, None).unwrap()))
        });
        g.finish();
    }

    criterion_group! {
        name = benches;
        config = Criterion::default().measurement_time(Duration::from_secs(10));
        targets = unet, ops
    }
}
