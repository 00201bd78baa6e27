//! Imputation diffusion for series (issue 21) end to end on the shipped periodic series with a
//! discord (`testdata/data/series/periodic-discord.csv`, `generate.py` beside it).

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use dmad::prepare::{self, SeriesSource};
use dmad::{Detector, DetectorConfig, Error, ScorerConfig, WindowNorm};

fn shipped() -> SeriesSource {
    SeriesSource::LabelledCsv(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/data/series/periodic-discord.csv"),
    )
}

/// A small, fast imputation detector for `window`-step windows.
fn tiny(window: usize) -> DetectorConfig {
    let mut cfg = DetectorConfig::series_imputation(1, window);
    if let dmad::NetworkConfig::Unet1d(u) = &mut cfg.network {
        u.block_out_channels = vec![16, 32, 32];
        u.modules.attention_heads = 2;
        u.modules.adapter_channels = 16;
        u.modules.multi_head_attention = false;
    }
    cfg.train.steps = 300;
    cfg.train.learning_rate = 2e-3;
    cfg.train.lr_warmup_steps = 20;
    cfg
}

#[test]
fn the_discord_of_a_periodic_series_peaks_the_imputation_score() -> dmad::Result<()> {
    dmad::init_cpu();
    let (split, _) = prepare::series_split(&shipped())?;
    let period = prepare::train_period(&split.train);
    assert_eq!(
        period, 40,
        "the shipped wave's period, from the train part alone"
    );
    let window = prepare::imputation_window(period);
    assert_eq!(window, 80);
    // 600 steps: with segments of a fifth of a period the imputer learns from the next
    // period, which takes longer than copying neighbours (300 steps: AUROC 0.945-0.988).
    let mut cfg = tiny(window);
    cfg.train.steps = 600;
    let (train_stride, test_stride) = (cfg.input.train_stride, cfg.input.test_stride);
    let task = prepare::series(&shipped(), window, train_stride, test_stride, &Device::Cpu)?;
    let mut det = Detector::new(cfg, &Device::Cpu)?;
    det.fit(&task.train, |_| {})?;
    let s = det.score(&task.test)?;
    assert!(det.config().scorer.scores_steps());
    let points = task.point_scores(&s.scores, s.maps.as_ref())?;
    assert_eq!(points.len(), task.test_labels.len());
    let arg = (0..points.len())
        .max_by(|&a, &b| points[a].total_cmp(&points[b]))
        .unwrap();
    let inside: Vec<usize> = (0..points.len())
        .filter(|&i| task.test_labels[i] == 1)
        .collect();
    let (first, last) = (inside[0], *inside.last().unwrap());
    assert!(
        (first..=last).contains(&arg),
        "the score peaks at test point {arg}, the discord is {first}..={last}"
    );
    let y: Vec<bool> = task.test_labels.iter().map(|&l| l == 1).collect();
    let auroc = dmad::metrics::auroc(&points, &y)?;
    assert!(auroc > 0.95, "point AUROC {auroc}");

    // Saved and loaded, the same scores.
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        path: PathBuf::from("tempdir"),
        source: e,
    })?;
    det.save(dir.path().join("m"))?;
    let back = Detector::load(dir.path().join("m"), &Device::Cpu)?;
    assert_eq!(back.score(&task.test)?.scores, s.scores);
    Ok(())
}

#[test]
fn windows_are_z_normalised_on_their_own_when_asked() -> dmad::Result<()> {
    // A level shift of a whole window leaves its imputation score unchanged under
    // WindowNorm::Window (the untrained network is enough: the input is the same).
    let mut cfg = tiny(32);
    cfg.train.steps = 1;
    let det = Detector::new(cfg.clone(), &Device::Cpu)?;
    let wave: Vec<f32> = (0..64).map(|i| (i as f32 * 0.4).sin()).collect();
    let x = Tensor::from_vec(wave, (2, 1, 32), &Device::Cpu)?;
    let shifted = ((&x * 3.0)? + 5.0)?;
    let a = det.score(&x)?.scores;
    let b = det.score(&shifted)?.scores;
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "{a:?} vs {b:?}");
    }
    cfg.input.window_norm = WindowNorm::Global;
    let det = Detector::new(cfg, &Device::Cpu)?;
    assert_ne!(det.score(&x)?.scores, det.score(&shifted)?.scores);
    // A constant window is centred, not divided by zero.
    let flat = Tensor::ones((1, 1, 32), DType::F32, &Device::Cpu)?;
    assert!(det.score(&flat)?.scores[0].is_finite());
    Ok(())
}

#[test]
fn bad_imputation_settings_are_named() {
    let ok = tiny(64);
    // A grating segment as long as the window.
    let mut c = ok.clone();
    c.train.imputation = Some(dmad::core::masking::GratingMasks { segment: 64 });
    let e = Detector::new(c, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("segment"), "{e}");
    // The imputation scorer without a network trained to impute, and the other way round.
    let mut c = ok.clone();
    c.train.imputation = None;
    let e = Detector::new(c, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("train.imputation"), "{e}");
    let mut c = ok.clone();
    c.scorer = ScorerConfig::Reconstruction;
    let e = Detector::new(c, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("imputation scorer only"), "{e}");
    // A U-Net without the mask channel.
    let mut c = ok.clone();
    if let dmad::NetworkConfig::Unet1d(u) = &mut c.network {
        u.in_channels = 1;
    }
    let e = Detector::new(c, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("in_channels must be out_channels + 1"), "{e}");
    // Windows of the wrong length for the grating.
    let det = Detector::new(ok, &Device::Cpu).unwrap();
    let short = Tensor::zeros((2, 1, 8), DType::F32, &Device::Cpu).unwrap();
    let e = det.score(&short).unwrap_err().to_string();
    assert!(e.contains("segment"), "{e}");
}
