//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's `testdata/` directory.
pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// `|a - b| <= tol * max(1, |b|)` element-wise; returns the worst ratio of error to bound.
pub fn assert_close(got: &[f32], want: &[f32], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = 0f64;
    let mut at = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        let bound = tol * 1f64.max((w as f64).abs());
        assert!(g.is_finite(), "{what}: non-finite value at {i}");
        if err / bound > worst {
            worst = err / bound;
            at = i;
        }
    }
    assert!(
        worst <= 1.0,
        "{what}: element {at} is {} but the reference is {} (tolerance {tol})",
        got[at],
        want[at]
    );
}

/// Flattens a nested JSON array of numbers.
pub fn flatten(v: &serde_json::Value, out: &mut Vec<f32>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        serde_json::Value::Number(n) => out.push(n.as_f64().expect("number") as f32),
        other => panic!("unexpected JSON value {other}"),
    }
}

/// The shape of a nested JSON array.
pub fn shape(v: &serde_json::Value) -> Vec<usize> {
    let mut s = Vec::new();
    let mut cur = v;
    while let serde_json::Value::Array(a) = cur {
        s.push(a.len());
        match a.first() {
            Some(x) => cur = x,
            None => break,
        }
    }
    s
}
