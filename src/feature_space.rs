//! Diffusion in a pretrained feature space (issue 17): images (and scalograms) become
//! PatchCore's locally aware patch features of a frozen EfficientNet-Lite0, and the diffusion
//! model is trained on those patch vectors instead of on pixels. A small MLP denoiser trains on
//! them in minutes on a CPU, and every scorer gives one value per patch: an anomaly map at the
//! feature map's stride, upsampled to the input, Gaussian-smoothed and reduced to the image's
//! score by its maximum (or the mean of its top k), as the field does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use dmad_score::efficientnet::{EfficientNetExtractor, ExtractorConfig, FeatureTaps};
use dmad_score::maps::{self, MapScore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The feature space a detector's diffusion model works in, saved with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeatureSpaceConfig {
    /// EfficientNet-Lite0 blocks whose outputs are tapped, 0-based, finest first. Default
    /// `[4, 10]` (stride 8, 40 channels and stride 16, 112 channels: 28x28 patches of 152
    /// features at the default size).
    pub blocks: Vec<usize>,
    /// Side the input is resized to before the extractor. Default 224 (Lite0's training size).
    pub extractor_size: usize,
    /// Side of the local neighbourhood each tapped map is averaged over (odd). Default 3.
    pub pool: usize,
    /// Standard deviation of the Gaussian that smooths the map at the input's resolution, in
    /// pixels; 0 disables it. Default 4 (as PatchCore).
    pub smoothing_sigma: f64,
    /// How the smoothed map becomes the image score: [`MapScore::Max`] (the default, as
    /// PatchCore and DDAD), [`MapScore::TopKMean`] or [`MapScore::Mean`].
    pub map_score: MapScore,
    /// How the patch features are standardised before the diffusion model sees them:
    /// [`PatchNorm::Global`] (one mean and standard deviation per feature, the default),
    /// [`PatchNorm::Isotropic`] (one mean per feature, one spread for all: the extractor's
    /// own distances, as PatchCore measures them) or [`PatchNorm::PerPosition`] (one per
    /// feature and patch position, for aligned objects).
    pub normalisation: PatchNorm,
    /// Append each patch's position (row and column, scaled to `[-1, 1]`) to its standardised
    /// features, so that the model can learn what is normal where (aligned objects). Default
    /// false.
    #[serde(default)]
    pub positional: bool,
    /// SHA-256 (hex) of the extractor's weights file the model was fitted with; set by
    /// fitting, checked whenever the model is built again, so a model never runs on features
    /// of another network. Default `None` (not fitted yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extractor_sha256: Option<String>,
}

impl Default for FeatureSpaceConfig {
    fn default() -> Self {
        Self {
            blocks: vec![4, 10],
            extractor_size: 224,
            pool: 3,
            smoothing_sigma: 4.0,
            map_score: MapScore::Max,
            normalisation: PatchNorm::Global,
            positional: false,
            extractor_sha256: None,
        }
    }
}

/// How patch features are standardised with the training patches' statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchNorm {
    /// One mean and standard deviation per feature, over every training patch: the model
    /// learns one distribution of patches wherever they lie (textures, shifted objects).
    #[default]
    Global,
    /// One mean per feature and a single spread for every feature (the root mean square of
    /// the centred training patches): the features keep their relative scales, so distances
    /// (and the noise the diffusion model adds) are the extractor's own Euclidean ones, the
    /// metric PatchCore's nearest-neighbour distance uses. Standardising every feature
    /// instead weights a feature that barely varies as much as one that carries the
    /// texture.
    Isotropic,
    /// One mean and standard deviation per feature and patch position, over the training
    /// images (PaDiM's per-position statistics): for aligned objects (solar cells, screws in a
    /// jig, scalograms, whose rows are frequencies), where what is normal depends on where.
    /// A position's standard deviation is floored at a tenth of the feature's global one, so
    /// a position that barely varies in training does not blow small changes up.
    PerPosition,
}

