//! Denoising conditioned on a reference: DDAD's guidance toward the input being reconstructed.

use candle_core::Tensor;
use dmad_core::{Denoiser, PredictionType};

use crate::util::{batch_of, lincomb, same_shape, timestep_values};
use crate::{Error, NoiseSchedule, Result};

/// A denoiser whose every prediction is nudged toward a reference `y` (the sample being
/// reconstructed), as DDAD (Mousakhan et al., arXiv 2305.15956, eq. 9-10) conditions its
/// reconstruction on the input.
///
/// DDAD replaces the predicted noise by `eps - w sqrt(1 - a) (y_t - x_t)`, with
/// `y_t = sqrt(a) y + sqrt(1 - a) eps` and `a = alpha_bar_t`. Written for the clean-sample
/// estimate this is `x0' = x0 + k (y - x0)` with `k = w (1 - a)`: the estimate moves toward the
/// reference, more at high noise than at low. Here `k` is capped at 1, so that a large `w`
/// returns the reference itself (`x0' = y`) instead of overshooting past it. The adjusted
/// estimate is handed back in the inner denoiser's prediction type (epsilon, `v` or sample),
/// so every sampler runs it unchanged. `w = 0` is the inner denoiser.
///
/// The reference is fixed per batch: build one for each batch being reconstructed (the
/// reconstruction loop of `dmad-score` does).
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// use dmad_diffusion::{reconstruct, Conditioned, DdimConfig, DdimSampler, GaussianDenoiser,
///     NoiseScheduleConfig, SeededNoise, Start};
///
/// # fn main() -> dmad_diffusion::Result<()> {
/// let schedule = NoiseScheduleConfig::default().build()?;
/// let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, Default::default())?;
/// let y = Tensor::new(&[[3.0f32, -2.0]], &Device::Cpu)?;
/// // A very large weight returns the reference.
/// let guided = Conditioned::new(&model, &schedule, y.clone(), 1e6)?;
/// let mut ddim = DdimSampler::new(&schedule, DdimConfig { num_inference_steps: 10, ..Default::default() })?;
/// let r = reconstruct(&guided, &mut ddim, &y, Start::Strength(0.5), &mut SeededNoise::new(0))?;
/// let d = (r - &y)?.abs()?.max_all()?.to_scalar::<f32>()?;
/// assert!(d < 1e-4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Conditioned<D> {
    inner: D,
    schedule: NoiseSchedule,
    reference: Tensor,
    weight: f64,
}

impl<D: Denoiser> Conditioned<D> {
    /// `inner` conditioned on `reference` (`[batch, ...]`, the shape of the samples it will
    /// denoise) with DDAD's weight `weight`, under `schedule` (the schedule `inner` was trained
    /// with).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (field `condition`) unless `weight` is finite and `>= 0`.
    pub fn new(inner: D, schedule: &NoiseSchedule, reference: Tensor, weight: f64) -> Result<Self> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(Error::InvalidConfig {
                field: "condition",
                reason: format!("the conditioning weight must be finite and >= 0, got {weight}"),
            });
        }
        Ok(Self {
            inner,
            schedule: schedule.clone(),
            reference,
            weight,
        })
    }

    /// DDAD's weight `w`.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The fraction `min(1, w (1 - alpha_bar))` of the way from the network's clean-sample
    /// estimate to the reference taken at `alpha_bar`.
    pub fn pull(&self, alpha_bar: f64) -> f64 {
        (self.weight * (1.0 - alpha_bar)).min(1.0)
    }

    fn predict_impl(&self, x_t: &Tensor, t: &Tensor) -> Result<Tensor> {
        let out = self.inner.predict(x_t, t)?;
        if self.weight == 0.0 {
            return Ok(out);
        }
        same_shape(x_t, &self.reference, "Conditioned::predict: reference")?;
        let batch = batch_of(x_t, "Conditioned::predict: x_t")?;
        let pred = self.inner.prediction_type();
        let x0 = self
            .schedule
            .convert_prediction(&out, pred, PredictionType::Sample, x_t, t)?;
        let k: Vec<f64> = timestep_values(t, batch, "Conditioned::predict: t")?
            .into_iter()
            .map(|tv| Ok(self.pull(self.schedule.alpha_bar_at(tv)?)))
            .collect::<Result<_>>()?;
        let keep: Vec<f64> = k.iter().map(|k| 1.0 - k).collect();
        let reference = self.reference.to_dtype(x0.dtype())?;
        let x0 = lincomb(&keep, &x0, &k, &reference)?;
        let out2 = self
            .schedule
            .convert_prediction(&x0, PredictionType::Sample, pred, x_t, t)?;
        Ok(out2.to_dtype(out.dtype())?)
    }
}

