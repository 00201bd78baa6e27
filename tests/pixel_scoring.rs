//! The pixel-space pipeline's options (issue 18): DDAD's conditioned reconstruction, map-level
//! scores, tiling of large images, and the named errors of bad sizes.

use candle_core::{Device, Tensor};
use dmad::{Detector, DetectorConfig, Error, MapScore, Modality, ScorerConfig};

fn tiny_images(size: u32) -> DetectorConfig {
    let mut cfg = DetectorConfig::for_images(1);
    if let dmad::NetworkConfig::Unet2d(u) = &mut cfg.network {
        u.block_out_channels = vec![8, 8];
        u.down_block_types = vec![dmad::unet::DownBlockType::DownBlock; 2];
        u.up_block_types = vec![dmad::unet::UpBlockType::UpBlock; 2];
        u.norm_num_groups = Some(4);
        u.modules = dmad::unet::ModulesConfig::none();
    }
    cfg.input.image_size = size;
    cfg.train.steps = 3;
    cfg.train.batch_size = 4;
    cfg.scoring.steps = 10;
    cfg.scoring.strength = 0.3;
    cfg.scoring.batch_size = 3;
    cfg.scorer = ScorerConfig::Reconstruction;
    cfg
}

fn images(n: usize, size: usize, seed: u64) -> Tensor {
    let v: Vec<f32> = (0..n * size * size)
        .map(|i| {
            let h = (i as u64 + 1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(seed);
            ((h >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
        })
        .collect();
    Tensor::from_vec(v, (n, 1, size, size), &Device::Cpu).unwrap()
}

fn field_of(e: &Error) -> &'static str {
    match e {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other}"),
    }
}

#[test]
fn a_large_conditioning_weight_reconstructs_the_input() -> anyhow::Result<()> {
    let x = images(6, 16, 1);
    let mut cfg = tiny_images(16);
    cfg.calibration_fraction = 0.5;
    let mut det = Detector::new(cfg.clone(), &Device::Cpu)?;
    det.fit(&x, |_| {})?;
    let free = det.score(&x)?.scores;
    let mut scoring = cfg.scoring.clone();
    scoring.condition = 1e9;
    det.set_scoring(ScorerConfig::Reconstruction, scoring, &x)?;
    let pulled = det.score(&x)?.scores;
    for (f, p) in free.iter().zip(&pulled) {
        assert!(*p < 1e-8 && *f > 1e-4, "unguided {f}, conditioned {p}");
    }
    Ok(())
}

#[test]
fn the_map_score_summarises_the_smoothed_map() -> anyhow::Result<()> {
    let x = images(6, 16, 2);
    let mut cfg = tiny_images(16);
    cfg.scoring.smoothing_sigma = 1.5;
    let mut det = Detector::new(cfg.clone(), &Device::Cpu)?;
    det.fit(&x, |_| {})?;
    let mean = det.score(&x)?;
    for (how, k) in [(MapScore::Max, 1usize), (MapScore::TopKMean { k: 10 }, 10)] {
        let mut scoring = cfg.scoring.clone();
        scoring.map_score = how;
        det.set_scoring(ScorerConfig::Reconstruction, scoring, &x)?;
        let out = det.score(&x)?;
        let maps = out.maps.unwrap().flatten_from(1)?.to_vec2::<f32>()?;
        for (s, mut m) in out.scores.iter().zip(maps) {
            m.sort_by(|a, b| b.total_cmp(a));
            let want = m[..k].iter().sum::<f32>() / k as f32;
            assert!(
                (s - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{how:?}: {s} {want}"
            );
        }
        // The map is the same smoothed map whatever summarises it.
        assert_eq!(
            det.score(&x)?.maps.unwrap().to_vec3::<f32>()?,
            mean.maps.as_ref().unwrap().to_vec3::<f32>()?
        );
    }
    Ok(())
}

#[test]
fn a_tiled_detector_trains_on_tiles_and_stitches_whole_maps() -> anyhow::Result<()> {
    let x = images(4, 24, 3);
    let mut cfg = tiny_images(24);
    cfg.input.tile_size = Some(16);
    cfg.input.tile_overlap = 6;
    cfg.scoring.map_score = MapScore::Max;
    let mut det = Detector::new(cfg.clone(), &Device::Cpu)?;
    det.fit(&x, |_| {})?;
    let out = det.score(&x)?;
    let maps = out.maps.clone().unwrap();
    assert_eq!(maps.dims(), &[4, 24, 24]);
    for (s, m) in out
        .scores
        .iter()
        .zip(maps.flatten_from(1)?.to_vec2::<f32>()?)
    {
        assert_eq!(*s, m.iter().copied().fold(f32::MIN, f32::max));
    }
    let dir = tempfile::tempdir()?;
    det.save(dir.path().join("m"))?;
    let back = Detector::load(dir.path().join("m"), &Device::Cpu)?;
    assert_eq!(back.score(&x)?.scores, out.scores);
    // Images smaller than a tile are refused with the shape named.
    let small = images(2, 12, 4);
    assert!(matches!(
        det.score(&small),
        Err(Error::Score(dmad::score::Error::Core(
            dmad::core::Error::ShapeMismatch { .. }
        ))) | Err(Error::ShapeMismatch { .. })
    ));
    Ok(())
}

#[test]
fn one_tile_of_the_whole_image_is_the_untiled_detector() -> anyhow::Result<()> {
    let x = images(5, 16, 5);
    let cfg = tiny_images(16);
    let mut tiled = cfg.clone();
    tiled.input.tile_size = Some(16);
    let mut a = Detector::new(cfg, &Device::Cpu)?;
    a.fit(&x, |_| {})?;
    let mut b = Detector::new(tiled, &Device::Cpu)?;
    b.fit(&x, |_| {})?;
    let (sa, sb) = (a.score(&x)?, b.score(&x)?);
    assert_eq!(sa.scores, sb.scores);
    assert_eq!(
        sa.maps.unwrap().to_vec3::<f32>()?,
        sb.maps.unwrap().to_vec3::<f32>()?
    );
    Ok(())
}

#[test]
fn bad_sizes_and_pooling_settings_are_named() {
    let new = |cfg: DetectorConfig| Detector::new(cfg, &Device::Cpu).unwrap_err();
    let mut c = tiny_images(24);
    c.input.tile_size = Some(32);
    assert_eq!(field_of(&new(c)), "input.tile_size");
    let mut c = tiny_images(24);
    c.input.tile_size = Some(16);
    c.input.tile_overlap = 16;
    assert_eq!(field_of(&new(c)), "input.tile_overlap");
    // Two U-Net levels halve the side once: odd sides do not fit.
    assert_eq!(field_of(&new(tiny_images(25))), "input.image_size");
    let mut c = tiny_images(24);
    c.input.tile_size = Some(15);
    assert_eq!(field_of(&new(c)), "input.tile_size");
    assert_eq!(field_of(&new(tiny_images(4))), "input.image_size");
    let mut c = DetectorConfig::for_series(1);
    c.input.tile_size = Some(16);
    assert_eq!(field_of(&new(c)), "input.tile_size");
    let mut c = DetectorConfig::for_tables(4);
    c.scoring.map_score = MapScore::Max;
    assert_eq!(field_of(&new(c)), "scoring.map_score");
    let mut c = tiny_images(16);
    c.scoring.map_score = MapScore::TopKMean { k: 0 };
    assert_eq!(field_of(&new(c)), "scoring.map_score");
    let mut c = tiny_images(16);
    c.scoring.condition = -1.0;
    assert_eq!(field_of(&new(c)), "scoring.condition");
    let mut c = tiny_images(16);
    c.scoring.smoothing_sigma = f64::NAN;
    assert_eq!(field_of(&new(c)), "scoring.smoothing_sigma");
    assert_eq!(tiny_images(16).modality, Modality::Image);
}
