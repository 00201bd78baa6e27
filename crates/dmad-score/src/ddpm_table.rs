//! The plain DDPM reconstruction scorer for tables, the DDPM baseline of the DTE paper.

use candle_core::{DType, Device, Tensor};
use dmad_core::Denoiser;
use dmad_diffusion::{
    sample_trajectory, DdpmConfig, DdpmSampler, NoiseSchedule, NoiseSource, Sampler, SeededNoise,
};

use crate::scorer::{check_batch, ScoreOutput, Scorer};
use crate::{Error, Result};

/// The configuration of [`DdpmTableScorer`]; the defaults are the DTE paper's DDPM baseline
/// (trained with `T = 1000` and a linear schedule of betas `1e-4..1e-2`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct DdpmTableConfig {
    /// The number of denoising steps: the row is taken as `x_t` at `t = reconstruction_t - 1`
    /// and denoised through every timestep down to 0. Default 250. In `1..=T`.
    pub reconstruction_t: usize,
    /// Noise the row to `t = reconstruction_t - 1` first (`sqrt(alpha_bar) x +
    /// sqrt(1 - alpha_bar) eps`, seeded). Default `false`: the baseline denoises the clean row
    /// as it is.
    pub add_noise: bool,
    /// Score the whole path, `sum over steps of mean_f (x_prev - x_next)^2` starting from the
    /// row, instead of the final error `mean_f (x - x_0_hat)^2`. Default `false`.
    pub full_path: bool,
    /// The seed of the noise of `add_noise`. Default 0.
    pub seed: u64,
}

impl Default for DdpmTableConfig {
    fn default() -> Self {
        Self {
            reconstruction_t: 250,
            add_noise: false,
            full_path: false,
            seed: 0,
        }
    }
}

/// The DDPM baseline of DTE (arXiv 2305.18593) for tables `[n, features]`: a row is denoised
/// from `t = reconstruction_t - 1` to 0 with deterministic DDPM steps (the posterior mean,
/// `x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_t)`, no added noise),
/// and the score is the mean squared reconstruction error over the features. The denoiser is
/// usually `dmad_unet::MlpDenoiser` trained on the normal rows.
#[derive(Debug, Clone)]
pub struct DdpmTableScorer<D> {
    denoiser: D,
    sampler: DdpmSampler,
    cfg: DdpmTableConfig,
}

impl<D: Denoiser> DdpmTableScorer<D> {
    /// The scorer of `denoiser`, trained with `schedule`.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] if `reconstruction_t` is not in `1..=T`.
    pub fn new(denoiser: D, schedule: &NoiseSchedule, cfg: DdpmTableConfig) -> Result<Self> {
        let t = schedule.num_train_timesteps();
        if cfg.reconstruction_t == 0 || cfg.reconstruction_t > t {
            return Err(Error::config(
                "reconstruction_t",
                format!("must be in 1..={t}, got {}", cfg.reconstruction_t),
            ));
        }
        let timesteps: Vec<u32> = (0..cfg.reconstruction_t as u32).rev().collect();
        let sampler = DdpmSampler::new(
            schedule,
            DdpmConfig {
                timesteps: Some(timesteps),
                prediction_type: denoiser.prediction_type(),
                ..Default::default()
            },
        )?;
        Ok(Self {
            denoiser,
            sampler,
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DdpmTableConfig {
        &self.cfg
    }
}

/// No noise: DDPM steps become posterior means.
fn zeros(shape: &[usize], device: &Device) -> dmad_diffusion::Result<Tensor> {
    Ok(Tensor::zeros(shape, DType::F32, device)?)
}

fn row_mse(a: &Tensor, b: &Tensor) -> Result<Vec<f32>> {
    Ok((a - b)?.sqr()?.mean(1)?.to_vec1::<f32>()?)
}

impl<D: Denoiser> Scorer for DdpmTableScorer<D> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        let b = check_batch(x, "DdpmTableScorer::score: x", &[2])?;
        let x = x.to_dtype(DType::F32)?;
        let start = if self.cfg.add_noise {
            let t0 = (self.cfg.reconstruction_t - 1) as u32;
            let z = SeededNoise::new(self.cfg.seed).draw(x.dims(), x.device())?;
            let t = Tensor::new(vec![t0; b], x.device())?;
            self.sampler.add_noise(&x, &z, &t)?
        } else {
            x.clone()
        };
        let mut sampler = self.sampler.clone();
        let mut noise = zeros;
        let traj = sample_trajectory(&self.denoiser, &mut sampler, &start, &mut noise)?;
        let scores = if self.cfg.full_path {
            let mut total = vec![0f32; b];
            let mut prev = &x;
            for next in &traj.samples[1..] {
                for (s, v) in total.iter_mut().zip(row_mse(prev, next)?) {
                    *s += v;
                }
                prev = next;
            }
            total
        } else {
            row_mse(&x, traj.result())?
        };
        Ok(ScoreOutput { scores, map: None })
    }
}
