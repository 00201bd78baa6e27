//! DTE (non-parametric, inverse-gamma, categorical) and the DDPM table baseline.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use dmad_core::PredictionType;
use dmad_diffusion::{GaussianDenoiser, NoiseScheduleConfig, NoiseSource, SeededNoise};
use dmad_score::{
    DdpmTableConfig, DdpmTableScorer, DteCategorical, DteCategoricalConfig, DteEstimate,
    DteInverseGamma, DteInverseGammaConfig, DteNonParametric, DteNonParametricConfig,
    DteTrainConfig, Error, Scorer,
};
use serde_json::Value;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn table(v: &[f64], d: usize) -> Tensor {
    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_vec(f, (v.len() / d, d), &Device::Cpu).unwrap()
}

fn is_config(e: &Error, f: &str) -> bool {
    matches!(e, Error::Core(dmad_core::Error::InvalidConfig { field, .. }) if *field == f)
}

fn is_shape(e: &Error) -> bool {
    matches!(e, Error::Core(dmad_core::Error::ShapeMismatch { .. }))
}

fn is_input(e: &Error) -> bool {
    matches!(e, Error::Core(dmad_core::Error::InvalidInput { .. }))
}

#[test]
fn nonparametric_matches_the_reference_posterior() -> Result<()> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/dte/nonparametric.json"
    );
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    for c in fx["cases"].as_array().unwrap() {
        let d = c["d"].as_u64().unwrap() as usize;
        let k = c["k"].as_u64().unwrap() as usize;
        let t = c["T"].as_u64().unwrap() as usize;
        let train = table(&floats(&c["train"]), d);
        let test = table(&floats(&c["test"]), d);
        let mut cfg = DteNonParametricConfig {
            k,
            num_train_timesteps: t,
            ..Default::default()
        };
        let dte = DteNonParametric::fit(cfg.clone(), &train)?;
        for (g, e) in dte
            .knn_sq_distances(&test)?
            .iter()
            .zip(floats(&c["knn_sq"]))
        {
            assert!(close(*g, e, 1e-12), "d={d} k={k}: r2 {g} vs {e}");
        }
        let post = dte.posterior(&test)?;
        for (g, e) in post[0].iter().zip(floats(&c["posterior_row0"])) {
            assert!((g - e).abs() <= 1e-12, "d={d} k={k}: p {g} vs {e}");
        }
        let mean = dte.score(&test)?.scores;
        for (g, e) in mean.iter().zip(floats(&c["mean"])) {
            // f32 scores: half an ulp of f32 at ~300.
            assert!(close(*g as f64, e, 1e-6), "d={d} k={k}: mean {g} vs {e}");
        }
        cfg.estimate = DteEstimate::Mode;
        let mode = DteNonParametric::fit(cfg, &train)?.score(&test)?.scores;
        assert_eq!(
            mode.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            floats(&c["mode"])
        );
    }
    Ok(())
}

