//! The combined score `A = lambda * E_recon + (1 - lambda) * E_feat` on normalised terms, and
//! the choice of `lambda`.

use candle_core::{DType, Tensor};
use dmad_core::{Denoiser, FeatureExtractor};
use dmad_diffusion::Sampler;

use crate::feature::{FeatureScorer, Terms};
use crate::scorer::{check_finite, invalid_input, ScoreOutput, Scorer};
use crate::{Error, Result};

/// How a term is normalised by the statistics of normal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NormKind {
    /// `(v - mean) / std` with the mean and the population standard deviation (`ddof = 0`) of
    /// the normal values: a z-score. The default.
    #[default]
    MeanStd,
    /// `(v - median) / IQR` with the median and the interquartile range (quantiles 0.25 and
    /// 0.75, linear interpolation as numpy's default) of the normal values: robust to a few
    /// anomalies hidden in the normal data.
    MedianIqr,
}

/// The location and scale of one term on normal data: a value `v` is normalised to
/// `(v - location) / scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TermStats {
    /// The mean or the median of the normal values.
    pub location: f64,
    /// The standard deviation or the IQR of the normal values; positive.
    pub scale: f64,
}

/// The `q`-quantile of sorted values, linear interpolation (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl TermStats {
    /// The statistics of the normal values `values`.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidInput`] if there are fewer than 2 values, a value is not
    /// finite, or the values do not spread (scale 0: the term cannot be normalised).
    pub fn fit(values: &[f32], kind: NormKind) -> Result<Self> {
        if values.len() < 2 {
            return Err(invalid_input(format!(
                "normalisation needs at least 2 normal values, got {}",
                values.len()
            )));
        }
        check_finite(values, "normal scores")?;
        let v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        let (location, scale) = match kind {
            NormKind::MeanStd => {
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                (mean, var.sqrt())
            }
            NormKind::MedianIqr => {
                let mut s = v;
                s.sort_by(f64::total_cmp);
                (quantile(&s, 0.5), quantile(&s, 0.75) - quantile(&s, 0.25))
            }
        };
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(invalid_input(format!(
                "the normal values do not spread (scale {scale}); the term cannot be normalised"
            )));
        }
        Ok(Self { location, scale })
    }

    /// `(v - location) / scale`.
    pub fn apply(&self, v: f32) -> f32 {
        ((v as f64 - self.location) / self.scale) as f32
    }

    fn apply_tensor(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.to_dtype(DType::F32)?
            .affine(1.0 / self.scale, -self.location / self.scale)?)
    }
}

/// The normalisation of both terms by statistics of normal data, so that `lambda` means the
/// same on every data set: scores are normalised with the statistics of the normal scores,
/// maps with those of every position of the normal maps.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Normaliser {
    /// How the statistics were computed.
    pub kind: NormKind,
    /// Of the normal `E_recon` scores.
    pub recon: TermStats,
    /// Of the normal `E_feat` scores.
    pub feat: TermStats,
    /// Of every value of the normal `E_recon` maps (`None` without maps).
    pub recon_map: Option<TermStats>,
    /// Of every value of the normal `E_feat` maps (`None` without maps).
    pub feat_map: Option<TermStats>,
}

