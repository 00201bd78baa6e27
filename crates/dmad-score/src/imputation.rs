//! The imputation score of series windows: how badly an imputation denoiser fills masked
//! segments of a window from the rest of it.
//!
//! Diffusion methods that work on series (ImDiffusion, arXiv 2307.00754; DiffAD; D3R) impute
//! masked parts of a window conditioned on the rest rather than reconstruct the whole window
//! from noise: a normal step is predicted well from its context, an anomalous one is not. Here
//! each window is masked by every shift of a grating ([`GratingMasks::shifts`]), the masked
//! steps are noised to each of several levels ([`crate::levels`]; at strength 1 they carry
//! almost no information and the prediction is a pure imputation), and the denoiser's estimate
//! of the clean window is compared with the window at the masked steps. One network call per
//! shift, level and draw; no sampler run. The per-step map is what a series needs: its mean over
//! the windows covering a point is the point's score.

use candle_core::{DType, Tensor};
use dmad_core::masking::{imputation_input, masked_squared_error, GratingMasks};
use dmad_core::{Denoiser, PredictionType};
use dmad_diffusion::{NoiseSchedule, NoiseSource, SeededNoise};

use crate::reconstruction::draw_seed;
use crate::scorer::check_batch;
use crate::{Error, Result, ScoreOutput};

/// Configuration of [`ImputationScorer`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ImputationConfig {
    /// The masks; the denoiser must have been trained with the same segment.
    pub masks: GratingMasks,
    /// Shifts of the grating per window, evenly spaced over its period (2: the two
    /// complementary masks, every step imputed once). Default 2.
    pub phases: usize,
    /// The training timesteps the masked steps are noised to, each in `[0, T - 1]`. Default
    /// [`crate::levels`]`(4, 1.0, 1000)`.
    pub timesteps: Vec<usize>,
    /// Seeded noise draws per timestep. Default 1.
    pub draws: usize,
    /// Seed of the noise. Default 0.
    pub seed: u64,
}

impl Default for ImputationConfig {
    fn default() -> Self {
        Self {
            masks: GratingMasks { segment: 8 },
            phases: 2,
            timesteps: crate::levels(4, 1.0, 1000),
            draws: 1,
            seed: 0,
        }
    }
}

/// The squared imputation error of each masked step, averaged over channels, shifts, levels
/// and draws; the window's score is the mean of its map.
///
/// The denoiser takes [`imputation_input`] (`[batch, channels + 1, length]`) and predicts
/// `[batch, channels, length]` of its prediction type; the error is measured on its estimate of
/// the clean window (`sample`), so levels near pure noise do not amplify it.
///
/// # Shapes
/// `x`: `[batch, channels, length]`; the map is `[batch, length]`.
#[derive(Debug, Clone)]
pub struct ImputationScorer<D> {
    denoiser: D,
    schedule: NoiseSchedule,
    cfg: ImputationConfig,
}

