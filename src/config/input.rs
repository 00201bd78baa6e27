//! How raw data becomes the network's input ([`InputConfig`]): sizes, strides, the audio
//! representation, series window normalisation, tiling.

use serde::{Deserialize, Serialize};

/// How raw data becomes the network's input; saved with the model so that scoring prepares
/// data exactly as fitting did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InputConfig {
    /// Images: side length in pixels; audio: time frames per clip (the scalogram's or the
    /// log-mel image's width). Default 64.
    pub image_size: u32,
    /// Images: channels (1 grey, 3 RGB). Default 1.
    pub channels: usize,
    /// Series: window length. Default 64.
    pub window: usize,
    /// Series: stride of the training windows. Default 4.
    pub train_stride: usize,
    /// Series: stride of the test windows. Default 16.
    pub test_stride: usize,
    /// Audio: sample rate clips are resampled to. Default 16000.
    pub sample_rate: u32,
    /// Audio: CWT scales of the scalogram. Default 64.
    pub scales: usize,
    /// Audio: the scalogram's continuous wavelet (a PyWavelets name). Default `"cmor1.5-1.0"`
    /// (the value of models saved before this field existed);
    /// [`DetectorConfig::for_audio`](crate::DetectorConfig::for_audio) takes `"cmor10-1.0"`, a
    /// narrower-band Morlet that resolves tones and speed changes.
    pub audio_wavelet: String,
    /// Audio: the scalogram's log-power range below its top, in dB. Default 80.
    pub audio_dynamic_range_db: f64,
    /// Audio: the scalogram's top level. `None` (default): each clip's own largest CWT
    /// coefficient, so the map ignores the clip's gain; `Some(db)`: one fixed level, `db` dB
    /// of `|W|` for every clip, so the map keeps the absolute level (louder coefficients clip).
    pub audio_reference_db: Option<f64>,
    /// Images: add flipped copies of the training images. Default true.
    pub flip_augment: bool,
    /// Series: how each window is normalised before the network sees it, on top of the
    /// series' standardisation with its train part's statistics. Default
    /// [`WindowNorm::Global`] (no more).
    pub window_norm: WindowNorm,
    /// Images: the side of the square tiles the network works on, for images larger than it
    /// (high-resolution inspection). Training takes every tile of the training images;
    /// scoring scores every tile and stitches the tiles' maps back into one map per image
    /// (the mean where tiles overlap, [`dmad_score::Tiling`]), then summarises it. `None` (the
    /// default): the network sees whole images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile_size: Option<u32>,
    /// Images: the pixels neighbouring tiles share, at least (below `tile_size`). Default 0.
    pub tile_overlap: u32,
    /// Audio: what the detector sees of a clip. Default [`AudioFeatures::Scalogram`] (the
    /// value of models saved before this field existed).
    pub audio_features: AudioFeatures,
    /// Audio with [`AudioFeatures::LogMelStatistics`]: the mel bands. Default 64.
    pub n_mels: usize,
    /// Audio with [`AudioFeatures::LogMelStatistics`]: HTK's mel scale (librosa's `htk=True`)
    /// instead of Slaney's (librosa's default). Default true.
    pub mel_htk: bool,
    /// Audio with [`AudioFeatures::LogMelStatistics`]: centre the frames (librosa's default
    /// `center=True`: half a frame of zeros padded at both ends). Default false: whole frames of
    /// the clip only, so the clip's edges do not enter its statistics as quiet frames. The two
    /// defaults are `benches/peers/classical.py`'s log-mel; on anomalies generated from held-out
    /// training clips they beat librosa's defaults on every seed of both protocol sets
    /// (`docs/results/notes.md`, 2026-12-06).
    pub mel_center: bool,
    /// Audio with [`AudioFeatures::LogMelWindows`]: the frames of a window. Default 5 (the
    /// DCASE 2020 baseline's).
    pub mel_window_frames: usize,
    /// Audio with [`AudioFeatures::LogMelStatistics`]: which per-band statistics make a clip's
    /// row. Default [`MelStatistics::MeanStd`] (the DCASE baselines' and the value of models
    /// saved before this field existed).
    pub mel_statistics: MelStatistics,
}

