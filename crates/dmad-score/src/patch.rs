//! Locally aware patch features of a frozen extractor (PatchCore, arXiv 2106.08265, section
//! 3.1): each tapped feature map is averaged over a small neighbourhood, the coarser maps are
//! resized to the finest one, and the maps are concatenated, so that every position of the
//! finest map becomes one patch vector.
//!
//! With EfficientNet-Lite0 tapped at blocks 4 and 10 and a 224x224 input this gives 28x28
//! patches of 40 + 112 = 152 features per image: the representation of dmad's PatchCore
//! baseline ([`crate::patchcore`]) and of its feature-space diffusion detector.

use candle_core::{DType, Tensor};
use dmad_core::FeatureExtractor;

use crate::efficientnet::resize_bilinear;
use crate::{Error, Result};

/// Patch features `[batch, channels, height, width]` of `x` through `extractor`: each tapped
/// map average-pooled over `pool x pool` positions (stride 1, zero padding `pool / 2` counted
/// in the mean, as PyTorch's `avg_pool2d` with `count_include_pad=True`), resized bilinearly
/// (`align_corners=False`) to the first (finest) map's size, and concatenated along the
/// channel axis in tap order.
///
/// # Shapes
/// `x`: what the extractor takes (for [`crate::EfficientNetExtractor`], `[batch, 1 or 3, H,
/// W]` in `[-1, 1]`); returns `[batch, sum of the taps' channels, h, w]` in `f32`.
///
/// # Errors
/// [`dmad_core::Error::InvalidConfig`] (field `pool`) for an even `pool`; the extractor's
/// errors; [`dmad_core::Error::Unsupported`] when it returns no map.
pub fn patch_features<F: FeatureExtractor + ?Sized>(
    extractor: &F,
    x: &Tensor,
    pool: usize,
) -> Result<Tensor> {
    if pool == 0 || pool.is_multiple_of(2) {
        return Err(Error::Core(dmad_core::Error::InvalidConfig {
            field: "pool",
            reason: format!("the patch neighbourhood must be an odd size >= 1, got {pool}"),
        }));
    }
    let maps = extractor.features(x)?;
    let first = maps
        .first()
        .ok_or(Error::Core(dmad_core::Error::Unsupported(
            "patch features of an extractor that returns no feature map",
        )))?;
    let (h, w) = (first.dim(2)?, first.dim(3)?);
    let parts = maps
        .iter()
        .map(|m| {
            let m = m.to_dtype(DType::F32)?;
            let m = local_mean(&m, pool)?;
            if (m.dim(2)?, m.dim(3)?) == (h, w) {
                Ok(m)
            } else {
                resize_bilinear(&m, h, w)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 1)?)
}

/// The mean over each `k x k` neighbourhood (stride 1, zeros padded and counted).
fn local_mean(m: &Tensor, k: usize) -> Result<Tensor> {
    if k == 1 {
        return Ok(m.clone());
    }
    let p = k / 2;
    let padded = m.pad_with_zeros(2, p, p)?.pad_with_zeros(3, p, p)?;
    Ok(padded.avg_pool2d_with_stride((k, k), (1, 1))?)
}

/// Patch maps `[batch, channels, h, w]` as rows `[batch * h * w, channels]`, image by image,
/// each image's positions in row-major order.
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] for a tensor that is not of rank 4.
pub fn to_rows(maps: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = maps.dims4().map_err(|_| {
        Error::shape(
            "to_rows: patch maps",
            "[batch, channels, height, width]",
            maps.dims(),
        )
    })?;
    Ok(maps
        .permute((0, 2, 3, 1))?
        .contiguous()?
        .reshape((b * h * w, c))?)
}

