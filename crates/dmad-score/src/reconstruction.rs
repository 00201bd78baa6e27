//! Reconstruction by partial diffusion and the reconstruction score `E_recon`.

use candle_core::{DType, Tensor};
use dmad_core::Denoiser;
use dmad_diffusion::{
    reconstruct, start_index, Conditioned, NoiseSchedule, Sampler, SeededNoise, Start,
};

use crate::scorer::{check_batch, ScoreOutput, Scorer};
use crate::{Error, Result};

/// The configuration of a [`Reconstructor`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReconstructionConfig {
    /// Where partial diffusion starts in the sampler's plan (a strength, a plan index or a
    /// training timestep; see [`Start`]). Default `Start::Strength(0.5)`: half of the plan.
    pub start: Start,
    /// The number of independent noise draws to average over (each draw noises `x0` afresh
    /// and denoises it). Default 1. At least 1.
    pub draws: usize,
    /// The seed of the noise. Draw `d` uses [`SeededNoise`] seeded with [`draw_seed`]`(seed,
    /// d)`. Default 0.
    pub seed: u64,
}

impl Default for ReconstructionConfig {
    fn default() -> Self {
        Self {
            start: Start::Strength(0.5),
            draws: 1,
            seed: 0,
        }
    }
}

/// The seed of noise draw `draw` of a scorer seeded with `seed`:
/// `seed + draw * 0x9E37_79B9_7F4A_7C15` (wrapping), so draws are independent streams.
pub fn draw_seed(seed: u64, draw: usize) -> u64 {
    seed.wrapping_add((draw as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Reconstructs samples by partial diffusion: noise `x0` to the start step of the sampler's
/// plan, then denoise back to `t = 0` with the rest of the plan (`dmad_diffusion::reconstruct`).
///
/// The noise is injected and seeded ([`ReconstructionConfig::seed`]): the same batch gives the
/// same reconstructions on every call. The noise of a sample depends on its position in the
/// batch, so score a data set with the same batching to reproduce it exactly.
#[derive(Debug, Clone)]
pub struct Reconstructor<D, S> {
    denoiser: D,
    sampler: S,
    cfg: ReconstructionConfig,
    condition: Option<(NoiseSchedule, f64)>,
    mean_of_draws: bool,
}

impl<D: Denoiser, S: Sampler + Clone> Reconstructor<D, S> {
    /// A reconstructor denoising with `denoiser` through `sampler` (built with the number of
    /// steps wanted; see `dmad_diffusion::partial_timesteps` for "noise to `t_start`, denoise in
    /// `k` steps").
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] if `draws` is 0; [`Error::Diffusion`] if the start
    /// leaves no step of the plan or the denoiser's prediction type is not the sampler's.
    pub fn new(denoiser: D, sampler: S, cfg: ReconstructionConfig) -> Result<Self> {
        if cfg.draws == 0 {
            return Err(Error::config("draws", "must be at least 1"));
        }
        start_index(sampler.timesteps(), cfg.start)?;
        if denoiser.prediction_type() != sampler.prediction_type() {
            return Err(Error::config(
                "prediction_type",
                format!(
                    "the denoiser predicts {} but the sampler expects {}",
                    denoiser.prediction_type(),
                    sampler.prediction_type()
                ),
            ));
        }
        Ok(Self {
            denoiser,
            sampler,
            cfg,
            condition: None,
            mean_of_draws: false,
        })
    }

    /// With `mean`, [`Reconstructor::reconstruct`] returns one reconstruction, the mean of the
    /// draws' (a Monte-Carlo estimate of the posterior mean of the reconstruction given the
    /// input), so a scorer compares the input with it instead of averaging the draws' errors.
    /// The random detail a model regenerates differently in every draw (a texture, a machine's
    /// noise) averages out of the mean; what it replaces in every draw (the anomaly) does not.
    /// Without it (the default) each draw is its own reconstruction.
    pub fn mean_of_draws(mut self, mean: bool) -> Self {
        self.mean_of_draws = mean;
        self
    }

    /// Whether [`Reconstructor::reconstruct`] returns the mean of the draws.
    pub fn averages_draws(&self) -> bool {
        self.mean_of_draws
    }

    /// Conditions every reconstruction on its input with DDAD's weight `weight`
    /// ([`Conditioned`]: each step's clean-sample estimate moves a fraction `min(1, w (1 -
    /// alpha_bar))` toward the input; 0 leaves the reconstruction unguided). `schedule` is the
    /// one the denoiser was trained with.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (field `condition`) unless `weight` is finite and
    /// `>= 0`.
    pub fn conditioned(mut self, schedule: &NoiseSchedule, weight: f64) -> Result<Self> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(Error::config(
                "condition",
                format!("the conditioning weight must be finite and >= 0, got {weight}"),
            ));
        }
        self.condition = (weight > 0.0).then(|| (schedule.clone(), weight));
        Ok(self)
    }

    /// DDAD's conditioning weight (0: unguided).
    pub fn condition(&self) -> f64 {
        self.condition.as_ref().map_or(0.0, |c| c.1)
    }

    /// The configuration.
    pub fn config(&self) -> &ReconstructionConfig {
        &self.cfg
    }

    /// The denoiser.
    pub fn denoiser(&self) -> &D {
        &self.denoiser
    }

    /// The sampler (as built; each reconstruction runs on a fresh copy).
    pub fn sampler(&self) -> &S {
        &self.sampler
    }

    /// One reconstruction of `x0` per noise draw, or with [`Reconstructor::mean_of_draws`] their
    /// mean.
    ///
    /// # Shapes
    /// `x0`: `[batch, ...]`; returns `draws` tensors (one with the mean) of `x0`'s shape.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] for an empty batch; any error of the denoiser or the
    /// sampler.
    pub fn reconstruct(&self, x0: &Tensor) -> Result<Vec<Tensor>> {
        check_batch(x0, "Reconstructor::reconstruct: x0", &[2, 3, 4, 5])?;
        let draws = self.draws(x0)?;
        if self.mean_of_draws && draws.len() > 1 {
            let n = draws.len() as f64;
            return Ok(vec![(Tensor::stack(&draws, 0)?.sum(0)? / n)?]);
        }
        Ok(draws)
    }

    fn draws(&self, x0: &Tensor) -> Result<Vec<Tensor>> {
        (0..self.cfg.draws)
            .map(|d| {
                let mut sampler = self.sampler.clone();
                let mut noise = SeededNoise::new(draw_seed(self.cfg.seed, d));
                Ok(match &self.condition {
                    None => {
                        reconstruct(&self.denoiser, &mut sampler, x0, self.cfg.start, &mut noise)?
                    }
                    Some((schedule, w)) => {
                        let guided = Conditioned::new(&self.denoiser, schedule, x0.clone(), *w)?;
                        reconstruct(&guided, &mut sampler, x0, self.cfg.start, &mut noise)?
                    }
                })
            })
            .collect()
    }
}

