//! The sampler trait: one step of a reverse (or, for inversion, forward) diffusion process.

use candle_core::Tensor;
use dmad_core::PredictionType;

use crate::Result;

/// What a sampler does, fixed when it is built: the timesteps it visits, the model output it
/// expects and the scale of its starting noise.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The timesteps the sampler visits, in order (descending, ascending for inversion); as in
    /// diffusers' `scheduler.timesteps` after `set_timesteps`. Whole numbers except Euler's
    /// fractional `linspace` timesteps.
    pub timesteps: Vec<f64>,
    /// The prediction type the sampler expects from the model.
    pub prediction_type: PredictionType,
    /// The standard deviation of the starting sample `x_T` (diffusers' `init_noise_sigma`):
    /// 1 for the variance-preserving samplers, the largest sigma for Euler.
    pub init_noise_sigma: f64,
}

/// One step of a diffusion sampler (DDPM, DDIM, DDIM inversion, DPM-Solver(++), Euler).
///
/// The noise schedule (numbers), the sampler (this trait) and the network
/// ([`dmad_core::Denoiser`]) are kept apart. A step takes the model output, the per-sample
/// timesteps and the sample and, where it is stochastic, its noise: there is no hidden random
/// number generator, so runs are reproducible.
///
/// Multistep samplers (DPM-Solver) keep the previous model outputs between steps; that state
/// is explicit (see the sampler) and [`Sampler::reset`] clears it. The loops in this crate call
/// `reset` before they start.
///
/// # The loop
/// For each `t` of [`Sampler::timesteps`]: `x_in = scale_model_input(x, t)`,
/// `out = denoiser.predict(x_in, t)`, `x = step(out, t, x, noise)`; see [`crate::sample`].
///
/// # Shapes
/// Samples, model outputs and noise are `[batch, ...]`; timesteps `t` are `[batch]` (any dtype),
/// one per sample, each one of the plan's timesteps.
pub trait Sampler {
    /// The sampler's plan: timesteps, expected prediction type and initial noise scale.
    fn plan(&self) -> &Plan;

    /// Advances `sample` from timesteps `t` to the next timesteps of the plan, given the model's
    /// output for the scaled sample. Returns the new sample.
    ///
    /// `noise` (standard normal, the sample's shape) is used by stochastic samplers only
    /// ([`Sampler::needs_noise`]); deterministic samplers ignore it.
    ///
    /// # Errors
    /// [`crate::Error::ShapeMismatch`] if the shapes do not fit,
    /// [`crate::Error::InvalidTimestep`] if a timestep is not in the plan,
    /// [`crate::Error::MissingNoise`] if a stochastic step gets no noise.
    fn step(
        &mut self,
        model_output: &Tensor,
        t: &Tensor,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor>;

    /// Noises clean samples `x0` to the plan's timesteps `t`, in this sampler's
    /// parametrisation (for Euler `x0 + sigma_t noise`, otherwise
    /// `sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise`): the start of partial diffusion.
    ///
    /// # Errors
    /// As [`Sampler::step`].
    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor>;

    /// The timesteps the sampler visits, in order.
    fn timesteps(&self) -> &[f64] {
        &self.plan().timesteps
    }

    /// The prediction type the sampler expects from the model.
    fn prediction_type(&self) -> PredictionType {
        self.plan().prediction_type
    }

    /// The standard deviation of the starting sample: multiply standard normal noise by it to
    /// get `x_T`.
    fn init_noise_sigma(&self) -> f64 {
        self.plan().init_noise_sigma
    }

    /// Scales the sample before it goes into the model (Euler divides by
    /// `sqrt(sigma^2 + 1)`); the identity for the others.
    ///
    /// # Errors
    /// As [`Sampler::step`].
    fn scale_model_input(&self, sample: &Tensor, t: &Tensor) -> Result<Tensor> {
        let _ = t;
        Ok(sample.clone())
    }

    /// Whether [`Sampler::step`] needs noise (DDPM, DDIM with `eta > 0`, the SDE variants of
    /// DPM-Solver, Euler with churn).
    fn needs_noise(&self) -> bool {
        false
    }

    /// Clears the state a multistep sampler keeps between steps. A no-op for one-step
    /// samplers.
    fn reset(&mut self) {}
}

impl<S: Sampler + ?Sized> Sampler for &mut S {
    fn plan(&self) -> &Plan {
        (**self).plan()
    }
    fn step(
        &mut self,
        model_output: &Tensor,
        t: &Tensor,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        (**self).step(model_output, t, sample, noise)
    }
    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        (**self).add_noise(x0, noise, t)
    }
    fn scale_model_input(&self, sample: &Tensor, t: &Tensor) -> Result<Tensor> {
        (**self).scale_model_input(sample, t)
    }
    fn needs_noise(&self) -> bool {
        (**self).needs_noise()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn plan(&self) -> &Plan {
        (**self).plan()
    }
    fn step(
        &mut self,
        model_output: &Tensor,
        t: &Tensor,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        (**self).step(model_output, t, sample, noise)
    }
    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        (**self).add_noise(x0, noise, t)
    }
    fn scale_model_input(&self, sample: &Tensor, t: &Tensor) -> Result<Tensor> {
        (**self).scale_model_input(sample, t)
    }
    fn needs_noise(&self) -> bool {
        (**self).needs_noise()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}
