//! GroupNorm (+SiLU) against `candle_nn::GroupNorm` (then `.silu()`), forward and backward.

mod common;

use candle_core::{Module, Var};
use common::{assert_close, randn};

fn reference(
    x: &candle_core::Tensor,
    groups: usize,
    w: &candle_core::Tensor,
    b: &candle_core::Tensor,
    eps: f64,
    silu: bool,
) -> candle_core::Tensor {
    let c = x.dim(1).unwrap();
    let gn = candle_nn::GroupNorm::new(w.clone(), b.clone(), c, groups, eps).unwrap();
    let y = gn.forward(x).unwrap();
    if silu {
        y.silu().unwrap()
    } else {
        y
    }
}

#[test]
fn forward_and_backward_match_candle_over_a_shape_sweep() {
    // (batch, channels, spatial dims, groups)
    let cases: &[(usize, usize, &[usize], usize)] = &[
        (1, 4, &[5, 7], 2),
        (2, 6, &[3, 3], 3),
        (3, 8, &[1, 9], 8),
        (16, 4, &[2, 3], 1),
        (2, 12, &[11], 4),
        (1, 32, &[8, 8], 32),
        (4, 64, &[4, 5], 32),
        (2, 6, &[2, 3, 2], 2),
    ];
    for (k, &(n, c, sp, g)) in cases.iter().enumerate() {
        for silu in [false, true] {
            let mut dims = vec![n, c];
            dims.extend_from_slice(sp);
            let seed = 10 * k as u64;
            let x = Var::from_tensor(&randn(seed, &dims, 2.0, 0.5)).unwrap();
            let w = Var::from_tensor(&randn(seed + 1, &[c], 0.5, 1.0)).unwrap();
            let b = Var::from_tensor(&randn(seed + 2, &[c], 0.5, 0.0)).unwrap();
            let up = randn(seed + 3, &dims, 1.0, 0.0);
            let what = format!("case {k} {dims:?} groups {g} silu {silu}");

            let ours = if silu {
                dmad_ops::group_norm_silu(&x, g, &w, &b, 1e-5).unwrap()
            } else {
                dmad_ops::group_norm(&x, g, &w, &b, 1e-5).unwrap()
            };
            let theirs = reference(&x, g, &w, &b, 1e-5, silu);
            assert_close(&ours, &theirs, 1e-4, &format!("{what}: forward"));

            let go = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
            let gt = (theirs * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            // The graph-free vector-Jacobian product, on the fast kernel and (f64) on the
            // candle fallback.
            let vjp = dmad_ops::group_norm_backward(&x, g, &w, &b, 1e-5, silu, &up).unwrap();
            let f64s = [&x, &w, &b, &Var::from_tensor(&up).unwrap()]
                .map(|t| t.to_dtype(candle_core::DType::F64).unwrap());
            let vjp64 = dmad_ops::group_norm_backward(
                &f64s[0], g, &f64s[1], &f64s[2], 1e-5, silu, &f64s[3],
            )
            .unwrap();
            let vjp = [vjp.0, vjp.1, vjp.2];
            let vjp64 = [vjp64.0, vjp64.1, vjp64.2];
            for (i, (v, name)) in [(&x, "dx"), (&w, "dweight"), (&b, "dbias")]
                .into_iter()
                .enumerate()
            {
                let want = gt.get(v).unwrap();
                assert_close(go.get(v).unwrap(), want, 1e-4, &format!("{what}: {name}"));
                assert_close(&vjp[i], want, 1e-4, &format!("{what}: backward {name}"));
                let v64 = vjp64[i].to_dtype(candle_core::DType::F32).unwrap();
                assert_close(&v64, want, 1e-4, &format!("{what}: f64 backward {name}"));
            }
        }
    }
}

#[test]
fn large_mean_matches_candle_in_f64() {
    let x = randn(7, &[2, 8, 6, 6], 0.01, 100.0);
    let w = randn(8, &[8], 1.0, 0.0);
    let b = randn(9, &[8], 1.0, 0.0);
    let ours = dmad_ops::group_norm(&x, 4, &w, &b, 1e-2).unwrap();
    // candle's f32 sums lose ~3e-4 here, so the oracle is candle's GroupNorm in f64.
    let f64_ = |t: &candle_core::Tensor| t.to_dtype(candle_core::DType::F64).unwrap();
    let theirs = reference(&f64_(&x), 4, &f64_(&w), &f64_(&b), 1e-2, false)
        .to_dtype(candle_core::DType::F32)
        .unwrap();
    assert_close(&ours, &theirs, 1e-4, "large mean, eps 1e-2");
}

#[test]
fn layer_matches_free_function_and_module() {
    let x = randn(11, &[2, 8, 4, 4], 1.0, 0.0);
    let w = randn(12, &[8], 1.0, 0.0);
    let b = randn(13, &[8], 1.0, 0.0);
    let gn = dmad_ops::GroupNorm::new(w.clone(), b.clone(), 2, 1e-6).unwrap();
    let via_module = Module::forward(&gn, &x).unwrap();
    assert_close(
        &via_module,
        &reference(&x, 2, &w, &b, 1e-6, false),
        1e-4,
        "module",
    );
    let fused = gn.forward_silu(&x).unwrap();
    assert_close(&fused, &reference(&x, 2, &w, &b, 1e-6, true), 1e-4, "fused");
}

#[test]
fn other_dtypes_fall_back_to_candle() {
    let x = randn(14, &[2, 4, 3, 3], 1.0, 0.0)
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let w = randn(15, &[4], 1.0, 0.0)
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let b = randn(16, &[4], 1.0, 0.0)
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let ours = dmad_ops::group_norm_silu(&x, 2, &w, &b, 1e-5).unwrap();
    let theirs = reference(&x, 2, &w, &b, 1e-5, true);
    let d = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
    assert!(d.to_scalar::<f64>().unwrap() < 1e-12);
}

#[test]
fn bad_input_is_an_error() {
    let w = randn(1, &[6], 1.0, 0.0);
    let b = randn(2, &[6], 1.0, 0.0);
    let x = randn(3, &[2, 6, 4], 1.0, 0.0);
    assert!(matches!(
        dmad_ops::group_norm(&x, 4, &w, &b, 1e-5),
        Err(dmad_ops::Error::InvalidConfig {
            field: "num_groups",
            ..
        })
    ));
    assert!(matches!(
        dmad_ops::group_norm(&x, 0, &w, &b, 1e-5),
        Err(dmad_ops::Error::InvalidConfig { .. })
    ));
    let flat = randn(4, &[2, 6], 1.0, 0.0);
    assert!(matches!(
        dmad_ops::group_norm(&flat, 2, &w, &b, 1e-5),
        Err(dmad_ops::Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        dmad_ops::group_norm_backward(&x, 2, &w, &b, 1e-5, true, &flat),
        Err(dmad_ops::Error::ShapeMismatch {
            context: "group_norm_backward: dy",
            ..
        })
    ));
    let short = randn(5, &[5], 1.0, 0.0);
    assert!(matches!(
        dmad_ops::group_norm_silu(&x, 2, &short, &b, 1e-5),
        Err(dmad_ops::Error::ShapeMismatch {
            context: "group_norm: weight",
            ..
        })
    ));
    assert!(matches!(
        dmad_ops::GroupNorm::new(w, short, 2, 1e-5),
        Err(dmad_ops::Error::ShapeMismatch { .. })
    ));
}

fn bits(t: &candle_core::Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// The same values at different offsets inside their storage (so at every alignment modulo
/// 32 bytes) and in fresh allocations give bit-identical outputs and gradients.
#[test]
fn results_are_bit_identical_at_every_offset_and_allocation() {
    // 5 x 7 spatial: neither a channel nor a group is a multiple of 8 floats long.
    let dims = [3usize, 6, 5, 7];
    let n: usize = dims.iter().product();
    let x = randn(21, &[n], 1.5, 0.3).to_vec1::<f32>().unwrap();
    let w = randn(22, &[6], 0.5, 1.0);
    let b = randn(23, &[6], 0.5, 0.0);
    let up = randn(24, &dims, 1.0, 0.0);
    for silu in [false, true] {
        let mut want: Option<Vec<Vec<u32>>> = None;
        for off in 0..9 {
            // `off` floats of padding before the data: a narrowed view of a larger storage.
            let mut padded = vec![f32::NAN; off];
            padded.extend_from_slice(&x);
            padded.extend(std::iter::repeat_n(f32::NAN, 8 - off % 8));
            let len = padded.len();
            let storage = Var::from_vec(padded, len, &candle_core::Device::Cpu).unwrap();
            let xv = storage
                .narrow(0, off, n)
                .unwrap()
                .reshape(&dims[..])
                .unwrap();
            assert_eq!(
                xv.layout().start_offset(),
                off,
                "a view into the padded storage"
            );
            let wv = Var::from_tensor(&w).unwrap();
            let bv = Var::from_tensor(&b).unwrap();
            let y = if silu {
                dmad_ops::group_norm_silu(&xv, 3, &wv, &bv, 1e-5).unwrap()
            } else {
                dmad_ops::group_norm(&xv, 3, &wv, &bv, 1e-5).unwrap()
            };
            let g = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
            let got = vec![
                bits(&y),
                bits(&g.get(&storage).unwrap().narrow(0, off, n).unwrap()),
                bits(g.get(&wv).unwrap()),
                bits(g.get(&bv).unwrap()),
            ];
            assert!(got[0].iter().all(|&v| f32::from_bits(v).is_finite()));
            match &want {
                None => want = Some(got),
                Some(w) => assert_eq!(w, &got, "silu {silu}, offset {off}"),
            }
        }
    }
}