fn map_values(map: &Tensor) -> Result<Vec<f32>> {
    Ok(map.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn check_lambda(lambda: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&lambda) {
        return Err(Error::config(
            "lambda",
            format!("must be in [0, 1], got {lambda}"),
        ));
    }
    Ok(())
}

impl Normaliser {
    /// Fits the statistics on the terms of normal data (scores, and maps where both terms
    /// have one).
    ///
    /// # Errors
    /// As [`TermStats::fit`]; [`dmad_core::Error::ShapeMismatch`] if the terms have different
    /// lengths.
    pub fn fit(normal: &Terms, kind: NormKind) -> Result<Self> {
        check_same_len(normal, "Normaliser::fit")?;
        let (recon_map, feat_map) = match (&normal.recon.map, &normal.feat.map) {
            (Some(r), Some(f)) => (
                Some(TermStats::fit(&map_values(r)?, kind)?),
                Some(TermStats::fit(&map_values(f)?, kind)?),
            ),
            _ => (None, None),
        };
        Ok(Self {
            kind,
            recon: TermStats::fit(&normal.recon.scores, kind)?,
            feat: TermStats::fit(&normal.feat.scores, kind)?,
            recon_map,
            feat_map,
        })
    }

    /// `lambda * z_recon + (1 - lambda) * z_feat` for each sample, with `z` the normalised
    /// terms.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (field `lambda`) unless `0 <= lambda <= 1`;
    /// [`dmad_core::Error::ShapeMismatch`] if the terms differ in length.
    pub fn combine_scores(&self, lambda: f64, recon: &[f32], feat: &[f32]) -> Result<Vec<f32>> {
        check_lambda(lambda)?;
        if recon.len() != feat.len() {
            return Err(Error::shape(
                "Normaliser::combine_scores: feat",
                format!("{} scores (as recon)", recon.len()),
                &[feat.len()],
            ));
        }
        Ok(recon
            .iter()
            .zip(feat)
            .map(|(&r, &f)| {
                (lambda * self.recon.apply(r) as f64 + (1.0 - lambda) * self.feat.apply(f) as f64)
                    as f32
            })
            .collect())
    }

    /// The combined map `lambda * z_recon + (1 - lambda) * z_feat`, each map normalised with
    /// the statistics of the normal maps (or, if none were fitted, of the normal scores).
    ///
    /// # Errors
    /// As [`Normaliser::combine_scores`], for maps of different shapes.
    pub fn combine_maps(&self, lambda: f64, recon: &Tensor, feat: &Tensor) -> Result<Tensor> {
        check_lambda(lambda)?;
        if recon.dims() != feat.dims() {
            return Err(Error::shape(
                "Normaliser::combine_maps: feat",
                format!("{:?} (the recon map's shape)", recon.dims()),
                feat.dims(),
            ));
        }
        let r = self.recon_map.unwrap_or(self.recon).apply_tensor(recon)?;
        let f = self.feat_map.unwrap_or(self.feat).apply_tensor(feat)?;
        Ok(((r * lambda)? + (f * (1.0 - lambda))?)?)
    }

    /// The combined scores and map of `terms`.
    ///
    /// # Errors
    /// As [`Normaliser::combine_scores`] and [`Normaliser::combine_maps`].
    pub fn combine(&self, lambda: f64, terms: &Terms) -> Result<ScoreOutput> {
        let scores = self.combine_scores(lambda, &terms.recon.scores, &terms.feat.scores)?;
        let map = match (&terms.recon.map, &terms.feat.map) {
            (Some(r), Some(f)) => Some(self.combine_maps(lambda, r, f)?),
            _ => None,
        };
        Ok(ScoreOutput { scores, map })
    }
}

fn check_same_len(t: &Terms, context: &'static str) -> Result<()> {
    if t.recon.scores.len() != t.feat.scores.len() {
        return Err(Error::shape(
            context,
            format!("as many feat as recon scores ({})", t.recon.scores.len()),
            &[t.feat.scores.len()],
        ));
    }
    Ok(())
}

/// The `lambda` grid [`fit_lambda`] uses by default: `0, 0.05, ..., 1` (21 values).
pub fn default_lambda_grid() -> Vec<f64> {
    (0..=20).map(|i| i as f64 / 20.0).collect()
}

/// The outcome of [`fit_lambda`].
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaFit {
    /// The chosen `lambda`.
    pub lambda: f64,
    /// The AUROC of the combined score at that `lambda`.
    pub auroc: f64,
    /// `(lambda, AUROC)` for every `lambda` of the grid, in grid order.
    pub curve: Vec<(f64, f64)>,
}

/// Chooses `lambda` from the terms of normal and anomalous samples (real, or generated
/// anomalies): the `lambda` of `grid` whose combined score (with `normaliser`) has the highest
/// AUROC (anomalies positive). Where several `lambda` reach the best AUROC (within `1e-12`),
/// the median of them is taken (the lower middle one for an even count), which keeps away from
/// the edge of a plateau.
///
/// # Errors
/// [`dmad_core::Error::InvalidConfig`] (field `lambda`) for an empty grid or a value outside
/// `[0, 1]`; [`dmad_core::Error::ShapeMismatch`] if terms differ in length; [`Error::Metrics`]
/// if either set is empty or a score is not finite.
pub fn fit_lambda(
    normaliser: &Normaliser,
    normal: &Terms,
    anomalous: &Terms,
    grid: &[f64],
) -> Result<LambdaFit> {
    if grid.is_empty() {
        return Err(Error::config("lambda", "the grid is empty"));
    }
    for &l in grid {
        check_lambda(l)?;
    }
    check_same_len(normal, "fit_lambda: normal terms")?;
    check_same_len(anomalous, "fit_lambda: anomalous terms")?;
    let labels: Vec<bool> = std::iter::repeat_n(false, normal.recon.scores.len())
        .chain(std::iter::repeat_n(true, anomalous.recon.scores.len()))
        .collect();
    let recon: Vec<f32> = normal
        .recon
        .scores
        .iter()
        .chain(&anomalous.recon.scores)
        .copied()
        .collect();
    let feat: Vec<f32> = normal
        .feat
        .scores
        .iter()
        .chain(&anomalous.feat.scores)
        .copied()
        .collect();
    let mut curve = Vec::with_capacity(grid.len());
    for &l in grid {
        let a = normaliser.combine_scores(l, &recon, &feat)?;
        curve.push((l, dmad_metrics::auroc(&a, &labels)?));
    }
    let best = curve.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    let mut ties: Vec<(f64, f64)> = curve
        .iter()
        .copied()
        .filter(|c| c.1 >= best - 1e-12)
        .collect();
    ties.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lambda, auroc) = ties[(ties.len() - 1) / 2];
    Ok(LambdaFit {
        lambda,
        auroc,
        curve,
    })
}

