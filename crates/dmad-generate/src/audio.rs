//! Audio anomalies on waveforms (transient events, speed changes, drop-outs), and generated
//! scalograms turned back into waveforms through the inverse CWT.

use candle_core::{DType, Device, Tensor};
use dmad_data::AudioScalogram;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::anomaly::Injected;
use crate::util::{check_strength, enforce_change, interp, sample_rng};
use crate::{Error, Result};

/// The smallest change of an anomalous audio sample (about -60 dBFS).
pub const AUDIO_MIN_CHANGE: f32 = 1e-3;

/// The kind of an audio anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioAnomaly {
    /// A click or knock: 5 to 20 ms of exponentially decaying noise of peak
    /// `(0.2 + 1.8 strength)` times the clip's RMS (at least 0.01), added.
    Transient,
    /// 100 to 300 ms played `1 + 0.5 strength` times faster (pitch and tempo up), as a motor
    /// speeding up.
    SpeedChange,
    /// 20 to 100 ms attenuated by the factor `1 - strength` (silence at 1).
    Dropout,
}

impl AudioAnomaly {
    /// All kinds.
    pub const ALL: [AudioAnomaly; 3] = [Self::Transient, Self::SpeedChange, Self::Dropout];

    /// The kind's name: `transient`, `speed_change`, `dropout`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::SpeedChange => "speed_change",
            Self::Dropout => "dropout",
        }
    }
}

/// Injects an anomaly of `kind` into each clip of `x` (sampled at `sample_rate` Hz). The mask
/// `[batch, samples]` is 1 exactly on the samples that changed (by at least
/// [`AUDIO_MIN_CHANGE`]); values stay in `[-1, 1]`. Clip `i` uses its own stream of `seed`.
///
/// # Shapes
/// `x`: `[batch, samples]`, clips of at least 0.1 s.
///
/// # Errors
/// [`Error::InvalidConfig`] for a strength outside `(0, 1]` or a zero sample rate;
/// [`Error::ShapeMismatch`] for another rank or clips shorter than 0.1 s.
pub fn inject_audio(
    x: &Tensor,
    sample_rate: u32,
    kind: AudioAnomaly,
    strength: f64,
    seed: u64,
) -> Result<Injected> {
    check_strength(strength)?;
    if sample_rate == 0 {
        return Err(Error::config("sample_rate", "must be positive"));
    }
    let dims = x.dims().to_vec();
    let sr = sample_rate as f64;
    let min_len = (0.1 * sr).ceil() as usize;
    if dims.len() != 2 || dims[0] == 0 || dims[1] < min_len.max(8) {
        return Err(Error::shape(
            "inject_audio: x",
            format!("[batch >= 1, samples >= {}] (0.1 s)", min_len.max(8)),
            &dims,
        ));
    }
    let (b, n) = (dims[0], dims[1]);
    let data = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = data.clone();
    let mut mask = vec![0f32; b * n];
    let s = strength as f32;
    for i in 0..b {
        let mut rng = sample_rng(seed, i);
        let orig = &data[i * n..(i + 1) * n];
        let o = &mut out[i * n..(i + 1) * n];
        let span = |rng: &mut rand_chacha::ChaCha8Rng, lo: f64, hi: f64| {
            let len = ((rng.random_range(lo..hi) * sr) as usize).clamp(1, n);
            let a = rng.random_range(0..=n - len);
            (a, a + len)
        };
        let (a, e) = match kind {
            AudioAnomaly::Transient => {
                let (a, e) = span(&mut rng, 0.005, 0.02);
                let rms = (orig.iter().map(|v| v * v).sum::<f32>() / n as f32)
                    .sqrt()
                    .max(0.01);
                let peak = (0.2 + 1.8 * s) * rms;
                let tau = (e - a) as f32 / 4.0;
                for p in a..e {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    o[p] = orig[p] + peak * (-((p - a) as f32) / tau).exp() * z.clamp(-3.0, 3.0);
                }
                (a, e)
            }
            AudioAnomaly::SpeedChange => {
                let (a, e) = span(&mut rng, 0.1, 0.3);
                let f = 1.0 + 0.5 * strength;
                for p in a..e {
                    o[p] = interp(orig, a as f64 + (p - a) as f64 * f);
                }
                (a, e)
            }
            AudioAnomaly::Dropout => {
                let (a, e) = span(&mut rng, 0.02, 0.1);
                for p in a..e {
                    o[p] = orig[p] * (1.0 - s);
                }
                (a, e)
            }
        };
        enforce_change(orig, o, |p| p >= a && p < e, AUDIO_MIN_CHANGE, -1.0, 1.0);
        mask[i * n + a..i * n + e].iter_mut().for_each(|m| *m = 1.0);
    }
    Ok(Injected {
        x: Tensor::from_vec(out, dims, x.device())?,
        mask: Tensor::from_vec(mask, (b, n), x.device())?,
    })
}

/// The mask of scalogram frames `[batch, frames]` (1 where any sample of the frame is in the
/// sample mask `[batch, samples]`), for `hop` samples per frame.
///
/// # Errors
/// [`Error::InvalidConfig`] for `hop = 0`; candle errors.
pub fn frame_mask(mask: &Tensor, hop: usize) -> Result<Tensor> {
    if hop == 0 {
        return Err(Error::config("hop", "must be positive"));
    }
    let (b, n) = mask.dims2()?;
    let frames = n.div_ceil(hop);
    let m = mask.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    let out: Vec<f32> = m
        .iter()
        .flat_map(|row| {
            row.chunks(hop)
                .map(|c| if c.iter().any(|&v| v > 0.5) { 1.0 } else { 0.0 })
                .collect::<Vec<f32>>()
        })
        .collect();
    Ok(Tensor::from_vec(out, (b, frames), mask.device())?)
}

/// Turns a (generated) scalogram `[1, scales, frames]` of `transform` back into a waveform. A
/// generated map has no phase: it starts from the phase of seeded white noise and refines it
/// for `iterations` rounds of Griffin-Lim-style phase retrieval (invert with the current
/// phase, take the phase of the result's CWT), each an ICWT and a CWT of the clip.
///
/// # Errors
/// Errors of the transform ([`dmad_data::Error`]): a map of another shape, NaN pixels.
pub fn scalogram_to_wave(
    transform: &AudioScalogram,
    image: &Tensor,
    iterations: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let n = transform.config().length;
    let mut rng = sample_rng(seed, 0);
    let noise: Vec<f32> = (0..n)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            0.1 * z
        })
        .collect();
    let image = image.to_device(&Device::Cpu)?;
    let mut phase = transform.forward(&noise, &Device::Cpu)?;
    let mut wave = transform.inverse(&phase, &image)?;
    for _ in 0..iterations {
        let clipped: Vec<f32> = wave.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
        phase = transform.forward(&clipped, &Device::Cpu)?;
        wave = transform.inverse(&phase, &image)?;
    }
    Ok(wave.into_iter().map(|v| v.clamp(-1.0, 1.0)).collect())
}