impl<D: Denoiser> ImputationScorer<D> {
    /// The scorer of `denoiser`, trained with `schedule` and `cfg.masks`.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] for no timesteps, a timestep outside the schedule,
    /// zero draws or phases, or a zero segment.
    pub fn new(denoiser: D, schedule: NoiseSchedule, cfg: ImputationConfig) -> Result<Self> {
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
        if cfg.draws == 0 || cfg.phases == 0 {
            return Err(Error::config(
                "draws",
                "draws and phases must be at least 1",
            ));
        }
        if cfg.masks.segment == 0 {
            return Err(Error::config("segment", "must be at least 1"));
        }
        Ok(Self {
            denoiser,
            schedule,
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ImputationConfig {
        &self.cfg
    }
}

impl<D: Denoiser> crate::Scorer for ImputationScorer<D> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        let b = check_batch(x, "ImputationScorer::score: x", &[3])?;
        let x = x.to_dtype(DType::F32)?;
        let (channels, length) = (x.dim(1)?, x.dim(2)?);
        self.cfg.masks.validate(length)?;
        let kind = self.denoiser.prediction_type();
        let dev = x.device();
        let mut sum = Tensor::zeros((b, length), DType::F32, dev)?;
        let mut count = Tensor::zeros((1, length), DType::F32, dev)?;
        for shift in self.cfg.masks.shifts(self.cfg.phases) {
            let one = self.cfg.masks.mask_tensor(length, &[shift], dev)?;
            let mask = one.repeat((b, 1, 1))?;
            for d in 0..self.cfg.draws {
                let mut noise_source =
                    SeededNoise::new(draw_seed(self.cfg.seed, d).wrapping_add(shift as u64));
                for &t in &self.cfg.timesteps {
                    let noise = noise_source.draw(x.dims(), dev)?;
                    let ts = Tensor::from_vec(vec![t as u32; b], b, dev)?;
                    let x_t = self.schedule.add_noise(&x, &noise, &ts)?;
                    let input = imputation_input(&x_t, &x, &mask)?;
                    let out = self.denoiser.predict(&input, &ts)?;
                    if out.dims() != [b, channels, length] {
                        return Err(Error::shape(
                            "ImputationScorer: the denoiser's output",
                            format!("[{b}, {channels}, {length}] (the window's channels)"),
                            out.dims(),
                        ));
                    }
                    let x0_hat = self.schedule.convert_prediction(
                        &out.to_dtype(DType::F32)?,
                        kind,
                        PredictionType::Sample,
                        &x_t,
                        &ts,
                    )?;
                    sum = (sum + masked_squared_error(&x0_hat, &x, &mask)?)?;
                    count = (count + one.squeeze(1)?)?;
                }
            }
        }
        let map = sum.broadcast_div(&count.clamp(1f32, f32::MAX)?)?;
        let scores = map.mean(1)?.to_vec1::<f32>()?;
        Ok(ScoreOutput {
            scores,
            map: Some(map),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scorer;
    use candle_core::Device;
    use dmad_diffusion::NoiseScheduleConfig;

    /// An imputer of smooth series: each masked step gets the mean of the nearest observed
    /// steps on either side; it predicts the clean sample.
    #[derive(Debug)]
    struct NeighbourMean;

    impl Denoiser for NeighbourMean {
        fn predict(&self, input: &Tensor, _t: &Tensor) -> dmad_core::Result<Tensor> {
            let (b, c1, l) = input.dims3()?;
            let v = input.to_vec3::<f32>()?;
            let mut out = Vec::with_capacity(b * (c1 - 1) * l);
            for s in &v {
                let mask = &s[c1 - 1];
                for ch in &s[..c1 - 1] {
                    for i in 0..l {
                        if mask[i] == 0.0 {
                            out.push(ch[i]);
                            continue;
                        }
                        let left = (0..i).rev().find(|&j| mask[j] == 0.0).map(|j| ch[j]);
                        let right = (i + 1..l).find(|&j| mask[j] == 0.0).map(|j| ch[j]);
                        out.push(match (left, right) {
                            (Some(a), Some(b)) => (a + b) / 2.0,
                            (Some(a), None) | (None, Some(a)) => a,
                            (None, None) => 0.0,
                        });
                    }
                }
            }
            Tensor::from_vec(out, (b, c1 - 1, l), input.device()).map_err(Into::into)
        }

        fn prediction_type(&self) -> PredictionType {
            PredictionType::Sample
        }
    }

    #[test]
    fn a_spike_in_a_smooth_window_peaks_the_map_at_the_spike() {
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let cfg = ImputationConfig {
            masks: GratingMasks { segment: 1 },
            timesteps: vec![999],
            ..ImputationConfig::default()
        };
        let scorer = ImputationScorer::new(NeighbourMean, schedule, cfg).unwrap();
        let smooth: Vec<f32> = (0..32).map(|i| (i as f32 / 5.0).sin()).collect();
        let mut spiky = smooth.clone();
        spiky[13] += 3.0;
        let x = Tensor::from_vec([smooth, spiky].concat(), (2, 1, 32), &Device::Cpu).unwrap();
        let out = scorer.score(&x).unwrap();
        assert!(out.scores[1] > 5.0 * out.scores[0], "{:?}", out.scores);
        let map = out.map.unwrap().to_vec2::<f32>().unwrap();
        let arg = (1..31)
            .max_by(|&a, &b| map[1][a].total_cmp(&map[1][b]))
            .unwrap();
        assert_eq!(arg, 13);
        // Seeded and deterministic.
        assert_eq!(scorer.score(&x).unwrap().scores, out.scores);
    }

    #[test]
    fn bad_input_is_named() {
        let schedule = NoiseScheduleConfig::default().build().unwrap();
        let cfg = ImputationConfig {
            masks: GratingMasks { segment: 16 },
            ..ImputationConfig::default()
        };
        let scorer = ImputationScorer::new(NeighbourMean, schedule.clone(), cfg).unwrap();
        let short = Tensor::zeros((1, 1, 16), DType::F32, &Device::Cpu).unwrap();
        let e = scorer.score(&short).unwrap_err().to_string();
        assert!(e.contains("segment"), "{e}");
        let flat = Tensor::zeros((2, 16), DType::F32, &Device::Cpu).unwrap();
        assert!(scorer.score(&flat).is_err());
        let e = ImputationScorer::new(
            NeighbourMean,
            schedule,
            ImputationConfig {
                phases: 0,
                ..ImputationConfig::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("phases"), "{e}");
    }
}
