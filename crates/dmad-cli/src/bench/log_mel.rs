//! The log-mel statistics cells on audio (issue 17): the library's detector of
//! `DetectorConfig::for_audio_log_mel` (`dmad fit --scorer log-mel-dte`) with fixed settings,
//! and with its log-mel and time bins chosen on anomalies generated from a held-out fifth of
//! the training clips (no test label read).

use std::path::Path;

use anyhow::Result;
use candle_core::Device;
use dmad::{Detector, DetectorConfig, MelStatistics, ScorerConfig};

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

/// Chooses among `candidates` (`base` with its log-mel, time bins and statistics varied) with
/// [`dmad::choose::choose_audio`] on the training clips of the DCASE folder `dir`: each fitted
/// on four fifths, compared on the held-out fifth against audio anomalies generated in it
/// (mean AUROC over [`dmad::choose::CHOICE_STRENGTHS`]), the best refitted on all.
pub(super) fn fit_chosen(
    dir: &Path,
    base: &DetectorConfig,
    candidates: &[Candidate],
    seed: u64,
    dev: &Device,
) -> Result<Chosen> {
    let waves = super::audio_train_waves(dir, &base.input, dev)?;
    let configs: Vec<DetectorConfig> = candidates.iter().map(|&c| candidate(base, c)).collect();
    let choice = dmad::choose::choose_audio(&waves, &configs, seed, dev)?;
    let describe = candidates
        .iter()
        .zip(&choice.aurocs)
        .map(|(&c, a)| format!("{}: {a:.3}", name(c)))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Chosen {
        det: choice.detector,
        describe: format!(
            "log-mel settings and bins by the mean generated-anomaly AUROC over strengths \
             {:?} on a held-out fifth: {describe}",
            dmad::choose::CHOICE_STRENGTHS
        ),
        short: name(candidates[choice.index]),
        auroc: choice.aurocs[choice.index],
    })
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
