//! The audio-to-scalogram path on the shipped DCASE clips.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Device;
use dmad_data::{
    AudioConfig, AudioScalogram, AudioScalogramConfig, Dataset, DcaseFolder, DcaseScalograms, Split,
};

fn hum() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data/audio/hum")
}

#[test]
fn dcase_clips_as_scalograms() -> anyhow::Result<()> {
    let cfg = AudioConfig {
        length: Some(16_000),
        ..AudioConfig::default()
    };
    let transform = Arc::new(AudioScalogram::new(&AudioScalogramConfig::default())?);
    let test = DcaseScalograms::new(
        DcaseFolder::open(hum(), Split::Test, &cfg)?,
        transform.clone(),
    )?;
    assert_eq!(test.len(), 6);
    let t0 = std::time::Instant::now();
    let items: Vec<_> = (0..test.len())
        .map(|i| test.get(i))
        .collect::<Result<_, _>>()?;
    println!("6 scalograms [1, 64, 250] in {:?}", t0.elapsed());
    for it in &items {
        assert_eq!(it.sample.image.dims(), &[1, 64, 250]);
        let v = it.sample.image.flatten_all()?.to_vec1::<f32>()?;
        assert!(v.iter().all(|p| p.is_finite() && (-1.0..=1.0).contains(p)));
    }
    // The 3 kHz whine (test clip 1) stands out in the row nearest 3 kHz against the normals.
    let row = (0..64)
        .min_by(|&a, &b| {
            (transform.frequencies()[a] - 3_000.0)
                .abs()
                .total_cmp(&(transform.frequencies()[b] - 3_000.0).abs())
        })
        .unwrap();
    let level = |i: usize| -> f32 {
        items[i]
            .sample
            .image
            .get(0)
            .unwrap()
            .get(row)
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    };
    assert_eq!(items[1].kind, "whine");
    let normals: Vec<usize> = (0..items.len()).filter(|&i| items[i].label == 0).collect();
    assert_eq!(normals, vec![3, 4, 5]);
    for normal in normals {
        assert!(
            level(1) > level(normal) + 0.1,
            "whine {} vs normal {}",
            level(1),
            level(normal)
        );
    }
    // A folder of another length is rejected.
    let other = DcaseFolder::open(hum(), Split::Test, &AudioConfig::default())?;
    assert!(DcaseScalograms::new(other, transform).is_err());
    Ok(())
}

#[test]
fn clip_round_trip_through_the_map() -> anyhow::Result<()> {
    let folder = DcaseFolder::open(hum(), Split::Train, &AudioConfig::default())?;
    let x = folder.waveform(0)?;
    let energy = |v: &[f32]| {
        v[1000..15_000]
            .iter()
            .map(|a| (*a as f64).powi(2))
            .sum::<f64>()
    };
    for hop in [1usize, 64] {
        let t = AudioScalogram::new(&AudioScalogramConfig {
            f_min: 20.0,
            n_scales: 96,
            hop,
            ..AudioScalogramConfig::default()
        })?;
        let s = t.forward(&x, &Device::Cpu)?;
        let y = t.inverse(&s, &s.image)?;
        let diff: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
        let rel = (energy(&diff) / energy(&x)).sqrt();
        println!("hop {hop}: relative round-trip error {rel:.4}");
        // Measured 0.022 (hop 1) and 0.048 (hop 64, frame averaging); ICWT of dmad-wavelets.
        let bound = if hop == 1 { 0.04 } else { 0.08 };
        assert!(rel < bound, "hop {hop}: relative error {rel}");
    }
    Ok(())
}
