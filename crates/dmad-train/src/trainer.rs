use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use dmad_core::masking::{imputation_input, masked_squared_error};
use dmad_core::{Denoiser, FeatureExtractor, PredictionType};
use dmad_diffusion::NoiseSchedule;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, FORMAT_VERSION};
use crate::error::io_err;
use crate::optim::{grad_norm, AdamW, AdamWParams, Ema};
use crate::{lr, Error, Result, TrainConfig, TrainData, Validation, ValidationReport};

/// What the trainer reports after each step.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps done so far (1 after the first step).
    pub step: usize,
    /// The run's total number of steps.
    pub total_steps: usize,
    /// The loss of this step (`L_MSE + gamma * L_feat`).
    pub loss: f64,
    /// The feature-preservation loss `L_feat` of this step, when it is on.
    pub feature_loss: Option<f64>,
    /// The learning rate used for this step.
    pub learning_rate: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// Throughput of this step, in samples per second.
    pub samples_per_sec: f64,
}

/// Whether a training loop goes on after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on training.
    Continue,
    /// Stop after this step (a checkpoint is still written when the run has a directory).
    Stop,
}

/// What `state.json` of a checkpoint holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    format_version: u32,
    step: usize,
    ema_updates: u64,
    rng: ChaCha8Rng,
    train_config: TrainConfig,
    model_config: serde_json::Value,
}

/// Trains a denoiser on normal data with the diffusion loss.
///
/// Each step draws a batch of sample indices, one timestep per sample (uniform over the
/// training timesteps) and the noise, all from one seeded ChaCha RNG; noises the batch with
/// the schedule's forward process; and regresses the network's output on the target of its
/// prediction type (`epsilon`: the noise, `v_prediction`: the velocity, `sample`: `x0`) with the
/// mean squared error. With `feature_loss_weight` gamma > 0, the perceptual loss
/// `||f(x0) - f(x0_hat)||^2` of a [`FeatureExtractor`] is added, `x0_hat` being the network's
/// estimate of the clean batch.
///
/// The optimiser is AdamW with warm-up and cosine decay, the gradients are clipped by global
/// norm, and an EMA of the weights is kept. On the CPU the same seed gives the same weights bit
/// for bit, and a run resumed from a checkpoint ends exactly where the uninterrupted run ends.
///
/// The library prints nothing: progress goes to the caller's callback.
pub struct Trainer {
    cfg: TrainConfig,
    schedule: NoiseSchedule,
    model_config: serde_json::Value,
    vars: Vec<(String, Var)>,
    opt: AdamW,
    ema: Option<Ema>,
    rng: ChaCha8Rng,
    step: usize,
    /// [`TrainConfig::timesteps`] of the schedule, checked once.
    timesteps: std::ops::Range<u32>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("cfg", &self.cfg)
            .field("step", &self.step)
            .field("vars", &self.vars.len())
            .finish()
    }
}