/// Patch rows `[n * h * w, channels]` of images `x` (`[n, ...]`) and the patch grid `(h, w)`:
/// [`patch_features`] then [`to_rows`], `batch` images at a time so that the extractor's
/// activations stay small.
///
/// # Errors
/// As [`patch_features`]; [`dmad_core::Error::InvalidConfig`] (field `batch`) for a zero
/// batch.
pub fn patch_rows<F: FeatureExtractor + ?Sized>(
    extractor: &F,
    x: &Tensor,
    pool: usize,
    batch: usize,
) -> Result<(Tensor, (usize, usize))> {
    if batch == 0 {
        return Err(Error::config("batch", "must be at least 1"));
    }
    let n = x.dim(0)?;
    let mut parts = Vec::with_capacity(n.div_ceil(batch));
    let mut hw = (0, 0);
    for start in (0..n).step_by(batch) {
        let maps = patch_features(extractor, &x.narrow(0, start, batch.min(n - start))?, pool)?;
        hw = (maps.dim(2)?, maps.dim(3)?);
        parts.push(to_rows(&maps)?);
    }
    if parts.is_empty() {
        return Err(Error::shape("patch_rows: x", "[n >= 1, ...]", x.dims()));
    }
    Ok((Tensor::cat(&parts, 0)?, hw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// An extractor returning two fixed maps: `[b, 1, 4, 4]` and `[b, 2, 2, 2]`.
    struct Two;

    impl FeatureExtractor for Two {
        fn features(&self, x: &Tensor) -> dmad_core::Result<Vec<Tensor>> {
            let b = x.dim(0)?;
            let fine = Tensor::arange(0f32, 16.0, x.device())?
                .reshape((1, 1, 4, 4))?
                .repeat((b, 1, 1, 1))?;
            let coarse = Tensor::ones((b, 2, 2, 2), DType::F32, x.device())?;
            Ok(vec![fine, coarse])
        }
    }

    #[test]
    fn maps_are_pooled_resized_and_concatenated() {
        let x = Tensor::zeros((3, 1, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let f = patch_features(&Two, &x, 3).unwrap();
        assert_eq!(f.dims(), &[3, 3, 4, 4]);
        let fine: Vec<f32> = f
            .get(0)
            .unwrap()
            .get(0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // Position (1, 1): mean of the 3x3 block around 5 = (0+1+2+4+5+6+8+9+10)/9 = 5.
        assert!((fine[5] - 5.0).abs() < 1e-6);
        // Corner (0, 0): zeros padded and counted, (0+1+4+5)/9.
        assert!((fine[0] - 10.0 / 9.0).abs() < 1e-6);
        // The coarse map of ones, pooled with zero padding: corners 4/9, then resized.
        let coarse: Vec<f32> = f
            .get(0)
            .unwrap()
            .get(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            coarse.iter().all(|&c| (c - 4.0 / 9.0).abs() < 1e-6),
            "{coarse:?}"
        );
    }

    #[test]
    fn rows_follow_images_then_positions() {
        let m = Tensor::arange(0f32, 2.0 * 3.0 * 2.0 * 2.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 2, 2))
            .unwrap();
        let r = to_rows(&m).unwrap();
        assert_eq!(r.dims(), &[8, 3]);
        let rows = r.to_vec2::<f32>().unwrap();
        // Image 0, position (0, 1): channels 0, 1, 2 at flat offsets 1, 5, 9.
        assert_eq!(rows[1], [1.0, 5.0, 9.0]);
        // Image 1, position (1, 0): 12 + 2, 12 + 6, 12 + 10.
        assert_eq!(rows[6], [14.0, 18.0, 22.0]);
    }

    #[test]
    fn rows_in_batches_equal_rows_at_once() {
        let x = Tensor::zeros((5, 1, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let (rows, hw) = patch_rows(&Two, &x, 3, 2).unwrap();
        let whole = to_rows(&patch_features(&Two, &x, 3).unwrap()).unwrap();
        assert_eq!(hw, (4, 4));
        assert_eq!(
            rows.to_vec2::<f32>().unwrap(),
            whole.to_vec2::<f32>().unwrap()
        );
    }

    #[test]
    fn an_even_neighbourhood_is_refused() {
        let x = Tensor::zeros((1, 1, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let e = patch_features(&Two, &x, 2).unwrap_err();
        assert!(e.to_string().contains("pool"), "{e}");
    }
}
