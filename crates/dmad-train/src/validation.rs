//! Early stopping on held-out normal samples: the denoising loss of the (averaged) weights on
//! samples the network never trains on, at fixed noise levels and draws, measured every few
//! steps; the weights with the lowest loss are kept.
//!
//! A density model trained too long starts to fit its training samples rather than their
//! distribution; the loss of held-out samples then stops falling. The held-out set is the
//! fit's calibration split (normal data only), so no anomaly is needed.

use candle_core::{DType, Tensor};
use dmad_core::{Denoiser, PredictionType};
use dmad_diffusion::NoiseSchedule;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Error, Result};

/// Rows of the held-out set passed to the network at once.
const CHUNK: usize = 4096;

/// Held-out samples with fixed timesteps and noise: [`Validation::loss`] of the same weights
/// gives the same value every time, so losses of different steps compare.
#[derive(Debug, Clone)]
pub struct Validation {
    /// `(x0, t, noise)` per chunk of samples and noise level.
    draws: Vec<(Tensor, Tensor, Tensor)>,
}

impl Validation {
    /// The held-out samples `x0` (`[n, ...]`; at most `max_samples` of them, evenly spaced,
    /// are used), each noised at `levels` timesteps spread evenly over the schedule (level
    /// `j` at `(j + 0.5) / levels` of it) with noise seeded by `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidData`] for no samples, zero levels or zero `max_samples`.
    pub fn new(
        x0: &Tensor,
        schedule: &NoiseSchedule,
        levels: usize,
        max_samples: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::new_in(
            x0,
            schedule,
            0..schedule.num_train_timesteps(),
            levels,
            max_samples,
            seed,
        )
    }

    /// As [`Validation::new`], with the levels spread evenly over `timesteps` (level `j` at
    /// `begin + (j + 0.5) / levels` of its length) instead of the whole schedule: the range a
    /// run trains on ([`crate::TrainConfig::timestep_range`]).
    ///
    /// # Errors
    /// [`Error::InvalidData`] as [`Validation::new`], and for an empty range or one past the
    /// schedule's end.
    pub fn new_in(
        x0: &Tensor,
        schedule: &NoiseSchedule,
        timesteps: std::ops::Range<usize>,
        levels: usize,
        max_samples: usize,
        seed: u64,
    ) -> Result<Self> {
        let t_max = schedule.num_train_timesteps();
        if timesteps.is_empty() || timesteps.end > t_max {
            return Err(Error::InvalidData(format!(
                "validation timesteps {timesteps:?} must be non-empty and inside the \
                 schedule's [0, {t_max})"
            )));
        }
        let n = x0.dim(0)?;
        if n == 0 || levels == 0 || max_samples == 0 {
            return Err(Error::InvalidData(format!(
                "validation needs samples, levels and max_samples (got {n}, {levels}, \
                 {max_samples})"
            )));
        }
        let m = n.min(max_samples);
        let idx: Vec<u32> = (0..m).map(|i| (i * n / m) as u32).collect();
        let x0 = x0
            .index_select(&Tensor::new(idx.as_slice(), x0.device())?, 0)?
            .to_dtype(DType::F32)?;
        let (begin, len) = (timesteps.start, timesteps.len());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draws = Vec::new();
        for j in 0..levels {
            let t = (begin + ((j as f64 + 0.5) / levels as f64 * len as f64) as usize)
                .min(timesteps.end - 1);
            for start in (0..m).step_by(CHUNK) {
                let len = CHUNK.min(m - start);
                let x = x0.narrow(0, start, len)?;
                let noise: Vec<f32> = (0..x.elem_count())
                    .map(|_| StandardNormal.sample(&mut rng))
                    .collect();
                let noise = Tensor::from_vec(noise, x.shape(), x.device())?;
                let t = Tensor::from_vec(vec![t as u32; len], len, x.device())?;
                draws.push((x, t, noise));
            }
        }
        Ok(Self { draws })
    }

    /// The mean squared error of `model`'s prediction (its own target: noise, velocity or
    /// sample) over the held-out samples, levels and elements.
    ///
    /// # Errors
    /// Errors of the model and of tensor operations.
    pub fn loss(&self, model: &dyn Denoiser, schedule: &NoiseSchedule) -> Result<f64> {
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (x0, t, noise) in &self.draws {
            let x_t = schedule.add_noise(x0, noise, t)?;
            let target = match model.prediction_type() {
                PredictionType::Epsilon => noise.clone(),
                PredictionType::VPrediction => schedule.velocity(x0, noise, t)?,
                PredictionType::Sample => x0.clone(),
            };
            let pred = model.predict(&x_t, t)?.detach();
            let se = (pred.to_dtype(DType::F32)? - target)?.sqr()?.sum_all()?;
            sum += se.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            count += x0.elem_count();
        }
        Ok(sum / count.max(1) as f64)
    }
}

/// What early stopping saw: the held-out loss at each measured step, and the step whose
/// weights were kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationReport {
    /// `(step, loss)` in the order measured.
    pub history: Vec<(usize, f64)>,
    /// The step with the lowest loss (the first on ties), whose weights the run ends with.
    pub best_step: usize,
    /// Its loss.
    pub best_loss: f64,
}
