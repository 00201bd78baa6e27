//! Generation from a fitted [`Detector`], per modality, and calibration of a detector on
//! generated anomalies: a thin layer over [`dmad_generate`], whose items it re-exports.
//!
//! - [`Generator::normal`]: seeded normal samples in the detector's input space (images,
//!   series windows, audio scalograms, standardised table rows), with any sampler and step
//!   count; [`Generator::normal_audio`] also turns the scalograms into waveforms through the
//!   inverse CWT.
//! - [`Generator::anomalous`]: anomalies of a kind and strength injected into normal samples,
//!   with exact masks, harmonised by masked partial diffusion (images and series) or projected
//!   with a few denoising steps (table rows); [`Generator::anomalous_audio`] injects into
//!   waveforms and returns their scalograms.
//! - [`calibrate_on_generated`]: the scoring start strength, `lambda` (when a feature
//!   extractor is given) and an F1-optimal threshold from generated anomalies against held-out
//!   normal samples; [`apply_calibration`] makes the detector score as calibrated (strength,
//!   scorer, threshold); [`calibrate_on_validation`] does both with the real anomalies of a
//!   small labelled validation set instead.
//!
//! # Example
//! ```no_run
//! # fn main() -> dmad::Result<()> {
//! use dmad::generate::{calibrate_on_generated, CalibrationConfig, GenerateConfig, Generator};
//! let det = dmad::Detector::load("brick.model", &candle_core::Device::Cpu)?;
//! let gen = Generator::new(&det, GenerateConfig::default())?;
//! let normal = gen.normal(16, 0)?;
//! let anomalies = gen.mixed_anomalies(&normal, 0.7, 1, None)?;
//! let held_out = gen.normal(16, 2)?; // or real held-out normal samples
//! let c = calibrate_on_generated(&det, &held_out, &anomalies.x, &[0.1, 0.3, 0.5], None,
//!     &CalibrationConfig::default())?;
//! println!("strength {} threshold {}", c.strength, c.threshold.value);
//! # Ok(()) }
//! ```

use candle_core::Tensor;
use dmad_core::FeatureExtractor;
use dmad_diffusion::Start;

pub use dmad_generate::{
    calibrate, destandardise, feature_frechet_distance, frame_mask, frechet_distance, harmonise,
    inject_audio, inject_image, inject_series, io, pool_features, sample_normal, scalogram_to_wave,
    two_sample_test, AudioAnomaly, C2st, C2stConfig, Calibrated, CalibrationConfig, Candidate,
    CandidateResult, HarmoniseConfig, ImageAnomaly, Injected, ScoreTerms, SeriesAnomaly,
    TableAnomaly, TableInjector, AUDIO_MIN_CHANGE, IMAGE_MIN_CHANGE, SERIES_MIN_CHANGE,
    TABLE_MIN_CHANGE,
};

use crate::config::{Modality, NetworkConfig, SamplerKind};
use crate::{AnySampler, Detector, Error, Result};

/// Converts dmad-generate's error into the facade's.
fn from_gen(e: dmad_generate::Error) -> Error {
    use dmad_generate::Error as G;
    match e {
        G::Candle(e) => Error::Candle(e),
        G::Core(e) => Error::Core(e),
        G::Diffusion(e) => Error::Diffusion(e),
        G::Score(e) => Error::Score(e),
        G::Metrics(e) => Error::Metrics(e),
        G::Data(e) => Error::Data(e),
        G::InvalidConfig { field, reason } => Error::InvalidConfig { field, reason },
        G::ShapeMismatch {
            context,
            expected,
            got,
        } => Error::ShapeMismatch {
            context,
            expected,
            got,
        },
        G::Io { path, reason } => Error::Io {
            path,
            source: std::io::Error::other(reason),
        },
        other => Error::InvalidConfig {
            field: "generate",
            reason: other.to_string(),
        },
    }
}

/// The anomaly kind of one modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// An image anomaly (images).
    Image(ImageAnomaly),
    /// A series anomaly (series windows).
    Series(SeriesAnomaly),
    /// An audio anomaly (waveforms of audio detectors).
    Audio(AudioAnomaly),
    /// A table anomaly (table rows).
    Table(TableAnomaly),
}

