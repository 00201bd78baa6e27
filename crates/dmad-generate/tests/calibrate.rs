//! Calibration on generated anomalies: the choice of strength, lambda and threshold, end to
//! end with the Gaussian oracle, and errors.

use candle_core::{Device, Tensor};
use dmad_core::PredictionType;
use dmad_diffusion::{DdimConfig, DdimSampler, GaussianDenoiser, NoiseScheduleConfig, Start};
use dmad_generate::{
    calibrate, inject_series, sample_normal, CalibrationConfig, Candidate, Error, ScoreTerms,
    SeriesAnomaly,
};
use dmad_score::{squared_error, ReconstructionConfig, Reconstructor};

fn terms(recon: &[f32], feat: Option<&[f32]>) -> ScoreTerms {
    ScoreTerms {
        recon: recon.to_vec(),
        feat: feat.map(|f| f.to_vec()),
    }
}

#[test]
fn calibration_picks_the_strength_and_lambda_that_separate() {
    // At strength 0.2 only the feature term separates the anomalies; at 0.5 neither does.
    let normal_r = [1.0, 1.1, 0.9, 1.05, 0.95, 1.2];
    let normal_f = [2.0, 2.1, 1.9, 2.2, 1.8, 2.05];
    let anom_r = [1.0, 1.15, 0.92, 1.02];
    let anom_f = [3.5, 4.0, 3.2, 3.8];
    let good = Candidate {
        strength: 0.2,
        normal: terms(&normal_r, Some(&normal_f)),
        anomalous: terms(&anom_r, Some(&anom_f)),
    };
    let bad = Candidate {
        strength: 0.5,
        normal: terms(&normal_r, Some(&normal_f)),
        anomalous: terms(&anom_r, Some(&[2.0, 2.1, 1.95, 2.0])),
    };
    let c = calibrate(&[bad, good], &CalibrationConfig::default()).unwrap();
    assert_eq!(c.strength, 0.2);
    assert!(
        c.lambda < 0.5,
        "lambda {} should weigh the feature term",
        c.lambda
    );
    assert!((c.auroc - 1.0).abs() < 1e-12 && (c.f1 - 1.0).abs() < 1e-12);
    assert!(c.recon_threshold.is_none());
    assert_eq!(c.candidates.len(), 2);
    assert!(c.candidates[0].auroc < c.candidates[1].auroc);
    // The threshold separates the generated anomalies from the normals exactly.
    let a_n = c
        .normaliser
        .combine_scores(c.lambda, &normal_r, &normal_f)
        .unwrap();
    let a_a = c
        .normaliser
        .combine_scores(c.lambda, &anom_r, &anom_f)
        .unwrap();
    assert!(c.threshold.predict(&a_n).iter().all(|&p| !p));
    assert!(c.threshold.predict(&a_a).iter().all(|&p| p));
}

#[test]
fn without_a_feature_term_lambda_is_one_and_the_raw_threshold_splits_alike() {
    let normal = [1.0f32, 1.3, 0.8, 1.1, 0.9, 1.25, 1.6];
    let anomalous = [1.5f32, 2.5, 3.0, 1.2];
    let c = calibrate(
        &[Candidate {
            strength: 0.3,
            normal: terms(&normal, None),
            anomalous: terms(&anomalous, None),
        }],
        &CalibrationConfig::default(),
    )
    .unwrap();
    assert_eq!(c.lambda, 1.0);
    let raw = c.recon_threshold.expect("a raw threshold for lambda = 1");
    let all: Vec<f32> = normal.iter().chain(&anomalous).copied().collect();
    let z = c.normaliser.combine_scores(1.0, &all, &all).unwrap();
    assert_eq!(raw.predict(&all), c.threshold.predict(&z));
}

