//! Bad input: every loader gets an empty, a truncated and a malformed file; each error names
//! the file (and the line or field where there is one), never a panic.

use std::path::{Path, PathBuf};

use dmad_data::npy::{read_npy, read_npz};
use dmad_data::tabular::load_table_with_splits;
use dmad_data::timeseries::{load_nab, read_csv_series, CsvSeriesConfig, UcrAnomalyName};
use dmad_data::{
    load_labelled_csv, load_ucr_anomaly, read_csv_table, read_npz_table, read_split_file, read_ts,
    read_ucr_tsv, read_wav, AudioConfig, Categorical, Dataset, DcaseFolder, Error, ImageConfig,
    ImageFolder, NpyImages, ResizeMode, Split, TableConfig,
};
use tempfile::TempDir;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Asserts that `e` names `file` (by its error path and in its message).
fn names(e: &Error, file: &Path) {
    assert_eq!(
        e.path(),
        Some(file),
        "error {e} should be about {}",
        file.display()
    );
    assert!(
        e.to_string().contains(&file.display().to_string()),
        "message {e} lacks the file name"
    );
}

fn line_of(e: &Error) -> Option<usize> {
    match e {
        Error::InvalidInput { line, .. } => *line,
        Error::Categorical { line, .. } => Some(*line),
        _ => None,
    }
}

fn field_of(e: &Error) -> Option<&str> {
    match e {
        Error::InvalidInput { field, .. } => field.as_deref(),
        _ => None,
    }
}

// ---------- images ----------

fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 7 + y * 3) as u8]));
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

fn mvtec_dir(bad_name: &str, bad: &[u8]) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let good = png_bytes(16, 16);
    for i in 0..3 {
        write(dir.path(), &format!("train/good/{i:03}.png"), &good);
    }
    let bad_path = write(dir.path(), &format!("train/good/{bad_name}"), bad);
    (dir, bad_path)
}

#[test]
fn image_empty_truncated_malformed_and_wrong_size() {
    let cfg = ImageConfig::new(16, 16);
    // Empty.
    let (d, p) = mvtec_dir("bad.png", b"");
    let e = ImageFolder::mvtec(d.path(), Split::Train, &cfg).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }), "{e}");
    names(&e, &p);
    // Malformed: not an image at all.
    let (d, p) = mvtec_dir("bad.png", b"this is not a png file, just text");
    let e = ImageFolder::mvtec(d.path(), Split::Train, &cfg).unwrap_err();
    assert!(matches!(e, Error::Image { .. }), "{e}");
    names(&e, &p);
    // Truncated: the header is intact, the pixel data is cut. Opening works (headers only);
    // decoding that sample names the file.
    let full = png_bytes(16, 16);
    let (d, p) = mvtec_dir("zzz.png", &full[..full.len() / 2]);
    let ds = ImageFolder::mvtec(d.path(), Split::Train, &cfg).unwrap();
    assert_eq!(ds.len(), 4);
    let e = ds.get(3).unwrap_err();
    assert!(matches!(e, Error::Image { .. }), "{e}");
    names(&e, &p);
    let e = ds.batches(4, None).next().unwrap().unwrap_err();
    names(&e, &p);
    // Wrong size, with ResizeMode::Exact.
    let mut exact = cfg.clone();
    exact.resize = ResizeMode::Exact;
    let (d, p) = mvtec_dir("big.png", &png_bytes(20, 16));
    let e = ImageFolder::mvtec(d.path(), Split::Train, &exact).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ImageSize {
                expected: (16, 16),
                got: (20, 16),
                ..
            }
        ),
        "{e}"
    );
    names(&e, &p);
    // Centre crop needs an image at least as large as the output.
    let mut crop = ImageConfig::new(32, 32);
    crop.resize = ResizeMode::CenterCrop;
    let e = ImageFolder::plain(d.path().join("train/good"), &crop).unwrap_err();
    assert!(matches!(e, Error::ImageSize { .. }), "{e}");
}

