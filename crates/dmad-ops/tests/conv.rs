//! conv2d / conv1d against candle's forward and an autograd oracle built from candle primitives
//! (pad, index_select, matmul) for the gradients: candle 0.11.1's own conv backward passes are
//! wrong for some shapes (conv1d with batch > 1, conv2d with uneven output padding).

mod common;

use candle_core::{Tensor, Var};
use candle_nn::{Conv1dConfig, Conv2dConfig};
use common::{assert_close, randn};

/// Direct convolution from differentiable candle primitives.
fn oracle(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    s: usize,
    p: usize,
    d: usize,
    g: usize,
) -> Tensor {
    let (n, cin, h, wi) = x.dims4().unwrap();
    let (cout, cin_g, kh, kw) = w.dims4().unwrap();
    let ho = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
    let wo = (wi + 2 * p - d * (kw - 1) - 1) / s + 1;
    let xp = x
        .pad_with_zeros(2, p, p)
        .unwrap()
        .pad_with_zeros(3, p, p)
        .unwrap();
    let idx = |k: usize, len: usize| {
        let v: Vec<u32> = (0..len).map(|i| (k * d + i * s) as u32).collect();
        Tensor::new(v, x.device()).unwrap()
    };
    let mut out: Option<Tensor> = None;
    for ki in 0..kh {
        for kj in 0..kw {
            let patch = xp
                .index_select(&idx(ki, ho), 2)
                .unwrap()
                .index_select(&idx(kj, wo), 3)
                .unwrap()
                .reshape((n, g, cin_g, ho * wo))
                .unwrap();
            let wk = w
                .narrow(2, ki, 1)
                .unwrap()
                .narrow(3, kj, 1)
                .unwrap()
                .reshape((g, cout / g, cin_g))
                .unwrap();
            let term = wk.broadcast_matmul(&patch).unwrap();
            out = Some(match out {
                None => term,
                Some(o) => (o + term).unwrap(),
            });
        }
    }
    let out = out.unwrap().reshape((n, cout, ho, wo)).unwrap();
    let _ = cin;
    match b {
        Some(b) => out
            .broadcast_add(&b.reshape((1, cout, 1, 1)).unwrap())
            .unwrap(),
        None => out,
    }
}

struct Case {
    n: usize,
    cin: usize,
    cout: usize,
    hw: (usize, usize),
    k: (usize, usize),
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
    bias: bool,
}

#[allow(clippy::too_many_arguments)]
fn case(
    n: usize,
    cin: usize,
    cout: usize,
    hw: (usize, usize),
    k: (usize, usize),
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
    bias: bool,
) -> Case {
    Case {
        n,
        cin,
        cout,
        hw,
        k,
        stride,
        pad,
        dil,
        groups,
        bias,
    }
}

#[test]
fn conv2d_matches_candle_and_oracle_gradients_over_a_shape_sweep() {
    check_sweep(&[
        case(1, 3, 5, (7, 9), (3, 3), 1, 1, 1, 1, true),
        case(2, 4, 6, (8, 8), (3, 3), 2, 1, 1, 2, false),
        case(3, 6, 6, (9, 7), (3, 3), 2, 0, 1, 6, true),
        case(3, 4, 8, (5, 6), (3, 3), 1, 1, 1, 4, true),
        case(16, 2, 3, (5, 5), (1, 1), 1, 0, 1, 1, true),
        case(2, 4, 4, (6, 7), (1, 1), 2, 0, 1, 1, false),
        case(1, 3, 4, (10, 11), (5, 5), 1, 2, 1, 1, true),
        case(2, 4, 8, (9, 9), (3, 3), 1, 1, 2, 2, true),
        case(1, 2, 2, (4, 4), (3, 3), 2, 1, 1, 1, true),
        case(4, 3, 5, (6, 5), (3, 2), 1, 1, 1, 1, true),
        case(2, 64, 8, (20, 12), (3, 3), 1, 1, 1, 1, true),
        case(1, 512, 4, (30, 5), (1, 1), 1, 0, 1, 1, true),
        case(2, 3, 4, (1, 1), (1, 1), 1, 1, 1, 1, true),
    ]);
}