/// End to end with the exact denoiser of N(0, 1) windows: anomalies generated into normal
/// windows (level shifts and spikes) calibrate the detector; the chosen threshold also
/// separates a fresh, independently generated set.
#[test]
fn calibration_on_generated_series_anomalies_generalises_to_fresh_ones() {
    let schedule = NoiseScheduleConfig::default().build().unwrap();
    let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, PredictionType::Epsilon).unwrap();
    let ddim = || {
        DdimSampler::new(
            &schedule,
            DdimConfig {
                num_inference_steps: 20,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let dev = Device::Cpu;
    let normals = |seed| sample_normal(&model, &mut ddim(), &[48, 1, 64], seed, &dev).unwrap();
    let anomalies = |base: &Tensor, seed| -> Tensor {
        let half = base.dim(0).unwrap() / 2;
        let a = inject_series(
            &base.narrow(0, 0, half).unwrap(),
            SeriesAnomaly::LevelShift,
            1.0,
            seed,
        )
        .unwrap();
        let b = inject_series(
            &base.narrow(0, half, half).unwrap(),
            SeriesAnomaly::Spike,
            1.0,
            seed,
        )
        .unwrap();
        Tensor::cat(&[a.x, b.x], 0).unwrap()
    };
    let recon = |x: &Tensor, strength: f64| -> Vec<f32> {
        let rec = Reconstructor::new(
            &model,
            ddim(),
            ReconstructionConfig {
                start: Start::Strength(strength),
                draws: 1,
                seed: 7,
            },
        )
        .unwrap();
        let r = rec.reconstruct(x).unwrap().remove(0);
        squared_error(x, &r).unwrap().scores
    };
    let held_out = normals(1);
    let generated = anomalies(&normals(2), 3);
    let strengths = [0.1, 0.4, 0.8];
    let candidates: Vec<Candidate> = strengths
        .iter()
        .map(|&s| Candidate {
            strength: s,
            normal: terms(&recon(&held_out, s), None),
            anomalous: terms(&recon(&generated, s), None),
        })
        .collect();
    let c = calibrate(&candidates, &CalibrationConfig::default()).unwrap();
    for r in &c.candidates {
        println!(
            "strength {}: AUROC {:.3}, F1 {:.3}",
            r.strength, r.auroc, r.f1
        );
    }
    println!(
        "chosen strength {} AUROC {:.3} F1 {:.3}",
        c.strength, c.auroc, c.f1
    );
    assert!(c.auroc > 0.9, "AUROC on generated anomalies {}", c.auroc);
    // A fresh test set: new normals and new anomalies.
    let thr = c.recon_threshold.unwrap();
    let test_n = recon(&normals(4), c.strength);
    let test_a = recon(&anomalies(&normals(5), 6), c.strength);
    let scores: Vec<f32> = test_n.iter().chain(&test_a).copied().collect();
    let labels: Vec<bool> = (0..scores.len()).map(|i| i >= test_n.len()).collect();
    let pred = thr.predict(&scores);
    let tp = pred.iter().zip(&labels).filter(|(p, l)| **p && **l).count() as f64;
    let fp = pred
        .iter()
        .zip(&labels)
        .filter(|(p, l)| **p && !**l)
        .count() as f64;
    let fn_ = pred
        .iter()
        .zip(&labels)
        .filter(|(p, l)| !**p && **l)
        .count() as f64;
    let f1 = 2.0 * tp / (2.0 * tp + fp + fn_);
    let auroc = dmad_metrics::auroc(&scores, &labels).unwrap();
    println!("fresh set: AUROC {auroc:.3}, F1 at the calibrated threshold {f1:.3}");
    assert!(auroc > 0.85 && f1 > 0.75, "fresh AUROC {auroc}, F1 {f1}");
}

#[test]
fn bad_candidates_are_errors() {
    let ok = terms(&[1.0, 2.0, 1.5], None);
    let cfg = CalibrationConfig::default();
    assert!(matches!(
        calibrate(&[], &cfg),
        Err(Error::InvalidConfig { .. })
    ));
    let c = |strength, normal: ScoreTerms, anomalous: ScoreTerms| Candidate {
        strength,
        normal,
        anomalous,
    };
    assert!(matches!(
        calibrate(&[c(0.0, ok.clone(), ok.clone())], &cfg),
        Err(Error::InvalidConfig {
            field: "strength",
            ..
        })
    ));
    assert!(matches!(
        calibrate(&[c(0.3, terms(&[1.0], None), ok.clone())], &cfg),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        calibrate(
            &[c(0.3, terms(&[1.0, 2.0], Some(&[1.0])), ok.clone())],
            &cfg
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        calibrate(
            &[c(0.3, terms(&[1.0, 2.0], Some(&[1.0, 2.0])), ok.clone())],
            &cfg
        ),
        Err(Error::InvalidConfig { field: "feat", .. })
    ));
    // Normal terms that do not spread cannot be normalised.
    assert!(matches!(
        calibrate(&[c(0.3, terms(&[1.0, 1.0, 1.0], None), ok.clone())], &cfg),
        Err(Error::Score(_))
    ));
    assert!(calibrate(&[c(0.3, ok.clone(), terms(&[1.0, f32::NAN], None))], &cfg).is_err());
}

#[test]
fn the_prevalence_reweights_the_f1_threshold() {
    let normal: Vec<f32> = (0..20).map(|i| i as f32 / 10.0).collect(); // 0 .. 1.9
    let anomalous: Vec<f32> = (0..20).map(|i| 1.0 + i as f32 / 10.0).collect(); // 1 .. 2.9
    let cand = |prevalence| {
        calibrate(
            &[Candidate {
                strength: 0.3,
                normal: terms(&normal, None),
                anomalous: terms(&anomalous, None),
            }],
            &CalibrationConfig {
                prevalence,
                ..CalibrationConfig::default()
            },
        )
        .unwrap()
    };
    // The share of the set itself (one half) gives the unweighted result.
    let plain = cand(None);
    let half = cand(Some(0.5));
    assert_eq!(plain.recon_threshold, half.recon_threshold);
    assert!((plain.f1 - half.f1).abs() < 1e-9);
    // Rare anomalies: fewer false positives pay, the threshold rises.
    let rare = cand(Some(0.05));
    let (t_half, t_rare) = (
        half.recon_threshold.unwrap().value,
        rare.recon_threshold.unwrap().value,
    );
    println!("F1-optimal threshold: prevalence 0.5 -> {t_half}, 0.05 -> {t_rare}");
    assert!(t_rare > t_half);
    for bad in [0.0, 1.0, f64::NAN] {
        assert!(calibrate(
            &[Candidate {
                strength: 0.3,
                normal: terms(&normal, None),
                anomalous: terms(&anomalous, None),
            }],
            &CalibrationConfig {
                prevalence: Some(bad),
                ..CalibrationConfig::default()
            },
        )
        .is_err());
    }
}
