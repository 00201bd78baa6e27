//! Loads all of the benchmark data folder and checks the counts against its PROTOCOL.md and
//! README.md. Runs only when `DMAD_DATA` is set (`.ci/run` sets it to `../shared/data`):
//!
//! ```bash
//! DMAD_DATA=../shared/data cargo test -p dmad-data --test shared_data -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use dmad_data::tabular::load_table_with_splits;
use dmad_data::timeseries::NAB_TRAIN_FRACTION;
use dmad_data::{
    load_gutentag, load_labelled_csv, load_nab_all, load_ucr_anomaly, load_ucr_one_class,
    AudioConfig, Dataset, DcaseFolder, ImageConfig, ImageFolder, NpyImages, ResizeMode, Split,
    TableConfig,
};

fn root() -> Option<PathBuf> {
    match std::env::var_os("DMAD_DATA") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            println!("DMAD_DATA is not set: skipping the benchmark-data check");
            None
        }
    }
}

fn exact(w: u32, h: u32) -> ImageConfig {
    let mut c = ImageConfig::new(w, h);
    c.resize = ResizeMode::Exact;
    c
}

/// Decodes every sample (each must load).
fn decode_all<D: Dataset>(ds: &D) -> anyhow::Result<()> {
    for b in ds.batches(64, None) {
        b?;
    }
    Ok(())
}

#[test]
fn images() -> anyhow::Result<()> {
    let Some(root) = root() else { return Ok(()) };
    let img = root.join("images");

    // ELPV: 400 train good, 188 test good, 369 test defect; 300x300 grey, no masks.
    let elpv = img.join("elpv-mono");
    let train = ImageFolder::mvtec(&elpv, Split::Train, &exact(300, 300))?;
    let test = ImageFolder::mvtec(&elpv, Split::Test, &exact(300, 300))?;
    let defects = test.labels().iter().filter(|&&l| l == 1).count();
    println!(
        "elpv-mono: train {}, test good {}, test defect {}",
        train.len(),
        test.len() - defects,
        defects
    );
    assert_eq!(
        (train.len(), test.len() - defects, defects),
        (400, 188, 369)
    );
    assert!(!test.has_masks());
    decode_all(&train)?;
    decode_all(&test)?;

    // textures-ad: 120 train good, 40 test good, 20 per defect type, masks.
    for cat in ["brick", "grass"] {
        let dir = img.join("textures-ad").join(cat);
        let train = ImageFolder::mvtec(&dir, Split::Train, &exact(256, 256))?;
        let test = ImageFolder::mvtec(&dir, Split::Test, &exact(256, 256))?;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for k in test.kinds() {
            *kinds.entry(k).or_default() += 1;
        }
        println!("textures-ad/{cat}: train {}, test {kinds:?}", train.len());
        assert_eq!(train.len(), 120);
        let want: BTreeMap<&str, usize> = [
            ("cut_paste", 20),
            ("good", 40),
            ("hole", 20),
            ("scratch", 20),
            ("stain", 20),
            ("thread", 20),
        ]
        .into();
        assert_eq!(kinds, want);
        assert!(test.has_masks());
        decode_all(&train)?;
        for i in 0..test.len() {
            let s = test.get(i)?;
            let area = s.mask.expect("mask").sum_all()?.to_scalar::<f32>()?;
            assert_eq!(area > 0.0, s.label == 1, "{}", s.source);
        }
    }

    // Plain folder: the three 512x512 textures.
    let tex = ImageFolder::plain(img.join("textures"), &exact(512, 512))?;
    println!("textures: {}", tex.len());
    assert_eq!(tex.len(), 3);
    decode_all(&tex)?;

    // MNIST: 10,000 digits, one-class per digit (train i % 5 != 0 of the digit, test i % 5 == 0).
    let mnist = img.join("mnist");
    let all = NpyImages::open(
        mnist.join("images_u8_N28x28.npy"),
        Some(&mnist.join("labels_u8.npy")),
        &exact(28, 28),
    )?;
    assert_eq!(all.len(), 10_000);
    let classes = all.classes();
    let mut train_total = 0;
    for d in 0..10 {
        let (train, test) = all.one_class(d);
        let want = (0..10_000)
            .filter(|&i| i % 5 != 0 && classes[i] == d)
            .count();
        assert_eq!(train.len(), want);
        assert_eq!(test.len(), 2_000);
        let normals = test.labels().iter().filter(|&&l| l == 0).count();
        assert_eq!(
            normals,
            (0..10_000)
                .filter(|&i| i % 5 == 0 && classes[i] == d)
                .count()
        );
        train_total += train.len();
    }
    // scikit-learn digits: 1,797 rows of 64 pixels + class, gzipped, no header.
    let digits = dmad_data::read_csv_table(
        img.join("digits/digits.csv.gz"),
        &TableConfig {
            label_column: "64".into(),
            has_header: false,
            ..TableConfig::default()
        },
    )?;
    let mut per_class = [0usize; 10];
    for &c in &digits.classes {
        per_class[c as usize] += 1;
    }
    println!(
        "digits: {} rows x {} pixels, per class {per_class:?}",
        digits.rows(),
        digits.cols()
    );
    assert_eq!((digits.rows(), digits.cols()), (1_797, 64));
    assert!(per_class.iter().all(|&n| (170..=185).contains(&n)));

    println!("mnist: 10000 images, one-class train sizes sum {train_total}, test 2000 per digit");
    assert_eq!(train_total, 8_000);
    decode_all(&all)?;
    Ok(())
}

