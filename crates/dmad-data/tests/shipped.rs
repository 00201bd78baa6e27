//! Loads the small data the repository ships (testdata/data) through every loader.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use dmad_data::image::{load_image, load_mask};
use dmad_data::npy::{read_npy, read_npz};
use dmad_data::tabular::load_table_with_splits;
use dmad_data::{
    load_ucr_anomaly, read_npy_table, read_npz_table, read_wav, stack, AudioConfig, ColorMode,
    Dataset, DcaseFolder, ImageConfig, ImageFolder, NpyImages, ResizeFilter, ResizeMode, Split,
    TableConfig,
};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data")
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn textures_mvtec_layout_with_masks() -> anyhow::Result<()> {
    let root = data().join("textures-ad/brick");
    let mut cfg = ImageConfig::new(64, 64);
    cfg.resize = ResizeMode::Exact;
    let train = ImageFolder::mvtec(&root, Split::Train, &cfg)?;
    let test = ImageFolder::mvtec(&root, Split::Test, &cfg)?;
    assert_eq!((train.len(), test.len()), (8, 16));
    assert!(!train.has_masks() && test.has_masks());
    assert_eq!(test.labels().iter().filter(|&&l| l == 1).count(), 12);
    assert_eq!(test.kinds().iter().filter(|&&k| k == "good").count(), 4);

    // Every mask's area matches defects.csv (written by the generator).
    let csv = std::fs::read_to_string(root.join("defects.csv"))?;
    let areas: std::collections::HashMap<String, f32> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].parse().unwrap())
        })
        .collect();
    for i in 0..test.len() {
        let s = test.get(i)?;
        assert_eq!(s.image.dims(), &[1, 64, 64]);
        let (lo, hi) = (
            s.image.min_all()?.to_scalar::<f32>()?,
            s.image.max_all()?.to_scalar::<f32>()?,
        );
        assert!((-1.0..=1.0).contains(&lo) && (-1.0..=1.0).contains(&hi) && hi > lo);
        let mask = s.mask.expect("test samples carry masks");
        let area = mask.sum_all()?.to_scalar::<f32>()?;
        let key = s.source.split("brick/").nth(1).unwrap().to_string();
        assert_eq!(area, areas[&key], "{key}");
        assert_eq!(area > 0.0, s.label == 1);
    }

    // Batches of [B, C, H, W] with seeded shuffling.
    let batch = train.batches(3, Some(0)).next().unwrap()?;
    let images: Vec<Tensor> = batch.into_iter().map(|s| s.image).collect();
    assert_eq!(stack(&images)?.dims(), &[3, 1, 64, 64]);
    Ok(())
}

