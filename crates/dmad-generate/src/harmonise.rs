//! RePaint-style masked partial diffusion: the masked region is denoised, the rest stays tied
//! to the forward-noised original (Lugmayr et al., *RePaint: Inpainting using Denoising
//! Diffusion Probabilistic Models*, arXiv 2201.09865), started part of the way, as img2img.

use candle_core::{DType, Tensor};
use dmad_core::Denoiser;
use dmad_diffusion::{start_index, NoiseSource, Sampler, SeededNoise, Start};

use crate::{Error, Result};

/// Where harmonisation starts and its noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HarmoniseConfig {
    /// The start in the sampler's plan. Default `Start::Strength(0.3)`: the last 30 % of the
    /// plan; larger starts harmonise more and keep less of the perturbation.
    pub start: Start,
    /// The seed of the forward noise (of the perturbed sample, of the original at every step
    /// and of stochastic steps). Default 0.
    pub seed: u64,
    /// RePaint's resampling: after each step but the last, the sample is noised back to the
    /// step's timestep and the step is run again, this many times, so that the denoised region
    /// and the tied region agree better. Default 0 (a single pass). Meant for one-step
    /// samplers (DDIM, DDPM, Euler); a multistep sampler (DPM-Solver++) keeps each repeated
    /// step in its history.
    pub resample: usize,
}

impl Default for HarmoniseConfig {
    fn default() -> Self {
        Self {
            start: Start::Strength(0.3),
            seed: 0,
            resample: 0,
        }
    }
}

/// Harmonises `perturbed` (an anomaly injected into `original`) with masked partial
/// diffusion: `perturbed` is noised to the start step of `sampler`'s plan; at each step the
/// denoised sample is kept where `mask` is 1 and replaced by the original forward-noised to the
/// next plan timestep where `mask` is 0; after the last step the unmasked region is the
/// original itself. So the defect is blended into its surroundings while the rest of the
/// sample is exactly the original (up to `0 * x = 0`, exact for finite values).
///
/// For table rows this is the few-step projection back towards the normal manifold: build the
/// sampler with few steps, mask the changed columns.
///
/// # Shapes
/// `original`, `perturbed`: `[batch, ...]`; `mask`: the same shape, or one that broadcasts to it
/// (for example `[batch, 1, height, width]`), values in `{0, 1}`.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the shapes differ or the mask does not broadcast;
/// [`Error::Diffusion`] for a start that runs no step or a prediction-type mismatch; errors of
/// the denoiser.
pub fn harmonise<D, S>(
    denoiser: &D,
    sampler: &mut S,
    original: &Tensor,
    perturbed: &Tensor,
    mask: &Tensor,
    cfg: &HarmoniseConfig,
) -> Result<Tensor>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
{
    if original.dims() != perturbed.dims() || original.rank() < 2 {
        return Err(Error::shape(
            "harmonise: perturbed",
            format!("{:?} (the original's shape, rank >= 2)", original.dims()),
            perturbed.dims(),
        ));
    }
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
    let original = original.to_dtype(DType::F32)?;
    let m = mask
        .to_dtype(DType::F32)?
        .to_device(original.device())?
        .broadcast_as(original.dims())
        .map_err(|_| {
            Error::shape(
                "harmonise: mask",
                format!("a shape that broadcasts to {:?}", original.dims()),
                mask.dims(),
            )
        })?
        .contiguous()?;
    let keep = (1.0 - &m)?;
    let batch = original.dim(0)?;
    let plan = sampler.timesteps().to_vec();
    let i0 = start_index(&plan, cfg.start)?;
    let mut noise = SeededNoise::new(cfg.seed);
    let dev = original.device().clone();
    let t_of = |tv: f64| -> Result<Tensor> {
        Ok(if tv.fract() == 0.0 {
            Tensor::from_vec(vec![tv as u32; batch], batch, &dev)?
        } else {
            Tensor::from_vec(vec![tv as f32; batch], batch, &dev)?
        })
    };
    sampler.reset();
    let z = noise.draw(original.dims(), &dev)?;
    let mut x = sampler.add_noise(&perturbed.to_dtype(DType::F32)?, &z, &t_of(plan[i0])?)?;
    // The forward process of every sampler here is x_t = a_t x0 + s_t noise (variance
    // preserving: a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar); Euler: a = 1, s = sigma), read
    // off the sampler's own add_noise; RePaint's jump from t' < t back to t is then
    // x_t = (a_t / a_t') x_t' + sqrt(s_t^2 - (a_t / a_t')^2 s_t'^2) noise.
    for k in i0..plan.len() {
        let t = t_of(plan[k])?;
        let last = k + 1 == plan.len();
        let rounds = if last { 1 } else { cfg.resample + 1 };
        for round in 0..rounds {
            let x_in = sampler.scale_model_input(&x, &t)?;
            let out = denoiser.predict(&x_in, &t)?.detach();
            let step_noise = if sampler.needs_noise() {
                Some(noise.draw(x.dims(), &dev)?)
            } else {
                None
            };
            let denoised = sampler.step(&out, &t, &x, step_noise.as_ref())?.detach();
            let known = if !last {
                let z = noise.draw(original.dims(), &dev)?;
                sampler.add_noise(&original, &z, &t_of(plan[k + 1])?)?
            } else {
                original.clone()
            };
            x = ((&denoised * &m)? + (&known * &keep)?)?;
            if round + 1 < rounds {
                let (a_hi, s_hi) = forward_coef(sampler, plan[k], &dev)?;
                let (a_lo, s_lo) = forward_coef(sampler, plan[k + 1], &dev)?;
                let r = a_hi / a_lo;
                let sd = (s_hi * s_hi - r * r * s_lo * s_lo).max(0.0).sqrt();
                let z = noise.draw(x.dims(), &dev)?;
                x = ((&x * r)? + (z * sd)?)?;
            }
        }
    }
    Ok(x)
}

/// `(a_t, s_t)` of the sampler's forward process `x_t = a_t x0 + s_t noise` at timestep `tv`,
/// read off its `add_noise`.
fn forward_coef<S: Sampler + ?Sized>(
    sampler: &S,
    tv: f64,
    dev: &candle_core::Device,
) -> Result<(f64, f64)> {
    let one = Tensor::ones((1, 1), DType::F32, dev)?;
    let zero = Tensor::zeros((1, 1), DType::F32, dev)?;
    let t = if tv.fract() == 0.0 {
        Tensor::from_vec(vec![tv as u32], 1, dev)?
    } else {
        Tensor::from_vec(vec![tv as f32], 1, dev)?
    };
    let a = sampler
        .add_noise(&one, &zero, &t)?
        .flatten_all()?
        .to_vec1::<f32>()?[0];
    let s = sampler
        .add_noise(&zero, &one, &t)?
        .flatten_all()?
        .to_vec1::<f32>()?[0];
    Ok((a as f64, s as f64))
}
