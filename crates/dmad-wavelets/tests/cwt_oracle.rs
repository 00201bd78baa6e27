//! The CWT (both methods) against a literal, slow transcription of PyWavelets' algorithm
//! (integrate, resample, full convolution, difference, centre), over a sweep of lengths, scales
//! and every wavelet family; and its error cases.

mod common;

use common::signal;
use dmad_wavelets::{cwt, ContinuousWavelet, CwtConfig, CwtMethod, Error};
use num_complex::Complex64;

fn oracle(x: &[f64], scale: f64, w: &ContinuousWavelet, precision: u32) -> Vec<Complex64> {
    let (psi, grid) = w.wavefun(precision);
    let step = grid[1] - grid[0];
    let mut acc = Complex64::new(0.0, 0.0);
    let int_psi: Vec<Complex64> = psi
        .iter()
        .map(|p| {
            acc += p;
            let v = acc * step;
            if w.is_complex() {
                v.conj()
            } else {
                v
            }
        })
        .collect();
    let stop = scale * (grid[grid.len() - 1] - grid[0]) + 1.0;
    let mut ker: Vec<Complex64> = (0..stop.ceil() as usize)
        .map(|k| (k as f64 / (scale * step)) as usize)
        .filter(|&j| j < int_psi.len())
        .map(|j| int_psi[j])
        .collect();
    ker.reverse();
    let n = x.len();
    let l = ker.len();
    let conv: Vec<Complex64> = (0..n + l - 1)
        .map(|m| {
            (0..l)
                .filter(|&k| m >= k && m - k < n)
                .map(|k| ker[k] * x[m - k])
                .sum()
        })
        .collect();
    let diff: Vec<Complex64> = conv
        .windows(2)
        .map(|p| -(p[1] - p[0]) * scale.sqrt())
        .collect();
    let d = (diff.len() - n) as f64 / 2.0;
    diff[d.floor() as usize..diff.len() - d.ceil() as usize].to_vec()
}

#[test]
fn both_methods_match_the_literal_algorithm() {
    let names = [
        "morl",
        "mexh",
        "gaus1",
        "gaus2",
        "gaus3",
        "gaus4",
        "gaus5",
        "gaus6",
        "gaus7",
        "gaus8",
        "cgau1",
        "cgau2",
        "cgau3",
        "cgau4",
        "cgau5",
        "cgau6",
        "cgau7",
        "cgau8",
        "cmor1.5-1.0",
        "shan1.5-1.0",
        "fbsp2-1.0-0.5",
    ];
    let scales = [0.7, 1.0, 2.5, 6.0, 17.0];
    for (i, name) in names.iter().enumerate() {
        let w = ContinuousWavelet::new(name).unwrap();
        // 600 samples: the small scales of the one-off FFT path run in several overlap-save blocks.
        for len in [1usize, 2, 9, 64, 150, 600] {
            let x = signal(len, (i * 1000 + len) as u64);
            for method in [CwtMethod::Conv, CwtMethod::Fft] {
                let cfg = CwtConfig {
                    method,
                    precision: 10,
                    ..CwtConfig::default()
                };
                let out = cwt(&x, &scales, &w, &cfg).unwrap();
                for (s, &scale) in scales.iter().enumerate() {
                    let want = oracle(&x, scale, &w, 10);
                    let peak = want.iter().fold(0.0f64, |m, v| m.max(v.norm())).max(1e-3);
                    for (t, wv) in want.iter().enumerate() {
                        let g = out.get(s, t);
                        assert!(
                            (g - wv).norm() <= 1e-10 * peak,
                            "{name} {method:?} n={len} scale={scale} t={t}: {g} vs {wv}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn cwt_bad_input() {
    let w = ContinuousWavelet::new("morl").unwrap();
    let cfg = CwtConfig::default();
    assert!(matches!(
        cwt(&[], &[1.0], &w, &cfg),
        Err(Error::EmptyInput { .. })
    ));
    assert!(matches!(
        cwt(&[1.0, 2.0], &[], &w, &cfg),
        Err(Error::EmptyInput { .. })
    ));
    assert!(matches!(
        cwt(&[1.0, f64::NAN], &[1.0], &w, &cfg),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        cwt(&[1.0, 2.0], &[1.0, -2.0], &w, &cfg),
        Err(Error::InvalidArgument { name: "scales", .. })
    ));
    let bad = CwtConfig {
        sampling_period: 0.0,
        ..CwtConfig::default()
    };
    assert!(matches!(
        cwt(&[1.0, 2.0], &[1.0], &w, &bad),
        Err(Error::InvalidArgument {
            name: "sampling_period",
            ..
        })
    ));
    assert!(matches!(
        ContinuousWavelet::new("morlet"),
        Err(Error::UnknownWavelet { .. })
    ));
}

#[test]
fn a_reused_plan_gives_the_one_off_result() {
    use dmad_wavelets::CwtPlanner;
    let planner = CwtPlanner::new();
    for name in ["morl", "cmor1.5-1.0"] {
        let w = ContinuousWavelet::new(name).unwrap();
        let scales = [1.0, 2.0, 3.5, 8.0, 20.0];
        let cfg = CwtConfig {
            method: CwtMethod::Fft,
            ..CwtConfig::default()
        };
        let plan = planner.plan_cwt(&w, &scales, 300, &cfg).unwrap();
        for seed in 0..3 {
            let x = signal(300, seed);
            let a = plan.process(&x).unwrap();
            let b = cwt(&x, &scales, &w, &cfg).unwrap();
            for s in 0..scales.len() {
                for t in 0..300 {
                    assert!(
                        (a.get(s, t) - b.get(s, t)).norm() <= 1e-12,
                        "{name} {s} {t}"
                    );
                }
            }
        }
        assert!(matches!(
            plan.process(&signal(299, 0)),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
