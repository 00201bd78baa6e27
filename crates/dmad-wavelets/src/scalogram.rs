//! Scalograms for the audio path: the CWT magnitude or log-power as a normalised
//! `[scales, time]` candle tensor, with the phase kept aside so a (modified) scalogram can be
//! turned back into CWT coefficients and, through [`crate::icwt()`], into a waveform.

use candle_core::{DType, Device, Tensor};
use num_complex::Complex64;

use crate::cwt::{Cwt, CwtCoefs};
use crate::{Error, Result};

/// What a scalogram pixel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalogramKind {
    /// `|W|`, linearly scaled so the largest magnitude maps to 1 and zero to -1.
    Magnitude,
    /// `20 log10 |W|` (dB of power), clipped to `dynamic_range_db` below the maximum, mapped
    /// linearly to [-1, 1].
    LogPower,
}

/// The level that maps to the top of a scalogram's pixel range (pixel 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalogramReference {
    /// The largest coefficient magnitude of this CWT itself, so the image does not depend on
    /// the signal's gain (a clip and the same clip 6 dB louder give the same image).
    ClipMax,
    /// A fixed level shared by every signal: `20 log10 |W| = top_db` maps to 1, so the image
    /// keeps the absolute level. Louder coefficients are clipped to 1 and come back at this
    /// level. For `Magnitude` the top is `|W| = 10^(top_db / 20)`.
    Absolute {
        /// The top level in dB of `|W|` (0 dB is `|W| = 1`).
        top_db: f64,
    },
}

/// Options of a scalogram.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalogramConfig {
    /// Magnitude or log-power. Default [`ScalogramKind::LogPower`].
    pub kind: ScalogramKind,
    /// For `LogPower`: the range in dB below the reference that is kept; quieter coefficients
    /// are clipped to -1 (and come back as zeros). Default 80.
    pub dynamic_range_db: f64,
    /// What maps to pixel 1. Default [`ScalogramReference::ClipMax`].
    pub reference: ScalogramReference,
}

impl ScalogramConfig {
    /// Checks the options: what [`Scalogram::new`] checks, for callers that want to refuse a
    /// bad configuration before any signal arrives.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a dynamic range that is not finite and positive or an
    /// absolute reference whose level `10^(top_db / 20)` is not a positive finite number.
    pub fn check(&self) -> Result<()> {
        if !self.dynamic_range_db.is_finite() || self.dynamic_range_db <= 0.0 {
            return Err(Error::InvalidArgument {
                name: "dynamic_range_db",
                reason: "must be finite and positive",
            });
        }
        if let ScalogramReference::Absolute { top_db } = self.reference {
            let level = 10f64.powf(top_db / 20.0);
            if !(level.is_finite() && level > 0.0) {
                return Err(Error::InvalidArgument {
                    name: "reference.top_db",
                    reason: "must be finite, with 10^(top_db / 20) a positive finite number",
                });
            }
        }
        Ok(())
    }
}

impl Default for ScalogramConfig {
    fn default() -> Self {
        Self {
            kind: ScalogramKind::LogPower,
            dynamic_range_db: 80.0,
            reference: ScalogramReference::ClipMax,
        }
    }
}

/// A normalised CWT image `[scales, time]` in [-1, 1] (f32) and what is needed to go back.
///
/// The phase of every coefficient is kept (the sign for real wavelets), so
/// [`Scalogram::to_cwt`] recombines a modified image with the original phase: the usual
/// approximation when a model edits magnitudes only. Log-power images lose what lies below the
/// dynamic-range floor: pixels at -1 come back as zeros.
#[derive(Debug, Clone)]
pub struct Scalogram {
    image: Tensor,
    phase: Vec<f64>,
    kind: ScalogramKind,
    /// The magnitude (Magnitude) or dB value (LogPower) at pixel 1.
    reference: f64,
    range_db: f64,
    cwt_meta: (Vec<f64>, Vec<f64>, usize, bool, u32),
}