/// The squared error of a reconstruction: per sample the mean of `(x0 - x0_hat)^2` over all
/// its elements (`||x0 - x0_hat||^2` divided by the number of elements, so scores of inputs of
/// different sizes are comparable) and, for inputs with positions, the map of that error
/// averaged over the channel axis.
///
/// # Shapes
/// `x0`, `x0_hat`: `[batch, features]` (no map), `[batch, channel, length]` (map `[batch,
/// length]`) or `[batch, channel, height, width]` (map `[batch, height, width]`).
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] if the shapes differ or the batch is empty.
pub fn squared_error(x0: &Tensor, x0_hat: &Tensor) -> Result<ScoreOutput> {
    check_batch(x0, "squared_error: x0", &[2, 3, 4])?;
    if x0.dims() != x0_hat.dims() {
        return Err(Error::shape(
            "squared_error: x0_hat",
            format!("{:?} (the shape of x0)", x0.dims()),
            x0_hat.dims(),
        ));
    }
    let d = (x0.to_dtype(DType::F32)? - x0_hat.to_dtype(DType::F32)?)?.sqr()?;
    per_sample_and_map(&d)
}

/// Per-sample means of an elementwise error `[batch, ...]`, and its channel mean as a map for
/// rank 3 and 4.
pub(crate) fn per_sample_and_map(d: &Tensor) -> Result<ScoreOutput> {
    let b = d.dim(0)?;
    let scores = d.reshape((b, ()))?.mean(1)?.to_vec1::<f32>()?;
    let map = if d.rank() >= 3 {
        Some(d.mean(1)?)
    } else {
        None
    };
    Ok(ScoreOutput { scores, map })
}

