//! Calibration of a detector on generated anomalies: the scoring start strength, the weight
//! `lambda` between the reconstruction and feature terms, and an F1-optimal threshold, chosen
//! from generated anomalies against held-out normal data, with no real anomaly.

use dmad_metrics::Threshold;
use dmad_score::{fit_lambda, NormKind, Normaliser, ScoreOutput, Terms};

use crate::{Error, Result};

/// The per-sample score terms of a set of samples at one scoring start.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTerms {
    /// The reconstruction term `E_recon`, one per sample.
    pub recon: Vec<f32>,
    /// The feature term `E_feat`, one per sample, when a feature extractor is available.
    pub feat: Option<Vec<f32>>,
}

/// The terms of held-out normal samples and of generated anomalies at one start strength.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The scoring start strength (the fraction of the plan, as `Start::Strength`).
    pub strength: f64,
    /// Terms of held-out normal samples.
    pub normal: ScoreTerms,
    /// Terms of generated anomalies.
    pub anomalous: ScoreTerms,
}

/// How [`calibrate`] chooses.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationConfig {
    /// The `lambda` grid for the combined score. Default `0, 0.05, ..., 1`.
    pub lambda_grid: Vec<f64>,
    /// How both terms are normalised on the normal samples. Default mean and standard
    /// deviation.
    pub norm: NormKind,
    /// The share of anomalies expected in the data the detector will see, in `(0, 1)`, for
    /// the F1-optimal threshold. The best F1 depends on it: `None` (the default) takes the
    /// share of the calibration set as it is (generated anomalies among all samples); with
    /// `Some(p)` the counts are reweighted so that anomalies make up `p`
    /// (`tp = p TPR`, `fp = (1 - p) FPR`, `fn = p (1 - TPR)`). Only the threshold and F1
    /// depend on it, not the strength's AUROC or `lambda`.
    pub prevalence: Option<f64>,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            lambda_grid: dmad_score::default_lambda_grid(),
            norm: NormKind::MeanStd,
            prevalence: None,
        }
    }
}

/// The outcome at one candidate strength.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateResult {
    /// The strength.
    pub strength: f64,
    /// The best `lambda` there (1 without a feature term).
    pub lambda: f64,
    /// The AUROC of the combined score at that `lambda`, generated anomalies against normals.
    pub auroc: f64,
    /// The best F1 there.
    pub f1: f64,
}

/// What [`calibrate`] chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrated {
    /// The chosen scoring start strength.
    pub strength: f64,
    /// The chosen weight of the reconstruction term (1 without a feature term).
    pub lambda: f64,
    /// The normalisation of the terms at the chosen strength (fitted on the normal samples).
    /// Without a feature term its `feat` statistics are those of `recon`.
    pub normaliser: Normaliser,
    /// The F1-optimal threshold on the combined, normalised score
    /// `lambda z(E_recon) + (1 - lambda) z(E_feat)`.
    pub threshold: Threshold,
    /// When `lambda = 1`: the F1-optimal threshold on the raw reconstruction score (the same
    /// split of the samples), as a reconstruction-only detector scores.
    pub recon_threshold: Option<Threshold>,
    /// AUROC of the chosen setting on the generated anomalies.
    pub auroc: f64,
    /// F1 of the chosen threshold on the generated anomalies.
    pub f1: f64,
    /// Every candidate's outcome, in the given order.
    pub candidates: Vec<CandidateResult>,
}

fn terms_of(t: &ScoreTerms) -> Terms {
    let out = |s: &[f32]| ScoreOutput {
        scores: s.to_vec(),
        map: None,
    };
    Terms {
        recon: out(&t.recon),
        feat: out(t.feat.as_deref().unwrap_or(&t.recon)),
    }
}

/// The F1-optimal threshold between `normal` and `anomalous` scores (a score at or above it is
/// anomalous; among equal F1 the highest threshold) and its F1, with the counts reweighted to
/// the share `prevalence` of anomalies when given.
fn f1_threshold(
    normal: &[f32],
    anomalous: &[f32],
    prevalence: Option<f64>,
) -> Result<(Threshold, f64)> {
    let Some(p) = prevalence else {
        let labels: Vec<bool> = std::iter::repeat_n(false, normal.len())
            .chain(std::iter::repeat_n(true, anomalous.len()))
            .collect();
        let all: Vec<f32> = normal.iter().chain(anomalous).copied().collect();
        let best = dmad_metrics::f1_max(&all, &labels)?;
        return Ok((Threshold::f1_optimal(&all, &labels)?, best.f1));
    };
    if !(p > 0.0 && p < 1.0) {
        return Err(Error::config(
            "prevalence",
            format!("must be in (0, 1), got {p}"),
        ));
    }
    let mut all: Vec<(f32, bool)> = normal
        .iter()
        .map(|&v| (v, false))
        .chain(anomalous.iter().map(|&v| (v, true)))
        .collect();
    if all.iter().any(|v| !v.0.is_finite()) {
        return Err(Error::config("scores", "a score is not finite"));
    }
    // Descending: sweeping the threshold down through the distinct scores.
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (wn, wa) = ((1.0 - p) / normal.len() as f64, p / anomalous.len() as f64);
    let (mut tp, mut fp) = (0f64, 0f64);
    let (mut best_f1, mut best_t) = (-1f64, all[0].0);
    let mut i = 0;
    while i < all.len() {
        let t = all[i].0;
        while i < all.len() && all[i].0 == t {
            if all[i].1 {
                tp += wa;
            } else {
                fp += wn;
            }
            i += 1;
        }
        let f1 = 2.0 * tp / (2.0 * tp + fp + (p - tp));
        if f1 > best_f1 + 1e-12 {
            best_f1 = f1;
            best_t = t;
        }
    }
    let threshold = Threshold {
        method: dmad_metrics::ThresholdMethod::F1Optimal,
        value: best_t as f64,
    };
    Ok((threshold, best_f1))
}

