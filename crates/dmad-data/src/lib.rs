//! Loaders for dmad: images, time series, audio and tables, in the formats users have.
//!
//! Each benchmark of the project's data protocol, and a user's own data in the same formats,
//! loads in one call:
//!
//! - Images ([`image`]): MVTec AD folders ([`ImageFolder::mvtec`], with optional masks), plain
//!   folders of normal images ([`ImageFolder::plain`]) and NPY arrays ([`NpyImages`], with the
//!   MNIST one-class split). PNG, JPEG, BMP and TIFF; grey or RGB; resized or centre-cropped.
//! - Time series ([`timeseries`]): the UCR Anomaly Archive ([`load_ucr_anomaly`]), NAB
//!   ([`load_nab`]), labelled CSV ([`load_labelled_csv`]), GutenTAG ([`load_gutentag`]) and the
//!   UCR 2018 / UEA classification files used one-class ([`load_ucr_one_class`], [`read_ts`]);
//!   plain unlabelled series files ([`read_plain_series`]); sliding windows ([`windows`]), per-series normalisation fitted on the train part
//!   ([`Normaliser`]) and window scores mapped back to points ([`window_to_points`]).
//! - Audio ([`audio`]): WAV files (8/16/24/32-bit PCM, float; first channel) resampled with a
//!   windowed-sinc filter ([`Resampler`]), DCASE task-2 folders ([`DcaseFolder`]).
//! - Scalograms ([`scalogram`]): a waveform's CWT (dmad-wavelets) as a log-power map
//!   `[1, scales, frames]` in `[-1, 1]` ([`AudioScalogram::forward`]), and a (reconstructed)
//!   map back to a waveform through the ICWT with the clip's phase
//!   ([`AudioScalogram::inverse`]); [`DcaseScalograms`] serves a DCASE folder as maps.
//! - Tables ([`tabular`]): CSV ([`read_csv_table`]; categorical columns one-hot encoded or
//!   rejected), NPY/NPZ ([`read_npy_table`], [`read_npz_table`]; [`npy`] is a small reader of
//!   its own), standardised with the train rows' statistics, and the split files
//!   ([`read_split_file`]).
//! - Non-finite values ([`NonFinite`]): NaN and infinity in tables and series are rejected
//!   with the file, row and column ([`Error::NonFinite`]), or dropped or imputed on request
//!   ([`Table::resolve_non_finite`], [`resolve_series`]).
//! - [`Dataset`]: `len`, `get` and a batch iterator with seeded shuffling. Folder loaders list
//!   files and check their headers when opened, and decode a sample on `get`.
//!
//! # Conventions
//! - Images are `[C, H, W]` f32 in `[-1, 1]`, batches `[B, C, H, W]` ([`stack`]); masks are
//!   `[1, H, W]` in `{0, 1}`.
//! - Series are stored time-major (`[len, dims]`); windows are `[N, dims, length]`.
//! - Labels are 0 (normal) or 1 (anomalous); scores are "higher = more anomalous".
//!
//! # Errors
//! Every loader returns [`Error`]; an error about a file names it, and where known the line
//! and field. A bad file in a folder fails the open unless the config's `skip_bad` is set,
//! in which case it is listed by `skipped()`.
//!
//! # Example
//! ```
//! use dmad_data::{window_starts, window_to_points, Reduce, Series, windows};
//! use candle_core::Device;
//!
//! # fn main() -> dmad_data::Result<()> {
//! let series = Series { values: (0..10).map(|v| v as f32).collect(), dims: 1, labels: vec![0; 10] };
//! let (w, starts) = windows(&series, 4, 3, &Device::Cpu)?;
//! assert_eq!(w.dims(), &[3, 1, 4]);
//! assert_eq!(starts, window_starts(10, 4, 3)?);
//! let per_window = [0.0, 1.0, 0.0];
//! let points = window_to_points(&per_window, &starts, 4, 10, Reduce::Max)?;
//! assert_eq!(points[4], 1.0);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! - `cuda`: forwards to `candle-core/cuda` (tensors can be created on a CUDA device).
#![warn(missing_docs)]

pub mod audio;
mod dataset;
mod error;
mod finite;
pub mod image;
pub mod logmel;
pub mod npy;
mod period;
mod plain;
pub mod scalogram;
pub mod tabular;
pub mod timeseries;

pub use audio::{
    read_wav, resample, AudioConfig, AudioSample, DcaseFolder, Resampler, ResamplerConfig, Wav,
};
pub use dataset::{stack, Batches, Dataset, TensorDataset};
pub use error::{Error, Result};
pub use finite::{resolve_series, NonFinite, NonFiniteReport};
pub use image::{
    ColorMode, ImageConfig, ImageFolder, ImageSample, NpyImages, ResizeFilter, ResizeMode, Split,
};
pub use period::{find_length, DEFAULT_LENGTH};
pub use plain::read_plain_series;
pub use scalogram::{
    AudioScalogram, AudioScalogramConfig, DcaseScalograms, ScalogramItem, ScalogramSample,
};
pub use tabular::{
    csv_has_column, read_csv_features, read_csv_table, read_npy_features, read_npy_table,
    read_npz_table, read_split_file, Categorical, SplitFile, Table, TableConfig, TableSplit,
};
pub use timeseries::{
    load_gutentag, load_labelled_csv, load_nab, load_nab_all, load_ucr_anomaly, load_ucr_one_class,
    read_ts, read_ucr_tsv, window_starts, window_to_points, windows, Normaliser, Reduce, Series,
    SeriesSplit, UcrAnomalyName,
};