impl FeatureSpaceConfig {
    /// The extractor's preprocessing and taps: [`FeatureSpaceConfig::blocks`] of a
    /// [`FeatureSpaceConfig::extractor_size`] square input, ImageNet's normalisation.
    pub fn extractor_config(&self) -> ExtractorConfig {
        ExtractorConfig {
            image_size: Some((self.extractor_size, self.extractor_size)),
            taps: FeatureTaps::Blocks(self.blocks.clone()),
            ..ExtractorConfig::default()
        }
    }

    /// Checks the fields that need no network.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.blocks.is_empty() {
            return bad(
                "feature_space.blocks",
                "at least one block is needed".into(),
            );
        }
        if !(32..=1024).contains(&self.extractor_size) {
            return bad(
                "feature_space.extractor_size",
                format!("{} is not in [32, 1024]", self.extractor_size),
            );
        }
        if self.pool == 0 || self.pool.is_multiple_of(2) || self.pool > 15 {
            return bad(
                "feature_space.pool",
                format!("{} is not an odd size in [1, 15]", self.pool),
            );
        }
        if !(self.smoothing_sigma.is_finite() && (0.0..=64.0).contains(&self.smoothing_sigma)) {
            return bad(
                "feature_space.smoothing_sigma",
                format!("{} is not in [0, 64]", self.smoothing_sigma),
            );
        }
        match self.map_score {
            MapScore::TopKMean { k: 0 } => {
                return bad("feature_space.map_score", "top-k mean needs k >= 1".into())
            }
            MapScore::Inner => {
                return bad(
                    "feature_space.map_score",
                    "Inner is not a map summary: use Max, Mean or TopKMean".into(),
                )
            }
            _ => {}
        }
        Ok(())
    }
}

/// The SHA-256 of a file, in lower-case hex.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The runtime side of a [`FeatureSpaceConfig`]: the frozen extractor and the per-feature
/// standardisation learnt from the training patches.
#[derive(Debug, Clone)]
pub(crate) struct FeatureSpace {
    extractor: Arc<EfficientNetExtractor>,
    cfg: FeatureSpaceConfig,
    sha256: String,
    dims: usize,
    /// Mean and standard deviation of the training patches: `[1, dims]` for
    /// [`PatchNorm::Global`], `[h * w, dims]` (position-major) for [`PatchNorm::PerPosition`].
    stats: Option<(Tensor, Tensor)>,
}

/// Images run through the extractor at once.
const EXTRACT_BATCH: usize = 8;
/// Names of the standardisation tensors in `feature_space.safetensors`.
pub(crate) const MEAN: &str = "feature_space.mean";
pub(crate) const STD: &str = "feature_space.std";

impl FeatureSpace {
    /// Loads EfficientNet-Lite0 from `weights` with the taps of `cfg`, checking the file's
    /// hash against the one the model was fitted with.
    pub(crate) fn load(cfg: &FeatureSpaceConfig, weights: &Path, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let sha256 = sha256_file(weights)?;
        if let Some(want) = &cfg.extractor_sha256 {
            if *want != sha256 {
                return Err(Error::Model {
                    path: weights.to_path_buf(),
                    reason: format!(
                        "the feature extractor's weights have SHA-256 {sha256}, but the model \
                         was fitted on features of weights with SHA-256 {want}: its scores would \
                         be meaningless; point scoring.feature_weights or DMAD_EFFICIENTNET at \
                         the file it was fitted with (docs/EFFICIENTNET.md)"
                    ),
                });
            }
        }
        let extractor = EfficientNetExtractor::lite0_with(weights, cfg.extractor_config(), device)?;
        let dims = extractor.tap_channels().iter().sum();
        Ok(Self {
            extractor: Arc::new(extractor),
            cfg: cfg.clone(),
            sha256,
            dims,
            stats: None,
        })
    }

    /// Features per row the model sees: the extractor's, and the position's two if
    /// [`FeatureSpaceConfig::positional`].
    pub(crate) fn model_dims(&self) -> usize {
        self.dims + if self.cfg.positional { 2 } else { 0 }
    }