/// The combined score `A = lambda * z(E_recon) + (1 - lambda) * z(E_feat)`, both terms of the
/// same reconstructions normalised by a [`Normaliser`] fitted on normal data; the map combines
/// the terms' maps the same way.
///
/// # Example
/// ```no_run
/// # use dmad_score::*;
/// # fn demo<D: dmad_core::Denoiser, S: dmad_diffusion::Sampler + Clone, F: dmad_core::FeatureExtractor>(
/// #     feature_scorer: FeatureScorer<D, S, F>, normal: &candle_core::Tensor, test: &candle_core::Tensor,
/// # ) -> Result<()> {
/// let normaliser = Normaliser::fit(&feature_scorer.terms(normal)?, NormKind::MeanStd)?;
/// let scorer = CombinedScorer::new(feature_scorer, normaliser, 0.5)?;
/// let out = scorer.score(test)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CombinedScorer<D, S, F> {
    inner: FeatureScorer<D, S, F>,
    normaliser: Normaliser,
    lambda: f64,
}

impl<D: Denoiser, S: Sampler + Clone, F: FeatureExtractor> CombinedScorer<D, S, F> {
    /// The combined scorer with weight `lambda` on the reconstruction term.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (field `lambda`) unless `0 <= lambda <= 1`.
    pub fn new(inner: FeatureScorer<D, S, F>, normaliser: Normaliser, lambda: f64) -> Result<Self> {
        check_lambda(lambda)?;
        Ok(Self {
            inner,
            normaliser,
            lambda,
        })
    }

    /// The weight of the reconstruction term.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// Sets the weight of the reconstruction term (for example from [`fit_lambda`]).
    ///
    /// # Errors
    /// As [`CombinedScorer::new`].
    pub fn set_lambda(&mut self, lambda: f64) -> Result<()> {
        check_lambda(lambda)?;
        self.lambda = lambda;
        Ok(())
    }

    /// The normalisation statistics.
    pub fn normaliser(&self) -> &Normaliser {
        &self.normaliser
    }

    /// The feature scorer that gives both terms.
    pub fn terms_scorer(&self) -> &FeatureScorer<D, S, F> {
        &self.inner
    }
}

impl<D: Denoiser, S: Sampler + Clone, F: FeatureExtractor> Scorer for CombinedScorer<D, S, F> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        let terms = self.inner.terms(x)?;
        self.normaliser.combine(self.lambda, &terms)
    }
}