impl AnomalyKind {
    /// Every kind for data of `modality`.
    pub fn all(modality: Modality) -> Vec<AnomalyKind> {
        match modality {
            Modality::Image => ImageAnomaly::ALL.map(Self::Image).to_vec(),
            Modality::Series => SeriesAnomaly::ALL.map(Self::Series).to_vec(),
            Modality::Audio => AudioAnomaly::ALL.map(Self::Audio).to_vec(),
            Modality::Table => TableAnomaly::ALL.map(Self::Table).to_vec(),
        }
    }

    /// The kind's name (`scratch`, `level_shift`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Image(k) => k.name(),
            Self::Series(k) => k.name(),
            Self::Audio(k) => k.name(),
            Self::Table(k) => k.name(),
        }
    }
}

/// How a [`Generator`] samples and harmonises.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// The sampler of normal samples and of harmonisation. Default DDIM.
    pub sampler: SamplerKind,
    /// Its inference steps. Default 50.
    pub steps: usize,
    /// Where harmonisation of images and series starts (`Start::Strength`). Default 0.3.
    pub harmonise_strength: f64,
    /// Steps of the plan of the few-step projection of table rows. Default 10.
    pub projection_steps: usize,
    /// Where the projection of table rows starts (`Start::Strength`): with 10 steps, 0.2 runs
    /// 2 denoising steps. Default 0.2.
    pub projection_strength: f64,
    /// Rounds of phase retrieval when scalograms become waveforms. Default 8.
    pub phase_iterations: usize,
    /// RePaint's resampling rounds per harmonisation step ([`HarmoniseConfig::resample`]).
    /// Default 0.
    pub resample: usize,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            sampler: SamplerKind::Ddim,
            steps: 50,
            harmonise_strength: 0.3,
            projection_steps: 10,
            projection_strength: 0.2,
            phase_iterations: 8,
            resample: 0,
        }
    }
}

/// Generates normal and anomalous samples from a fitted detector's network.
#[derive(Debug)]
pub struct Generator<'a> {
    det: &'a Detector,
    cfg: GenerateConfig,
}

impl<'a> Generator<'a> {
    /// A generator for `det` (fitted or loaded).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero steps or a strength outside `(0, 1]`.
    pub fn new(det: &'a Detector, cfg: GenerateConfig) -> Result<Self> {
        for (field, s) in [
            ("harmonise_strength", cfg.harmonise_strength),
            ("projection_strength", cfg.projection_strength),
        ] {
            if !(s > 0.0 && s <= 1.0) {
                return Err(Error::InvalidConfig {
                    field,
                    reason: format!("{s} is not in (0, 1]"),
                });
            }
        }
        if cfg.steps == 0 || cfg.projection_steps == 0 {
            return Err(Error::InvalidConfig {
                field: "steps",
                reason: "steps and projection_steps must be at least 1".into(),
            });
        }
        Ok(Self { det, cfg })
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        self.det
    }

    fn sampler(&self, steps: usize) -> Result<AnySampler> {
        crate::sampler::build(
            self.cfg.sampler,
            self.det.schedule(),
            steps,
            self.det.denoiser().prediction_type(),
        )
    }

    /// The shape of `n` samples of the detector's input: `[n, C, S, S]` (images, S the input
    /// size), `[n, 1, scales, frames]` (audio), `[n, dims, window]` (series with a U-Net),
    /// `[n, features]` (tables and MLP networks).
    ///
    /// # Errors
    /// Errors of planning the audio transform.
    pub fn sample_shape(&self, n: usize) -> Result<Vec<usize>> {
        let cfg = self.det.config();
        Ok(match (&cfg.network, cfg.modality) {
            (NetworkConfig::Mlp(m), _) => vec![n, m.in_features],
            (NetworkConfig::Unet1d(u), _) => vec![n, u.in_channels, cfg.input.window],
            (NetworkConfig::Unet2d(_), Modality::Audio) if cfg.log_mel_image() => {
                vec![n, 1, cfg.input.n_mels, cfg.input.image_size as usize]
            }
            (NetworkConfig::Unet2d(_), Modality::Audio) => {
                let (s, f) = crate::prepare::audio_transform(&cfg.input)?.shape();
                vec![n, 1, s, f]
            }
            (NetworkConfig::Unet2d(u), _) => {
                let s = cfg.input.image_size as usize;
                vec![n, u.in_channels, s, s]
            }
        })
    }

