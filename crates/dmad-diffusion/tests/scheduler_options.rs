//! Every diffusers scheduler option that changes the numbers, against diffusers 0.42.1
//! (`testdata/diffusers/scheduler_options.json`, made by
//! `testdata/diffusers/gen_scheduler_options.py`), and diffusers' `scheduler_config.json`
//! read, written back and refused where it cannot be honoured.
//!
//! Each case's sampler is built from the `scheduler_config.json` diffusers wrote for it, so the
//! trajectories test the config reader too.

mod common;

use candle_core::{Device, Tensor};
use common::{load, max_err, tensor, values};
use dmad_diffusion::{
    AnySampler, DdimConfig, DdpmConfig, DpmSolverAlgorithm, DpmSolverConfig, DpmSolverSampler,
    DpmSolverType, Error, EulerConfig, FinalSigmas, NoiseScheduleConfig, PredictionType, Sampler,
    SamplerConfig, SchedulerConfig, SigmaInterpolation, TimestepSpacing, VarianceType,
};
use serde_json::Value;

/// `|a - b| <= TOL max(1, |b|)` for every value of every step.
const TOL: f64 = 1e-5;

fn config_of(case: &Value) -> SchedulerConfig {
    let text = case["scheduler_config"].as_str().unwrap();
    let mut config = SchedulerConfig::from_diffusers_json(text)
        .unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
    config
        .sampler
        .set_num_inference_steps(case["num_inference_steps"].as_u64().unwrap() as usize);
    let args = &case["step_args"];
    let f = |k: &str| args.get(k).and_then(Value::as_f64);
    match &mut config.sampler {
        SamplerConfig::Ddim(c) => {
            c.eta = f("eta").unwrap_or(0.0);
            c.use_clipped_model_output = args
                .get("use_clipped_model_output")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        }
        SamplerConfig::Euler(c) => {
            c.s_churn = f("s_churn").unwrap_or(0.0);
            c.s_tmin = f("s_tmin").unwrap_or(0.0);
            c.s_tmax = f("s_tmax");
            c.s_noise = f("s_noise").unwrap_or(1.0);
        }
        _ => assert!(args.as_object().unwrap().is_empty()),
    }
    config
}

fn t_tensor(t: f64, batch: usize) -> Tensor {
    Tensor::new(vec![t as f32; batch], &Device::Cpu).unwrap()
}

/// Runs the fixture's steps through `sampler`, each from the fixture's sample with its model
/// output and noise; returns the largest error of the model inputs and of the results.
fn replay(sampler: &mut AnySampler, case: &Value) -> (f64, f64, Vec<f64>) {
    sampler.reset();
    let x_t = tensor(&case["x_T"]);
    let mut x = (x_t * case["init_noise_sigma"].as_f64().unwrap()).unwrap();
    let batch = x.dims()[0];
    let (mut worst_in, mut worst) = (0.0f64, 0.0f64);
    let mut per_step = Vec::new();
    for st in case["steps"].as_array().unwrap() {
        let t = t_tensor(st["t"].as_f64().unwrap(), batch);
        let x_in = sampler.scale_model_input(&x, &t).unwrap();
        worst_in = worst_in.max(max_err(
            &values(&x_in),
            &values(&tensor(&st["model_input"])),
        ));
        let out = tensor(&st["model_output"]);
        let noise = (!st["noise"].is_null()).then(|| tensor(&st["noise"]));
        let prev = sampler.step(&out, &t, &x, noise.as_ref()).unwrap();
        let e = max_err(&values(&prev), &values(&tensor(&st["prev_sample"])));
        per_step.push(e);
        worst = worst.max(e);
        x = tensor(&st["prev_sample"]);
    }
    (worst_in, worst, per_step)
}