impl<D: Denoiser> Denoiser for Conditioned<D> {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> dmad_core::Result<Tensor> {
        self.predict_impl(x_t, t).map_err(Error::into_core)
    }

    fn prediction_type(&self) -> PredictionType {
        self.inner.prediction_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        reconstruct, DdimConfig, DdimSampler, GaussianDenoiser, NoiseScheduleConfig, SeededNoise,
        Start,
    };
    use candle_core::Device;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    fn run(weight: f64, pred: PredictionType) -> (Tensor, Tensor, Tensor) {
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, pred).unwrap();
        let y = Tensor::new(&[[2.5f32, -3.0, 0.5], [4.0, 1.0, -1.5]], &Device::Cpu).unwrap();
        let cfg = DdimConfig {
            num_inference_steps: 20,
            prediction_type: pred,
            ..Default::default()
        };
        let guided = Conditioned::new(&model, &schedule, y.clone(), weight).unwrap();
        let mut s = DdimSampler::new(&schedule, cfg.clone()).unwrap();
        let g = reconstruct(
            &guided,
            &mut s,
            &y,
            Start::Strength(0.6),
            &mut SeededNoise::new(3),
        )
        .unwrap();
        let mut s = DdimSampler::new(&schedule, cfg).unwrap();
        let plain = reconstruct(
            &model,
            &mut s,
            &y,
            Start::Strength(0.6),
            &mut SeededNoise::new(3),
        )
        .unwrap();
        (y, g, plain)
    }

    #[test]
    fn zero_weight_is_the_inner_denoiser() {
        let (_, g, plain) = run(0.0, PredictionType::Epsilon);
        assert_eq!(max_diff(&g, &plain), 0.0);
    }

    #[test]
    fn a_large_weight_returns_the_input_for_every_prediction_type() {
        for pred in [
            PredictionType::Epsilon,
            PredictionType::VPrediction,
            PredictionType::Sample,
        ] {
            let (y, g, plain) = run(1e9, pred);
            assert!(max_diff(&g, &y) < 1e-4, "{pred}: {}", max_diff(&g, &y));
            // The unguided reconstruction of these far-from-N(0, 1) values is pulled to 0.
            assert!(max_diff(&plain, &y) > 0.5, "{pred}");
        }
    }

    #[test]
    fn a_moderate_weight_lands_between() {
        let (y, g, plain) = run(2.0, PredictionType::Epsilon);
        let (dg, dp) = (max_diff(&g, &y), max_diff(&plain, &y));
        assert!(dg < dp && dg > 1e-3, "guided {dg}, plain {dp}");
    }

    #[test]
    fn rejects_bad_weights_and_references() {
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, PredictionType::Epsilon).unwrap();
        let y = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        for w in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Conditioned::new(&model, &schedule, y.clone(), w),
                Err(Error::InvalidConfig {
                    field: "condition",
                    ..
                })
            ));
        }
        let c = Conditioned::new(&model, &schedule, y, 1.0).unwrap();
        let x = Tensor::zeros((3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let t = Tensor::new(&[10u32, 10, 10], &Device::Cpu).unwrap();
        assert!(matches!(
            c.predict(&x, &t),
            Err(dmad_core::Error::ShapeMismatch { .. })
        ));
    }
}