    /// `n` normal samples drawn with `seed` (images and scalograms clamped to `[-1, 1]`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an audio detector on log-mel features (its model sees rows
    /// standardised inside the detector, which neither are clips nor turn back into
    /// waveforms); errors of the sampler and the network.
    pub fn normal(&self, n: usize, seed: u64) -> Result<Tensor> {
        if self.det.config().log_mel() {
            return Err(Error::InvalidConfig {
                field: "input.audio_features",
                reason: "log-mel features cannot be sampled as clips: generate normal audio \
                         with a scalogram detector"
                    .into(),
            });
        }
        let shape = self.sample_shape(n)?;
        let mut sampler = self.sampler(self.cfg.steps)?;
        let x = sample_normal(
            self.det.denoiser(),
            &mut sampler,
            &shape,
            seed,
            self.det.device(),
        )
        .map_err(from_gen)?;
        Ok(match self.det.config().modality {
            Modality::Image | Modality::Audio => x.clamp(-1f32, 1f32)?,
            _ => x,
        })
    }

    /// For audio detectors: `n` normal scalograms `[n, 1, scales, frames]` and their waveforms
    /// `[n, samples]` through the inverse CWT with phase retrieval
    /// ([`dmad_generate::scalogram_to_wave`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for another modality; errors of sampling and the transform.
    pub fn normal_audio(&self, n: usize, seed: u64) -> Result<(Tensor, Tensor)> {
        self.require(Modality::Audio)?;
        let x = self.normal(n, seed)?;
        let transform = crate::prepare::audio_transform(&self.det.config().input)?;
        let mut waves = Vec::with_capacity(n);
        for i in 0..n {
            let img = x.get(i)?;
            let w = scalogram_to_wave(
                &transform,
                &img,
                self.cfg.phase_iterations,
                seed.wrapping_add(i as u64),
            )
            .map_err(from_gen)?;
            waves.push(Tensor::from_vec(
                w,
                transform.config().length,
                self.det.device(),
            )?);
        }
        Ok((x, Tensor::stack(&waves, 0)?))
    }

    fn require(&self, m: Modality) -> Result<()> {
        let have = self.det.config().modality;
        if have != m {
            return Err(Error::InvalidConfig {
                field: "modality",
                reason: format!("this needs a {m} detector, not a {have} one"),
            });
        }
        Ok(())
    }

    /// Anomalies of `kind` with weight `strength` in `(0, 1]` injected into the normal
    /// samples `normal`, then harmonised (images, series: masked partial diffusion from
    /// [`GenerateConfig::harmonise_strength`]) or projected (table rows: a few denoising steps,
    /// the changed columns only). Table anomalies are drawn with the column statistics of
    /// `table_reference` (normal rows; default `normal` itself). The masks stay exact.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a kind of another modality or an audio kind (use
    /// [`Generator::anomalous_audio`]); errors of injection and harmonisation.
    pub fn anomalous(
        &self,
        normal: &Tensor,
        kind: AnomalyKind,
        strength: f64,
        seed: u64,
        table_reference: Option<&Tensor>,
    ) -> Result<Injected> {
        let den = self.det.denoiser();
        let harm = |start: f64| HarmoniseConfig {
            start: Start::Strength(start),
            seed: seed ^ 0x5bd1_e995,
            resample: self.cfg.resample,
        };
        let out = match kind {
            AnomalyKind::Image(k) => {
                self.require(Modality::Image)?;
                let a = inject_image(normal, k, strength, seed).map_err(from_gen)?;
                let mut s = self.sampler(self.cfg.steps)?;
                let h = harm(self.cfg.harmonise_strength);
                a.harmonised(den, &mut s, normal, &h, IMAGE_MIN_CHANGE, -1.0, 1.0)
            }
            AnomalyKind::Series(k) => {
                self.require(Modality::Series)?;
                let a = inject_series(normal, k, strength, seed).map_err(from_gen)?;
                let mut s = self.sampler(self.cfg.steps)?;
                let h = harm(self.cfg.harmonise_strength);
                a.harmonised(
                    den,
                    &mut s,
                    normal,
                    &h,
                    SERIES_MIN_CHANGE,
                    f32::MIN,
                    f32::MAX,
                )
            }
            AnomalyKind::Table(k) => {
                self.require(Modality::Table)?;
                let inj =
                    TableInjector::fit(table_reference.unwrap_or(normal)).map_err(from_gen)?;
                let a = inj.inject(normal, k, strength, seed).map_err(from_gen)?;
                let mut s = self.sampler(self.cfg.projection_steps)?;
                let h = harm(self.cfg.projection_strength);
                a.harmonised(
                    den,
                    &mut s,
                    normal,
                    &h,
                    TABLE_MIN_CHANGE,
                    f32::MIN,
                    f32::MAX,
                )
            }
            AnomalyKind::Audio(_) => {
                return Err(Error::InvalidConfig {
                    field: "kind",
                    reason: "audio anomalies are injected into waveforms: use anomalous_audio"
                        .into(),
                })
            }
        };
        out.map_err(from_gen)
    }

