//! Audio: WAV reading, band-limited resampling and DCASE task-2 folders.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};

use crate::dataset::{check_index, Dataset};
use crate::error::{list_files, Error, Result};
use crate::image::Split;

/// A decoded WAV clip: the first channel, as f32 in `[-1, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// The samples of the first channel.
    pub samples: Vec<f32>,
    /// The file's sample rate in Hz.
    pub sample_rate: u32,
    /// The file's number of channels.
    pub channels: u16,
}

fn wav_err(path: &Path, source: hound::Error) -> Error {
    Error::Wav {
        path: path.to_path_buf(),
        source,
    }
}

fn check_nonempty(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Reads a WAV file's header and returns `(sample_rate, channels, frames)`.
///
/// # Errors
/// [`Error::EmptyFile`], or [`Error::Wav`] naming the file for a bad RIFF/fmt chunk or an
/// unsupported format.
pub fn wav_info(path: impl AsRef<Path>) -> Result<(u32, u16, u32)> {
    let path = path.as_ref();
    check_nonempty(path)?;
    let r = hound::WavReader::open(path).map_err(|e| wav_err(path, e))?;
    let spec = r.spec();
    check_spec(path, spec)?;
    Ok((spec.sample_rate, spec.channels, r.duration()))
}

fn check_spec(path: &Path, spec: hound::WavSpec) -> Result<()> {
    let ok = match spec.sample_format {
        hound::SampleFormat::Int => matches!(spec.bits_per_sample, 8 | 16 | 24 | 32),
        hound::SampleFormat::Float => spec.bits_per_sample == 32,
    };
    if !ok || spec.channels == 0 || spec.sample_rate == 0 {
        return Err(Error::invalid(
            path,
            None,
            Some("fmt"),
            format!(
                "unsupported WAV format: {:?} {} bits, {} channels, {} Hz",
                spec.sample_format, spec.bits_per_sample, spec.channels, spec.sample_rate
            ),
        ));
    }
    Ok(())
}

/// Reads a WAV file (8, 16, 24 or 32-bit PCM, or 32-bit float), keeping the first channel.
/// PCM is scaled by `2^(bits - 1)` to `[-1, 1)`.
///
/// # Errors
/// [`Error::EmptyFile`]; [`Error::Wav`] naming the file for a bad chunk or truncated data;
/// [`Error::InvalidInput`] for an unsupported sample format.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Wav> {
    let path = path.as_ref();
    check_nonempty(path)?;
    let mut r = hound::WavReader::open(path).map_err(|e| wav_err(path, e))?;
    let spec = r.spec();
    check_spec(path, spec)?;
    let ch = spec.channels as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .step_by(ch)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| wav_err(path, e))?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .step_by(ch)
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| wav_err(path, e))?
        }
    };
    Ok(Wav {
        samples,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    })
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// A band-limited resampler: windowed sinc (Kaiser window), for any pair of integer rates.
///
/// The low-pass cutoff is `rolloff * min(from, to) / 2`; each output sample sums
/// `2 * zero_crossings / min(1, to/from)` input samples (zeros outside the signal). Filters for
/// the `to / gcd` phases are precomputed.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    up: u64,
    down: u64,
    half: i64,
    table: Vec<f32>,
}

/// The parameters of a [`Resampler`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResamplerConfig {
    /// Zero crossings of the sinc on each side. Default 32.
    pub zero_crossings: usize,
    /// Cutoff as a share of the lower Nyquist frequency. Default 0.95.
    pub rolloff: f64,
    /// Kaiser window shape parameter. Default 9.0 (about 90 dB stop-band attenuation).
    pub kaiser_beta: f64,
}

impl Default for ResamplerConfig {
    fn default() -> Self {
        Self {
            zero_crossings: 32,
            rolloff: 0.95,
            kaiser_beta: 9.0,
        }
    }
}

