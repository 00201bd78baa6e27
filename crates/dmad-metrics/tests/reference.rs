//! Every metric against the reference values of `testdata/metrics/` (scikit-learn, TSB-AD,
//! MVTec AD's AUPRO code, NumPy), written by `tools/fixtures/metrics_reference.py`.

use std::path::PathBuf;

use dmad_metrics::{
    auprc, aupro, auroc, f1_max, pauc, pixel_auprc, pixel_auroc, point_adjusted_f1_max, pr_curve,
    pro_curve, roc_curve, ucr_top1_hit, vus, Threshold, VusConfig,
};
use serde_json::Value;

const TOL: f64 = 1e-9;

fn load(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/metrics")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "{name} has no cases");
    cases
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap() != 0)
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[track_caller]
fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL * want.abs().max(1.0),
        "{what}: got {got}, want {want} (diff {:e})",
        (got - want).abs()
    );
}

#[track_caller]
fn assert_all_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_close(g, w, &format!("{what}[{i}]"));
    }
}

#[test]
fn ranking_metrics_match_scikit_learn() {
    let mut checked = 0;
    for case in load("ranking.json") {
        let name = case["name"].as_str().unwrap();
        let s = floats(&case["scores"]);
        let l = bools(&case["labels"]);
        if let Some(want) = case.get("auroc") {
            assert_close(auroc(&s, &l).unwrap(), num(want), &format!("{name} auroc"));
            for p in case["pauc"].as_array().unwrap() {
                let m = num(&p["max_fpr"]);
                assert_close(
                    pauc(&s, &l, m).unwrap(),
                    num(&p["value"]),
                    &format!("{name} pauc {m}"),
                );
            }
            let roc = roc_curve(&s, &l).unwrap();
            assert_all_close(
                &roc.fpr,
                &floats(&case["roc"]["fpr"]),
                &format!("{name} roc fpr"),
            );
            assert_all_close(
                &roc.tpr,
                &floats(&case["roc"]["tpr"]),
                &format!("{name} roc tpr"),
            );
            assert_eq!(roc.thresholds[0], f64::INFINITY);
            assert_all_close(
                &roc.thresholds[1..],
                &floats(&case["roc"]["thresholds_after_inf"]),
                &format!("{name} roc thresholds"),
            );
            checked += 1;
        } else {
            assert!(
                auroc(&s, &l).is_err(),
                "{name}: auroc of one class must fail"
            );
        }
        if let Some(want) = case.get("auprc") {
            assert_close(auprc(&s, &l).unwrap(), num(want), &format!("{name} auprc"));
            let pr = pr_curve(&s, &l).unwrap();
            assert_all_close(
                &pr.precision,
                &floats(&case["pr"]["precision"]),
                &format!("{name} precision"),
            );
            assert_all_close(
                &pr.recall,
                &floats(&case["pr"]["recall"]),
                &format!("{name} recall"),
            );
            assert_all_close(
                &pr.thresholds,
                &floats(&case["pr"]["thresholds"]),
                &format!("{name} pr thr"),
            );
            let best = f1_max(&s, &l).unwrap();
            let want = &case["f1_max"];
            assert_close(best.f1, num(&want["f1"]), &format!("{name} f1"));
            assert_eq!(
                best.threshold,
                num(&want["threshold"]),
                "{name} f1 threshold"
            );
            assert_close(
                best.precision,
                num(&want["precision"]),
                &format!("{name} f1 precision"),
            );
            assert_close(
                best.recall,
                num(&want["recall"]),
                &format!("{name} f1 recall"),
            );
            let t = Threshold::f1_optimal(&s, &l).unwrap();
            assert_eq!(t.value, best.threshold);
        }
    }
    assert!(checked >= 10, "only {checked} two-class cases");
}