#[test]
fn image_folder_skips_bad_files_only_when_asked() {
    let (d, p) = mvtec_dir("001b.png", b"garbage");
    let mut cfg = ImageConfig::new(8, 8);
    let e = ImageFolder::plain(d.path().join("train/good"), &cfg).unwrap_err();
    names(&e, &p);
    cfg.skip_bad = true;
    let ds = ImageFolder::plain(d.path().join("train/good"), &cfg).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.skipped().len(), 1);
    assert_eq!(ds.skipped()[0].0, p);
    assert!(ds.skipped()[0].1.contains("001b.png"));
    for i in 0..3 {
        assert_eq!(ds.get(i).unwrap().image.dims(), &[1, 8, 8]);
    }
}

#[test]
fn mvtec_mask_missing_or_of_the_wrong_size() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "test/good/000.png", &png_bytes(16, 16));
    let img = write(dir.path(), "test/crack/000.png", &png_bytes(16, 16));
    write(dir.path(), "ground_truth/crack/.keep", b"");
    let cfg = ImageConfig::new(16, 16);
    let e = ImageFolder::mvtec(dir.path(), Split::Test, &cfg).unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { .. }) && e.to_string().contains("000_mask.png"),
        "{e}"
    );
    names(&e, &img);
    let mask = write(
        dir.path(),
        "ground_truth/crack/000_mask.png",
        &png_bytes(8, 8),
    );
    let e = ImageFolder::mvtec(dir.path(), Split::Test, &cfg).unwrap_err();
    assert!(matches!(e, Error::ImageSize { .. }), "{e}");
    names(&e, &mask);
    write(
        dir.path(),
        "ground_truth/crack/000_mask.png",
        &png_bytes(16, 16),
    );
    let ds = ImageFolder::mvtec(dir.path(), Split::Test, &cfg).unwrap();
    assert_eq!(ds.labels(), vec![1, 0]);
    // Missing train folder: an i/o error naming it.
    let e = ImageFolder::mvtec(dir.path(), Split::Train, &cfg).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("train"),
        "{e}"
    );
}

// ---------- NPY / NPZ ----------

#[test]
fn npy_and_npz_empty_truncated_malformed() {
    let d = TempDir::new().unwrap();
    let good = std::fs::read(shipped().join("npy/images_u8_N8x8.npy")).unwrap();
    let p = write(d.path(), "empty.npy", b"");
    let e = read_npy(&p).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }));
    names(&e, &p);
    let p = write(d.path(), "trunc.npy", &good[..good.len() - 10]);
    let e = read_npy(&p).unwrap_err();
    assert_eq!(field_of(&e), Some("data"), "{e}");
    names(&e, &p);
    let mut bad = good.clone();
    bad[..6].copy_from_slice(b"NOTNPY");
    let p = write(d.path(), "bad.npy", &bad);
    let e = read_npy(&p).unwrap_err();
    assert_eq!(field_of(&e), Some("magic"), "{e}");
    names(&e, &p);
    // An image array of the wrong rank.
    let table = shipped().join("npy/table_x_f8.npy");
    let e = NpyImages::open(&table, None, &ImageConfig::new(8, 8)).unwrap_err();
    assert!(
        matches!(e, Error::ShapeMismatch { .. }) && e.to_string().contains("table_x_f8.npy"),
        "{e}"
    );

    let z = std::fs::read(shipped().join("npy/table_compressed.npz")).unwrap();
    let p = write(d.path(), "empty.npz", b"");
    assert!(matches!(read_npz(&p), Err(Error::EmptyFile { .. })));
    let p = write(d.path(), "trunc.npz", &z[..z.len() / 2]);
    let e = read_npz(&p).unwrap_err();
    names(&e, &p);
    // Corrupt one byte of the first member's compressed data: CRC or deflate error.
    let mut c = z.clone();
    c[80] ^= 0xff;
    let p = write(d.path(), "corrupt.npz", &c);
    let e = read_npz(&p).unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert!(e.to_string().contains("corrupt.npz"), "{e}");
    let e = read_npz_table(shipped().join("npy/table.npz"), "X", "labels").unwrap_err();
    assert_eq!(field_of(&e), Some("labels"), "{e}");
}

// ---------- time series ----------

