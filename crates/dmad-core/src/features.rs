use candle_core::Tensor;

use crate::Result;

/// A frozen network that maps samples to feature maps, for perceptual losses and scores.
///
/// The method's feature-preservation loss and feature score compare `f(x0)` with `f(x0_hat)`
/// through this trait; dmad's implementation is EfficientNet-Lite0.
///
/// # Shapes
/// - `x`: `[batch, channel, height, width]` in the data's normalised range (`[-1, 1]`); the
///   extractor does its own preprocessing (resizing, ImageNet normalisation, grey to RGB).
/// - returns: one tensor per tapped layer, `[batch, c_l, h_l, w_l]`, from the finest to the
///   coarsest resolution.
pub trait FeatureExtractor {
    /// Computes the feature maps of `x`.
    ///
    /// # Errors
    /// Returns an error if `x` has a shape the extractor cannot take.
    fn features(&self, x: &Tensor) -> Result<Vec<Tensor>>;
}

impl<F: FeatureExtractor + ?Sized> FeatureExtractor for &F {
    fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        (**self).features(x)
    }
}

impl<F: FeatureExtractor + ?Sized> FeatureExtractor for std::sync::Arc<F> {
    fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        (**self).features(x)
    }
}
