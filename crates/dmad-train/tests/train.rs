//! Training: determinism, exact resumption, learning a toy distribution, bad checkpoints.

use std::sync::Mutex;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder, VarMap};
use dmad_core::{Denoiser, FeatureExtractor, PredictionType};
use dmad_diffusion::{NoiseSchedule, NoiseScheduleConfig};
use dmad_train::{checkpoint, seeded_var_builder, Control, Error, TrainConfig, Trainer};
use serde_json::json;

/// A small MLP denoiser on 2-d points with the timestep as an extra input.
struct Mlp {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    kind: PredictionType,
}

impl Mlp {
    fn new(vb: VarBuilder, kind: PredictionType) -> candle_core::Result<Self> {
        Ok(Self {
            l1: linear(3, 32, vb.pp("l1"))?,
            l2: linear(32, 32, vb.pp("l2"))?,
            l3: linear(32, 2, vb.pp("l3"))?,
            kind,
        })
    }
}

impl Denoiser for Mlp {
    fn predict(&self, x: &Tensor, t: &Tensor) -> dmad_core::Result<Tensor> {
        let t = (t.to_dtype(DType::F32)? / 1000.0)?.unsqueeze(1)?;
        let h = Tensor::cat(&[x, &t], 1)?;
        let h = self.l1.forward(&h)?.silu()?;
        let h = self.l2.forward(&h)?.silu()?;
        Ok(self.l3.forward(&h)?)
    }

    fn prediction_type(&self) -> PredictionType {
        self.kind
    }
}

/// Toy data: points on two clusters.
fn toy_data(n: usize) -> Tensor {
    let v: Vec<f32> = (0..n)
        .flat_map(|i| {
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            let j = (i as f32 * 0.37).sin() * 0.05;
            [s * 0.8 + j, -s * 0.5 - j]
        })
        .collect();
    Tensor::from_vec(v, (n, 2), &Device::Cpu).unwrap()
}

fn schedule() -> NoiseSchedule {
    NoiseSchedule::new(NoiseScheduleConfig::default()).unwrap()
}

fn cfg(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 32,
        learning_rate: 3e-3,
        lr_warmup_steps: 5,
        ema_decay: Some(0.99),
        checkpoint_every: None,
        seed: 7,
        ..Default::default()
    }
}

fn model_cfg() -> serde_json::Value {
    json!({"kind": "mlp", "width": 32})
}

fn weights(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<(String, Vec<f32>)> = varmap
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

fn fresh(kind: PredictionType) -> (VarMap, Mlp) {
    fresh_seeded(kind, 11)
}

fn fresh_seeded(kind: PredictionType, seed: u64) -> (VarMap, Mlp) {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let model = Mlp::new(vb, kind).unwrap();
    (varmap, model)
}

#[test]
fn same_seed_gives_the_same_weights_bit_for_bit() {
    // Seeded initialisation and a seeded run: nothing is shared between the two but the seeds.
    let (va, ma) = fresh(PredictionType::Epsilon);
    let (vb_, mb) = fresh(PredictionType::Epsilon);
    let data = toy_data(128);
    for (vm, m) in [(&va, &ma), (&vb_, &mb)] {
        let mut t = Trainer::new(cfg(15), schedule(), vm, model_cfg()).unwrap();
        t.fit(m, &data, None, None, |_| Control::Continue).unwrap();
    }
    assert_eq!(weights(&va), weights(&vb_));
}

#[test]
fn resumed_run_equals_the_uninterrupted_run() -> anyhow::Result<()> {
    let data = toy_data(128);
    let dir = tempfile::tempdir()?;
    let ckpt = dir.path().join("run");

    // Uninterrupted: 20 steps, with a checkpoint at 10 from which the second run resumes.
    let (va, ma) = fresh(PredictionType::VPrediction);
    let init: Vec<(String, Tensor)> = va
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().copy().unwrap()))
        .collect();
    let mut c = cfg(20);
    c.checkpoint_every = Some(10);
    let mut t = Trainer::new(c.clone(), schedule(), &va, model_cfg())?;
    t.fit(&ma, &data, None, Some(&ckpt), |_| Control::Continue)?;
    let full = weights(&va);
    let full_ema = t.ema_weights().unwrap();

    // Interrupted: the same start, stopped after 10 steps (the callback says stop).
    let interrupted = dir.path().join("interrupted");
    let (vb_, mb) = fresh(PredictionType::VPrediction);
    for (name, w) in &init {
        vb_.data().lock().unwrap()[name].set(w)?;
    }
    let mut t = Trainer::new(c.clone(), schedule(), &vb_, model_cfg())?;
    t.fit(&mb, &data, None, Some(&interrupted), |p| {
        if p.step == 10 {
            Control::Stop
        } else {
            Control::Continue
        }
    })?;
    assert_eq!(t.step(), 10);
    assert_eq!(
        checkpoint::latest(&interrupted)?.unwrap(),
        interrupted.join("step-00000010")
    );

    // Resume into a brand-new model with other initial weights: everything comes from disk.
    let (vc, mc) = fresh_seeded(PredictionType::VPrediction, 12345);
    let mut t = Trainer::resume(c, schedule(), &vc, model_cfg(), &interrupted)?;
    assert_eq!(t.step(), 10);
    t.fit(&mc, &data, None, Some(&interrupted), |_| Control::Continue)?;
    assert_eq!(t.step(), 20);
    assert_eq!(
        weights(&vc),
        full,
        "resumed weights differ from the uninterrupted run"
    );
    let ema = t.ema_weights().unwrap();
    for ((na, a), (nb, b)) in ema.iter().zip(&full_ema) {
        assert_eq!(na, nb);
        assert_eq!(
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?
        );
    }
    Ok(())
}