#[test]
fn ucr_anomaly_bad_files() {
    let d = TempDir::new().unwrap();
    let name = "001_UCR_Anomaly_toy_5_7_9.txt";
    let p = write(d.path(), name, b"");
    let e = load_ucr_anomaly(&p).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }));
    names(&e, &p);
    // Truncated: fewer points than the name's indices need.
    let p = write(d.path(), name, b"1\n2\n3\n4\n5\n6\n7\n");
    let e = load_ucr_anomaly(&p).unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    names(&e, &p);
    // Malformed: a non-numeric value on line 3.
    let p = write(d.path(), name, b"1\n2\nabc\n4\n5\n6\n7\n8\n9\n10\n");
    let e = load_ucr_anomaly(&p).unwrap_err();
    assert_eq!(line_of(&e), Some(3), "{e}");
    names(&e, &p);
    // A name that does not match the pattern.
    let p = write(d.path(), "001_UCR_toy_5_7_9.txt", b"1\n2\n");
    let e = load_ucr_anomaly(&p).unwrap_err();
    assert!(matches!(e, Error::BadFileName { .. }), "{e}");
    names(&e, &p);
    assert!(UcrAnomalyName::parse("135_UCR_Anomaly_X_a_2_3.txt").is_err());
    // Values on one line, separated by spaces, are accepted (some archive files are so).
    let p = write(d.path(), name, b"1 2 3 4 5 6 7 8 9 10\n");
    let (s, _) = load_ucr_anomaly(&p).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (5, 5));
    assert_eq!(s.test.labels, vec![0, 0, 1, 1, 0]);
}

fn nab_root(csv: &[u8], json: &[u8]) -> TempDir {
    let d = TempDir::new().unwrap();
    write(d.path(), "data/cat/s.csv", csv);
    write(d.path(), "labels/combined_windows.json", json);
    d
}

const NAB_JSON: &[u8] =
    br#"{"cat/s.csv": [["2020-01-01 00:10:00.000000", "2020-01-01 00:20:00.000000"]]}"#;

#[test]
fn nab_good_and_bad_files() {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..40 {
        csv.push_str(&format!("2020-01-01 00:{i:02}:00,{}\n", i as f32 * 0.5));
    }
    let d = nab_root(csv.as_bytes(), NAB_JSON);
    let s = load_nab(d.path(), "cat/s.csv").unwrap();
    assert_eq!((s.train.len(), s.test.len(), s.test_offset), (6, 34, 6));
    let anomalous: Vec<usize> = (0..34)
        .filter(|&i| s.test.labels[i] == 1)
        .map(|i| i + 6)
        .collect();
    assert_eq!(
        anomalous,
        (10..=20).collect::<Vec<_>>(),
        "windows are inclusive"
    );

    let csv_path = |d: &TempDir| d.path().join("data/cat/s.csv");
    let d = nab_root(b"", NAB_JSON);
    let e = load_nab(d.path(), "cat/s.csv").unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }), "{e}");
    names(&e, &csv_path(&d));
    let d = nab_root(
        b"timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:01",
        NAB_JSON,
    );
    let e = load_nab(d.path(), "cat/s.csv").unwrap_err();
    names(&e, &csv_path(&d));
    assert_eq!(line_of(&e), Some(3), "{e}");
    let d = nab_root(
        b"timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:01:00,x\n",
        NAB_JSON,
    );
    let e = load_nab(d.path(), "cat/s.csv").unwrap_err();
    assert_eq!((line_of(&e), field_of(&e)), (Some(3), Some("value")), "{e}");
    let d = nab_root(b"time,value\n2020-01-01 00:00:00,1\n", NAB_JSON);
    let e = load_nab(d.path(), "cat/s.csv").unwrap_err();
    assert!(
        matches!(&e, Error::MissingColumn { column, .. } if column == "timestamp"),
        "{e}"
    );
    names(&e, &csv_path(&d));
    let json_path = |d: &TempDir| d.path().join("labels/combined_windows.json");
    let d = nab_root(csv.as_bytes(), &NAB_JSON[..30]);
    let e = load_nab(d.path(), "cat/s.csv").unwrap_err();
    names(&e, &json_path(&d));
    let d = nab_root(csv.as_bytes(), br#"{"cat/s.csv": [["2020-01-01", "x"]]}"#);
    let e = load_nab(d.path(), "cat/s.csv").unwrap_err();
    assert_eq!(field_of(&e), Some("cat/s.csv"), "{e}");
    names(&e, &json_path(&d));
    let e = load_nab(d.path(), "cat/other.csv").unwrap_err();
    names(&e, &json_path(&d));
}

