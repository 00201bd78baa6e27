//! The feature score `E_feat`: distances between the features of a sample and of its
//! reconstruction.

use candle_core::{DType, Tensor};
use dmad_core::{Denoiser, FeatureExtractor};
use dmad_diffusion::Sampler;

use crate::maps::{resize_map, smooth_and_reduce, MapScore};
use crate::reconstruction::{average, squared_error, Reconstructor};
use crate::scorer::{batches, check_batch, ScoreOutput, Scorer};
use crate::{Error, Result};

/// The feature error between `x0` (whose features `f0 = f(x0)` are given) and `x0_hat`:
/// `E_feat = sum over layers l of mean_{c, positions} (f_l(x0) - f_l(x0_hat))^2`, and, when
/// the input has positions, the map `sum over l of upsample(mean_c (f_l(x0) -
/// f_l(x0_hat))^2)`, each layer's map resized bilinearly to the input's spatial size.
///
/// # Shapes
/// - `x0_hat`: as the input, `[batch, channel, height, width]` (map `[batch, height, width]`),
///   `[batch, channel, length]` (map `[batch, length]`) or `[batch, features]` (no map);
/// - `f0`: the extractor's layers for `x0`: `[batch, c_l, h_l, w_l]` (images), `[batch, c_l,
///   l_l]` (series), any `[batch, ...]` for tables.
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] if the layers of `x0_hat` do not match `f0`, a layer's
/// rank does not fit the input's, or the extractor returns no layer.
pub fn feature_error<F: FeatureExtractor + ?Sized>(
    extractor: &F,
    f0: &[Tensor],
    x0_hat: &Tensor,
) -> Result<ScoreOutput> {
    feature_error_with(extractor, f0, x0_hat, FeatureDistance::SquaredError)
}

/// How the features of a sample and of its reconstruction are compared at each position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FeatureDistance {
    /// The squared difference, averaged over the channels (the method's `||f - f_hat||^2`
    /// per element). The default.
    #[default]
    SquaredError,
    /// `1 - cos(f, f_hat)` of the channel vectors at each position, as DDAD compares feature
    /// maps: insensitive to the features' scale, which differs from layer to layer.
    Cosine,
}

/// As [`feature_error`], comparing the layers with `distance` at each position; the score of
/// a sample is the sum over layers of the mean over positions.
///
/// # Errors
/// As [`feature_error`].
pub fn feature_error_with<F: FeatureExtractor + ?Sized>(
    extractor: &F,
    f0: &[Tensor],
    x0_hat: &Tensor,
    distance: FeatureDistance,
) -> Result<ScoreOutput> {
    let f1 = extractor.features(x0_hat)?;
    feature_error_of(f0, &f1, x0_hat.dims(), distance)
}

/// The per-position distance `[batch, ...positions]` of two layers `[batch, channel, ...]`.
fn position_distance(a: &Tensor, h: &Tensor, distance: FeatureDistance) -> Result<Tensor> {
    let (a, h) = (a.to_dtype(DType::F32)?, h.to_dtype(DType::F32)?);
    Ok(match distance {
        FeatureDistance::SquaredError => (a - h)?.sqr()?.mean(1)?,
        FeatureDistance::Cosine => {
            let dot = (&a * &h)?.sum(1)?;
            let na = a.sqr()?.sum(1)?.sqrt()?;
            let nh = h.sqr()?.sum(1)?.sqrt()?;
            // As PyTorch's `cosine_similarity`: the product of the norms floored at a small
            // epsilon, so a zero vector has similarity 0, not NaN.
            let cos = (dot / (na * nh)?.maximum(1e-12)?)?;
            cos.affine(-1.0, 1.0)?
        }
    })
}

fn feature_error_of(
    f0: &[Tensor],
    f1: &[Tensor],
    input: &[usize],
    distance: FeatureDistance,
) -> Result<ScoreOutput> {
    if f0.is_empty() || f0.len() != f1.len() {
        return Err(Error::shape(
            "feature_error: layers",
            format!("the same non-zero number of layers for x0 ({})", f0.len()),
            &[f1.len()],
        ));
    }
    let b = input[0];
    let spatial = &input[2.min(input.len())..];
    let mut scores = vec![0f32; b];
    let mut map: Option<Tensor> = None;
    for (a, h) in f0.iter().zip(f1) {
        if a.dims() != h.dims() || a.dims().first() != Some(&b) {
            return Err(Error::shape(
                "feature_error: layer of x0_hat",
                format!("{:?} (the layer of x0, batch {b})", a.dims()),
                h.dims(),
            ));
        }
        if a.rank() < 2 {
            return Err(Error::shape(
                "feature_error: layer",
                "[batch, channel, ...]",
                a.dims(),
            ));
        }
        // `[batch, ...positions]`; a layer without positions (`[batch, features]`) is `[batch]`.
        let d = position_distance(a, h, distance)?;
        let per = if d.rank() == 1 {
            d.to_vec1::<f32>()?
        } else {
            d.reshape((b, ()))?.mean(1)?.to_vec1::<f32>()?
        };
        scores.iter_mut().zip(per).for_each(|(s, v)| *s += v);
        if !spatial.is_empty() {
            if d.rank() + 1 != input.len() {
                return Err(Error::shape(
                    "feature_error: layer (same rank as the input, to map it)",
                    format!("rank {}", input.len()),
                    a.dims(),
                ));
            }
            let m = resize_map(&d, spatial)?;
            map = Some(match map {
                None => m,
                Some(acc) => (acc + m)?,
            });
        }
    }
    Ok(ScoreOutput { scores, map })
}