/// Averages several outputs of the same batch (scores and maps elementwise).
pub(crate) fn average(outputs: Vec<ScoreOutput>) -> Result<ScoreOutput> {
    let n = outputs.len();
    if n == 1 {
        return Ok(outputs.into_iter().next().expect("one output"));
    }
    let b = outputs[0].scores.len();
    let mut scores = vec![0f32; b];
    for o in &outputs {
        for (s, v) in scores.iter_mut().zip(&o.scores) {
            *s += v;
        }
    }
    scores.iter_mut().for_each(|s| *s /= n as f32);
    let map = match outputs[0].map {
        Some(_) => {
            let maps: Vec<&Tensor> = outputs.iter().filter_map(|o| o.map.as_ref()).collect();
            Some((Tensor::stack(&maps, 0)?.sum(0)? / n as f64)?)
        }
        None => None,
    };
    Ok(ScoreOutput { scores, map })
}

/// The reconstruction score `E_recon = ||x0 - x0_hat||^2` (per element, see
/// [`squared_error`]) after partial diffusion, with a map per pixel or per time step, averaged
/// over the reconstructor's noise draws.
///
/// # Shapes
/// `x`: `[batch, features]`, `[batch, channel, length]` or `[batch, channel, height, width]`;
/// the map (rank 3 and 4) has the input's spatial size.
///
/// # Example
/// The exact denoiser of `N(0, 1)` data scores samples far from 0 higher:
/// ```
/// use candle_core::{Device, Tensor};
/// use dmad_diffusion::{DdimConfig, DdimSampler, GaussianDenoiser, NoiseScheduleConfig};
/// use dmad_score::{ReconstructionConfig, ReconstructionScorer, Reconstructor, Scorer};
///
/// # fn main() -> dmad_score::Result<()> {
/// let schedule = NoiseScheduleConfig::default().build()?;
/// let model = GaussianDenoiser::new(&schedule, 0.0, 1.0, Default::default())?;
/// let ddim = DdimSampler::new(&schedule, DdimConfig { num_inference_steps: 10, ..Default::default() })?;
/// let rec = Reconstructor::new(model, ddim, ReconstructionConfig::default())?;
/// let scorer = ReconstructionScorer::new(rec);
/// let x = Tensor::new(&[[[[0.1f32, -0.2], [0.3, 0.0]]], [[[4.0, 4.0], [4.0, 4.0]]]], &Device::Cpu)?;
/// let out = scorer.score(&x)?;
/// assert!(out.scores[1] > out.scores[0]);
/// assert_eq!(out.map.unwrap().dims(), &[2, 2, 2]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReconstructionScorer<D, S> {
    rec: Reconstructor<D, S>,
}

impl<D: Denoiser, S: Sampler + Clone> ReconstructionScorer<D, S> {
    /// The reconstruction scorer of `rec`.
    pub fn new(rec: Reconstructor<D, S>) -> Self {
        Self { rec }
    }

    /// The reconstructor.
    pub fn reconstructor(&self) -> &Reconstructor<D, S> {
        &self.rec
    }
}

impl<D: Denoiser, S: Sampler + Clone> Scorer for ReconstructionScorer<D, S> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        check_batch(x, "ReconstructionScorer::score: x", &[2, 3, 4])?;
        let outs = self
            .rec
            .reconstruct(x)?
            .iter()
            .map(|r| squared_error(x, r))
            .collect::<Result<Vec<_>>>()?;
        average(outs)
    }
}
