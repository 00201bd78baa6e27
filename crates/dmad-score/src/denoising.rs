//! The denoising-error score: how badly the trained denoiser predicts the noise that was added
//! to a sample, averaged over several noise levels and draws.
//!
//! This is the survey's density family in its simplest form. The diffusion loss
//! `E_t E_eps ||eps_theta(x_t, t) - eps||^2` is, up to the weighting over `t`, the evidence
//! lower bound of the sample's log-likelihood (Ho et al., arXiv 2006.11239, eq. 14): a sample
//! off the normal data's manifold is denoised towards it, and the predicted noise then carries
//! the sample's distance to the manifold, scaled by `alpha_bar_t / (1 - alpha_bar_t)`. Unlike
//! partial-diffusion reconstruction it needs one network call per noise level, not a sampler
//! run, and no start step to tune.

use candle_core::{DType, Tensor};
use dmad_core::{Denoiser, PredictionType};
use dmad_diffusion::{NoiseSchedule, NoiseSource, SeededNoise};

use crate::reconstruction::{average, draw_seed, per_sample_and_map};
use crate::scorer::check_batch;
use crate::{Error, Result, ScoreOutput};

/// Configuration of [`DenoisingErrorScorer`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DenoisingErrorConfig {
    /// The training timesteps the error is averaged over, each in `[0, T - 1]`. Default
    /// [`levels`]`(8, 0.5, 1000)`.
    pub timesteps: Vec<usize>,
    /// Seeded noise draws per timestep. Default 1.
    pub draws: usize,
    /// Seed of the noise. Default 0.
    pub seed: u64,
    /// Score the noise-free input instead: feed `sqrt(alpha_bar_t) x` and take
    /// `||eps_theta||^2`, the squared norm of the model's score `-sqrt(1 - alpha_bar_t) grad
    /// log p_t` there (the multiscale score norms of MSMA, Mahmood et al., arXiv 2010.13132).
    /// Deterministic (no draws), so the maps carry no sampling noise. Default false.
    pub noise_free: bool,
}

impl Default for DenoisingErrorConfig {
    fn default() -> Self {
        Self {
            timesteps: levels(8, 0.5, 1000),
            draws: 1,
            seed: 0,
            noise_free: false,
        }
    }
}

/// `count` timesteps evenly spaced in strength up to `max_strength` (diffusers' `strength`:
/// timestep about `strength * T`): `round(i / count * max_strength * T) - 1` for `i = 1 ..=
/// count`, each at least 0, duplicates removed.
pub fn levels(count: usize, max_strength: f64, num_train_timesteps: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=count)
        .map(|i| {
            let s = i as f64 / count as f64 * max_strength.clamp(0.0, 1.0);
            ((s * num_train_timesteps as f64).round() as usize)
                .saturating_sub(1)
                .min(num_train_timesteps.saturating_sub(1))
        })
        .collect();
    v.dedup();
    v
}

/// The mean squared error of the predicted noise, `||eps_theta(x_t, t) - eps||^2` per element,
/// averaged over [`DenoisingErrorConfig::timesteps`] and draws, with a map per position.
///
/// # Shapes
/// `x`: `[batch, features]`, `[batch, channel, length]` or `[batch, channel, height, width]`;
/// the map (rank 3 and 4) has the input's spatial size, as [`crate::squared_error`]'s.
#[derive(Debug, Clone)]
pub struct DenoisingErrorScorer<D> {
    denoiser: D,
    schedule: NoiseSchedule,
    cfg: DenoisingErrorConfig,
}

