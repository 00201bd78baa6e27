//! A threshold saved with a model survives a JSON round trip (feature `serde`).
#![cfg(feature = "serde")]

use dmad_metrics::{Threshold, ThresholdMethod};

#[test]
fn threshold_round_trips_through_json() {
    let normal = [0.5, 0.25, 0.75, 1.0, 0.125];
    for t in [
        Threshold::quantile(&normal, 0.99).unwrap(),
        Threshold::mean_std(&normal, 3.0).unwrap(),
        Threshold::f1_optimal(&[0.1, 0.9], &[false, true]).unwrap(),
        Threshold::fixed(2.5).unwrap(),
    ] {
        let text = serde_json::to_string(&t).unwrap();
        let back: Threshold = serde_json::from_str(&text).unwrap();
        assert_eq!(back, t, "{text}");
    }
    let text = serde_json::to_string(&Threshold::quantile(&normal, 0.5).unwrap()).unwrap();
    assert_eq!(
        text,
        r#"{"method":{"kind":"quantile","q":0.5},"value":0.5}"#
    );
    let parsed: Threshold =
        serde_json::from_str(r#"{"method":{"kind":"mean_std","k":3.0},"value":1.0}"#).unwrap();
    assert_eq!(parsed.method, ThresholdMethod::MeanStd { k: 3.0 });
}
