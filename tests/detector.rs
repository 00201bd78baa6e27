//! The facade end to end on tiny models: fit, score, threshold, save, load, bad models.

use candle_core::{Device, Tensor};
use dmad::{Detector, DetectorConfig, Error, ScorerConfig};

fn normal_rows(n: usize) -> Tensor {
    let v: Vec<f32> = (0..n * 4)
        .map(|i| ((i as f32 * 0.731).sin() * 0.3) + if i % 4 == 0 { 0.5 } else { 0.0 })
        .collect();
    Tensor::from_vec(v, (n, 4), &Device::Cpu).unwrap()
}

fn tiny_table(scorer: ScorerConfig) -> DetectorConfig {
    let mut cfg = DetectorConfig::for_tables(4);
    if let dmad::NetworkConfig::Mlp(m) = &mut cfg.network {
        m.width = 32;
        m.depth = 2;
        m.time_embedding_dim = 16;
    }
    cfg.train.steps = 150;
    cfg.train.batch_size = 32;
    cfg.train.learning_rate = 3e-3;
    cfg.train.lr_warmup_steps = 5;
    cfg.scoring.steps = 10;
    cfg.scorer = scorer;
    cfg
}

fn test_rows() -> Tensor {
    Tensor::new(
        &[
            [0.5f32, 0.1, -0.1, 0.0],
            [0.4, -0.2, 0.2, 0.1],
            [4.0, -3.0, 3.0, -4.0],
            [-3.0, 3.0, -3.0, 3.0],
        ],
        &Device::Cpu,
    )
    .unwrap()
}

#[test]
fn fit_score_save_load_round_trip() -> anyhow::Result<()> {
    for scorer in [
        ScorerConfig::Reconstruction,
        ScorerConfig::Dte { k: 5 },
        ScorerConfig::DteCategorical {
            bins: 7,
            surprisal: false,
        },
    ] {
        let mut det = Detector::new(tiny_table(scorer), &Device::Cpu)?;
        assert!(matches!(det.threshold(), Err(Error::NotFitted)));
        det.fit(&normal_rows(200), |_| {})?;
        let s = det.score(&test_rows())?;
        assert!(s.maps.is_none());
        assert!(
            s.scores[2].min(s.scores[3]) > s.scores[0].max(s.scores[1]),
            "{scorer:?}: outliers must score above inliers: {:?}",
            s.scores
        );
        let flags = det.predict(&s.scores)?;
        assert!(flags[2] && flags[3], "{scorer:?}: {flags:?}");
        let cal = det.calibration().unwrap().clone();
        assert_eq!(cal.calibration_samples, 40);
        assert_eq!(cal.train_samples, 160);

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("model");
        det.save(&path)?;
        // Saving again replaces the model whole.
        det.save(&path)?;
        let back = Detector::load(&path, &Device::Cpu)?;
        assert_eq!(back.config(), det.config());
        assert_eq!(back.calibration(), Some(&cal));
        assert_eq!(back.score(&test_rows())?.scores, s.scores, "{scorer:?}");

        // A fit serves only scorers of its own kind and settings: other neighbours or bins,
        // or the network's scorers, need a new fit.
        let other = match scorer {
            ScorerConfig::Reconstruction => ScorerConfig::Dte { k: 5 },
            ScorerConfig::Dte { .. } => ScorerConfig::Dte { k: 3 },
            _ => ScorerConfig::DteCategorical {
                bins: 5,
                surprisal: false,
            },
        };
        for wrong in [other, ScorerConfig::Reconstruction]
            .into_iter()
            .filter(|w| *w != scorer)
        {
            assert!(
                matches!(
                    det.score_candidates(&test_rows(), &[wrong]),
                    Err(Error::InvalidConfig {
                        field: "scorer",
                        ..
                    })
                ),
                "{scorer:?} scored as {wrong:?}"
            );
            let scoring = det.config().scoring.clone();
            let normal = normal_rows(40);
            assert!(det.set_scoring(wrong, scoring, &normal).is_err());
            assert_eq!(det.config().scorer, scorer);
        }
    }
    Ok(())
}

