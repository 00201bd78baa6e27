//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Reads and parses `testdata/pywt/<name>` from the repository root.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/pywt")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn vec1(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Row-major data and shape of a JSON 2D array.
pub fn vec2(v: &serde_json::Value) -> (Vec<usize>, Vec<f64>) {
    let rows = v.as_array().expect("array");
    let cols = rows
        .first()
        .map(|r| r.as_array().unwrap().len())
        .unwrap_or(0);
    let data = rows.iter().flat_map(vec1).collect();
    (vec![rows.len(), cols], data)
}

/// `|a - b| <= tol * max(1, |b|)` elementwise, with equal lengths.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}: index {i}: got {g}, want {w}"
        );
    }
}

/// Deterministic pseudo-random signal in [-1, 1) (SplitMix64).
pub fn signal(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}
