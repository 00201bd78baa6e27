//! Anomaly scores and maps for dmad.
//!
//! **Status:** this crate will hold the scorers of issue 7 (reconstruction, feature,
//! combined and DTE scores, anomaly maps); they are not written yet. Today it holds the
//! frozen perceptual network those scorers and the training loss use:
//!
//! - [`efficientnet`]: EfficientNet-Lite0 in candle, matching the PyTorch reference
//!   (`efficientnet-lite-pytorch` 0.1.0) block by block, and [`EfficientNetExtractor`], dmad's
//!   [`dmad_core::FeatureExtractor`].
//!
//! # Conventions
//! - Images are `[batch, channel, height, width]` in `[-1, 1]`, with 1 (grey) or 3 (RGB)
//!   channels; the extractor resizes, converts grey to RGB and normalises them itself.
//! - Feature maps are returned from the finest to the coarsest (strides 4, 8 and 16 by
//!   default).
//! - The network's weights are frozen; gradients flow to the input only.
//!
//! # Example
//! A tiny randomly initialised network on the CPU (the real one is
//! [`EfficientNetExtractor::lite0`], with weights made as `docs/EFFICIENTNET.md` explains):
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dmad_core::FeatureExtractor;
//! use dmad_score::efficientnet::{EfficientNet, EfficientNetConfig, EfficientNetExtractor, ExtractorConfig};
//!
//! # fn main() -> dmad_score::Result<()> {
//! let dev = Device::Cpu;
//! let net = EfficientNet::random(&EfficientNetConfig::tiny(), 42, DType::F32, &dev)?;
//! let cfg = ExtractorConfig { image_size: Some((32, 32)), ..Default::default() };
//! let extractor = EfficientNetExtractor::new(net, cfg)?;
//! // Two grey 20x24 images in [-1, 1].
//! let x = Tensor::rand(-1f32, 1.0, (2, 1, 20, 24), &dev)?;
//! let feats = extractor.features(&x)?;
//! let sides: Vec<usize> = feats.iter().map(|f| f.dim(3)).collect::<candle_core::Result<_>>()?;
//! assert_eq!(sides, [8, 4, 2]); // strides 4, 8, 16 of the 32x32 resized input
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! - `serde`: `Serialize`/`Deserialize` for the configuration types.
//! - `cuda`: forwards to candle's CUDA backend.
#![warn(missing_docs)]

mod combined;
mod ddpm_table;
pub mod dte;
pub mod efficientnet;
mod error;
mod feature;
pub mod maps;
mod reconstruction;
mod scorer;

pub use combined::{
    default_lambda_grid, fit_lambda, CombinedScorer, LambdaFit, NormKind, Normaliser, TermStats,
};
pub use ddpm_table::{DdpmTableConfig, DdpmTableScorer};
pub use dte::{
    DteCategorical, DteCategoricalConfig, DteEstimate, DteInverseGamma, DteInverseGammaConfig,
    DteNonParametric, DteNonParametricConfig, DteTrainConfig,
};
pub use efficientnet::EfficientNetExtractor;
pub use error::{Error, Result};
pub use feature::{feature_error, FeatureScorer, Terms};
pub use reconstruction::{
    draw_seed, squared_error, ReconstructionConfig, ReconstructionScorer, Reconstructor,
};
pub use scorer::{ScoreOutput, Scorer};