fn check(c: &Candidate) -> Result<()> {
    if !(c.strength > 0.0 && c.strength <= 1.0) {
        return Err(Error::config(
            "strength",
            format!("candidate strengths must be in (0, 1], got {}", c.strength),
        ));
    }
    for (what, t) in [("normal", &c.normal), ("anomalous", &c.anomalous)] {
        if t.recon.len() < 2 {
            return Err(Error::shape(
                "calibrate: terms",
                format!("at least 2 {what} samples"),
                &[t.recon.len()],
            ));
        }
        if let Some(f) = &t.feat {
            if f.len() != t.recon.len() {
                return Err(Error::shape(
                    "calibrate: feature terms",
                    format!("{} values (one per {what} sample)", t.recon.len()),
                    &[f.len()],
                ));
            }
        }
    }
    if c.normal.feat.is_some() != c.anomalous.feat.is_some() {
        return Err(Error::config(
            "feat",
            "either both normal and anomalous terms have a feature term or neither",
        ));
    }
    Ok(())
}

/// Chooses the scoring start strength, `lambda` and the threshold from generated anomalies
/// against held-out normal samples.
///
/// At each candidate strength both terms are normalised with the statistics of the normal
/// samples (`dmad_score::Normaliser`), `lambda` is chosen on the grid by AUROC
/// (`dmad_score::fit_lambda`; 1 when there is no feature term) and the best F1 is found. The
/// strength with the highest AUROC wins (ties: the higher F1, then the earlier candidate); the
/// threshold is the F1-optimal one there (as `dmad_metrics::Threshold::f1_optimal`, with the
/// counts reweighted to [`CalibrationConfig::prevalence`] when it is set).
///
/// # Errors
/// [`Error::InvalidConfig`] for no candidate, a strength outside `(0, 1]` or a feature term on
/// only one side; [`Error::ShapeMismatch`] for fewer than 2 samples or terms of different
/// lengths; [`Error::Score`] when the normal terms do not spread; [`Error::Metrics`] for
/// non-finite terms.
///
/// # Example
/// ```
/// use dmad_generate::{calibrate, CalibrationConfig, Candidate, ScoreTerms};
/// # fn main() -> dmad_generate::Result<()> {
/// let normal = ScoreTerms { recon: vec![1.0, 1.2, 0.9, 1.1], feat: None };
/// let weak = ScoreTerms { recon: vec![1.0, 1.3, 1.05, 1.15], feat: None };
/// let strong = ScoreTerms { recon: vec![3.0, 2.5, 4.0, 2.8], feat: None };
/// let c = calibrate(&[
///     Candidate { strength: 0.1, normal: normal.clone(), anomalous: weak },
///     Candidate { strength: 0.3, normal, anomalous: strong },
/// ], &CalibrationConfig::default())?;
/// assert_eq!(c.strength, 0.3);
/// assert!(c.auroc > 0.99);
/// # Ok(())
/// # }
/// ```
pub fn calibrate(candidates: &[Candidate], cfg: &CalibrationConfig) -> Result<Calibrated> {
    if candidates.is_empty() {
        return Err(Error::config("candidates", "at least one is needed"));
    }
    let mut results = Vec::with_capacity(candidates.len());
    let mut fits = Vec::with_capacity(candidates.len());
    for c in candidates {
        check(c)?;
        let normal = terms_of(&c.normal);
        let anomalous = terms_of(&c.anomalous);
        let normaliser = Normaliser::fit(&normal, cfg.norm)?;
        let grid = if c.normal.feat.is_some() {
            cfg.lambda_grid.clone()
        } else {
            vec![1.0]
        };
        let fit = fit_lambda(&normaliser, &normal, &anomalous, &grid)?;
        let a_n =
            normaliser.combine_scores(fit.lambda, &normal.recon.scores, &normal.feat.scores)?;
        let a_a = normaliser.combine_scores(
            fit.lambda,
            &anomalous.recon.scores,
            &anomalous.feat.scores,
        )?;
        let (threshold, f1) = f1_threshold(&a_n, &a_a, cfg.prevalence)?;
        results.push(CandidateResult {
            strength: c.strength,
            lambda: fit.lambda,
            auroc: fit.auroc,
            f1,
        });
        fits.push((normaliser, threshold));
    }
    let mut best = 0;
    for (i, r) in results.iter().enumerate() {
        let b = &results[best];
        if r.auroc > b.auroc + 1e-12 || ((r.auroc - b.auroc).abs() <= 1e-12 && r.f1 > b.f1 + 1e-12)
        {
            best = i;
        }
    }
    let (normaliser, threshold) = fits.swap_remove(best);
    let r = results[best].clone();
    // z-normalisation is increasing, so with lambda = 1 the F1-optimal threshold on the raw
    // reconstruction scores splits the samples exactly as the one on the combined score.
    let recon_threshold = if r.lambda == 1.0 {
        let c = &candidates[best];
        Some(f1_threshold(&c.normal.recon, &c.anomalous.recon, cfg.prevalence)?.0)
    } else {
        None
    };
    Ok(Calibrated {
        strength: r.strength,
        lambda: r.lambda,
        normaliser,
        threshold,
        recon_threshold,
        auroc: r.auroc,
        f1: r.f1,
        candidates: results,
    })
}
