//! Audio: DCASE task-2 folders and WAV files as the detector's samples, CWT scalograms or
//! log-mel statistics ([`crate::InputConfig::audio_features`]).

use std::path::Path;

use candle_core::{Device, Tensor};
use dmad_data::{Dataset, Split};

use super::{no_files, Labelled};
use crate::Result;

/// The audio transform of a detector's input config: the log-power scalogram of dmad-data
/// (50 Hz to 0.95 x Nyquist) with `scales` rows and `image_size` frames per clip of one
/// second, the wavelet `audio_wavelet`, `audio_dynamic_range_db` of range below the top, and
/// the top at each clip's maximum or, with `audio_reference_db`, at a fixed level.
///
/// # Errors
/// Errors of planning the CWT (an unknown wavelet, a range or level that is not usable).
pub fn audio_transform(input: &crate::InputConfig) -> Result<dmad_data::AudioScalogram> {
    let length = input.sample_rate as usize;
    let frames = (input.image_size as usize).max(1);
    let cfg = dmad_data::AudioScalogramConfig {
        sample_rate: input.sample_rate,
        length,
        n_scales: input.scales,
        f_max: 0.95 * input.sample_rate as f64 / 2.0,
        hop: (length / frames).max(1),
        wavelet: input.audio_wavelet.clone(),
        dynamic_range_db: input.audio_dynamic_range_db,
        reference: match input.audio_reference_db {
            None => dmad_data::scalogram::ScalogramReference::ClipMax,
            Some(top_db) => dmad_data::scalogram::ScalogramReference::Absolute { top_db },
        },
        ..dmad_data::AudioScalogramConfig::default()
    };
    Ok(dmad_data::AudioScalogram::new(&cfg)?)
}

/// Loads a DCASE task-2 folder (`train/normal_*` or every clip of `test/`) as scalograms
/// `[n, 1, scales, frames]`, or as log-mel statistics `[n, 2 or 3 n_mels]` when
/// `input.audio_features` says so, each clip cropped or padded to one second.
///
/// # Errors
/// Errors of the loader (a bad WAV names its file) and of the CWT.
pub fn audio(
    root: impl AsRef<Path>,
    split: Split,
    input: &crate::InputConfig,
    device: &Device,
) -> Result<Labelled> {
    clips(&dcase_folder(root.as_ref(), split, input)?, input, device)
}

/// The clips of a DCASE folder's split at `input`'s rate; an empty split is an error naming it.
fn dcase_folder(
    root: &Path,
    split: Split,
    input: &crate::InputConfig,
) -> Result<dmad_data::DcaseFolder> {
    let folder = dmad_data::DcaseFolder::open(root, split, &clip_config(input))?;
    if folder.is_empty() {
        let (part, what) = match split {
            Split::Train => (
                "train",
                "no training clips: expected WAV files named normal_*.wav",
            ),
            Split::Test => (
                "test",
                "no test clips: expected WAV files named normal_*.wav and anomaly_*.wav",
            ),
        };
        return Err(no_files(&root.join(part), what));
    }
    Ok(folder)
}

/// How clips are read for the detector: resampled to `input.sample_rate`, cropped or padded
/// to one second.
fn clip_config(input: &crate::InputConfig) -> dmad_data::AudioConfig {
    dmad_data::AudioConfig {
        sample_rate: input.sample_rate,
        length: Some(input.sample_rate as usize),
        ..dmad_data::AudioConfig::default()
    }
}

/// The clips of a DCASE task-2 folder's split as waveforms `[n, samples]`, resampled to
/// `input.sample_rate` and cropped or padded to one second, in the order [`audio`] reads them:
/// what [`crate::choose::choose_audio`] and the generator's audio anomalies take.
///
/// # Errors
/// The folder's reading errors; [`dmad_data::Error::InvalidInput`] naming the folder when the
/// split holds no clip.
pub fn audio_waves(
    root: impl AsRef<Path>,
    split: Split,
    input: &crate::InputConfig,
    device: &Device,
) -> Result<Tensor> {
    let folder = dcase_folder(root.as_ref(), split, input)?;
    let mut waves = Vec::with_capacity(folder.len());
    for i in 0..folder.len() {
        waves.push(folder.get(i)?.waveform.flatten_all()?);
    }
    Ok(Tensor::stack(&waves, 0)?.to_device(device)?)
}

