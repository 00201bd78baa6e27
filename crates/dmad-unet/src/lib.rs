//! The method's denoising networks.
//!
//! - [`UNet2d`] / [`UNet1d`]: one generic U-Net ([`UNet`]) over images and scalograms
//!   (`[batch, channel, height, width]`) or series windows (`[batch, channel, length]`). It is
//!   configured like diffusers' `UNet2DModel` ([`UNetConfig`], diffusers' field names and
//!   defaults) and uses diffusers' parameter names, so a diffusers `UNet2DModel` safetensors
//!   file loads unchanged ([`UNet::load`]). The method's four modules (section III-D of the
//!   paper) are switches in [`ModulesConfig`]: wavelet pyramid, multi-head attention at every
//!   stage, modality-shared input adapter and hybrid time embedding. All off is the plain
//!   DDPM baseline.
//! - [`MlpDenoiser`]: a residual MLP for tables (TabDDPM / DTE style).
//!
//! The wavelet pyramid takes its differentiable DWT from `dmad-wavelets` (periodization mode,
//! PyWavelets' filters).
//!
//! Every network implements [`dmad_core::Denoiser`] and predicts what its config's
//! `prediction_type` says (epsilon, v or the sample). Everything is candle ops, so the
//! networks run on CPU and CUDA.
//!
//! # Training
//! Networks are built from `(config, VarBuilder)`. For training, build them on a
//! [`candle_nn::VarMap`] (`UNet2d::with_varmap(cfg, DType::F32, &device)` returns it):
//! `varmap.all_vars()` are all the trainable parameters; `varmap.save(path)` writes a
//! safetensors file that [`UNet::load`] (inference) or [`load_into_varmap`] (resuming) read
//! back with checked names and shapes. For sampling during training, build an inference copy
//! on [`frozen_tensors`]`(&varmap)`: it shares the weights but records no autograd graph.
//!
//! # Conventions
//! - Tensors are `[batch, channel, ...]`; timesteps are a `[batch]` tensor (`u32` or float).
//! - Parameters are `f32` by default (any float dtype through the `VarBuilder`); the output has
//!   the dtype of the input.
//! - Spatial sizes must be divisible by `2^(levels - 1)`.
//!
//! # Example
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dmad_core::Denoiser;
//! use dmad_unet::{ModulesConfig, UNet2d, UNetConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dev = Device::Cpu;
//! let mut cfg = UNetConfig::tiny(1);
//! cfg.modules = ModulesConfig::none();
//! cfg.modules.multi_head_attention = true; // one flag per module
//! let (net, varmap) = UNet2d::with_varmap(cfg, DType::F32, &dev)?;
//! let x = Tensor::randn(0f32, 1.0, (2, 1, 16, 16), &dev)?;
//! let t = Tensor::new(&[10u32, 500], &dev)?;
//! let eps = net.predict(&x, &t)?;
//! assert_eq!(eps.dims(), &[2, 1, 16, 16]);
//! assert!(!varmap.all_vars().is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! - `cuda`: forwards to candle's CUDA backend.
#![warn(missing_docs)]

mod blocks;
mod config;
mod embedding;
mod error;
mod layers;
mod mlp;
mod pyramid;
mod softmax;
mod unet;
mod weights;

pub use config::{
    DownBlockType, MidBlockType, ModulesConfig, ResampleType, TimeEmbeddingType, TimeScaleShift,
    UNetConfig, UpBlockType, WaveletFusion,
};
pub use error::{Error, Result};
pub use layers::{Activation, Kernels, Rank};
pub use mlp::{MlpConfig, MlpDenoiser};
pub use unet::{SpatialRank, UNet, UNet1d, UNet2d, D1, D2};
pub use weights::{frozen_tensors, load_into_varmap, read_checked, varmap_shapes};
