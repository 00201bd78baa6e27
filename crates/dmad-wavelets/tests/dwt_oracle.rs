//! The fast DWT against a slow direct-convolution oracle over lengths 1..=300, every mode and six
//! wavelets; perfect reconstruction in every mode; the n-d axis paths against the 1D path; the
//! in-place multilevel and fused 2D paths against the plain axis paths.

mod common;

use common::{assert_close, signal};
use dmad_wavelets::{
    dwt, dwt2, dwt_axis, dwt_coeff_len, idwt, idwt_axis, wavedec, wavedec_axis, waverec_axis, Mode,
    NdArray, Wavelet,
};

const WAVELETS: [&str; 6] = ["haar", "db2", "db4", "sym5", "coif3", "db10"];

/// The extended signal at any integer position, from the textbook definition of each mode
/// (recursive mirror rules), independent of the fast path's extension tables.
fn ext(x: &[f64], mode: Mode, p: i64) -> f64 {
    let n = x.len() as i64;
    if (0..n).contains(&p) {
        return x[p as usize];
    }
    let (first, last) = (x[0], x[(n - 1) as usize]);
    match mode {
        Mode::Zero => 0.0,
        Mode::Constant => {
            if p < 0 {
                first
            } else {
                last
            }
        }
        Mode::Smooth if n < 2 => {
            if p < 0 {
                first
            } else {
                last
            }
        }
        Mode::Smooth => {
            if p < 0 {
                first + (-p) as f64 * (first - x[1])
            } else {
                last + (p - n + 1) as f64 * (last - x[(n - 2) as usize])
            }
        }
        Mode::Periodic => x[p.rem_euclid(n) as usize],
        Mode::Periodization => {
            let np = n + n % 2;
            let q = p.rem_euclid(np);
            if q < n {
                x[q as usize]
            } else {
                last
            }
        }
        Mode::Symmetric => {
            if p < 0 {
                ext(x, mode, -1 - p)
            } else {
                ext(x, mode, 2 * n - 1 - p)
            }
        }
        Mode::Antisymmetric => {
            if p < 0 {
                -ext(x, mode, -1 - p)
            } else {
                -ext(x, mode, 2 * n - 1 - p)
            }
        }
        Mode::Reflect => {
            if p < 0 {
                ext(x, mode, -p)
            } else {
                ext(x, mode, 2 * n - 2 - p)
            }
        }
        Mode::Antireflect => {
            if p < 0 {
                2.0 * first - ext(x, mode, -p)
            } else {
                2.0 * last - ext(x, mode, 2 * n - 2 - p)
            }
        }
    }
}

/// `c[o] = sum_j h[j] x_ext[2o + c0 - j]`, straight from the definition.
fn oracle(x: &[f64], h: &[f64], mode: Mode) -> Vec<f64> {
    let f = h.len();
    let out = dwt_coeff_len(x.len(), f, mode);
    let c0 = if mode == Mode::Periodization {
        f / 2
    } else {
        1
    } as i64;
    (0..out as i64)
        .map(|o| {
            (0..f)
                .map(|j| h[j] * ext(x, mode, 2 * o + c0 - j as i64))
                .sum()
        })
        .collect()
}

#[test]
fn fast_dwt_matches_direct_convolution_oracle() {
    for name in WAVELETS {
        let w = Wavelet::new(name).unwrap();
        for mode in Mode::ALL {
            for len in 1..=300 {
                if matches!(mode, Mode::Reflect | Mode::Antireflect) && len < 2 {
                    continue;
                }
                let x = signal(len, len as u64);
                let (ca, cd) = dwt(&x, &w, mode).unwrap();
                let what = format!("{name} {mode} n={len}");
                assert_close(
                    &ca,
                    &oracle(&x, w.dec_lo(), mode),
                    1e-12,
                    &format!("{what} cA"),
                );
                assert_close(
                    &cd,
                    &oracle(&x, w.dec_hi(), mode),
                    1e-12,
                    &format!("{what} cD"),
                );
            }
        }
    }
}

#[test]
fn idwt_of_dwt_is_identity_in_every_mode() {
    for name in WAVELETS {
        let w = Wavelet::new(name).unwrap();
        for mode in Mode::ALL {
            for len in 1..=300 {
                if matches!(mode, Mode::Reflect | Mode::Antireflect) && len < 2 {
                    continue;
                }
                let x = signal(len, 1000 + len as u64);
                let (ca, cd) = dwt(&x, &w, mode).unwrap();
                let y = idwt(Some(&ca), Some(&cd), &w, mode).unwrap();
                // PyWavelets returns len or len + 1 samples: the first len are the signal.
                assert!(y.len() == len || y.len() == len + 1, "{name} {mode} {len}");
                assert_close(&y[..len], &x, 1e-12, &format!("{name} {mode} n={len}"));
            }
        }
    }
}

