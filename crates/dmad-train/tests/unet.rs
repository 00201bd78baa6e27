//! A tiny UNet2d with all four modules of the method learns a toy distribution, and its
//! resumed run equals the uninterrupted one bit for bit.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use dmad_diffusion::{NoiseSchedule, NoiseScheduleConfig};
use dmad_train::{seeded_var_builder, Control, TrainConfig, Trainer};
use dmad_unet::{ModulesConfig, UNet2d, UNetConfig};

fn unet_cfg() -> UNetConfig {
    UNetConfig {
        modules: ModulesConfig {
            attention_heads: 2,
            adapter_channels: 16,
            ..ModulesConfig::all()
        },
        block_out_channels: vec![16, 32],
        norm_num_groups: Some(4),
        ..UNetConfig::tiny(1)
    }
}

/// Toy images 8x8: a horizontal or a vertical bar, with small jitter.
fn toy(n: usize) -> Tensor {
    let mut v = Vec::with_capacity(n * 64);
    for i in 0..n {
        let jitter = ((i as f32) * 0.618).fract() * 0.1;
        for r in 0..8 {
            for c in 0..8 {
                let on = if i % 2 == 0 {
                    r == 3 || r == 4
                } else {
                    c == 3 || c == 4
                };
                v.push(if on { 0.8 + jitter } else { -0.8 + jitter });
            }
        }
    }
    Tensor::from_vec(v, (n, 1, 8, 8), &Device::Cpu).unwrap()
}

fn build(seed: u64) -> (VarMap, UNet2d) {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let net = UNet2d::new(unet_cfg(), vb).unwrap();
    (varmap, net)
}

fn cfg(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 16,
        learning_rate: 2e-3,
        lr_warmup_steps: 10,
        checkpoint_every: None,
        seed: 3,
        ..TrainConfig::default()
    }
}

fn model_json() -> serde_json::Value {
    serde_json::to_value(unet_cfg()).unwrap()
}

fn schedule() -> NoiseSchedule {
    NoiseSchedule::new(NoiseScheduleConfig::default()).unwrap()
}

fn weights(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn tiny_unet_with_all_modules_learns_a_toy_distribution() {
    let (varmap, net) = build(5);
    let data = toy(64);
    let mut t = Trainer::new(cfg(250), schedule(), &varmap, model_json()).unwrap();
    let mut losses = Vec::new();
    t.fit(&net, &data, None, None, |p| {
        losses.push(p.loss);
        Control::Continue
    })
    .unwrap();
    let first = losses[..20].iter().sum::<f64>() / 20.0;
    let last = losses[losses.len() - 50..].iter().sum::<f64>() / 50.0;
    eprintln!("mean loss: first 20 steps {first:.4}, last 50 steps {last:.4}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < 0.5 * first, "loss {first:.4} -> {last:.4}");
}

#[test]
fn tiny_unet_resumed_run_equals_the_uninterrupted_run() -> anyhow::Result<()> {
    let data = toy(32);
    let dir = tempfile::tempdir()?;
    let mut c = cfg(12);
    c.checkpoint_every = Some(6);

    let (va, na) = build(5);
    let mut t = Trainer::new(c.clone(), schedule(), &va, model_json())?;
    t.fit(&na, &data, None, None, |_| Control::Continue)?;

    let ck = dir.path().join("run");
    let (vb, nb) = build(5);
    let mut t = Trainer::new(c.clone(), schedule(), &vb, model_json())?;
    t.fit(&nb, &data, None, Some(&ck), |p| {
        if p.step == 6 {
            Control::Stop
        } else {
            Control::Continue
        }
    })?;
    let (vc, nc) = build(99); // other initial weights: everything must come from the checkpoint
    let mut t = Trainer::resume(c, schedule(), &vc, model_json(), &ck)?;
    t.fit(&nc, &data, None, Some(&ck), |_| Control::Continue)?;
    assert_eq!(weights(&vc), weights(&va));
    Ok(())
}
