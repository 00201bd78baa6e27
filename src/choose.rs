//! Choosing an audio detector's settings without test labels: each candidate configuration is
//! fitted on four fifths of the normal clips and scored on the other fifth against audio
//! anomalies generated in those same held-out clips' waveforms ([`Generator::mixed_anomalies`],
//! every kind, several strengths); the best by mean AUROC is refitted on every clip.

use candle_core::{Device, Tensor};

use crate::prepare::AudioInput;
use crate::{Detector, DetectorConfig, Error, GenerateConfig, Generator, Modality, Result};

/// The strengths of the generated anomalies candidates are compared on. At 0.7 alone every
/// log-mel candidate scored 0.997-1.000 on the protocol's mining-hard (2026-12-07), so the
/// choice fell to the tie-break there; the mean AUROC over weaker anomalies too rewards the
/// candidate that still finds the subtle ones.
pub const CHOICE_STRENGTHS: [f64; 4] = [0.1, 0.2, 0.35, 0.7];

/// What [`choose_audio`] chose.
pub struct AudioChoice {
    /// The chosen candidate, fitted on every clip.
    pub detector: Detector,
    /// Its index in the candidates.
    pub index: usize,
    /// Each candidate's mean AUROC over [`CHOICE_STRENGTHS`] on the held-out fifth.
    pub aurocs: Vec<f64>,
}

/// Every fifth sample of `x` (indices 0, 5, 10, ... of each copy) held out, and the rest:
/// `(fit, held)`. `copies` is how many versions of each sample `x` holds, one block after the
/// other (3 for images with their two flips, from [`crate::prepare::with_flips`]): a held-out
/// sample takes its copies with it, so that no flip of a held-out image is fitted.
///
/// # Errors
/// [`Error::InvalidConfig`] when `x`'s length is not a multiple of `copies`.
pub fn hold_out(x: &Tensor, copies: usize) -> Result<(Tensor, Tensor)> {
    let n = x.dim(0)?;
    if copies == 0 || n % copies != 0 {
        return Err(Error::InvalidConfig {
            field: "copies",
            reason: format!("{n} training samples are not {copies} copies of a set"),
        });
    }
    let originals = (n / copies).max(1) as u32;
    let (held, rest): (Vec<u32>, Vec<u32>) =
        (0..n as u32).partition(|i| (i % originals).is_multiple_of(5));
    let pick = |idx: Vec<u32>| -> Result<Tensor> {
        let len = idx.len();
        Ok(x.index_select(&Tensor::from_vec(idx, len, x.device())?, 0)?)
    };
    Ok((pick(rest)?, pick(held)?))
}

/// Chooses among audio detector `candidates` on the normal clips `waves` (`[n, samples]` at
/// the candidates' sample rate, one second each as [`crate::prepare::audio`] reads them):
/// each candidate is fitted on four fifths of the clips and scores the held-out fifth and the
/// audio anomalies of every kind that [`Generator::mixed_anomalies`] injects into the same
/// clips' waveforms at each of [`CHOICE_STRENGTHS`] (seeded by `seed`); the candidate with the
/// best mean AUROC (the first wins ties, so put the default first) is refitted on every clip.
/// Candidates with the same input share their samples, computed once.
///
/// # Errors
/// [`Error::InvalidConfig`] for no candidates, a candidate that is not an audio detector or
/// whose sample rate differs from the first's, or fewer than 10 clips (the held-out fifth
/// needs two); the errors of fitting, generating and scoring.
pub fn choose_audio(
    waves: &Tensor,
    candidates: &[DetectorConfig],
    seed: u64,
    device: &Device,
) -> Result<AudioChoice> {
    let bad = |reason: String| Error::InvalidConfig {
        field: "candidates",
        reason,
    };
    let first = candidates
        .first()
        .ok_or_else(|| bad("no candidate configurations to choose from".into()))?;
    for (i, c) in candidates.iter().enumerate() {
        if c.modality != Modality::Audio {
            return Err(bad(format!(
                "candidate {i} is a {} detector, not audio",
                c.modality
            )));
        }
        if c.input.sample_rate != first.input.sample_rate {
            return Err(bad(format!(
                "candidate {i} reads clips at {} Hz, candidate 0 at {} Hz",
                c.input.sample_rate, first.input.sample_rate
            )));
        }
    }
    let (n, len) = waves.dims2()?;
    if n < 10 {
        return Err(bad(format!(
            "{n} normal clips: at least 10 are needed (a fifth, at least two, is held out)"
        )));
    }
    if len == 0 {
        return Err(bad("the clips have no samples".into()));
    }
    let held_waves = hold_out(waves, 1)?.1;
    let mut cache: Vec<(crate::InputConfig, Tensor)> = Vec::new();
    let mut aurocs = Vec::with_capacity(candidates.len());
    for cfg in candidates {
        let all = match cache.iter().find(|(i, _)| *i == cfg.input) {
            Some((_, t)) => t.clone(),
            None => {
                let t = AudioInput::new(&cfg.input)?.samples(waves, device)?;
                cache.push((cfg.input.clone(), t.clone()));
                t
            }
        };
        let (fit_part, held) = hold_out(&all, 1)?;
        let mut det = Detector::new(cfg.clone(), device)?;
        det.fit(&fit_part, |_| {})?;
        let normal = det.score(&held)?.scores;
        let gen = Generator::new(&det, GenerateConfig::default())?;
        let mut sum = 0.0;
        for strength in CHOICE_STRENGTHS {
            let anomalies = gen.mixed_anomalies(&held_waves, strength, seed, None)?;
            let mut scores = normal.clone();
            scores.extend(det.score(&anomalies.x)?.scores);
            let labels: Vec<bool> = (0..scores.len()).map(|i| i >= normal.len()).collect();
            sum += dmad_metrics::auroc(&scores, &labels)?;
        }
        aurocs.push(sum / CHOICE_STRENGTHS.len() as f64);
    }
    let index = aurocs
        .iter()
        .enumerate()
        .fold(0, |best, (i, &a)| if a > aurocs[best] { i } else { best });
    let cfg = candidates[index].clone();
    let all = &cache
        .iter()
        .find(|(i, _)| *i == cfg.input)
        .expect("computed")
        .1;
    let mut detector = Detector::new(cfg, device)?;
    detector.fit(all, |_| {})?;
    Ok(AudioChoice {
        detector,
        index,
        aurocs,
    })
}