#[test]
fn fitting_is_seeded() -> anyhow::Result<()> {
    let scores = |seed: u64| -> anyhow::Result<Vec<f32>> {
        let mut cfg = tiny_table(ScorerConfig::Reconstruction);
        cfg.train.steps = 30;
        cfg.train.seed = seed;
        let mut det = Detector::new(cfg, &Device::Cpu)?;
        det.fit(&normal_rows(64), |_| {})?;
        Ok(det.score(&test_rows())?.scores)
    };
    assert_eq!(scores(1)?, scores(1)?);
    assert_ne!(scores(1)?, scores(2)?);
    Ok(())
}

#[test]
fn interrupted_fit_resumes_from_its_checkpoints() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ck = dir.path().join("ckpt");
    let mut cfg = tiny_table(ScorerConfig::Reconstruction);
    cfg.train.steps = 40;
    let mut full = Detector::new(cfg.clone(), &Device::Cpu)?;
    full.fit(&normal_rows(64), |_| {})?;

    // A first run of 20 steps leaves its checkpoint; the second run resumes to 40.
    let mut short = cfg.clone();
    short.train.steps = 20;
    let mut det = Detector::new(short, &Device::Cpu)?;
    det.fit_with_checkpoints(&normal_rows(64), Some(&ck), |_| {})?;
    let mut det = Detector::new(cfg, &Device::Cpu)?;
    let mut first_step = None;
    det.fit_with_checkpoints(&normal_rows(64), Some(&ck), |p| {
        first_step.get_or_insert(p.step);
    })?;
    assert_eq!(first_step, Some(21));
    // The learning-rate schedule depends on the total steps, so the resumed run is compared
    // with the uninterrupted one only in what it must share: it trained, and it scores alike.
    let a = full.score(&test_rows())?.scores;
    let b = det.score(&test_rows())?.scores;
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.is_finite() && y.is_finite()));
    Ok(())
}

#[test]
fn damaged_models_give_clear_errors() -> anyhow::Result<()> {
    let mut cfg = tiny_table(ScorerConfig::Reconstruction);
    cfg.train.steps = 2;
    let mut det = Detector::new(cfg, &Device::Cpu)?;
    det.fit(&normal_rows(32), |_| {})?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m");
    det.save(&path)?;

    // Not a model directory.
    let err = Detector::load(dir.path(), &Device::Cpu).unwrap_err();
    assert!(
        matches!(err, Error::Model { .. }) && err.to_string().contains("config.json"),
        "{err}"
    );

    // Another format version.
    let cfg_path = path.join("config.json");
    let text = std::fs::read_to_string(&cfg_path)?;
    std::fs::write(
        &cfg_path,
        text.replace("\"format_version\": 1", "\"format_version\": 99"),
    )?;
    let err = Detector::load(&path, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("format version 99"), "{err}");
    std::fs::write(&cfg_path, &text)?;

    // A truncated weights file.
    let w = path.join("weights.safetensors");
    let bytes = std::fs::read(&w)?;
    std::fs::write(&w, &bytes[..bytes.len() / 3])?;
    let err = Detector::load(&path, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("weights.safetensors"), "{err}");
    std::fs::write(&w, &bytes)?;

    // Weights of another config (a wider network).
    let mut other = tiny_table(ScorerConfig::Reconstruction);
    if let dmad::NetworkConfig::Mlp(m) = &mut other.network {
        m.width = 48;
    }
    let text2 = serde_json::to_string(&serde_json::json!({
        "format_version": 1, "dmad_version": "0.1.0", "detector": other
    }))?;
    std::fs::write(&cfg_path, text2)?;
    let err = Detector::load(&path, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("weights.safetensors"), "{err}");
    std::fs::write(&cfg_path, &text)?;

    // A missing calibration.
    std::fs::remove_file(path.join("calibration.json"))?;
    let err = Detector::load(&path, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("calibration.json"), "{err}");
    Ok(())
}