#[test]
fn options_match_diffusers_step_by_step() {
    let f = load("scheduler_options.json");
    assert_eq!(f["diffusers_version"], "0.42.1");
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut worst_all = 0.0f64;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let config = config_of(case);
        assert_eq!(
            config.sampler.class_name(),
            case["class_name"].as_str().unwrap()
        );
        let (_, mut sampler) = config
            .build()
            .unwrap_or_else(|e| panic!("{name}: build: {e}"));
        let want_ts = common::floats(&case["timesteps"]);
        let ts_err = max_err(sampler.timesteps(), &want_ts);
        assert!(
            sampler.timesteps().len() == want_ts.len() && ts_err <= TOL,
            "{name}: timesteps {:?} vs {want_ts:?}",
            sampler.timesteps()
        );
        let sigmas = match &sampler {
            AnySampler::DpmSolver(s) => Some(s.sigmas().to_vec()),
            AnySampler::Euler(s) => Some(s.sigmas().to_vec()),
            _ => None,
        };
        if let Some(s) = sigmas {
            let want = common::floats(&case["sigmas"]);
            assert_eq!(s.len(), want.len(), "{name}: sigmas {s:?} vs {want:?}");
            let e = common::max_rel_err(&s, &want);
            assert!(e <= TOL, "{name}: sigmas relative error {e:e}");
        }
        let sigma = case["init_noise_sigma"].as_f64().unwrap();
        let e = (sampler.init_noise_sigma() - sigma).abs() / sigma;
        assert!(
            e <= TOL,
            "{name}: init_noise_sigma {}",
            sampler.init_noise_sigma()
        );
        let (e_in, e, per_step) = replay(&mut sampler, case);
        println!("{name}: steps {e:.2e}, model inputs {e_in:.2e}");
        if std::env::var("DEBUG_STEPS").is_ok() {
            println!("  {per_step:?}");
        }
        worst_all = worst_all.max(e).max(e_in);
        if e > TOL || e_in > TOL {
            let steps: Vec<String> = per_step.iter().map(|e| format!("{e:.1e}")).collect();
            failures.push(format!("{name}: steps {steps:?}, inputs {e_in:e}"));
        }
    }
    println!("worst error over {} cases: {worst_all:e}", cases.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Each case differs from diffusers' defaults for its class (same schedule and prediction
/// type): in its plan, or in at least one step. So every option really changes the numbers.
/// (Thresholding with `sample_max_value = 1` is diffusers' default clipping: those cases are
/// compared with no clipping.)
#[test]
fn every_case_changes_the_numbers() {
    let f = load("scheduler_options.json");
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let config = config_of(case);
        let mut base = SchedulerConfig::from_diffusers_json(&format!(
            r#"{{"_class_name": "{}"}}"#,
            config.sampler.class_name()
        ))
        .unwrap();
        base.schedule.beta_schedule = config.schedule.beta_schedule;
        base.schedule.beta_start = config.schedule.beta_start;
        base.schedule.beta_end = config.schedule.beta_end;
        base.sampler
            .set_num_inference_steps(config.sampler.num_inference_steps());
        match (&mut base.sampler, &config.sampler) {
            (SamplerConfig::Ddpm(b), SamplerConfig::Ddpm(c)) => {
                b.prediction_type = c.prediction_type;
                b.clip_sample = !c.thresholding;
                // The model output carries a variance: compare the two learned types.
                b.variance_type = match c.variance_type {
                    VarianceType::Learned => VarianceType::LearnedRange,
                    VarianceType::LearnedRange => VarianceType::Learned,
                    _ => b.variance_type,
                };
            }
            (SamplerConfig::Ddim(b), SamplerConfig::Ddim(c)) => {
                b.prediction_type = c.prediction_type;
                b.clip_sample = !c.thresholding;
            }
            (SamplerConfig::DpmSolver(b), SamplerConfig::DpmSolver(c)) => {
                b.prediction_type = c.prediction_type;
                if c.variance_type.is_some() {
                    // A learned variance only drops channels: nothing to compare.
                    continue;
                }
            }
            (SamplerConfig::Euler(b), SamplerConfig::Euler(c)) => {
                b.prediction_type = c.prediction_type
            }
            _ => unreachable!(),
        }
        let (_, mut base) = base.build().unwrap();
        let (_, mut opt) = config.build().unwrap();
        if base.timesteps() != opt.timesteps() || base.init_noise_sigma() != opt.init_noise_sigma()
        {
            continue;
        }
        let (_, e, _) = replay(&mut base, case);
        let (_, e_opt, _) = replay(&mut opt, case);
        assert!(e_opt <= TOL, "{name}");
        assert!(
            e > 1e-4,
            "{name}: diffusers' defaults give the same steps (error {e:e})"
        );
    }
}