/// The toy data's two cluster centres (each sample is a centre plus a jitter of at most 0.05).
const CENTRES: [[f64; 2]; 2] = [[0.8, -0.5], [-0.8, 0.5]];

/// Mean loss on a fixed evaluation set of (x0, t, noise) of the model, and of the Bayes-optimal
/// denoiser of the two-point mixture (posterior mean over the centres).
fn eval_losses(model: &Mlp, kind: PredictionType) -> (f64, f64) {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, StandardNormal};
    let sched = schedule();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let n = 2048;
    let x0 = toy_data(n);
    let t: Vec<u32> = (0..n).map(|_| rng.random_range(0..1000)).collect();
    let noise: Vec<f32> = (0..2 * n)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let tt = Tensor::from_vec(t.clone(), n, &Device::Cpu).unwrap();
    let nt = Tensor::from_vec(noise.clone(), (n, 2), &Device::Cpu).unwrap();
    let xt = sched.add_noise(&x0, &nt, &tt).unwrap();
    let target = match kind {
        PredictionType::Epsilon => nt.clone(),
        PredictionType::VPrediction => sched.velocity(&x0, &nt, &tt).unwrap(),
        PredictionType::Sample => x0.clone(),
    };
    let pred = model.predict(&xt, &tt).unwrap();
    let model_loss = (&pred - &target)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let model_loss = model_loss.to_scalar::<f32>().unwrap() as f64;

    let xtv: Vec<f32> = xt.flatten_all().unwrap().to_vec1().unwrap();
    let tv: Vec<f32> = target.flatten_all().unwrap().to_vec1().unwrap();
    let mut opt_loss = 0.0;
    for i in 0..n {
        let a = sched.alpha_bar_at(t[i] as f64).unwrap();
        let (sa, s1) = (a.sqrt(), (1.0 - a).sqrt());
        let x = [xtv[2 * i] as f64, xtv[2 * i + 1] as f64];
        let logw: Vec<f64> = CENTRES
            .iter()
            .map(|c| -((x[0] - sa * c[0]).powi(2) + (x[1] - sa * c[1]).powi(2)) / (2.0 * s1 * s1))
            .collect();
        let m = logw[0].max(logw[1]);
        let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
        let z = w[0] + w[1];
        for d in 0..2 {
            let x0_hat = (w[0] * CENTRES[0][d] + w[1] * CENTRES[1][d]) / z;
            let eps_hat = (x[d] - sa * x0_hat) / s1;
            let out = match kind {
                PredictionType::Epsilon => eps_hat,
                PredictionType::VPrediction => sa * eps_hat - s1 * x0_hat,
                PredictionType::Sample => x0_hat,
            };
            opt_loss += (out - tv[2 * i + d] as f64).powi(2);
        }
    }
    (model_loss, opt_loss / (2 * n) as f64)
}

