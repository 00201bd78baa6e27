//! Throughput of the U-Net on the CPU: training steps and one sampling step.
//!
//! The network is diffusers' UNet2DModel layout with `block_out_channels [32, 64, 128]`,
//! `[DownBlock2D, AttnDownBlock2D, AttnDownBlock2D]` / `[AttnUpBlock2D, AttnUpBlock2D,
//! UpBlock2D]`, `layers_per_block 2`, `norm_num_groups 32`, attention head width 8, one grey
//! channel at 64x64, and all four modules of the method off: the same network as the peer
//! `benches/peers/unet_peer.py` (PyTorch + diffusers). Training runs dmad's `Trainer` at batch
//! 16 on random data (AdamW lr 1e-4, MSE on epsilon, one random timestep per sample; no EMA, no
//! gradient clipping, no warm-up, as the peer). One untimed step comes first, then `STEPS`
//! timed steps. The sampling step is one forward of a frozen copy plus one DDIM step (50-step
//! plan, first timestep), timed `REPS` times after one untimed run.
//!
//! Run: `cargo run --release --example unet_throughput` (set `CANDLE_NUM_THREADS=2` and
//! `RAYON_NUM_THREADS=2` for the comparison; `benches/peers/run_unet_peer.sh` does both sides).
//! Environment: `UNET_BENCH_STEPS` (default 20), `UNET_BENCH_REPS` (default 3).
//!
//! Prints one line `dmad train_samples_per_s=.. train_s_per_step=.. sample_images_per_s=..
//! sample_s_per_step=.. steps=.. reps=..` that the script parses.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dmad::diffusion::{DdimConfig, DdimSampler, NoiseScheduleConfig, Sampler};
use dmad::train::{seeded_var_builder, TrainConfig, Trainer};
use dmad::unet::{frozen_tensors, DownBlockType, UNet2d, UNetConfig, UpBlockType};
use dmad::Denoiser;

const BATCH: usize = 16;
const SIZE: usize = 64;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse()?),
        Err(_) => Ok(default),
    }
}

fn config() -> UNetConfig {
    UNetConfig {
        sample_size: SIZE,
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
        layers_per_block: 2,
        norm_num_groups: Some(32),
        attention_head_dim: Some(8),
        // All four modules off (the default): a plain diffusers U-Net.
        ..UNetConfig::default()
    }
}

fn main() -> anyhow::Result<()> {
    // As the CLI does: candle's spinning pool off unless CANDLE_NUM_THREADS is set (the peer
    // script sets 2), and glibc's malloc keeping freed tensor buffers.
    dmad::init_cpu();
    let steps = env_usize("UNET_BENCH_STEPS", 20)?;
    let reps = env_usize("UNET_BENCH_REPS", 3)?;
    anyhow::ensure!(steps > 0 && reps > 0, "steps and reps must be positive");
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let dev = match std::env::var("DMAD_DEVICE").as_deref() {
        Ok("cuda") => Device::new_cuda(0)?,
        _ => Device::Cpu,
    };
    let cfg = config();
    anyhow::ensure!(
        cfg.modules == dmad::unet::ModulesConfig::default(),
        "the method's modules must be off for the comparison"
    );

    let varmap = VarMap::new();
    let net = UNet2d::new(
        cfg.clone(),
        seeded_var_builder(&varmap, 0, DType::F32, &dev),
    )?;
    let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    let data = Tensor::randn(0f32, 1.0, (4 * BATCH, 1, SIZE, SIZE), &dev)?;
    let schedule = NoiseScheduleConfig::default().build()?;
    let train_cfg = TrainConfig {
        steps: steps + 1,
        batch_size: BATCH,
        learning_rate: 1e-4,
        lr_warmup_steps: 0,
        max_grad_norm: None,
        ema_decay: None,
        checkpoint_every: None,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(
        train_cfg,
        schedule.clone(),
        &varmap,
        serde_json::to_value(&cfg)?,
    )?;
    eprintln!("dmad: {params} parameters; warm-up step, then {steps} timed steps");
    trainer.train_step(&net, &data, None)?;
    let start = Instant::now();
    let mut last_loss = f64::NAN;
    for i in 0..steps {
        let p = trainer.train_step(&net, &data, None)?;
        last_loss = p.loss;
        eprintln!(
            "dmad: step {:>2}/{steps}  loss {:.4}  {:.2} samples/s",
            i + 1,
            p.loss,
            p.samples_per_sec
        );
    }
    let train_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(last_loss.is_finite(), "training loss is not finite");

    // One sampling step: a frozen (untracked) copy of the trained weights, one DDIM step.
    let frozen = UNet2d::new(
        cfg,
        VarBuilder::from_tensors(frozen_tensors(&varmap), DType::F32, &dev),
    )?;
    let ddim = DdimSampler::new(&schedule, DdimConfig::default())?;
    let x = Tensor::randn(0f32, 1.0, (BATCH, 1, SIZE, SIZE), &dev)?;
    let tv = ddim.timesteps()[0] as f32;
    let t = Tensor::new(vec![tv; BATCH], &dev)?;
    let one = || -> anyhow::Result<Tensor> {
        let mut s = ddim.clone();
        let out = frozen.predict(&x, &t)?;
        Ok(s.step(&out, &t, &x, None)?)
    };
    one()?;
    let start = Instant::now();
    for _ in 0..reps {
        let y = one()?;
        anyhow::ensure!(y.dims() == x.dims(), "sampling step changed the shape");
    }
    let sample_s = start.elapsed().as_secs_f64() / reps as f64;

    println!(
        "dmad train_samples_per_s={:.3} train_s_per_step={:.3} sample_images_per_s={:.3} \
         sample_s_per_step={:.3} steps={steps} reps={reps}",
        (steps * BATCH) as f64 / train_s,
        train_s / steps as f64,
        BATCH as f64 / sample_s,
        sample_s,
    );
    Ok(())
}