#[test]
fn image_values_resize_crop_and_rgb() -> anyhow::Result<()> {
    let file = data().join("textures-ad/brick/train/good/000.png");
    let raw = image::open(&file)?.to_luma8();
    let mut cfg = ImageConfig::new(64, 64);
    cfg.resize = ResizeMode::Exact;
    let t = load_image(&file, &cfg)?;
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    for (i, p) in raw.pixels().enumerate().step_by(97) {
        assert!(close(v[i] as f64, p.0[0] as f64 / 255.0 * 2.0 - 1.0, 1e-6));
    }
    // Centre crop: the central 32x32 pixels.
    cfg = ImageConfig::new(32, 32);
    cfg.resize = ResizeMode::CenterCrop;
    let c = load_image(&file, &cfg)?.to_vec3::<f32>()?;
    assert!(close(
        c[0][0][0] as f64,
        raw.get_pixel(16, 16).0[0] as f64 / 255.0 * 2.0 - 1.0,
        1e-6
    ));
    assert!(close(
        c[0][31][31] as f64,
        raw.get_pixel(47, 47).0[0] as f64 / 255.0 * 2.0 - 1.0,
        1e-6
    ));
    // Resize and RGB.
    cfg = ImageConfig::new(40, 24);
    cfg.resize = ResizeMode::Resize(ResizeFilter::Lanczos3);
    cfg.color = ColorMode::Rgb;
    let rgb = load_image(&file, &cfg)?;
    assert_eq!(rgb.dims(), &[3, 24, 40]);
    let diff = (rgb.get(0)? - rgb.get(2)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(diff, 0.0, "grey replicated to RGB");
    // Masks resize with the nearest neighbour and stay binary.
    let m = load_mask(
        data().join("textures-ad/brick/ground_truth/stain/000_mask.png"),
        (64, 64),
        &ImageConfig::new(32, 32),
    )?;
    let vals = m.flatten_all()?.to_vec1::<f32>()?;
    assert!(vals.iter().all(|&v| v == 0.0 || v == 1.0) && vals.contains(&1.0));
    // A plain folder of normal images.
    let plain = ImageFolder::plain(
        data().join("textures-ad/brick/train/good"),
        &ImageConfig::new(16, 16),
    )?;
    assert_eq!(plain.len(), 8);
    assert!(plain.get(7)?.mask.is_none());
    Ok(())
}

#[test]
fn npy_images_one_class() -> anyhow::Result<()> {
    let dir = data().join("npy");
    let mut cfg = ImageConfig::new(8, 8);
    cfg.resize = ResizeMode::Exact;
    let imgs = NpyImages::open(
        dir.join("images_u8_N8x8.npy"),
        Some(&dir.join("labels_u8.npy")),
        &cfg,
    )?;
    assert_eq!(imgs.len(), 10);
    assert_eq!(imgs.classes(), vec![3, 1, 3, 0, 3, 3, 1, 3, 2, 3]);
    let (train, test) = imgs.one_class(3);
    // class 3 at indices 0, 2, 4, 5, 7, 9; train: i % 5 != 0 -> 2, 4, 7, 9
    assert_eq!(train.len(), 4);
    // test: i % 5 == 0 -> 0 (class 3), 5 (class 3)
    assert_eq!((test.len(), test.labels().to_vec()), (2, vec![0, 0]));
    let (_, test1) = imgs.one_class(1);
    assert_eq!(test1.labels(), &[1, 1]);
    let raw = read_npy(dir.join("images_u8_N8x8.npy"))?;
    let s = train.get(0)?; // index 2
    assert_eq!(s.source.rsplit('#').next(), Some("2"));
    let v = s.image.flatten_all()?.to_vec1::<f32>()?;
    for (k, x) in v.iter().enumerate() {
        assert!(close(
            *x as f64,
            raw.data[2 * 64 + k] / 255.0 * 2.0 - 1.0,
            1e-6
        ));
    }
    let big = NpyImages::open(
        dir.join("images_u8_N8x8.npy"),
        None,
        &ImageConfig::new(28, 28),
    )?;
    assert_eq!(big.get(0)?.image.dims(), &[1, 28, 28]);
    Ok(())
}

#[test]
fn npy_and_npz_tables_match_numpy() -> anyhow::Result<()> {
    let dir = data().join("npy");
    let want: Vec<f64> = std::fs::read_to_string(dir.join("table_x.txt"))?
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    let labels = vec![0u8, 0, 1, 0, 0, 1];
    for t in [
        read_npy_table(dir.join("table_x_f8.npy"), dir.join("table_y_i8.npy"))?,
        read_npz_table(dir.join("table.npz"), "X", "y")?,
        read_npz_table(dir.join("table_compressed.npz"), "X", "y")?,
    ] {
        assert_eq!((t.rows(), t.cols()), (6, 3));
        assert_eq!(t.features, want);
        assert_eq!(t.labels, labels);
    }
    let f = read_npy(dir.join("table_x_f4_fortran.npy"))?;
    assert_eq!(f.shape, vec![6, 3]);
    for (a, b) in f.data.iter().zip(&want) {
        assert_eq!(*a, *b as f32 as f64);
    }
    let names: Vec<String> = read_npz(dir.join("table_compressed.npz"))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["X", "y"]);
    Ok(())
}

#[test]
fn ucr_135_series() -> anyhow::Result<()> {
    let (mut split, meta) = load_ucr_anomaly(
        data().join("ucr-anomaly/135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt"),
    )?;
    assert_eq!((meta.train_end, meta.begin, meta.end), (1200, 4187, 4199));
    assert_eq!(
        (split.train.len(), split.test.len(), split.test_offset),
        (1200, 6301, 1200)
    );
    assert_eq!(split.train.labels.iter().filter(|&&l| l == 1).count(), 0);
    let anomalous: Vec<usize> = (0..split.test.len())
        .filter(|&i| split.test.labels[i] == 1)
        .map(|i| i + 1200)
        .collect();
    assert_eq!(anomalous, (4187..4199).collect::<Vec<_>>());
    assert!(close(split.train.values[0] as f64, 63.73215, 1e-6));
    let n = split.normalise();
    let mean: f64 = split.train.values.iter().map(|&v| v as f64).sum::<f64>() / 1200.0;
    assert!(mean.abs() < 1e-5 && n.std[0] > 0.0);
    let (w, starts) = dmad_data::windows(&split.test, 128, 64, &Device::Cpu)?;
    assert_eq!(w.dims(), &[starts.len(), 1, 128]);
    assert_eq!(*starts.last().unwrap(), 6301 - 128);
    Ok(())
}