impl Resampler {
    /// Plans the conversion from `from` Hz to `to` Hz.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero rate, `rolloff` outside `(0, 1]`, no zero crossings,
    /// or a rate pair whose filter table would exceed 16 M taps.
    pub fn new(from: u32, to: u32, cfg: &ResamplerConfig) -> Result<Self> {
        if from == 0 || to == 0 {
            return Err(Error::InvalidConfig {
                field: "sample_rate",
                reason: format!("rates must be positive, got {from} -> {to}"),
            });
        }
        if !(cfg.rolloff > 0.0 && cfg.rolloff <= 1.0) || cfg.zero_crossings == 0 {
            return Err(Error::InvalidConfig {
                field: "rolloff/zero_crossings",
                reason: format!("rolloff must lie in (0, 1], zero_crossings > 0; got {cfg:?}"),
            });
        }
        let g = gcd(from as u64, to as u64);
        let (up, down) = (to as u64 / g, from as u64 / g);
        let ratio = (to as f64 / from as f64).min(1.0);
        let fc = 0.5 * ratio * cfg.rolloff; // cycles per input sample
        let half_width = cfg.zero_crossings as f64 / (2.0 * fc); // input samples
        let half = half_width.ceil() as i64;
        let taps = 2 * half as usize;
        if up as usize * taps > 16 << 20 {
            return Err(Error::InvalidConfig {
                field: "sample_rate",
                reason: format!("{from} -> {to} Hz needs {up} filter phases; use rates with a larger common divisor"),
            });
        }
        let i0b = bessel_i0(cfg.kaiser_beta);
        let mut table = vec![0f32; up as usize * taps];
        for p in 0..up as usize {
            let frac = p as f64 / up as f64;
            for j in 0..taps {
                // Input offset k from floor(t): k = j - half + 1, x = k - frac.
                let x = (j as i64 - half + 1) as f64 - frac;
                let r = x / half_width;
                let w = if r.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(cfg.kaiser_beta * (1.0 - r * r).sqrt()) / i0b
                };
                let arg = 2.0 * fc * x;
                let sinc = if arg.abs() < 1e-12 {
                    1.0
                } else {
                    (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
                };
                table[p * taps + j] = (2.0 * fc * sinc * w) as f32;
            }
        }
        Ok(Self {
            from,
            to,
            up,
            down,
            half,
            table,
        })
    }

    /// The input and output rates.
    pub fn rates(&self) -> (u32, u32) {
        (self.from, self.to)
    }

    /// Resamples `x`; the output has `ceil(len * to / from)` samples, output sample `n` lying
    /// at input time `n * from / to`.
    pub fn process(&self, x: &[f32]) -> Vec<f32> {
        if self.up == self.down {
            return x.to_vec();
        }
        let n_out = ((x.len() as u64 * self.up).div_ceil(self.down)) as usize;
        let taps = 2 * self.half as usize;
        let mut out = Vec::with_capacity(n_out);
        for n in 0..n_out as u64 {
            let num = n * self.down;
            let base = (num / self.up) as i64;
            let phase = (num % self.up) as usize;
            let h = &self.table[phase * taps..(phase + 1) * taps];
            let first = base - self.half + 1;
            let mut acc = 0f64;
            let lo = (-first).max(0) as usize;
            let hi = ((x.len() as i64 - first).min(taps as i64)).max(0) as usize;
            for j in lo..hi {
                acc += h[j] as f64 * x[(first + j as i64) as usize] as f64;
            }
            out.push(acc as f32);
        }
        out
    }
}

/// Resamples `x` from `from` Hz to `to` Hz with the default [`ResamplerConfig`].
///
/// # Errors
/// As [`Resampler::new`].
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    Ok(Resampler::new(from, to, &ResamplerConfig::default())?.process(x))
}

/// How audio clips are loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioConfig {
    /// The rate every clip is resampled to, in Hz. Default 16 000.
    pub sample_rate: u32,
    /// Crop or zero-pad every clip to this many samples (after resampling); `None` keeps each
    /// clip's length. Default `None`.
    pub length: Option<usize>,
    /// Skip files that cannot be read when a folder is opened (listed by `skipped()`), instead
    /// of failing on the first. Default `false`.
    pub skip_bad: bool,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            length: None,
            skip_bad: false,
        }
    }
}

/// Reads a WAV file, resamples it to `cfg.sample_rate` and crops or pads it to `cfg.length`.
///
/// # Errors
/// As [`read_wav`] and [`Resampler::new`].
pub fn load_audio(path: impl AsRef<Path>, cfg: &AudioConfig) -> Result<Vec<f32>> {
    let wav = read_wav(path)?;
    let mut x = if wav.sample_rate == cfg.sample_rate {
        wav.samples
    } else {
        resample(&wav.samples, wav.sample_rate, cfg.sample_rate)?
    };
    if let Some(len) = cfg.length {
        x.resize(len, 0.0);
    }
    Ok(x)
}

