//! What every injector returns, and the step that keeps masks exact after harmonisation.

use candle_core::{DType, Tensor};
use dmad_core::Denoiser;
use dmad_diffusion::Sampler;

use crate::harmonise::{harmonise, HarmoniseConfig};
use crate::util::enforce_change;
use crate::{Error, Result};

/// Anomalous samples and their ground-truth masks.
///
/// The mask is 1 exactly where the sample differs from the normal sample it was made from
/// (in any channel), by at least the injector's minimum change, and 0 where it is bit for bit
/// the normal sample.
#[derive(Debug, Clone)]
pub struct Injected {
    /// The anomalous samples, the shape of the input.
    pub x: Tensor,
    /// The mask, `f32` in `{0, 1}`: `[batch, height, width]` for images, `[batch, length]` for
    /// series windows and waveforms, `[batch, features]` for table rows.
    pub mask: Tensor,
}

impl Injected {
    /// The mask broadcastable to the samples (a channel axis inserted for images and series),
    /// as [`crate::harmonise`] takes it.
    ///
    /// # Errors
    /// Candle errors.
    pub fn mask_for(&self) -> Result<Tensor> {
        Ok(if self.x.rank() > self.mask.rank() {
            self.mask.unsqueeze(1)?
        } else {
            self.mask.clone()
        })
    }

    /// Harmonises the anomalies with [`crate::harmonise`] (masked partial diffusion from the
    /// normal samples `original`), then restores the exactness of the mask: elements of the
    /// mask that the denoiser brought back within `min_change` of the original are moved
    /// `min_change` away (inside `[lo, hi]`). The mask is unchanged; outside it the samples
    /// are the originals.
    ///
    /// # Errors
    /// As [`crate::harmonise`]; [`Error::ShapeMismatch`] if `original` is not the samples'
    /// shape.
    #[allow(clippy::too_many_arguments)]
    pub fn harmonised<D, S>(
        &self,
        denoiser: &D,
        sampler: &mut S,
        original: &Tensor,
        cfg: &HarmoniseConfig,
        min_change: f32,
        lo: f32,
        hi: f32,
    ) -> Result<Injected>
    where
        D: Denoiser + ?Sized,
        S: Sampler + ?Sized,
    {
        let h = harmonise(denoiser, sampler, original, &self.x, &self.mask_for()?, cfg)?;
        let x = exact_on_mask(original, &h, &self.mask, min_change, lo, hi)?;
        Ok(Injected {
            x,
            mask: self.mask.clone(),
        })
    }
}

/// Applies the exact-mask rule to whole batches: `new` is reset to `orig` off the mask and
/// moved at least `min_change` from it on the mask. `mask` has the samples' positions
/// (`[batch, positions...]`), shared by all channels when the samples have a channel axis.
pub(crate) fn exact_on_mask(
    orig: &Tensor,
    new: &Tensor,
    mask: &Tensor,
    min_change: f32,
    lo: f32,
    hi: f32,
) -> Result<Tensor> {
    if orig.dims() != new.dims() {
        return Err(Error::shape(
            "exact_on_mask: new",
            format!("{:?}", orig.dims()),
            new.dims(),
        ));
    }
    let dims = orig.dims().to_vec();
    let b = dims[0];
    let per: usize = dims[1..].iter().product();
    let positions: usize = mask.elem_count() / b.max(1);
    if mask.dim(0)? != b || !per.is_multiple_of(positions.max(1)) {
        return Err(Error::shape(
            "exact_on_mask: mask",
            format!("[{b}, positions of {:?}]", &dims[1..]),
            mask.dims(),
        ));
    }
    let o = orig.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut n = new.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let m = mask.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    for s in 0..b {
        let ms = &m[s * positions..(s + 1) * positions];
        enforce_change(
            &o[s * per..(s + 1) * per],
            &mut n[s * per..(s + 1) * per],
            |i| ms[i % positions] > 0.5,
            min_change,
            lo,
            hi,
        );
    }
    Ok(Tensor::from_vec(n, dims, orig.device())?)
}
