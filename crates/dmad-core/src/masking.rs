//! Grating masks and the conditioned input of imputation diffusion for series windows.
//!
//! An imputation denoiser (ImDiffusion, arXiv 2307.00754; CSDI, arXiv 2107.03502) fills the
//! masked time steps of a window from the rest of it: the masked steps carry the noised values
//! `x_t`, the observed steps their clean values `x0`, and one more channel carries the mask. The
//! trainer ([`GratingMasks::mask`] with a random shift per sample) and the imputation scorer
//! (every shift of [`GratingMasks::shifts`]) build that input with [`imputation_input`], so a
//! model sees the same layout in both.
//!
//! The masks are gratings: masked and observed segments of [`GratingMasks::segment`] steps
//! alternate; the same steps are masked in every channel.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// Alternating masked and observed segments of `segment` time steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GratingMasks {
    /// The length of one masked (and of one observed) segment, in time steps, at least 1.
    pub segment: usize,
}

impl GratingMasks {
    /// Checks that `segment` fits windows of `length` steps: at least 1 and shorter than the
    /// window, so that every mask leaves steps to condition on.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (field `segment`).
    pub fn validate(&self, length: usize) -> Result<()> {
        if self.segment == 0 || self.segment >= length {
            return Err(Error::InvalidConfig {
                field: "segment",
                reason: format!(
                    "a grating segment of {} steps does not fit windows of {length} steps \
                     (it must be at least 1 and shorter than the window)",
                    self.segment
                ),
            });
        }
        Ok(())
    }

    /// The grating's period, `2 * segment`: shifts are taken modulo it.
    pub fn period(&self) -> usize {
        2 * self.segment
    }

    /// The mask of a window of `length` steps shifted by `shift`: 1 where the step is masked
    /// (to be imputed), 0 where it is observed. Step `i` is masked when
    /// `((i + shift) / segment)` is even.
    pub fn mask(&self, length: usize, shift: usize) -> Vec<f32> {
        let seg = self.segment.max(1);
        (0..length)
            .map(|i| {
                if ((i + shift) / seg).is_multiple_of(2) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// `phases` shifts evenly spaced over the period: with an even `phases`, every step is
    /// masked by exactly `phases / 2` of them (2 phases: the two complementary masks).
    pub fn shifts(&self, phases: usize) -> Vec<usize> {
        let p = self.period();
        let mut v: Vec<usize> = (0..phases).map(|k| k * p / phases.max(1)).collect();
        v.dedup();
        v
    }

    /// The masks of `shifts` as a `[shifts.len(), 1, length]` tensor (broadcast over channels).
    ///
    /// # Errors
    /// Errors of building the tensor.
    pub fn mask_tensor(&self, length: usize, shifts: &[usize], device: &Device) -> Result<Tensor> {
        let data: Vec<f32> = shifts.iter().flat_map(|&s| self.mask(length, s)).collect();
        Ok(Tensor::from_vec(data, (shifts.len(), 1, length), device)?)
    }
}

/// The input of an imputation denoiser: `[mask * x_t + (1 - mask) * x0, mask]` along the
/// channel axis, `[batch, channels + 1, length]`.
///
/// `x_t` and `x0` are `[batch, channels, length]`; `mask` is `[batch, 1, length]` (1 = masked).
///
/// # Errors
/// [`Error::ShapeMismatch`] when the shapes do not fit together.
pub fn imputation_input(x_t: &Tensor, x0: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let d = x0.dims();
    if d.len() != 3 || x_t.dims() != d {
        return Err(Error::ShapeMismatch {
            context: "imputation_input: x_t and x0",
            expected: format!("two tensors [batch, channels, length], both {d:?}"),
            got: x_t.dims().to_vec(),
        });
    }
    if mask.dims() != [d[0], 1, d[2]] {
        return Err(Error::ShapeMismatch {
            context: "imputation_input: mask",
            expected: format!("[{}, 1, {}]", d[0], d[2]),
            got: mask.dims().to_vec(),
        });
    }
    let mask = mask.to_dtype(x0.dtype())?;
    let keep = mask.affine(-1.0, 1.0)?;
    let mixed = (x_t.broadcast_mul(&mask)? + x0.broadcast_mul(&keep)?)?;
    Ok(Tensor::cat(&[&mixed, &mask], 1)?)
}

/// The squared error `(a - b)^2` of the masked steps only, averaged over channels: a
/// `[batch, length]` tensor that is 0 at observed steps. `a`, `b` are `[batch, channels,
/// length]`, `mask` `[batch, 1, length]`.
///
/// # Errors
/// Errors of the tensor operations (shapes that do not broadcast).
pub fn masked_squared_error(a: &Tensor, b: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let e = (a.to_dtype(DType::F32)? - b.to_dtype(DType::F32)?)?
        .sqr()?
        .mean(1)?;
    Ok(e.broadcast_mul(&mask.to_dtype(DType::F32)?.squeeze(1)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grating_alternates_and_two_phases_cover_every_step_once() {
        let g = GratingMasks { segment: 2 };
        assert_eq!(g.mask(8, 0), [1., 1., 0., 0., 1., 1., 0., 0.]);
        assert_eq!(g.mask(8, 1), [1., 0., 0., 1., 1., 0., 0., 1.]);
        assert_eq!(g.shifts(2), [0, 2]);
        let a = g.mask(9, 0);
        let b = g.mask(9, 2);
        assert!(a.iter().zip(&b).all(|(x, y)| x + y == 1.0));
        let four = g.shifts(4);
        assert_eq!(four, [0, 1, 2, 3]);
        for i in 0..9 {
            let count: f32 = four.iter().map(|&s| g.mask(9, s)[i]).sum();
            assert_eq!(count, 2.0);
        }
    }

    #[test]
    fn a_segment_must_fit_the_window() {
        assert!(GratingMasks { segment: 0 }.validate(8).is_err());
        assert!(GratingMasks { segment: 8 }.validate(8).is_err());
        assert!(GratingMasks { segment: 7 }.validate(8).is_ok());
    }

    #[test]
    fn the_input_keeps_observed_steps_clean_and_appends_the_mask() -> Result<()> {
        let dev = Device::Cpu;
        let x0 = Tensor::new(&[[[1f32, 2., 3., 4.]]], &dev)?;
        let x_t = Tensor::new(&[[[-1f32, -2., -3., -4.]]], &dev)?;
        let g = GratingMasks { segment: 1 };
        let m = g.mask_tensor(4, &[0], &dev)?;
        let input = imputation_input(&x_t, &x0, &m)?;
        assert_eq!(input.dims(), &[1, 2, 4]);
        let v = input.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(v, [-1., 2., -3., 4., 1., 0., 1., 0.]);
        let e = masked_squared_error(&x_t, &x0, &m)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(e, [4., 0., 36., 0.]);
        let bad = Tensor::zeros((1, 1, 3), DType::F32, &dev)?;
        assert!(matches!(
            imputation_input(&x_t, &x0, &bad),
            Err(Error::ShapeMismatch { .. })
        ));
        Ok(())
    }
}