#[test]
fn shipped_tables_and_splits() -> anyhow::Result<()> {
    for (name, rows, anomalies, cols) in [
        ("wbc", 378, 21, 30),
        ("breastw", 683, 239, 9),
        ("glass", 214, 9, 9),
    ] {
        let (table, splits) =
            load_table_with_splits(data().join("tabular"), name, &TableConfig::default())?;
        assert_eq!(
            (table.rows(), table.cols(), splits.anomalies),
            (rows, cols, anomalies),
            "{name}"
        );
        assert_eq!(splits.splits.len(), 5);
        for sp in &splits.splits {
            let s = table.split(sp)?;
            assert_eq!(
                s.train_labels.len(),
                (rows - anomalies) / 2,
                "{name} seed {}",
                sp.seed
            );
            assert!(s.train_labels.iter().all(|&l| l == 0));
            assert_eq!(s.test_labels.iter().filter(|&&l| l == 1).count(), anomalies);
            // Standardised train columns: mean 0, and std 1 (or all 0 for a constant feature).
            for c in 0..cols {
                let col: Vec<f64> = s
                    .train
                    .iter()
                    .skip(c)
                    .step_by(cols)
                    .map(|&v| v as f64)
                    .collect();
                let m = col.iter().sum::<f64>() / col.len() as f64;
                let sd =
                    (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / col.len() as f64).sqrt();
                assert!(m.abs() < 1e-5, "{name} col {c} mean {m}");
                assert!(
                    close(sd, 1.0, 1e-5) || col.iter().all(|&v| v == 0.0),
                    "{name} col {c} std {sd}"
                );
            }
            assert_eq!(
                s.test_tensor(&Device::Cpu)?.dims(),
                &[s.test_labels.len(), cols]
            );
        }
    }
    Ok(())
}

#[test]
fn dcase_hum_clips() -> anyhow::Result<()> {
    let root = data().join("audio/hum");
    let cfg = AudioConfig::default();
    let train = DcaseFolder::open(&root, Split::Train, &cfg)?;
    let test = DcaseFolder::open(&root, Split::Test, &cfg)?;
    assert_eq!((train.len(), test.len()), (6, 6));
    assert_eq!(test.labels(), vec![1, 1, 1, 0, 0, 0]);
    assert_eq!(
        test.kinds(),
        vec!["click", "whine", "dropout", "normal", "normal", "normal"]
    );
    let s = test.get(0)?;
    assert_eq!(s.waveform.dims(), &[1, 16_000]);
    assert_eq!(s.waveform.dtype(), DType::F32);
    let wav = read_wav(train.paths().next().unwrap())?;
    assert_eq!(
        (wav.sample_rate, wav.channels, wav.samples.len()),
        (16_000, 1, 16_000)
    );
    // At 8 kHz the clip is resampled to half its length.
    let half = DcaseFolder::open(
        &root,
        Split::Train,
        &AudioConfig {
            sample_rate: 8_000,
            ..AudioConfig::default()
        },
    )?;
    assert_eq!(half.waveform(0)?.len(), 8_000);
    let batch = train.batches(4, Some(1)).next().unwrap()?;
    assert_eq!(batch.len(), 4);
    Ok(())
}

#[test]
fn gzipped_headerless_digits() -> anyhow::Result<()> {
    let cfg = TableConfig {
        label_column: "64".into(),
        has_header: false,
        ..TableConfig::default()
    };
    let t = dmad_data::read_csv_table(data().join("tabular/digits_head.csv.gz"), &cfg)?;
    assert_eq!((t.rows(), t.cols()), (50, 64));
    assert_eq!(
        t.classes[..12],
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 0.0, 1.0]
    );
    assert_eq!(&t.row(0)[..8], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
    Ok(())
}