    /// The hex SHA-256 of the extractor's weights.
    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The standardisation, once fitted or loaded.
    pub(crate) fn stats(&self) -> Option<&(Tensor, Tensor)> {
        self.stats.as_ref()
    }

    /// Sets the standardisation (from a saved model): `[1, dims]` tensors for
    /// [`PatchNorm::Global`], `[positions, dims]` for [`PatchNorm::PerPosition`].
    pub(crate) fn set_stats(&mut self, mean: Tensor, std: Tensor) -> Result<()> {
        for (name, t) in [(MEAN, &mean), (STD, &std)] {
            let ok = match (self.cfg.normalisation, t.dims()) {
                (PatchNorm::Global | PatchNorm::Isotropic, [1, d]) => *d == self.dims,
                (PatchNorm::PerPosition, [k, d]) => *k > 0 && *d == self.dims,
                _ => false,
            };
            if !ok || t.dims() != mean.dims() {
                return Err(Error::ShapeMismatch {
                    context: if name == MEAN {
                        "feature-space mean"
                    } else {
                        "feature-space std"
                    },
                    expected: match self.cfg.normalisation {
                        PatchNorm::Global | PatchNorm::Isotropic => format!("[1, {}]", self.dims),
                        PatchNorm::PerPosition => format!("[positions, {}]", self.dims),
                    },
                    got: t.dims().to_vec(),
                });
            }
        }
        self.stats = Some((mean, std));
        Ok(())
    }

    /// Raw patch rows `[n * h * w, dims]` of images `x` (`[n, c, H, W]`), and `(h, w)`.
    pub(crate) fn raw_rows(&self, x: &Tensor) -> Result<(Tensor, (usize, usize))> {
        Ok(dmad_score::patch::patch_rows(
            self.extractor.as_ref(),
            x,
            self.cfg.pool,
            EXTRACT_BATCH,
        )?)
    }

    /// Learns the mean and standard deviation of the training rows (`[n * h * w, dims]`,
    /// image by image, `hw` patches per image) as [`FeatureSpaceConfig::normalisation`] says.
    /// A feature that does not vary is divided by 1; per position, a standard deviation is at
    /// least a tenth of the feature's global one; isotropic, every feature is divided by the
    /// root mean square of all the centred features (saved as `[1, dims]` like the global
    /// statistics).
    pub(crate) fn fit_stats(&mut self, rows: &Tensor, hw: (usize, usize)) -> Result<()> {
        let mean = rows.mean_keepdim(0)?;
        let var = rows.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
        let std = var.sqrt()?;
        let ones = Tensor::ones_like(&std)?;
        let std = std.ge(1e-6)?.where_cond(&std, &ones)?;
        self.stats = Some(match self.cfg.normalisation {
            PatchNorm::Global => (mean, std),
            PatchNorm::Isotropic => {
                let rms = var.mean_all()?.sqrt()?.to_scalar::<f32>()?;
                let rms = if rms >= 1e-6 { rms } else { 1.0 };
                let spread = (Tensor::ones_like(&var)? * rms as f64)?;
                (mean, spread)
            }
            PatchNorm::PerPosition => {
                let per_image = self.images_of(rows, hw)?;
                let pmean = per_image.mean(0)?;
                let pvar = per_image.broadcast_sub(&pmean)?.sqr()?.mean(0)?;
                let floor = (std * 0.1)?;
                let pstd = pvar.sqrt()?.broadcast_maximum(&floor)?;
                (pmean, pstd)
            }
        });
        Ok(())
    }

    /// Rows `[n * h * w, dims]` as `[n, h * w, dims]`.
    fn images_of(&self, rows: &Tensor, (h, w): (usize, usize)) -> Result<Tensor> {
        let (total, dims) = rows.dims2()?;
        let k = h * w;
        if k == 0 || !total.is_multiple_of(k) {
            return Err(Error::ShapeMismatch {
                context: "feature-space rows",
                expected: format!("[n * {k}, {dims}]"),
                got: vec![total, dims],
            });
        }
        Ok(rows.reshape((total / k, k, dims))?)
    }