/// Loads WAV files (a plain folder's, one file, the matches of a pattern) as scalograms
/// `[n, 1, scales, frames]` or log-mel statistics as [`audio`] does, unlabelled (label 0, kind empty).
///
/// # Errors
/// As [`audio`]; [`dmad_data::Error::InvalidInput`] for an empty list.
pub fn audio_files(
    files: &[std::path::PathBuf],
    input: &crate::InputConfig,
    device: &Device,
) -> Result<Labelled> {
    let cfg = clip_config(input);
    let folder = dmad_data::DcaseFolder::files(files, &cfg)?;
    if folder.is_empty() {
        return Err(no_files(Path::new("."), "no WAV files given"));
    }
    clips(&folder, input, device)
}

/// The log-mel transform of a detector's input config ([`crate::AudioFeatures::LogMelStatistics`]):
/// librosa's melspectrogram at the DCASE baselines' frames (`n_fft` 1024, hop 256; centred
/// frames with `mel_center`) with `n_mels` bands (HTK's mel scale with `mel_htk`, else
/// Slaney's) at `sample_rate`.
///
/// # Errors
/// [`dmad_data::Error::InvalidConfig`] for a zero rate or band count.
pub fn log_mel_transform(input: &crate::InputConfig) -> Result<dmad_data::logmel::LogMel> {
    Ok(dmad_data::logmel::LogMel::new(
        &dmad_data::logmel::LogMelConfig {
            sample_rate: input.sample_rate,
            n_mels: input.n_mels,
            htk: input.mel_htk,
            center: input.mel_center,
            ..dmad_data::logmel::LogMelConfig::default()
        },
    )?)
}

/// The transform from a clip to an audio detector's sample, as its input config says
/// ([`crate::InputConfig::audio_features`]).
#[derive(Debug, Clone)]
pub enum AudioInput {
    /// The CWT scalogram `[1, scales, frames]`.
    Scalogram(dmad_data::AudioScalogram),
    /// The log-mel statistics `[2 n_mels]` or `[3 n_mels]` (not standardised: the detector
    /// does that).
    LogMel(dmad_data::logmel::LogMel, crate::MelStatistics),
    /// The log-mel windows `[windows, n_mels x frames]` of `frames` consecutive frames each
    /// (stride one frame, flattened frame-major; not standardised).
    LogMelWindows(dmad_data::logmel::LogMel, usize),
    /// The log-mel image `[1, n_mels, columns]` (frames averaged into `columns`, the highest
    /// band on top; not standardised).
    LogMelImage(dmad_data::logmel::LogMel, usize),
}

impl AudioInput {
    /// Plans the transform of `input`.
    ///
    /// # Errors
    /// The errors of [`audio_transform`] or [`log_mel_transform`].
    pub fn new(input: &crate::InputConfig) -> Result<Self> {
        Ok(match input.audio_features {
            crate::AudioFeatures::Scalogram => Self::Scalogram(audio_transform(input)?),
            crate::AudioFeatures::LogMelStatistics => {
                Self::LogMel(log_mel_transform(input)?, input.mel_statistics)
            }
            crate::AudioFeatures::LogMelWindows => {
                Self::LogMelWindows(log_mel_transform(input)?, input.mel_window_frames.max(1))
            }
            crate::AudioFeatures::LogMelImage => Self::LogMelImage(
                log_mel_transform(input)?,
                (input.image_size as usize).max(1),
            ),
        })
    }

