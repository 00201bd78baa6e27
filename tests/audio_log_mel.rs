//! Audio clips seen as their log-mel statistics (`AudioFeatures::LogMelStatistics`): the
//! shipped hum clips are fitted, their tonal and drop-out anomalies found, a saved model scores the same and
//! needs its input statistics, and configurations that cannot read rows are named; and clips
//! seen as log-mel images (`AudioFeatures::LogMelImage`) by the pixel-space U-Net.

use std::path::PathBuf;

use candle_core::Device;
use dmad::data::Split;
use dmad::{
    AudioFeatures, Detector, DetectorConfig, Error, InputConfig, MelStatistics, NetworkConfig,
    ScorerConfig,
};

/// The largest score of the clips of `kind`.
fn largest(kinds: &[String], scores: &[f32], kind: &str) -> f32 {
    kinds
        .iter()
        .zip(scores)
        .filter(|(k, _)| k.as_str() == kind)
        .map(|(_, &s)| s)
        .fold(f32::MIN, f32::max)
}

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
    // A mean, a deviation and a frame-difference deviation for each of the 64 bands.
    assert_eq!(train.x.dims(), [6, 192]);
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&train.x, |_| {}).unwrap();
    let out = det.score(&test.x).unwrap();
    // The whine and the drop-out change the clip's band levels and spreads, the click (8 ms
    // of a 1 s clip, which barely moves a band's mean or spread) the spread of its
    // frame-to-frame differences: all three score above every normal clip.
    let normal = largest(&test.kinds, &out.scores, "normal");
    for kind in ["whine", "dropout", "click"] {
        let s = largest(&test.kinds, &out.scores, kind);
        assert!(
            s > normal,
            "{kind}: {s} vs normal up to {normal}: {:?} {:?}",
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

    // Standardised log-mel rows are not clips: sampling normal ones is refused, by name.
    let gen = dmad::Generator::new(&back, dmad::GenerateConfig::default()).unwrap();
    let err = gen.normal(2, 0).unwrap_err().to_string();
    assert!(err.contains("audio_features"), "{err}");
    assert!(gen.normal_audio(2, 0).is_err());

    // Rows of another width are named, not scored.
    let narrow = test.x.narrow(1, 0, 64).unwrap();
    let err = back.score(&narrow).unwrap_err().to_string();
    assert!(err.contains("192"), "{err}");
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
    // The MLP's width must be the statistics' (3 per band).
    let mut cfg = config();
    cfg.input.n_mels = 40;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("192") && err.contains("120"), "{err}");
    if let NetworkConfig::Mlp(m) = &mut cfg.network {
        m.in_features = 120;
    }
    cfg.validate().unwrap();
    // A window's MLP takes its frames x bands.
    let mut cfg = DetectorConfig::for_audio_log_mel_features(AudioFeatures::LogMelWindows);
    cfg.input.n_mels = 40;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.contains("320") && err.contains("200") && err.contains("5 frames"),
        "{err}"
    );
    cfg.input.mel_window_frames = 0;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("mel_window_frames"), "{err}");
    // The scalogram scorers and the feature space need scalograms.
    let mut cfg = config();
    cfg.scorer = ScorerConfig::Combined { lambda: 0.5 };
    assert!(cfg.validate().unwrap_err().to_string().contains("scorer"));
    let mut cfg = config();
    cfg.feature_space = Some(dmad::FeatureSpaceConfig::default());
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("feature_space"), "{err}");
}

#[test]
fn log_mel_windows_score_clips_by_their_largest_window_and_map_them_over_time() {
    dmad::init_cpu();
    let mut cfg = DetectorConfig::for_audio_log_mel_features(AudioFeatures::LogMelWindows);
    cfg.train.steps = 200;
    let train = dmad::prepare::audio(hum(), Split::Train, &cfg.input, &Device::Cpu).unwrap();
    let test = dmad::prepare::audio(hum(), Split::Test, &cfg.input, &Device::Cpu).unwrap();
    // 1 s at 16 kHz: 59 whole frames, 55 windows of 5 frames x 64 bands.
    assert_eq!(train.x.dims(), [6, 55, 320]);
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&train.x, |_| {}).unwrap();
    let out = det.score(&test.x).unwrap();
    let maps = out.maps.as_ref().expect("a map over time");
    assert_eq!(maps.dims(), [6, 55]);
    // A clip's score is its largest window's.
    let window_max: Vec<f32> = maps.max(1).unwrap().to_vec1().unwrap();
    assert_eq!(window_max, out.scores);
    // The click (8 ms), which clip statistics average away, fills a window: it scores above
    // every normal clip. (After this short fit the whine and the drop-out do not: on the
    // protocol's sets the windows score below the statistics, docs/results/notes.md.)
    let normal = largest(&test.kinds, &out.scores, "normal");
    let click = largest(&test.kinds, &out.scores, "click");
    assert!(
        click > normal,
        "click {click} vs normal up to {normal}: {:?}",
        out.scores
    );

    let tmp = tempfile::tempdir().unwrap();
    det.save(tmp.path().join("m")).unwrap();
    let back = Detector::load(tmp.path().join("m"), &Device::Cpu).unwrap();
    assert_eq!(back.score(&test.x).unwrap().scores, out.scores);
    // Statistics rows are not windows.
    let stats_cfg = DetectorConfig::for_audio_log_mel();
    let stats = dmad::prepare::audio(hum(), Split::Test, &stats_cfg.input, &Device::Cpu).unwrap();
    let err = back.score(&stats.x).unwrap_err().to_string();
    assert!(err.contains("320"), "{err}");
}