#[test]
fn training_closes_most_of_the_gap_to_the_bayes_optimal_loss() {
    for kind in [
        PredictionType::Epsilon,
        PredictionType::VPrediction,
        PredictionType::Sample,
    ] {
        let (varmap, model) = fresh(kind);
        let (before, optimal) = eval_losses(&model, kind);
        let data = toy_data(256);
        let mut trainer = Trainer::new(cfg(600), schedule(), &varmap, model_cfg()).unwrap();
        let mut losses = vec![];
        trainer
            .fit(&model, &data, None, None, |p| {
                losses.push(p.loss);
                Control::Continue
            })
            .unwrap();
        let (after, _) = eval_losses(&model, kind);
        eprintln!("{kind}: eval loss {before:.4} -> {after:.4} (Bayes-optimal {optimal:.4})");
        assert!(losses.iter().all(|l| l.is_finite()));
        assert!(optimal < before);
        // At least 80% of the way from the untrained loss to the optimal one.
        assert!(
            after - optimal < 0.2 * (before - optimal),
            "{kind}: eval loss {before:.4} -> {after:.4}, optimal {optimal:.4}"
        );
    }
}

#[test]
fn shared_timesteps_still_close_the_gap_and_are_deterministic() {
    // Four timesteps per batch of 32, each shared by eight samples.
    let shared = |steps| TrainConfig {
        distinct_timesteps: Some(4),
        ..cfg(steps)
    };
    let kind = PredictionType::Epsilon;
    let (varmap, model) = fresh(kind);
    let (before, optimal) = eval_losses(&model, kind);
    let mut trainer = Trainer::new(shared(600), schedule(), &varmap, model_cfg()).unwrap();
    trainer
        .fit(&model, &toy_data(256), None, None, |_| Control::Continue)
        .unwrap();
    let (after, _) = eval_losses(&model, kind);
    assert!(
        after - optimal < 0.2 * (before - optimal),
        "eval loss {before:.4} -> {after:.4}, optimal {optimal:.4}"
    );
    // Same seed, same weights; and a different draw of timesteps than one per sample.
    let runs: Vec<_> = [shared(10), shared(10), cfg(10)]
        .into_iter()
        .map(|c| {
            let (vm, m) = fresh(kind);
            let mut t = Trainer::new(c, schedule(), &vm, model_cfg()).unwrap();
            t.fit(&m, &toy_data(64), None, None, |_| Control::Continue)
                .unwrap();
            weights(&vm)
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0], runs[2]);
}

/// A fixed "feature network": the input and its square, per sample.
struct Squares;
impl FeatureExtractor for Squares {
    fn features(&self, x: &Tensor) -> dmad_core::Result<Vec<Tensor>> {
        Ok(vec![x.clone(), x.sqr()?])
    }
}

#[test]
fn feature_loss_is_added_and_needs_an_extractor() -> anyhow::Result<()> {
    let (varmap, model) = fresh(PredictionType::Epsilon);
    let data = toy_data(64);
    let mut c = cfg(3);
    c.feature_loss_weight = 0.5;
    let mut t = Trainer::new(c.clone(), schedule(), &varmap, model_cfg())?;
    assert!(matches!(
        t.train_step(&model, &data, None),
        Err(Error::InvalidData(_))
    ));
    let p = t.train_step(&model, &data, Some(&Squares))?;
    let lf = p.feature_loss.expect("feature loss reported");
    assert!(lf > 0.0 && p.loss > lf * 0.5, "{p:?}");
    Ok(())
}

