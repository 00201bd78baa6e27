//! The log-mel statistics cells on audio (issue 17): the library's detector of
//! `DetectorConfig::for_audio_log_mel` (`dmad fit --scorer log-mel-dte`) with fixed settings,
//! and with its log-mel and time bins chosen on anomalies generated from a held-out fifth of
//! the training clips (no test label read).

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use dmad::{Detector, DetectorConfig, MelStatistics, ScorerConfig};

/// The strengths of the generated anomalies a chosen cell compares candidates on. At the
/// benchmark's usual 0.7 alone every log-mel candidate scored 0.997-1.000 on mining-hard
/// (measured 2026-12-07), so the choice there fell to the tie-break; the mean AUROC over
/// weaker anomalies too rewards the candidate that still finds the subtle ones.
const CHOICE_STRENGTHS: [f64; 4] = [0.1, 0.2, 0.35, 0.7];

/// A candidate of a chosen cell: the log-mel, the time bins and the clip statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    mel: Mel,
    bins: usize,
    stats: MelStatistics,
}

const fn candidate_of(mel: Mel, bins: usize, stats: MelStatistics) -> Candidate {
    Candidate { mel, bins, stats }
}

/// The candidates of `log-mel-dte-chosen`: the log-mel and the time bins. The first is the
/// library's default and wins ties.
pub(super) const MEL_AND_BINS: [Candidate; 4] = [
    candidate_of(Mel::Library, 7, MelStatistics::MeanStd),
    candidate_of(Mel::Library, 50, MelStatistics::MeanStd),
    candidate_of(Mel::Librosa, 7, MelStatistics::MeanStd),
    candidate_of(Mel::Librosa, 50, MelStatistics::MeanStd),
];

/// The candidates of `log-mel-dte-delta-chosen`: the clip statistics (with or without the
/// deviation of the frame differences) and the time bins, on the library's log-mel. The first
/// is the library's default and wins ties.
pub(super) const STATISTICS_AND_BINS: [Candidate; 4] = [
    candidate_of(Mel::Library, 7, MelStatistics::MeanStd),
    candidate_of(Mel::Library, 7, MelStatistics::MeanStdDelta),
    candidate_of(Mel::Library, 50, MelStatistics::MeanStd),
    candidate_of(Mel::Library, 50, MelStatistics::MeanStdDelta),
];

/// Which log-mel a cell takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mel {
    /// The library's default: HTK's mel scale on whole frames (not centred), as
    /// `benches/peers/classical.py`'s log-mel.
    Library,
    /// librosa's defaults: Slaney's mel scale on centred frames.
    Librosa,
    /// HTK's mel scale on centred frames.
    HtkCentred,
}

impl Mel {
    fn apply(self, input: &mut dmad::InputConfig) {
        (input.mel_htk, input.mel_center) = match self {
            Mel::Library => (true, false),
            Mel::Librosa => (false, true),
            Mel::HtkCentred => (true, true),
        };
    }

    fn name(self) -> &'static str {
        match self {
            Mel::Library => "HTK uncentred",
            Mel::Librosa => "Slaney",
            Mel::HtkCentred => "HTK",
        }
    }
}

/// The library's log-mel DTE detector with `scorer`, the log-mel `mel` seen as `features`
/// (statistics, `stats`, or windows), and 2000 x `budget` training steps.
pub(super) fn config(
    budget: f64,
    scorer: ScorerConfig,
    mel: Mel,
    features: dmad::AudioFeatures,
    stats: MelStatistics,
) -> DetectorConfig {
    let mut input = dmad::InputConfig {
        audio_features: features,
        mel_statistics: stats,
        ..dmad::InputConfig::default()
    };
    mel.apply(&mut input);
    let mut cfg = DetectorConfig::for_audio_log_mel_input(input);
    cfg.scorer = scorer;
    cfg.train.steps = ((2000.0 * budget).round() as usize).max(1);
    cfg
}

/// What [`fit_chosen`] chose.
pub(super) struct Chosen {
    /// The detector with the chosen settings, fitted on every training clip.
    pub det: Detector,
    /// The candidates and their generated-anomaly AUROCs, in words.
    pub describe: String,
    /// The chosen candidate, in a few words ("HTK, 50 bins").
    pub short: String,
    /// The chosen candidate's mean AUROC over the generated anomalies' strengths.
    pub auroc: f64,
}