impl Scalogram {
    /// The scalogram of `cwt` on `device`.
    ///
    /// # Shapes
    /// `image()` is `[cwt.scales.len(), cwt.len]`, f32.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a dynamic range that is not finite and positive or an
    /// absolute reference whose level `10^(top_db / 20)` is not a positive finite number,
    /// candle errors.
    pub fn new(cwt: &Cwt, config: &ScalogramConfig, device: &Device) -> Result<Self> {
        config.check()?;
        let (mag, phase, complex): (Vec<f64>, Vec<f64>, bool) = match &cwt.coefs {
            CwtCoefs::Real(v) => (
                v.iter().map(|x| x.abs()).collect(),
                v.iter()
                    .map(|&x| if x < 0.0 { std::f64::consts::PI } else { 0.0 })
                    .collect(),
                false,
            ),
            CwtCoefs::Complex(v) => (
                v.iter().map(|z| z.norm()).collect(),
                v.iter().map(|z| z.arg()).collect(),
                true,
            ),
        };
        let max = match config.reference {
            ScalogramReference::ClipMax => mag.iter().fold(0.0f64, |m, &v| m.max(v)),
            ScalogramReference::Absolute { top_db } => 10f64.powf(top_db / 20.0),
        };
        let range = config.dynamic_range_db;
        let (reference, pixels): (f64, Vec<f32>) = match config.kind {
            ScalogramKind::Magnitude => {
                let px = mag
                    .iter()
                    .map(|&m| {
                        if max > 0.0 {
                            (2.0 * m.min(max) / max - 1.0) as f32
                        } else {
                            -1.0
                        }
                    })
                    .collect();
                (max, px)
            }
            ScalogramKind::LogPower => {
                let top = match config.reference {
                    ScalogramReference::ClipMax if max > 0.0 => 20.0 * max.log10(),
                    ScalogramReference::ClipMax => 0.0,
                    ScalogramReference::Absolute { top_db } => top_db,
                };
                let floor = top - range;
                let px = mag
                    .iter()
                    .map(|&m| {
                        let db = if m > 0.0 {
                            20.0 * m.log10()
                        } else {
                            f64::NEG_INFINITY
                        };
                        let db = db.clamp(floor, top);
                        (2.0 * (db - floor) / range - 1.0) as f32
                    })
                    .collect();
                (top, px)
            }
        };
        let image = Tensor::from_vec(pixels, (cwt.scales.len(), cwt.len), device)?;
        Ok(Self {
            image,
            phase,
            kind: config.kind,
            reference,
            range_db: range,
            cwt_meta: (
                cwt.scales.clone(),
                cwt.frequencies.clone(),
                cwt.len,
                complex,
                cwt.precision,
            ),
        })
    }

    /// The normalised image, `[scales, time]`, f32 in [-1, 1].
    pub fn image(&self) -> &Tensor {
        &self.image
    }

    /// CWT coefficients from an image of this scalogram's shape (for example a model's
    /// reconstruction of [`Scalogram::image`]), with this scalogram's phase and normalisation.
    /// Values are clamped to [-1, 1].
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for another shape, [`Error::NonFinite`] for NaN pixels, candle
    /// errors.
    pub fn to_cwt(&self, image: &Tensor) -> Result<Cwt> {
        let (scales, frequencies, len, complex, precision) = &self.cwt_meta;
        if image.dims() != [scales.len(), *len] {
            return Err(Error::ShapeMismatch {
                context: "Scalogram::to_cwt (image vs scalogram)",
                expected: vec![scales.len(), *len],
                got: image.dims().to_vec(),
            });
        }
        let px: Vec<f64> = image
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        crate::error::check_finite(&px, "Scalogram::to_cwt image")?;
        let mags = px.iter().map(|&p| {
            let p = p.clamp(-1.0, 1.0);
            match self.kind {
                ScalogramKind::Magnitude => (p + 1.0) / 2.0 * self.reference,
                // Pixels at the floor were at or below it: they come back as silence.
                ScalogramKind::LogPower if p <= -1.0 => 0.0,
                ScalogramKind::LogPower => {
                    let db = (p + 1.0) / 2.0 * self.range_db + self.reference - self.range_db;
                    10f64.powf(db / 20.0)
                }
            }
        });
        let coefs = if *complex {
            CwtCoefs::Complex(
                mags.zip(&self.phase)
                    .map(|(m, &ph)| Complex64::from_polar(m, ph))
                    .collect(),
            )
        } else {
            CwtCoefs::Real(
                mags.zip(&self.phase)
                    .map(|(m, &ph)| if ph != 0.0 { -m } else { m })
                    .collect(),
            )
        };
        Ok(Cwt {
            coefs,
            frequencies: frequencies.clone(),
            scales: scales.clone(),
            len: *len,
            precision: *precision,
        })
    }
}
