//! Where the loops get their noise: an explicit, seedable source.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Result;

/// A source of standard normal noise for the sampling loops: the starting noise of partial
/// diffusion and the per-step noise of stochastic samplers.
///
/// Implemented by [`SeededNoise`] and by any closure
/// `FnMut(&[usize], &Device) -> Result<Tensor>`.
pub trait NoiseSource {
    /// Draws an `f32` tensor of independent standard normal values of `shape` on `device`.
    ///
    /// # Errors
    /// Returns an error if the tensor cannot be made on `device`.
    fn draw(&mut self, shape: &[usize], device: &Device) -> Result<Tensor>;
}

impl<F> NoiseSource for F
where
    F: FnMut(&[usize], &Device) -> Result<Tensor>,
{
    fn draw(&mut self, shape: &[usize], device: &Device) -> Result<Tensor> {
        self(shape, device)
    }
}

/// Reproducible standard normal noise: ChaCha8 drawn on the CPU, then moved to the device.
///
/// The same seed gives the same numbers on every run, platform and device.
///
/// # Example
/// ```
/// use candle_core::Device;
/// use dmad_diffusion::{NoiseSource, SeededNoise};
///
/// # fn main() -> dmad_diffusion::Result<()> {
/// let a = SeededNoise::new(7).draw(&[2, 3], &Device::Cpu)?;
/// let b = SeededNoise::new(7).draw(&[2, 3], &Device::Cpu)?;
/// assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SeededNoise {
    rng: ChaCha8Rng,
}

impl SeededNoise {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl NoiseSource for SeededNoise {
    fn draw(&mut self, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Ok(Tensor::from_vec(v, shape, device)?)
    }
}