#[test]
fn bad_input_and_config() -> anyhow::Result<()> {
    let det = Detector::new(tiny_table(ScorerConfig::Reconstruction), &Device::Cpu)?;
    let err = det.score(&Tensor::zeros(
        (2, 1, 4),
        candle_core::DType::F32,
        &Device::Cpu,
    )?);
    assert!(matches!(err, Err(Error::ShapeMismatch { .. })));
    let mut cfg = tiny_table(ScorerConfig::Reconstruction);
    cfg.scoring.strength = 0.0;
    assert!(matches!(
        Detector::new(cfg, &Device::Cpu),
        Err(Error::InvalidConfig {
            field: "scoring.strength",
            ..
        })
    ));
    let mut cfg = DetectorConfig::for_images(1);
    cfg.scorer = ScorerConfig::Dte { k: 0 };
    assert!(matches!(
        Detector::new(cfg, &Device::Cpu),
        Err(Error::InvalidConfig {
            field: "scorer",
            ..
        })
    ));
    Ok(())
}

#[test]
fn dte_scores_series_windows_without_training() -> anyhow::Result<()> {
    // Sine windows `[n, 1, 32]` with random phases; a window with a spike is the outlier.
    let window = |phase: f32, spike: bool| -> Vec<f32> {
        (0..32)
            .map(|t| {
                let v = (t as f32 * 0.4 + phase).sin();
                if spike && t == 16 {
                    v + 4.0
                } else {
                    v
                }
            })
            .collect()
    };
    let train: Vec<f32> = (0..64)
        .flat_map(|i| window(i as f32 * 0.1, false))
        .collect();
    let train = Tensor::from_vec(train, (64, 1, 32), &Device::Cpu)?;
    let test: Vec<f32> = [(0.33, false), (2.01, false), (0.5, true), (1.7, true)]
        .iter()
        .flat_map(|&(p, s)| window(p, s))
        .collect();
    let test = Tensor::from_vec(test, (4, 1, 32), &Device::Cpu)?;
    let mut cfg = DetectorConfig::for_series(1);
    cfg.scorer = ScorerConfig::Dte { k: 3 };
    let mut det = Detector::new(cfg, &Device::Cpu)?;
    let mut steps = 0;
    det.fit(&train, |_| steps += 1)?;
    assert_eq!(steps, 0, "non-parametric DTE trains no network");
    let s = det.score(&test)?.scores;
    assert!(s[2].min(s[3]) > s[0].max(s[1]), "{s:?}");
    let dir = tempfile::tempdir()?;
    det.save(dir.path().join("m"))?;
    let back = Detector::load(dir.path().join("m"), &Device::Cpu)?;
    assert_eq!(back.score(&test)?.scores, s);
    Ok(())
}

/// The EfficientNet-Lite0 weights of ../shared (`$DMAD_SHARED/weights/...`), if present.
fn lite0_weights() -> Option<std::path::PathBuf> {
    let rel = "weights/efficientnet-lite0.safetensors";
    [
        std::env::var_os("DMAD_SHARED").map(|d| std::path::PathBuf::from(d).join(rel)),
        Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared")
                .join(rel),
        ),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

fn tiny_images(scorer: ScorerConfig) -> DetectorConfig {
    let mut cfg = DetectorConfig::for_images(1);
    if let dmad::NetworkConfig::Unet2d(u) = &mut cfg.network {
        u.block_out_channels = vec![8, 8];
        u.down_block_types = vec![dmad::unet::DownBlockType::DownBlock; 2];
        u.up_block_types = vec![dmad::unet::UpBlockType::UpBlock; 2];
        u.norm_num_groups = Some(4);
        u.modules = dmad::unet::ModulesConfig::none();
    }
    cfg.input.image_size = 16;
    cfg.train.steps = 3;
    cfg.train.batch_size = 4;
    cfg.scoring.steps = 10;
    cfg.scoring.strength = 0.2;
    cfg.scorer = scorer;
    cfg
}

#[test]
fn feature_scorers_need_weights_and_images() {
    std::env::remove_var("DMAD_EFFICIENTNET");
    let err = Detector::new(tiny_images(ScorerConfig::Feature), &Device::Cpu).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "scoring.feature_weights",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("DMAD_EFFICIENTNET"), "{err}");
    let err = Detector::new(
        tiny_table(ScorerConfig::Combined { lambda: 0.5 }),
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "scorer",
                ..
            }
        ),
        "{err}"
    );
    let mut cfg = tiny_images(ScorerConfig::Combined { lambda: 1.5 });
    cfg.scoring.feature_weights = Some("missing.safetensors".into());
    assert!(matches!(
        Detector::new(cfg, &Device::Cpu),
        Err(Error::InvalidConfig {
            field: "scorer",
            ..
        })
    ));
}