impl Trainer {
    /// Starts a run that optimises every variable of `varmap`.
    ///
    /// `model_config` is the network's configuration as JSON; it is saved with each checkpoint
    /// and checked when the run is resumed.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid `cfg`, [`Error::InvalidData`] if `varmap` is empty.
    pub fn new(
        cfg: TrainConfig,
        schedule: NoiseSchedule,
        varmap: &VarMap,
        model_config: serde_json::Value,
    ) -> Result<Self> {
        cfg.validate()?;
        let timesteps = cfg.timesteps(schedule.num_train_timesteps())?;
        let timesteps = timesteps.start as u32..timesteps.end as u32;
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| Error::InvalidData("the VarMap's lock is poisoned".into()))?
            .iter()
            .filter(|(_, v)| v.dtype().is_float())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if vars.is_empty() {
            return Err(Error::InvalidData(
                "the model has no trainable variables".into(),
            ));
        }
        // A fixed order makes the run independent of the hash map's iteration order.
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let opt = AdamW::new(
            vars.clone(),
            AdamWParams {
                lr: cfg.learning_rate,
                beta1: cfg.adam_beta1,
                beta2: cfg.adam_beta2,
                eps: cfg.adam_epsilon,
                weight_decay: cfg.adam_weight_decay,
            },
        )?;
        let ema = cfg.ema_decay.map(|d| Ema::new(&vars, d)).transpose()?;
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        Ok(Self {
            cfg,
            schedule,
            model_config,
            vars,
            opt,
            ema,
            rng,
            step: 0,
            timesteps,
        })
    }

    /// Steps done so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The timesteps training draws from: [`TrainConfig::timestep_range`], or the whole
    /// schedule.
    pub fn timestep_range(&self) -> std::ops::Range<u32> {
        self.timesteps.clone()
    }

    /// Whether every step of the run is done.
    pub fn is_finished(&self) -> bool {
        self.step >= self.cfg.steps
    }

    /// The EMA of the weights by variable name, or `None` when the EMA is off.
    pub fn ema_weights(&self) -> Option<Vec<(String, Tensor)>> {
        self.ema.as_ref().map(|ema| {
            self.vars
                .iter()
                .zip(ema.weights())
                .map(|((n, _), t)| (n.clone(), t.clone()))
                .collect()
        })
    }

    /// Copies the EMA weights into the model's variables (for sampling and scoring with the
    /// averaged model). Does nothing when the EMA is off.
    ///
    /// # Errors
    /// Returns an error if a tensor cannot be copied.
    pub fn apply_ema(&self) -> Result<()> {
        if let Some(ema) = &self.ema {
            for ((_, var), w) in self.vars.iter().zip(ema.weights()) {
                var.set(w)?;
            }
        }
        Ok(())
    }

    /// Runs one optimisation step and returns its progress record.
    ///
    /// `features` is needed when `feature_loss_weight > 0`.
    ///
    /// # Errors
    /// [`Error::InvalidData`] for empty data or a missing extractor; errors of the model.
    pub fn train_step(
        &mut self,
        model: &dyn Denoiser,
        data: &dyn TrainData,
        features: Option<&dyn FeatureExtractor>,
    ) -> Result<Progress> {
        let start = Instant::now();
        let n = data.len();
        if n == 0 {
            return Err(Error::InvalidData("the training data is empty".into()));
        }
        let gamma = self.cfg.feature_loss_weight;
        if gamma > 0.0 && features.is_none() {
            return Err(Error::InvalidData(
                "feature_loss_weight > 0 needs a feature extractor".into(),
            ));
        }
        let device = self.vars[0].1.device().clone();
        let b = self.cfg.batch_size;

        // Every random draw of the step, in a fixed order, from the run's RNG.
        let indices: Vec<usize> = (0..b).map(|_| self.rng.random_range(0..n)).collect();
        let x0 = data.batch(&indices, &device)?.to_dtype(DType::F32)?;
        if x0.dim(0)? != b {
            return Err(Error::InvalidData(format!(
                "a batch of {b} indices gave a tensor of shape {:?}",
                x0.dims()
            )));
        }
        let range = self.timesteps.clone();
        let t_values: Vec<u32> = match self.cfg.distinct_timesteps {
            Some(k) if k < b => {
                let drawn: Vec<u32> = (0..k)
                    .map(|_| self.rng.random_range(range.clone()))
                    .collect();
                (0..b).map(|i| drawn[i % k]).collect()
            }
            _ => (0..b)
                .map(|_| self.rng.random_range(range.clone()))
                .collect(),
        };
        let t = Tensor::from_vec(t_values.clone(), b, &device)?;
        let noise: Vec<f32> = (0..x0.elem_count())
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        let noise = Tensor::from_vec(noise, x0.shape(), &device)?;

        let x_t = self.schedule.add_noise(&x0, &noise, &t)?;
        let kind = model.prediction_type();
        let target = match kind {
            PredictionType::Epsilon => noise.clone(),
            PredictionType::VPrediction => self.schedule.velocity(&x0, &noise, &t)?,
            PredictionType::Sample => x0.clone(),
        };
        let (pred, mse) = match self.cfg.imputation {
            None => {
                let pred = model.predict(&x_t, &t)?;
                let mse = (&pred - &target)?.sqr()?.mean_all()?;
                (pred, mse)
            }
            Some(g) => {
                // Drawn after the noise, so that runs without imputation keep their stream.
                let dims = x0.dims().to_vec();
                if dims.len() != 3 {
                    return Err(Error::InvalidData(format!(
                        "imputation training needs series windows [batch, channels, length], \
                         got {dims:?}"
                    )));
                }
                g.validate(dims[2])?;
                let shifts: Vec<usize> = (0..b)
                    .map(|_| self.rng.random_range(0..g.period()))
                    .collect();
                let mask = g.mask_tensor(dims[2], &shifts, &device)?;
                let input = imputation_input(&x_t, &x0, &mask)?;
                let pred = model.predict(&input, &t)?;
                // The mean over the masked steps (every channel) of the squared error.
                let err = masked_squared_error(&pred, &target, &mask)?.sum_all()?;
                let masked = mask.sum_all()?.to_scalar::<f32>()?.max(1.0);
                (pred, (err / masked as f64)?)
            }
        };
        let (loss, feature_loss) = match features {
            Some(f) if gamma > 0.0 => {
                let x0_hat = self.schedule.convert_prediction(
                    &pred,
                    kind,
                    PredictionType::Sample,
                    &x_t,
                    &t,
                )?;
                let fa = f.features(&x0)?;
                let fb = f.features(&x0_hat)?;
                // Per-sample weights alpha_bar_t: the x0 estimate of a noisy sample carries
                // its noise amplified by sqrt((1 - a) / a), so unweighted the loss is dominated
                // by the noisiest timesteps; weighted, it is on the scale of the epsilon loss.
                let w = t_values
                    .iter()
                    .map(|&ti| Ok(self.schedule.alpha_bar_at(ti as f64)? as f32))
                    .collect::<Result<Vec<f32>>>()?;
                let w = Tensor::from_vec(w, b, &device)?;
                let mut lf = Tensor::zeros((), DType::F32, &device)?;
                for (a, b) in fa.iter().zip(&fb) {
                    let per_sample = (a.detach() - b)?.sqr()?.flatten_from(1)?.mean(1)?;
                    lf = (lf + (per_sample * &w)?.mean_all()?)?;
                }
                let lf_val = lf.to_scalar::<f32>()? as f64;
                ((&mse + (lf * gamma)?)?, Some(lf_val))
            }
            _ => (mse, None),
        };
        let loss_val = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !loss_val.is_finite() {
            return Err(Error::InvalidData(format!(
                "the loss is {loss_val} at step {}: check the data for NaN/inf and lower the learning rate",
                self.step + 1
            )));
        }

        let grads = loss.backward()?;
        let norm = grad_norm(&self.vars, &grads)?;
        let scale = match self.cfg.max_grad_norm {
            Some(max) if norm > max => max / (norm + 1e-6),
            _ => 1.0,
        };
        let lr = lr::cosine_with_warmup(
            self.cfg.learning_rate,
            self.step,
            self.cfg.lr_warmup_steps,
            self.cfg.steps,
        );
        self.opt.set_lr(lr);
        self.opt.step(&grads, scale)?;
        if let Some(ema) = &mut self.ema {
            ema.update(&self.vars)?;
        }
        self.step += 1;
        Ok(Progress {
            step: self.step,
            total_steps: self.cfg.steps,
            loss: loss_val,
            feature_loss,
            learning_rate: lr,
            grad_norm: norm,
            samples_per_sec: b as f64 / start.elapsed().as_secs_f64().max(1e-9),
        })
    }

    /// Trains until the run's last step (or until `callback` returns [`Control::Stop`]),
    /// writing checkpoints to `checkpoint_dir` every `checkpoint_every` steps and at the end.
    ///
    /// # Errors
    /// Errors of [`Trainer::train_step`] and of writing checkpoints.
    pub fn fit(
        &mut self,
        model: &dyn Denoiser,
        data: &dyn TrainData,
        features: Option<&dyn FeatureExtractor>,
        checkpoint_dir: Option<&Path>,
        callback: impl FnMut(&Progress) -> Control,
    ) -> Result<()> {
        self.run(model, data, features, checkpoint_dir, None, callback)
            .map(|_| ())
    }

    /// As [`Trainer::fit`], with early stopping: every `validate_every` steps of the run's
    /// config and after the last, the
    /// held-out loss ([`Validation::loss`]) of the weights the run ends with (the EMA's when
    /// the EMA is on, else the variables') is measured, and the run ends with the weights of
    /// the lowest loss: the EMA (without EMA, the variables) is set to them, so
    /// [`Trainer::apply_ema`] then applies the best. Training itself runs every step (the
    /// learning-rate schedule is the full run's); a resumed run measures from where it resumes.
    ///
    /// # Errors
    /// As [`Trainer::fit`]; [`Error::InvalidConfig`] (field `validate_every`) when the config
    /// sets no interval.
    pub fn fit_validated(
        &mut self,
        model: &dyn Denoiser,
        data: &dyn TrainData,
        features: Option<&dyn FeatureExtractor>,
        checkpoint_dir: Option<&Path>,
        validation: &Validation,
        callback: impl FnMut(&Progress) -> Control,
    ) -> Result<ValidationReport> {
        let Some(every) = self.cfg.validate_every else {
            return Err(Error::InvalidConfig {
                field: "validate_every",
                reason: "early stopping needs an interval (validate_every) in the config".into(),
            });
        };
        let report = self.run(
            model,
            data,
            features,
            checkpoint_dir,
            Some((validation, every)),
            callback,
        )?;
        report.ok_or_else(|| Error::InvalidData("no step was measured".into()))
    }

    fn run(
        &mut self,
        model: &dyn Denoiser,
        data: &dyn TrainData,
        features: Option<&dyn FeatureExtractor>,
        checkpoint_dir: Option<&Path>,
        validation: Option<(&Validation, usize)>,
        mut callback: impl FnMut(&Progress) -> Control,
    ) -> Result<Option<ValidationReport>> {
        let mut history = Vec::new();
        let mut best: Option<(usize, f64, Vec<Tensor>)> = None;
        while !self.is_finished() {
            let p = self.train_step(model, data, features)?;
            let stop = callback(&p) == Control::Stop;
            if let Some((v, every)) = validation {
                if self.step.is_multiple_of(every) || self.is_finished() || stop {
                    let (loss, weights) = self.measure(model, v)?;
                    history.push((self.step, loss));
                    if best.as_ref().is_none_or(|b| loss < b.1) {
                        best = Some((self.step, loss, weights));
                    }
                }
            }
            if let Some(dir) = checkpoint_dir {
                let due = self
                    .cfg
                    .checkpoint_every
                    .is_some_and(|k| self.step.is_multiple_of(k));
                if due || stop || self.is_finished() {
                    self.save_checkpoint(dir)?;
                }
            }
            if stop {
                break;
            }
        }
        let Some((best_step, best_loss, weights)) = best else {
            return Ok(None);
        };
        if best_step != self.step {
            match &mut self.ema {
                Some(ema) => {
                    let updates = ema.updates();
                    ema.restore(weights, updates);
                }
                None => {
                    for ((_, var), w) in self.vars.iter().zip(&weights) {
                        var.set(w)?;
                    }
                }
            }
        }
        Ok(Some(ValidationReport {
            history,
            best_step,
            best_loss,
        }))
    }

    /// The held-out loss of the weights the run would end with now, and those weights.
    fn measure(&self, model: &dyn Denoiser, v: &Validation) -> Result<(f64, Vec<Tensor>)> {
        let copy = |vars: &[(String, Var)]| -> Result<Vec<Tensor>> {
            Ok(vars
                .iter()
                .map(|(_, var)| var.as_tensor().copy())
                .collect::<candle_core::Result<Vec<_>>>()?)
        };
        match &self.ema {
            Some(ema) => {
                let live = copy(&self.vars)?;
                self.apply_ema()?;
                let loss = v.loss(model, &self.schedule);
                for ((_, var), w) in self.vars.iter().zip(&live) {
                    var.set(w)?;
                }
                Ok((loss?, ema.weights().to_vec()))
            }
            None => Ok((v.loss(model, &self.schedule)?, copy(&self.vars)?)),
        }
    }

    /// Writes a checkpoint of the current step under `dir` and points `dir/latest` at it.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that could not be written.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let step_dir = dir.join(checkpoint::step_dir_name(self.step));
        std::fs::create_dir_all(&step_dir).map_err(io_err(&step_dir))?;
        let named = |ts: Vec<Tensor>| -> std::collections::HashMap<String, Tensor> {
            self.vars.iter().map(|(n, _)| n.clone()).zip(ts).collect()
        };
        let weights = named(
            self.vars
                .iter()
                .map(|(_, v)| v.as_tensor().clone())
                .collect(),
        );
        checkpoint::save_tensors(&step_dir.join("weights.safetensors"), &weights)?;
        if let Some(ema) = &self.ema {
            let w = named(ema.weights().to_vec());
            checkpoint::save_tensors(&step_dir.join("ema.safetensors"), &w)?;
        }
        checkpoint::save_tensors(&step_dir.join("optimizer.safetensors"), &self.opt.state())?;
        let state = State {
            format_version: FORMAT_VERSION,
            step: self.step,
            ema_updates: self.ema.as_ref().map_or(0, |e| e.updates()),
            rng: self.rng.clone(),
            train_config: self.cfg.clone(),
            model_config: self.model_config.clone(),
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| Error::Checkpoint {
            path: step_dir.join("state.json"),
            reason: e.to_string(),
        })?;
        checkpoint::write_atomic(&step_dir.join("state.json"), &json)?;
        checkpoint::commit(dir, &step_dir, self.cfg.keep_checkpoints)?;
        Ok(step_dir)
    }

    /// Resumes the run whose newest checkpoint is in `dir`, loading its weights into `varmap`.
    ///
    /// `cfg` may differ from the saved training config only in `steps`, `checkpoint_every` and
    /// `keep_checkpoints` (so a run can be extended); `model_config` must equal the saved one.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the file when the checkpoint belongs to another model or
    /// run, is of another format version, or is damaged; [`Error::Io`] when it is missing.
    pub fn resume(
        cfg: TrainConfig,
        schedule: NoiseSchedule,
        varmap: &VarMap,
        model_config: serde_json::Value,
        dir: &Path,
    ) -> Result<Self> {
        let step_dir = checkpoint::latest(dir)?.ok_or_else(|| Error::Checkpoint {
            path: dir.to_path_buf(),
            reason: "no checkpoint here (no `latest` file)".into(),
        })?;
        let state_path = step_dir.join("state.json");
        let bytes = std::fs::read(&state_path).map_err(io_err(&state_path))?;
        let state: State = serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
            path: state_path.clone(),
            reason: format!("cannot parse: {e}"),
        })?;
        let mismatch = |reason: String| Error::Checkpoint {
            path: state_path.clone(),
            reason,
        };
        if state.format_version != FORMAT_VERSION {
            return Err(mismatch(format!(
                "format version {} (this dmad reads {FORMAT_VERSION})",
                state.format_version
            )));
        }
        if state.model_config != model_config {
            return Err(mismatch(format!(
                "was written for another model config: saved {}, given {}",
                state.model_config, model_config
            )));
        }
        let comparable = |c: &TrainConfig| TrainConfig {
            steps: 0,
            checkpoint_every: None,
            keep_checkpoints: 1,
            ..c.clone()
        };
        if comparable(&state.train_config) != comparable(&cfg) {
            return Err(mismatch(format!(
                "was written with another training config: saved {:?}, given {:?}",
                state.train_config, cfg
            )));
        }

        let mut trainer = Self::new(cfg, schedule, varmap, model_config)?;
        let device = trainer.vars[0].1.device().clone();
        let weights_path = step_dir.join("weights.safetensors");
        let weights = checkpoint::load_tensors(&weights_path, &device)?;
        let take = |map: &std::collections::HashMap<String, Tensor>,
                    path: &Path,
                    name: &str,
                    like: &Var|
         -> Result<Tensor> {
            let t = map.get(name).ok_or_else(|| Error::Checkpoint {
                path: path.to_path_buf(),
                reason: format!("has no tensor `{name}`"),
            })?;
            if t.dims() != like.dims() {
                return Err(Error::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!(
                        "tensor `{name}` has shape {:?}, the model expects {:?}",
                        t.dims(),
                        like.dims()
                    ),
                });
            }
            Ok(t.to_dtype(like.dtype())?)
        };
        for (name, var) in &trainer.vars {
            var.set(&take(&weights, &weights_path, name, var)?)?;
        }
        if let Some(ema) = &mut trainer.ema {
            let ema_path = step_dir.join("ema.safetensors");
            let saved = checkpoint::load_tensors(&ema_path, &device)?;
            let shadow = trainer
                .vars
                .iter()
                .map(|(name, var)| take(&saved, &ema_path, name, var))
                .collect::<Result<Vec<_>>>()?;
            ema.restore(shadow, state.ema_updates);
        }
        let opt_path = step_dir.join("optimizer.safetensors");
        let opt_state = checkpoint::load_tensors(&opt_path, &device)?;
        trainer
            .opt
            .load_state(&opt_state, state.step as u64)
            .map_err(|e| match e {
                Error::Checkpoint { reason, .. } => Error::Checkpoint {
                    path: opt_path.clone(),
                    reason,
                },
                other => other,
            })?;
        trainer.rng = state.rng;
        trainer.step = state.step;
        Ok(trainer)
    }
}

/// The device of a trainer's model, for callers that build data on it.
pub fn device_of(varmap: &VarMap) -> Device {
    varmap
        .all_vars()
        .first()
        .map(|v| v.device().clone())
        .unwrap_or(Device::Cpu)
}