#[test]
fn time_series() -> anyhow::Result<()> {
    let Some(root) = root() else { return Ok(()) };
    let ts = root.join("timeseries");

    let (ucr, meta) = load_ucr_anomaly(
        ts.join("ucr-anomaly/135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt"),
    )?;
    println!(
        "ucr-anomaly #135: train {}, test {}, anomaly [{}, {})",
        ucr.train.len(),
        ucr.test.len(),
        meta.begin,
        meta.end
    );
    assert_eq!((ucr.train.len(), ucr.test.len()), (1200, 6301));
    assert_eq!(ucr.test.labels.iter().filter(|&&l| l == 1).count(), 12);

    let nab = load_nab_all(ts.join("nab"))?;
    assert_eq!(nab.len(), 1);
    let taxi = &nab[0];
    let n = taxi.train.len() + taxi.test.len();
    let anomalous = taxi
        .test
        .labels
        .iter()
        .chain(&taxi.train.labels)
        .filter(|&&l| l == 1)
        .count();
    println!(
        "nab {}: {n} points, train {}, anomalous points {anomalous}",
        taxi.name,
        taxi.train.len()
    );
    assert_eq!(n, 10_320);
    assert_eq!(taxi.train.len(), (NAB_TRAIN_FRACTION * 10_320.0) as usize);
    // Five windows of 4 days 7 hours at 30-minute steps: 5 * 207 points, all after the train part.
    assert_eq!(anomalous, 5 * 207);
    assert_eq!(taxi.train.labels.iter().filter(|&&l| l == 1).count(), 0);

    let yahoo = load_labelled_csv(ts.join("labelled-csv/yahoo.csv"), &Default::default())?;
    let ya = yahoo
        .train
        .labels
        .iter()
        .chain(&yahoo.test.labels)
        .filter(|&&l| l == 1)
        .count();
    println!(
        "yahoo: train {}, test {}, anomalies {ya}",
        yahoo.train.len(),
        yahoo.test.len()
    );
    assert_eq!((yahoo.train.len(), yahoo.test.len(), ya), (300, 700, 7));

    let g = load_gutentag(ts.join("gutentag"), "ecg-diff-count-3")?;
    let ga = g.test.labels.iter().filter(|&&l| l == 1).count();
    println!(
        "gutentag: train {}, test {}, anomalous test points {ga}",
        g.train.len(),
        g.test.len()
    );
    assert_eq!((g.train.len(), g.test.len(), ga), (10_000, 10_000, 300));
    assert!(g.train.labels.iter().all(|&l| l == 0));

    // UCR 2018 classification sets used one-class: (name, TRAIN rows, TEST rows).
    let sets = [
        ("ArrowHead", 36, 175),
        ("BME", 30, 150),
        ("Beef", 30, 30),
        ("BeetleFly", 20, 20),
        ("BirdChicken", 20, 20),
        ("Chinatown", 20, 343),
        ("Computers", 250, 250),
        ("DodgerLoopDay", 78, 80),
        ("ECG200", 100, 100),
        ("Earthquakes", 322, 139),
        ("FaceFour", 24, 88),
        ("FordA", 3601, 1320),
    ];
    for (name, n_train, n_test) in sets {
        let oc = load_ucr_one_class(ts.join("ucr").join(name))?;
        let anomalies = oc.test_labels.iter().filter(|&&l| l == 1).count();
        println!(
            "ucr/{name}: normal class {}, train {} of {n_train}, test {} ({anomalies} anomalies)",
            oc.normal_class,
            oc.train.len(),
            oc.test.len()
        );
        assert_eq!(oc.test.len(), n_test, "{name}");
        assert!(!oc.train.is_empty() && oc.train.len() < n_train, "{name}");
        assert!(anomalies > 0 && anomalies < n_test, "{name}");
    }
    Ok(())
}