/// The JSON of a diffusers config (Python's `-Infinity` quoted), for comparing values.
fn parse_python_json(text: &str) -> serde_json::Map<String, Value> {
    let quoted = text.replace("-Infinity", "\"-Infinity\"");
    match serde_json::from_str(&quoted).unwrap() {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        _ => a == b,
    }
}

/// Every config diffusers wrote reads and writes back to the same fields and values, and the
/// written text reads back to the same config.
#[test]
fn diffusers_configs_round_trip() {
    let f = load("scheduler_options.json");
    let mut classes = std::collections::BTreeSet::new();
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let text = case["scheduler_config"].as_str().unwrap();
        let config = SchedulerConfig::from_diffusers_json(text).unwrap();
        let written = config.to_diffusers_json();
        let (want, got) = (parse_python_json(text), parse_python_json(&written));
        let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&got), keys(&want), "{name}: fields");
        for (k, v) in &want {
            assert!(same_json(&got[k], v), "{name}: {k}: {} vs {v}", got[k]);
        }
        assert_eq!(
            SchedulerConfig::from_diffusers_json(&written).unwrap(),
            config,
            "{name}"
        );
        classes.insert(config.sampler.class_name());
    }
    assert_eq!(classes.len(), 4);
}

/// Configs made in Rust with every option away from its default write and read back equal.
#[test]
fn rust_configs_round_trip() {
    let schedule = NoiseScheduleConfig {
        num_train_timesteps: 500,
        beta_start: 0.00085,
        beta_end: 0.012,
        beta_schedule: dmad_diffusion::BetaSchedule::ScaledLinear,
        rescale_betas_zero_snr: true,
    };
    let samplers = [
        SamplerConfig::Ddpm(DdpmConfig {
            timestep_spacing: TimestepSpacing::Trailing,
            steps_offset: 1,
            prediction_type: PredictionType::VPrediction,
            clip_sample: false,
            clip_sample_range: 2.5,
            thresholding: true,
            dynamic_thresholding_ratio: 0.9,
            sample_max_value: 3.0,
            variance_type: VarianceType::LearnedRange,
            ..Default::default()
        }),
        SamplerConfig::Ddim(DdimConfig {
            timestep_spacing: TimestepSpacing::Linspace,
            prediction_type: PredictionType::Sample,
            clip_sample: true,
            clip_sample_range: 0.5,
            set_alpha_to_one: false,
            thresholding: true,
            sample_max_value: 2.0,
            ..Default::default()
        }),
        SamplerConfig::DpmSolver(DpmSolverConfig {
            timestep_spacing: TimestepSpacing::Leading,
            steps_offset: 1,
            solver_order: 3,
            algorithm_type: DpmSolverAlgorithm::SdeDpmSolverPlusPlus,
            solver_type: DpmSolverType::Heun,
            lower_order_final: false,
            euler_at_final: true,
            use_lu_lambdas: true,
            final_sigmas_type: FinalSigmas::SigmaMin,
            lambda_min_clipped: Some(-5.1),
            variance_type: Some(VarianceType::Learned),
            thresholding: true,
            dynamic_thresholding_ratio: 0.99,
            sample_max_value: 1.5,
            ..Default::default()
        }),
        SamplerConfig::Euler(EulerConfig {
            timestep_spacing: TimestepSpacing::Trailing,
            prediction_type: PredictionType::VPrediction,
            interpolation_type: SigmaInterpolation::LogLinear,
            use_exponential_sigmas: true,
            sigma_min: Some(0.02),
            sigma_max: Some(80.0),
            final_sigmas_type: FinalSigmas::SigmaMin,
            ..Default::default()
        }),
    ];
    for sampler in samplers {
        let mut config = SchedulerConfig {
            schedule: schedule.clone(),
            trained_betas: None,
            sampler,
        };
        // The number of steps is not part of diffusers' config: it reads back as the default.
        let text = config.to_diffusers_json();
        let back = SchedulerConfig::from_diffusers_json(&text).unwrap();
        assert_eq!(back, config, "{text}");
        config.trained_betas = Some((0..500).map(|i| 1e-4 + i as f64 * 1e-5).collect());
        let back = SchedulerConfig::from_diffusers_json(&config.to_diffusers_json()).unwrap();
        assert_eq!(back, config);
    }
}

fn read_err(json: &str) -> Error {
    SchedulerConfig::from_diffusers_json(json).expect_err(json)
}