    /// Anomalies of every kind of the detector's modality, in turn (sample `i` gets kind
    /// `i mod kinds`), as [`Generator::anomalous`], the samples of a kind in batches of the
    /// detector's scoring batch size; for audio, `normal` holds waveforms and
    /// the result's `x` the scalograms (see [`Generator::anomalous_audio`]). Returns the
    /// anomalies in the order of `normal`, with the kind of each.
    ///
    /// # Errors
    /// As [`Generator::anomalous`].
    pub fn mixed_anomalies(
        &self,
        normal: &Tensor,
        strength: f64,
        seed: u64,
        table_reference: Option<&Tensor>,
    ) -> Result<MixedAnomalies> {
        let kinds = AnomalyKind::all(self.det.config().modality);
        let n = normal.dim(0)?;
        let mut xs: Vec<Option<Tensor>> = vec![None; n];
        let mut masks: Vec<Option<Tensor>> = vec![None; n];
        let chunk = self.det.config().scoring.batch_size.max(1);
        // The samples of one kind are injected and harmonised together, in chunks of the
        // scoring batch size (a cluster of table anomalies shares its centre within a chunk).
        for (k, &kind) in kinds.iter().enumerate() {
            let idx: Vec<u32> = (k..n).step_by(kinds.len()).map(|i| i as u32).collect();
            for (c, part) in idx.chunks(chunk).enumerate() {
                let batch = normal.index_select(&Tensor::new(part, normal.device())?, 0)?;
                let s = seed
                    .wrapping_add(k as u64)
                    .wrapping_add((c as u64).wrapping_mul(0x9E37_79B9));
                let (x, m) = match kind {
                    AnomalyKind::Audio(a) => {
                        let a = self.anomalous_audio(&batch, a, strength, s)?;
                        (a.scalograms, a.injected.mask)
                    }
                    _ => {
                        let reference = table_reference.or(Some(normal));
                        let a = self.anomalous(&batch, kind, strength, s, reference)?;
                        (a.x, a.mask)
                    }
                };
                for (j, &i) in part.iter().enumerate() {
                    xs[i as usize] = Some(x.narrow(0, j, 1)?);
                    masks[i as usize] = Some(m.narrow(0, j, 1)?);
                }
            }
        }
        let xs: Vec<Tensor> = xs.into_iter().flatten().collect();
        let masks: Vec<Tensor> = masks.into_iter().flatten().collect();
        Ok(MixedAnomalies {
            x: Tensor::cat(&xs, 0)?,
            masks,
            kinds: (0..n)
                .map(|i| kinds[i % kinds.len()].name().to_string())
                .collect(),
        })
    }

    /// For audio detectors: anomalies of `kind` injected into the waveforms `waves`
    /// (`[batch, samples]`, real clips or [`Generator::normal_audio`]'s), with exact sample
    /// masks, and the scalograms of the anomalous clips `[batch, 1, scales, frames]` with their
    /// frame masks (frames holding a changed sample).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for another modality; errors of injection and the transform.
    pub fn anomalous_audio(
        &self,
        waves: &Tensor,
        kind: AudioAnomaly,
        strength: f64,
        seed: u64,
    ) -> Result<AudioAnomalies> {
        self.require(Modality::Audio)?;
        let input = &self.det.config().input;
        let injected =
            inject_audio(waves, input.sample_rate, kind, strength, seed).map_err(from_gen)?;
        let transform = crate::prepare::AudioInput::new(input)?;
        let scalograms = transform.samples(&injected.x, self.det.device())?;
        let frames = frame_mask(&injected.mask, transform.hop()).map_err(from_gen)?;
        Ok(AudioAnomalies {
            injected,
            scalograms,
            frame_mask: frames,
        })
    }
}

