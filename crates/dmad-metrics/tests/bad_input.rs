//! Bad input is a clear error variant, never a panic or NaN.

use dmad_metrics::{
    auprc, aupro, auroc, f1_max, pauc, pixel_auroc, point_adjusted_f1, point_adjusted_f1_max,
    pr_curve, pro_curve, roc_curve, top1_hit, ucr_top1_hit, vus, vus_pr, Error, Threshold,
    VusConfig,
};

const S: [f64; 4] = [0.1, 0.4, 0.35, 0.8];
const L: [bool; 4] = [false, false, true, true];

#[test]
fn different_lengths_are_a_length_mismatch() {
    let short = [false, true, false];
    let want = Error::LengthMismatch {
        what: "labels",
        expected: 4,
        got: 3,
    };
    assert_eq!(auroc(&S, &short).unwrap_err(), want);
    assert_eq!(auprc(&S, &short).unwrap_err(), want);
    assert_eq!(f1_max(&S, &short).unwrap_err(), want);
    assert_eq!(pauc(&S, &short, 0.1).unwrap_err(), want);
    assert_eq!(roc_curve(&S, &short).unwrap_err(), want);
    assert_eq!(pr_curve(&S, &short).unwrap_err(), want);
    assert_eq!(vus_pr(&S, &short, 100).unwrap_err(), want);
    assert_eq!(point_adjusted_f1_max(&S, &short).unwrap_err(), want);
    assert_eq!(point_adjusted_f1(&S, &short, 0.3).unwrap_err(), want);
    assert_eq!(Threshold::f1_optimal(&S, &short).unwrap_err(), want);
    let msg = auroc(&S, &short).unwrap_err().to_string();
    assert!(
        msg.contains("labels") && msg.contains('3') && msg.contains('4'),
        "{msg}"
    );
}

#[test]
fn one_class_labels_are_an_error_not_nan() {
    let none = [false; 4];
    let all = [true; 4];
    for (r, missing) in [
        (auroc(&S, &none), "anomalous"),
        (auroc(&S, &all), "normal"),
        (pauc(&S, &none, 0.1), "anomalous"),
        (pauc(&S, &all, 0.1), "normal"),
        (roc_curve(&S, &all).map(|c| c.fpr[0]), "normal"),
        (auprc(&S, &none), "anomalous"),
        (f1_max(&S, &none).map(|b| b.f1), "anomalous"),
        (pr_curve(&S, &none).map(|c| c.recall[0]), "anomalous"),
        (vus_pr(&S, &none, 10), "anomalous"),
        (vus_pr(&S, &all, 10), "normal"),
        (point_adjusted_f1_max(&S, &none), "anomalous"),
        (
            Threshold::f1_optimal(&S, &none).map(|t| t.value),
            "anomalous",
        ),
    ] {
        match r {
            Err(Error::OneClass { missing: m, .. }) => assert_eq!(m, missing),
            other => panic!("expected OneClass({missing}), got {other:?}"),
        }
    }
    let msg = auroc(&S, &none).unwrap_err().to_string();
    assert!(msg.contains("AUROC") && msg.contains("anomalous"), "{msg}");
}

#[test]
fn nan_and_infinite_scores_are_rejected_with_their_index() {
    let mut s = S;
    s[2] = f64::NAN;
    match auroc(&s, &L) {
        Err(Error::NonFiniteScore {
            what: "scores",
            index: 2,
            value,
        }) => assert!(value.is_nan()),
        other => panic!("{other:?}"),
    }
    s[2] = f64::INFINITY;
    assert!(matches!(
        auprc(&s, &L),
        Err(Error::NonFiniteScore { index: 2, .. })
    ));
    let s32 = [0.1f32, f32::NAN, 0.2, 0.3];
    assert!(matches!(
        f1_max(&s32, &L),
        Err(Error::NonFiniteScore { index: 1, .. })
    ));
    assert!(matches!(
        vus_pr(&s32, &L, 2),
        Err(Error::NonFiniteScore { index: 1, .. })
    ));
    assert!(matches!(
        ucr_top1_hit(&s32, 0, 1, 2),
        Err(Error::NonFiniteScore { index: 1, .. })
    ));
    assert!(matches!(
        Threshold::quantile(&s32, 0.5),
        Err(Error::NonFiniteScore {
            what: "normal",
            index: 1,
            ..
        })
    ));
    assert!(matches!(
        Threshold::mean_std(&s32, 3.0),
        Err(Error::NonFiniteScore {
            what: "normal",
            index: 1,
            ..
        })
    ));
    // In maps the index is the flat index over all pixels pooled.
    let maps = [vec![0.0, 1.0], vec![0.5, f64::NAN]];
    let masks = [vec![false, true], vec![false, false]];
    assert!(matches!(
        pixel_auroc(&maps, &masks),
        Err(Error::NonFiniteScore {
            what: "maps",
            index: 3,
            ..
        })
    ));
    assert!(matches!(
        aupro(&maps, &masks, 1, 2, 0.3),
        Err(Error::NonFiniteScore {
            what: "maps",
            index: 3,
            ..
        })
    ));
}

