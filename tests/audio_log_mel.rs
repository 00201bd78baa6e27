//! Audio clips seen as their log-mel statistics (`AudioFeatures::LogMelStatistics`): the
//! shipped hum clips are fitted, their tonal and drop-out anomalies found, a saved model scores the same and
//! needs its input statistics, and configurations that cannot read rows are named.

use std::path::PathBuf;

use candle_core::Device;
use dmad::data::Split;
use dmad::{AudioFeatures, Detector, DetectorConfig, NetworkConfig, ScorerConfig};

fn hum() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/data/audio/hum")
}

fn config() -> DetectorConfig {
    let mut cfg = DetectorConfig::for_audio_log_mel();
    cfg.train.steps = 200;
    cfg
}

#[test]
fn log_mel_statistics_find_the_shipped_anomalies_and_a_saved_model_scores_the_same() {
    dmad::init_cpu();
    let cfg = config();
    let train = dmad::prepare::audio(hum(), Split::Train, &cfg.input, &Device::Cpu).unwrap();
    let test = dmad::prepare::audio(hum(), Split::Test, &cfg.input, &Device::Cpu).unwrap();
    // A mean and a deviation for each of the 64 bands.
    assert_eq!(train.x.dims(), [6, 128]);
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&train.x, |_| {}).unwrap();
    let out = det.score(&test.x).unwrap();
    // The whine and the drop-out change the clip's band levels and spreads: both score above
    // every normal clip. The click (8 ms of a 1 s clip) barely moves a clip statistic and is
    // not asserted: clip statistics average short transients away (the 5-frame log-mel
    // windows of the DCASE baselines keep them).
    let score = |kind: &str| out.scores[test.kinds.iter().position(|k| k == kind).unwrap()];
    let normal = test
        .kinds
        .iter()
        .zip(&out.scores)
        .filter(|(k, _)| *k == "normal")
        .map(|(_, &s)| s)
        .fold(f32::MIN, f32::max);
    for kind in ["whine", "dropout"] {
        assert!(
            score(kind) > normal,
            "{kind}: {} vs normal up to {normal}: {:?} {:?}",
            score(kind),
            out.scores,
            test.kinds
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    det.save(&model).unwrap();
    let back = Detector::load(&model, &Device::Cpu).unwrap();
    assert_eq!(
        back.config().input.audio_features,
        AudioFeatures::LogMelStatistics
    );
    assert_eq!(back.score(&test.x).unwrap().scores, out.scores);

    // Rows of another width are named, not scored.
    let narrow = test.x.narrow(1, 0, 64).unwrap();
    let err = back.score(&narrow).unwrap_err().to_string();
    assert!(err.contains("128"), "{err}");
    // The training clips' statistics are part of the model.
    std::fs::remove_file(model.join("input_stats.safetensors")).unwrap();
    let err = Detector::load(&model, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("input_stats.safetensors"), "{err}");
}

#[test]
fn log_mel_configs_that_cannot_read_rows_are_named() {
    // A U-Net does not take rows.
    let mut cfg = config();
    cfg.network = DetectorConfig::for_audio().network;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("network") && err.contains("MLP"), "{err}");
    // The MLP's width must be the statistics' (2 per band).
    let mut cfg = config();
    cfg.input.n_mels = 40;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("128") && err.contains("80"), "{err}");
    if let NetworkConfig::Mlp(m) = &mut cfg.network {
        m.in_features = 80;
    }
    cfg.validate().unwrap();
    // The scalogram scorers and the feature space need scalograms.
    let mut cfg = config();
    cfg.scorer = ScorerConfig::Combined { lambda: 0.5 };
    assert!(cfg.validate().unwrap_err().to_string().contains("scorer"));
    let mut cfg = config();
    cfg.feature_space = Some(dmad::FeatureSpaceConfig::default());
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("feature_space"), "{err}");
}
