//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde_json::Value;

/// The repository's `testdata/diffusers` directory.
pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/diffusers")
        .join(name)
}

/// Parses a JSON file of `testdata/diffusers`.
pub fn load(name: &str) -> Value {
    let path = testdata(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON array of numbers.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn flatten(v: &Value, shape: &mut Vec<usize>, depth: usize, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => {
            if shape.len() == depth {
                shape.push(a.len());
            }
            for x in a {
                flatten(x, shape, depth + 1, out);
            }
        }
        other => out.push(other.as_f64().expect("number")),
    }
}

/// A nested JSON array as an `f32` tensor on the CPU.
pub fn tensor(v: &Value) -> Tensor {
    let (mut shape, mut data) = (Vec::new(), Vec::new());
    flatten(v, &mut shape, 0, &mut data);
    let data: Vec<f32> = data.into_iter().map(|x| x as f32).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).expect("tensor")
}

/// All values of a tensor as `f64`.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F64))
        .and_then(|t| t.to_vec1::<f64>())
        .expect("values")
}

/// The largest `|a - b| / max(1, |b|)`.
pub fn max_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f64::max)
}

/// The largest relative error `|a - b| / |b|` (0 where both are 0).
pub fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() / y.abs() })
        .fold(0.0, f64::max)
}

/// Asserts `|a - b| <= tol * max(1, |b|)` elementwise.
pub fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    let e = max_err(a, b);
    assert!(e <= tol, "{what}: max error {e:e} > {tol:e}");
}