#[test]
fn labelled_csv_series_good_and_bad() {
    let d = TempDir::new().unwrap();
    let mut text = String::from("a,b,label\n");
    for i in 0..10 {
        text.push_str(&format!("{i},{},{}\n", -i, u8::from(i == 7)));
    }
    let p = write(d.path(), "multi.csv", text.as_bytes());
    let s = load_labelled_csv(&p, &CsvSeriesConfig::default()).unwrap();
    assert_eq!((s.train.len(), s.test.len(), s.train.dims), (3, 7, 2));
    assert_eq!(s.test.values[..4], [3.0, -3.0, 4.0, -4.0]);
    assert_eq!(s.test.labels[4], 1);

    let cfg = CsvSeriesConfig::default();
    let p = write(d.path(), "empty.csv", b"");
    let e = read_csv_series(&p, &cfg).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }));
    names(&e, &p);
    let p = write(d.path(), "header_only.csv", b"a,label\n");
    assert!(matches!(
        read_csv_series(&p, &cfg),
        Err(Error::EmptyFile { .. })
    ));
    let p = write(d.path(), "trunc.csv", b"a,label\n1,0\n2");
    let e = read_csv_series(&p, &cfg).unwrap_err();
    assert_eq!(line_of(&e), Some(3), "{e}");
    names(&e, &p);
    let p = write(d.path(), "nan.csv", b"a,label\n1,0\nfoo,0\n");
    let e = read_csv_series(&p, &cfg).unwrap_err();
    assert_eq!((line_of(&e), field_of(&e)), (Some(3), Some("a")), "{e}");
    names(&e, &p);
    let p = write(d.path(), "nolabel.csv", b"a,b\n1,0\n");
    let e = read_csv_series(&p, &cfg).unwrap_err();
    assert!(
        matches!(&e, Error::MissingColumn { column, .. } if column == "label"),
        "{e}"
    );
    names(&e, &p);
    let bad_frac = CsvSeriesConfig {
        train_fraction: 1.5,
        ..CsvSeriesConfig::default()
    };
    assert!(matches!(
        load_labelled_csv(&p, &bad_frac),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn gutentag_pair() {
    let d = TempDir::new().unwrap();
    write(
        d.path(),
        "g_TRAIN_NA.csv",
        b"timestamp,value-0,is_anomaly\n0,1.0,0.0\n1,2.0,0.0\n",
    );
    write(
        d.path(),
        "g_TEST.csv",
        b"timestamp,value-0,is_anomaly\n0,1.0,0\n1,9.0,1\n2,1.0,0\n",
    );
    let s = dmad_data::load_gutentag(d.path(), "g").unwrap();
    assert_eq!(
        (s.train.len(), s.test.len(), s.test.labels.clone()),
        (2, 3, vec![0, 1, 0])
    );
    let p = write(d.path(), "h_TRAIN_NA.csv", b"timestamp,value-0\n0,1.0\n");
    write(
        d.path(),
        "h_TEST.csv",
        b"timestamp,value-0,is_anomaly\n0,1.0,0\n",
    );
    let e = dmad_data::load_gutentag(d.path(), "h").unwrap_err();
    assert!(
        matches!(&e, Error::MissingColumn { column, .. } if column == "is_anomaly"),
        "{e}"
    );
    names(&e, &p);
}

#[test]
fn ucr_tsv_and_ts_bad_files() {
    let d = TempDir::new().unwrap();
    let p = write(d.path(), "X_TRAIN.tsv", b"");
    let e = read_ucr_tsv(&p).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }));
    names(&e, &p);
    let p = write(d.path(), "X_TRAIN.tsv", b"1\t0.5\t0.25\n2\t0.1\t");
    // Truncated mid-line: the empty last field is reported with its line.
    let e = read_ucr_tsv(&p).unwrap_err();
    assert_eq!(line_of(&e), Some(2), "{e}");
    names(&e, &p);
    let p = write(d.path(), "X_TRAIN.tsv", b"1\t0.5\t0.25\n2\n");
    let e = read_ucr_tsv(&p).unwrap_err();
    assert_eq!(line_of(&e), Some(2), "{e}");
    names(&e, &p);
    let p = write(d.path(), "X_TRAIN.tsv", b"1\t0.5\t0.25\n2\t0.5\tx\n");
    let e = read_ucr_tsv(&p).unwrap_err();
    assert_eq!(
        (line_of(&e), field_of(&e)),
        (Some(2), Some("column 3")),
        "{e}"
    );
    names(&e, &p);
    let p = write(d.path(), "X_TRAIN.tsv", b"one\t0.5\n");
    assert_eq!(field_of(&read_ucr_tsv(&p).unwrap_err()), Some("class"));

    let ts = b"# comment\n@problemName toy\n@timeStamps false\n@univariate false\n@dimensions 2\n@classLabel true a b\n@data\n1,2,3:4,5,6:a\n1,?,3:4,5,6:b\n";
    let p = write(d.path(), "toy.ts", ts);
    let cases = read_ts(&p).unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(
        cases[0].channels,
        vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]
    );
    assert!(cases[1].channels[0][1].is_nan());
    assert_eq!(cases[1].class, "b");
    let p = write(d.path(), "empty.ts", b"");
    assert!(matches!(read_ts(&p), Err(Error::EmptyFile { .. })));
    let p = write(d.path(), "trunc.ts", &ts[..60]);
    let e = read_ts(&p).unwrap_err();
    assert_eq!(field_of(&e), Some("@data"), "{e}");
    names(&e, &p);
    let p = write(
        d.path(),
        "bad.ts",
        b"@classLabel true a b\n@dimensions 2\n@data\n1,2:3,x:a\n",
    );
    let e = read_ts(&p).unwrap_err();
    assert_eq!(
        (line_of(&e), field_of(&e)),
        (Some(4), Some("channel 1")),
        "{e}"
    );
    names(&e, &p);
    let p = write(
        d.path(),
        "dims.ts",
        b"@classLabel true a b\n@dimensions 2\n@data\n1,2:a\n",
    );
    assert_eq!(line_of(&read_ts(&p).unwrap_err()), Some(4));
    let p = write(d.path(), "cls.ts", b"@classLabel true a b\n@data\n1,2:c\n");
    assert_eq!(field_of(&read_ts(&p).unwrap_err()), Some("class"));
    let p = write(d.path(), "hdr.ts", b"problem toy\n@data\n1,2:c\n");
    assert_eq!(line_of(&read_ts(&p).unwrap_err()), Some(1));
}

