//! The audio-to-scalogram path: waveform -> CWT (dmad-wavelets) -> normalised log-power map
//! `[1, scales, frames]`, and back (map -> CWT with the kept phase -> ICWT -> waveform).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use dmad_wavelets::{
    icwt, ContinuousWavelet, CwtConfig, CwtMethod, CwtPlan, CwtPlanner, Scalogram, ScalogramConfig,
};
pub use dmad_wavelets::{ScalogramKind, ScalogramReference};

use crate::audio::DcaseFolder;
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// How a waveform becomes a scalogram.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioScalogramConfig {
    /// The sample rate of the waveforms, in Hz. Default 16 000.
    pub sample_rate: u32,
    /// The number of samples of every waveform (the CWT is planned for one length). Default
    /// 16 000 (1 s).
    pub length: usize,
    /// A continuous wavelet name of dmad-wavelets (PyWavelets' names). Default `"cmor1.5-1.0"`
    /// (complex Morlet: a smooth magnitude and a phase for the inverse).
    pub wavelet: String,
    /// The number of scales (rows of the map). Default 64.
    pub n_scales: usize,
    /// The lowest analysed frequency in Hz (the last row). Default 50.
    pub f_min: f64,
    /// The highest analysed frequency in Hz (the first row). Default 7 600 (0.95 x Nyquist at
    /// 16 kHz).
    pub f_max: f64,
    /// Time steps per frame: each frame is the mean of `hop` consecutive CWT columns of the
    /// normalised map. Default 64 (250 frames for 1 s at 16 kHz). 1 keeps every sample.
    pub hop: usize,
    /// Pixel values: log power (default) or magnitude, see [`ScalogramKind`].
    pub kind: ScalogramKind,
    /// For log power: the range kept below the reference level, in dB. Default 80.
    pub dynamic_range_db: f64,
    /// The level at the top of the map: each clip's own largest coefficient (default
    /// [`ScalogramReference::ClipMax`]: the map ignores the clip's gain) or one fixed level in
    /// dB of `|W|` for every clip ([`ScalogramReference::Absolute`]: the map keeps the level).
    /// `|W|` follows PyWavelets' CWT scaling (it grows with the square root of the scale for
    /// a tone), so read a level off normal clips (e.g. their largest `|W|` in dB).
    pub reference: ScalogramReference,
}

impl AudioScalogramConfig {
    /// The options of the CWT-to-image step.
    fn scalogram_config(&self) -> ScalogramConfig {
        ScalogramConfig {
            kind: self.kind,
            dynamic_range_db: self.dynamic_range_db,
            reference: self.reference,
        }
    }
}

impl Default for AudioScalogramConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            length: 16_000,
            wavelet: "cmor1.5-1.0".into(),
            n_scales: 64,
            f_min: 50.0,
            f_max: 7_600.0,
            hop: 64,
            kind: ScalogramKind::LogPower,
            dynamic_range_db: 80.0,
            reference: ScalogramReference::ClipMax,
        }
    }
}

/// A planned waveform-to-scalogram transform (and its inverse).
///
/// Rows are geometrically spaced frequencies from `f_max` (row 0) down to `f_min`; the scale of
/// frequency `f` is `central_frequency * sample_rate / f`. The map is dmad-wavelets'
/// [`Scalogram`] (log power clipped to the dynamic range, mapped to `[-1, 1]`), averaged over
/// `hop` samples per frame.
#[derive(Debug, Clone)]
pub struct AudioScalogram {
    cfg: AudioScalogramConfig,
    wavelet: ContinuousWavelet,
    plan: Arc<CwtPlan>,
    frames: usize,
}

/// A scalogram of one clip: the map and what the inverse needs (the CWT phase).
#[derive(Debug, Clone)]
pub struct ScalogramSample {
    /// The map `[1, scales, frames]`, f32 in `[-1, 1]`.
    pub image: Tensor,
    scalogram: Scalogram,
}

