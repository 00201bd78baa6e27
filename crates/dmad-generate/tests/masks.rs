//! Masks cover exactly the changed region; anomalies are reproducible from their seed and
//! grow with their strength; bad input is an error.

use candle_core::{DType, Device, Tensor};
use dmad_generate::{
    inject_audio, inject_image, inject_series, AudioAnomaly, Error, ImageAnomaly, Injected,
    SeriesAnomaly, TableAnomaly, TableInjector, AUDIO_MIN_CHANGE, IMAGE_MIN_CHANGE,
    SERIES_MIN_CHANGE, TABLE_MIN_CHANGE,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const STRENGTHS: [f64; 3] = [0.05, 0.5, 1.0];

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Random data in `[lo, hi]` with a quarter of the values at the bounds (saturated pixels,
/// clipped audio), so the clamp of the injectors is exercised.
fn data(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| match rng.random_range(0..8) {
            0 => lo,
            1 => hi,
            _ => rng.random_range(lo..hi),
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Checks the mask against the change computed independently: position `p` of sample `s` is
/// in the mask iff some channel changed; on the mask every channel changed by at least
/// `min_change` (up to f32 rounding); values stay in `[lo, hi]`. Returns the mean absolute
/// change on the mask.
fn check_exact(orig: &Tensor, a: &Injected, min_change: f32, lo: f32, hi: f32, what: &str) -> f64 {
    assert_eq!(a.x.dims(), orig.dims(), "{what}");
    let b = orig.dim(0).unwrap();
    let o = values(orig);
    let x = values(&a.x);
    let m = values(&a.mask);
    assert_eq!(a.mask.dim(0).unwrap(), b, "{what}");
    let per = o.len() / b;
    let positions = m.len() / b;
    let channels = per / positions;
    let (mut sum, mut count) = (0f64, 0usize);
    for s in 0..b {
        let mut in_mask = 0;
        for p in 0..positions {
            let mask = m[s * positions + p];
            assert!(mask == 0.0 || mask == 1.0, "{what}: mask value {mask}");
            let mut changed = false;
            for c in 0..channels {
                let k = s * per + c * positions + p;
                let d = (x[k] - o[k]).abs();
                assert!(
                    x[k] >= lo && x[k] <= hi,
                    "{what}: value {} out of range",
                    x[k]
                );
                if d > 0.0 {
                    changed = true;
                }
                if mask == 1.0 {
                    assert!(
                        d >= min_change * (1.0 - 1e-3),
                        "{what}: sample {s} position {p} channel {c} changed by only {d}"
                    );
                    sum += d as f64;
                    count += 1;
                }
            }
            assert_eq!(changed, mask == 1.0, "{what}: sample {s} position {p}");
            in_mask += (mask == 1.0) as usize;
        }
        assert!(in_mask > 0, "{what}: sample {s} has an empty mask");
    }
    sum / count as f64
}

fn same(a: &Injected, b: &Injected) -> bool {
    values(&a.x) == values(&b.x) && values(&a.mask) == values(&b.mask)
}

#[test]
fn image_masks_are_exact_reproducible_and_grow_with_strength() {
    for channels in [1, 3] {
        let x = data(&[3, channels, 32, 24], -1.0, 1.0, 1);
        for kind in ImageAnomaly::ALL {
            let mut change = vec![];
            for s in STRENGTHS {
                let what = format!("{} c={channels} s={s}", kind.name());
                let a = inject_image(&x, kind, s, 11).unwrap();
                assert_eq!(a.mask.dims(), &[3, 32, 24]);
                change.push(check_exact(&x, &a, IMAGE_MIN_CHANGE, -1.0, 1.0, &what));
                assert!(same(&a, &inject_image(&x, kind, s, 11).unwrap()), "{what}");
                assert!(!same(&a, &inject_image(&x, kind, s, 12).unwrap()), "{what}");
                // Sample i does not depend on the batch: the first image alone gets the same
                // anomaly (cut-paste takes its patch from another image of the batch, so it is
                // checked on the mask only).
                let one = inject_image(&x.narrow(0, 0, 1).unwrap(), kind, s, 11).unwrap();
                let first = values(&a.mask.narrow(0, 0, 1).unwrap());
                assert_eq!(values(&one.mask), first, "{what}");
            }
            assert!(
                change[0] < change[1] && change[1] < change[2],
                "{}: mean change {change:?} does not grow with strength",
                kind.name()
            );
        }
    }
}

#[test]
fn series_masks_are_exact_reproducible_and_grow_with_strength() {
    let x = data(&[4, 2, 64], -2.0, 2.0, 2);
    for kind in SeriesAnomaly::ALL {
        let mut change = vec![];
        for s in STRENGTHS {
            let what = format!("{} s={s}", kind.name());
            let a = inject_series(&x, kind, s, 5).unwrap();
            assert_eq!(a.mask.dims(), &[4, 64]);
            change.push(check_exact(
                &x,
                &a,
                SERIES_MIN_CHANGE,
                f32::MIN,
                f32::MAX,
                &what,
            ));
            assert!(same(&a, &inject_series(&x, kind, s, 5).unwrap()), "{what}");
            assert!(!same(&a, &inject_series(&x, kind, s, 6).unwrap()), "{what}");
            if kind == SeriesAnomaly::Spike {
                for row in a.mask.to_vec2::<f32>().unwrap() {
                    assert_eq!(row.iter().sum::<f32>(), 1.0, "a spike is one point");
                }
            }
        }
        assert!(
            change[0] < change[2],
            "{}: mean change {change:?} does not grow with strength",
            kind.name()
        );
    }
}

#[test]
fn audio_masks_are_exact_reproducible_and_grow_with_strength() {
    let rate = 4000;
    let t: Vec<f32> = (0..2 * rate)
        .map(|i| 0.3 * (i as f32 * 0.07).sin() + 0.05 * (i as f32 * 1.3).sin())
        .collect();
    let mut x = Tensor::from_vec(t, (2, rate as usize), &Device::Cpu).unwrap();
    // Clip some samples at the bounds, and silence a stretch of the second clip.
    x = (x * 4.0).unwrap().clamp(-1f32, 1f32).unwrap();
    let mut v = values(&x);
    v[rate as usize + 100..rate as usize + 900]
        .iter_mut()
        .for_each(|s| *s = 0.0);
    let x = Tensor::from_vec(v, (2, rate as usize), &Device::Cpu).unwrap();
    for kind in AudioAnomaly::ALL {
        let mut change = vec![];
        for s in STRENGTHS {
            let what = format!("{} s={s}", kind.name());
            let a = inject_audio(&x, rate, kind, s, 9).unwrap();
            assert_eq!(a.mask.dims(), &[2, rate as usize]);
            change.push(check_exact(&x, &a, AUDIO_MIN_CHANGE, -1.0, 1.0, &what));
            assert!(
                same(&a, &inject_audio(&x, rate, kind, s, 9).unwrap()),
                "{what}"
            );
            assert!(
                !same(&a, &inject_audio(&x, rate, kind, s, 10).unwrap()),
                "{what}"
            );
        }
        assert!(
            change[0] < change[2],
            "{}: mean change {change:?} does not grow with strength",
            kind.name()
        );
    }
}

#[test]
fn table_masks_are_exact_reproducible_and_grow_with_strength() {
    let normal = data(&[200, 6], -2.0, 2.0, 3);
    // A discrete column: the dependency kind must still change what its mask says.
    let mut v = values(&normal);
    for r in 0..200 {
        v[r * 6 + 5] = (r % 3) as f32;
    }
    let normal = Tensor::from_vec(v, (200, 6), &Device::Cpu).unwrap();
    let inj = TableInjector::fit(&normal).unwrap();
    assert_eq!(inj.cols(), 6);
    let x = normal.narrow(0, 0, 20).unwrap();
    for kind in TableAnomaly::ALL {
        let mut change = vec![];
        for s in STRENGTHS {
            let what = format!("{} s={s}", kind.name());
            let a = inj.inject(&x, kind, s, 21).unwrap();
            assert_eq!(a.mask.dims(), &[20, 6]);
            change.push(check_exact(
                &x,
                &a,
                TABLE_MIN_CHANGE,
                f32::MIN,
                f32::MAX,
                &what,
            ));
            assert!(same(&a, &inj.inject(&x, kind, s, 21).unwrap()), "{what}");
            assert!(!same(&a, &inj.inject(&x, kind, s, 22).unwrap()), "{what}");
            let per_row: Vec<f32> = a.mask.sum(1).unwrap().to_vec1().unwrap();
            let want = match kind {
                TableAnomaly::Dependency => ((s * 3.0).round() as f32).max(1.0),
                _ => 6.0,
            };
            assert!(per_row.iter().all(|&c| c == want), "{what}: {per_row:?}");
        }
        if kind != TableAnomaly::Dependency {
            assert!(
                change[0] < change[2],
                "{}: mean change {change:?} does not grow with strength",
                kind.name()
            );
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    let img = Tensor::zeros((1, 1, 16, 16), DType::F32, &Device::Cpu).unwrap();
    for s in [0.0, -0.1, 1.5, f64::NAN] {
        assert!(matches!(
            inject_image(&img, ImageAnomaly::Blob, s, 0),
            Err(Error::InvalidConfig {
                field: "strength",
                ..
            })
        ));
    }
    let small = Tensor::zeros((1, 1, 4, 16), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        inject_image(&small, ImageAnomaly::Blob, 0.5, 0),
        Err(Error::ShapeMismatch { .. })
    ));
    let flat = Tensor::zeros((2, 16), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        inject_image(&flat, ImageAnomaly::Scratch, 0.5, 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        inject_series(&flat, SeriesAnomaly::Spike, 0.5, 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        inject_audio(&flat, 16000, AudioAnomaly::Dropout, 0.5, 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        inject_audio(&flat, 0, AudioAnomaly::Dropout, 0.5, 0),
        Err(Error::InvalidConfig { .. })
    ));
    let one_row = Tensor::zeros((1, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        TableInjector::fit(&one_row),
        Err(Error::ShapeMismatch { .. })
    ));
    let nan = Tensor::new(&[[0f32, f32::NAN], [1.0, 2.0]], &Device::Cpu).unwrap();
    assert!(matches!(
        TableInjector::fit(&nan),
        Err(Error::InvalidConfig { .. })
    ));
    let inj = TableInjector::fit(&Tensor::new(&[[0f32, 1.0], [1.0, 2.0]], &Device::Cpu).unwrap())
        .unwrap();
    assert!(matches!(
        inj.inject(&one_row, TableAnomaly::Local, 0.5, 0),
        Err(Error::ShapeMismatch { .. })
    ));
}
