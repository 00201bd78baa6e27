//! The feature-space diffusion detector (issue 17) end to end on the shipped synthetic image
//! set (`testdata/data/feature-space`). Detection needs the real (ImageNet) EfficientNet-Lite0,
//! whose features make a bright disc on stripes stand out; that test runs where the weights are
//! (`DMAD_EFFICIENTNET`, or `$DMAD_SHARED/weights`, as CI has them) and skips with a note
//! otherwise. The saving, loading and error tests write a seeded random Lite0 to a temporary
//! file and need nothing downloaded.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use dmad::data::Split;
use dmad::score::efficientnet::{random_weights, EfficientNetConfig};
use dmad::{Detector, DetectorConfig, Error, Modality, NetworkConfig, ScorerConfig};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/data/feature-space");

/// A seeded random Lite0 (no classifier) as safetensors at `path`.
fn write_lite0(path: &Path, seed: u64) {
    let mut cfg = EfficientNetConfig::lite0();
    cfg.num_classes = None;
    let w = random_weights(&cfg, seed).unwrap();
    candle_core::safetensors::save(&w, path).unwrap();
}

/// A small, fast feature-space detector on the 64x64 test images.
fn tiny(weights: PathBuf) -> DetectorConfig {
    let mut cfg = DetectorConfig::feature_diffusion(Modality::Image, 1);
    cfg.input.image_size = 64;
    cfg.input.flip_augment = false;
    let space = cfg.feature_space.as_mut().unwrap();
    space.extractor_size = 96; // 12x12 patches
    space.smoothing_sigma = 2.0;
    if let NetworkConfig::Mlp(m) = &mut cfg.network {
        m.width = 128;
        m.depth = 2;
    }
    cfg.train.steps = 1000;
    cfg.train.batch_size = 128;
    cfg.train.lr_warmup_steps = 10;
    cfg.scoring.feature_weights = Some(weights);
    cfg
}

fn data(split: Split) -> dmad::prepare::Labelled {
    dmad::prepare::images(DATA, split, 64, 1, &Device::Cpu).unwrap()
}

/// The real EfficientNet-Lite0 weights, if this machine has them.
fn lite0_weights() -> Option<PathBuf> {
    let rel = "weights/efficientnet-lite0.safetensors";
    [
        std::env::var_os("DMAD_EFFICIENTNET").map(PathBuf::from),
        std::env::var_os("DMAD_SHARED").map(|d| PathBuf::from(d).join(rel)),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared")
                .join(rel),
        ),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

#[test]
fn an_injected_defect_is_found_and_a_saved_model_scores_the_same() {
    finds_the_defect_and_round_trips(None);
}

#[test]
fn parametric_dte_on_patch_features_finds_the_defect_and_round_trips() {
    // The clean bin's surprisal: the expected time saturates at the last bin on these far
    // outliers (a bright disc on stripes), and its map's plateau reaches past the disc.
    finds_the_defect_and_round_trips(Some(ScorerConfig::DteCategorical {
        bins: 7,
        surprisal: true,
    }));
}

/// The tiny detector (with `scorer` instead of its denoising score) fitted on the shipped
/// stripes: image AUROC 1, every defect's map peaking inside the defect, and a saved model
/// scoring the same.
fn finds_the_defect_and_round_trips(scorer: Option<ScorerConfig>) {
    dmad::init_cpu();
    let Some(weights) = lite0_weights() else {
        eprintln!(
            "skipped: no EfficientNet-Lite0 weights (set DMAD_EFFICIENTNET, see \
             docs/EFFICIENTNET.md)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny(weights);
    if let Some(scorer) = scorer {
        cfg.scorer = scorer;
    }
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&data(Split::Train).x, |_| {}).unwrap();
    let test = data(Split::Test);
    let out = det.score(&test.x).unwrap();
    let auroc = dmad::evaluate(&out.scores, &test.labels, None)
        .unwrap()
        .auroc;
    assert_eq!(auroc, 1.0, "scores {:?}", out.scores);
    // Each defect image's map peaks inside its defect.
    let maps = out.maps.as_ref().unwrap();
    assert_eq!(maps.dims(), &[test.labels.len(), 64, 64]);
    let masks = test.masks.as_ref().unwrap();
    for (i, _) in test.labels.iter().enumerate().filter(|(_, &l)| l == 1) {
        let map: Vec<f32> = maps
            .get(i)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mask: Vec<f32> = masks
            .get(i)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let peak = (0..map.len())
            .max_by(|&a, &b| map[a].total_cmp(&map[b]))
            .unwrap();
        assert!(
            mask[peak] > 0.5,
            "{}: the map peaks at ({}, {}), outside the defect",
            test.sources[i],
            peak / 64,
            peak % 64
        );
    }
    // Save and load: the same scores and maps, and the extractor's identity in the config.
    let model = tmp.path().join("model");
    det.save(&model).unwrap();
    assert!(model.join("feature_space.safetensors").is_file());
    assert_eq!(
        model.join("dte.safetensors").is_file(),
        scorer.is_some(),
        "the time classifier is saved with (only) a DTE model"
    );
    let back = Detector::load(&model, &Device::Cpu).unwrap();
    let sha = back
        .config()
        .feature_space
        .as_ref()
        .unwrap()
        .extractor_sha256
        .clone();
    assert_eq!(sha.as_deref().map(str::len), Some(64));
    let again = back.score(&test.x).unwrap();
    assert_eq!(again.scores, out.scores);
    let diff = (again.maps.unwrap() - maps)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
}

#[test]
fn a_model_refuses_another_extractor_and_images_of_other_channels() {
    let (tmp, mut cfg) = random_lite0_model(5);
    cfg.train.steps = 2;
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    let train = data(Split::Train).x;
    det.fit(&train, |_| {}).unwrap();

    // Three-channel images on a one-channel model: named before any network runs.
    let rgb = Tensor::cat(&[&train, &train, &train], 1).unwrap();
    let err = det.score(&rgb).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("1 channel"), "{err}");

    // The weights file replaced by another network's: the saved model refuses it.
    let model = tmp.path().join("model");
    det.save(&model).unwrap();
    write_lite0(&tmp.path().join("lite0.safetensors"), 6);
    let err = Detector::load(&model, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::Model { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("SHA-256") && msg.contains("fitted"), "{msg}");
}

#[test]
fn feature_space_configs_are_checked() {
    let weights = PathBuf::from("unused.safetensors");
    // Tables have no EfficientNet features.
    let mut cfg = tiny(weights.clone());
    cfg.modality = Modality::Table;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("feature_space"), "{err}");
    // The pixel scorers do not apply.
    let mut cfg = tiny(weights.clone());
    cfg.scorer = dmad::ScorerConfig::Feature;
    assert!(cfg.validate().unwrap_err().to_string().contains("scorer"));
    // A missing weights file is an I/O error naming it.
    let err = Detector::new(tiny(weights), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("unused.safetensors"), "{err}");
}

/// A temporary directory holding random Lite0 weights (seeded by `seed`) and the tiny
/// feature-space configuration that reads them.
fn random_lite0_model(seed: u64) -> (tempfile::TempDir, DetectorConfig) {
    dmad::init_cpu();
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("lite0.safetensors");
    write_lite0(&weights, seed);
    let cfg = tiny(weights);
    (tmp, cfg)
}

#[test]
fn a_per_position_model_saves_its_statistics_and_scores_the_same_after_loading() {
    let (tmp, mut cfg) = random_lite0_model(7);
    cfg.train.steps = 5;
    cfg.feature_space.as_mut().unwrap().normalisation = dmad::PatchNorm::PerPosition;
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&data(Split::Train).x, |_| {}).unwrap();
    let test = data(Split::Test).x;
    let out = det.score(&test).unwrap();
    let model = tmp.path().join("model");
    det.save(&model).unwrap();
    // One mean and spread per patch position (96 / 8 = 12: 12x12) and feature.
    let stats =
        candle_core::safetensors::load(model.join("feature_space.safetensors"), &Device::Cpu)
            .unwrap();
    assert!(
        stats.values().all(|t| t.dims() == [144, 152]),
        "{:?}",
        stats
            .values()
            .map(|t| t.dims().to_vec())
            .collect::<Vec<_>>()
    );
    let back = Detector::load(&model, &Device::Cpu).unwrap();
    assert_eq!(
        back.config().feature_space.as_ref().unwrap().normalisation,
        dmad::PatchNorm::PerPosition
    );
    assert_eq!(back.score(&test).unwrap().scores, out.scores);
}

