//! Series anomalies: GutenTAG's standard types (Wenig et al., *TimeEval* / *GutenTAG*, the
//! `extremum`, `mean`, `trend`, `frequency`, `pattern` and `variance` anomaly kinds) injected
//! into windows.

use candle_core::{DType, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::anomaly::Injected;
use crate::util::{check_strength, enforce_change, interp, sample_rng};
use crate::{Error, Result};

/// The smallest change of an anomalous point of a standardised series.
pub const SERIES_MIN_CHANGE: f32 = 1e-3;

/// The kind of a series anomaly. Amplitudes are in units of the window channel's standard
/// deviation `sd` (1 where the channel is flat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeriesAnomaly {
    /// A single point moved by `+-(2 + 6 strength) sd` (GutenTAG `extremum`).
    Spike,
    /// A segment shifted by `+-(0.5 + 2.5 strength) sd` (GutenTAG `mean`).
    LevelShift,
    /// A segment with a linear ramp added, reaching `+-(0.5 + 3.5 strength) sd` at its end
    /// (GutenTAG `trend`).
    Trend,
    /// A segment played `1 + strength` times faster, as if its frequency changed (GutenTAG
    /// `frequency`).
    Frequency,
    /// A segment whose shape is distorted towards a square wave: `m + a tanh(k u) / tanh(k)`
    /// with `u = (x - m) / a`, `m` and `a` the segment's mean and largest deviation and
    /// `k = 1 + 4 strength` (GutenTAG `pattern`).
    Pattern,
    /// A segment with white noise of `(0.1 + 0.4 strength) sd` added: a stretch of jitter or
    /// sensor noise in an otherwise smooth signal (GutenTAG `variance`).
    Variance,
}

impl SeriesAnomaly {
    /// All kinds.
    pub const ALL: [SeriesAnomaly; 6] = [
        Self::Spike,
        Self::LevelShift,
        Self::Trend,
        Self::Frequency,
        Self::Pattern,
        Self::Variance,
    ];

    /// The kind's name: `spike`, `level_shift`, `trend`, `frequency`, `pattern`, `variance`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Spike => "spike",
            Self::LevelShift => "level_shift",
            Self::Trend => "trend",
            Self::Frequency => "frequency",
            Self::Pattern => "pattern",
            Self::Variance => "variance",
        }
    }
}

/// Injects an anomaly of `kind` into every window of `x`, in all channels, over one segment
/// (a single point for [`SeriesAnomaly::Spike`], otherwise 1/8 to 1/4 of the window). The mask
/// `[batch, length]` is 1 exactly on the points that changed (by at least
/// [`SERIES_MIN_CHANGE`] in every channel). Sample `i` uses its own stream of `seed`.
///
/// # Shapes
/// `x`: `[batch, channel, length]` with length at least 8.
///
/// # Errors
/// [`Error::InvalidConfig`] for a strength outside `(0, 1]`; [`Error::ShapeMismatch`] for
/// another rank or windows shorter than 8.
pub fn inject_series(
    x: &Tensor,
    kind: SeriesAnomaly,
    strength: f64,
    seed: u64,
) -> Result<Injected> {
    check_strength(strength)?;
    let dims = x.dims().to_vec();
    if dims.len() != 3 || dims[0] == 0 || dims[1] == 0 || dims[2] < 8 {
        return Err(Error::shape(
            "inject_series: x",
            "[batch >= 1, channel >= 1, length >= 8]",
            &dims,
        ));
    }
    let (b, c, l) = (dims[0], dims[1], dims[2]);
    let data = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = data.clone();
    let mut mask = vec![0f32; b * l];
    for i in 0..b {
        let mut rng = sample_rng(seed, i);
        let (a, e) = segment(kind, l, &mut rng);
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        for ch in 0..c {
            let k0 = (i * c + ch) * l;
            let orig = &data[k0..k0 + l];
            let o = &mut out[k0..k0 + l];
            distort(kind, orig, o, (a, e), strength, sign, &mut rng);
            enforce_change(
                orig,
                o,
                |p| p >= a && p < e,
                SERIES_MIN_CHANGE,
                f32::MIN,
                f32::MAX,
            );
        }
        mask[i * l + a..i * l + e].iter_mut().for_each(|m| *m = 1.0);
    }
    Ok(Injected {
        x: Tensor::from_vec(out, dims, x.device())?,
        mask: Tensor::from_vec(mask, (b, l), x.device())?,
    })
}

/// The segment `[a, e)` of an anomaly of `kind` in a window of `l` points.
fn segment(kind: SeriesAnomaly, l: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    if kind == SeriesAnomaly::Spike {
        let p = rng.random_range(0..l);
        return (p, p + 1);
    }
    let len = rng.random_range((l / 8).max(2)..=(l / 4).max(3));
    let a = rng.random_range(0..=l - len);
    (a, a + len)
}

fn std_of(x: &[f32]) -> f32 {
    let n = x.len() as f64;
    let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let v = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
    if v > 1e-12 {
        v.sqrt() as f32
    } else {
        1.0
    }
}

/// Writes the distorted segment `[a, e)` of `orig` into `o`.
fn distort(
    kind: SeriesAnomaly,
    orig: &[f32],
    o: &mut [f32],
    (a, e): (usize, usize),
    strength: f64,
    sign: f32,
    rng: &mut ChaCha8Rng,
) {
    let sd = std_of(orig);
    let s = strength as f32;
    let len = (e - a) as f32;
    match kind {
        SeriesAnomaly::Spike => o[a] = orig[a] + sign * (2.0 + 6.0 * s) * sd,
        SeriesAnomaly::LevelShift => {
            for p in a..e {
                o[p] = orig[p] + sign * (0.5 + 2.5 * s) * sd;
            }
        }
        SeriesAnomaly::Trend => {
            for p in a..e {
                o[p] = orig[p] + sign * (0.5 + 3.5 * s) * sd * (p - a + 1) as f32 / len;
            }
        }
        SeriesAnomaly::Frequency => {
            let f = 1.0 + strength;
            for p in a..e {
                o[p] = interp(orig, a as f64 + (p - a) as f64 * f);
            }
        }
        SeriesAnomaly::Pattern => {
            let seg = &orig[a..e];
            let m = seg.iter().sum::<f32>() / len;
            let amp = seg
                .iter()
                .map(|v| (v - m).abs())
                .fold(0f32, f32::max)
                .max(1e-6);
            let k = 1.0 + 4.0 * s;
            for p in a..e {
                let u = (orig[p] - m) / amp;
                o[p] = m + amp * (k * u).tanh() / k.tanh();
            }
        }
        SeriesAnomaly::Variance => {
            let noise_sd = (0.1 + 0.4 * s) * sd;
            for p in a..e {
                let z: f32 = StandardNormal.sample(rng);
                o[p] = orig[p] + noise_sd * z;
            }
        }
    }
}
