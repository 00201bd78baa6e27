//! Discrete and continuous wavelet transforms for dmad, compatible with PyWavelets 1.8.0, with
//! differentiable DWTs on candle tensors.
//!
//! - Discrete wavelets ([`Wavelet`], [`WaveletPlanner`]): `haar`, `db1`-`db38`, `sym2`-`sym20`,
//!   `coif1`-`coif17` with PyWavelets 1.8.0's filters (MIT licence, embedded as data), and
//!   user-supplied filter banks ([`Wavelet::from_filter_bank`]).
//! - All nine PyWavelets extension [`Mode`]s.
//! - 1D: [`dwt`], [`idwt`], [`wavedec`], [`waverec`], [`dwt_max_level`], [`dwt_coeff_len`];
//!   along any axis of an [`NdArray`]: [`dwt_axis`], [`idwt_axis`], [`wavedec_axis`],
//!   [`waverec_axis`]; 2D over any two axes: [`dwt2`], [`idwt2`], [`wavedec2`], [`waverec2`].
//! - Tensors ([`tensor`]): differentiable [`tensor::Dwt1d`] / [`tensor::Dwt2d`] (forward and
//!   inverse, `[batch, channel, ...]`, any candle device), stacked-channel layout for U-Nets.
//! - CWT ([`cwt()`], [`CwtPlanner`], [`CwtPlan`]): `morl`, `mexh`, `gaus1`-`gaus8`,
//!   `cgau1`-`cgau8`, `cmorB-C`, `shanB-C`, `fbspM-B-C`, methods conv and fft, as `pywt.cwt`;
//!   [`scale2frequency`]; inverse CWT ([`icwt()`], [`icwt_single_integral`]); scalograms
//!   ([`Scalogram`]) as `[scales, time]` tensors.
//!
//! # Conventions
//! - Output lengths and coefficient order are PyWavelets': `wavedec` gives
//!   `[cA_n, cD_n, ..., cD_1]`, `dwt2` gives `(cA, [cH, cV, cD])` where `cH` is the detail along
//!   the first of the two axes (the height of an image).
//! - Tensors are `[batch, channel, ...]`; the tensor DWTs act on the last one or two axes.
//! - Errors, never panics, for bad input: an empty signal, an unknown wavelet name, a level above
//!   [`dwt_max_level`] (PyWavelets only warns), a NaN or infinity.
//! - Feature `cuda` forwards to candle; the tensor ops use only candle ops, so they also run
//!   on CUDA.
//!
//! # Example
//! ```
//! use dmad_wavelets::{wavedec, waverec, Mode, Wavelet};
//! let w = Wavelet::new("db4")?;
//! let x: Vec<f64> = (0..100).map(|i| (i as f64 * 0.3).sin()).collect();
//! let coeffs = wavedec(&x, &w, Mode::Symmetric, None)?; // [cA_n, cD_n, ..., cD_1]
//! let y = waverec(&coeffs, &w, Mode::Symmetric)?;
//! assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 1e-12));
//! # Ok::<(), dmad_wavelets::Error>(())
//! ```
//!
//! # Attribution
//! The filter coefficients are PyWavelets 1.8.0's (`pywt.Wavelet(name).dec_lo`), Copyright (c)
//! 2006-2012 Filip Wasilewski, 2012- The PyWavelets Developers, MIT licence. The continuous
//! wavelet formulas and the CWT algorithm follow PyWavelets' documented behaviour.
#![warn(missing_docs)]

mod alloc;
mod array;
pub mod cwt;
mod dwt;
mod error;
mod icwt;
mod mode;
mod multilevel;
pub mod scalogram;
pub mod tensor;
mod wavelet;

pub use array::NdArray;
pub use cwt::{
    cwt, scale2frequency, ContinuousWavelet, Cwt, CwtCoefs, CwtConfig, CwtMethod, CwtPlan,
    CwtPlanner,
};
pub use dwt::{dwt, dwt_axis, dwt_coeff_len, dwt_max_level, idwt, idwt_axis};
pub use error::{Error, Result};
pub use icwt::{icwt, icwt_constant, icwt_single_integral};
pub use mode::Mode;
pub use multilevel::{
    dwt2, idwt2, wavedec, wavedec2, wavedec_axis, waverec, waverec2, waverec_axis, Wavedec2,
};
pub use scalogram::{Scalogram, ScalogramConfig, ScalogramKind, ScalogramReference};
pub use wavelet::{wavelist, Wavelet, WaveletPlanner};