/// One audio clip.
#[derive(Debug, Clone)]
pub struct AudioSample {
    /// The waveform `[1, T]` (f32, at the configured rate).
    pub waveform: Tensor,
    /// 0 = normal, 1 = anomalous.
    pub label: u8,
    /// `normal`, or the third `_` field of an anomalous file's name (for analysis only).
    pub kind: String,
    /// The file.
    pub source: String,
}

#[derive(Debug, Clone)]
struct Clip {
    path: PathBuf,
    label: u8,
    kind: String,
}

/// A DCASE task-2 folder: `train/normal_*.wav` ([`Split::Train`]) or `test/normal_*.wav` and
/// `test/anomaly_*.wav` ([`Split::Test`]). Headers are checked when the folder is opened; the
/// samples are decoded by [`Dataset::get`].
#[derive(Debug, Clone)]
pub struct DcaseFolder {
    clips: Vec<Clip>,
    skipped: Vec<(PathBuf, String)>,
    cfg: AudioConfig,
    resamplers: Arc<Mutex<Vec<Arc<Resampler>>>>,
    device: Device,
}

impl DcaseFolder {
    /// Lists `root/train` or `root/test`.
    ///
    /// # Errors
    /// [`Error::Io`] if the folder is missing; unless `cfg.skip_bad`, the first bad file's
    /// error: [`Error::BadFileName`] for a `.wav` not named `normal_*`/`anomaly_*` (or an
    /// `anomaly_*` in `train/`), [`Error::EmptyFile`], [`Error::Wav`] for a bad header.
    pub fn open(root: impl AsRef<Path>, split: Split, cfg: &AudioConfig) -> Result<Self> {
        if cfg.sample_rate == 0 {
            return Err(Error::InvalidConfig {
                field: "sample_rate",
                reason: "must be positive".into(),
            });
        }
        let dir = root.as_ref().join(match split {
            Split::Train => "train",
            Split::Test => "test",
        });
        let files = list_files(&dir, |n| n.to_ascii_lowercase().ends_with(".wav"))?;
        let mut out = Self {
            clips: Vec::new(),
            skipped: Vec::new(),
            cfg: cfg.clone(),
            resamplers: Arc::default(),
            device: Device::Cpu,
        };
        for path in files {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let probe = (|| {
                let (label, kind) = if name.starts_with("normal_") {
                    (0u8, "normal".to_string())
                } else if name.starts_with("anomaly_") && split == Split::Test {
                    let stem = name.rsplit_once('.').map_or(name.as_str(), |s| s.0);
                    (1u8, stem.split('_').nth(2).unwrap_or("").to_string())
                } else {
                    return Err(Error::BadFileName {
                        path: path.clone(),
                        pattern: "train/normal_*.wav or test/{normal,anomaly}_*.wav",
                    });
                };
                wav_info(&path)?;
                Ok((label, kind))
            })();
            match probe {
                Ok((label, kind)) => out.clips.push(Clip { path, label, kind }),
                Err(e) if cfg.skip_bad => out.skipped.push((path, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Opens a list of WAV files (a plain folder's, one file, the matches of a pattern), each
    /// unlabelled: label 0, kind empty. Their names may be anything.
    ///
    /// # Errors
    /// Unless `cfg.skip_bad`, the first bad file's error: [`Error::EmptyFile`], [`Error::Wav`]
    /// for a bad header.
    pub fn files(paths: &[PathBuf], cfg: &AudioConfig) -> Result<Self> {
        if cfg.sample_rate == 0 {
            return Err(Error::InvalidConfig {
                field: "sample_rate",
                reason: "must be positive".into(),
            });
        }
        let mut out = Self {
            clips: Vec::new(),
            skipped: Vec::new(),
            cfg: cfg.clone(),
            resamplers: Arc::default(),
            device: Device::Cpu,
        };
        for path in paths {
            match wav_info(path) {
                Ok(_) => out.clips.push(Clip {
                    path: path.clone(),
                    label: 0,
                    kind: String::new(),
                }),
                Err(e) if cfg.skip_bad => out.skipped.push((path.clone(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Creates the samples' tensors on `device` (default CPU).
    pub fn on_device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// The configuration the folder was opened with.
    pub fn config(&self) -> &AudioConfig {
        &self.cfg
    }

    /// The files skipped because they could not be read (only with `skip_bad`), with the reason.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// The label of clip `index` (0 normal, 1 anomalous), without decoding.
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`].
    pub fn label(&self, index: usize) -> Result<u8> {
        check_index(index, self.clips.len())?;
        Ok(self.clips[index].label)
    }

    /// The labels (0 normal, 1 anomalous), in sample order, without decoding.
    pub fn labels(&self) -> Vec<u8> {
        self.clips.iter().map(|c| c.label).collect()
    }

    /// The kinds, in sample order, without decoding.
    pub fn kinds(&self) -> Vec<&str> {
        self.clips.iter().map(|c| c.kind.as_str()).collect()
    }

    /// The files, in sample order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.clips.iter().map(|c| c.path.as_path())
    }

    /// Decodes clip `index` to a waveform at the configured rate and length.
    ///
    /// # Errors
    /// As [`read_wav`] (naming the file), or [`crate::Error::IndexOutOfRange`].
    pub fn waveform(&self, index: usize) -> Result<Vec<f32>> {
        check_index(index, self.clips.len())?;
        let path = &self.clips[index].path;
        let wav = read_wav(path)?;
        let mut x = if wav.sample_rate == self.cfg.sample_rate {
            wav.samples
        } else {
            self.resampler(wav.sample_rate)?.process(&wav.samples)
        };
        if let Some(len) = self.cfg.length {
            x.resize(len, 0.0);
        }
        Ok(x)
    }

    fn resampler(&self, from: u32) -> Result<Arc<Resampler>> {
        let mut cache = self.resamplers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.iter().find(|r| r.rates().0 == from) {
            return Ok(r.clone());
        }
        let r = Arc::new(Resampler::new(
            from,
            self.cfg.sample_rate,
            &ResamplerConfig::default(),
        )?);
        cache.push(r.clone());
        Ok(r)
    }
}

impl Dataset for DcaseFolder {
    type Item = AudioSample;

    fn len(&self) -> usize {
        self.clips.len()
    }

    fn get(&self, index: usize) -> Result<AudioSample> {
        let x = self.waveform(index)?;
        let c = &self.clips[index];
        let n = x.len();
        Ok(AudioSample {
            waveform: Tensor::from_vec(x, (1, n), &self.device)?,
            label: c.label,
            kind: c.kind.clone(),
            source: c.path.display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, n: usize, t0: f64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * (i as f64 / rate as f64 + t0)).sin() as f32
            })
            .collect()
    }

    fn max_err(a: &[f32], b: &[f32], skip: usize) -> f32 {
        a[skip..a.len() - skip]
            .iter()
            .zip(&b[skip..b.len() - skip])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn resampled_sine_matches_the_analytic_sine() {
        // (from, to, tone): downsampling, upsampling and a non-integer ratio.
        for &(from, to, f) in &[
            (48_000u32, 16_000u32, 1_000.0),
            (8_000, 16_000, 440.0),
            (22_050, 16_000, 3_000.0),
            (44_100, 48_000, 5_000.0),
        ] {
            let x = sine(from, f, from as usize / 2, 0.0);
            let y = resample(&x, from, to).unwrap();
            assert_eq!(
                y.len(),
                (x.len() as u64 * to as u64).div_ceil(from as u64) as usize
            );
            let want = sine(to, f, y.len(), 0.0);
            let err = max_err(&y, &want, to as usize / 50);
            assert!(err <= 2e-3, "{from}->{to} Hz, {f} Hz tone: max error {err}");
        }
    }

    #[test]
    fn resampling_removes_tones_above_the_new_nyquist() {
        // 10 kHz cannot be represented at 16 kHz: it must not alias down to 6 kHz.
        let x = sine(48_000, 10_000.0, 24_000, 0.0);
        let y = resample(&x, 48_000, 16_000).unwrap();
        let mid = &y[800..y.len() - 800];
        let rms = (mid.iter().map(|v| v * v).sum::<f32>() / mid.len() as f32).sqrt();
        assert!(rms < 1e-3, "aliased tone rms {rms}");
    }

    #[test]
    fn same_rate_is_identity_and_bad_rates_fail() {
        let x = vec![0.5, -0.25, 0.125];
        assert_eq!(resample(&x, 16_000, 16_000).unwrap(), x);
        assert!(matches!(
            resample(&x, 0, 16_000),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(Resampler::new(
            16_000,
            8_000,
            &ResamplerConfig {
                rolloff: 1.5,
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn bessel_i0_known_values() {
        assert!((bessel_i0(0.0) - 1.0).abs() < 1e-15);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-12);
        assert!((bessel_i0(9.0) - 1_093.588_354_511_374_6).abs() < 1e-9);
    }
}
