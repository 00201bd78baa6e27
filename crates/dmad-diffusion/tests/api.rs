//! Bad input gives the right error; conversions, state and custom plans behave.

mod common;

use candle_core::{DType, Device, Tensor};
use dmad_diffusion::{
    partial_timesteps, reconstruct, reconstruct_trajectory, sample, sample_trajectory, DdimConfig,
    DdimSampler, DdpmConfig, DdpmSampler, DpmSolverConfig, DpmSolverSampler, Error, EulerConfig,
    EulerSampler, GaussianDenoiser, NoiseSchedule, NoiseScheduleConfig, NoiseSource,
    PredictionType, Sampler, SeededNoise, Start, TimestepSpacing,
};

fn schedule() -> NoiseSchedule {
    NoiseScheduleConfig::default().build().unwrap()
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    SeededNoise::new(seed).draw(shape, &Device::Cpu).unwrap()
}

fn t(values: &[u32]) -> Tensor {
    Tensor::new(values, &Device::Cpu).unwrap()
}

#[test]
fn step_rejects_bad_arguments() {
    let s = schedule();
    let mut ddim = DdimSampler::new(&s, DdimConfig::default()).unwrap();
    let x = randn(&[2, 3], 0);
    // A timestep that is not in the plan (leading 50: multiples of 20).
    assert!(matches!(
        ddim.step(&x, &t(&[980, 981]), &x, None),
        Err(Error::InvalidTimestep { timestep, .. }) if timestep == 981.0
    ));
    // One timestep for two samples.
    assert!(matches!(
        ddim.step(&x, &t(&[980]), &x, None),
        Err(Error::ShapeMismatch { .. })
    ));
    // Model output of another shape.
    assert!(matches!(
        ddim.step(&randn(&[2, 4], 1), &t(&[980, 960]), &x, None),
        Err(Error::ShapeMismatch { .. })
    ));
    // DDPM needs noise above t = 0, not at t = 0.
    let mut ddpm = DdpmSampler::new(&s, DdpmConfig::default()).unwrap();
    assert!(matches!(
        ddpm.step(&x, &t(&[980, 980]), &x, None),
        Err(Error::MissingNoise { .. })
    ));
    assert!(ddpm.step(&x, &t(&[0, 0]), &x, None).is_ok());
    // Noise of the wrong shape.
    assert!(matches!(
        ddpm.step(&x, &t(&[980, 980]), &x, Some(&randn(&[3, 3], 2))),
        Err(Error::ShapeMismatch { .. })
    ));
    // Forward process outside the training range.
    assert!(matches!(
        s.add_noise(&x, &x, &t(&[1000, 3])),
        Err(Error::InvalidTimestep { .. })
    ));
    // Euler's sigma lookups need plan timesteps too.
    let euler = EulerSampler::new(&s, EulerConfig::default()).unwrap();
    assert!(matches!(
        euler.scale_model_input(&x, &t(&[500, 500])),
        Err(Error::InvalidTimestep { .. })
    ));
}

