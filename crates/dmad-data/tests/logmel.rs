//! `LogMel` against librosa's melspectrogram (and classical.py's HTK variant), from the
//! reference values `tools/logmel_fixture.py` wrote to `testdata/logmel/logmel.json`.

use std::path::PathBuf;

use dmad_data::logmel::{LogMel, LogMelConfig, MelNorm};

fn fixture() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/logmel/logmel.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn check(cfg: LogMelConfig, key: &str) {
    let fx = fixture();
    let signal: Vec<f32> = floats(&fx["signal"]).iter().map(|&v| v as f32).collect();
    let want = floats(&fx[key]["values"]);
    let got = LogMel::new(&cfg).unwrap().forward(&signal).unwrap();
    assert_eq!(
        got.frames as u64,
        fx[key]["frames"].as_u64().unwrap(),
        "{key}"
    );
    assert_eq!(got.values.len(), want.len(), "{key}");
    // The signal is rounded to f32 here (clips are f32), so a few 1e-4 dB of difference.
    for (i, (&a, &b)) in got.values.iter().zip(&want).enumerate() {
        assert!(
            (a as f64 - b).abs() <= 1e-3 * b.abs().max(1.0),
            "{key}: value {i} (frame {}, band {}): {a} vs {b}",
            i / got.n_mels,
            i % got.n_mels
        );
    }
}

#[test]
fn matches_librosa_melspectrogram_defaults() {
    check(LogMelConfig::default(), "librosa");
}

#[test]
fn matches_htk_uncentred_unnormalised_filters() {
    check(
        LogMelConfig {
            htk: true,
            norm: MelNorm::None,
            center: false,
            ..LogMelConfig::default()
        },
        "htk",
    );
}
