//! The single-integral inverse CWT: relative L2 error over a sweep of signals (the numbers in
//! docs/WAVELETS.md), and the scalogram round trip.

mod common;

use candle_core::Device;
use common::signal;
use dmad_wavelets::{
    cwt, icwt, icwt_single_integral, ContinuousWavelet, CwtConfig, CwtMethod, Error, Scalogram,
    ScalogramConfig, ScalogramKind, ScalogramReference,
};

const N: usize = 2048;

/// Log-spaced scales: 16 voices per octave over 6 octaves from 2 (from 0.5 over 8 octaves
/// for the wide-band mexh and gaus wavelets, whose centre frequency is low).
fn scales_for(name: &str) -> Vec<f64> {
    let (first, octaves) = if name == "mexh" || name.starts_with("gaus") {
        (0.5, 8)
    } else {
        (2.0, 6)
    };
    (0..=16 * octaves)
        .map(|j| first * 2f64.powf(j as f64 / 16.0))
        .collect()
}

fn scales() -> Vec<f64> {
    scales_for("morl")
}

/// Test signals whose content lies in the band the scales cover (0.006 to 0.4 cycles/sample
/// for morl): tones, a chirp, bursts, a sum of random tones.
fn signals() -> Vec<(&'static str, Vec<f64>)> {
    let t = |i: usize| i as f64;
    let tau = std::f64::consts::TAU;
    let r = signal(16, 99);
    vec![
        (
            "tone 0.05",
            (0..N).map(|i| (tau * 0.05 * t(i)).sin()).collect(),
        ),
        (
            "two tones",
            (0..N)
                .map(|i| (tau * 0.02 * t(i)).sin() + 0.5 * (tau * 0.15 * t(i) + 1.0).cos())
                .collect(),
        ),
        (
            "chirp 0.01-0.25",
            (0..N)
                .map(|i| {
                    let u = t(i) / N as f64;
                    (tau * (0.01 * t(i) + 0.12 * u * t(i))).sin()
                })
                .collect(),
        ),
        (
            "bursts",
            (0..N)
                .map(|i| {
                    let a = (-((t(i) - 700.0) / 80.0).powi(2)).exp();
                    let b = (-((t(i) - 1400.0) / 40.0).powi(2)).exp();
                    a * (tau * 0.08 * t(i)).sin() + b * (tau * 0.2 * t(i)).sin()
                })
                .collect(),
        ),
        (
            "8 random tones",
            (0..N)
                .map(|i| {
                    (0..8)
                        .map(|k| {
                            (tau * (0.01 + 0.3 * (r[2 * k] + 1.0) / 2.0) * t(i)
                                + 3.0 * r[2 * k + 1])
                                .sin()
                        })
                        .sum::<f64>()
                        / 8.0
                })
                .collect(),
        ),
    ]
}

fn rel_l2(x: &[f64], y: &[f64]) -> f64 {
    let e: f64 = x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
    let n: f64 = x.iter().map(|a| a * a).sum();
    (e / n).sqrt()
}

type Inverse = fn(&dmad_wavelets::Cwt, &ContinuousWavelet) -> dmad_wavelets::Result<Vec<f64>>;

/// Relative L2 error over the whole signal and over the interior (10% trimmed at each end,
/// where zero padding of the CWT distorts), per signal.
fn sweep(name: &str, inverse: Inverse) -> Vec<(&'static str, f64, f64)> {
    let w = ContinuousWavelet::new(name).unwrap();
    let cfg = CwtConfig {
        method: CwtMethod::Fft,
        ..CwtConfig::default()
    };
    let sc = scales_for(name);
    signals()
        .into_iter()
        .map(|(label, x)| {
            let y = inverse(&cwt(&x, &sc, &w, &cfg).unwrap(), &w).unwrap();
            let (a, b) = (N / 10, N - N / 10);
            (label, rel_l2(&x, &y), rel_l2(&x[a..b], &y[a..b]))
        })
        .collect()
}

/// Checks the worst full and interior errors over the sweep against the bounds stated in
/// docs/WAVELETS.md; prints the measurements (run with --nocapture).
fn check(method: &str, inverse: Inverse, bounds: &[(&str, f64, f64)]) {
    for &(name, full_bound, interior_bound) in bounds {
        for (label, full, interior) in sweep(name, inverse) {
            println!("{method:15} {name:12} {label:18} full {full:.4}  interior {interior:.4}");
            assert!(full < full_bound, "{method} {name} {label}: full {full}");
            assert!(
                interior < interior_bound,
                "{method} {name} {label}: interior {interior}"
            );
        }
    }
}

#[test]
fn icwt_reconstructs_the_sweep_within_stated_errors() {
    check(
        "calibrated",
        icwt,
        &[
            ("morl", 0.08, 0.05),
            ("cmor1.5-1.0", 0.08, 0.05),
            ("mexh", 0.08, 0.05),
            ("shan1.5-1.0", 0.08, 0.05),
            ("gaus1", 0.08, 0.05),
        ],
    );
}