#[test]
fn bad_checkpoints_give_clear_errors() -> anyhow::Result<()> {
    let data = toy_data(64);
    let dir = tempfile::tempdir()?;
    let ckpt = dir.path().join("run");
    let (varmap, model) = fresh(PredictionType::Epsilon);
    let mut t = Trainer::new(cfg(2), schedule(), &varmap, model_cfg())?;
    t.fit(&model, &data, None, Some(&ckpt), |_| Control::Continue)?;

    // Another model config.
    let (v2, _) = fresh(PredictionType::Epsilon);
    let err = Trainer::resume(cfg(2), schedule(), &v2, json!({"kind": "unet"}), &ckpt).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Checkpoint { .. }) && msg.contains("state.json"),
        "{msg}"
    );
    assert!(msg.contains("another model config"), "{msg}");

    // Another training config (a different seed cannot continue this run).
    let mut other = cfg(2);
    other.seed = 99;
    let err = Trainer::resume(other, schedule(), &v2, model_cfg(), &ckpt).unwrap_err();
    assert!(err.to_string().contains("another training config"), "{err}");

    // A model with other shapes.
    let v3 = VarMap::new();
    let vb = VarBuilder::from_varmap(&v3, DType::F32, &Device::Cpu);
    let _ = linear(3, 16, vb.pp("l1"))?;
    let _ = linear(16, 32, vb.pp("l2"))?;
    let _ = linear(32, 2, vb.pp("l3"))?;
    let err = Trainer::resume(cfg(2), schedule(), &v3, model_cfg(), &ckpt).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("weights.safetensors") && msg.contains("shape"),
        "{msg}"
    );

    // A truncated weights file.
    let w = checkpoint::latest(&ckpt)?
        .unwrap()
        .join("weights.safetensors");
    let bytes = std::fs::read(&w)?;
    std::fs::write(&w, &bytes[..bytes.len() / 2])?;
    let err = Trainer::resume(cfg(2), schedule(), &v2, model_cfg(), &ckpt).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("weights.safetensors") && msg.contains("truncated"),
        "{msg}"
    );

    // No checkpoint at all.
    let err = Trainer::resume(cfg(2), schedule(), &v2, model_cfg(), dir.path()).unwrap_err();
    assert!(err.to_string().contains("no checkpoint"), "{err}");
    Ok(())
}

#[test]
fn invalid_config_is_rejected() {
    let (varmap, _) = fresh(PredictionType::Epsilon);
    for (field, c) in [
        (
            "batch_size",
            TrainConfig {
                batch_size: 0,
                ..cfg(1)
            },
        ),
        (
            "learning_rate",
            TrainConfig {
                learning_rate: f64::NAN,
                ..cfg(1)
            },
        ),
        (
            "ema_decay",
            TrainConfig {
                ema_decay: Some(1.0),
                ..cfg(1)
            },
        ),
        (
            "distinct_timesteps",
            TrainConfig {
                distinct_timesteps: Some(0),
                ..cfg(1)
            },
        ),
        (
            "max_grad_norm",
            TrainConfig {
                max_grad_norm: Some(0.0),
                ..cfg(1)
            },
        ),
    ] {
        match Trainer::new(c, schedule(), &varmap, model_cfg()) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn early_stopping_ends_with_the_weights_of_the_lowest_held_out_loss() -> anyhow::Result<()> {
    let sched = schedule();
    // Held out: points away from both training clusters, whose loss rises once the model
    // fits the clusters; so the best weights are not the last.
    let held = (toy_data(64) * 3.0)?;
    let v = dmad_train::Validation::new(&held, &sched, 4, 1000, 11)?;
    let (vm, model) = fresh(PredictionType::Epsilon);
    let c = TrainConfig {
        validate_every: Some(20),
        ..cfg(150)
    };
    let mut tr = Trainer::new(c, sched.clone(), &vm, model_cfg())?;
    let report = tr.fit_validated(&model, &toy_data(256), None, None, &v, |_| {
        Control::Continue
    })?;
    let steps: Vec<usize> = report.history.iter().map(|h| h.0).collect();
    assert_eq!(steps, [20, 40, 60, 80, 100, 120, 140, 150]);
    let (best_step, best_loss) =
        report.history.iter().fold(
            (0, f64::INFINITY),
            |b, &(s, l)| if l < b.1 { (s, l) } else { b },
        );
    assert_eq!((report.best_step, report.best_loss), (best_step, best_loss));
    assert_ne!(report.best_step, 150, "history {:?}", report.history);
    // The run's averaged weights are now the best step's: the same loss, bit for bit.
    tr.apply_ema()?;
    assert_eq!(v.loss(&model, &sched)?, report.best_loss);
    // The measurement is deterministic and the held-out noise fixed.
    assert_eq!(v.loss(&model, &sched)?, v.loss(&model, &sched)?);
    // Early stopping needs an interval, and zero is none.
    let mut plain = Trainer::new(cfg(5), sched.clone(), &vm, model_cfg())?;
    let err = plain
        .fit_validated(&model, &toy_data(8), None, None, &v, |_| Control::Continue)
        .unwrap_err();
    assert!(err.to_string().contains("validate_every"), "{err}");
    let zero = TrainConfig {
        validate_every: Some(0),
        ..cfg(5)
    };
    let err = Trainer::new(zero, sched.clone(), &vm, model_cfg()).unwrap_err();
    assert!(err.to_string().contains("validate_every"), "{err}");
    assert!(dmad_train::Validation::new(&held.narrow(0, 0, 0)?, &sched, 4, 10, 0).is_err());
    Ok(())
}

/// A denoiser that records the timesteps it is asked about.
struct Recording<'a> {
    inner: &'a Mlp,
    seen: Mutex<Vec<u32>>,
}

impl Denoiser for Recording<'_> {
    fn predict(&self, x: &Tensor, t: &Tensor) -> dmad_core::Result<Tensor> {
        self.seen.lock().unwrap().extend(t.to_vec1::<u32>()?);
        self.inner.predict(x, t)
    }

    fn prediction_type(&self) -> PredictionType {
        self.inner.prediction_type()
    }
}

