//! Property test: a saved model whose `config.json`, `calibration.json`, `data.json` or
//! `weights.safetensors` is replaced by random bytes or a mutated copy (a fixed number of
//! cases from a fixed seed) fails to load or score with an error, never a panic or an abort.

use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};

/// SplitMix64: a small seeded generator (this crate has no `rand` dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

const CASES: usize = 24;

fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    if b.is_empty() || rng.range(0, 8) == 0 {
        return (0..rng.range(0, 256)).map(|_| rng.byte()).collect();
    }
    match rng.range(0, 4) {
        0 => {
            for _ in 0..rng.range(1, 8) {
                let i = rng.range(0, b.len());
                b[i] ^= 1 << rng.range(0, 8);
            }
        }
        1 => b.truncate(rng.range(0, b.len())),
        2 => {
            // The safetensors header length and JSON numbers live in the first bytes.
            let i = rng.range(0, b.len().min(64));
            b[i] = 0xff;
        }
        _ => {
            let i = rng.range(0, b.len());
            let junk: Vec<u8> = (0..rng.range(1, 16)).map(|_| rng.byte()).collect();
            b.splice(i..i, junk);
        }
    }
    b
}

/// A tiny saved table model (DTE: no training) at `dir`, with a data description.
fn tiny_model(dir: &Path) {
    let mut cfg = dmad::DetectorConfig::for_tables(3);
    cfg.scorer = dmad::ScorerConfig::Dte { k: 2 };
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (20, 3), &dev).unwrap();
    let mut det = dmad::Detector::new(cfg, &dev).unwrap();
    det.fit(&x, |_| {}).unwrap();
    det.save(dir).unwrap();
    std::fs::write(
        dir.join("data.json"),
        r#"{"source": "t.csv", "layout": "table", "samples": 20, "non_finite": "error",
           "threshold": "", "table": {"names": ["a", "b", "c"], "mean": [0, 0, 0],
           "std": [1, 1, 1]}}"#,
    )
    .unwrap();
}

#[test]
fn corrupt_model_files_are_errors_not_panics() {
    let d = tempfile::TempDir::new().unwrap();
    let good = d.path().join("good.model");
    tiny_model(&good);
    let data = d.path().join("rows.csv");
    std::fs::write(&data, "a,b,c\n0.1,0.2,0.3\n1,2,3\n").unwrap();
    let mut rng = Rng(22);
    for file in [
        "config.json",
        "calibration.json",
        "weights.safetensors",
        "dte.safetensors",
    ] {
        let base = std::fs::read(good.join(file)).unwrap();
        for case in 0..CASES {
            let bad = d.path().join(format!("bad-{case}.model"));
            let _ = std::fs::remove_dir_all(&bad);
            std::fs::create_dir_all(&bad).unwrap();
            for f in std::fs::read_dir(&good).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, bad.join(f.file_name().unwrap())).unwrap();
            }
            std::fs::write(bad.join(file), mutate(&base, &mut rng)).unwrap();
            let r = std::panic::catch_unwind(|| dmad::Detector::load(&bad, &Device::Cpu));
            assert!(r.is_ok(), "{file} case {case}: Detector::load panicked");
            std::fs::remove_dir_all(&bad).unwrap();
        }
    }
    // Through the binary, for the files only the command line reads: an error exit (1), not
    // a crash (a signal has no exit code).
    for file in ["config.json", "data.json"] {
        let base = std::fs::read(good.join(file)).unwrap();
        for case in 0..CASES / 3 {
            let bad = d.path().join("cli.model");
            let _ = std::fs::remove_dir_all(&bad);
            std::fs::create_dir_all(&bad).unwrap();
            for f in std::fs::read_dir(&good).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, bad.join(f.file_name().unwrap())).unwrap();
            }
            std::fs::write(bad.join(file), mutate(&base, &mut rng)).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_dmad"))
                .args(["score", "--quiet", "--model"])
                .arg(&bad)
                .arg("--data")
                .arg(&data)
                .arg("--out")
                .arg(d.path().join("scores"))
                .output()
                .unwrap();
            let code = out.status.code();
            assert!(
                matches!(code, Some(0 | 1)),
                "{file} case {case}: exit {code:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
