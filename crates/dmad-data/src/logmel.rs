//! Log-mel spectrograms as librosa computes them (`librosa.feature.melspectrogram`, then
//! `10 log10(mel + 1e-10)` as the DCASE task-2 baselines take it), and the per-band clip
//! statistics the DCASE-style detectors compare.
//!
//! Field names follow librosa's: `n_fft`, `hop_length`, `n_mels`, `fmin`, `fmax`, `htk`,
//! `norm`, `center`.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::error::{Error, Result};

/// The floor added to the mel power before the logarithm (librosa's `amin`).
pub const LOG_EPS: f64 = 1e-10;

/// The normalisation of the mel filters (librosa's `norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MelNorm {
    /// Each triangle has unit area (`norm="slaney"`, librosa's default).
    #[default]
    Slaney,
    /// Each triangle peaks at 1 (`norm=None`).
    None,
}

/// Settings of a log-mel spectrogram. The default is librosa's melspectrogram at the DCASE
/// task-2 baselines' frame settings: 16 kHz, `n_fft` 1024, hop 256, 64 mels from 0 Hz to
/// Nyquist on Slaney's mel scale with Slaney normalisation, centred frames.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMelConfig {
    /// The clips' sample rate in Hz.
    pub sample_rate: u32,
    /// The FFT length and window length (a periodic Hann window).
    pub n_fft: usize,
    /// Samples between frame starts.
    pub hop_length: usize,
    /// The number of mel bands.
    pub n_mels: usize,
    /// The lowest band edge in Hz.
    pub fmin: f64,
    /// The highest band edge in Hz; `None` for Nyquist.
    pub fmax: Option<f64>,
    /// HTK's mel scale (`2595 log10(1 + f / 700)`) instead of Slaney's.
    pub htk: bool,
    /// The filters' normalisation.
    pub norm: MelNorm,
    /// Centre the frames: pad `n_fft / 2` zeros on both sides (librosa's `center=True,
    /// pad_mode="constant"`), so a clip of `n` samples has `1 + n / hop_length` frames; without
    /// it, `1 + (n - n_fft) / hop_length`.
    pub center: bool,
}

impl Default for LogMelConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            n_fft: 1024,
            hop_length: 256,
            n_mels: 64,
            fmin: 0.0,
            fmax: None,
            htk: false,
            norm: MelNorm::Slaney,
            center: true,
        }
    }
}

/// A log-mel spectrogram: `values[frame * n_mels + band]` in dB.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMelSpectrogram {
    /// The values, frame-major.
    pub values: Vec<f32>,
    /// The number of frames.
    pub frames: usize,
    /// The number of mel bands.
    pub n_mels: usize,
}

impl LogMelSpectrogram {
    /// Per band the mean over frames, then per band the (population) standard deviation:
    /// `2 n_mels` numbers, as the DCASE-style clip statistics.
    pub fn statistics(&self) -> Vec<f32> {
        let m = self.n_mels;
        let n = self.frames.max(1) as f64;
        let mut mean = vec![0f64; m];
        for row in self.values.chunks_exact(m) {
            for (s, &v) in mean.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        mean.iter_mut().for_each(|s| *s /= n);
        let mut var = vec![0f64; m];
        for row in self.values.chunks_exact(m) {
            for ((s, &v), mu) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - mu).powi(2);
            }
        }
        mean.iter()
            .map(|&v| v as f32)
            .chain(var.iter().map(|s| (s / n).sqrt() as f32))
            .collect()
    }

    /// Per band the (population) standard deviation of the frame-to-frame differences
    /// `x[f + 1] - x[f]` over the clip: `n_mels` numbers, how fast each band moves (a per-band
    /// spectral flux; the first difference, not librosa's smoothed `feature.delta`). A steady
    /// sound with a slow level change has small values, a rattle, a transient or a drop-out
    /// large ones. Zeros for fewer than two frames.
    pub fn delta_deviation(&self) -> Vec<f32> {
        let m = self.n_mels;
        if self.frames < 2 {
            return vec![0.0; m];
        }
        let n = (self.frames - 1) as f64;
        let rows: Vec<&[f32]> = self.values.chunks_exact(m).collect();
        let mut mean = vec![0f64; m];
        let mut sq = vec![0f64; m];
        for pair in rows.windows(2) {
            for (b, (&a, &c)) in pair[0].iter().zip(pair[1]).enumerate() {
                let d = c as f64 - a as f64;
                mean[b] += d;
                sq[b] += d * d;
            }
        }
        mean.iter()
            .zip(&sq)
            .map(|(&s, &q)| {
                let mu = s / n;
                (q / n - mu * mu).max(0.0).sqrt() as f32
            })
            .collect()
    }
}