    /// Standardised rows (`hw` patches per image).
    pub(crate) fn standardise(&self, rows: &Tensor, hw: (usize, usize)) -> Result<Tensor> {
        let z = self.standardise_features(rows, hw)?;
        if !self.cfg.positional {
            return Ok(z);
        }
        let (h, w) = hw;
        let k = h * w;
        let n = rows.dim(0)? / k.max(1);
        let scale = |i: usize, len: usize| {
            if len > 1 {
                2.0 * i as f32 / (len - 1) as f32 - 1.0
            } else {
                0.0
            }
        };
        let pos: Vec<f32> = (0..n * k)
            .flat_map(|i| {
                let p = i % k;
                [scale(p / w, h), scale(p % w, w)]
            })
            .collect();
        let pos = Tensor::from_vec(pos, (n * k, 2), rows.device())?.to_dtype(z.dtype())?;
        Ok(Tensor::cat(&[&z, &pos], 1)?)
    }

    /// The extractor's features of `rows`, standardised.
    fn standardise_features(&self, rows: &Tensor, hw: (usize, usize)) -> Result<Tensor> {
        let (mean, std) = self.stats.as_ref().ok_or(Error::NotFitted)?;
        match self.cfg.normalisation {
            PatchNorm::Global | PatchNorm::Isotropic => {
                Ok(rows.broadcast_sub(mean)?.broadcast_div(std)?)
            }
            PatchNorm::PerPosition => {
                let k = hw.0 * hw.1;
                if mean.dim(0)? != k {
                    return Err(Error::ShapeMismatch {
                        context: "feature-space rows: the model's per-position statistics",
                        expected: format!("{} patch positions", mean.dim(0)?),
                        got: vec![hw.0, hw.1],
                    });
                }
                let x = self.images_of(rows, hw)?;
                let z = x.broadcast_sub(mean)?.broadcast_div(std)?;
                Ok(z.reshape(rows.shape())?)
            }
        }
    }

    /// Standardised patch rows of images `x`, and `(h, w)`.
    pub(crate) fn rows(&self, x: &Tensor) -> Result<(Tensor, (usize, usize))> {
        let (rows, hw) = self.raw_rows(x)?;
        Ok((self.standardise(&rows, hw)?, hw))
    }

    /// Per-patch scores (`n * h * w`, image by image) as image scores and maps `[n, H, W]` at
    /// the input's size: upsampled bilinearly, smoothed, reduced by the map score.
    pub(crate) fn to_output(
        &self,
        patch_scores: &[f32],
        n: usize,
        hw: (usize, usize),
        out_hw: (usize, usize),
        device: &Device,
    ) -> Result<(Vec<f32>, Tensor)> {
        let map = maps::patch_maps(
            patch_scores,
            n,
            hw,
            out_hw,
            self.cfg.smoothing_sigma,
            device,
        )?;
        let scores = maps::reduce_maps(&map, self.cfg.map_score)?;
        Ok((scores, map))
    }
}

