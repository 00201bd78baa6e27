//! Anomaly scores and maps for dmad.
//!
//! Every scorer implements the small [`Scorer`] trait: it scores a batch, giving one score per
//! sample (higher is more anomalous) and, where the data has positions, an anomaly map of the
//! input's spatial size ([`ScoreOutput`]). Fitting (normalisation statistics, DTE training)
//! happens in explicit `fit` functions, never inside `score`.
//!
//! - [`ReconstructionScorer`]: partial diffusion with any `dmad_diffusion` sampler
//!   ([`Reconstructor`], seeded noise, optionally averaged over draws) and
//!   `E_recon = ||x0 - x0_hat||^2`, with a map per pixel or time step; optionally conditioned
//!   on the input at every step (DDAD's guidance, [`Reconstructor::conditioned`]).
//! - [`FeatureScorer`]: `E_feat = sum_l ||f_l(x0) - f_l(x0_hat)||^2` (or DDAD's per-position
//!   `1 - cos`, [`FeatureDistance`]) through a frozen [`dmad_core::FeatureExtractor`], layer
//!   maps upsampled to the input; [`Terms::pooled`] makes both terms map-level scores (the
//!   maximum or top-k mean of the smoothed map).
//! - [`CombinedScorer`]: `A = lambda z(E_recon) + (1 - lambda) z(E_feat)`, both terms
//!   normalised by a [`Normaliser`] fitted on normal data; [`fit_lambda`] picks `lambda` by
//!   AUROC from normal and (real or generated) anomalous samples.
//! - [`dte`]: diffusion time estimation for tables (arXiv 2305.18593):
//!   [`DteNonParametric`], [`DteInverseGamma`], [`DteCategorical`]; and
//!   [`DdpmTableScorer`], the DTE paper's DDPM reconstruction baseline.
//! - [`DenoisingErrorScorer`]: the denoising error `||eps_theta(x_t, t) - eps||^2` averaged
//!   over several noise levels (an ELBO-style density score), one network call per level.
//! - [`ImputationScorer`]: series windows masked by a grating, the masked steps noised and
//!   imputed from the rest by an imputation denoiser; the per-step error map (ImDiffusion).
//! - [`patch`]: PatchCore's locally aware patch features of a frozen extractor, the space in
//!   which dmad's feature-space diffusion detector works; [`PatchCore`]: the memory-bank
//!   baseline on the same features (greedy k-center coreset, nearest-neighbour distance).
//! - [`maps`]: Gaussian smoothing (scipy's `gaussian_filter`), resizing to the input, and one
//!   score per point of a series from overlapping windows; [`Tiling`]: overlapping tiles of
//!   large images and their maps stitched back.
//! - [`efficientnet`]: EfficientNet-Lite0 in candle, matching the PyTorch reference
//!   (`efficientnet-lite-pytorch` 0.1.0) block by block, and [`EfficientNetExtractor`], dmad's
//!   [`dmad_core::FeatureExtractor`]: the frozen perceptual network of the feature score and
//!   of the training loss.
//!
//! # Scoring example
//! The exact denoiser of `N(0, 0.5^2)` images reconstructs a bright defect badly:
//! ```
//! use candle_core::{Device, Tensor};
//! use dmad_diffusion::{DdimConfig, DdimSampler, GaussianDenoiser, NoiseScheduleConfig, Start};
//! use dmad_score::{maps, ReconstructionConfig, ReconstructionScorer, Reconstructor, Scorer};
//!
//! # fn main() -> dmad_score::Result<()> {
//! let schedule = NoiseScheduleConfig::default().build()?;
//! let model = GaussianDenoiser::new(&schedule, 0.0, 0.5, Default::default())?;
//! let ddim = DdimSampler::new(&schedule, DdimConfig { num_inference_steps: 10, ..Default::default() })?;
//! let cfg = ReconstructionConfig { start: Start::Strength(0.5), draws: 2, seed: 7 };
//! let scorer = ReconstructionScorer::new(Reconstructor::new(model, ddim, cfg)?);
//!
//! let mut img = vec![0f32; 16 * 16];
//! img[5 * 16 + 9] = 2.0; // a defect at row 5, column 9
//! let x = Tensor::from_vec(img, (1, 1, 16, 16), &Device::Cpu)?;
//! let out = scorer.score(&x)?;
//! let map = maps::gaussian_smooth(&out.map.unwrap(), 1.0)?; // [1, 16, 16]
//! let flat = map.flatten_all()?.to_vec1::<f32>()?;
//! let peak = (0..flat.len()).max_by(|&a, &b| flat[a].total_cmp(&flat[b])).unwrap();
//! assert_eq!((peak / 16, peak % 16), (5, 9));
//! # Ok(())
//! # }
//! ```
//!
//! # Conventions
//! - Scores: higher is more anomalous. Maps are `[batch, height, width]` for images and
//!   scalograms, `[batch, length]` for series windows, none for tables `[batch, features]`.
//! - Randomness is injected: scorers and DTE training take a `seed`.
//! - Images are `[batch, channel, height, width]` in `[-1, 1]`, with 1 (grey) or 3 (RGB)
//!   channels; the extractor resizes, converts grey to RGB and normalises them itself.
//! - Feature maps are returned from the finest to the coarsest (strides 4, 8 and 16 by
//!   default).
//! - The network's weights are frozen; gradients flow to the input only.
//!
//! # Feature-extractor example
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
mod denoising;
pub mod dte;
pub mod efficientnet;
mod error;
mod feature;
mod imputation;
pub mod maps;
pub mod patch;
pub mod patchcore;
mod reconstruction;
mod scorer;
mod tiling;

pub use combined::{
    default_lambda_grid, fit_lambda, CombinedScorer, LambdaFit, NormKind, Normaliser, TermStats,
};
pub use ddpm_table::{DdpmTableConfig, DdpmTableScorer};
pub use denoising::{levels, DenoisingErrorConfig, DenoisingErrorScorer};
pub use dte::{
    DteCategorical, DteCategoricalConfig, DteEstimate, DteInverseGamma, DteInverseGammaConfig,
    DteNonParametric, DteNonParametricConfig, DteTrainConfig,
};
pub use efficientnet::EfficientNetExtractor;
pub use error::{Error, Result};
pub use feature::{feature_error, feature_error_with, FeatureDistance, FeatureScorer, Terms};
pub use imputation::{ImputationConfig, ImputationScorer};
pub use patchcore::{PatchCore, PatchCoreConfig};
pub use reconstruction::{
    draw_seed, squared_error, ReconstructionConfig, ReconstructionScorer, Reconstructor,
};
pub use scorer::{ScoreOutput, Scorer};
pub use tiling::Tiling;
