//! Property test: every loader, fed random bytes and mutated copies of the shipped files (a
//! fixed number of cases from a fixed seed), returns an error or a value: it never panics,
//! aborts or allocates without bound (a header that claims a huge size is an error before the
//! allocation).

use std::path::{Path, PathBuf};

use dmad_data::{npy, ImageConfig, TableConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tempfile::TempDir;

/// Mutated cases per shipped file, and random files per loader.
const CASES: usize = 48;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/data")
}

/// One mutation of `base`: flipped bytes, a truncation, a splice of random bytes, a header
/// byte set to an extreme, or the file repeated.
fn mutate(base: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    if b.is_empty() {
        return (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
    }
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => b.truncate(rng.random_range(0..b.len())),
        2 => {
            let i = rng.random_range(0..b.len());
            let junk: Vec<u8> = (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
            b.splice(i..i, junk);
        }
        3 => {
            // Header fields: sizes, counts and lengths live in the first bytes.
            let i = rng.random_range(0..b.len().min(128));
            b[i] = if rng.random() { 0xff } else { 0x00 };
            if i + 1 < b.len() {
                b[i + 1] = 0xff;
            }
        }
        _ => {
            let copy = b.clone();
            b.extend_from_slice(&copy[..copy.len().min(256)]);
        }
    }
    b
}

/// Runs `load` on `CASES` mutations of each of `files` and on `CASES` random files, written as
/// `name` in a temporary folder; a panic fails the test naming the case.
fn fuzz(files: &[PathBuf], name: &str, seed: u64, load: impl Fn(&Path)) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join(name);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut bases: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    bases.push(Vec::new());
    for base in &bases {
        for case in 0..CASES {
            let bytes = mutate(base, &mut rng);
            std::fs::write(&path, &bytes).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(&path)));
            if r.is_err() {
                let keep = std::env::temp_dir().join(format!("dmad-fuzz-{name}-{case}"));
                let _ = std::fs::write(&keep, &bytes);
                panic!("{name}: the loader panicked on case {case} (bytes in {keep:?})");
            }
        }
    }
}

#[test]
fn image_loaders_never_panic() {
    let d = shipped().join("textures-ad/brick");
    let files = [
        d.join("train/good/000.png"),
        d.join("ground_truth/scratch/000_mask.png"),
    ];
    let cfg = ImageConfig::new(16, 16);
    fuzz(&files, "x.png", 1, |p| {
        let _ = dmad_data::image::image_dimensions(p);
        let _ = dmad_data::image::load_image(p, &cfg);
        let _ = dmad_data::image::load_mask(p, (64, 64), &cfg);
    });
}

#[test]
fn wav_loaders_never_panic() {
    let files = [shipped().join("audio/hum/train/normal_0000.wav")];
    fuzz(&files, "x.wav", 2, |p| {
        let _ = dmad_data::audio::wav_info(p);
        let _ = dmad_data::read_wav(p);
    });
}

#[test]
fn table_loaders_never_panic() {
    let t = shipped().join("tabular");
    let files = [t.join("glass.csv"), t.join("wbc.csv")];
    fuzz(&files, "x.csv", 3, |p| {
        let _ = dmad_data::read_csv_table(p, &TableConfig::default());
        let _ = dmad_data::read_csv_features(p, &TableConfig::default());
    });
    fuzz(&[t.join("digits_head.csv.gz")], "x.csv.gz", 4, |p| {
        let cfg = TableConfig {
            label_column: "64".into(),
            has_header: false,
            ..TableConfig::default()
        };
        let _ = dmad_data::read_csv_table(p, &cfg);
    });
    fuzz(&[t.join("splits/glass.json")], "x.json", 5, |p| {
        let _ = dmad_data::read_split_file(p);
    });
}

#[test]
fn npy_and_npz_loaders_never_panic() {
    let n = shipped().join("npy");
    let files = [
        n.join("table_x_f8.npy"),
        n.join("table_x_f4_fortran.npy"),
        n.join("images_u8_N8x8.npy"),
    ];
    fuzz(&files, "x.npy", 6, |p| {
        let _ = npy::read_npy(p);
        let _ = dmad_data::tabular::read_npy_features(p);
        let _ = dmad_data::NpyImages::open(p, None, &ImageConfig::new(8, 8));
    });
    let files = [n.join("table.npz"), n.join("table_compressed.npz")];
    fuzz(&files, "x.npz", 7, |p| {
        let _ = npy::read_npz(p);
        let _ = dmad_data::read_npz_table(p, "X", "y");
    });
}

#[test]
fn series_loaders_never_panic() {
    let u = shipped().join("ucr-anomaly/135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt");
    // A short head of the file keeps each case fast; the name keeps the archive's pattern.
    let text = std::fs::read_to_string(&u).unwrap();
    let head: String = text.lines().take(300).map(|l| format!("{l}\n")).collect();
    let dir = TempDir::new().unwrap();
    let small = dir.path().join("head.txt");
    std::fs::write(&small, head).unwrap();
    fuzz(
        std::slice::from_ref(&small),
        "001_UCR_Anomaly_x_100_150_160.txt",
        8,
        |p| {
            let _ = dmad_data::load_ucr_anomaly(p);
        },
    );
    fuzz(&[small], "plain.csv", 9, |p| {
        let _ = dmad_data::read_plain_series(p);
    });
}

#[test]
fn a_huge_npy_shape_is_an_error_not_an_allocation() {
    let dir = TempDir::new().unwrap();
    for shape in [
        "(4000000000, 4000000000)",
        "(18446744073709551615,)",
        "(1000000000000,)",
    ] {
        let mut h = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0u8; 64]);
        let p = dir.path().join("huge.npy");
        std::fs::write(&p, b).unwrap();
        let e = npy::read_npy(&p).unwrap_err();
        assert!(e.to_string().contains("huge.npy"), "{e}");
    }
}