    /// The sample of one clip (mono samples at the input's rate).
    ///
    /// # Errors
    /// The transform's errors (a clip without a whole frame, or fewer frames than a window).
    pub fn sample(&self, wave: &[f32], device: &Device) -> Result<Tensor> {
        Ok(match self {
            Self::Scalogram(t) => t.forward(wave, device)?.image,
            Self::LogMel(t, which) => {
                let spec = t.forward(wave)?;
                let mut stats = spec.statistics();
                if *which == crate::MelStatistics::MeanStdDelta {
                    stats.extend(spec.delta_deviation());
                }
                let d = stats.len();
                Tensor::from_vec(stats, d, device)?
            }
            Self::LogMelWindows(t, k) => {
                let spec = t.forward(wave)?;
                let (m, k) = (spec.n_mels, *k);
                if spec.frames < k {
                    return Err(crate::Error::InvalidConfig {
                        field: "input.mel_window_frames",
                        reason: format!(
                            "a clip of {} samples has {} log-mel frames, fewer than a window's {k}",
                            wave.len(),
                            spec.frames
                        ),
                    });
                }
                let windows = spec.frames - k + 1;
                let mut rows = Vec::with_capacity(windows * k * m);
                for w in 0..windows {
                    rows.extend_from_slice(&spec.values[w * m..(w + k) * m]);
                }
                Tensor::from_vec(rows, (windows, k * m), device)?
            }
            Self::LogMelImage(t, columns) => {
                let spec = t.forward(wave)?;
                log_mel_image(&spec.values, spec.frames, spec.n_mels, *columns, wave.len())?
                    .to_device(device)?
            }
        })
    }

