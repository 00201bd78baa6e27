//! Normal samples: unconditional sampling from a trained denoiser.

use candle_core::{Device, Tensor};
use dmad_core::Denoiser;
use dmad_diffusion::{sample, NoiseSource, Sampler, SeededNoise};

use crate::{Error, Result};

/// Draws `shape[0]` normal samples of shape `shape[1..]` from `denoiser` with any sampler and
/// step count: standard normal noise (seeded) times [`Sampler::init_noise_sigma`], denoised by
/// every step of the sampler's plan. The per-step noise of stochastic samplers comes from the
/// same seeded stream, so the result depends only on `seed`, the sampler and the model.
///
/// # Shapes
/// `shape`: `[batch, ...]` (`[batch, channel, height, width]` for images and scalograms,
/// `[batch, channel, length]` for series windows, `[batch, features]` for table rows).
///
/// # Errors
/// [`Error::ShapeMismatch`] for an empty shape or a zero batch; errors of the sampler and the
/// denoiser (a prediction type the sampler does not expect).
///
/// # Example
/// ```
/// use candle_core::Device;
/// use dmad_diffusion::{DdimConfig, DdimSampler, GaussianDenoiser, NoiseScheduleConfig};
///
/// # fn main() -> dmad_generate::Result<()> {
/// let schedule = NoiseScheduleConfig::default().build()?;
/// let model = GaussianDenoiser::new(&schedule, 1.0, 0.5, Default::default())?;
/// let mut ddim = DdimSampler::new(&schedule, DdimConfig { num_inference_steps: 20, ..Default::default() })?;
/// let x = dmad_generate::sample_normal(&model, &mut ddim, &[512, 4], 7, &Device::Cpu)?;
/// let mean = x.mean_all()?.to_scalar::<f32>()?;
/// assert!((mean - 1.0).abs() < 0.05);
/// # Ok(())
/// # }
/// ```
pub fn sample_normal<D, S>(
    denoiser: &D,
    sampler: &mut S,
    shape: &[usize],
    seed: u64,
    device: &Device,
) -> Result<Tensor>
where
    D: Denoiser + ?Sized,
    S: Sampler + ?Sized,
{
    if shape.len() < 2 || shape[0] == 0 || shape.contains(&0) {
        return Err(Error::shape(
            "sample_normal: shape",
            "[batch, ...] with no zero dimension and rank >= 2",
            shape,
        ));
    }
    let mut noise = SeededNoise::new(seed);
    let x_t = (noise.draw(shape, device)? * sampler.init_noise_sigma())?;
    Ok(sample(denoiser, sampler, &x_t, &mut noise)?)
}