/// Anomalies of every kind of a modality ([`Generator::mixed_anomalies`]).
#[derive(Debug, Clone)]
pub struct MixedAnomalies {
    /// The anomalous samples in the detector's input space.
    pub x: Tensor,
    /// The mask of each sample (`[1, ...]` each; for audio the waveform's sample mask).
    pub masks: Vec<Tensor>,
    /// The kind of each sample.
    pub kinds: Vec<String>,
}

/// Audio anomalies: the waveforms with their masks, and their scalograms.
#[derive(Debug, Clone)]
pub struct AudioAnomalies {
    /// The anomalous waveforms `[batch, samples]` and their exact sample masks.
    pub injected: Injected,
    /// The anomalous clips in the detector's input: scalograms `[batch, 1, scales, frames]`,
    /// or log-mel statistics `[batch, 2 or 3 n_mels]` ([`crate::AudioFeatures::LogMelStatistics`]).
    pub scalograms: Tensor,
    /// The frames holding a changed sample, `[batch, frames]`.
    pub frame_mask: Tensor,
}

/// The per-sample score terms of `x` by `det`'s network at the scoring start `strength`
/// (everything else as the detector scores: sampler, steps, draws, seed, conditioning,
/// feature distance, tiling and map summary; [`Detector::score_terms`]): `E_recon` and, with
/// `features`, `E_feat` of the same reconstructions.
///
/// # Errors
/// Errors of the network, the sampler and the extractor.
pub fn score_terms(
    det: &Detector,
    x: &Tensor,
    strength: f64,
    features: Option<&dyn FeatureExtractor>,
) -> Result<ScoreTerms> {
    let (recon, feat) = det.score_terms(x, strength, features)?;
    let recon = recon.scores;
    let feat = feat.map(|f| f.scores);
    Ok(ScoreTerms { recon, feat })
}

/// Calibrates on generated anomalies: the score terms of the held-out normal samples and of
/// the generated anomalies at each candidate start strength ([`score_terms`]), then
/// [`dmad_generate::calibrate`]: the strength with the best AUROC, `lambda` (1 without
/// `features`) and the F1-optimal threshold. No real anomaly is used.
///
/// # Errors
/// [`Error::InvalidConfig`] for no strength; errors of scoring and of the calibration.
pub fn calibrate_on_generated(
    det: &Detector,
    held_out_normal: &Tensor,
    generated_anomalies: &Tensor,
    strengths: &[f64],
    features: Option<&dyn FeatureExtractor>,
    cfg: &CalibrationConfig,
) -> Result<Calibrated> {
    if strengths.is_empty() {
        return Err(Error::InvalidConfig {
            field: "strengths",
            reason: "at least one candidate strength is needed".into(),
        });
    }
    let mut candidates = Vec::with_capacity(strengths.len());
    for &s in strengths {
        candidates.push(Candidate {
            strength: s,
            normal: score_terms(det, held_out_normal, s, features)?,
            anomalous: score_terms(det, generated_anomalies, s, features)?,
        });
    }
    calibrate(&candidates, cfg).map_err(from_gen)
}

/// The start strengths [`calibrate_on_validation`] chooses among.
pub const VALIDATION_STRENGTHS: [f64; 5] = [0.05, 0.1, 0.2, 0.3, 0.5];

/// Chooses the scoring start strength, `lambda` (with `features`) and the threshold on a small
/// labelled validation set (`normal` and `anomalous` samples in the detector's input space)
/// instead of on generated anomalies, and makes `det` score so ([`calibrate_on_generated`] and
/// [`apply_calibration`] with real anomalies; the start among those of
/// [`VALIDATION_STRENGTHS`] that run at least one step of the scoring plan).
/// Returns the calibration. For when the user has a few labelled anomalies: the choice then
/// fits their anomalies, not the generator's; keep the validation set apart from any test set.
///
/// # Errors
/// As [`calibrate_on_generated`] and [`apply_calibration`].
pub fn calibrate_on_validation(
    det: &mut Detector,
    normal: &Tensor,
    anomalous: &Tensor,
    features: Option<&dyn FeatureExtractor>,
) -> Result<Calibrated> {
    // A strength that runs no step of the scoring plan is not a candidate.
    let steps = det.config().scoring.steps as f64;
    let strengths: Vec<f64> = VALIDATION_STRENGTHS
        .into_iter()
        .filter(|s| (steps * s).floor() >= 1.0)
        .collect();
    if strengths.is_empty() {
        return Err(Error::InvalidConfig {
            field: "scoring.steps",
            reason: format!(
                "{steps} scoring steps run no step at any candidate strength {VALIDATION_STRENGTHS:?}"
            ),
        });
    }
    let c = calibrate_on_generated(
        det,
        normal,
        anomalous,
        &strengths,
        features,
        &CalibrationConfig::default(),
    )?;
    apply_calibration(det, &c, normal)?;
    Ok(c)
}