#[test]
fn single_integral_icwt_reconstructs_the_sweep_within_stated_errors() {
    check(
        "single-integral",
        icwt_single_integral,
        &[
            ("morl", 0.14, 0.13),
            ("cmor1.5-1.0", 0.14, 0.13),
            ("mexh", 0.25, 0.25),
        ],
    );
}

#[test]
fn icwt_rejects_odd_wavelets_and_single_scales() {
    let x = signal(64, 1);
    let w = ContinuousWavelet::new("gaus1").unwrap();
    let c = cwt(&x, &[2.0, 4.0], &w, &CwtConfig::default()).unwrap();
    assert!(matches!(
        icwt_single_integral(&c, &w),
        Err(Error::Unsupported(_))
    ));
    let m = ContinuousWavelet::new("morl").unwrap();
    let c = cwt(&x, &[2.0], &m, &CwtConfig::default()).unwrap();
    assert!(matches!(icwt(&c, &m), Err(Error::InvalidArgument { .. })));
}

#[test]
fn scalogram_round_trips_through_its_image() {
    let x: Vec<f64> = signals().remove(1).1;
    let sc = scales();
    for name in ["morl", "cmor1.5-1.0"] {
        let w = ContinuousWavelet::new(name).unwrap();
        let c = cwt(
            &x,
            &sc,
            &w,
            &CwtConfig {
                method: CwtMethod::Fft,
                ..CwtConfig::default()
            },
        )
        .unwrap();
        for kind in [ScalogramKind::Magnitude, ScalogramKind::LogPower] {
            let cfg = ScalogramConfig {
                kind,
                dynamic_range_db: 120.0,
                ..ScalogramConfig::default()
            };
            let s = Scalogram::new(&c, &cfg, &Device::Cpu).unwrap();
            assert_eq!(s.image().dims(), &[sc.len(), N]);
            let px = s.image().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                px.iter().all(|p| (-1.0..=1.0).contains(p)),
                "{name} {kind:?} range"
            );
            let back = s.to_cwt(s.image()).unwrap();
            // f32 pixels: relative coefficient error ~1e-6 (x dynamic range for log-power).
            let peak = (0..sc.len() * N)
                .map(|k| c.get(k / N, k % N).norm())
                .fold(0.0, f64::max);
            for k in (0..sc.len() * N).step_by(37) {
                let (a, b) = (back.get(k / N, k % N), c.get(k / N, k % N));
                let tol = match kind {
                    ScalogramKind::Magnitude => 1e-6 * peak,
                    ScalogramKind::LogPower => 1e-4 * b.norm() + 1e-6 * peak,
                };
                assert!((a - b).norm() <= tol, "{name} {kind:?} {k}: {a} vs {b}");
            }
            // And on to a waveform.
            let y = icwt(&back, &w).unwrap();
            assert!(
                rel_l2(&x[200..N - 200], &y[200..N - 200]) < 0.05,
                "{name} {kind:?}"
            );
        }
    }
}

#[test]
fn scalogram_bad_input() {
    let x = signal(32, 3);
    let w = ContinuousWavelet::new("morl").unwrap();
    let c = cwt(&x, &[2.0, 3.0], &w, &CwtConfig::default()).unwrap();
    let bad = ScalogramConfig {
        kind: ScalogramKind::LogPower,
        dynamic_range_db: 0.0,
        ..ScalogramConfig::default()
    };
    assert!(matches!(
        Scalogram::new(&c, &bad, &Device::Cpu),
        Err(Error::InvalidArgument { .. })
    ));
    // An absolute reference must be a usable level: finite, and 10^(top_db / 20) neither
    // overflowing nor underflowing, for both kinds.
    for top_db in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        7_000.0,
        -7_000.0,
    ] {
        for kind in [ScalogramKind::Magnitude, ScalogramKind::LogPower] {
            let bad = ScalogramConfig {
                kind,
                reference: ScalogramReference::Absolute { top_db },
                ..ScalogramConfig::default()
            };
            assert!(
                matches!(
                    Scalogram::new(&c, &bad, &Device::Cpu),
                    Err(Error::InvalidArgument {
                        name: "reference.top_db",
                        ..
                    })
                ),
                "{top_db} {kind:?}"
            );
        }
    }
    let s = Scalogram::new(&c, &ScalogramConfig::default(), &Device::Cpu).unwrap();
    let wrong = candle_core::Tensor::zeros((3, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(s.to_cwt(&wrong), Err(Error::ShapeMismatch { .. })));
}

/// The largest `|W|` of a CWT, in dB.
fn peak_db(c: &dmad_wavelets::Cwt) -> f64 {
    let peak = (0..c.scales.len() * c.len)
        .map(|k| c.get(k / c.len, k % c.len).norm())
        .fold(0.0, f64::max);
    20.0 * peak.log10()
}

