//! Scoring by partial diffusion in the input's own space (pixels, series steps, table rows):
//! the reconstruction term, the feature term, DDAD's conditioning, map pooling and tiling.

use candle_core::Tensor;
use dmad_core::{Denoiser, FeatureExtractor};
use dmad_diffusion::Start;
use dmad_score::maps::smooth_and_reduce;
use dmad_score::{
    FeatureScorer, ReconstructionConfig, ReconstructionScorer, Reconstructor, ScoreOutput, Scorer,
    Terms, Tiling,
};

use super::Detector;
use crate::network::Network;
use crate::sampler::AnySampler;
use crate::{Error, Result};

impl Detector {
    /// The tiling of images the network sees in tiles ([`crate::InputConfig::tile_size`]).
    pub(super) fn tiling(&self) -> Result<Option<Tiling>> {
        let input = &self.cfg.input;
        Ok(match input.tile_size {
            Some(t) => Some(Tiling::new(t as usize, input.tile_overlap as usize)?),
            None => None,
        })
    }

    /// The reconstructor of one scoring batch starting at `strength`, conditioned on its
    /// input when `scoring.condition > 0`; `offset` (the batch's first sample) seeds its own
    /// noise stream.
    pub(super) fn reconstructor(
        &self,
        offset: u64,
        strength: f64,
    ) -> Result<Reconstructor<&Network, AnySampler>> {
        let s = &self.cfg.scoring;
        let sampler = crate::sampler::build(
            s.sampler,
            &self.schedule,
            s.steps,
            self.frozen.prediction_type(),
        )?;
        Ok(Reconstructor::new(
            &self.frozen,
            sampler,
            ReconstructionConfig {
                start: Start::Strength(strength),
                draws: s.draws,
                // Each batch of the data set gets its own noise stream.
                seed: s
                    .seed
                    .wrapping_add(offset.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            },
        )?
        .conditioned(&self.schedule, s.condition)?
        .mean_of_draws(s.mean_reconstruction))
    }

    /// The reconstruction term and, with `features`, the feature term of one scoring batch
    /// `x0`, from the same reconstructions started at `strength`: images in tiles are
    /// reconstructed tile by tile and their maps stitched back; each term's map is then
    /// smoothed and summarised as `scoring.smoothing_sigma` and `scoring.map_score` say.
    pub(super) fn pixel_terms(
        &self,
        x0: &Tensor,
        offset: u64,
        strength: f64,
        features: Option<&dyn FeatureExtractor>,
    ) -> Result<(ScoreOutput, Option<ScoreOutput>)> {
        let s = &self.cfg.scoring;
        let rec = self.reconstructor(offset, strength)?;
        let tiling = self.tiling()?;
        let x = match &tiling {
            Some(t) => t.split(x0)?,
            None => x0.clone(),
        };
        let (recon, feat) = match features {
            Some(f) => {
                let t = FeatureScorer::new(rec, f)
                    .with_distance(s.feature_distance)
                    .terms(&x)?;
                (t.recon, Some(t.feat))
            }
            None => (ReconstructionScorer::new(rec).score(&x)?, None),
        };
        let finish = |out: ScoreOutput| -> Result<ScoreOutput> {
            let out = match &tiling {
                Some(t) => {
                    let (h, w) = (x0.dim(2)?, x0.dim(3)?);
                    ScoreOutput {
                        scores: t.mean_scores(&out.scores, h, w)?,
                        map: out.map.map(|m| t.stitch(&m, h, w)).transpose()?,
                    }
                }
                None => out,
            };
            Ok(smooth_and_reduce(out, s.smoothing_sigma, s.map_score)?)
        };
        Ok((finish(recon)?, feat.map(finish).transpose()?))
    }

    /// The feature extractor of the feature and combined scorers.
    pub(super) fn perceptual(&self) -> Result<&dyn FeatureExtractor> {
        match self.features.as_deref() {
            Some(f) => Ok(f),
            None => Err(Error::InvalidConfig {
                field: "scorer",
                reason: "the feature network is not loaded".to_string(),
            }),
        }
    }

    /// The reconstruction and feature terms of the same reconstructions at the configured
    /// start, batched as [`Detector::score`] batches.
    pub(super) fn terms(&self, x: &Tensor) -> Result<Terms> {
        let (recon, feat) =
            self.score_terms(x, self.cfg.scoring.strength, Some(self.perceptual()?))?;
        Ok(Terms {
            recon,
            feat: feat.expect("features were given"),
        })
    }

    /// The reconstruction term of `x` and, with `features`, its feature term, scored as the
    /// detector scores them (its sampler, steps, draws, seed, conditioning, feature distance,
    /// tiling, smoothing and map summary) but starting at `strength`, in batches of
    /// `scoring.batch_size` (the same noise as [`Detector::score`]): what a calibration of the
    /// start strength and `lambda` compares.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a DTE or feature-space detector (no reconstruction);
    /// errors of the network, the sampler and the extractor.
    pub fn score_terms(
        &self,
        x: &Tensor,
        strength: f64,
        features: Option<&dyn FeatureExtractor>,
    ) -> Result<(ScoreOutput, Option<ScoreOutput>)> {
        if self.dte.is_some() || self.space.is_some() {
            return Err(Error::InvalidConfig {
                field: "scorer",
                reason: "DTE and feature-space detectors do not reconstruct their input"
                    .to_string(),
            });
        }
        self.check_input(x)?;
        let x = self.prepare_input(&x.to_device(&self.device)?)?;
        let n = x.dim(0)?;
        let bs = self.cfg.scoring.batch_size;
        let (mut recon, mut feat) = (Vec::new(), Vec::new());
        let mut start = 0;
        while start < n {
            let len = bs.min(n - start);
            let chunk = x.narrow(0, start, len)?;
            let (r, f) = self.pixel_terms(&chunk, start as u64, strength, features)?;
            recon.push(r);
            feat.extend(f);
            start += len;
        }
        let feat = if feat.is_empty() {
            None
        } else {
            Some(ScoreOutput::concat(&feat)?)
        };
        Ok((ScoreOutput::concat(&recon)?, feat))
    }
}