/// The candidates `dmad fit --scorer log-mel-dte --choose` (and Python's `choose=True`)
/// compares: the log-mel DTE detector `base` first (so it wins ties), then with the other time
/// bins (50 for 7, 7 for anything else), with the other statistics (the plain mean and
/// deviation for the frame-difference deviations, or the other way round), and with both
/// changed; the MLP is resized to each candidate's rows. The benchmark's
/// `log-mel-dte-delta-chosen` cell compares the same four.
///
/// # Errors
/// [`Error::InvalidConfig`] when `base` is not parametric DTE on log-mel statistics of audio.
pub fn log_mel_candidates(base: &DetectorConfig) -> Result<Vec<DetectorConfig>> {
    let bins = match base.scorer {
        crate::ScorerConfig::DteCategorical { bins, .. }
            if base.modality == Modality::Audio
                && base.input.audio_features == crate::AudioFeatures::LogMelStatistics =>
        {
            bins
        }
        _ => {
            return Err(Error::InvalidConfig {
                field: "scorer",
                reason: "choosing log-mel statistics and time bins needs parametric DTE on \
                         log-mel statistics of audio (`log-mel-dte`)"
                    .into(),
            })
        }
    };
    let other_stats = match base.input.mel_statistics {
        crate::MelStatistics::MeanStd => crate::MelStatistics::MeanStdDelta,
        crate::MelStatistics::MeanStdDelta => crate::MelStatistics::MeanStd,
    };
    let other_bins = if bins == 50 { 7 } else { 50 };
    let variant = |stats: crate::MelStatistics, bins: usize| {
        let mut c = base.clone();
        c.input.mel_statistics = stats;
        if let crate::NetworkConfig::Mlp(m) = &mut c.network {
            m.in_features = c.input.log_mel_row_len();
        }
        c.scorer = crate::ScorerConfig::DteCategorical {
            bins,
            surprisal: false,
        };
        c
    };
    let s = base.input.mel_statistics;
    Ok(vec![
        variant(s, bins),
        variant(s, other_bins),
        variant(other_stats, bins),
        variant(other_stats, other_bins),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifth_clip_is_held_out() {
        let x = Tensor::arange(0u32, 11, &Device::Cpu).unwrap();
        let (fit, held) = hold_out(&x, 1).unwrap();
        assert_eq!(held.to_vec1::<u32>().unwrap(), [0, 5, 10]);
        assert_eq!(fit.to_vec1::<u32>().unwrap(), [1, 2, 3, 4, 6, 7, 8, 9]);
    }

    #[test]
    fn bad_candidates_are_named() {
        let waves = Tensor::zeros((12, 16_000), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = |c: &[DetectorConfig], w: &Tensor| {
            choose_audio(w, c, 0, &Device::Cpu)
                .err()
                .expect("an error")
                .to_string()
        };
        assert!(err(&[], &waves).contains("no candidate"));
        let table = DetectorConfig::for_tables(3);
        assert!(err(&[table], &waves).contains("not audio"));
        let a = DetectorConfig::for_audio_log_mel();
        let mut b = a.clone();
        b.input.sample_rate = 8000;
        assert!(err(&[a.clone(), b], &waves).contains("8000 Hz"));
        let few = waves.narrow(0, 0, 6).unwrap();
        assert!(err(&[a], &few).contains("at least 10"));
    }

    #[test]
    fn log_mel_candidates_put_the_base_first_and_vary_statistics_and_bins() {
        let base = DetectorConfig::for_audio_log_mel();
        let c = log_mel_candidates(&base).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(
            serde_json::to_string(&c[0]).unwrap(),
            serde_json::to_string(&base).unwrap()
        );
        let described: Vec<(crate::MelStatistics, usize, usize)> = c
            .iter()
            .map(|c| {
                let bins = match c.scorer {
                    crate::ScorerConfig::DteCategorical { bins, .. } => bins,
                    _ => 0,
                };
                let width = match &c.network {
                    crate::NetworkConfig::Mlp(m) => m.in_features,
                    _ => 0,
                };
                (c.input.mel_statistics, bins, width)
            })
            .collect();
        use crate::MelStatistics::{MeanStd, MeanStdDelta};
        assert_eq!(
            described,
            [
                (MeanStdDelta, 7, 192),
                (MeanStdDelta, 50, 192),
                (MeanStd, 7, 128),
                (MeanStd, 50, 128)
            ]
        );
        let err = log_mel_candidates(&DetectorConfig::for_audio_log_mel_image())
            .expect_err("an error")
            .to_string();
        assert!(err.contains("log-mel-dte"), "{err}");
    }
}