#[test]
fn a_parametric_dte_model_reloads_its_classifier_and_names_a_broken_one() {
    let (tmp, mut cfg) = random_lite0_model(9);
    cfg.scorer = ScorerConfig::DteCategorical {
        bins: 5,
        surprisal: true,
    };
    cfg.train.steps = 3;
    // With the patches' positions as two more inputs (saved in the config, rebuilt on load).
    cfg.feature_space.as_mut().unwrap().positional = true;
    if let NetworkConfig::Mlp(m) = &mut cfg.network {
        m.in_features += 2;
    }
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&data(Split::Train).x, |_| {}).unwrap();
    let test = data(Split::Test).x;
    let out = det.score(&test).unwrap();
    assert!(out.scores.iter().all(|s| s.is_finite()), "{:?}", out.scores);
    let model = tmp.path().join("model");
    det.save(&model).unwrap();
    let back = Detector::load(&model, &Device::Cpu).unwrap();
    assert!(back.config().feature_space.as_ref().unwrap().positional);
    assert_eq!(back.score(&test).unwrap().scores, out.scores);
    // The classifier takes the 152 features and the 2 positions.
    let w = candle_core::safetensors::load(model.join("dte.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(w["layers.0.weight"].dims()[1], 154);
    // Another file in the classifier's place is named, not used.
    std::fs::copy(
        model.join("feature_space.safetensors"),
        model.join("dte.safetensors"),
    )
    .unwrap();
    let err = Detector::load(&model, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dte.safetensors"), "{err}");
    // Fewer than two bins, or more than the schedule's timesteps, are named.
    for bins in [1, 100_000] {
        let mut cfg = det.config().clone();
        cfg.scorer = ScorerConfig::DteCategorical {
            bins,
            surprisal: false,
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("bins"), "{bins}: {err}");
    }
}

#[test]
fn early_stopping_measures_held_out_patches_and_needs_held_out_images() {
    let (_tmp, mut cfg) = random_lite0_model(5);
    cfg.train.steps = 12;
    cfg.train.validate_every = Some(5);
    let train = data(Split::Train).x;
    let mut det = Detector::new(cfg.clone(), &Device::Cpu).unwrap();
    det.fit(&train, |_| {}).unwrap();
    let report = det.validation().expect("a validation report");
    let steps: Vec<usize> = report.history.iter().map(|h| h.0).collect();
    assert_eq!(steps, [5, 10, 12]);
    assert!(report
        .history
        .contains(&(report.best_step, report.best_loss)));
    assert!(report.history.iter().all(|h| h.1.is_finite() && h.1 > 0.0));
    // Without held-out images there is nothing to measure: a named error.
    cfg.calibration_fraction = 0.0;
    let err = Detector::new(cfg, &Device::Cpu)
        .unwrap()
        .fit(&train, |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("validate_every"), "{err}");
}