// ---------- audio ----------

fn wav_bytes(spec: hound::WavSpec, samples: &[f32]) -> Vec<u8> {
    let mut cur = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for &s in samples {
            for _ in 0..spec.channels {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(s).unwrap(),
                    hound::SampleFormat::Int => {
                        let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
                        let v = (s * scale).round().clamp(-scale, scale - 1.0) as i32;
                        if spec.bits_per_sample == 8 {
                            w.write_sample(v as i8).unwrap()
                        } else {
                            w.write_sample(v).unwrap()
                        }
                    }
                }
            }
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

fn spec(bits: u16, float: bool, channels: u16) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: 16_000,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

#[test]
fn wav_formats_read_back() {
    let d = TempDir::new().unwrap();
    let x: Vec<f32> = (0..200).map(|i| ((i as f32) * 0.05).sin() * 0.9).collect();
    for (bits, float, channels, tol) in [
        (8u16, false, 1u16, 1.0 / 128.0),
        (16, false, 2, 1.0 / 32768.0),
        (24, false, 1, 1.0 / 8_388_608.0),
        (32, false, 1, 1e-7),
        (32, true, 3, 0.0),
    ] {
        let p = write(
            d.path(),
            &format!("x{bits}{float}.wav"),
            &wav_bytes(spec(bits, float, channels), &x),
        );
        let w = read_wav(&p).unwrap();
        assert_eq!(
            (w.sample_rate, w.channels, w.samples.len()),
            (16_000, channels, 200)
        );
        for (a, b) in w.samples.iter().zip(&x) {
            assert!((a - b).abs() <= tol, "{bits} bits: {a} vs {b}");
        }
    }
}

#[test]
fn wav_empty_truncated_bad_chunk() {
    let d = TempDir::new().unwrap();
    let good = wav_bytes(spec(16, false, 1), &[0.1; 100]);
    let p = write(d.path(), "empty.wav", b"");
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }));
    names(&e, &p);
    let p = write(d.path(), "trunc.wav", &good[..good.len() - 51]);
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, Error::Wav { .. }), "{e}");
    names(&e, &p);
    let mut bad = good.clone();
    bad[12..16].copy_from_slice(b"junk"); // the fmt chunk's id
    let p = write(d.path(), "badchunk.wav", &bad);
    let e = read_wav(&p).unwrap_err();
    assert!(matches!(e, Error::Wav { .. }), "{e}");
    names(&e, &p);
    let mut bad = good.clone();
    bad[0..4].copy_from_slice(b"RIFX");
    let p = write(d.path(), "riff.wav", &bad);
    names(&read_wav(&p).unwrap_err(), &p);
    let mut bad = good;
    bad[16..20].copy_from_slice(&2u32.to_le_bytes()); // fmt chunk too short
    let p = write(d.path(), "fmt.wav", &bad);
    names(&read_wav(&p).unwrap_err(), &p);
}