/// The per-band statistics of a clip's log-mel spectrogram that make its row under
/// [`AudioFeatures::LogMelStatistics`] (see [`InputConfig::mel_statistics`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelStatistics {
    /// The mean and the standard deviation over the clip's frames: `2 n_mels` numbers.
    #[default]
    MeanStd,
    /// Also the standard deviation of the frame-to-frame differences
    /// ([`dmad_data::logmel::LogMelSpectrogram::delta_deviation`]): `3 n_mels` numbers. A
    /// band's mean and spread say how loud and how varied it is over the clip, not how fast it
    /// changes: a rattle, repeated transients or a drop-out move the third statistic where the
    /// first two barely move.
    MeanStdDelta,
}

impl MelStatistics {
    /// The numbers per mel band.
    pub fn per_band(self) -> usize {
        match self {
            Self::MeanStd => 2,
            Self::MeanStdDelta => 3,
        }
    }
}

/// What an audio detector sees of a clip (see [`InputConfig::audio_features`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFeatures {
    /// The CWT scalogram `[1, scales, frames]`, an image for the U-Net or the feature space.
    #[default]
    Scalogram,
    /// The DCASE baselines' clip features: the log-mel spectrogram (librosa's melspectrogram
    /// at 16 kHz: `n_fft` 1024, hop 256, `n_mels` bands; HTK's mel scale on whole frames unless
    /// `mel_htk` / `mel_center` say otherwise), and per band the mean and the standard
    /// deviation over the clip's frames: `2 n_mels` numbers (with
    /// [`MelStatistics::MeanStdDelta`] also the deviation of the frame-to-frame differences,
    /// `3 n_mels`), which the detector standardises
    /// with the training clips' statistics (saved with the model). A row for an MLP denoiser
    /// or a DTE scorer.
    LogMelStatistics,
    /// The DCASE 2020 baseline's features: every run of `mel_window_frames` consecutive
    /// log-mel frames (stride one frame), flattened frame-major (`n_mels x mel_window_frames`
    /// numbers), standardised with the training windows' statistics. A clip is a set of such
    /// rows `[windows, n_mels x mel_window_frames]`: each window is scored as a row and the
    /// clip's score is its largest window's, its map the window scores over time. Short
    /// transients stay in a window where a clip statistic averages them away.
    LogMelWindows,
    /// The log-mel spectrogram itself as a one-channel image `[1, n_mels, image_size]` for the
    /// U-Net (and the combined scorer's feature term), as a scalogram is: the clip's whole
    /// frames (as [`AudioFeatures::LogMelStatistics`] computes them) averaged into
    /// `image_size` columns of equal duration, the highest band in the top row. The detector
    /// standardises each band (row) with the training clips' mean and deviation of that band
    /// (saved with the model), so that the network sees every band on one scale, as the DCASE
    /// baselines' autoencoders see their frames.
    LogMelImage,
}

/// How series windows are normalised (see [`InputConfig::window_norm`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowNorm {
    /// Only the series' standardisation with its train part's mean and deviation.
    #[default]
    Global,
    /// Each window also z-normalised on its own (per channel), as the matrix profile
    /// compares subsequences: the score ignores a window's level and scale, so a drifting
    /// level is not an anomaly, and only its shape counts. A window whose deviation is below
    /// [`WINDOW_STD_FLOOR`] (nearly constant) is divided by the floor instead, so its noise is
    /// not blown up.
    Window,
}

/// The smallest deviation a window is divided by under [`WindowNorm::Window`], in units of the
/// series' train deviation.
pub const WINDOW_STD_FLOOR: f64 = 0.05;

impl InputConfig {
    /// The numbers of one log-mel row: `n_mels x mel_window_frames` for
    /// [`AudioFeatures::LogMelWindows`], else the statistics' (`2 n_mels` or `3 n_mels`, as
    /// [`InputConfig::mel_statistics`] says).
    pub fn log_mel_row_len(&self) -> usize {
        match self.audio_features {
            AudioFeatures::LogMelWindows => self.n_mels * self.mel_window_frames,
            _ => self.mel_statistics.per_band() * self.n_mels,
        }
    }
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            image_size: 64,
            channels: 1,
            window: 64,
            train_stride: 4,
            test_stride: 16,
            sample_rate: 16_000,
            scales: 64,
            audio_wavelet: "cmor1.5-1.0".into(),
            audio_dynamic_range_db: 80.0,
            audio_reference_db: None,
            flip_augment: true,
            window_norm: WindowNorm::Global,
            tile_size: None,
            tile_overlap: 0,
            audio_features: AudioFeatures::Scalogram,
            n_mels: 64,
            mel_htk: true,
            mel_center: false,
            mel_window_frames: 5,
            mel_statistics: MelStatistics::MeanStd,
        }
    }
}
