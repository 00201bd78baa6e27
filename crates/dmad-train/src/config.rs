use dmad_core::masking::GratingMasks;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Hyper-parameters of a training run, with the names of diffusers' training scripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Number of optimisation steps of the whole run. Default 1000.
    pub steps: usize,
    /// Samples per step. Default 16.
    pub batch_size: usize,
    /// Peak learning rate. Default 1e-4.
    pub learning_rate: f64,
    /// Steps of linear warm-up before the cosine decay. Default 50.
    pub lr_warmup_steps: usize,
    /// AdamW first-moment decay. Default 0.9.
    pub adam_beta1: f64,
    /// AdamW second-moment decay. Default 0.999.
    pub adam_beta2: f64,
    /// AdamW decoupled weight decay. Default 1e-2 (PyTorch's default).
    pub adam_weight_decay: f64,
    /// AdamW epsilon. Default 1e-8.
    pub adam_epsilon: f64,
    /// Clip the global gradient norm to this value; `None` disables clipping. Default `Some(1.0)`.
    pub max_grad_norm: Option<f64>,
    /// Maximum decay of the EMA of the weights; `None` disables the EMA. Default `Some(0.999)`.
    pub ema_decay: Option<f64>,
    /// Weight gamma of the perceptual feature-preservation loss
    /// `||f(x0) - f(x0_hat)||^2`; 0 disables it (and no extractor is needed). Default 0.
    pub feature_loss_weight: f64,
    /// Seed of every random draw of the run (batches, timesteps, noise). Default 0.
    pub seed: u64,
    /// Write a checkpoint every this many steps (and at the end) when the run has a checkpoint
    /// directory; `None` writes only at the end. Default `Some(500)`.
    pub checkpoint_every: Option<usize>,
    /// How many checkpoints to keep on disk (the newest). Default 2.
    pub keep_checkpoints: usize,
    /// Train an imputation denoiser on series windows `[batch, channels, length]`: each sample
    /// gets a grating mask with a random shift, the network sees
    /// [`dmad_core::masking::imputation_input`] (`channels + 1` input channels) and the loss
    /// counts the masked steps only. `None` (default): the plain diffusion loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imputation: Option<GratingMasks>,
    /// Draw this many timesteps per batch and share each among `batch_size / k` samples
    /// (sample `i` gets draw `i % k`), instead of one draw per sample. The loss stays an
    /// unbiased estimate of the same objective; a network that embeds each distinct timestep
    /// once (the MLP denoiser does) then spends a fraction of the time-conditioning work: at
    /// width 512 that work is over a third of a training step. `None` (default): one timestep
    /// per sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_timesteps: Option<usize>,
    /// Early stopping: every this many steps (and after the last), measure the denoising
    /// loss of the weights on held-out normal samples (a detector's calibration split) at
    /// fixed noise, and end with the weights of the lowest
    /// ([`Trainer::fit_validated`](crate::Trainer::fit_validated)). `None` (default): the
    /// last weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate_every: Option<usize>,
    /// Draw training timesteps uniformly from `[begin, end)` instead of the whole schedule
    /// (diffusers' training scripts' `timestep_bias_strategy = "range"` with
    /// `timestep_bias_begin` / `timestep_bias_end`, at full bias). A denoiser that is only
    /// ever queried at low noise (a density score up to strength 0.5, a reconstruction from a
    /// start step) then spends every step on the levels it is used at. `end` must not exceed
    /// the schedule's `num_train_timesteps` (checked by the trainer). `None` (default): the
    /// whole schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestep_range: Option<[usize; 2]>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 16,
            learning_rate: 1e-4,
            lr_warmup_steps: 50,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_weight_decay: 1e-2,
            adam_epsilon: 1e-8,
            max_grad_norm: Some(1.0),
            ema_decay: Some(0.999),
            feature_loss_weight: 0.0,
            seed: 0,
            checkpoint_every: Some(500),
            keep_checkpoints: 2,
            imputation: None,
            distinct_timesteps: None,
            validate_every: None,
            timestep_range: None,
        }
    }
}

impl TrainConfig {
    /// The timesteps training draws from in a schedule of `num_train_timesteps`:
    /// [`TrainConfig::timestep_range`], or the whole schedule.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `timestep_range` for an empty range or one that
    /// reaches past the schedule.
    pub fn timesteps(&self, num_train_timesteps: usize) -> Result<std::ops::Range<usize>> {
        let Some([begin, end]) = self.timestep_range else {
            return Ok(0..num_train_timesteps);
        };
        if begin >= end || end > num_train_timesteps {
            return Err(Error::InvalidConfig {
                field: "timestep_range",
                reason: format!(
                    "[{begin}, {end}) must be a non-empty range inside the schedule's \
                     [0, {num_train_timesteps})"
                ),
            });
        }
        Ok(begin..end)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        let unit_open = |x: f64| (0.0..1.0).contains(&x);
        if self.steps == 0 {
            return bad("steps", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be finite and > 0");
        }
        if !unit_open(self.adam_beta1) {
            return bad("adam_beta1", "must be in [0, 1)");
        }
        if !unit_open(self.adam_beta2) {
            return bad("adam_beta2", "must be in [0, 1)");
        }
        if !(self.adam_weight_decay.is_finite() && self.adam_weight_decay >= 0.0) {
            return bad("adam_weight_decay", "must be finite and >= 0");
        }
        if !(self.adam_epsilon.is_finite() && self.adam_epsilon > 0.0) {
            return bad("adam_epsilon", "must be finite and > 0");
        }
        if let Some(n) = self.max_grad_norm {
            if !(n.is_finite() && n > 0.0) {
                return bad(
                    "max_grad_norm",
                    "must be finite and > 0 (or null to disable)",
                );
            }
        }
        if let Some(d) = self.ema_decay {
            if !unit_open(d) {
                return bad("ema_decay", "must be in [0, 1) (or null to disable)");
            }
        }
        if !(self.feature_loss_weight.is_finite() && self.feature_loss_weight >= 0.0) {
            return bad("feature_loss_weight", "must be finite and >= 0");
        }
        if self.validate_every == Some(0) {
            return bad("validate_every", "must be at least 1 (or null)");
        }
        if self.checkpoint_every == Some(0) {
            return bad("checkpoint_every", "must be at least 1 (or null)");
        }
        if self.keep_checkpoints == 0 {
            return bad("keep_checkpoints", "must be at least 1");
        }
        if self.distinct_timesteps == Some(0) {
            return bad("distinct_timesteps", "must be at least 1 (or null)");
        }
        // Emptiness here; the schedule's end where the schedule is known.
        self.timesteps(usize::MAX)?;
        if self.imputation.is_some_and(|g| g.segment == 0) {
            return bad("imputation.segment", "must be at least 1");
        }
        if self.imputation.is_some() && self.feature_loss_weight > 0.0 {
            return bad(
                "feature_loss_weight",
                "the feature loss compares images; an imputation run trains on series windows",
            );
        }
        Ok(())
    }
}