    /// The samples of the clips `waves` (`[n, samples]`), stacked: `[n, ...]`.
    ///
    /// # Errors
    /// As [`AudioInput::sample`].
    pub fn samples(&self, waves: &Tensor, device: &Device) -> Result<Tensor> {
        let xs = waves
            .to_dtype(candle_core::DType::F32)?
            .to_vec2::<f32>()?
            .iter()
            .map(|w| self.sample(w, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(&xs, 0)?)
    }

    /// Samples between the starts of the transform's frames.
    pub fn hop(&self) -> usize {
        match self {
            Self::Scalogram(t) => t.config().hop,
            Self::LogMel(t, _) | Self::LogMelWindows(t, _) | Self::LogMelImage(t, _) => {
                t.config().hop_length
            }
        }
    }
}

/// The image `[1, bands, columns]` of a log-mel spectrogram (`values` frame-major, `frames x
/// bands`): frame `f` goes to column `f * columns / frames` (so each column averages one or
/// two whole frames more or less than the next, never a fraction), band `b` to row
/// `bands - 1 - b`. `samples` (the clip's length) only names the clip in the error.
fn log_mel_image(
    values: &[f32],
    frames: usize,
    bands: usize,
    columns: usize,
    samples: usize,
) -> Result<Tensor> {
    if frames < columns {
        return Err(crate::Error::InvalidConfig {
            field: "input.image_size",
            reason: format!(
                "a clip of {samples} samples has {frames} log-mel frames, fewer than the \
                 image's {columns} columns"
            ),
        });
    }
    let mut sum = vec![0f32; bands * columns];
    let mut count = vec![0f32; columns];
    for f in 0..frames {
        let c = f * columns / frames;
        count[c] += 1.0;
        for b in 0..bands {
            sum[(bands - 1 - b) * columns + c] += values[f * bands + b];
        }
    }
    for (i, v) in sum.iter_mut().enumerate() {
        *v /= count[i % columns];
    }
    Ok(Tensor::from_vec(sum, (1, bands, columns), &Device::Cpu)?)
}

/// The clips of `folder` as the input config says: scalograms `[n, 1, scales, frames]`, or
/// log-mel statistics `[n, 2 or 3 n_mels]` (not standardised: the detector does that).
fn clips(
    folder: &dmad_data::DcaseFolder,
    input: &crate::InputConfig,
    device: &Device,
) -> Result<Labelled> {
    let transform = AudioInput::new(input)?;
    let mut xs = Vec::with_capacity(folder.len());
    let mut out = Labelled {
        x: Tensor::zeros(0, candle_core::DType::F32, device)?,
        labels: vec![],
        kinds: vec![],
        sources: vec![],
        masks: None,
    };
    for i in 0..folder.len() {
        let clip = folder.get(i)?;
        let wave = clip.waveform.flatten_all()?.to_vec1::<f32>()?;
        xs.push(transform.sample(&wave, device)?);
        out.labels.push(clip.label);
        out.kinds.push(clip.kind);
        out.sources.push(clip.source);
    }
    out.x = Tensor::stack(&xs, 0)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 kHz tone of `amplitude`, one second at 4 kHz.
    fn tone(amplitude: f32) -> Vec<f32> {
        (0..4_000)
            .map(|i| (std::f32::consts::TAU * 1_000.0 * i as f32 / 4_000.0).sin() * amplitude)
            .collect()
    }

    fn small() -> crate::InputConfig {
        crate::InputConfig {
            sample_rate: 4_000,
            scales: 16,
            image_size: 8,
            ..crate::DetectorConfig::for_audio().input
        }
    }

    fn map(input: &crate::InputConfig, x: &[f32]) -> Vec<f32> {
        let t = audio_transform(input).unwrap();
        let s = t.forward(x, &Device::Cpu).unwrap();
        s.image.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn a_log_mel_image_averages_whole_frames_into_columns_with_the_top_band_on_top() {
        // Five frames of two bands: band 0 counts frames, band 1 is ten times band 0.
        let values: Vec<f32> = (0..5).flat_map(|f| [f as f32, 10.0 * f as f32]).collect();
        let img = log_mel_image(&values, 5, 2, 2, 1_000).unwrap();
        assert_eq!(img.dims(), &[1, 2, 2]);
        // Frames 0, 1, 2 make column 0 and frames 3, 4 column 1; band 1 is the top row.
        assert_eq!(
            img.get(0).unwrap().to_vec2::<f32>().unwrap(),
            vec![vec![10.0, 35.0], vec![1.0, 3.5]]
        );
        let err = log_mel_image(&values, 5, 2, 6, 1_000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("input.image_size")
                && err.contains("5 log-mel frames")
                && err.contains("1000 samples"),
            "{err}"
        );
    }

    #[test]
    fn the_audio_transform_follows_the_input_config() {
        let input = small();
        let t = audio_transform(&input).unwrap();
        let c = t.config();
        assert_eq!((c.n_scales, c.hop, c.length), (16, 500, 4_000));
        assert_eq!(c.wavelet, "cmor10-1.0");
        assert_eq!(c.dynamic_range_db, 80.0);
        assert_eq!(
            c.reference,
            dmad_data::scalogram::ScalogramReference::ClipMax
        );
        // Clip maximum: the map ignores the gain; a fixed top keeps it.
        let (loud, quiet) = (tone(0.5), tone(0.25));
        let (a, b) = (map(&input, &loud), map(&input, &quiet));
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-5));
        let fixed = crate::InputConfig {
            audio_reference_db: Some(0.0),
            ..small()
        };
        let (a, b) = (map(&fixed, &loud), map(&fixed, &quiet));
        let max_diff = a.iter().zip(&b).map(|(p, q)| p - q).fold(0f32, f32::max);
        let shift = 2.0 * 20.0 * 2f32.log10() / 80.0;
        assert!(
            (max_diff - shift).abs() <= 1e-4,
            "halving the gain moved pixels by at most {max_diff}, expected {shift}"
        );
        // The way back works for both.
        for input in [&input, &fixed] {
            let t = audio_transform(input).unwrap();
            let s = t.forward(&loud, &Device::Cpu).unwrap();
            assert_eq!(t.inverse(&s, &s.image).unwrap().len(), 4_000);
        }
    }

    #[test]
    fn a_bad_audio_input_config_is_an_error() {
        let cases = [
            crate::InputConfig {
                audio_wavelet: "nope".into(),
                ..small()
            },
            crate::InputConfig {
                audio_dynamic_range_db: -1.0,
                ..small()
            },
            crate::InputConfig {
                audio_reference_db: Some(f64::INFINITY),
                ..small()
            },
        ];
        for input in cases {
            assert!(
                matches!(
                    audio_transform(&input),
                    Err(crate::Error::Data(
                        dmad_data::Error::InvalidConfig { .. } | dmad_data::Error::Wavelets(_)
                    ))
                ),
                "{input:?}"
            );
        }
    }
}
