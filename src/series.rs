//! Series point scores and the fit that chooses their smoothing.
//!
//! A detector scores windows; a series needs one score per point. Each point takes the mean
//! over the windows covering it, of the per-step maps where the scorer scores steps
//! ([`crate::ScorerConfig::scores_steps`]: the imputation error) and of the window scores
//! otherwise, then a Gaussian of `scoring.point_sigma` steps smooths the result
//! ([`point_scores`]).
//!
//! The imputation error of a periodic series peaks at its sharp parts (an ECG beat's R wave),
//! normal or not, while an anomalous stretch raises it over the whole stretch: the smoothing
//! decides whether a point's score is its own step's error or its neighbourhood's.
//! The imputation scorer's noise levels decide what an error means: from pure noise (up to
//! strength 1) the masked steps are imputed from their context alone, which finds a wrong shape
//! or level; lightly noised ([`LIGHT_NOISE_STRENGTH`]) they are denoised, which finds jitter and
//! other detail the normal windows do not have. [`fit_series`] chooses both without test data:
//! it fits the detector on the first four fifths of the training series and scores the last
//! fifth with each GutenTAG anomaly kind injected ([`crate::generate::inject_series`]),
//! keeping the levels and smoothing under which those points are told from the rest best (the
//! mean over the kinds of each kind's AUROC).

use std::path::Path;

use candle_core::Tensor;
use dmad_data::timeseries::Reduce;
use dmad_data::Series;
use dmad_train::{Control, Progress};

use crate::{Detector, Error, Result, ScorerConfig, Scores};

/// The candidate smoothings of [`fit_series`], as fractions of the window (two periods for
/// the imputation recipe): none, a quarter, half, one and two periods.
pub const POINT_SIGMA_FRACTIONS: [f64; 5] = [0.0, 0.125, 0.25, 0.5, 1.0];

/// The share of the training series [`fit_series`] holds out for the choice.
pub const HELD_OUT_FRACTION: f64 = 0.2;

/// The largest noise level of [`fit_series`]' light-noise candidate, as a strength (0.1: the
/// masked steps noised to training timesteps 49 and 99 of 1000, two levels).
pub const LIGHT_NOISE_STRENGTH: f64 = 0.1;

/// Strength of the anomalies injected for the choice.
pub const CHOICE_STRENGTH: f64 = 0.5;

/// Anomalies are injected one per chunk of this many windows of the held-out part (each
/// anomaly a quarter to a half window long, half a period to a period; a spike one point).
const CHUNK_WINDOWS: usize = 2;

/// The fewest chunks a held-out fifth must hold for a choice on it; a series whose fifth
/// holds fewer is chosen in sample, if the whole series holds one.
const MIN_HELD_CHUNKS: usize = 2;

/// One score per point of an `n`-point series from the scores of its windows (starting at
/// `starts`, `window` long), as the detector's configuration says: the mean over the covering
/// windows of the per-step maps (a scorer that scores steps; tapered, see [`covering_mean`]) or
/// of the window scores, then a
/// Gaussian of `scoring.point_sigma` steps (reflected at the ends).
///
/// # Errors
/// [`Error::ShapeMismatch`] when the scores, maps and starts do not fit; the errors of the
/// mapping.
pub fn point_scores(
    det: &Detector,
    scored: &Scores,
    starts: &[usize],
    window: usize,
    n: usize,
) -> Result<Vec<f32>> {
    points_with(
        det,
        scored,
        starts,
        window,
        n,
        det.config().scoring.point_sigma,
    )
}