/// Fits each of `candidates` (`base` with its log-mel, time bins and statistics varied) on
/// four fifths of the training clips of the DCASE folder `dir`, scores the held-out fifth and
/// the audio anomalies (every kind) injected into the same clips' waveforms at each of
/// [`CHOICE_STRENGTHS`], and refits the best by mean AUROC over the strengths (the first wins
/// ties) on all the training clips. The clips are decoded once;
/// each log-mel row set is computed once from them.
pub(super) fn fit_chosen(
    dir: &Path,
    base: &DetectorConfig,
    candidates: &[Candidate],
    seed: u64,
    dev: &Device,
) -> Result<Chosen> {
    let waves = super::audio_train_waves(dir, &base.input, dev)?;
    let held_waves = super::hold_out(&waves, 1)?.1;
    let mut rows: Vec<(dmad::InputConfig, Tensor)> = Vec::new();
    let mut tried = Vec::with_capacity(candidates.len());
    for &c in candidates {
        let cfg = candidate(base, c);
        let train = match rows.iter().find(|(i, _)| *i == cfg.input) {
            Some((_, t)) => t.clone(),
            None => {
                let t = clip_rows(&waves, &cfg.input, dev)?;
                rows.push((cfg.input.clone(), t.clone()));
                t
            }
        };
        let (fit_part, held) = super::hold_out(&train, 1)?;
        let mut det = Detector::new(cfg, dev)?;
        det.fit(&fit_part, |_| {})?;
        let gen = dmad::Generator::new(&det, dmad::GenerateConfig::default())?;
        let normal = det.score(&held)?.scores;
        let mut sum = 0.0;
        for strength in CHOICE_STRENGTHS {
            let anomalies = gen.mixed_anomalies(&held_waves, strength, seed, None)?;
            let mut scores = normal.clone();
            scores.extend(det.score(&anomalies.x)?.scores);
            let labels: Vec<bool> = (0..scores.len()).map(|i| i >= normal.len()).collect();
            sum += dmad::metrics::auroc(&scores, &labels)?;
        }
        tried.push((c, sum / CHOICE_STRENGTHS.len() as f64));
    }
    let &(best, auroc) = tried
        .iter()
        .fold(None, |best: Option<&(Candidate, f64)>, c| match best {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
        .context("no candidates")?;
    let describe = tried
        .iter()
        .map(|&(c, a)| format!("{}: {a:.3}", name(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let cfg = candidate(base, best);
    let train = &rows
        .iter()
        .find(|(i, _)| *i == cfg.input)
        .context("computed")?
        .1;
    let mut det = Detector::new(cfg, dev)?;
    det.fit(train, |_| {})?;
    Ok(Chosen {
        det,
        describe: format!(
            "log-mel settings and bins by the mean generated-anomaly AUROC over strengths \
             {CHOICE_STRENGTHS:?} on a held-out fifth: {describe}"
        ),
        short: name(best),
        auroc,
    })
}

/// The detector's samples of the clips `waves` (`[n, samples]`, as `prepare::audio` reads
/// them) under `input`.
fn clip_rows(waves: &Tensor, input: &dmad::InputConfig, dev: &Device) -> Result<Tensor> {
    let transform = dmad::prepare::AudioInput::new(input)?;
    let rows = waves
        .to_vec2::<f32>()?
        .iter()
        .map(|w| transform.sample(w, dev))
        .collect::<dmad::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&rows, 0)?)
}

/// A candidate in a few words.
fn name(c: Candidate) -> String {
    let stats = match c.stats {
        MelStatistics::MeanStd => "",
        MelStatistics::MeanStdDelta => ", delta",
    };
    format!("{}{stats}, {} bins", c.mel.name(), c.bins)
}

fn candidate(base: &DetectorConfig, c: Candidate) -> DetectorConfig {
    let mut cfg = base.clone();
    c.mel.apply(&mut cfg.input);
    cfg.input.mel_statistics = c.stats;
    // The MLP as wide as the candidate's rows.
    if let dmad::NetworkConfig::Mlp(m) = &mut cfg.network {
        m.in_features = cfg.input.log_mel_row_len();
    }
    cfg.scorer = ScorerConfig::DteCategorical {
        bins: c.bins,
        surprisal: false,
    };
    cfg
}
