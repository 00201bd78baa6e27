//! The log-mel statistics cells on audio (issue 17): the library's detector of
//! `DetectorConfig::for_audio_log_mel` (`dmad fit --scorer log-mel-dte`) with fixed settings,
//! and with its log-mel and time bins chosen on anomalies generated from a held-out fifth of
//! the training clips (no test label read).

use std::path::Path;

use anyhow::Result;
use candle_core::{Device, Tensor};
use dmad::{Detector, DetectorConfig, ScorerConfig};

/// The candidates of the chosen cell: (log-mel, time bins). The first is the library's
/// default and wins ties.
const CANDIDATES: [(Mel, usize); 4] = [
    (Mel::Library, 7),
    (Mel::Library, 50),
    (Mel::Librosa, 7),
    (Mel::Librosa, 50),
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
/// (statistics or windows), and 2000 x `budget` training steps.
pub(super) fn config(
    budget: f64,
    scorer: ScorerConfig,
    mel: Mel,
    features: dmad::AudioFeatures,
) -> DetectorConfig {
    let mut cfg = DetectorConfig::for_audio_log_mel_features(features);
    cfg.scorer = scorer;
    mel.apply(&mut cfg.input);
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
    /// The chosen candidate's AUROC on the generated anomalies.
    pub auroc: f64,
}

/// Fits each candidate of `base` (its log-mel and time bins varied) on four fifths of the
/// training clips of the DCASE folder `dir`, scores the held-out fifth and the audio
/// anomalies (every kind) injected into the same clips' waveforms, and refits the best by
/// AUROC on all the training clips. The clips are decoded once; each log-mel is computed
/// once from them.
pub(super) fn fit_chosen(
    dir: &Path,
    base: &DetectorConfig,
    seed: u64,
    dev: &Device,
) -> Result<Chosen> {
    let waves = super::audio_train_waves(dir, &base.input, dev)?;
    let held_waves = super::hold_out(&waves, 1)?.1;
    let mut rows: Vec<(Mel, Tensor)> = Vec::new();
    let mut tried = Vec::with_capacity(CANDIDATES.len());
    for (mel, bins) in CANDIDATES {
        let cfg = candidate(base, mel, bins);
        let train = match rows.iter().find(|(m, _)| *m == mel) {
            Some((_, t)) => t.clone(),
            None => {
                let t = clip_rows(&waves, &cfg.input, dev)?;
                rows.push((mel, t.clone()));
                t
            }
        };
        let (fit_part, held) = super::hold_out(&train, 1)?;
        let mut det = Detector::new(cfg, dev)?;
        det.fit(&fit_part, |_| {})?;
        let gen = dmad::Generator::new(&det, dmad::GenerateConfig::default())?;
        let anomalies = gen.mixed_anomalies(&held_waves, super::GENERATED_STRENGTH, seed, None)?;
        let (m, k) = (held.dim(0)?, anomalies.x.dim(0)?);
        let scores = det.score(&Tensor::cat(&[&held, &anomalies.x], 0)?)?.scores;
        let labels: Vec<bool> = (0..m + k).map(|i| i >= m).collect();
        tried.push((mel, bins, dmad::metrics::auroc(&scores, &labels)?));
    }
    let &(mel, bins, auroc) = tried
        .iter()
        .fold(None, |best: Option<&(Mel, usize, f64)>, c| match best {
            Some(b) if b.2 >= c.2 => Some(b),
            _ => Some(c),
        })
        .expect("candidates");
    let describe = tried
        .iter()
        .map(|&(h, b, a)| format!("{}: {a:.3}", name(h, b)))
        .collect::<Vec<_>>()
        .join(", ");
    let train = &rows.iter().find(|(m, _)| *m == mel).expect("computed").1;
    let mut det = Detector::new(candidate(base, mel, bins), dev)?;
    det.fit(train, |_| {})?;
    Ok(Chosen {
        det,
        describe: format!(
            "log-mel and bins by generated-anomaly AUROC on a held-out fifth: {describe}"
        ),
        short: name(mel, bins),
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
fn name(mel: Mel, bins: usize) -> String {
    format!("{}, {bins} bins", mel.name())
}

fn candidate(base: &DetectorConfig, mel: Mel, bins: usize) -> DetectorConfig {
    let mut cfg = base.clone();
    mel.apply(&mut cfg.input);
    cfg.scorer = ScorerConfig::DteCategorical {
        bins,
        surprisal: false,
    };
    cfg
}
