use candle_core::Tensor;

use crate::{PredictionType, Result};

/// A model that predicts the diffusion model output for noisy samples.
///
/// This is the one trait that connects networks (U-Net, MLP), analytic models and the samplers:
/// a sampler only ever calls [`Denoiser::predict`].
///
/// # Shapes
/// - `x_t`: `[batch, ...]`, the noisy sample (for Euler-type samplers, the *scaled* model input).
/// - `t`: `[batch]`, one training timestep per sample (`u32` indices or a float dtype).
/// - returns: the same shape as `x_t`, interpreted according to [`Denoiser::prediction_type`].
pub trait Denoiser {
    /// Predicts the model output for `x_t` at timesteps `t`.
    ///
    /// # Errors
    /// Returns an error if the shapes do not fit the model or a tensor operation fails.
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> Result<Tensor>;

    /// What [`Denoiser::predict`] returns. Defaults to [`PredictionType::Epsilon`].
    fn prediction_type(&self) -> PredictionType {
        PredictionType::Epsilon
    }
}

impl<D: Denoiser + ?Sized> Denoiser for &D {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> Result<Tensor> {
        (**self).predict(x_t, t)
    }

    fn prediction_type(&self) -> PredictionType {
        (**self).prediction_type()
    }
}

impl<D: Denoiser + ?Sized> Denoiser for Box<D> {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> Result<Tensor> {
        (**self).predict(x_t, t)
    }

    fn prediction_type(&self) -> PredictionType {
        (**self).prediction_type()
    }
}

impl<D: Denoiser + ?Sized> Denoiser for std::sync::Arc<D> {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> Result<Tensor> {
        (**self).predict(x_t, t)
    }

    fn prediction_type(&self) -> PredictionType {
        (**self).prediction_type()
    }
}
