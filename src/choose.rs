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

/// The clips `waves` (`[n, samples]`) as `input`'s detector samples.
fn samples(waves: &Tensor, input: &crate::InputConfig, device: &Device) -> Result<Tensor> {
    let transform = AudioInput::new(input)?;
    let rows = waves
        .to_vec2::<f32>()?
        .iter()
        .map(|w| transform.sample(w, device))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&rows, 0)?)
}

/// Every fifth clip (indices 0, 5, 10, ...) held out, and the rest: `(fit, held)` indices.
fn fifths(n: usize) -> (Vec<u32>, Vec<u32>) {
    let (held, fit): (Vec<u32>, Vec<u32>) = (0..n as u32).partition(|i| i % 5 == 0);
    (fit, held)
}

fn pick(x: &Tensor, idx: &[u32]) -> Result<Tensor> {
    let t = Tensor::from_vec(idx.to_vec(), idx.len(), x.device())?;
    Ok(x.index_select(&t, 0)?)
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
    let (fit_idx, held_idx) = fifths(n);
    let held_waves = pick(waves, &held_idx)?;
    let mut cache: Vec<(crate::InputConfig, Tensor)> = Vec::new();
    let mut aurocs = Vec::with_capacity(candidates.len());
    for cfg in candidates {
        let all = match cache.iter().find(|(i, _)| *i == cfg.input) {
            Some((_, t)) => t.clone(),
            None => {
                let t = samples(waves, &cfg.input, device)?;
                cache.push((cfg.input.clone(), t.clone()));
                t
            }
        };
        let mut det = Detector::new(cfg.clone(), device)?;
        det.fit(&pick(&all, &fit_idx)?, |_| {})?;
        let normal = det.score(&pick(&all, &held_idx)?)?.scores;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifth_clip_is_held_out() {
        let (fit, held) = fifths(11);
        assert_eq!(held, vec![0, 5, 10]);
        assert_eq!(fit, vec![1, 2, 3, 4, 6, 7, 8, 9]);
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
}
