//! The exact denoiser of Gaussian data: an oracle for testing samplers.

use candle_core::{DType, Tensor};
use dmad_core::{Denoiser, PredictionType};

use crate::util::{per_sample, timestep_values};
use crate::{Error, NoiseSchedule, Result};

/// The optimal (minimum mean squared error) denoiser of data whose every element is
/// independent `N(mean, std^2)`, in closed form.
///
/// With `x_t = sqrt(a) x0 + sqrt(1 - a) eps` and `a = alpha_bar_t`, `x_t` is
/// `N(sqrt(a) mean, a std^2 + 1 - a)` and
/// - `E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) mean) / (a std^2 + 1 - a)`,
/// - `E[x0 | x_t] = mean + sqrt(a) std^2 (x_t - sqrt(a) mean) / (a std^2 + 1 - a)`,
/// - `E[v | x_t] = sqrt(a) E[eps | x_t] - sqrt(1 - a) E[x0 | x_t]`.
///
/// A sampler driven by it should produce samples with the data's mean and standard deviation;
/// how close it gets measures the sampler's discretisation error. Fractional timesteps use
/// [`NoiseSchedule::alpha_bar_at`].
#[derive(Debug, Clone)]
pub struct GaussianDenoiser {
    schedule: NoiseSchedule,
    mean: f64,
    std: f64,
    prediction_type: PredictionType,
}

impl GaussianDenoiser {
    /// The exact denoiser of `N(mean, std^2)` data under `schedule`, predicting
    /// `prediction_type`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `mean` is not finite or `std` is not positive and finite.
    pub fn new(
        schedule: &NoiseSchedule,
        mean: f64,
        std: f64,
        prediction_type: PredictionType,
    ) -> Result<Self> {
        if !mean.is_finite() {
            return Err(Error::InvalidConfig {
                field: "mean",
                reason: format!("must be finite, got {mean}"),
            });
        }
        if !(std.is_finite() && std > 0.0) {
            return Err(Error::InvalidConfig {
                field: "std",
                reason: format!("must be positive and finite, got {std}"),
            });
        }
        Ok(Self {
            schedule: schedule.clone(),
            mean,
            std,
            prediction_type,
        })
    }

    /// The data mean.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The data standard deviation.
    pub fn std(&self) -> f64 {
        self.std
    }

    /// The per-sample `(slope, intercept)` of the prediction at `alpha_bar = a`: the output is
    /// `slope * x_t + intercept`.
    fn affine(&self, a: f64) -> (f64, f64) {
        let (m, s2) = (self.mean, self.std * self.std);
        let (sa, s1) = (a.sqrt(), (1.0 - a).sqrt());
        let d = a * s2 + 1.0 - a;
        // eps = e1 x + e0, x0 = z1 x + z0
        let (e1, e0) = (s1 / d, -s1 * sa * m / d);
        let (z1, z0) = (sa * s2 / d, m - sa * s2 * sa * m / d);
        match self.prediction_type {
            PredictionType::Epsilon => (e1, e0),
            PredictionType::Sample => (z1, z0),
            PredictionType::VPrediction => (sa * e1 - s1 * z1, sa * e0 - s1 * z0),
        }
    }

    fn predict_impl(&self, x_t: &Tensor, t: &Tensor) -> Result<Tensor> {
        let batch = crate::util::batch_of(x_t, "GaussianDenoiser::predict: x_t")?;
        let ts = timestep_values(t, batch, "GaussianDenoiser::predict: t")?;
        let (mut slope, mut icpt) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
        for tv in ts {
            let (k, c) = self.affine(self.schedule.alpha_bar_at(tv)?);
            slope.push(k);
            icpt.push(c);
        }
        let x = x_t.to_dtype(DType::F32)?;
        let out = x
            .broadcast_mul(&per_sample(&slope, &x)?)?
            .broadcast_add(&per_sample(&icpt, &x)?)?;
        Ok(out.to_dtype(x_t.dtype())?)
    }
}

impl Denoiser for GaussianDenoiser {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> dmad_core::Result<Tensor> {
        self.predict_impl(x_t, t).map_err(Error::into_core)
    }

    fn prediction_type(&self) -> PredictionType {
        self.prediction_type
    }
}