#[test]
fn a_timestep_range_confines_training_and_validation_to_it() -> anyhow::Result<()> {
    let sched = schedule();
    for distinct in [None, Some(4)] {
        let (vm, model) = fresh(PredictionType::Epsilon);
        let rec = Recording {
            inner: &model,
            seen: Mutex::new(Vec::new()),
        };
        let c = TrainConfig {
            timestep_range: Some([100, 300]),
            distinct_timesteps: distinct,
            ..cfg(30)
        };
        let mut tr = Trainer::new(c, sched.clone(), &vm, model_cfg())?;
        assert_eq!(tr.timestep_range(), 100..300);
        tr.fit(&rec, &toy_data(64), None, None, |_| Control::Continue)?;
        let seen = rec.seen.into_inner().unwrap();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|t| (100..300).contains(t)), "{seen:?}");
        // Drawn over the whole range, not a corner of it.
        let (lo, hi) = (seen.iter().min().unwrap(), seen.iter().max().unwrap());
        assert!(*lo < 130 && *hi >= 270, "{lo}..{hi}");
    }
    // Without a range: the whole schedule, as before.
    let (vm, _) = fresh(PredictionType::Epsilon);
    assert_eq!(
        Trainer::new(cfg(1), sched.clone(), &vm, model_cfg())?.timestep_range(),
        0..1000
    );
    // Empty ranges and ranges past the schedule are named.
    for range in [[5, 5], [7, 3], [0, 1001]] {
        let c = TrainConfig {
            timestep_range: Some(range),
            ..cfg(1)
        };
        match Trainer::new(c, sched.clone(), &vm, model_cfg()) {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "timestep_range"),
            other => panic!("{range:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    // Validation over the whole schedule is Validation::new's; a range moves its levels.
    let (_, model) = fresh(PredictionType::Epsilon);
    let held = toy_data(32);
    let whole = dmad_train::Validation::new(&held, &sched, 4, 100, 3)?;
    let same = dmad_train::Validation::new_in(&held, &sched, 0..1000, 4, 100, 3)?;
    assert_eq!(whole.loss(&model, &sched)?, same.loss(&model, &sched)?);
    let rec = Recording {
        inner: &model,
        seen: Mutex::new(Vec::new()),
    };
    dmad_train::Validation::new_in(&held, &sched, 0..500, 4, 100, 3)?.loss(&rec, &sched)?;
    let mut seen = rec.seen.into_inner().unwrap();
    seen.dedup();
    assert_eq!(seen, [62, 187, 312, 437]);
    for bad in [0..0, 900..1001] {
        assert!(dmad_train::Validation::new_in(&held, &sched, bad, 4, 100, 3).is_err());
    }
    Ok(())
}