#[test]
fn axis_transforms_agree_with_1d_rows_and_columns() {
    let (rows, cols) = (13, 29);
    let data = signal(rows * cols, 7);
    let x = NdArray::new(vec![rows, cols], data.clone()).unwrap();
    for name in ["db2", "sym5"] {
        let w = Wavelet::new(name).unwrap();
        for mode in Mode::ALL {
            // Along the last axis: each row alone.
            let (ca, cd) = dwt_axis(&x, &w, mode, 1).unwrap();
            let out = ca.shape()[1];
            for r in 0..rows {
                let (a1, d1) = dwt(&data[r * cols..(r + 1) * cols], &w, mode).unwrap();
                assert_close(&ca.data()[r * out..(r + 1) * out], &a1, 1e-14, "row cA");
                assert_close(&cd.data()[r * out..(r + 1) * out], &d1, 1e-14, "row cD");
            }
            // Along the first axis: each column alone.
            let (ca, cd) = dwt_axis(&x, &w, mode, 0).unwrap();
            for c in 0..cols {
                let col: Vec<f64> = (0..rows).map(|r| data[r * cols + c]).collect();
                let (a1, d1) = dwt(&col, &w, mode).unwrap();
                let ga: Vec<f64> = (0..a1.len()).map(|r| ca.data()[r * cols + c]).collect();
                let gd: Vec<f64> = (0..d1.len()).map(|r| cd.data()[r * cols + c]).collect();
                assert_close(&ga, &a1, 1e-14, "column cA");
                assert_close(&gd, &d1, 1e-14, "column cD");
            }
            let back = idwt_axis(Some(&ca), Some(&cd), &w, mode, 0).unwrap();
            assert_close(&back.data()[..rows * cols], &data, 1e-12, "column idwt");
        }
    }
}

#[test]
fn multilevel_along_middle_axis_of_3d_batch_reconstructs() {
    let shape = vec![3, 64, 5];
    let data = signal(3 * 64 * 5, 11);
    let x = NdArray::new(shape, data.clone()).unwrap();
    let w = Wavelet::new("db3").unwrap();
    for mode in [Mode::Symmetric, Mode::Periodization, Mode::Zero] {
        let coeffs = wavedec_axis(&x, &w, mode, Some(2), 1).unwrap();
        assert_eq!(coeffs.len(), 3);
        let y = waverec_axis(&coeffs, &w, mode, 1).unwrap();
        assert_eq!(y.shape(), x.shape());
        assert_close(y.data(), &data, 1e-12, &format!("{mode}"));
    }
}

#[test]
fn in_place_wavedec_and_fused_dwt2_agree_with_the_axis_paths() {
    // wavedec (deeper levels overwrite the level above, several 512-output blocks) against
    // wavedec_axis (a fresh array per level); dwt2 over the last two axes (fused kernel)
    // against dwt_axis along each axis in turn.
    let x = signal(3001, 21);
    let img = NdArray::new(vec![2, 37, 50], signal(2 * 37 * 50, 22)).unwrap();
    for name in ["haar", "db4", "sym5", "db10"] {
        let w = Wavelet::new(name).unwrap();
        for mode in Mode::ALL {
            let what = format!("{name} {mode}");
            let fast = wavedec(&x, &w, mode, None).unwrap();
            let axis = wavedec_axis(&NdArray::from_vec(x.clone()), &w, mode, None, 0).unwrap();
            assert_eq!(fast.len(), axis.len(), "{what}: levels");
            for (f, a) in fast.iter().zip(&axis) {
                assert_close(f, a.data(), 1e-14, &format!("{what} wavedec"));
            }
            let (ca, [ch, cv, cd]) = dwt2(&img, &w, mode, [1, 2]).unwrap();
            let (a0, d0) = dwt_axis(&img, &w, mode, 1).unwrap();
            let (aa, ad) = dwt_axis(&a0, &w, mode, 2).unwrap();
            let (da, dd) = dwt_axis(&d0, &w, mode, 2).unwrap();
            for (got, want, key) in [
                (&ca, &aa, "cA"),
                (&ch, &da, "cH"),
                (&cv, &ad, "cV"),
                (&cd, &dd, "cD"),
            ] {
                assert_eq!(got.shape(), want.shape(), "{what} dwt2 {key} shape");
                assert_close(
                    got.data(),
                    want.data(),
                    1e-14,
                    &format!("{what} dwt2 {key}"),
                );
            }
        }
    }
}
