//! Blocked attention against the plain candle composition, forward and backward.

mod common;

use candle_core::{Tensor, Var, D};
use common::{assert_close, randn};

/// `(batch * heads, tq, tk, d, dv, scale, input std)`.
type Case = (usize, usize, usize, usize, usize, Option<f64>, f32);

fn reference(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
    let s = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
    candle_nn::ops::softmax(&s, D::Minus1)
        .unwrap()
        .matmul(v)
        .unwrap()
}

#[test]
fn forward_and_backward_match_candle_over_a_shape_sweep() {
    let cases: &[Case] = &[
        (1, 1, 1, 1, 1, None, 1.0),
        (2, 7, 9, 3, 5, None, 1.0),
        (16, 5, 5, 4, 4, None, 1.0),
        (3, 65, 300, 8, 8, None, 1.0),
        (2, 130, 513, 16, 16, Some(0.3), 1.0),
        (1, 33, 600, 5, 7, None, 4.0),
        (4, 64, 256, 16, 16, None, 1.0),
        // Wider than the register-blocked score kernel: the gemm path.
        (2, 40, 300, 72, 8, None, 1.0),
        // Value width above it (dO V^T through gemm), several query and key tiles.
        (2, 200, 530, 8, 80, None, 1.0),
        // Large scores: the backward pass's log-sum-exp must not overflow.
        (2, 70, 280, 8, 8, Some(1.0), 10.0),
    ];
    for (i, &(b, tq, tk, d, dv, scale, std)) in cases.iter().enumerate() {
        let seed = 500 + 10 * i as u64;
        let q = Var::from_tensor(&randn(seed, &[b, tq, d], std, 0.0)).unwrap();
        let k = Var::from_tensor(&randn(seed + 1, &[b, tk, d], std, 0.0)).unwrap();
        let v = Var::from_tensor(&randn(seed + 2, &[b, tk, dv], 1.0, 0.0)).unwrap();
        let what = format!("case {i}");
        let ours = dmad_ops::attention(&q, &k, &v, scale).unwrap();
        let theirs = reference(&q, &k, &v, scale.unwrap_or(1.0 / (d as f64).sqrt()));
        assert_close(&ours, &theirs, 1e-4, &format!("{what}: forward"));
        let up = randn(seed + 3, ours.dims(), 1.0, 0.0);
        let go = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gt = (theirs * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (t, name) in [(&q, "dq"), (&k, "dk"), (&v, "dv")] {
            assert_close(
                go.get(t).unwrap(),
                gt.get(t).unwrap(),
                1e-4,
                &format!("{what}: {name}"),
            );
        }
    }
}

#[test]
fn huge_scores_stay_finite_and_match() {
    // Scores of several hundred: a naive exp would overflow.
    let q = randn(1, &[2, 70, 8], 10.0, 0.0);
    let k = randn(2, &[2, 280, 8], 10.0, 0.0);
    let v = randn(3, &[2, 280, 8], 1.0, 0.0);
    let ours = dmad_ops::attention(&q, &k, &v, Some(1.0)).unwrap();
    assert_close(&ours, &reference(&q, &k, &v, 1.0), 1e-4, "huge scores");
}

#[test]
fn f64_falls_back_to_candle() {
    let f64_ = |t: Tensor| t.to_dtype(candle_core::DType::F64).unwrap();
    let q = f64_(randn(4, &[2, 5, 4], 1.0, 0.0));
    let k = f64_(randn(5, &[2, 6, 4], 1.0, 0.0));
    let v = f64_(randn(6, &[2, 6, 3], 1.0, 0.0));
    let ours = dmad_ops::attention(&q, &k, &v, None).unwrap();
    let theirs = reference(&q, &k, &v, 0.5);
    let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f64>().unwrap() < 1e-12);
}

#[test]
fn bad_shapes_are_errors() {
    use dmad_ops::Error;
    let q = randn(1, &[2, 5, 4], 1.0, 0.0);
    let k = randn(2, &[2, 6, 4], 1.0, 0.0);
    let v = randn(3, &[2, 6, 3], 1.0, 0.0);
    let k_bad = randn(4, &[2, 6, 5], 1.0, 0.0);
    let v_bad = randn(5, &[2, 7, 3], 1.0, 0.0);
    let q4 = randn(6, &[1, 2, 5, 4], 1.0, 0.0);
    assert!(matches!(
        dmad_ops::attention(&q, &k_bad, &v, None),
        Err(Error::ShapeMismatch {
            context: "attention: k",
            ..
        })
    ));
    assert!(matches!(
        dmad_ops::attention(&q, &k, &v_bad, None),
        Err(Error::ShapeMismatch {
            context: "attention: v",
            ..
        })
    ));
    assert!(matches!(
        dmad_ops::attention(&q4, &k, &v, None),
        Err(Error::ShapeMismatch {
            context: "attention: q",
            ..
        })
    ));
}