/// The EfficientNet-Lite0 weights file: `scoring.feature_weights`, else `DMAD_EFFICIENTNET`.
///
/// # Errors
/// [`Error::InvalidConfig`] saying how to get the weights when neither is set.
pub(crate) fn weights_path(configured: Option<&PathBuf>) -> Result<PathBuf> {
    configured
        .cloned()
        .or_else(|| std::env::var_os("DMAD_EFFICIENTNET").map(PathBuf::from))
        .ok_or_else(|| Error::InvalidConfig {
            field: "scoring.feature_weights",
            reason: "the feature-space detector and the feature and combined scorers need the \
                     EfficientNet-Lite0 weights: set scoring.feature_weights or \
                     DMAD_EFFICIENTNET to the safetensors file (see docs/EFFICIENTNET.md for \
                     how to make it)"
                .to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_out_of_range_are_named() {
        let ok = FeatureSpaceConfig::default();
        ok.validate().unwrap();
        for (cfg, field) in [
            (
                FeatureSpaceConfig {
                    pool: 2,
                    ..ok.clone()
                },
                "pool",
            ),
            (
                FeatureSpaceConfig {
                    blocks: vec![],
                    ..ok.clone()
                },
                "blocks",
            ),
            (
                FeatureSpaceConfig {
                    smoothing_sigma: f64::NAN,
                    ..ok.clone()
                },
                "smoothing_sigma",
            ),
            (
                FeatureSpaceConfig {
                    map_score: MapScore::TopKMean { k: 0 },
                    ..ok.clone()
                },
                "map_score",
            ),
        ] {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    /// A feature space on a seeded random Lite0 written to a temporary file.
    fn space(normalisation: PatchNorm) -> (tempfile::TempDir, FeatureSpace) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lite0.safetensors");
        let mut net = dmad_score::efficientnet::EfficientNetConfig::lite0();
        net.num_classes = None;
        let w = dmad_score::efficientnet::random_weights(&net, 1).unwrap();
        candle_core::safetensors::save(&w, &path).unwrap();
        let cfg = FeatureSpaceConfig {
            normalisation,
            extractor_size: 64,
            ..FeatureSpaceConfig::default()
        };
        let space = FeatureSpace::load(&cfg, &path, &Device::Cpu).unwrap();
        (tmp, space)
    }

    #[test]
    fn per_position_statistics_standardise_each_position_and_floor_its_spread() {
        let (_tmp, mut space) = space(PatchNorm::PerPosition);
        let (n, hw, d) = (6usize, (2usize, 3usize), space.dims);
        let k = hw.0 * hw.1;
        // Feature j at position p of image i: 3 p + j + 10 (i - 2.5) for p > 0; position 0
        // is constant over the images (its spread is floored).
        let v: Vec<f32> = (0..n * k * d)
            .map(|idx| {
                let (i, p, j) = (idx / (k * d), idx / d % k, idx % d);
                let wobble = if p == 0 { 0.0 } else { 10.0 * (i as f32 - 2.5) };
                3.0 * p as f32 + j as f32 + wobble
            })
            .collect();
        let rows = Tensor::from_vec(v, (n * k, d), &Device::Cpu).unwrap();
        space.fit_stats(&rows, hw).unwrap();
        let (mean, std) = space.stats().unwrap().clone();
        assert_eq!(mean.dims(), &[k, d]);
        assert_eq!(std.dims(), &[k, d]);
        let z = space.standardise(&rows, hw).unwrap();
        let z = z.reshape((n, k, d)).unwrap();
        let zm: Vec<Vec<f32>> = z.mean(0).unwrap().to_vec2().unwrap();
        assert!(zm.iter().flatten().all(|m| m.abs() < 1e-4), "{zm:?}");
        // Positions 1..: their own spread (population std of 10 (i - 2.5) is 17.08).
        let s: Vec<Vec<f32>> = std.to_vec2().unwrap();
        assert!((s[1][0] - 17.078).abs() < 1e-2, "{}", s[1][0]);
        // Position 0 does not vary: floored at a tenth of the feature's global spread.
        let global = rows.var_keepdim(0).unwrap(); // unbiased; recompute the population one
        let g0 =
            (global.to_vec2::<f32>().unwrap()[0][0] * (n * k - 1) as f32 / (n * k) as f32).sqrt();
        assert!(
            (s[0][0] - 0.1 * g0).abs() < 1e-3 * g0,
            "{} vs {}",
            s[0][0],
            0.1 * g0
        );
        // Rows of another patch grid are named.
        let err = space.standardise(&rows, (3, 3)).unwrap_err().to_string();
        assert!(err.contains("patch positions"), "{err}");
        // Statistics of the wrong shape are refused when set.
        let err = space
            .set_stats(mean.narrow(1, 0, 3).unwrap(), std.clone())
            .unwrap_err();
        assert!(err.to_string().contains("positions"), "{err}");
    }

    #[test]
    fn global_statistics_are_one_row() {
        let (_tmp, mut space) = space(PatchNorm::Global);
        let d = space.dims;
        let rows = Tensor::randn(0f32, 2.0, (24, d), &Device::Cpu).unwrap();
        space.fit_stats(&rows, (2, 3)).unwrap();
        assert_eq!(space.stats().unwrap().0.dims(), &[1, d]);
        let z = space.standardise(&rows, (2, 3)).unwrap();
        let m: Vec<Vec<f32>> = z.mean_keepdim(0).unwrap().to_vec2().unwrap();
        assert!(m[0].iter().all(|v| v.abs() < 1e-4));
    }

    #[test]
    fn isotropic_statistics_keep_the_extractors_distances_up_to_one_scale() {
        let (_tmp, mut space) = space(PatchNorm::Isotropic);
        let d = space.dims;
        // Feature j has spread 1 + j / 10: standardising each would equalise them.
        let v: Vec<f32> = (0..40 * d)
            .map(|idx| {
                let (i, j) = (idx / d, idx % d);
                let s = 1.0 + j as f32 / 10.0;
                s * ((i * 7 + j * 3) % 11) as f32 + j as f32
            })
            .collect();
        let rows = Tensor::from_vec(v, (40, d), &Device::Cpu).unwrap();
        space.fit_stats(&rows, (5, 8)).unwrap();
        let (mean, spread) = space.stats().unwrap().clone();
        assert_eq!(mean.dims(), &[1, d]);
        assert_eq!(spread.dims(), &[1, d]);
        let z = space.standardise(&rows, (5, 8)).unwrap();
        // Centred per feature, mean square 1 over all features.
        let zm: Vec<Vec<f32>> = z.mean_keepdim(0).unwrap().to_vec2().unwrap();
        assert!(zm[0].iter().all(|v| v.abs() < 1e-3), "{zm:?}");
        let ms = z
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((ms - 1.0).abs() < 1e-4, "{ms}");
        // Every pairwise distance is the raw one divided by the same number.
        let dist = |t: &Tensor, a: usize, b: usize| {
            let diff = (t.get(a).unwrap() - t.get(b).unwrap()).unwrap();
            diff.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .sqrt()
        };
        let k = dist(&rows, 0, 1) / dist(&z, 0, 1);
        for (a, b) in [(2, 9), (5, 31), (17, 38)] {
            let r = dist(&rows, a, b) / dist(&z, a, b);
            assert!((r - k).abs() < 1e-3 * k, "{r} vs {k}");
        }
        // A saved model's statistics of the wrong width are refused.
        let err = space
            .set_stats(mean.narrow(1, 0, 3).unwrap(), spread)
            .unwrap_err();
        assert!(err.to_string().contains(&format!("[1, {d}]")), "{err}");
    }

    #[test]
    fn positions_are_appended_in_minus_one_to_one() {
        let (_tmp, mut space) = space(PatchNorm::Global);
        space.cfg.positional = true;
        let d = space.dims;
        assert_eq!(space.model_dims(), d + 2);
        let hw = (2, 3);
        let rows = Tensor::randn(0f32, 1.0, (2 * 6, d), &Device::Cpu).unwrap();
        space.fit_stats(&rows, hw).unwrap();
        let z = space.standardise(&rows, hw).unwrap();
        assert_eq!(z.dims(), &[12, d + 2]);
        let pos: Vec<Vec<f32>> = z.narrow(1, d, 2).unwrap().to_vec2().unwrap();
        // Image 1's position 5 is row 1, column 2 of a 2x3 grid: (1, 1); position 1: (-1, 0).
        assert_eq!(pos[6 + 5], vec![1.0, 1.0]);
        assert_eq!(pos[1], vec![-1.0, 0.0]);
        assert_eq!(pos[0], vec![-1.0, -1.0]);
    }

    #[test]
    fn a_config_round_trips_through_json() {
        let cfg = FeatureSpaceConfig {
            map_score: MapScore::TopKMean { k: 10 },
            normalisation: PatchNorm::PerPosition,
            extractor_sha256: Some("ab".into()),
            ..FeatureSpaceConfig::default()
        };
        let back: FeatureSpaceConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }
}