#[test]
fn dcase_folder_bad_files_and_skip() {
    let d = TempDir::new().unwrap();
    let good = wav_bytes(spec(16, false, 1), &[0.1; 1600]);
    write(d.path(), "train/normal_0000.wav", &good);
    write(d.path(), "train/normal_0001.wav", &good);
    let bad = write(d.path(), "train/normal_0002.wav", &good[..30]);
    let cfg = AudioConfig::default();
    let e = DcaseFolder::open(d.path(), Split::Train, &cfg).unwrap_err();
    assert!(matches!(e, Error::Wav { .. }), "{e}");
    names(&e, &bad);
    let skip = AudioConfig {
        skip_bad: true,
        ..AudioConfig::default()
    };
    let ds = DcaseFolder::open(d.path(), Split::Train, &skip).unwrap();
    assert_eq!((ds.len(), ds.skipped().len()), (2, 1));
    assert_eq!(ds.skipped()[0].0, bad);
    std::fs::remove_file(&bad).unwrap();
    let odd = write(d.path(), "train/anomaly_0000_x.wav", &good);
    let e = DcaseFolder::open(d.path(), Split::Train, &cfg).unwrap_err();
    assert!(matches!(e, Error::BadFileName { .. }), "{e}");
    names(&e, &odd);
    std::fs::remove_file(&odd).unwrap();
    // Length padding and an 8 kHz file resampled to 16 kHz.
    let mut s8 = spec(16, false, 1);
    s8.sample_rate = 8_000;
    write(
        d.path(),
        "train/normal_0003.wav",
        &wav_bytes(s8, &[0.0; 800]),
    );
    let fixed = AudioConfig {
        length: Some(16_000),
        ..AudioConfig::default()
    };
    let ds = DcaseFolder::open(d.path(), Split::Train, &fixed).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.waveform(2).unwrap().len(), 16_000);
    let var = AudioConfig::default();
    let ds = DcaseFolder::open(d.path(), Split::Train, &var).unwrap();
    assert_eq!(ds.waveform(2).unwrap().len(), 1600);
    assert_eq!(ds.waveform(0).unwrap().len(), 1600);
}

// ---------- tables ----------

