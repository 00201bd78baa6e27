//! The MLP layers' ops (`linear`, `layer_norm(_silu)`, `silu`) against candle's compositions,
//! forward and backward, on the CPU kernels and the f64 fallback.

mod common;

use candle_core::{DType, Tensor, Var, D};
use common::{assert_close, randn};

/// Gradients of `sum(f(inputs) * up)` for each input.
fn grads(inputs: &[&Var], up: &Tensor, f: impl Fn(&[&Tensor]) -> Tensor) -> Vec<Tensor> {
    let ts: Vec<&Tensor> = inputs.iter().map(|v| v.as_tensor()).collect();
    let g = (f(&ts) * up)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    inputs.iter().map(|v| g.get(v).unwrap().clone()).collect()
}

fn layer_norm_reference(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64, silu: bool) -> Tensor {
    // The composition of differentiable ops (candle_nn::LayerNorm's fused op has no backward).
    let mean = x.mean_keepdim(D::Minus1).unwrap();
    let xc = x.broadcast_sub(&mean).unwrap();
    let var = xc.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let xn = xc
        .broadcast_div(&(var + eps).unwrap().sqrt().unwrap())
        .unwrap();
    let y = xn.broadcast_mul(w).unwrap().broadcast_add(b).unwrap();
    if silu {
        y.silu().unwrap()
    } else {
        y
    }
}

#[test]
fn linear_matches_candle_with_a_bias_and_with_a_per_row_addend() {
    // (batch, in, out); 1-wide and odd shapes included.
    for (k, &(n, i, o)) in [(1, 1, 1), (3, 5, 7), (64, 33, 17), (512, 152, 256)]
        .iter()
        .enumerate()
    {
        for per_row in [false, true] {
            let seed = 100 + 10 * k as u64;
            let x = Var::from_tensor(&randn(seed, &[n, i], 1.0, 0.0)).unwrap();
            let w = Var::from_tensor(&randn(seed + 1, &[o, i], 0.3, 0.0)).unwrap();
            let bdims = if per_row { vec![n, o] } else { vec![o] };
            let b = Var::from_tensor(&randn(seed + 2, &bdims, 1.0, 0.5)).unwrap();
            let up = randn(seed + 3, &[n, o], 1.0, 0.0);
            let what = format!("linear {n}x{i}->{o} per_row {per_row}");
            let ours = |t: &[&Tensor]| dmad_ops::linear(t[0], t[1], t[2]).unwrap();
            let theirs = |t: &[&Tensor]| {
                t[0].matmul(&t[1].t().unwrap())
                    .unwrap()
                    .broadcast_add(t[2])
                    .unwrap()
            };
            let (xs, ws, bs) = (x.as_tensor(), w.as_tensor(), b.as_tensor());
            assert_close(&ours(&[xs, ws, bs]), &theirs(&[xs, ws, bs]), 1e-5, &what);
            let go = grads(&[&x, &w, &b], &up, ours);
            let gt = grads(&[&x, &w, &b], &up, theirs);
            for (name, (a, e)) in ["dx", "dweight", "dbias"].iter().zip(go.iter().zip(&gt)) {
                assert_close(a, e, 1e-4, &format!("{what}: {name}"));
            }
            // f64 runs candle's composition.
            let f64s = [xs, ws, bs].map(|t| t.to_dtype(DType::F64).unwrap());
            let y64 = dmad_ops::linear(&f64s[0], &f64s[1], &f64s[2]).unwrap();
            assert_eq!(y64.dtype(), DType::F64);
            assert_close(
                &y64.to_dtype(DType::F32).unwrap(),
                &theirs(&[xs, ws, bs]),
                1e-5,
                &what,
            );
        }
    }
}