#[test]
fn configs_are_validated_at_build() {
    let s = schedule();
    let field = |r: Result<(), Error>| match r {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let ddim = |c: DdimConfig| DdimSampler::new(&s, c).map(|_| ());
    assert_eq!(
        field(ddim(DdimConfig {
            eta: -0.1,
            ..Default::default()
        })),
        "eta"
    );
    assert_eq!(
        field(ddim(DdimConfig {
            clip_sample: true,
            clip_sample_range: 0.0,
            ..Default::default()
        })),
        "clip_sample_range"
    );
    assert_eq!(
        field(ddim(DdimConfig {
            timesteps: Some(vec![10, 20]),
            ..Default::default()
        })),
        "timesteps"
    );
    assert_eq!(
        field(ddim(DdimConfig {
            num_inference_steps: 0,
            ..Default::default()
        })),
        "num_inference_steps"
    );
    // diffusers' DPM-Solver `leading` with n + 1 > T repeats timestep 0.
    assert_eq!(
        field(
            DpmSolverSampler::new(
                &s,
                DpmSolverConfig {
                    num_inference_steps: 1000,
                    timestep_spacing: TimestepSpacing::Leading,
                    ..Default::default()
                },
            )
            .map(|_| ())
        ),
        "timesteps"
    );
    assert_eq!(
        field(GaussianDenoiser::new(&s, 0.0, 0.0, PredictionType::Epsilon).map(|_| ())),
        "std"
    );
}

#[test]
fn loops_reject_mismatched_prediction_types_and_empty_starts() {
    let s = schedule();
    let model = GaussianDenoiser::new(&s, 0.0, 1.0, PredictionType::VPrediction).unwrap();
    let mut ddim = DdimSampler::new(&s, DdimConfig::default()).unwrap();
    let x = randn(&[2, 3], 0);
    let mut noise = SeededNoise::new(0);
    assert!(matches!(
        sample(&model, &mut ddim, &x, &mut noise),
        Err(Error::InvalidConfig {
            field: "prediction_type",
            ..
        })
    ));
    let model = GaussianDenoiser::new(&s, 0.0, 1.0, PredictionType::Epsilon).unwrap();
    assert!(matches!(
        reconstruct(&model, &mut ddim, &x, Start::Strength(0.0), &mut noise),
        Err(Error::InvalidConfig {
            field: "strength",
            ..
        })
    ));
}

/// `convert_prediction` agrees with the forward process: for `x_t = add_noise(x0, eps, t)`,
/// epsilon `eps` converts to `x0` and to `velocity(x0, eps, t)`, and back.
#[test]
fn prediction_conversions_agree_with_forward_process() {
    let s = schedule();
    let x0 = randn(&[4, 2, 3], 1);
    let eps = randn(&[4, 2, 3], 2);
    let ts = t(&[0, 10, 500, 999]);
    let x_t = s.add_noise(&x0, &eps, &ts).unwrap();
    let v = s.velocity(&x0, &eps, &ts).unwrap();
    let (e, vp, x) = (
        PredictionType::Epsilon,
        PredictionType::VPrediction,
        PredictionType::Sample,
    );
    let check = |out: &Tensor, from, to, want: &Tensor, tol: f64| {
        let got = s.convert_prediction(out, from, to, &x_t, &ts).unwrap();
        common::assert_close(
            &common::values(&got),
            &common::values(want),
            tol,
            &format!("{from} -> {to}"),
        );
    };
    // From epsilon to x0 divides by sqrt(alpha_bar) (0.0064 at t = 999): f32 error grows.
    check(&eps, e, x, &x0, 2e-4);
    check(&eps, e, vp, &v, 1e-5);
    check(&v, vp, e, &eps, 1e-5);
    check(&v, vp, x, &x0, 1e-5);
    check(&x0, x, vp, &v, 1e-5);
    check(&x0, x, e, &eps, 1e-3);
}

/// The DPM-Solver++ state is explicit: empty after build and reset, holding the data
/// prediction and plan indices after a step; a repeated step falls back to first order.
#[test]
fn dpm_solver_state_is_explicit_and_resettable() {
    let s = schedule();
    let mut dpm = DpmSolverSampler::new(&s, DpmSolverConfig::default()).unwrap();
    assert!(dpm.state().is_empty());
    let x = randn(&[2, 4], 0);
    let out = randn(&[2, 4], 1);
    let ts = dpm.timesteps().to_vec();
    let t0 = Tensor::new(&[ts[0] as f32, ts[0] as f32], &Device::Cpu).unwrap();
    let t1 = Tensor::new(&[ts[1] as f32, ts[1] as f32], &Device::Cpu).unwrap();
    dpm.step(&out, &t0, &x, None).unwrap();
    assert_eq!(dpm.state().previous().unwrap().1, &[0, 0]);
    let second = dpm.step(&out, &t1, &x, None).unwrap();
    dpm.reset();
    assert!(dpm.state().is_empty());
    let first = dpm.step(&out, &t1, &x, None).unwrap();
    // Second and first order differ (the state was used), and are finite.
    let (a, b) = (common::values(&second), common::values(&first));
    assert!(common::max_err(&a, &b) > 1e-6);
    assert!(a.iter().chain(&b).all(|v| v.is_finite()));
}

/// Partial diffusion from a chosen timestep in `k` steps through custom timesteps, with every
/// sampler; trajectories hold the start and every step.
#[test]
fn partial_diffusion_with_custom_timesteps() {
    let s = schedule();
    let plan = partial_timesteps(300, 7).unwrap();
    assert_eq!(plan, vec![300, 250, 200, 150, 100, 50, 0]);
    let x0 = randn(&[3, 8], 5).affine(0.4, 0.5).unwrap();
    let model = GaussianDenoiser::new(&s, 0.5, 0.4, PredictionType::Epsilon).unwrap();
    let samplers: Vec<Box<dyn Sampler>> = vec![
        Box::new(
            DdpmSampler::new(
                &s,
                DdpmConfig {
                    timesteps: Some(plan.clone()),
                    ..Default::default()
                },
            )
            .unwrap(),
        ),
        Box::new(
            DdimSampler::new(
                &s,
                DdimConfig {
                    timesteps: Some(plan.clone()),
                    ..Default::default()
                },
            )
            .unwrap(),
        ),
        Box::new(
            DpmSolverSampler::new(
                &s,
                DpmSolverConfig {
                    timesteps: Some(plan.clone()),
                    ..Default::default()
                },
            )
            .unwrap(),
        ),
        Box::new(
            EulerSampler::new(
                &s,
                EulerConfig {
                    timesteps: Some(plan.clone()),
                    ..Default::default()
                },
            )
            .unwrap(),
        ),
    ];
    for mut sampler in samplers {
        let mut noise = SeededNoise::new(1);
        let traj =
            reconstruct_trajectory(&model, &mut sampler, &x0, Start::Index(0), &mut noise).unwrap();
        assert_eq!(traj.samples.len(), 8);
        assert_eq!(traj.timesteps.len(), 7);
        let rec = traj.result();
        assert_eq!(rec.dims(), x0.dims());
        assert!(common::values(rec).iter().all(|v| v.is_finite()));
        // Same seed, same result: the loops are reproducible.
        let again = reconstruct(
            &model,
            &mut sampler,
            &x0,
            Start::Index(0),
            &mut SeededNoise::new(1),
        )
        .unwrap();
        assert_eq!(common::values(rec), common::values(&again));
        // A start below t = 300 runs fewer steps.
        let short = reconstruct_trajectory(
            &model,
            &mut sampler,
            &x0,
            Start::Timestep(120.0),
            &mut noise,
        )
        .unwrap();
        assert_eq!(short.timesteps, vec![100.0, 50.0, 0.0]);
    }
    let mut ddim = DdimSampler::new(&s, DdimConfig::default()).unwrap();
    let x_t = randn(&[2, 8], 3);
    let traj = sample_trajectory(&model, &mut ddim, &x_t, &mut SeededNoise::new(0)).unwrap();
    assert_eq!(traj.samples.len(), 51);
    assert_eq!(
        traj.samples[0].to_dtype(DType::F32).unwrap().dims(),
        &[2, 8]
    );
}

#[cfg(feature = "serde")]
#[test]
fn configs_read_diffusers_json() {
    let cfg: NoiseScheduleConfig = serde_json::from_str(
        r#"{"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
            "beta_schedule": "scaled_linear", "rescale_betas_zero_snr": false}"#,
    )
    .unwrap();
    assert_eq!(
        cfg.beta_schedule,
        dmad_diffusion::BetaSchedule::ScaledLinear
    );
    let ddim: DdimConfig = serde_json::from_str(
        r#"{"prediction_type": "v_prediction", "timestep_spacing": "trailing", "eta": 0.5}"#,
    )
    .unwrap();
    assert_eq!(ddim.prediction_type, PredictionType::VPrediction);
    assert_eq!(ddim.timestep_spacing, TimestepSpacing::Trailing);
    assert_eq!(ddim.num_inference_steps, 50);
}