/// The reconstruction and feature terms of the same reconstructions of a batch.
#[derive(Debug, Clone)]
pub struct Terms {
    /// `E_recon` (see [`crate::ReconstructionScorer`]).
    pub recon: ScoreOutput,
    /// `E_feat` (see [`FeatureScorer`]).
    pub feat: ScoreOutput,
}

impl Terms {
    /// Each term's map smoothed with a Gaussian of `sigma` positions and, unless `how` is
    /// [`MapScore::Inner`], its scores replaced by that summary of the smoothed map
    /// ([`crate::maps::smooth_and_reduce`]): how a map-level score (DDAD's maximum of the smoothed
    /// map) is made of both terms.
    ///
    /// # Errors
    /// As [`crate::maps::smooth_and_reduce`].
    pub fn pooled(self, sigma: f64, how: MapScore) -> Result<Terms> {
        Ok(Terms {
            recon: smooth_and_reduce(self.recon, sigma, how)?,
            feat: smooth_and_reduce(self.feat, sigma, how)?,
        })
    }

    /// Joins the terms of several batches, in order.
    ///
    /// # Errors
    /// As [`ScoreOutput::concat`].
    pub fn concat(parts: &[Terms]) -> Result<Terms> {
        let recon: Vec<ScoreOutput> = parts.iter().map(|p| p.recon.clone()).collect();
        let feat: Vec<ScoreOutput> = parts.iter().map(|p| p.feat.clone()).collect();
        Ok(Terms {
            recon: ScoreOutput::concat(&recon)?,
            feat: ScoreOutput::concat(&feat)?,
        })
    }
}

/// The feature score `E_feat = sum_l ||f_l(x0) - f_l(x0_hat)||^2` (per element of each layer;
/// see [`feature_error`]) through a frozen [`FeatureExtractor`], after partial diffusion, with
/// the layers' maps upsampled to the input's size and summed, averaged over the noise draws.
///
/// [`FeatureScorer::terms`] gives `E_recon` and `E_feat` of the same reconstructions, for
/// [`crate::CombinedScorer`].
///
/// # Shapes
/// `x`: what the extractor takes: `[batch, channel, height, width]` for EfficientNet (images
/// and scalograms); series and tables work with an extractor for them.
#[derive(Debug, Clone)]
pub struct FeatureScorer<D, S, F> {
    rec: Reconstructor<D, S>,
    extractor: F,
    distance: FeatureDistance,
}

impl<D: Denoiser, S: Sampler + Clone, F: FeatureExtractor> FeatureScorer<D, S, F> {
    /// The feature scorer of `rec` through `extractor`.
    pub fn new(rec: Reconstructor<D, S>, extractor: F) -> Self {
        Self {
            rec,
            extractor,
            distance: FeatureDistance::SquaredError,
        }
    }

    /// Compares the features with `distance` ([`FeatureDistance::SquaredError`] by default).
    pub fn with_distance(mut self, distance: FeatureDistance) -> Self {
        self.distance = distance;
        self
    }

    /// How the features are compared.
    pub fn distance(&self) -> FeatureDistance {
        self.distance
    }

    /// The reconstructor.
    pub fn reconstructor(&self) -> &Reconstructor<D, S> {
        &self.rec
    }

    /// The feature extractor.
    pub fn extractor(&self) -> &F {
        &self.extractor
    }

    /// Both terms, `E_recon` and `E_feat`, from the same reconstructions of `x`, each
    /// averaged over the noise draws.
    ///
    /// # Errors
    /// As [`Scorer::score`].
    pub fn terms(&self, x: &Tensor) -> Result<Terms> {
        check_batch(x, "FeatureScorer::terms: x", &[2, 3, 4])?;
        let f0 = self.extractor.features(x)?;
        let mut recon = Vec::new();
        let mut feat = Vec::new();
        for r in self.rec.reconstruct(x)? {
            recon.push(squared_error(x, &r)?);
            feat.push(feature_error_with(&self.extractor, &f0, &r, self.distance)?);
        }
        Ok(Terms {
            recon: average(recon)?,
            feat: average(feat)?,
        })
    }
}

impl<D: Denoiser, S: Sampler + Clone, F: FeatureExtractor> FeatureScorer<D, S, F> {
    /// [`FeatureScorer::terms`] in batches of at most `batch_size` samples, joined in order
    /// (for example to fit a [`crate::Normaliser`] on a whole normal set).
    ///
    /// # Errors
    /// As [`Scorer::score_batched`].
    pub fn terms_batched(&self, x: &Tensor, batch_size: usize) -> Result<Terms> {
        let parts = batches(x, batch_size, "FeatureScorer::terms_batched: x")?
            .into_iter()
            .map(|(s, l)| self.terms(&x.narrow(0, s, l)?))
            .collect::<Result<Vec<_>>>()?;
        Terms::concat(&parts)
    }
}

impl<D: Denoiser, S: Sampler + Clone, F: FeatureExtractor> Scorer for FeatureScorer<D, S, F> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        check_batch(x, "FeatureScorer::score: x", &[2, 3, 4])?;
        let f0 = self.extractor.features(x)?;
        let outs = self
            .rec
            .reconstruct(x)?
            .iter()
            .map(|r| feature_error_with(&self.extractor, &f0, r, self.distance))
            .collect::<Result<Vec<_>>>()?;
        average(outs)
    }
}
