//! The sampling loops: full sampling from noise, and partial diffusion for reconstruction.

use candle_core::Tensor;
use dmad_core::Denoiser;

use crate::noise::NoiseSource;
use crate::sampler::Sampler;
use crate::util::{batch_of, timestep_tensor};
use crate::{Error, Result};

/// The samples a loop went through.
#[derive(Debug, Clone)]
pub struct Trajectory {
    /// The timestep of each sample but the last: `timesteps[i]` is the timestep of
    /// `samples[i]`; the last sample is the result.
    pub timesteps: Vec<f64>,
    /// The starting sample, then the sample after each step; the last one is the result.
    pub samples: Vec<Tensor>,
}

impl Trajectory {
    /// The final sample.
    ///
    /// # Panics
    /// Never for trajectories made by this crate, which hold at least the start.
    pub fn result(&self) -> &Tensor {
        self.samples.last().expect("a trajectory holds its start")
    }
}

/// Where partial diffusion starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    /// The fraction of the plan to run, in `(0, 1]`, as diffusers' img2img `strength`: with
    /// `n` plan steps, the last `floor(n * strength)` are run.
    Strength(f64),
    /// The index into [`Sampler::timesteps`] of the first step.
    Index(usize),
    /// The first plan timestep at or below this training timestep.
    Timestep(f64),
}

fn check_prediction<D: Denoiser + ?Sized, S: Sampler + ?Sized>(d: &D, s: &S) -> Result<()> {
    if d.prediction_type() != s.prediction_type() {
        return Err(Error::InvalidConfig {
            field: "prediction_type",
            reason: format!(
                "the denoiser predicts {} but the sampler expects {}",
                d.prediction_type(),
                s.prediction_type()
            ),
        });
    }
    Ok(())
}

/// Runs the sampler's plan from index `start` on `x`.
fn run<D, S, N>(
    denoiser: &D,
    sampler: &mut S,
    x: &Tensor,
    noise: &mut N,
    start: usize,
    record: bool,
) -> Result<Trajectory>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
    N: NoiseSource + ?Sized,
{
    check_prediction(denoiser, sampler)?;
    let batch = batch_of(x, "sample: x")?;
    sampler.reset();
    let plan: Vec<f64> = sampler.timesteps()[start..].to_vec();
    let mut x = x.clone();
    let mut traj = Trajectory {
        timesteps: plan.clone(),
        samples: vec![x.clone()],
    };
    for &tv in &plan {
        let t = timestep_tensor(&vec![tv; batch], x.device())?;
        let x_in = sampler.scale_model_input(&x, &t)?;
        // The loops are inference: the model output and each new sample are detached, so no
        // autograd graph (with every step's activations) builds up across the steps.
        let out = denoiser.predict(&x_in, &t)?.detach();
        let z = if sampler.needs_noise() {
            Some(noise.draw(x.dims(), x.device())?)
        } else {
            None
        };
        x = sampler.step(&out, &t, &x, z.as_ref())?.detach();
        if record {
            traj.samples.push(x.clone());
        }
    }
    if !record {
        traj.samples = vec![x];
    }
    Ok(traj)
}

/// Runs every step of `sampler`'s plan from `x_t`, which must be at the plan's first timestep
/// (for sampling: standard normal noise times [`Sampler::init_noise_sigma`]; for
/// [`crate::DdimInverseSampler`]: the clean data). Returns the final sample.
///
/// `noise` supplies the per-step noise of stochastic samplers.
///
/// # Shapes
/// `x_t`: `[batch, ...]`; returns the same shape.
///
/// # Errors
/// [`Error::InvalidConfig`] if the denoiser's prediction type is not the sampler's; any error
/// of the denoiser or the sampler.
///
/// # Example
/// ```
/// use candle_core::Device;
/// use dmad_diffusion::{sample, DdimConfig, DdimSampler, GaussianDenoiser, NoiseScheduleConfig,
///     NoiseSource, SeededNoise};
///
/// # fn main() -> dmad_diffusion::Result<()> {
/// let schedule = NoiseScheduleConfig::default().build()?;
/// let model = GaussianDenoiser::new(&schedule, 1.0, 0.5, Default::default())?;
/// let mut ddim = DdimSampler::new(&schedule, DdimConfig { num_inference_steps: 20, ..Default::default() })?;
/// let mut noise = SeededNoise::new(0);
/// let x_t = noise.draw(&[4, 1, 8, 8], &Device::Cpu)?;
/// let x0 = sample(&model, &mut ddim, &x_t, &mut noise)?;
/// assert_eq!(x0.dims(), &[4, 1, 8, 8]);
/// # Ok(())
/// # }
/// ```
pub fn sample<D, S, N>(denoiser: &D, sampler: &mut S, x_t: &Tensor, noise: &mut N) -> Result<Tensor>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
    N: NoiseSource + ?Sized,
{
    let traj = run(denoiser, sampler, x_t, noise, 0, false)?;
    Ok(traj
        .samples
        .into_iter()
        .next_back()
        .unwrap_or_else(|| x_t.clone()))
}