impl<D: Denoiser> DenoisingErrorScorer<D> {
    /// The scorer of `denoiser`, trained with `schedule`.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] for no timesteps, a timestep outside the schedule,
    /// or zero draws.
    pub fn new(denoiser: D, schedule: NoiseSchedule, cfg: DenoisingErrorConfig) -> Result<Self> {
        let t_max = schedule.num_train_timesteps();
        if cfg.timesteps.is_empty() {
            return Err(Error::config(
                "timesteps",
                "at least one timestep is needed",
            ));
        }
        if let Some(t) = cfg.timesteps.iter().find(|&&t| t >= t_max) {
            return Err(Error::config(
                "timesteps",
                format!("timestep {t} is outside the schedule's [0, {}]", t_max - 1),
            ));
        }
        if cfg.draws == 0 {
            return Err(Error::config("draws", "must be at least 1"));
        }
        Ok(Self {
            denoiser,
            schedule,
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DenoisingErrorConfig {
        &self.cfg
    }
}

impl<D: Denoiser> crate::Scorer for DenoisingErrorScorer<D> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        let b = check_batch(x, "DenoisingErrorScorer::score: x", &[2, 3, 4])?;
        let x = x.to_dtype(DType::F32)?;
        let kind = self.denoiser.prediction_type();
        let draws = if self.cfg.noise_free {
            1
        } else {
            self.cfg.draws
        };
        let mut outputs = Vec::with_capacity(draws * self.cfg.timesteps.len());
        for d in 0..draws {
            let mut noise_source = SeededNoise::new(draw_seed(self.cfg.seed, d));
            for &t in &self.cfg.timesteps {
                let noise = if self.cfg.noise_free {
                    x.zeros_like()?
                } else {
                    noise_source.draw(x.dims(), x.device())?
                };
                let ts = Tensor::from_vec(vec![t as u32; b], b, x.device())?;
                let x_t = self.schedule.add_noise(&x, &noise, &ts)?;
                let out = self.denoiser.predict(&x_t, &ts)?;
                let eps = self.schedule.convert_prediction(
                    &out.to_dtype(DType::F32)?,
                    kind,
                    PredictionType::Epsilon,
                    &x_t,
                    &ts,
                )?;
                outputs.push(per_sample_and_map(&(eps - noise)?.sqr()?)?);
            }
        }
        average(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scorer;
    use candle_core::Device;
    use dmad_diffusion::{GaussianDenoiser, NoiseScheduleConfig};

    #[test]
    fn levels_are_evenly_spaced_and_in_range() {
        assert_eq!(levels(4, 0.4, 1000), [99, 199, 299, 399]);
        assert_eq!(levels(2, 1.0, 10), [4, 9]);
        assert_eq!(levels(3, 0.0, 1000), [0]);
    }

    #[test]
    fn samples_far_from_the_normal_distribution_score_higher() {
        // The exact denoiser of N(0, 1) data: a sample at 4 is far from it.
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, Default::default()).unwrap();
        let cfg = DenoisingErrorConfig {
            timesteps: levels(4, 0.3, 1000),
            draws: 4,
            seed: 1,
            noise_free: false,
        };
        let scorer = DenoisingErrorScorer::new(model, schedule, cfg).unwrap();
        let normal = Tensor::randn(0f32, 1.0, (8, 16), &Device::Cpu).unwrap();
        let far = (Tensor::ones((8, 16), DType::F32, &Device::Cpu).unwrap() * 4.0).unwrap();
        let s_normal = scorer.score(&normal).unwrap().scores;
        let s_far = scorer.score(&far).unwrap().scores;
        let max_normal = s_normal.iter().cloned().fold(f32::MIN, f32::max);
        let min_far = s_far.iter().cloned().fold(f32::MAX, f32::min);
        assert!(min_far > max_normal, "{s_normal:?} {s_far:?}");
        // Seeded: the same scores twice; maps for images.
        assert_eq!(scorer.score(&normal).unwrap().scores, s_normal);
        let img = Tensor::zeros((2, 1, 4, 5), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(scorer.score(&img).unwrap().map.unwrap().dims(), &[2, 4, 5]);
    }

    #[test]
    fn the_noise_free_score_is_the_exact_score_norm() {
        // For N(0, 1) data, eps_theta(x_t) = sqrt(1 - ab) x_t exactly, so at x_t = sqrt(ab) x
        // the score is ab (1 - ab) x^2 per element, whatever the seed.
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let ab = schedule.alphas_cumprod()[99];
        let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, Default::default()).unwrap();
        let cfg = DenoisingErrorConfig {
            timesteps: vec![99],
            draws: 3,
            seed: 5,
            noise_free: true,
        };
        let scorer = DenoisingErrorScorer::new(model, schedule, cfg).unwrap();
        let x = Tensor::new(&[[2f32, 2.0], [0.5, -0.5]], &Device::Cpu).unwrap();
        let s = scorer.score(&x).unwrap().scores;
        for (got, x2) in s.iter().zip([4.0, 0.25]) {
            let want = (ab * (1.0 - ab) * x2) as f32;
            assert!(
                (got - want).abs() <= 1e-5 * want.max(1.0),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, Default::default()).unwrap();
        let cfg = DenoisingErrorConfig {
            timesteps: vec![1000],
            ..Default::default()
        };
        let e = DenoisingErrorScorer::new(model, schedule, cfg).unwrap_err();
        assert!(e.to_string().contains("timestep 1000"), "{e}");
    }
}