#[test]
fn linear_gradients_are_bit_identical_across_runs() {
    let x = Var::from_tensor(&randn(1, &[96, 40], 1.0, 0.0)).unwrap();
    let w = Var::from_tensor(&randn(2, &[24, 40], 0.3, 0.0)).unwrap();
    let b = Var::from_tensor(&randn(3, &[24], 1.0, 0.0)).unwrap();
    let up = randn(4, &[96, 24], 1.0, 0.0);
    let run = || {
        grads(&[&x, &w, &b], &up, |t| {
            dmad_ops::linear(t[0], t[1], t[2]).unwrap()
        })
        .iter()
        .map(|g| g.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn layer_norm_and_silu_match_candle_forward_and_backward() {
    // (rows, width): fewer rows than a parallel task, several tasks with a remainder, width 1.
    for (k, &(n, w)) in [(1, 1), (3, 7), (70, 33), (512, 256)].iter().enumerate() {
        for silu in [false, true] {
            let seed = 200 + 10 * k as u64;
            let x = Var::from_tensor(&randn(seed, &[n, w], 2.0, 0.5)).unwrap();
            let g = Var::from_tensor(&randn(seed + 1, &[w], 0.5, 1.0)).unwrap();
            let b = Var::from_tensor(&randn(seed + 2, &[w], 0.5, 0.0)).unwrap();
            let up = randn(seed + 3, &[n, w], 1.0, 0.0);
            let what = format!("layer norm {n}x{w} silu {silu}");
            let ours = |t: &[&Tensor]| {
                if silu {
                    dmad_ops::layer_norm_silu(t[0], t[1], t[2], 1e-5).unwrap()
                } else {
                    dmad_ops::layer_norm(t[0], t[1], t[2], 1e-5).unwrap()
                }
            };
            let theirs = |t: &[&Tensor]| layer_norm_reference(t[0], t[1], t[2], 1e-5, silu);
            let (xs, gs, bs) = (x.as_tensor(), g.as_tensor(), b.as_tensor());
            assert_close(&ours(&[xs, gs, bs]), &theirs(&[xs, gs, bs]), 1e-4, &what);
            let go = grads(&[&x, &g, &b], &up, ours);
            let gt = grads(&[&x, &g, &b], &up, theirs);
            for (name, (a, e)) in ["dx", "dweight", "dbias"].iter().zip(go.iter().zip(&gt)) {
                assert_close(a, e, 1e-4, &format!("{what}: {name}"));
            }
        }
    }
    // SiLU alone, over more elements than one parallel task.
    let x = Var::from_tensor(&randn(300, &[40_000], 4.0, 0.0)).unwrap();
    let up = randn(301, &[40_000], 1.0, 0.0);
    let xs = x.as_tensor();
    assert_close(
        &dmad_ops::silu(xs).unwrap(),
        &xs.silu().unwrap(),
        1e-5,
        "silu",
    );
    let go = grads(&[&x], &up, |t| dmad_ops::silu(t[0]).unwrap());
    let gt = grads(&[&x], &up, |t| t[0].silu().unwrap());
    assert_close(&go[0], &gt[0], 1e-5, "silu backward");
}

#[test]
fn layer_norm_of_a_large_mean_keeps_its_precision() {
    // f64 sums: rows around 100 with spread 0.01 normalise as in f64.
    let x = randn(7, &[4, 64], 0.01, 100.0);
    let w = randn(8, &[64], 1.0, 0.0);
    let b = randn(9, &[64], 1.0, 0.0);
    let f64_ = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
    let want = layer_norm_reference(&f64_(&x), &f64_(&w), &f64_(&b), 1e-5, false)
        .to_dtype(DType::F32)
        .unwrap();
    let ours = dmad_ops::layer_norm(&x, &w, &b, 1e-5).unwrap();
    assert_close(&ours, &want, 1e-3, "large mean");
    assert!(ours
        .mean(D::Minus1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn bad_shapes_are_named_errors() {
    let x = randn(1, &[4, 6], 1.0, 0.0);
    let w = randn(2, &[3, 6], 1.0, 0.0);
    let msg = |r: dmad_ops::Result<Tensor>| r.unwrap_err().to_string();
    assert!(msg(dmad_ops::linear(
        &x,
        &randn(3, &[3, 5], 1.0, 0.0),
        &randn(4, &[3], 1.0, 0.0)
    ))
    .contains("linear: weight"));
    assert!(msg(dmad_ops::linear(&x, &w, &randn(4, &[4], 1.0, 0.0))).contains("linear: bias"));
    assert!(msg(dmad_ops::linear(&x, &w, &randn(4, &[2, 3], 1.0, 0.0))).contains("linear: bias"));
    assert!(msg(dmad_ops::linear(
        &randn(5, &[2, 4, 6], 1.0, 0.0),
        &w,
        &randn(4, &[3], 1.0, 0.0)
    ))
    .contains("linear: x"));
    let g = randn(6, &[6], 1.0, 0.0);
    assert!(msg(dmad_ops::layer_norm(
        &randn(7, &[2, 3, 6], 1.0, 0.0),
        &g,
        &g,
        1e-5
    ))
    .contains("layer_norm: x"));
    assert!(msg(dmad_ops::layer_norm(
        &x,
        &randn(8, &[5], 1.0, 0.0),
        &g,
        1e-5
    ))
    .contains("layer_norm: weight"));
}