#[test]
fn ranking_metrics_accept_f32_scores() {
    // f32 scores that are exactly representable give the same answers as f64.
    let case = &load("ranking.json")[0];
    let s = floats(&case["scores"]);
    let s32: Vec<f32> = s.iter().map(|&x| x as f32).collect();
    let l = bools(&case["labels"]);
    let exact: Vec<f64> = s32.iter().map(|&x| x as f64).collect();
    assert_eq!(auroc(&s32, &l).unwrap(), auroc(&exact, &l).unwrap());
}

#[test]
fn aupro_matches_mvtec_code() {
    for case in load("aupro.json") {
        let name = case["name"].as_str().unwrap();
        let h = case["height"].as_u64().unwrap() as usize;
        let w = case["width"].as_u64().unwrap() as usize;
        let maps: Vec<Vec<f64>> = case["maps"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        let masks: Vec<Vec<bool>> = case["masks"]
            .as_array()
            .unwrap()
            .iter()
            .map(bools)
            .collect();
        for a in case["aupro"].as_array().unwrap() {
            let lim = num(&a["max_fpr"]);
            let got = aupro(&maps, &masks, h, w, lim).unwrap();
            assert_close(got, num(&a["value"]), &format!("{name} aupro {lim}"));
        }
        assert_close(
            pixel_auroc(&maps, &masks).unwrap(),
            num(&case["pixel_auroc"]),
            &format!("{name} pixel auroc"),
        );
        assert_close(
            pixel_auprc(&maps, &masks).unwrap(),
            num(&case["pixel_auprc"]),
            &format!("{name} pixel auprc"),
        );
        if let Some(curve) = case.get("curve") {
            let c = pro_curve(&maps, &masks, h, w).unwrap();
            assert_all_close(
                &c.fpr,
                &floats(&curve["fpr"]),
                &format!("{name} pro curve fpr"),
            );
            assert_all_close(
                &c.pro,
                &floats(&curve["pro"]),
                &format!("{name} pro curve pro"),
            );
        }
    }
}

#[test]
fn vus_matches_tsb_ad() {
    for case in load("vus.json") {
        let name = case["name"].as_str().unwrap();
        let s = floats(&case["scores"]);
        let l = bools(&case["labels"]);
        let cfg = VusConfig {
            window: case["window"].as_u64().unwrap() as usize,
            thresholds: case["thresholds"].as_u64().unwrap() as usize,
        };
        let v = vus(&s, &l, &cfg).unwrap();
        assert_close(v.pr, num(&case["vus_pr"]), &format!("{name} vus-pr"));
        assert_close(v.roc, num(&case["vus_roc"]), &format!("{name} vus-roc"));
    }
}

#[test]
fn thresholds_match_numpy() {
    for case in load("thresholds.json") {
        let name = case["name"].as_str().unwrap();
        let normal = floats(&case["normal"]);
        for q in case["quantile"].as_array().unwrap() {
            let t = Threshold::quantile(&normal, num(&q["q"])).unwrap();
            assert_close(
                t.value,
                num(&q["value"]),
                &format!("{name} quantile {}", q["q"]),
            );
        }
        for k in case["mean_std"].as_array().unwrap() {
            let t = Threshold::mean_std(&normal, num(&k["k"])).unwrap();
            assert_close(
                t.value,
                num(&k["value"]),
                &format!("{name} mean+k*std {}", k["k"]),
            );
        }
    }
}

#[test]
fn series_scores_match_reference() {
    for case in load("series.json") {
        let name = case["name"].as_str().unwrap();
        let s = floats(&case["scores"]);
        let l = bools(&case["labels"]);
        let offset = case["offset"].as_u64().unwrap() as usize;
        let begin = case["begin"].as_u64().unwrap() as usize;
        let end = case["end"].as_u64().unwrap() as usize;
        assert_eq!(
            ucr_top1_hit(&s, offset, begin, end).unwrap(),
            case["ucr_hit"].as_bool().unwrap(),
            "{name} ucr hit"
        );
        assert_close(
            point_adjusted_f1_max(&s, &l).unwrap(),
            num(&case["pa_f1_max"]),
            &format!("{name} PA-F1"),
        );
    }
}