/// The whole loop in one call: anomalies of every kind of the detector's modality, with weight
/// `anomaly_strength`, are injected into `bases` and harmonised
/// ([`Generator::mixed_anomalies`]), then [`calibrate_on_generated`] chooses the scoring start
/// strength among `strengths`, `lambda` (with `features`) and the threshold against
/// `held_out_normal`. `bases` are normal samples in the detector's input space (real training
/// samples, or [`Generator::normal`]'s), waveforms `[n, samples]` for audio; table anomalies
/// take their column statistics from `bases`. Returns the calibration and the anomalies.
///
/// # Errors
/// As [`Generator::mixed_anomalies`] and [`calibrate_on_generated`].
#[allow(clippy::too_many_arguments)]
pub fn generate_and_calibrate(
    gen: &Generator,
    held_out_normal: &Tensor,
    bases: &Tensor,
    anomaly_strength: f64,
    strengths: &[f64],
    features: Option<&dyn FeatureExtractor>,
    cfg: &CalibrationConfig,
    seed: u64,
) -> Result<(Calibrated, MixedAnomalies)> {
    let anomalies = gen.mixed_anomalies(bases, anomaly_strength, seed, Some(bases))?;
    let c = calibrate_on_generated(
        gen.detector(),
        held_out_normal,
        &anomalies.x,
        strengths,
        features,
        cfg,
    )?;
    Ok((c, anomalies))
}

/// Makes `det` score as the calibration on generated anomalies chose: its start strength,
/// the combined score with the chosen `lambda` when it is below 1 (reconstruction otherwise),
/// and the F1-optimal threshold. `held_out_normal` are the normal samples the calibration
/// used; the combined scorer normalises its terms on them, as the calibration did. The network
/// is not retrained.
///
/// # Errors
/// As [`Detector::set_scoring`] (for example `lambda < 1` on a detector without the
/// EfficientNet-Lite0 weights, or a DTE detector); [`Error::NotFitted`] for an unfitted
/// detector.
pub fn apply_calibration(
    det: &mut Detector,
    c: &Calibrated,
    held_out_normal: &Tensor,
) -> Result<()> {
    let mut scoring = det.config().scoring.clone();
    scoring.strength = c.strength;
    match c.recon_threshold {
        Some(raw) if c.lambda >= 1.0 => {
            det.set_scoring(
                crate::ScorerConfig::Reconstruction,
                scoring,
                held_out_normal,
            )?;
            det.set_threshold_described(raw, describe(c, held_out_normal))
        }
        _ => {
            det.set_scoring(
                crate::ScorerConfig::Combined { lambda: c.lambda },
                scoring,
                held_out_normal,
            )?;
            det.set_threshold_described(c.threshold, describe(c, held_out_normal))
        }
    }
}