#[test]
fn absolute_reference_round_trips_and_keeps_the_level() {
    let x: Vec<f64> = signals().remove(1).1;
    let sc = scales();
    let w = ContinuousWavelet::new("cmor1.5-1.0").unwrap();
    let cfg = CwtConfig {
        method: CwtMethod::Fft,
        ..CwtConfig::default()
    };
    let c = cwt(&x, &sc, &w, &cfg).unwrap();
    // A top 6 dB above the loudest coefficient: nothing is clipped at the top.
    let top_db = peak_db(&c) + 6.0;
    for kind in [ScalogramKind::Magnitude, ScalogramKind::LogPower] {
        let scfg = ScalogramConfig {
            kind,
            dynamic_range_db: 120.0,
            reference: ScalogramReference::Absolute { top_db },
        };
        let s = Scalogram::new(&c, &scfg, &Device::Cpu).unwrap();
        let px = s.image().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            px.iter().all(|p| (-1.0..=1.0).contains(p)),
            "{kind:?} range"
        );
        // The loudest pixel sits 6 dB below the top, not at it.
        let hi = px.iter().copied().fold(f32::MIN, f32::max) as f64;
        let expect = match kind {
            ScalogramKind::Magnitude => 2.0 * 10f64.powf(-6.0 / 20.0) - 1.0,
            ScalogramKind::LogPower => 1.0 - 2.0 * 6.0 / 120.0,
        };
        assert!(
            (hi - expect).abs() <= 1e-5,
            "{kind:?}: top pixel {hi}, expected {expect}"
        );
        // The clip-max round trip's bounds: f32 pixels, plus (log power) what lies below the
        // floor, which comes back as zero; the floor is now 120 dB below the top, not the peak.
        let back = s.to_cwt(s.image()).unwrap();
        let peak = 10f64.powf((top_db - 6.0) / 20.0);
        let floor = 10f64.powf((top_db - 120.0) / 20.0);
        for k in (0..sc.len() * N).step_by(37) {
            let (a, b) = (back.get(k / N, k % N), c.get(k / N, k % N));
            let tol = match kind {
                ScalogramKind::Magnitude => 1e-6 * peak,
                ScalogramKind::LogPower => 1e-4 * b.norm() + floor,
            };
            assert!((a - b).norm() <= tol, "{kind:?} {k}: {a} vs {b}");
        }
        let y = icwt(&back, &w).unwrap();
        assert!(
            rel_l2(&x[200..N - 200], &y[200..N - 200]) < 0.05,
            "{kind:?}"
        );
    }

    // The same signal 6.02 dB louder: the clip-max image does not change, the absolute image
    // moves up by 2 * 20 log10(2) / range everywhere above the floor.
    let x2: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
    let c2 = cwt(&x2, &sc, &w, &cfg).unwrap();
    let image = |c: &dmad_wavelets::Cwt, reference| {
        let scfg = ScalogramConfig {
            reference,
            dynamic_range_db: 120.0,
            ..ScalogramConfig::default()
        };
        let s = Scalogram::new(c, &scfg, &Device::Cpu).unwrap();
        s.image().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let (a, b) = (
        image(&c, ScalogramReference::ClipMax),
        image(&c2, ScalogramReference::ClipMax),
    );
    assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-5));
    // (A top 12 dB above x's peak, so that 2x is not clipped either.)
    let abs = ScalogramReference::Absolute {
        top_db: top_db + 6.0,
    };
    let (a, b) = (image(&c, abs), image(&c2, abs));
    let shift = 2.0 * 20.0 * 2f64.log10() / 120.0;
    let mut checked = 0;
    for (p, q) in a.iter().zip(&b) {
        if *p > -0.9 {
            assert!(((q - p) as f64 - shift).abs() <= 1e-4, "{p} -> {q}");
            checked += 1;
        }
    }
    assert!(
        checked > a.len() / 2,
        "only {checked} pixels above the floor"
    );
}

#[test]
fn absolute_reference_clips_louder_coefficients_to_the_top() {
    let x: Vec<f64> = signals().remove(1).1;
    let sc = scales();
    let w = ContinuousWavelet::new("cmor1.5-1.0").unwrap();
    let c = cwt(&x, &sc, &w, &CwtConfig::default()).unwrap();
    // A top 20 dB below the loudest coefficient.
    let top_db = peak_db(&c) - 20.0;
    let top = 10f64.powf(top_db / 20.0);
    for kind in [ScalogramKind::Magnitude, ScalogramKind::LogPower] {
        let scfg = ScalogramConfig {
            kind,
            reference: ScalogramReference::Absolute { top_db },
            ..ScalogramConfig::default()
        };
        let s = Scalogram::new(&c, &scfg, &Device::Cpu).unwrap();
        let px = s.image().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let back = s.to_cwt(s.image()).unwrap();
        let mut clipped = 0;
        for (k, &p) in px.iter().enumerate() {
            assert!((-1.0..=1.0).contains(&p), "{kind:?} pixel {p}");
            let orig = c.get(k / N, k % N).norm();
            if orig > top {
                assert_eq!(p, 1.0, "{kind:?} {k}: {orig} above the top {top}");
                let got = back.get(k / N, k % N).norm();
                assert!(
                    (got - top).abs() <= 1e-6 * top,
                    "{kind:?} {k}: {got} vs {top}"
                );
                clipped += 1;
            }
        }
        assert!(clipped > 0, "{kind:?}: nothing above the top");
    }
}