/// As [`sample`], keeping every intermediate sample.
///
/// # Errors
/// As [`sample`].
pub fn sample_trajectory<D, S, N>(
    denoiser: &D,
    sampler: &mut S,
    x_t: &Tensor,
    noise: &mut N,
) -> Result<Trajectory>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
    N: NoiseSource + ?Sized,
{
    run(denoiser, sampler, x_t, noise, 0, true)
}

/// The plan index where partial diffusion starts.
///
/// # Errors
/// [`Error::InvalidConfig`] (field `strength`) if the start leaves no step to run.
pub fn start_index(timesteps: &[f64], start: Start) -> Result<usize> {
    let n = timesteps.len();
    let bad = |reason: String| Error::InvalidConfig {
        field: "strength",
        reason,
    };
    match start {
        Start::Strength(s) => {
            if !(s > 0.0 && s <= 1.0) {
                return Err(bad(format!("must be in (0, 1], got {s}")));
            }
            let init = ((n as f64 * s).floor() as usize).min(n);
            if init == 0 {
                return Err(bad(format!("strength {s} runs no step of a {n}-step plan")));
            }
            Ok(n - init)
        }
        Start::Index(i) if i < n => Ok(i),
        Start::Index(i) => Err(bad(format!("start index {i} is past the {n}-step plan"))),
        Start::Timestep(t) => timesteps
            .iter()
            .position(|&p| p <= t)
            .ok_or_else(|| bad(format!("no plan timestep at or below {t}"))),
    }
}

/// Partial diffusion for reconstruction: noises the clean samples `x0` to the plan timestep
/// chosen by `start` (with the sampler's [`Sampler::add_noise`] and noise from `noise`), then
/// denoises back to `t = 0` with the remaining steps of the plan. Returns the reconstruction.
///
/// To go from a given timestep `t_start` back in exactly `k` steps, build the sampler with
/// custom `timesteps` from [`crate::partial_timesteps`]`(t_start, k)` and use
/// `Start::Index(0)`.
///
/// # Shapes
/// `x0`: `[batch, ...]`; returns the same shape.
///
/// # Errors
/// [`Error::InvalidConfig`] for a start that leaves no step or a prediction-type mismatch;
/// any error of the denoiser or the sampler.
pub fn reconstruct<D, S, N>(
    denoiser: &D,
    sampler: &mut S,
    x0: &Tensor,
    start: Start,
    noise: &mut N,
) -> Result<Tensor>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
    N: NoiseSource + ?Sized,
{
    let traj = reconstruct_impl(denoiser, sampler, x0, start, noise, false)?;
    Ok(traj
        .samples
        .into_iter()
        .next_back()
        .unwrap_or_else(|| x0.clone()))
}

/// As [`reconstruct`], keeping every intermediate sample (the first is the noised `x0`).
///
/// # Errors
/// As [`reconstruct`].
pub fn reconstruct_trajectory<D, S, N>(
    denoiser: &D,
    sampler: &mut S,
    x0: &Tensor,
    start: Start,
    noise: &mut N,
) -> Result<Trajectory>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
    N: NoiseSource + ?Sized,
{
    reconstruct_impl(denoiser, sampler, x0, start, noise, true)
}

fn reconstruct_impl<D, S, N>(
    denoiser: &D,
    sampler: &mut S,
    x0: &Tensor,
    start: Start,
    noise: &mut N,
    record: bool,
) -> Result<Trajectory>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
    N: NoiseSource + ?Sized,
{
    check_prediction(denoiser, sampler)?;
    let batch = batch_of(x0, "reconstruct: x0")?;
    let i = start_index(sampler.timesteps(), start)?;
    let t0 = sampler.timesteps()[i];
    let t = timestep_tensor(&vec![t0; batch], x0.device())?;
    let z = noise.draw(x0.dims(), x0.device())?;
    let x_t = sampler.add_noise(x0, &z, &t)?;
    run(denoiser, sampler, &x_t, noise, i, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_indices() {
        let plan: Vec<f64> = (0..10).rev().map(|i| i as f64 * 100.0).collect();
        assert_eq!(start_index(&plan, Start::Strength(1.0)).unwrap(), 0);
        assert_eq!(start_index(&plan, Start::Strength(0.3)).unwrap(), 7);
        assert_eq!(start_index(&plan, Start::Index(4)).unwrap(), 4);
        assert_eq!(start_index(&plan, Start::Timestep(450.0)).unwrap(), 5);
        for bad in [
            Start::Strength(0.05),
            Start::Strength(0.0),
            Start::Strength(1.5),
            Start::Index(10),
            Start::Timestep(-1.0),
        ] {
            assert!(
                matches!(start_index(&plan, bad), Err(Error::InvalidConfig { .. })),
                "{bad:?}"
            );
        }
    }
}