/// `points` smoothed by a Gaussian of `sigma` steps; `sigma = 0` returns them unchanged.
fn smooth_points(points: Vec<f32>, sigma: f64) -> Result<Vec<f32>> {
    if sigma == 0.0 || points.is_empty() {
        return Ok(points);
    }
    let n = points.len();
    let t = Tensor::from_vec(points, (1, n), &candle_core::Device::Cpu)?;
    Ok(dmad_score::maps::gaussian_smooth(&t, sigma)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// One candidate of [`fit_series`]' choice and how it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoringCandidate {
    /// The scorer's settings (the imputation scorer's noise levels).
    pub scorer: ScorerConfig,
    /// `scoring.point_sigma`.
    pub point_sigma: f64,
    /// The mean over the anomaly kinds of the AUROC of their injected points.
    pub auroc: f64,
}

/// What [`fit_series`] chose.
#[derive(Debug, Clone, PartialEq)]
pub struct PointScoringChoice {
    /// The chosen scorer settings.
    pub scorer: ScorerConfig,
    /// The chosen `scoring.point_sigma`.
    pub point_sigma: f64,
    /// Every candidate, in the order tried (the configured scorer first, then the light-noise
    /// one; sigmas ascending); the first of the best is kept.
    pub candidates: Vec<ScoringCandidate>,
    /// Points of the training series the anomalies were injected into.
    pub held_out: usize,
    /// Whether those points were part of the fit (a training series too short to hold a
    /// fifth out) rather than held out of it.
    pub in_sample: bool,
}

impl PointScoringChoice {
    /// The chosen candidate's AUROC.
    pub fn auroc(&self) -> f64 {
        self.candidates
            .iter()
            .find(|c| c.scorer == self.scorer && c.point_sigma == self.point_sigma)
            .map_or(f64::NAN, |c| c.auroc)
    }

    /// The candidates in a line: `levels to strength S, sigma X: AUROC; ...`.
    pub fn describe_candidates(&self) -> String {
        self.candidates
            .iter()
            .map(|c| {
                let levels = match c.scorer {
                    ScorerConfig::Imputation { max_strength, .. } => {
                        format!("noise to {max_strength}")
                    }
                    other => format!("{other:?}"),
                };
                format!("{levels}, sigma {}: {:.3}", c.point_sigma, c.auroc)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What [`fit_series`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesFit {
    /// Whether the fit completed (`false`: the progress callback stopped it, as
    /// [`Detector::fit_until`]; the detector stays unfitted).
    pub finished: bool,
    /// The choice of the noise levels and point smoothing, where one was made.
    pub choice: Option<PointScoringChoice>,
}

/// Fits `det` on the standardised training series `train` (windows of `input.window` every
/// `input.train_stride`), with checkpoints and a `progress` callback that may stop it as
/// [`Detector::fit_until`]. For a scorer that scores steps, when the last fifth of `train`
/// holds at least four windows, the detector is fitted on the first four fifths and the
/// scorer's noise levels and `scoring.point_sigma` are chosen on the last fifth
/// ([`choose_point_scoring`]). A shorter
/// series that still holds two windows is fitted whole and the smoothing chosen on the
/// series itself (in sample: the normal points' errors are those of data the network has
/// seen, which favours less smoothing); a series shorter than that keeps the configured
/// smoothing. After a choice the threshold is set again by the configured rule on the point
/// scores of the held-out fifth (unseen by the network) or, in sample, of the series, computed
/// as a test series' are: the fit's own calibration windows overlap its training windows and
/// their per-step scores are not points.
///
/// # Errors
/// [`Error::InvalidConfig`] for a detector that is not a series detector, or a series
/// shorter than one window; the errors of fitting and scoring.
pub fn fit_series(
    det: &mut Detector,
    train: &Series,
    checkpoints: Option<&Path>,
    progress: impl FnMut(&Progress) -> Control,
) -> Result<SeriesFit> {
    let input = det.config().input.clone();
    if det.config().modality != crate::Modality::Series {
        return Err(Error::InvalidConfig {
            field: "modality",
            reason: "fit_series fits series detectors".to_string(),
        });
    }
    let (w, n) = (input.window, train.len());
    let held_n = (n as f64 * HELD_OUT_FRACTION) as usize;
    let chunk = CHUNK_WINDOWS * w;
    let steps = det.config().scorer.scores_steps();
    let held_out = steps && held_n >= MIN_HELD_CHUNKS * chunk;
    let in_sample = steps && !held_out && n >= chunk;
    let fit_part = if held_out {
        train.slice(0..n - held_n)
    } else {
        train.clone()
    };
    let (windows, _) = dmad_data::windows(&fit_part, w, input.train_stride, det.device())?;
    let finished = det.fit_until(&windows, checkpoints, progress)?;
    let choice_part = match (finished, held_out, in_sample) {
        (true, true, _) => train.slice(n - held_n..n),
        (true, false, true) => train.clone(),
        _ => {
            return Ok(SeriesFit {
                finished,
                choice: None,
            })
        }
    };
    let mut choice = choose_point_scoring(det, &choice_part)?;
    choice.in_sample = in_sample;
    det.set_point_scoring(choice.scorer, choice.point_sigma)?;
    // The threshold again, on point scores computed as a test series' are (covering-window
    // means, smoothed) of the clean choice part: held out, or in sample (seen by the network:
    // a lower threshold than unseen data needs).
    let (x, starts) = dmad_data::windows(&choice_part, w, input.test_stride, det.device())?;
    let points = point_scores(det, &det.score(&x)?, &starts, w, choice_part.len())?;
    let rule = det.config().threshold;
    let threshold = rule.threshold(&points)?;
    det.set_threshold_described(
        threshold,
        format!(
            "{} of the smoothed point scores of {} {} training points",
            rule.describe(),
            choice_part.len(),
            if held_out {
                "held-out"
            } else {
                "(in sample: seen by the network)"
            }
        ),
    )?;
    Ok(SeriesFit {
        finished,
        choice: Some(choice),
    })
}

/// The scorer settings [`choose_point_scoring`] tries: the configured scorer and, for the
/// imputation scorer, the same with two levels up to [`LIGHT_NOISE_STRENGTH`].
pub fn scorer_candidates(configured: ScorerConfig) -> Vec<ScorerConfig> {
    let mut out = vec![configured];
    if let ScorerConfig::Imputation { phases, .. } = configured {
        let light = ScorerConfig::Imputation {
            levels: 2,
            max_strength: LIGHT_NOISE_STRENGTH,
            phases,
        };
        if light != configured {
            out.push(light);
        }
    }
    out
}

/// Chooses the scorer's noise levels ([`scorer_candidates`]) and `scoring.point_sigma`
/// ([`POINT_SIGMA_FRACTIONS`] of the window) for a fitted detector on `held`, a standardised
/// normal series it was not fitted on: copies of it with each
/// [`crate::generate::SeriesAnomaly`] injected (one anomaly per two windows, strength
/// [`CHOICE_STRENGTH`]) are scored, and the candidate with the largest mean over the kinds of
/// the AUROC of a kind's injected points against the other points of its copy is kept (each
/// kind counts equally: pooled, the single-point spikes weighed nothing against anomalies of
/// half a period or more). The detector is not changed.
///
/// # Errors
/// [`Error::InvalidConfig`] when `held` is shorter than two windows; the
/// errors of scoring.
pub fn choose_point_scoring(det: &Detector, held: &Series) -> Result<PointScoringChoice> {
    let input = &det.config().input;
    let w = input.window;
    let chunk = CHUNK_WINDOWS * w;
    let chunks = held.len() / chunk;
    if chunks == 0 {
        return Err(Error::InvalidConfig {
            field: "held-out series",
            reason: format!("{} points are fewer than two windows ({chunk})", held.len()),
        });
    }
    let held = held.slice(0..chunks * chunk);
    let dev = det.device();
    let (pieces, _) = dmad_data::windows(&held, chunk, chunk, dev)?;
    let sigmas: Vec<f64> = POINT_SIGMA_FRACTIONS.iter().map(|f| f * w as f64).collect();
    let scorers = scorer_candidates(det.config().scorer);
    // Each kind's AUROC (its injected points against the other points of its copy), per
    // candidate: the kinds count equally, however long their anomalies (a spike is one point).
    let kinds = crate::generate::SeriesAnomaly::ALL;
    let mut sums = vec![0f64; scorers.len() * sigmas.len()];
    let seed = det.config().train.seed;
    for (k, kind) in kinds.into_iter().enumerate() {
        let injected = crate::generate::inject_series(
            &pieces,
            kind,
            CHOICE_STRENGTH,
            seed.wrapping_add(k as u64),
        )
        .map_err(|e| Error::InvalidConfig {
            field: "held-out series",
            reason: format!("injecting {} anomalies: {e}", kind.name()),
        })?;
        let series = unchunk(&injected.x, &injected.mask)?;
        let labels: Vec<bool> = series.labels.iter().map(|&l| l != 0).collect();
        let (x, starts) = dmad_data::windows(&series, w, input.test_stride, dev)?;
        let scored = det.score_candidates(&x, &scorers)?;
        for (i, scored) in scored.iter().enumerate() {
            for (j, &sigma) in sigmas.iter().enumerate() {
                let p = points_with(det, scored, &starts, w, series.len(), sigma)?;
                sums[i * sigmas.len() + j] += dmad_metrics::auroc(&p, &labels)?;
            }
        }
    }
    let candidates: Vec<ScoringCandidate> = scorers
        .iter()
        .flat_map(|&scorer| sigmas.iter().map(move |&point_sigma| (scorer, point_sigma)))
        .zip(&sums)
        .map(|((scorer, point_sigma), &sum)| ScoringCandidate {
            scorer,
            point_sigma,
            auroc: sum / kinds.len() as f64,
        })
        .collect();
    let best = candidates
        .iter()
        .fold(candidates[0], |b, &c| if c.auroc > b.auroc { c } else { b });
    Ok(PointScoringChoice {
        scorer: best.scorer,
        point_sigma: best.point_sigma,
        candidates,
        held_out: held.len(),
        in_sample: false,
    })
}

/// [`point_scores`] with `sigma` in place of the detector's smoothing.
fn points_with(
    det: &Detector,
    scored: &Scores,
    starts: &[usize],
    window: usize,
    n: usize,
    sigma: f64,
) -> Result<Vec<f32>> {
    let maps = scored
        .maps
        .as_ref()
        .filter(|_| det.config().scorer.scores_steps());
    smooth_points(
        covering_mean(&scored.scores, maps, starts, window, n)?,
        sigma,
    )
}

/// One score per point of an `n`-point series: the mean over the windows (starting at
/// `starts`, `window` long) that cover it of their per-step maps `[m, window]` where given,
/// near the ends of the series, where fewer windows cover a point than in its interior, by a
/// taper of the step's place in the window ([`Reduce::TaperedMean`]: a step at a window's edge
/// is imputed from one side only, and at the series' start it would be half or all of what a
/// point gets), else of their window scores. Not smoothed.
///
/// # Errors
/// Errors of the mapping (lengths that do not fit).
pub fn covering_mean(
    window_scores: &[f32],
    maps: Option<&Tensor>,
    starts: &[usize],
    window: usize,
    n: usize,
) -> Result<Vec<f32>> {
    Ok(match maps {
        Some(m) => {
            let flat = m.flatten_all()?.to_vec1::<f32>()?;
            dmad_data::timeseries::steps_to_points(&flat, starts, window, n, Reduce::TaperedMean)?
        }
        None => dmad_data::window_to_points(window_scores, starts, window, n, Reduce::Mean)?,
    })
}

/// The chunks `[n, dims, chunk]` laid end to end as one series, labelled by `mask`
/// (`[n, chunk]`, 1 on injected points).
fn unchunk(x: &Tensor, mask: &Tensor) -> Result<Series> {
    let (n, d, c) = x.dims3()?;
    let v = x.to_vec3::<f32>()?;
    let m = mask.to_vec2::<f32>()?;
    let mut values = Vec::with_capacity(n * d * c);
    let mut labels = Vec::with_capacity(n * c);
    for (chunk, mask) in v.iter().zip(&m) {
        for t in 0..c {
            values.extend((0..d).map(|ch| chunk[ch][t]));
            labels.push(u8::from(mask[t] > 0.5));
        }
    }
    Ok(Series {
        values,
        dims: d,
        labels,
    })
}