#[test]
fn plain_statistics_are_the_delta_rows_head_and_each_model_keeps_its_own() {
    dmad::init_cpu();
    // The DCASE baselines' plain statistics: a mean and a deviation per band.
    let mut cfg = DetectorConfig::for_audio_log_mel_input(InputConfig {
        audio_features: AudioFeatures::LogMelStatistics,
        mel_statistics: MelStatistics::MeanStd,
        ..InputConfig::default()
    });
    cfg.train.steps = 200;
    let train = dmad::prepare::audio(hum(), Split::Train, &cfg.input, &Device::Cpu).unwrap();
    let test = dmad::prepare::audio(hum(), Split::Test, &cfg.input, &Device::Cpu).unwrap();
    assert_eq!(train.x.dims(), [6, 128]);
    // The default's delta rows begin with the same 128 numbers.
    let delta = dmad::prepare::audio(hum(), Split::Train, &config().input, &Device::Cpu).unwrap();
    let head: Vec<Vec<f32>> = delta.x.narrow(1, 0, 128).unwrap().to_vec2().unwrap();
    assert_eq!(head, train.x.to_vec2::<f32>().unwrap());
    let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
    det.fit(&train.x, |_| {}).unwrap();
    let out = det.score(&test.x).unwrap();
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
    det.save(tmp.path().join("m")).unwrap();
    let back = Detector::load(tmp.path().join("m"), &Device::Cpu).unwrap();
    assert_eq!(back.config().input.mel_statistics, MelStatistics::MeanStd);
    assert_eq!(back.score(&test.x).unwrap().scores, out.scores);
    // Delta rows are too wide for it, by name.
    let err = back.score(&delta.x).unwrap_err().to_string();
    assert!(err.contains("128"), "{err}");
    // A config whose MLP does not match its rows says what a row holds.
    let mut wrong = back.config().clone();
    wrong.input.mel_statistics = MelStatistics::MeanStdDelta;
    let err = wrong.validate().unwrap_err().to_string();
    assert!(
        err.contains("192") && err.contains("frame-difference"),
        "{err}"
    );
    // Models saved before the setting existed read as the plain statistics.
    let old: InputConfig =
        serde_json::from_str(r#"{"audio_features": "log_mel_statistics"}"#).unwrap();
    assert_eq!(old.mel_statistics, MelStatistics::MeanStd);
}

#[test]
fn choose_audio_refits_the_candidate_that_best_separates_generated_anomalies() {
    dmad::init_cpu();
    // Twelve one-second tones with noise: normal clips of a steady machine.
    let rate = 16_000usize;
    let mut state = 7u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let mut waves = Vec::with_capacity(12 * rate);
    for c in 0..12 {
        let f = 440.0 + 3.0 * c as f32;
        for i in 0..rate {
            let t = i as f32 / rate as f32;
            waves.push(0.3 * (2.0 * std::f32::consts::PI * f * t).sin() + 0.05 * noise());
        }
    }
    let waves = candle_core::Tensor::from_vec(waves, (12, rate), &Device::Cpu).unwrap();
    let mut plain = DetectorConfig::for_audio_log_mel_input(InputConfig {
        audio_features: AudioFeatures::LogMelStatistics,
        mel_statistics: MelStatistics::MeanStd,
        ..InputConfig::default()
    });
    plain.train.steps = 200;
    let mut delta = config();
    delta.train.steps = 200;
    let choice =
        dmad::choose::choose_audio(&waves, &[delta.clone(), plain.clone()], 0, &Device::Cpu)
            .unwrap();
    assert_eq!(choice.aurocs.len(), 2);
    assert!(
        choice.aurocs.iter().all(|a| (0.0..=1.0).contains(a)),
        "{:?}",
        choice.aurocs
    );
    // The chosen one has the best mean AUROC (the first on a tie) and comes back fitted on
    // every clip, ready to score rows of its own width.
    let best = choice.aurocs.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(choice.aurocs[choice.index], best);
    assert!(choice.aurocs[..choice.index].iter().all(|&a| a < best));
    let chosen = [&delta, &plain][choice.index];
    assert_eq!(choice.detector.config(), chosen);
    let width = chosen.input.log_mel_row_len();
    let rows =
        candle_core::Tensor::zeros((3, width), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(choice.detector.score(&rows).unwrap().scores.len(), 3);
}

/// A two-level U-Net on log-mel images (`AudioFeatures::LogMelImage`) of 32 bands and 16
/// columns.
fn image_config() -> DetectorConfig {
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

#[test]
fn log_mel_images_show_the_shipped_whine_and_drop_out_and_a_saved_model_scores_the_same() {
    dmad::init_cpu();
    let cfg = image_config();
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
    let mut cfg = image_config();
    cfg.input.n_mels = 31;
    let (f, reason) = field(cfg);
    assert_eq!(f, "input.n_mels");
    assert!(reason.contains("multiple of 2"), "{reason}");
    let mut cfg = image_config();
    cfg.input.image_size = 15;
    assert_eq!(field(cfg).0, "input.image_size");
    let mut cfg = image_config();
    cfg.feature_space = DetectorConfig::feature_diffusion(dmad::Modality::Audio, 1).feature_space;
    assert_eq!(field(cfg).0, "feature_space");
    // A clip of one second has 59 whole frames at hop 256: 64 columns are too many.
    let mut cfg = image_config();
    cfg.input.image_size = 64;
    let err = dmad::prepare::audio(hum(), Split::Train, &cfg.input, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("59 log-mel frames"), "{err}");
}