#[test]
fn nonparametric_posterior_is_the_gaussian_likelihood_for_k1() -> Result<()> {
    // With k = 1 the posterior is p(t | x) ∝ N(x; x_nn, sigma_t^2 I): evaluate that density
    // directly, one factor per feature, normalise by summing over t, and compare.
    let dev = Device::Cpu;
    let train = Tensor::new(
        &[[0.0f32, 0.1, -0.2], [0.5, 0.5, 0.5], [0.1, -0.1, 0.0]],
        &dev,
    )?;
    let x = Tensor::new(&[[0.3f32, 0.2, -0.4]], &dev)?;
    let dte = DteNonParametric::fit(
        DteNonParametricConfig {
            k: 1,
            ..Default::default()
        },
        &train,
    )?;
    let var = dte.variances().to_vec();
    let nn = [0.0f64, 0.1, -0.2];
    let xs = [0.3f64, 0.2, -0.4];
    let dens: Vec<f64> = var
        .iter()
        .map(|&v| {
            xs.iter()
                .zip(&nn)
                .map(|(a, b)| {
                    let (a, b) = (*a as f32 as f64, *b as f32 as f64);
                    (-(a - b).powi(2) / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt()
                })
                .product()
        })
        .collect();
    let z: f64 = dens.iter().sum();
    let post = &dte.posterior(&x)?[0];
    for (g, e) in post.iter().zip(&dens) {
        assert!((g - e / z).abs() <= 1e-12, "{g} vs {}", e / z);
    }
    let mean: f64 = dens.iter().enumerate().map(|(t, p)| t as f64 * p / z).sum();
    assert!(close(dte.score(&x)?.scores[0] as f64, mean, 1e-6));
    Ok(())
}

/// `n` inliers from N(0, s^2 I) in `d` dimensions and `m` outliers at radius 4s..8s.
fn toy(n: usize, m: usize, d: usize, s: f32, seed: u64) -> (Tensor, Tensor, Vec<bool>) {
    let dev = Device::Cpu;
    let mut noise = SeededNoise::new(seed);
    let train = (noise.draw(&[n, d], &dev).unwrap() * s as f64).unwrap();
    let inl = (noise.draw(&[n / 2, d], &dev).unwrap() * s as f64).unwrap();
    let dirs = noise.draw(&[m, d], &dev).unwrap();
    let norms = dirs.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
    let radius: Vec<f32> = (0..m)
        .map(|i| s * (4.0 + 4.0 * i as f32 / m as f32))
        .collect();
    let radius = Tensor::from_vec(radius, (m, 1), &dev).unwrap();
    let out = dirs
        .broadcast_div(&norms)
        .unwrap()
        .broadcast_mul(&radius)
        .unwrap();
    let test = Tensor::cat(&[&inl, &out], 0).unwrap();
    let labels = (0..n / 2 + m).map(|i| i >= n / 2).collect();
    (train, test, labels)
}

#[test]
fn nonparametric_ranks_outliers_on_a_2d_toy() -> Result<()> {
    let (train, test, labels) = toy(200, 20, 2, 0.1, 1);
    for estimate in [DteEstimate::Mean, DteEstimate::Mode] {
        let dte = DteNonParametric::fit(
            DteNonParametricConfig {
                estimate,
                ..Default::default()
            },
            &train,
        )?;
        let s = dte.score(&test)?.scores;
        let auc = dmad_metrics::auroc(&s, &labels)?;
        assert!(auc > 0.95, "{estimate:?}: AUROC {auc}");
    }
    Ok(())
}

fn small_train(seed: u64, t: usize) -> DteTrainConfig {
    DteTrainConfig {
        hidden: vec![32, 32],
        dropout: 0.1,
        epochs: 60,
        batch_size: 64,
        learning_rate: 3e-3,
        weight_decay: 5e-4,
        num_train_timesteps: t,
        beta_start: 1e-4,
        beta_end: 1e-2,
        seed,
    }
}

#[test]
fn categorical_learns_to_rank_outliers() -> Result<()> {
    let (train, test, labels) = toy(256, 32, 4, 0.1, 2);
    let cfg = DteCategoricalConfig {
        train: small_train(0, 400),
        num_bins: 7,
    };
    let dte = DteCategorical::fit(cfg.clone(), &train)?;
    let p = dte.probabilities(&test)?;
    assert_eq!(p.dims(), &[test.dim(0)?, 7]);
    let s = dte.score(&test)?.scores;
    assert!(s.iter().all(|v| (0.0..400.0).contains(v)));
    let auc = dmad_metrics::auroc(&s, &labels)?;
    assert!(auc > 0.9, "AUROC {auc}");
    // Seeded: the same config trains the same network.
    let again = DteCategorical::fit(cfg.clone(), &train)?
        .score(&test)?
        .scores;
    assert_eq!(s, again);
    // The clean bin's surprisal is -ln p_0, ranks the outliers too, and keeps growing past the
    // schedule's largest noise, where the expected time has saturated.
    let sur = dte.clean_surprisal(&test)?;
    let p: Vec<Vec<f32>> = p.to_vec2()?;
    for (q, v) in p.iter().zip(&sur) {
        assert!(
            close(*v as f64, -(q[0] as f64).ln(), 1e-4),
            "{v} vs {}",
            q[0]
        );
    }
    let auc = dmad_metrics::auroc(&sur, &labels)?;
    assert!(auc > 0.9, "surprisal AUROC {auc}");
    let far: Vec<f32> = [10.0f32, 100.0]
        .iter()
        .flat_map(|&r| [r, 0.0, 0.0, 0.0])
        .collect();
    let far = Tensor::from_vec(far, (2, 4), &Device::Cpu)?;
    let f = dte.clean_surprisal(&far)?;
    assert!(f[1] > f[0], "surprisal of farther outliers {f:?}");
    // An untrained classifier given the trained weights scores the same.
    let fresh = DteCategorical::untrained(cfg, 4, &Device::Cpu)?;
    {
        let src = dte.weights().data().lock().unwrap();
        let dst = fresh.weights().data().lock().unwrap();
        for (name, var) in dst.iter() {
            var.set(src[name].as_tensor())?;
        }
    }
    assert_eq!(fresh.score(&test)?.scores, s);
    assert_eq!(fresh.features(), 4);
    Ok(())
}

#[test]
fn inverse_gamma_learns_to_rank_outliers() -> Result<()> {
    let (train, test, labels) = toy(256, 32, 4, 0.1, 3);
    let cfg = DteInverseGammaConfig {
        train: DteTrainConfig {
            weight_decay: 0.0,
            ..small_train(1, 300)
        },
        estimate: DteEstimate::Mean,
    };
    let dte = DteInverseGamma::fit(cfg, &train)?;
    let s = dte.score(&test)?.scores;
    let auc = dmad_metrics::auroc(&s, &labels)?;
    assert!(auc > 0.9, "AUROC {auc}");
    assert!(dte.beta(&test)?.iter().all(|b| b.is_finite() && *b >= 0.0));
    Ok(())
}

#[test]
fn ddpm_table_baseline_ranks_outliers() -> Result<()> {
    let dev = Device::Cpu;
    // DTE's DDPM schedule: T = 1000, linear betas 1e-4..1e-2.
    let schedule = NoiseScheduleConfig {
        beta_end: 1e-2,
        ..Default::default()
    }
    .build()?;
    let model = GaussianDenoiser::new(&schedule, 0.0, 0.5, PredictionType::Epsilon)?;
    let mut noise = SeededNoise::new(4);
    let inl = (noise.draw(&[40, 6], &dev)? * 0.5)?;
    let out = ((noise.draw(&[10, 6], &dev)? * 0.5)? + 2.0)?;
    let x = Tensor::cat(&[&inl, &out], 0)?;
    let labels: Vec<bool> = (0..50).map(|i| i >= 40).collect();
    for cfg in [
        DdpmTableConfig {
            reconstruction_t: 100,
            ..Default::default()
        },
        DdpmTableConfig {
            reconstruction_t: 100,
            full_path: true,
            ..Default::default()
        },
        DdpmTableConfig {
            reconstruction_t: 100,
            add_noise: true,
            seed: 1,
            ..Default::default()
        },
    ] {
        let scorer = DdpmTableScorer::new(&model, &schedule, cfg.clone())?;
        let o = scorer.score(&x)?;
        assert!(o.map.is_none());
        let auc = dmad_metrics::auroc(&o.scores, &labels)?;
        assert!(auc > 0.95, "{cfg:?}: AUROC {auc}");
    }
    // One step from t = 0 is the posterior mean at t = 0:
    // x_hat = (x - beta_0 / sqrt(1 - alpha_bar_0) eps_hat) / sqrt(alpha_0).
    let one = DdpmTableScorer::new(
        &model,
        &schedule,
        DdpmTableConfig {
            reconstruction_t: 1,
            ..Default::default()
        },
    )?;
    let xs = x.narrow(0, 0, 3)?;
    let got = one.score(&xs)?.scores;
    let b0 = schedule.betas()[0];
    let a0 = schedule.alphas_cumprod()[0];
    let eps = dmad_core::Denoiser::predict(&model, &xs, &Tensor::new(&[0u32, 0, 0], &dev)?)?;
    let xhat = ((&xs - (eps * (b0 / (1.0 - a0).sqrt()))?)? / (1.0 - b0).sqrt())?;
    let want = (&xs - xhat)?.sqr()?.mean(1)?.to_vec1::<f32>()?;
    for (g, e) in got.iter().zip(&want) {
        assert!(close(*g as f64, *e as f64, 1e-4), "{g} vs {e}");
    }
    Ok(())
}

#[test]
fn ddpm_table_scorer_runs_the_mlp_denoiser() -> Result<()> {
    use dmad_unet::{MlpConfig, MlpDenoiser};
    let dev = Device::Cpu;
    let schedule = NoiseScheduleConfig::default().build()?;
    let cfg = MlpConfig {
        width: 16,
        depth: 1,
        time_embedding_dim: 8,
        ..MlpConfig::new(5)
    };
    let (net, _vars) = MlpDenoiser::with_varmap(cfg, DType::F32, &dev)?;
    let scorer = DdpmTableScorer::new(
        net,
        &schedule,
        DdpmTableConfig {
            reconstruction_t: 10,
            ..Default::default()
        },
    )?;
    let o = scorer.score(&Tensor::ones((3, 5), DType::F32, &dev)?)?;
    assert_eq!(o.scores.len(), 3);
    assert!(o.scores.iter().all(|v| v.is_finite()));
    assert!(is_shape(
        &scorer
            .score(&Tensor::ones((3, 4), DType::F32, &dev)?)
            .unwrap_err()
            .into_core()
    ));
    Ok(())
}

trait IntoCore {
    fn into_core(self) -> Error;
}

impl IntoCore for Error {
    /// A denoiser's shape error arrives through the diffusion loop; unwrap it to the core error.
    fn into_core(self) -> Error {
        match self {
            Error::Diffusion(dmad_diffusion::Error::Core(c)) => Error::Core(c),
            Error::Diffusion(dmad_diffusion::Error::ShapeMismatch {
                context,
                expected,
                got,
            }) => Error::Core(dmad_core::Error::ShapeMismatch {
                context,
                expected,
                got,
            }),
            e => e,
        }
    }
}

#[test]
fn dte_bad_input_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let train = Tensor::zeros((4, 3), DType::F32, &dev)?;
    let np = |k| {
        DteNonParametric::fit(
            DteNonParametricConfig {
                k,
                ..Default::default()
            },
            &train,
        )
    };
    assert!(is_config(&np(0).unwrap_err(), "k"));
    assert!(
        is_config(&np(5).unwrap_err(), "k"),
        "k larger than the training set"
    );
    let dte = np(4)?;
    assert!(is_shape(
        &dte.score(&Tensor::zeros((2, 2), DType::F32, &dev)?)
            .unwrap_err()
    ));
    assert!(is_shape(
        &dte.score(&Tensor::zeros((0, 3), DType::F32, &dev)?)
            .unwrap_err()
    ));
    assert!(is_shape(
        &dte.score(&Tensor::zeros((2, 1, 3), DType::F32, &dev)?)
            .unwrap_err()
    ));
    let nan = Tensor::new(&[[0f32, f32::NAN, 1.0]], &dev)?;
    assert!(is_input(&dte.score(&nan).unwrap_err()));
    assert!(is_input(
        &DteNonParametric::fit(
            DteNonParametricConfig {
                k: 1,
                ..Default::default()
            },
            &nan
        )
        .unwrap_err()
    ));
    assert!(is_shape(
        &DteNonParametric::fit(
            DteNonParametricConfig::default(),
            &Tensor::zeros((0, 3), DType::F32, &dev)?
        )
        .unwrap_err()
    ));
    let bad_sched = DteNonParametricConfig {
        beta_start: 0.1,
        beta_end: 0.01,
        k: 1,
        ..Default::default()
    };
    assert!(DteNonParametric::fit(bad_sched, &train).is_err());
    // Parametric models.
    let tiny = |epochs| DteTrainConfig {
        epochs,
        ..small_train(0, 50)
    };
    assert!(is_config(
        &DteCategorical::fit(
            DteCategoricalConfig {
                train: tiny(1),
                num_bins: 1
            },
            &train
        )
        .unwrap_err(),
        "num_bins"
    ));
    assert!(is_config(
        &DteCategorical::fit(
            DteCategoricalConfig {
                train: tiny(0),
                num_bins: 3
            },
            &train
        )
        .unwrap_err(),
        "epochs/batch_size"
    ));
    let mut no_hidden = tiny(1);
    no_hidden.hidden.clear();
    assert!(is_config(
        &DteCategorical::fit(
            DteCategoricalConfig {
                train: no_hidden,
                num_bins: 3
            },
            &train
        )
        .unwrap_err(),
        "hidden"
    ));
    let two_features = Tensor::zeros((4, 2), DType::F32, &dev)?;
    assert!(is_input(
        &DteInverseGamma::fit(
            DteInverseGammaConfig {
                train: tiny(1),
                ..Default::default()
            },
            &two_features
        )
        .unwrap_err()
    ));
    let cat = DteCategorical::fit(
        DteCategoricalConfig {
            train: tiny(1),
            num_bins: 3,
        },
        &train,
    )?;
    assert!(is_shape(
        &cat.score(&Tensor::zeros((2, 4), DType::F32, &dev)?)
            .unwrap_err()
    ));
    // DDPM baseline.
    let schedule = NoiseScheduleConfig::default().build()?;
    let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, PredictionType::Epsilon)?;
    for t in [0, 1001] {
        assert!(is_config(
            &DdpmTableScorer::new(
                &model,
                &schedule,
                DdpmTableConfig {
                    reconstruction_t: t,
                    ..Default::default()
                }
            )
            .unwrap_err(),
            "reconstruction_t"
        ));
    }
    let ddpm = DdpmTableScorer::new(&model, &schedule, DdpmTableConfig::default())?;
    assert!(is_shape(
        &ddpm
            .score(&Tensor::zeros((2, 1, 3), DType::F32, &dev)?)
            .unwrap_err()
    ));
    Ok(())
}