impl AudioScalogram {
    /// Plans the transform.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero length, rate, hop or scale count, frequencies
    /// outside `0 < f_min < f_max <= sample_rate / 2`, a dynamic range that is not finite and
    /// positive, or an absolute reference whose level `10^(top_db / 20)` is not a positive
    /// finite number; [`Error::Wavelets`] for an unknown wavelet or a CWT that cannot be
    /// planned.
    pub fn new(cfg: &AudioScalogramConfig) -> Result<Self> {
        let bad = |field: &'static str, reason: String| Error::InvalidConfig { field, reason };
        if cfg.sample_rate == 0 || cfg.length == 0 || cfg.hop == 0 {
            return Err(bad(
                "sample_rate/length/hop",
                format!(
                    "must be positive, got {} Hz, {} samples, hop {}",
                    cfg.sample_rate, cfg.length, cfg.hop
                ),
            ));
        }
        if cfg.n_scales < 2 {
            return Err(bad(
                "n_scales",
                format!("needs at least 2 scales, got {}", cfg.n_scales),
            ));
        }
        let nyquist = cfg.sample_rate as f64 / 2.0;
        if !(cfg.f_min > 0.0 && cfg.f_min < cfg.f_max && cfg.f_max <= nyquist) {
            return Err(bad(
                "f_min/f_max",
                format!(
                    "need 0 < f_min < f_max <= {nyquist} Hz, got {} and {}",
                    cfg.f_min, cfg.f_max
                ),
            ));
        }
        cfg.scalogram_config().check().map_err(|e| match e {
            dmad_wavelets::Error::InvalidArgument { name, reason } => bad(name, reason.into()),
            other => Error::Wavelets(other),
        })?;
        let wavelet = ContinuousWavelet::new(&cfg.wavelet)?;
        let wcfg = CwtConfig {
            sampling_period: 1.0 / cfg.sample_rate as f64,
            method: CwtMethod::Fft,
            ..CwtConfig::default()
        };
        let fc = wavelet.central_frequency(wcfg.precision);
        let ratio = (cfg.f_min / cfg.f_max).ln();
        let scales: Vec<f64> = (0..cfg.n_scales)
            .map(|j| {
                let f = cfg.f_max * (ratio * j as f64 / (cfg.n_scales - 1) as f64).exp();
                fc * cfg.sample_rate as f64 / f
            })
            .collect();
        let plan = CwtPlanner::new().plan_cwt(&wavelet, &scales, cfg.length, &wcfg)?;
        Ok(Self {
            cfg: cfg.clone(),
            wavelet,
            plan,
            frames: cfg.length.div_ceil(cfg.hop),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AudioScalogramConfig {
        &self.cfg
    }

    /// The frequency of each row, in Hz.
    pub fn frequencies(&self) -> &[f64] {
        self.plan.frequencies()
    }

    /// The map's `(scales, frames)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.cfg.n_scales, self.frames)
    }

    /// The scalogram of `x` (`config().length` samples).
    ///
    /// # Shapes
    /// `image` is `[1, n_scales, ceil(length / hop)]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for another length; [`Error::Wavelets`] for non-finite samples.
    pub fn forward(&self, x: &[f32], device: &Device) -> Result<ScalogramSample> {
        if x.len() != self.cfg.length {
            return Err(Error::ShapeMismatch {
                context: "AudioScalogram::forward (waveform length)".into(),
                expected: format!("{} samples", self.cfg.length),
                got: vec![x.len()],
            });
        }
        let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let cwt = self.plan.process(&xd)?;
        let scalogram = Scalogram::new(&cwt, &self.cfg.scalogram_config(), &Device::Cpu)?;
        let full = scalogram.image().to_vec2::<f32>()?;
        let pooled = self.pool(&full);
        let image = Tensor::from_vec(pooled, (1, self.cfg.n_scales, self.frames), device)?;
        Ok(ScalogramSample { image, scalogram })
    }

    /// The waveform of a (reconstructed) map `image` `[1, scales, frames]`, using the phase of
    /// `sample` (the scalogram the map was made from): frames are spread back over their
    /// samples by linear interpolation, turned into CWT coefficients and inverted with
    /// dmad-wavelets' ICWT. `inverse(s, &s.image)` approximates the clip (exactly up to the
    /// ICWT's error, the dynamic-range floor and, for `hop > 1`, the frame averaging).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for another shape; [`Error::Wavelets`] for NaN pixels.
    pub fn inverse(&self, sample: &ScalogramSample, image: &Tensor) -> Result<Vec<f32>> {
        let (s, f) = self.shape();
        if image.dims() != [1, s, f] {
            return Err(Error::ShapeMismatch {
                context: "AudioScalogram::inverse (map)".into(),
                expected: format!("[1, {s}, {f}]"),
                got: image.dims().to_vec(),
            });
        }
        let rows = image.get(0)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let full = self.unpool(&rows);
        let full = Tensor::from_vec(full, (s, self.cfg.length), &Device::Cpu)?;
        let cwt = sample.scalogram.to_cwt(&full)?;
        Ok(icwt(&cwt, &self.wavelet)?
            .into_iter()
            .map(|v| v as f32)
            .collect())
    }

    /// Means of `hop` columns (the last frame may be shorter).
    fn pool(&self, rows: &[Vec<f32>]) -> Vec<f32> {
        let hop = self.cfg.hop;
        let mut out = Vec::with_capacity(rows.len() * self.frames);
        for row in rows {
            for chunk in row.chunks(hop) {
                out.push(chunk.iter().sum::<f32>() / chunk.len() as f32);
            }
        }
        out
    }

    /// Linear interpolation between frame centres, back to one value per sample.
    fn unpool(&self, rows: &[Vec<f32>]) -> Vec<f32> {
        let (hop, n) = (self.cfg.hop, self.cfg.length);
        if hop == 1 {
            return rows.concat();
        }
        let centre = |k: usize| {
            let start = k * hop;
            let end = (start + hop).min(n);
            (start + end - 1) as f64 / 2.0
        };
        let mut out = Vec::with_capacity(rows.len() * n);
        for row in rows {
            let mut k = 0;
            for t in 0..n {
                let tf = t as f64;
                while k + 1 < row.len() && centre(k + 1) <= tf {
                    k += 1;
                }
                let v = if k + 1 >= row.len() || tf <= centre(k) {
                    row[k]
                } else {
                    let w = (tf - centre(k)) / (centre(k + 1) - centre(k));
                    ((1.0 - w) * row[k] as f64 + w * row[k + 1] as f64) as f32
                };
                out.push(v);
            }
        }
        out
    }
}

/// One clip of a [`DcaseScalograms`] dataset.
#[derive(Debug, Clone)]
pub struct ScalogramItem {
    /// The scalogram (map `[1, scales, frames]` and the phase for the inverse).
    pub sample: ScalogramSample,
    /// 0 = normal, 1 = anomalous.
    pub label: u8,
    /// `normal` or the anomaly kind (for analysis only).
    pub kind: String,
    /// The file.
    pub source: String,
}

/// A DCASE folder whose samples are scalograms.
#[derive(Debug, Clone)]
pub struct DcaseScalograms {
    folder: DcaseFolder,
    transform: Arc<AudioScalogram>,
    device: Device,
}

impl DcaseScalograms {
    /// Wraps `folder`, whose config must produce waveforms of the transform's rate and length.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the folder's `sample_rate` or `length` differs from the
    /// transform's.
    pub fn new(folder: DcaseFolder, transform: Arc<AudioScalogram>) -> Result<Self> {
        let (fc, tc) = (folder.config(), transform.config());
        if fc.sample_rate != tc.sample_rate || fc.length != Some(tc.length) {
            return Err(Error::InvalidConfig {
                field: "length/sample_rate",
                reason: format!(
                    "the folder gives {:?} samples at {} Hz, the scalogram needs {} at {} Hz",
                    fc.length, fc.sample_rate, tc.length, tc.sample_rate
                ),
            });
        }
        Ok(Self {
            folder,
            transform,
            device: Device::Cpu,
        })
    }

    /// Creates the maps on `device` (default CPU).
    pub fn on_device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// The folder.
    pub fn folder(&self) -> &DcaseFolder {
        &self.folder
    }

    /// The transform.
    pub fn transform(&self) -> &AudioScalogram {
        &self.transform
    }
}

impl Dataset for DcaseScalograms {
    type Item = ScalogramItem;

    fn len(&self) -> usize {
        self.folder.len()
    }

    fn get(&self, index: usize) -> Result<ScalogramItem> {
        let x = self.folder.waveform(index)?;
        let sample = self.transform.forward(&x, &self.device)?;
        Ok(ScalogramItem {
            sample,
            label: self.folder.label(index)?,
            kind: self.folder.kinds()[index].to_string(),
            source: self
                .folder
                .paths()
                .nth(index)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> AudioScalogramConfig {
        AudioScalogramConfig {
            length: 4_000,
            n_scales: 48,
            f_min: 100.0,
            f_max: 6_000.0,
            hop: 1,
            ..AudioScalogramConfig::default()
        }
    }

    #[test]
    fn tone_peaks_in_its_row_and_inverts() -> anyhow::Result<()> {
        let cfg = small();
        let t = AudioScalogram::new(&cfg)?;
        let x = tone(cfg.length, 1_000.0, 0.5);
        let s = t.forward(&x, &Device::Cpu)?;
        assert_eq!(s.image.dims(), &[1, 48, 4_000]);
        // The row nearest 1 kHz has the largest mean.
        let rows = s.image.get(0)?.mean(1)?.to_vec1::<f32>()?;
        let best = (0..48)
            .max_by(|&a, &b| rows[a].total_cmp(&rows[b]))
            .unwrap();
        let near = (0..48)
            .min_by(|&a, &b| {
                (t.frequencies()[a] - 1_000.0)
                    .abs()
                    .total_cmp(&(t.frequencies()[b] - 1_000.0).abs())
            })
            .unwrap();
        assert!(
            best.abs_diff(near) <= 1,
            "peak row {best}, 1 kHz row {near}"
        );
        // Map -> waveform recovers the tone away from the edges.
        let y = t.inverse(&s, &s.image)?;
        let rel = rel_err(&x, &y, 500, cfg.length - 500);
        assert!(rel < 0.05, "relative reconstruction error {rel}");
        Ok(())
    }

    #[test]
    fn frames_pool_and_unpool() -> anyhow::Result<()> {
        let cfg = AudioScalogramConfig {
            hop: 100,
            ..small()
        };
        let t = AudioScalogram::new(&cfg)?;
        assert_eq!(t.shape(), (48, 40));
        let x: Vec<f32> = (0..cfg.length)
            .map(|i| ((i as f32) * 0.3).sin() * 0.2)
            .collect();
        let s = t.forward(&x, &Device::Cpu)?;
        assert_eq!(s.image.dims(), &[1, 48, 40]);
        let v = s.image.flatten_all()?.to_vec1::<f32>()?;
        assert!(v.iter().all(|p| (-1.0..=1.0).contains(p)));
        assert_eq!(t.inverse(&s, &s.image)?.len(), cfg.length);
        // Constant rows stay constant through unpooling; ramps are interpolated.
        let up = t.unpool(&[vec![0.5; 40], (0..40).map(|k| k as f32).collect()]);
        assert!(up[..4_000].iter().all(|&v| v == 0.5));
        assert!((up[4_000 + 150] - 1.005).abs() < 1e-4); // centre of frame 1 is 149.5
        Ok(())
    }

    fn tone(n: usize, hz: f64, amplitude: f64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((2.0 * std::f64::consts::PI * hz * i as f64 / 16_000.0).sin() * amplitude) as f32
            })
            .collect()
    }

    /// Relative L2 error between `x` and `y` on `a..b`.
    fn rel_err(x: &[f32], y: &[f32], a: usize, b: usize) -> f64 {
        let err: f64 = x[a..b]
            .iter()
            .zip(&y[a..b])
            .map(|(p, q)| ((p - q) as f64).powi(2))
            .sum();
        let norm: f64 = x[a..b].iter().map(|p| (*p as f64).powi(2)).sum();
        (err / norm).sqrt()
    }

    #[test]
    fn absolute_reference_keeps_the_level_and_inverts() -> anyhow::Result<()> {
        let clip_max = AudioScalogram::new(&small())?;
        // 0 dB of |W| at the top: both tones lie well below it and well above the floor.
        let absolute = AudioScalogram::new(&AudioScalogramConfig {
            reference: ScalogramReference::Absolute { top_db: 0.0 },
            ..small()
        })?;
        let (loud, quiet) = (tone(4_000, 1_000.0, 0.5), tone(4_000, 1_000.0, 0.25));
        let map = |t: &AudioScalogram, x: &[f32]| -> anyhow::Result<Vec<f32>> {
            Ok(t.forward(x, &Device::Cpu)?.image.flatten_all()?.to_vec1()?)
        };
        // Per-clip maximum: halving the gain changes nothing.
        let (a, b) = (map(&clip_max, &loud)?, map(&clip_max, &quiet)?);
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-5));
        // Absolute: every pixel above the floor drops by 20 log10(2) dB, i.e. 2 * 6.02 / 80.
        let (a, b) = (map(&absolute, &loud)?, map(&absolute, &quiet)?);
        let shift = 2.0 * 20.0 * 2f64.log10() / 80.0;
        let above: Vec<_> = a
            .iter()
            .zip(&b)
            .filter(|(p, q)| **p > -0.9 && **q > -0.9)
            .collect();
        assert!(
            above.len() > a.len() / 4,
            "{} pixels above the floor",
            above.len()
        );
        for (p, q) in above {
            assert!(((p - q) as f64 - shift).abs() <= 1e-4, "{p} -> {q}");
        }
        assert!(a.iter().all(|p| *p < 1.0), "the top is above the loud tone");
        // The way back keeps each level (the same bound as the clip-max tone test).
        for x in [&loud, &quiet] {
            let s = absolute.forward(x, &Device::Cpu)?;
            let y = absolute.inverse(&s, &s.image)?;
            let rel = rel_err(x, &y, 500, 3_500);
            assert!(rel < 0.05, "relative reconstruction error {rel}");
        }
        Ok(())
    }

    #[test]
    fn few_frames_and_a_narrow_wavelet_invert_a_tone() -> anyhow::Result<()> {
        // The benchmark's audio map: a narrow-band Morlet, four frames of 4 000 samples.
        for reference in [
            ScalogramReference::ClipMax,
            ScalogramReference::Absolute { top_db: 0.0 },
        ] {
            let cfg = AudioScalogramConfig {
                length: 16_000,
                n_scales: 32,
                hop: 4_000,
                wavelet: "cmor10-1.0".into(),
                reference,
                ..AudioScalogramConfig::default()
            };
            let t = AudioScalogram::new(&cfg)?;
            assert_eq!(t.shape(), (32, 4));
            let x = tone(16_000, 1_000.0, 0.5);
            let s = t.forward(&x, &Device::Cpu)?;
            assert_eq!(s.image.dims(), &[1, 32, 4]);
            let y = t.inverse(&s, &s.image)?;
            let rel = rel_err(&x, &y, 2_000, 14_000);
            assert!(
                rel < 0.05,
                "{reference:?}: relative reconstruction error {rel}"
            );
        }
        Ok(())
    }

    #[test]
    fn bad_configs_and_shapes() {
        for cfg in [
            AudioScalogramConfig { hop: 0, ..small() },
            AudioScalogramConfig {
                n_scales: 1,
                ..small()
            },
            AudioScalogramConfig {
                f_max: 9_000.0,
                ..small()
            },
            AudioScalogramConfig {
                f_min: 0.0,
                ..small()
            },
            AudioScalogramConfig {
                dynamic_range_db: 0.0,
                ..small()
            },
            AudioScalogramConfig {
                dynamic_range_db: f64::NAN,
                ..small()
            },
            AudioScalogramConfig {
                reference: ScalogramReference::Absolute { top_db: f64::NAN },
                ..small()
            },
            AudioScalogramConfig {
                reference: ScalogramReference::Absolute { top_db: 1e4 },
                ..small()
            },
        ] {
            assert!(
                matches!(AudioScalogram::new(&cfg), Err(Error::InvalidConfig { .. })),
                "{cfg:?}"
            );
        }
        let unknown = AudioScalogramConfig {
            wavelet: "nope".into(),
            ..small()
        };
        assert!(matches!(
            AudioScalogram::new(&unknown),
            Err(Error::Wavelets(_))
        ));
        let t = AudioScalogram::new(&small()).unwrap();
        assert!(matches!(
            t.forward(&[0.0; 10], &Device::Cpu),
            Err(Error::ShapeMismatch { .. })
        ));
        let s = t.forward(&vec![0.1; 4_000], &Device::Cpu).unwrap();
        let wrong = Tensor::zeros((1, 48, 10), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            t.inverse(&s, &wrong),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
