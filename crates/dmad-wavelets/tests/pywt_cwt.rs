//! The CWT against PyWavelets 1.8.0 (testdata/pywt/cwt.json), relative tolerance 1e-8.

mod common;

use common::{fixture, vec1};
use dmad_wavelets::{cwt, ContinuousWavelet, CwtCoefs, CwtConfig, CwtMethod};

fn rows(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().flat_map(vec1).collect()
}

/// `|a - b| <= tol * max(|b|, max|want|)`: relative to the scale of the transform row.
fn assert_rel(got: &[f64], want: &[f64], len: usize, tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (r, (g, w)) in got.chunks(len).zip(want.chunks(len)).enumerate() {
        let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= tol * scale.max(1e-300),
                "{what}: scale row {r}, t {i}: got {a}, want {b} (row max {scale})"
            );
        }
    }
}

#[test]
fn cwt_matches_pywt_for_every_wavelet_and_method() {
    let f = fixture("cwt.json");
    let x = vec1(&f["x"]);
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    for c in cases {
        let name = c["wavelet"].as_str().unwrap();
        let method = match c["method"].as_str().unwrap() {
            "conv" => CwtMethod::Conv,
            _ => CwtMethod::Fft,
        };
        let scales = vec1(&c["scales"]);
        let cfg = CwtConfig {
            sampling_period: c["sampling_period"].as_f64().unwrap(),
            method,
            precision: 12,
        };
        let w = ContinuousWavelet::new(name).unwrap();
        let out = cwt(&x, &scales, &w, &cfg).unwrap();
        let what = format!("{name} {method:?}");
        let freqs = vec1(&c["frequencies"]);
        for (a, b) in out.frequencies.iter().zip(&freqs) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs(),
                "{what}: frequency {a} vs {b}"
            );
        }
        match (&out.coefs, &c["coefs"]) {
            (CwtCoefs::Real(v), want) if want.is_array() => {
                assert_rel(v, &rows(want), x.len(), 1e-8, &what);
            }
            (CwtCoefs::Complex(v), want) if want.is_object() => {
                let re: Vec<f64> = v.iter().map(|z| z.re).collect();
                let im: Vec<f64> = v.iter().map(|z| z.im).collect();
                assert_rel(
                    &re,
                    &rows(&want["re"]),
                    x.len(),
                    1e-8,
                    &format!("{what} re"),
                );
                assert_rel(
                    &im,
                    &rows(&want["im"]),
                    x.len(),
                    1e-8,
                    &format!("{what} im"),
                );
            }
            _ => panic!("{what}: real/complex kind differs from PyWavelets"),
        }
    }
}

#[test]
fn central_frequencies_match_pywt() {
    let f = fixture("cwt.json");
    for (name, cf) in f["central_frequency"].as_object().unwrap() {
        let w = ContinuousWavelet::new(name).unwrap();
        let got = w.central_frequency(8);
        let want = cf.as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "{name}: {got} vs {want}"
        );
    }
}