#[test]
fn audio() -> anyhow::Result<()> {
    let Some(root) = root() else { return Ok(()) };
    let cfg = AudioConfig {
        length: Some(16_000),
        ..AudioConfig::default()
    };
    for set in ["mining-hard", "sawmill-hard"] {
        let dir = root.join("audio").join(set);
        let train = DcaseFolder::open(&dir, Split::Train, &cfg)?;
        let test = DcaseFolder::open(&dir, Split::Test, &cfg)?;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for k in test.kinds() {
            *kinds.entry(k).or_default() += 1;
        }
        println!("audio/{set}: train {}, test {kinds:?}", train.len());
        assert_eq!(train.len(), 120);
        let want: BTreeMap<&str, usize> = [
            ("dropout", 15),
            ("event", 15),
            ("hum", 15),
            ("normal", 60),
            ("speed", 15),
        ]
        .into();
        assert_eq!(kinds, want);
        for ds in [&train, &test] {
            for i in 0..ds.len() {
                let (rate, ch, frames) = dmad_data::audio::wav_info(ds.paths().nth(i).unwrap())?;
                assert_eq!((rate, ch, frames), (16_000, 1, 16_000));
                assert_eq!(ds.waveform(i)?.len(), 16_000);
            }
        }
        // The scalogram path on the first normal and the first anomalous test clip.
        let maps = dmad_data::DcaseScalograms::new(
            test,
            std::sync::Arc::new(dmad_data::AudioScalogram::new(&Default::default())?),
        )?;
        for i in [0, maps.len() - 1] {
            let it = maps.get(i)?;
            assert_eq!(it.sample.image.dims(), &[1, 64, 250]);
        }
    }
    Ok(())
}

#[test]
fn tables() -> anyhow::Result<()> {
    let Some(root) = root() else { return Ok(()) };
    let dir = root.join("tabular");
    let names = [
        "arrhythmia",
        "breastw",
        "cardio",
        "glass",
        "ionosphere",
        "lympho",
        "pima",
        "wbc",
        "wine",
    ];
    for name in names {
        let (table, splits) = load_table_with_splits(&dir, name, &TableConfig::default())?;
        let anomalies = table.labels.iter().filter(|&&l| l == 1).count();
        assert_eq!(splits.splits.len(), 5, "{name}");
        for sp in &splits.splits {
            let s = table.split(sp)?;
            // Half of the normal rows train; the other normals and every anomaly test.
            assert_eq!(
                s.train_labels.len() + s.test_labels.len(),
                table.rows(),
                "{name}"
            );
            assert!(s.train_labels.iter().all(|&l| l == 0), "{name}");
            assert_eq!(
                s.test_labels.iter().filter(|&&l| l == 1).count(),
                anomalies,
                "{name}"
            );
            assert_eq!(
                s.train_labels.len(),
                (table.rows() - anomalies) / 2,
                "{name}"
            );
            assert!(
                s.train.iter().chain(&s.test).all(|v| v.is_finite()),
                "{name}"
            );
        }
        println!(
            "tabular/{name}: {} rows x {} features, {anomalies} anomalies, train {} / test {}",
            table.rows(),
            table.cols(),
            splits.splits[0].train.len(),
            splits.splits[0].test.len()
        );
    }
    Ok(())
}