/// A planned log-mel transform (window, filterbank and FFT), reusable across clips.
#[derive(Clone)]
pub struct LogMel {
    cfg: LogMelConfig,
    window: Vec<f64>,
    /// `[n_mels, n_fft / 2 + 1]`, row-major.
    filters: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel").field("cfg", &self.cfg).finish()
    }
}

impl LogMel {
    /// Plans the transform.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero rate, FFT length, hop or band count, or band
    /// edges outside `0 <= fmin < fmax <= sample_rate / 2`.
    pub fn new(cfg: &LogMelConfig) -> Result<Self> {
        let bad = |field: &'static str, reason: String| Error::InvalidConfig { field, reason };
        if cfg.sample_rate == 0 || cfg.n_fft < 2 || cfg.hop_length == 0 || cfg.n_mels == 0 {
            return Err(bad(
                "sample_rate/n_fft/hop_length/n_mels",
                format!(
                    "need a positive rate, hop and band count and n_fft >= 2, got {} Hz, \
                     n_fft {}, hop {}, {} mels",
                    cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels
                ),
            ));
        }
        let nyquist = cfg.sample_rate as f64 / 2.0;
        let fmax = cfg.fmax.unwrap_or(nyquist);
        if !(cfg.fmin >= 0.0 && cfg.fmin < fmax && fmax <= nyquist) {
            return Err(bad(
                "fmin/fmax",
                format!(
                    "need 0 <= fmin < fmax <= {nyquist} Hz, got {} and {fmax}",
                    cfg.fmin
                ),
            ));
        }
        let n = cfg.n_fft;
        let window = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            window,
            filters: filterbank(cfg, fmax),
            fft: FftPlanner::new().plan_fft_forward(n),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LogMelConfig {
        &self.cfg
    }

    /// The number of frames of a clip of `samples` samples (0 when an uncentred clip is
    /// shorter than one frame).
    pub fn frames(&self, samples: usize) -> usize {
        let (n, hop) = (self.cfg.n_fft, self.cfg.hop_length);
        if self.cfg.center {
            1 + samples / hop
        } else if samples >= n {
            1 + (samples - n) / hop
        } else {
            0
        }
    }

    /// The log-mel spectrogram of `x` (samples at the configured rate).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (field `samples`) for a clip without a whole frame (an empty
    /// clip, or an uncentred one shorter than `n_fft`).
    pub fn forward(&self, x: &[f32]) -> Result<LogMelSpectrogram> {
        let frames = self.frames(x.len());
        if frames == 0 || x.is_empty() {
            return Err(Error::InvalidConfig {
                field: "samples",
                reason: format!(
                    "a clip of {} samples holds no {}-sample frame",
                    x.len(),
                    self.cfg.n_fft
                ),
            });
        }
        let (n, hop, m) = (self.cfg.n_fft, self.cfg.hop_length, self.cfg.n_mels);
        let bins = n / 2 + 1;
        let pad = if self.cfg.center { n / 2 } else { 0 };
        let mut buf = vec![Complex::new(0.0, 0.0); n];
        let mut scratch = vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0f64; bins];
        let mut values = Vec::with_capacity(frames * m);
        for f in 0..frames {
            let start = (f * hop) as isize - pad as isize;
            for (i, (b, w)) in buf.iter_mut().zip(&self.window).enumerate() {
                let j = start + i as isize;
                let v = if j >= 0 && (j as usize) < x.len() {
                    x[j as usize] as f64
                } else {
                    0.0
                };
                *b = Complex::new(v * w, 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm_sqr();
            }
            for row in self.filters.chunks_exact(bins) {
                let mel: f64 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                values.push((10.0 * (mel + LOG_EPS).log10()) as f32);
            }
        }
        Ok(LogMelSpectrogram {
            values,
            frames,
            n_mels: m,
        })
    }
}

/// Hz to mel on HTK's or Slaney's scale (librosa's `hz_to_mel`).
fn hz_to_mel(f: f64, htk: bool) -> f64 {
    if htk {
        return 2595.0 * (1.0 + f / 700.0).log10();
    }
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, logstep) = (1000.0, 6.4f64.ln() / 27.0);
    if f >= min_log_hz {
        min_log_hz / f_sp + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

/// Mel to Hz, the inverse of [`hz_to_mel`].
fn mel_to_hz(m: f64, htk: bool) -> f64 {
    if htk {
        return 700.0 * (10f64.powf(m / 2595.0) - 1.0);
    }
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, logstep) = (1000.0, 6.4f64.ln() / 27.0);
    let min_log_mel = min_log_hz / f_sp;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// The triangular mel filters `[n_mels, n_fft / 2 + 1]` (librosa's `filters.mel`).
fn filterbank(cfg: &LogMelConfig, fmax: f64) -> Vec<f64> {
    let bins = cfg.n_fft / 2 + 1;
    let m = cfg.n_mels;
    let (lo, hi) = (hz_to_mel(cfg.fmin, cfg.htk), hz_to_mel(fmax, cfg.htk));
    let edges: Vec<f64> = (0..m + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (m + 1) as f64, cfg.htk))
        .collect();
    let freq = |k: usize| k as f64 * cfg.sample_rate as f64 / cfg.n_fft as f64;
    let mut out = vec![0f64; m * bins];
    for (b, row) in out.chunks_exact_mut(bins).enumerate() {
        let (left, centre, right) = (edges[b], edges[b + 1], edges[b + 2]);
        let scale = match cfg.norm {
            MelNorm::Slaney => 2.0 / (right - left),
            MelNorm::None => 1.0,
        };
        for (k, w) in row.iter_mut().enumerate() {
            let f = freq(k);
            let up = (f - left) / (centre - left);
            let down = (right - f) / (right - centre);
            *w = up.min(down).max(0.0) * scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scales_invert() {
        for htk in [false, true] {
            for f in [0.0, 300.0, 999.0, 1000.0, 4321.0, 8000.0] {
                let back = mel_to_hz(hz_to_mel(f, htk), htk);
                assert!((back - f).abs() < 1e-9 * f.max(1.0), "{htk} {f} {back}");
            }
        }
    }

    #[test]
    fn statistics_are_band_means_then_deviations() {
        let s = LogMelSpectrogram {
            values: vec![1.0, 10.0, 3.0, 10.0],
            frames: 2,
            n_mels: 2,
        };
        assert_eq!(s.statistics(), vec![2.0, 10.0, 1.0, 0.0]);
    }

    #[test]
    fn delta_deviation_is_the_spread_of_frame_differences() {
        // Band 0 rises by 2 then falls by 2 (differences 2, -2: deviation 2); band 1 rises
        // steadily (differences 1, 1: deviation 0).
        let s = LogMelSpectrogram {
            values: vec![1.0, 0.0, 3.0, 1.0, 1.0, 2.0],
            frames: 3,
            n_mels: 2,
        };
        assert_eq!(s.delta_deviation(), vec![2.0, 0.0]);
        let one = LogMelSpectrogram {
            values: vec![5.0, 7.0],
            frames: 1,
            n_mels: 2,
        };
        assert_eq!(one.delta_deviation(), vec![0.0, 0.0]);
    }

    #[test]
    fn frame_counts_follow_centring() {
        let lm = LogMel::new(&LogMelConfig::default()).unwrap();
        assert_eq!(lm.frames(16_000), 63);
        let lm = LogMel::new(&LogMelConfig {
            center: false,
            ..LogMelConfig::default()
        })
        .unwrap();
        assert_eq!(lm.frames(16_000), 59);
        assert_eq!(lm.frames(1000), 0);
        let err = lm.forward(&[0.0; 1000]).unwrap_err().to_string();
        assert!(err.contains("1000 samples"), "{err}");
    }

    #[test]
    fn bad_configs_are_named() {
        for (cfg, field) in [
            (
                LogMelConfig {
                    n_mels: 0,
                    ..LogMelConfig::default()
                },
                "n_mels",
            ),
            (
                LogMelConfig {
                    fmax: Some(9000.0),
                    ..LogMelConfig::default()
                },
                "fmax",
            ),
            (
                LogMelConfig {
                    fmin: -1.0,
                    ..LogMelConfig::default()
                },
                "fmin",
            ),
        ] {
            let err = LogMel::new(&cfg).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