#[test]
fn combined_scorer_fits_saves_and_rescores() -> anyhow::Result<()> {
    let Some(weights) = lite0_weights() else {
        println!("SKIPPED: efficientnet-lite0.safetensors not found (set DMAD_SHARED)");
        return Ok(());
    };
    let normal = (Tensor::randn(0f32, 1.0, (12, 1, 16, 16), &Device::Cpu)? * 0.1)?;
    let test = Tensor::cat(
        &[
            normal.narrow(0, 0, 2)?,
            (Tensor::randn(0f32, 1.0, (2, 1, 16, 16), &Device::Cpu)? * 0.9)?,
        ],
        0,
    )?;
    let mut cfg = tiny_images(ScorerConfig::Combined { lambda: 0.5 });
    cfg.scoring.feature_weights = Some(weights.clone());
    cfg.calibration_fraction = 0.5;
    let mut det = Detector::new(cfg, &Device::Cpu)?;
    det.fit(&normal, |_| {})?;
    let cal = det.calibration().unwrap().clone();
    let norm = cal
        .normaliser
        .clone()
        .expect("combined scoring keeps the term statistics");
    assert!(norm.recon.scale > 0.0 && norm.feat.scale > 0.0);
    let s = det.score(&test)?;
    assert_eq!(s.maps.as_ref().unwrap().dims(), &[4, 16, 16]);
    let dir = tempfile::tempdir()?;
    det.save(dir.path().join("m"))?;
    let back = Detector::load(dir.path().join("m"), &Device::Cpu)?;
    assert_eq!(back.calibration(), Some(&cal));
    assert_eq!(back.score(&test)?.scores, s.scores);

    // Lambda 1 is the reconstruction term z-scored: it ranks as the reconstruction scorer.
    let scoring = det.config().scoring.clone();
    det.set_scoring(
        ScorerConfig::Combined { lambda: 1.0 },
        scoring.clone(),
        &normal,
    )?;
    let z = det.score(&test)?.scores;
    det.set_scoring(ScorerConfig::Reconstruction, scoring.clone(), &normal)?;
    assert!(det.calibration().unwrap().normaliser.is_none());
    let r = det.score(&test)?.scores;
    let order = |v: &[f32]| {
        let mut i: Vec<usize> = (0..v.len()).collect();
        i.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        i
    };
    assert_eq!(order(&z), order(&r));
    // DTE keeps training samples instead of a network: switching to it needs a new fit.
    assert!(matches!(
        det.set_scoring(ScorerConfig::Dte { k: 3 }, scoring, &normal),
        Err(Error::InvalidConfig {
            field: "scorer",
            ..
        })
    ));
    Ok(())
}

#[test]
fn scoring_with_progress_gives_the_same_scores_and_reports_every_batch() {
    let mut cfg = tiny_table(ScorerConfig::Reconstruction);
    cfg.scoring.batch_size = 4;
    let x = Tensor::randn(0f32, 1.0, (10, 4), &Device::Cpu).unwrap();
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&x, |_| {}).unwrap();
    let mut seen = Vec::new();
    let with = det
        .score_with_progress(&x, |done, total| seen.push((done, total)))
        .unwrap();
    assert_eq!(with.scores, det.score(&x).unwrap().scores);
    assert_eq!(seen, [(4, 10), (8, 10), (10, 10)]);
}