#[test]
fn unknown_fields_and_classes_are_named() {
    match read_err(
        r#"{"_class_name": "DDIMScheduler", "beta_start": 0.001, "skip_prk_steps": true}"#,
    ) {
        Error::UnknownField { class, field } => {
            assert_eq!(class, "DDIMScheduler");
            assert_eq!(field, "skip_prk_steps");
        }
        other => panic!("{other:?}"),
    }
    // A field of another class is unknown too.
    let e = read_err(r#"{"_class_name": "EulerDiscreteScheduler", "solver_order": 2}"#);
    assert!(e.to_string().contains("`solver_order`"), "{e}");
    match read_err(r#"{"_class_name": "PNDMScheduler", "skip_prk_steps": true}"#) {
        Error::UnknownClass { class_name } => assert_eq!(class_name, "PNDMScheduler"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read_err(r#"{"beta_start": 0.001}"#),
        Error::UnknownClass { .. }
    ));
    // What diffusers writes without effect on the numbers is accepted.
    SchedulerConfig::from_diffusers_json(
        r#"{"_class_name": "DDPMScheduler", "_diffusers_version": "0.30.0",
            "trained_betas": null, "_use_default_values": ["clip_sample"], "clip_sample": false}"#,
    )
    .unwrap();
}

#[test]
fn options_that_cannot_be_honoured_are_named() {
    let cases = [
        (
            r#"{"_class_name": "DPMSolverMultistepScheduler", "use_beta_sigmas": true}"#,
            "use_beta_sigmas",
        ),
        (
            r#"{"_class_name": "EulerDiscreteScheduler", "use_beta_sigmas": true}"#,
            "use_beta_sigmas",
        ),
        (
            r#"{"_class_name": "DPMSolverMultistepScheduler", "use_flow_sigmas": true}"#,
            "use_flow_sigmas",
        ),
        (
            r#"{"_class_name": "DPMSolverMultistepScheduler", "flow_shift": 3.0}"#,
            "flow_shift",
        ),
        (
            r#"{"_class_name": "DPMSolverMultistepScheduler", "use_dynamic_shifting": true}"#,
            "use_dynamic_shifting",
        ),
        (
            r#"{"_class_name": "DPMSolverMultistepScheduler", "prediction_type": "flow_prediction"}"#,
            "prediction_type",
        ),
        (
            r#"{"_class_name": "EulerDiscreteScheduler", "timestep_type": "continuous"}"#,
            "timestep_type",
        ),
    ];
    for (json, want) in cases {
        match read_err(json) {
            Error::Unsupported { field, .. } => assert_eq!(field, want, "{json}"),
            other => panic!("{json}: {other:?}"),
        }
    }
    let invalid = [
        (
            r#"{"_class_name": "DDIMScheduler", "clip_sample": "yes"}"#,
            "clip_sample",
        ),
        (
            r#"{"_class_name": "DDIMScheduler", "steps_offset": -1}"#,
            "steps_offset",
        ),
        (
            r#"{"_class_name": "DDIMScheduler", "timestep_spacing": "even"}"#,
            "timestep_spacing",
        ),
        (
            r#"{"_class_name": "DDPMScheduler", "beta_schedule": "cosine"}"#,
            "beta_schedule",
        ),
        (
            r#"{"_class_name": "DDPMScheduler", "variance_type": "large"}"#,
            "variance_type",
        ),
        (
            r#"{"_class_name": "DDPMScheduler", "prediction_type": "x0"}"#,
            "prediction_type",
        ),
        (
            r#"{"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "deis"}"#,
            "algorithm_type",
        ),
        (
            r#"{"_class_name": "DPMSolverMultistepScheduler", "trained_betas": "none"}"#,
            "trained_betas",
        ),
        (
            r#"{"_class_name": "EulerDiscreteScheduler", "interpolation_type": "cubic"}"#,
            "interpolation_type",
        ),
    ];
    for (json, want) in invalid {
        match read_err(json) {
            Error::InvalidConfig { field, .. } => assert_eq!(field, want, "{json}"),
            other => panic!("{json}: {other:?}"),
        }
    }
    assert!(matches!(read_err("[1, 2]"), Error::InvalidConfig { .. }));
}

/// Options that parse but make no valid sampler fail at `build`, naming the field.
#[test]
fn invalid_option_combinations_fail_at_build() {
    let build_err = |json: &str| -> &'static str {
        let mut c = SchedulerConfig::from_diffusers_json(json).unwrap();
        c.sampler.set_num_inference_steps(10);
        match c.build() {
            Err(Error::InvalidConfig { field, .. }) | Err(Error::Unsupported { field, .. }) => {
                field
            }
            other => panic!("{json}: {other:?}"),
        }
    };
    let dpm = |extra: &str| format!(r#"{{"_class_name": "DPMSolverMultistepScheduler", {extra}}}"#);
    assert_eq!(build_err(&dpm(r#""solver_order": 4"#)), "solver_order");
    assert_eq!(
        build_err(&dpm(r#""algorithm_type": "dpmsolver""#)),
        "final_sigmas_type"
    );
    assert_eq!(
        build_err(&dpm(
            r#""algorithm_type": "sde-dpmsolver", "final_sigmas_type": "sigma_min", "solver_order": 3"#
        )),
        "solver_order"
    );
    assert_eq!(
        build_err(&dpm(
            r#""use_karras_sigmas": true, "use_exponential_sigmas": true"#
        )),
        "use_exponential_sigmas"
    );
    assert_eq!(
        build_err(&dpm(r#""variance_type": "fixed_small""#)),
        "variance_type"
    );
    assert_eq!(
        build_err(&dpm(
            r#""thresholding": true, "dynamic_thresholding_ratio": 1.5"#
        )),
        "dynamic_thresholding_ratio"
    );
    assert_eq!(
        build_err(&dpm(r#""lambda_min_clipped": 100.0"#)),
        "lambda_min_clipped"
    );
    // Karras sigmas on the cosine schedule repeat the first timestep (diffusers starts at its
    // second occurrence and runs out of sigmas).
    assert_eq!(
        build_err(&dpm(
            r#""use_karras_sigmas": true, "beta_schedule": "squaredcos_cap_v2""#
        )),
        "use_karras_sigmas"
    );
    assert_eq!(
        build_err(r#"{"_class_name": "DDPMScheduler", "variance_type": "fixed_large_log"}"#),
        "variance_type"
    );
    assert_eq!(
        build_err(
            r#"{"_class_name": "DDIMScheduler", "thresholding": true, "sample_max_value": 0}"#
        ),
        "sample_max_value"
    );
    assert_eq!(
        build_err(r#"{"_class_name": "EulerDiscreteScheduler", "sigma_min": -1}"#),
        "sigma_min"
    );
    assert_eq!(
        build_err(r#"{"_class_name": "DDIMScheduler", "trained_betas": [0.1, 0.2]}"#),
        "trained_betas"
    );
    // Custom timesteps cannot go with sigma spacings (as diffusers).
    let s = NoiseScheduleConfig::default().build().unwrap();
    let e = DpmSolverSampler::new(
        &s,
        DpmSolverConfig {
            timesteps: Some(vec![900, 500, 100]),
            use_karras_sigmas: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                field: "use_karras_sigmas",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn config_files_name_the_file() {
    let dir = std::env::temp_dir().join(format!("dmad-scheduler-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = r#"{"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true}"#;
    let cases = [
        ("empty.json", "".to_string()),
        ("truncated.json", good[..good.len() / 2].to_string()),
        (
            "malformed.json",
            "{\"_class_name\": DDIMScheduler}".to_string(),
        ),
        (
            "unknown.json",
            r#"{"_class_name": "DDIMScheduler", "foo": 1}"#.to_string(),
        ),
    ];
    for (name, text) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let e = SchedulerConfig::from_diffusers_file(&path).unwrap_err();
        match &e {
            Error::ConfigFile { path: p, source } => {
                assert_eq!(p, &path);
                if *name == "unknown.json" {
                    assert!(matches!(**source, Error::UnknownField { .. }), "{source:?}");
                } else {
                    assert!(matches!(**source, Error::Json(_)), "{name}: {source:?}");
                }
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(e.to_string().contains(name), "{e}");
    }
    let path = dir.join("good.json");
    std::fs::write(&path, good).unwrap();
    let c = SchedulerConfig::from_diffusers_file(&path).unwrap();
    assert!(matches!(
        c.sampler,
        SamplerConfig::Euler(EulerConfig {
            use_karras_sigmas: true,
            ..
        })
    ));
    let missing = dir.join("missing.json");
    match SchedulerConfig::from_diffusers_file(&missing) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
