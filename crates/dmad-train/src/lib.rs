//! Training of dmad's denoisers on normal data.
//!
//! [`Trainer`] fits any [`dmad_core::Denoiser`] whose weights live in a candle-nn `VarMap`
//! (the U-Nets and the MLP of `dmad-unet`, or your own network) with the diffusion loss:
//!
//! - a batch, one random timestep per sample and the noise, all drawn from one seeded RNG;
//! - the MSE on the network's target (epsilon, v or x0), plus an optional
//!   `gamma * ||f(x0) - f(x0_hat)||^2` perceptual loss through a [`dmad_core::FeatureExtractor`];
//! - AdamW (with state that is saved, unlike candle-nn's), linear warm-up and cosine decay,
//!   clipping of the global gradient norm and an EMA of the weights.
//!
//! Initial weights come from [`seeded_var_builder`], so a run is reproducible from its seed.
//!
//! Checkpoints are directories of safetensors and JSON files, each written atomically, and
//! [`Trainer::resume`] continues a run exactly: on the CPU, an interrupted and resumed run ends
//! with the same weights, bit for bit, as the uninterrupted one.
//!
//! # Example
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//! use dmad_diffusion::{NoiseSchedule, NoiseScheduleConfig};
//! use dmad_train::{Control, TrainConfig, Trainer};
//!
//! /// A one-parameter "network": eps_hat = w * x_t.
//! struct Scale(candle_core::Tensor);
//! impl dmad_core::Denoiser for Scale {
//!     fn predict(&self, x: &Tensor, _t: &Tensor) -> dmad_core::Result<Tensor> {
//!         Ok(x.broadcast_mul(&self.0)?)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = Device::Cpu;
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
//! let model = Scale(vb.get_with_hints(1, "w", candle_nn::Init::Const(0.0))?);
//! let data = Tensor::zeros((64, 4), DType::F32, &dev)?; // zero data: the best w is ~1
//! let schedule = NoiseSchedule::new(NoiseScheduleConfig::default())?;
//! let cfg = TrainConfig { steps: 200, learning_rate: 0.05, lr_warmup_steps: 0, ..Default::default() };
//! let mut trainer = Trainer::new(cfg, schedule, &varmap, serde_json::json!({"kind": "scale"}))?;
//! let mut last = f64::MAX;
//! trainer.fit(&model, &data, None, None, |p| { last = p.loss; Control::Continue })?;
//! assert!(last < 0.5);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod checkpoint;
mod config;
mod data;
mod error;
pub mod init;
pub mod lr;
pub mod optim;
mod trainer;
pub mod validation;

pub use config::TrainConfig;
pub use data::TrainData;
pub use error::{Error, Result};
pub use init::seeded_var_builder;
pub use trainer::{device_of, Control, Progress, Trainer};
pub use validation::{Validation, ValidationReport};