/// How [`apply_calibration`] set the threshold, for [`crate::Calibration::method`].
fn describe(c: &Calibrated, normal: &Tensor) -> String {
    format!(
        "the F1-optimal threshold on {} normal samples against anomalies (start strength {}, \
         lambda {}, AUROC {:.3} on them)",
        normal.dims().first().copied().unwrap_or(0),
        c.strength,
        c.lambda,
        c.auroc
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DetectorConfig;
    use candle_core::Device;

    fn table_detector() -> Detector {
        let mut cfg = DetectorConfig::for_tables(4);
        cfg.train.steps = 30;
        cfg.scoring.steps = 10;
        let rows: Vec<f32> = (0..128)
            .flat_map(|i| {
                let a = ((i * 37) % 100) as f32 / 100.0 - 0.5;
                [a, -a, 0.5 * a, 0.1]
            })
            .collect();
        let x = Tensor::from_vec(rows, (128, 4), &Device::Cpu).unwrap();
        let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
        det.fit(&x, |_| {}).unwrap();
        det
    }

    #[test]
    fn a_table_detector_generates_calibrates_and_applies() {
        let mut det = table_detector();
        let gen = Generator::new(&det, GenerateConfig::default()).unwrap();
        assert_eq!(gen.sample_shape(3).unwrap(), vec![3, 4]);
        let normal = gen.normal(24, 0).unwrap();
        assert_eq!(normal.dims(), &[24, 4]);
        let again = gen.normal(24, 0).unwrap();
        assert_eq!(
            normal.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            again.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let mixed = gen.mixed_anomalies(&normal, 0.8, 1, None).unwrap();
        assert_eq!(mixed.x.dims(), &[24, 4]);
        assert_eq!(
            mixed.kinds[..4],
            ["local", "global", "cluster", "dependency"]
        );
        // Exact masks after the projection.
        let o = normal.to_vec2::<f32>().unwrap();
        let x = mixed.x.to_vec2::<f32>().unwrap();
        for (i, m) in mixed.masks.iter().enumerate() {
            let m = m.to_vec2::<f32>().unwrap().remove(0);
            for j in 0..4 {
                let changed = x[i][j] != o[i][j];
                assert_eq!(changed, m[j] == 1.0, "row {i} column {j}");
            }
        }
        let held_out = gen.normal(24, 2).unwrap();
        let (c1, a1) = generate_and_calibrate(
            &gen,
            &held_out,
            &normal,
            0.8,
            &[0.2],
            None,
            &CalibrationConfig::default(),
            1,
        )
        .unwrap();
        assert_eq!(a1.kinds.len(), 24);
        assert_eq!(c1.strength, 0.2);
        let strength = det.config().scoring.strength;
        let c = calibrate_on_generated(
            &det,
            &held_out,
            &mixed.x,
            &[strength, 0.5],
            None,
            &CalibrationConfig::default(),
        )
        .unwrap();
        assert_eq!(c.candidates.len(), 2);
        assert_eq!(c.lambda, 1.0);
        assert!(matches!(
            gen.anomalous(
                &normal,
                AnomalyKind::Image(ImageAnomaly::Blob),
                0.5,
                0,
                None
            ),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            gen.normal_audio(2, 0),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            calibrate_on_generated(
                &det,
                &held_out,
                &mixed.x,
                &[],
                None,
                &CalibrationConfig::default()
            ),
            Err(Error::InvalidConfig { .. })
        ));
        let bad = GenerateConfig {
            harmonise_strength: 0.0,
            ..GenerateConfig::default()
        };
        assert!(Generator::new(&det, bad).is_err());
        apply_calibration(&mut det, &c, &held_out).unwrap();
        assert_eq!(det.threshold().unwrap(), c.recon_threshold.unwrap());
        assert_eq!(det.config().scoring.strength, c.strength);
        assert_eq!(det.config().scorer, crate::ScorerConfig::Reconstruction);
    }

    #[test]
    fn a_series_detector_generates_harmonised_anomalies() {
        let mut cfg = DetectorConfig::for_series(1);
        if let NetworkConfig::Unet1d(u) = &mut cfg.network {
            u.block_out_channels = vec![8, 16];
            u.down_block_types.truncate(2);
            u.up_block_types.remove(0);
            u.norm_num_groups = Some(4);
        }
        cfg.input.window = 32;
        cfg.train.steps = 2;
        cfg.train.batch_size = 4;
        let x = Tensor::randn(0f32, 1.0, (16, 1, 32), &Device::Cpu).unwrap();
        let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
        det.fit(&x, |_| {}).unwrap();
        let gen = Generator::new(
            &det,
            GenerateConfig {
                steps: 10,
                ..GenerateConfig::default()
            },
        )
        .unwrap();
        let normal = gen.normal(5, 0).unwrap();
        assert_eq!(normal.dims(), &[5, 1, 32]);
        let a = gen.mixed_anomalies(&normal, 0.7, 3, None).unwrap();
        assert_eq!(a.kinds.len(), 5);
        let o = normal.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let v = a.x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, m) in a.masks.iter().enumerate() {
            let m = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (p, mp) in m.iter().enumerate() {
                let k = i * 32 + p;
                assert_eq!(v[k] != o[k], *mp == 1.0, "{} at {p}", a.kinds[i]);
            }
        }
    }

    fn tiny_unet(cfg: &mut DetectorConfig) {
        if let NetworkConfig::Unet2d(u) | NetworkConfig::Unet1d(u) = &mut cfg.network {
            u.block_out_channels = vec![8, 16];
            u.down_block_types.truncate(2);
            u.up_block_types.remove(0);
            u.norm_num_groups = Some(4);
        }
        cfg.train.steps = 2;
        cfg.train.batch_size = 4;
        cfg.scoring.steps = 10;
    }

    #[test]
    fn an_image_detector_generates_harmonised_anomalies_of_every_kind() {
        let mut cfg = DetectorConfig::for_images(1);
        tiny_unet(&mut cfg);
        cfg.input.image_size = 16;
        let x = Tensor::rand(-1f32, 1.0, (8, 1, 16, 16), &Device::Cpu).unwrap();
        let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
        det.fit(&x, |_| {}).unwrap();
        let gen = Generator::new(
            &det,
            GenerateConfig {
                steps: 10,
                ..GenerateConfig::default()
            },
        )
        .unwrap();
        let normal = gen.normal(4, 0).unwrap();
        assert_eq!(normal.dims(), &[4, 1, 16, 16]);
        let a = gen.mixed_anomalies(&normal, 0.9, 1, None).unwrap();
        assert_eq!(a.kinds, ["cut_paste", "perlin", "scratch", "blob"]);
        // Both terms through a (tiny, random) EfficientNet: lambda comes from the grid.
        use dmad_score::efficientnet::{
            EfficientNet, EfficientNetConfig, EfficientNetExtractor, ExtractorConfig,
        };
        let net = EfficientNet::random(
            &EfficientNetConfig::tiny(),
            1,
            candle_core::DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let ex = EfficientNetExtractor::new(
            net,
            ExtractorConfig {
                image_size: Some((32, 32)),
                ..Default::default()
            },
        )
        .unwrap();
        let held_out = gen.normal(4, 9).unwrap();
        let t = score_terms(&det, &held_out, 0.3, Some(&ex)).unwrap();
        assert_eq!((t.recon.len(), t.feat.as_ref().map(Vec::len)), (4, Some(4)));
        let c = calibrate_on_generated(
            &det,
            &held_out,
            &a.x,
            &[0.2, 0.4],
            Some(&ex),
            &CalibrationConfig::default(),
        )
        .unwrap();
        assert!((0.0..=1.0).contains(&c.lambda));
        assert_eq!(c.candidates.len(), 2);
        let o = normal.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let v = a.x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, m) in a.masks.iter().enumerate() {
            let m = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(m.contains(&1.0), "{}: empty mask", a.kinds[i]);
            for (p, mp) in m.iter().enumerate() {
                let k = i * 256 + p;
                assert_eq!(v[k] != o[k], *mp == 1.0, "{} at {p}", a.kinds[i]);
                assert!((-1.0..=1.0).contains(&v[k]));
            }
        }
    }

    #[test]
    fn an_audio_detector_generates_waveforms_and_anomalous_scalograms() {
        let mut cfg = DetectorConfig::for_audio();
        tiny_unet(&mut cfg);
        cfg.input.sample_rate = 4000;
        cfg.input.scales = 16;
        cfg.input.image_size = 16;
        let (s, f) = crate::prepare::audio_transform(&cfg.input).unwrap().shape();
        let x = Tensor::rand(-1f32, 1.0, (8, 1, s, f), &Device::Cpu).unwrap();
        let mut det = Detector::new(cfg, &Device::Cpu).unwrap();
        det.fit(&x, |_| {}).unwrap();
        let gen = Generator::new(
            &det,
            GenerateConfig {
                steps: 5,
                phase_iterations: 2,
                ..GenerateConfig::default()
            },
        )
        .unwrap();
        let (img, waves) = gen.normal_audio(3, 0).unwrap();
        assert_eq!(img.dims(), &[3, 1, s, f]);
        assert_eq!(waves.dims(), &[3, 4000]);
        let w = waves.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(w.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
        let a = gen.mixed_anomalies(&waves, 0.8, 1, None).unwrap();
        assert_eq!(a.kinds, ["transient", "speed_change", "dropout"]);
        assert_eq!(a.x.dims(), &[3, 1, s, f]);
        assert_eq!(a.masks[0].dims(), &[1, 4000]);
        let one = gen
            .anomalous_audio(
                &waves.narrow(0, 0, 1).unwrap(),
                AudioAnomaly::Dropout,
                1.0,
                2,
            )
            .unwrap();
        assert_eq!(one.frame_mask.dims(), &[1, f]);
        assert!(matches!(
            gen.anomalous(
                &img,
                AnomalyKind::Audio(AudioAnomaly::Dropout),
                0.5,
                0,
                None
            ),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