#[test]
fn csv_table_good_and_bad() {
    let d = TempDir::new().unwrap();
    let cfg = TableConfig::default();
    let p = write(
        d.path(),
        "t.csv",
        b"x,colour,y,label\n1,red,2,0\n2,blue,3,1\n3,red,4,0\n",
    );
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert!(
        matches!(&e, Error::Categorical { column, line: 2, .. } if column == "colour"),
        "{e}"
    );
    names(&e, &p);
    let onehot = TableConfig {
        categorical: Categorical::OneHot,
        ..TableConfig::default()
    };
    let t = read_csv_table(&p, &onehot).unwrap();
    assert_eq!(t.names, vec!["x", "colour=blue", "colour=red", "y"]);
    assert_eq!(t.row(1), &[2.0, 1.0, 0.0, 3.0]);
    assert_eq!(t.labels, vec![0, 1, 0]);
    let other = TableConfig {
        label_column: "y".into(),
        categorical: Categorical::OneHot,
        has_header: true,
        ..TableConfig::default()
    };
    assert_eq!(read_csv_table(&p, &other).unwrap().labels, vec![1, 1, 1]);

    let p = write(d.path(), "empty.csv", b"");
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }));
    names(&e, &p);
    let p = write(d.path(), "trunc.csv", b"a,b,label\n1,2,0\n3,");
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert_eq!(line_of(&e), Some(3), "{e}");
    names(&e, &p);
    let p = write(d.path(), "nolabel.csv", b"a,b,class\n1,2,0\n");
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert!(
        matches!(&e, Error::MissingColumn { column, .. } if column == "label"),
        "{e}"
    );
    names(&e, &p);
    let p = write(d.path(), "badlabel.csv", b"a,label\n1,0\n2,yes\n");
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert_eq!((line_of(&e), field_of(&e)), (Some(3), Some("label")), "{e}");
    let p = write(d.path(), "emptycell.csv", b"a,b,label\n1,,0\n");
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert_eq!((line_of(&e), field_of(&e)), (Some(2), Some("b")), "{e}");
}

#[test]
fn gzip_truncated_and_corrupt() {
    let d = TempDir::new().unwrap();
    let gz = std::fs::read(shipped().join("tabular/digits_head.csv.gz")).unwrap();
    let cfg = TableConfig {
        label_column: "64".into(),
        has_header: false,
        ..TableConfig::default()
    };
    let p = write(d.path(), "empty.csv.gz", b"");
    assert!(matches!(
        read_csv_table(&p, &cfg),
        Err(Error::EmptyFile { .. })
    ));
    let p = write(d.path(), "trunc.csv.gz", &gz[..gz.len() / 2]);
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert_eq!(field_of(&e), Some("gzip"), "{e}");
    names(&e, &p);
    let mut c = gz.clone();
    let n = c.len();
    c[n - 12] ^= 0x55;
    let p = write(d.path(), "corrupt.csv.gz", &c);
    let e = read_csv_table(&p, &cfg).unwrap_err();
    assert_eq!(field_of(&e), Some("gzip"), "{e}");
    names(&e, &p);
    let p = write(d.path(), "plain.csv.gz", b"0,1,2\n");
    names(&read_csv_table(&p, &cfg).unwrap_err(), &p);
}

#[test]
fn split_files_bad() {
    let d = TempDir::new().unwrap();
    let p = write(d.path(), "s.json", b"");
    let e = read_split_file(&p).unwrap_err();
    assert!(matches!(e, Error::EmptyFile { .. }));
    names(&e, &p);
    let good = std::fs::read(shipped().join("tabular/splits/glass.json")).unwrap();
    let p = write(d.path(), "s.json", &good[..good.len() / 2]);
    let e = read_split_file(&p).unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { line: Some(_), .. }),
        "{e}"
    );
    names(&e, &p);
    let p = write(d.path(), "s.json", br#"{"dataset": "x", "rows": "many"}"#);
    names(&read_split_file(&p).unwrap_err(), &p);
    // A split file whose counts do not match the table.
    write(d.path(), "tab/t.csv", b"a,label\n1,0\n2,1\n");
    let sp = write(
        d.path(),
        "tab/splits/t.json",
        br#"{"dataset": "t", "rows": 3, "anomalies": 1, "splits": []}"#,
    );
    let e = load_table_with_splits(d.path().join("tab"), "t", &TableConfig::default()).unwrap_err();
    names(&e, &sp);
    // Row indices out of range.
    write(
        d.path(),
        "tab/splits/t.json",
        br#"{"dataset": "t", "rows": 2, "anomalies": 1, "splits": [{"seed": 0, "train": [0], "test": [1, 2]}]}"#,
    );
    let (t, s) =
        load_table_with_splits(d.path().join("tab"), "t", &TableConfig::default()).unwrap();
    let e = t.split(&s.splits[0]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::IndexOutOfRange {
                index: 2,
                len: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("t.csv"), "{e}");
}