/// 3x3 kernels at stride 1 with at least 8 channels per group take the Winograd F(2x2, 3x3)
/// path: odd sizes, paddings 0-2, groups, batch 1-16, against candle and the oracle.
#[test]
fn conv2d_winograd_path_matches_candle_and_oracle_gradients() {
    check_sweep(&[
        case(1, 8, 8, (7, 9), (3, 3), 1, 1, 1, 1, true),
        case(3, 16, 8, (9, 7), (3, 3), 1, 0, 1, 1, false),
        case(2, 16, 16, (6, 5), (3, 3), 1, 2, 1, 2, true),
        case(16, 8, 8, (4, 4), (3, 3), 1, 1, 1, 1, true),
        case(1, 24, 40, (13, 11), (3, 3), 1, 1, 1, 1, true),
        case(2, 32, 32, (3, 3), (3, 3), 1, 0, 1, 4, true),
    ]);
}

fn check_sweep(cases: &[Case]) {
    for (i, c) in cases.iter().enumerate() {
        let seed = 100 * i as u64;
        let x = Var::from_tensor(&randn(seed, &[c.n, c.cin, c.hw.0, c.hw.1], 1.0, 0.0)).unwrap();
        let w = Var::from_tensor(&randn(
            seed + 1,
            &[c.cout, c.cin / c.groups, c.k.0, c.k.1],
            0.3,
            0.0,
        ))
        .unwrap();
        let b = Var::from_tensor(&randn(seed + 2, &[c.cout], 1.0, 0.0)).unwrap();
        let bias = c.bias.then_some(b.as_tensor());
        let cfg = Conv2dConfig {
            padding: c.pad,
            stride: c.stride,
            dilation: c.dil,
            groups: c.groups,
            cudnn_fwd_algo: None,
        };
        let what = format!("case {i}");
        let ours = dmad_ops::conv2d(&x, &w, bias, &cfg).unwrap();
        let mut candle = x.conv2d(&w, c.pad, c.stride, c.dil, c.groups).unwrap();
        if let Some(b) = bias {
            candle = candle
                .broadcast_add(&b.reshape((1, c.cout, 1, 1)).unwrap())
                .unwrap();
        }
        assert_close(&ours, &candle, 1e-4, &format!("{what}: forward vs candle"));
        let theirs = oracle(&x, &w, bias, c.stride, c.pad, c.dil, c.groups);
        assert_close(&ours, &theirs, 1e-4, &format!("{what}: forward vs oracle"));

        let up = randn(seed + 3, ours.dims(), 1.0, 0.0);
        let go = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gt = (theirs * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let mut vars = vec![(&x, "dx"), (&w, "dweight")];
        if c.bias {
            vars.push((&b, "dbias"));
        }
        // The graph-free vector-Jacobian product gives the same gradients (its `dbias` is the
        // bias gradient whether or not the forward pass had one).
        let (vx, vw, vb) = dmad_ops::conv2d_backward(&x, &w, &cfg, &up).unwrap();
        for (v, name) in vars {
            let want = gt.get(v).unwrap();
            assert_close(go.get(v).unwrap(), want, 1e-4, &format!("{what}: {name}"));
            let vjp = match name {
                "dx" => &vx,
                "dweight" => &vw,
                _ => &vb,
            };
            assert_close(vjp, want, 1e-4, &format!("{what}: backward {name}"));
        }
        let db_ref = up.sum((0, 2, 3)).unwrap();
        assert_close(&vb, &db_ref, 1e-4, &format!("{what}: backward dbias"));
    }
}

#[test]
fn conv1d_matches_candle_and_oracle_gradients() {
    // (n, cin, cout, len, k, stride, pad, dil, groups, bias)
    let cases = [
        (1, 3, 4, 17, 3, 1, 1, 1, 1, true),
        (4, 4, 6, 16, 3, 2, 1, 1, 2, true),
        (3, 4, 4, 9, 5, 2, 0, 1, 4, false),
        (16, 2, 3, 8, 1, 1, 0, 1, 1, true),
        (2, 2, 2, 11, 3, 1, 1, 2, 1, true),
    ];
    for (i, &(n, cin, cout, len, k, s, p, d, g, has_bias)) in cases.iter().enumerate() {
        let seed = 1000 + 10 * i as u64;
        let x = Var::from_tensor(&randn(seed, &[n, cin, len], 1.0, 0.0)).unwrap();
        let w = Var::from_tensor(&randn(seed + 1, &[cout, cin / g, k], 0.3, 0.0)).unwrap();
        let b = Var::from_tensor(&randn(seed + 2, &[cout], 1.0, 0.0)).unwrap();
        let bias = has_bias.then_some(b.as_tensor());
        let cfg = Conv1dConfig {
            padding: p,
            stride: s,
            dilation: d,
            groups: g,
            cudnn_fwd_algo: None,
        };
        let what = format!("conv1d case {i}");
        let ours = dmad_ops::conv1d(&x, &w, bias, &cfg).unwrap();
        let mut candle = x.conv1d(&w, p, s, d, g).unwrap();
        if let Some(b) = bias {
            candle = candle
                .broadcast_add(&b.reshape((1, cout, 1)).unwrap())
                .unwrap();
        }
        assert_close(&ours, &candle, 1e-4, &format!("{what}: forward vs candle"));
        // The oracle as a 1 x len image, padded by hand along the length only.
        let x2 = x.unsqueeze(2).unwrap().pad_with_zeros(3, p, p).unwrap();
        let w2 = w.unsqueeze(2).unwrap();
        let theirs = oracle(&x2, &w2, bias, s, 0, d, g).squeeze(2).unwrap();
        assert_close(&ours, &theirs, 1e-4, &format!("{what}: forward vs oracle"));
        let up = randn(seed + 3, ours.dims(), 1.0, 0.0);
        let go = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gt = (theirs * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let mut vars = vec![(&x, "dx"), (&w, "dweight")];
        if has_bias {
            vars.push((&b, "dbias"));
        }
        for (v, name) in vars {
            assert_close(
                go.get(v).unwrap(),
                gt.get(v).unwrap(),
                1e-4,
                &format!("{what}: {name}"),
            );
        }
    }
}

#[test]
fn layer_helpers_and_fallback_dtype_match_candle() {
    let x = randn(1, &[2, 4, 6, 6], 1.0, 0.0);
    let w = randn(2, &[3, 4, 3, 3], 0.3, 0.0);
    let b = randn(3, &[3], 1.0, 0.0);
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    let layer = candle_nn::Conv2d::new(w.clone(), Some(b.clone()), cfg);
    let reference = candle_core::Module::forward(&layer, &x).unwrap();
    assert_close(
        &dmad_ops::conv2d_layer(&layer, &x).unwrap(),
        &reference,
        1e-4,
        "layer",
    );
    let f64_ = |t: &Tensor| t.to_dtype(candle_core::DType::F64).unwrap();
    let layer64 = candle_nn::Conv2d::new(f64_(&w), Some(f64_(&b)), cfg);
    let y64 = dmad_ops::conv2d_layer(&layer64, &f64_(&x)).unwrap();
    assert_eq!(y64.dtype(), candle_core::DType::F64);
    assert_close(
        &y64.to_dtype(candle_core::DType::F32).unwrap(),
        &reference,
        1e-4,
        "f64 fallback",
    );

    let x1 = randn(4, &[2, 4, 9], 1.0, 0.0);
    let w1 = randn(5, &[3, 4, 3], 0.3, 0.0);
    let layer1 = candle_nn::Conv1d::new(w1.clone(), None, Conv1dConfig::default());
    let reference1 = candle_core::Module::forward(&layer1, &x1).unwrap();
    assert_close(
        &dmad_ops::conv1d_layer(&layer1, &x1).unwrap(),
        &reference1,
        1e-4,
        "conv1d layer",
    );
}

#[test]
fn bad_input_is_an_error() {
    use dmad_ops::Error;
    let x = randn(1, &[2, 4, 6, 6], 1.0, 0.0);
    let w = randn(2, &[3, 4, 3, 3], 0.3, 0.0);
    let cfg = |padding, stride, dilation, groups| Conv2dConfig {
        padding,
        stride,
        dilation,
        groups,
        cudnn_fwd_algo: None,
    };
    // A dy that is not shaped like the output names it.
    let err = dmad_ops::conv2d_backward(&x, &w, &cfg(1, 1, 1, 1), &x).unwrap_err();
    assert!(
        matches!(err, Error::ShapeMismatch { context, .. } if context.contains("dy")),
        "{err}"
    );
    assert!(matches!(
        dmad_ops::conv2d(&x, &w, None, &cfg(0, 0, 1, 1)),
        Err(Error::InvalidConfig {
            field: "stride",
            ..
        })
    ));
    assert!(matches!(
        dmad_ops::conv2d(&x, &w, None, &cfg(0, 1, 0, 1)),
        Err(Error::InvalidConfig {
            field: "dilation",
            ..
        })
    ));
    assert!(matches!(
        dmad_ops::conv2d(&x, &w, None, &cfg(0, 1, 1, 3)),
        Err(Error::InvalidConfig {
            field: "groups",
            ..
        })
    ));
    let w_wrong = randn(3, &[3, 2, 3, 3], 0.3, 0.0);
    assert!(matches!(
        dmad_ops::conv2d(&x, &w_wrong, None, &cfg(0, 1, 1, 1)),
        Err(Error::ShapeMismatch {
            context: "conv2d: weight",
            ..
        })
    ));
    let bias_wrong = randn(4, &[4], 1.0, 0.0);
    assert!(matches!(
        dmad_ops::conv2d(&x, &w, Some(&bias_wrong), &cfg(0, 1, 1, 1)),
        Err(Error::ShapeMismatch {
            context: "conv2d: bias",
            ..
        })
    ));
    let tiny = randn(5, &[1, 4, 2, 2], 1.0, 0.0);
    assert!(matches!(
        dmad_ops::conv2d(&tiny, &w, None, &cfg(0, 1, 1, 1)),
        Err(Error::ShapeMismatch {
            context: "conv2d: x",
            ..
        })
    ));
    let x3 = randn(6, &[2, 4, 6], 1.0, 0.0);
    assert!(matches!(
        dmad_ops::conv2d(&x3, &w, None, &cfg(0, 1, 1, 1)),
        Err(Error::ShapeMismatch {
            context: "conv2d: x",
            ..
        })
    ));
    let w1 = randn(7, &[3, 4, 3], 0.3, 0.0);
    assert!(matches!(
        dmad_ops::conv1d(&x, &w1, None, &Conv1dConfig::default()),
        Err(Error::ShapeMismatch {
            context: "conv1d: x",
            ..
        })
    ));
}

/// Repeated backward passes on the same inputs give bit-identical gradients (the weight
/// gradient is summed over samples in a fixed order, whatever rayon's schedule).
#[test]
fn conv2d_gradients_are_bit_identical_across_runs() {
    let x = Var::from_tensor(&randn(31, &[16, 8, 10, 10], 1.0, 0.0)).unwrap();
    let w = Var::from_tensor(&randn(32, &[8, 8, 3, 3], 0.2, 0.0)).unwrap();
    let up = randn(33, &[16, 8, 10, 10], 1.0, 0.0);
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    let bits = |t: &Tensor| -> Vec<u32> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.iter().map(|f| f.to_bits()).collect()
    };
    let mut want = None;
    for run in 0..6 {
        let y = dmad_ops::conv2d(&x, &w, None, &cfg).unwrap();
        let g = (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let got = (bits(g.get(&x).unwrap()), bits(g.get(&w).unwrap()));
        match &want {
            None => want = Some(got),
            Some(w) => assert!(w == &got, "run {run} differs from run 0"),
        }
    }
}