#[test]
fn empty_input_is_an_error() {
    let e: [f64; 0] = [];
    assert_eq!(auroc(&e, &[]).unwrap_err(), Error::Empty { what: "scores" });
    assert_eq!(auprc(&e, &[]).unwrap_err(), Error::Empty { what: "scores" });
    assert_eq!(
        vus(&e, &[], &VusConfig::default()).unwrap_err(),
        Error::Empty { what: "scores" }
    );
    assert_eq!(
        ucr_top1_hit(&e, 0, 1, 2).unwrap_err(),
        Error::Empty { what: "scores" }
    );
    assert_eq!(
        Threshold::quantile(&e, 0.5).unwrap_err(),
        Error::Empty { what: "normal" }
    );
    assert_eq!(
        Threshold::mean_std(&e, 3.0).unwrap_err(),
        Error::Empty { what: "normal" }
    );
    assert_eq!(
        Threshold::f1_optimal_split(&[0.1], &e).unwrap_err(),
        Error::Empty { what: "anomalous" }
    );
    let no_maps: [Vec<f64>; 0] = [];
    let no_masks: [Vec<bool>; 0] = [];
    assert_eq!(
        pixel_auroc(&no_maps, &no_masks).unwrap_err(),
        Error::Empty { what: "maps" }
    );
    assert_eq!(
        aupro(&no_maps, &no_masks, 4, 4, 0.3).unwrap_err(),
        Error::Empty { what: "maps" }
    );
    let empty_maps = [Vec::<f64>::new()];
    let empty_masks = [Vec::<bool>::new()];
    assert_eq!(
        pixel_auroc(&empty_maps, &empty_masks).unwrap_err(),
        Error::Empty { what: "maps" }
    );
}

#[test]
fn map_and_mask_shapes_must_agree() {
    let maps = [vec![0.0; 6], vec![0.0; 6]];
    let masks = [vec![false; 6], vec![true; 5]];
    let err = aupro(&maps, &masks, 2, 3, 0.3).unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            context: "mask 1".into(),
            expected: 6,
            got: 5
        }
    );
    assert!(err.to_string().contains("mask 1"));
    assert!(matches!(
        pixel_auroc(&maps, &masks),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        pro_curve(&maps, &masks, 2, 3),
        Err(Error::ShapeMismatch { .. })
    ));
    // A map that is not height * width.
    let masks = [vec![false; 6], vec![true; 6]];
    assert_eq!(
        aupro(&maps, &masks, 3, 3, 0.3).unwrap_err(),
        Error::ShapeMismatch {
            context: "map 0".into(),
            expected: 9,
            got: 6
        }
    );
    // A different number of masks than maps.
    assert_eq!(
        aupro(&maps, &masks[..1], 2, 3, 0.3).unwrap_err(),
        Error::LengthMismatch {
            what: "masks",
            expected: 2,
            got: 1
        }
    );
}

#[test]
fn aupro_needs_defect_and_defect_free_pixels() {
    let maps = [vec![0.0, 1.0, 2.0, 3.0]];
    assert_eq!(
        aupro(&maps, &[vec![false; 4]], 2, 2, 0.3).unwrap_err(),
        Error::OneClass {
            metric: "AUPRO",
            missing: "anomalous"
        }
    );
    assert_eq!(
        aupro(&maps, &[vec![true; 4]], 2, 2, 0.3).unwrap_err(),
        Error::OneClass {
            metric: "AUPRO",
            missing: "normal"
        }
    );
    assert!(matches!(
        pixel_auroc(&maps, &[vec![true; 4]]),
        Err(Error::OneClass {
            missing: "normal",
            ..
        })
    ));
}

#[test]
fn parameters_out_of_range_are_rejected() {
    for bad in [0.0, -0.1, 1.5, f64::NAN] {
        assert!(
            matches!(
                pauc(&S, &L, bad),
                Err(Error::InvalidParameter {
                    name: "max_fpr",
                    ..
                })
            ),
            "pauc {bad}"
        );
        let maps = [vec![0.0, 1.0]];
        let masks = [vec![false, true]];
        assert!(
            matches!(
                aupro(&maps, &masks, 1, 2, bad),
                Err(Error::InvalidParameter {
                    name: "max_fpr",
                    ..
                })
            ),
            "aupro {bad}"
        );
    }
    for bad in [-0.01, 1.01, f64::NAN] {
        assert!(matches!(
            Threshold::quantile(&S, bad),
            Err(Error::InvalidParameter { name: "q", .. })
        ));
    }
    assert!(matches!(
        Threshold::mean_std(&S, f64::INFINITY),
        Err(Error::InvalidParameter { name: "k", .. })
    ));
    assert!(matches!(
        Threshold::fixed(f64::NAN),
        Err(Error::InvalidParameter { name: "value", .. })
    ));
    let cfg = VusConfig {
        window: 10,
        thresholds: 0,
    };
    assert!(matches!(
        vus(&S, &L, &cfg),
        Err(Error::InvalidParameter {
            name: "thresholds",
            ..
        })
    ));
    assert!(matches!(
        top1_hit(&S, 0, 5, 5, 100),
        Err(Error::InvalidParameter { name: "begin", .. })
    ));
    assert!(matches!(
        point_adjusted_f1(&S, &L, f64::NAN),
        Err(Error::InvalidParameter {
            name: "threshold",
            ..
        })
    ));
    let maps = [vec![0.0, 1.0]];
    let masks = [vec![false, true]];
    assert!(matches!(
        aupro(&maps, &masks, 0, 2, 0.3),
        Err(Error::InvalidParameter { name: "height", .. })
    ));
    assert!(matches!(
        aupro(&maps, &masks, 2, 0, 0.3),
        Err(Error::InvalidParameter { name: "width", .. })
    ));
}

#[test]
fn every_valid_result_is_finite() {
    // Degenerate but valid inputs: one sample per class, all scores tied, huge windows.
    let s = [1.0, 1.0];
    let l = [true, false];
    for v in [
        auroc(&s, &l).unwrap(),
        auprc(&s, &l).unwrap(),
        pauc(&s, &l, 0.01).unwrap(),
        f1_max(&s, &l).unwrap().f1,
        vus_pr(&s, &l, 1000).unwrap(),
        vus(&s, &l, &VusConfig::default()).unwrap().roc,
        point_adjusted_f1_max(&s, &l).unwrap(),
    ] {
        assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{v}");
    }
}
