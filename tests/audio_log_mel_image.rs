//! Audio clips seen as log-mel images (`AudioFeatures::LogMelImage`) by the pixel-space
//! U-Net: the shipped hum clips become band-standardised images, the whine and the drop-out
//! stand out of their reconstruction, a saved model scores the same and needs its band
//! statistics, and sizes the U-Net cannot halve are named.

use std::path::PathBuf;

use candle_core::Device;
use dmad::data::Split;
use dmad::{AudioFeatures, Detector, DetectorConfig, Error, ScorerConfig};

fn hum() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/data/audio/hum")
}

/// A two-level U-Net on log-mel images of 32 bands and 16 columns.
fn config() -> DetectorConfig {
    let mut cfg = DetectorConfig::for_audio();
    cfg.input.audio_features = AudioFeatures::LogMelImage;
    cfg.input.n_mels = 32;
    cfg.input.image_size = 16;
    if let dmad::NetworkConfig::Unet2d(u) = &mut cfg.network {
        u.block_out_channels = vec![8, 8];
        u.down_block_types = vec![dmad::unet::DownBlockType::DownBlock; 2];
        u.up_block_types = vec![dmad::unet::UpBlockType::UpBlock; 2];
        u.norm_num_groups = Some(4);
        u.modules = dmad::unet::ModulesConfig::none();
    }
    cfg.train.steps = 200;
    cfg.train.batch_size = 6;
    cfg.scoring.steps = 10;
    cfg.scoring.strength = 0.3;
    cfg.scorer = ScorerConfig::Reconstruction;
    cfg
}

fn largest(kinds: &[String], scores: &[f32], kind: &str) -> f32 {
    kinds
        .iter()
        .zip(scores)
        .filter(|(k, _)| k.as_str() == kind)
        .map(|(_, &s)| s)
        .fold(f32::MIN, f32::max)
}

#[test]
fn log_mel_images_show_the_shipped_whine_and_drop_out_and_a_saved_model_scores_the_same() {
    dmad::init_cpu();
    let cfg = config();
    let dev = Device::Cpu;
    let train = dmad::prepare::audio(hum(), Split::Train, &cfg.input, &dev).unwrap();
    let test = dmad::prepare::audio(hum(), Split::Test, &cfg.input, &dev).unwrap();
    assert_eq!(train.x.dims(), [6, 1, 32, 16]);
    let mut det = Detector::new(cfg, &dev).unwrap();
    det.fit(&train.x, |_| {}).unwrap();
    let out = det.score(&test.x).unwrap();
    assert_eq!(out.maps.as_ref().unwrap().dims(), [6, 32, 16]);
    // Each band is standardised with the training clips' statistics: a whine lifts a band
    // that is quiet in every normal clip, a drop-out silences them all, far outside what the
    // network learnt to reconstruct.
    let normal = largest(&test.kinds, &out.scores, "normal");
    for kind in ["whine", "dropout"] {
        let s = largest(&test.kinds, &out.scores, kind);
        assert!(
            s > normal,
            "{kind}: {s} vs normal up to {normal}: {:?}",
            out.scores
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    det.save(&model).unwrap();
    let back = Detector::load(&model, &dev).unwrap();
    assert_eq!(
        back.config().input.audio_features,
        AudioFeatures::LogMelImage
    );
    assert_eq!(back.score(&test.x).unwrap().scores, out.scores);
    // Standardised images are not clips: sampling normal ones is refused, by name.
    let gen = dmad::Generator::new(&back, dmad::GenerateConfig::default()).unwrap();
    let err = gen.normal(2, 0).unwrap_err().to_string();
    assert!(err.contains("audio_features"), "{err}");
    // Images of another band count are named, not scored.
    let err = back
        .score(&test.x.narrow(2, 0, 16).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("[clips, 1, 32, columns]"), "{err}");
    // The training clips' band statistics are part of the model.
    std::fs::remove_file(model.join("input_stats.safetensors")).unwrap();
    let err = Detector::load(&model, &dev).unwrap_err().to_string();
    assert!(err.contains("input_stats.safetensors"), "{err}");
}

#[test]
fn log_mel_image_sizes_the_u_net_cannot_halve_and_the_feature_space_are_named() {
    let field = |cfg: DetectorConfig| match cfg.validate() {
        Err(Error::InvalidConfig { field, reason }) => (field, reason),
        other => panic!("expected a named config error, got {other:?}"),
    };
    let mut cfg = config();
    cfg.input.n_mels = 31;
    let (f, reason) = field(cfg);
    assert_eq!(f, "input.n_mels");
    assert!(reason.contains("multiple of 2"), "{reason}");
    let mut cfg = config();
    cfg.input.image_size = 15;
    assert_eq!(field(cfg).0, "input.image_size");
    let mut cfg = config();
    cfg.feature_space = DetectorConfig::feature_diffusion(dmad::Modality::Audio, 1).feature_space;
    assert_eq!(field(cfg).0, "feature_space");
    // A clip of one second has 59 whole frames at hop 256: 64 columns are too many.
    let mut cfg = config();
    cfg.input.image_size = 64;
    let err = dmad::prepare::audio(hum(), Split::Train, &cfg.input, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("59 log-mel frames"), "{err}");
}
