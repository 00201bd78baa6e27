//! Imputation diffusion for series (issue 21) end to end on the shipped periodic series with a
//! discord (`testdata/data/series/periodic-discord.csv`, `generate.py` beside it).

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use dmad::data::Series;
use dmad::prepare::{self, SeriesSource};
use dmad::series;
use dmad::train::Control;
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

/// `det` saved to a temporary directory and loaded back.
fn round_trip(det: &Detector) -> dmad::Result<Detector> {
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        path: PathBuf::from("tempdir"),
        source: e,
    })?;
    det.save(dir.path().join("m"))?;
    Detector::load(dir.path().join("m"), &Device::Cpu)
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
    let back = round_trip(&det)?;
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
    let mut det = Detector::new(ok, &Device::Cpu).unwrap();
    let short = Tensor::zeros((2, 1, 8), DType::F32, &Device::Cpu).unwrap();
    let e = det.score(&short).unwrap_err().to_string();
    assert!(e.contains("segment"), "{e}");
    // Point scoring keeps the scorer's kind and rejects bad levels; nothing changes then.
    let before = det.config().clone();
    let e = det
        .set_point_scoring(ScorerConfig::Reconstruction, 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("keeps the scorer's kind"), "{e}");
    let bad_levels = ScorerConfig::Imputation {
        levels: 0,
        max_strength: 0.1,
        phases: 2,
    };
    assert!(det.set_point_scoring(bad_levels, 1.0).is_err());
    assert_eq!(det.config(), &before);
    // A negative or NaN point smoothing, and one for data without points.
    for bad in [-1.0, f64::NAN] {
        let mut c = tiny(64);
        c.scoring.point_sigma = bad;
        let e = Detector::new(c, &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("scoring.point_sigma"), "{e}");
    }
    let mut c = DetectorConfig::for_tables(3);
    c.scoring.point_sigma = 2.0;
    let e = Detector::new(c, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("scoring.point_sigma"), "{e}");
}

/// A wave of period 16 with a slower component, `n` points.
fn wave(n: usize) -> Series {
    let tau = std::f32::consts::TAU;
    let values = (0..n)
        .map(|i| {
            let t = i as f32;
            (tau * t / 16.0).sin() + 0.3 * (tau * t / 5.0).sin().powi(3) + 0.1 * (t / 97.0).sin()
        })
        .collect();
    Series {
        values,
        dims: 1,
        labels: vec![0; n],
    }
}

#[test]
fn fit_series_chooses_the_point_smoothing_on_a_held_out_fifth() -> dmad::Result<()> {
    dmad::init_cpu();
    let mut cfg = tiny(32);
    cfg.train.steps = 30;
    cfg.train.lr_warmup_steps = 3;
    let train = wave(3000);
    let mut det = Detector::new(cfg.clone(), &Device::Cpu)?;
    let fit = series::fit_series(&mut det, &train, None, |_| Control::Continue)?;
    assert!(fit.finished);
    let c = fit
        .choice
        .expect("a held-out fifth of 600 points holds 9 chunks of 64");
    // The held fifth, cut to whole chunks of two windows.
    assert_eq!(c.held_out, 576);
    // The configured levels (to pure noise) and the light-noise ones, each with every sigma.
    let scorers = series::scorer_candidates(cfg.scorer);
    assert_eq!(scorers.len(), 2);
    assert_eq!(
        scorers[1],
        ScorerConfig::Imputation {
            levels: 2,
            max_strength: series::LIGHT_NOISE_STRENGTH,
            phases: 2
        }
    );
    let tried: Vec<(ScorerConfig, f64)> = c
        .candidates
        .iter()
        .map(|p| (p.scorer, p.point_sigma))
        .collect();
    let want: Vec<(ScorerConfig, f64)> = scorers
        .iter()
        .flat_map(|&s| [0.0, 4.0, 8.0, 16.0, 32.0].map(|sigma| (s, sigma)))
        .collect();
    assert_eq!(tried, want);
    assert!(c.candidates.iter().all(|p| (0.0..=1.0).contains(&p.auroc)));
    let best = c.candidates.iter().map(|p| p.auroc).fold(0.0, f64::max);
    let first_best = c.candidates.iter().find(|p| p.auroc == best).unwrap();
    assert_eq!(
        (c.scorer, c.point_sigma),
        (first_best.scorer, first_best.point_sigma),
        "{:?}",
        c.candidates
    );
    assert_eq!(c.auroc(), best);
    assert_eq!(det.config().scoring.point_sigma, c.point_sigma);
    assert_eq!(det.config().scorer, c.scorer);
    // The threshold: the 0.99 quantile of the held-out fifth's point scores.
    let method = &det.calibration().expect("calibrated").method;
    assert!(
        method.contains("smoothed point scores of 600 held-out"),
        "{method}"
    );
    let held = train.slice(2400..3000);
    let (x, starts) = dmad::data::windows(&held, 32, det.config().input.test_stride, &Device::Cpu)?;
    let held_points = series::point_scores(&det, &det.score(&x)?, &starts, 32, 600)?;
    let q = dmad::metrics::Threshold::quantile(&held_points, 0.99)?.value;
    assert_eq!(det.threshold()?.value, q);

    // The point scores are the covering windows' step maps, smoothed by the chosen sigma.
    let part = train.slice(0..400);
    let (x, starts) = dmad::data::windows(&part, 32, 4, &Device::Cpu)?;
    let scored = det.score(&x)?;
    let raw = series::covering_mean(&scored.scores, scored.maps.as_ref(), &starts, 32, 400)?;
    let points = series::point_scores(&det, &scored, &starts, 32, 400)?;
    let expected = if c.point_sigma > 0.0 {
        let t = Tensor::from_vec(raw.clone(), (1, 400), &Device::Cpu)?;
        dmad::score::maps::gaussian_smooth(&t, c.point_sigma)?
            .flatten_all()?
            .to_vec1::<f32>()?
    } else {
        raw.clone()
    };
    assert_eq!(points, expected);

    // Saved and loaded, the levels and smoothing stay.
    let back = round_trip(&det)?;
    assert_eq!(back.config().scoring.point_sigma, c.point_sigma);
    assert_eq!(back.config().scorer, c.scorer);
    assert_eq!(
        series::point_scores(&back, &scored, &starts, 32, 400)?,
        points
    );

    assert!(!c.in_sample);

    // Too short to hold a fifth out (120 points, fewer than two chunks of 64): fitted on
    // every window, the smoothing chosen on the series itself.
    let mut det = Detector::new(cfg.clone(), &Device::Cpu)?;
    let fit = series::fit_series(&mut det, &train.slice(0..600), None, |_| Control::Continue)?;
    let c = fit.choice.expect("600 points hold 9 chunks");
    assert!(c.in_sample && c.held_out == 576);
    // Shorter than two windows: the configured smoothing kept.
    cfg.scoring.point_sigma = 3.0;
    let mut det = Detector::new(cfg, &Device::Cpu)?;
    let fit = series::fit_series(&mut det, &train.slice(0..60), None, |_| Control::Continue)?;
    assert!(fit.finished && fit.choice.is_none());
    assert_eq!(det.config().scoring.point_sigma, 3.0);
    Ok(())
}
