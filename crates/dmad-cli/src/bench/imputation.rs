//! The benchmark's imputation-diffusion cells for series (issue 21).

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use dmad::generate::SeriesAnomaly;
use dmad::prepare;
use dmad::{Detector, DetectorConfig, WindowNorm};

use super::{Dataset, Source};

/// Training steps at budget 1.
const STEPS: usize = 800;

/// The window of the UCR classification sets: each whole series resampled to it.
const UCR_CLASS_WINDOW: usize = 64;

/// The benchmark's imputation detector of a series dataset: [`DetectorConfig::series_imputation`]
/// with the window chosen from the train part alone (two of its periods,
/// [`prepare::train_period`] and [`prepare::imputation_window`]); the UCR classification sets'
/// whole series are resampled to 64 steps, as the other variants do. `STEPS * budget` steps
/// of the benchmark's small U-Net.
pub(super) fn config(ds: &Dataset, budget: f64) -> Result<DetectorConfig> {
    let window = match &ds.source {
        Source::Series(src) => {
            let (split, _) = prepare::series_split(src)?;
            prepare::imputation_window(prepare::train_period(&split.train))
        }
        _ => UCR_CLASS_WINDOW,
    };
    let mut cfg = DetectorConfig::series_imputation(1, window);
    // The benchmark's small U-Net (as the other series variants), and attention only at the
    // lowest resolution: at every stage it cost 2.4x the training time on UCR #135's 368-step
    // windows (0.41 against 0.17 s a step), fixed before any test figure was seen.
    super::bench_unet(&mut cfg);
    if let Some(m) = cfg.network.modules_mut() {
        m.multi_head_attention = false;
    }
    cfg.train.steps = ((STEPS as f64 * budget).round() as usize).max(1);
    cfg.train.lr_warmup_steps = cfg.train.lr_warmup_steps.min(cfg.train.steps / 10);
    Ok(cfg)
}

/// Strength of the anomalies injected for the choice of the window normalisation.
const GENERATED_STRENGTH: f64 = 0.5;

/// Fits the imputation detector on the first four fifths of the training windows (in time
/// order) once with each window normalisation ([`WindowNorm::Window`], [`WindowNorm::Global`])
/// and keeps the one that tells the last fifth from copies of it with every GutenTAG anomaly
/// kind injected ([`dmad::generate::inject_series`], strength 0.5) best: the AUROC of each
/// window's largest per-step score. No test data is read. Returns the detector, its
/// normalisation and that AUROC.
pub(super) fn fit_choosing_norm(
    cfg: &DetectorConfig,
    train: &Tensor,
    seed: u64,
    dev: &Device,
) -> Result<(Detector, WindowNorm, f64)> {
    let n = train.dim(0)?;
    let held_n = (n / 5).max(1);
    if n < held_n + 1 {
        bail!("{n} training windows are too few to hold a fifth out");
    }
    let fit_part = train.narrow(0, 0, n - held_n)?;
    let held = train.narrow(0, n - held_n, held_n)?;
    let mut parts = vec![held.clone()];
    for (k, kind) in SeriesAnomaly::ALL.into_iter().enumerate() {
        let injected = dmad::generate::inject_series(
            &held,
            kind,
            GENERATED_STRENGTH,
            seed.wrapping_add(k as u64),
        )?;
        parts.push(injected.x);
    }
    let x = Tensor::cat(&parts, 0)?;
    let labels: Vec<bool> = (0..x.dim(0)?).map(|i| i >= held_n).collect();
    let mut best: Option<(Detector, WindowNorm, f64)> = None;
    for norm in [WindowNorm::Window, WindowNorm::Global] {
        let mut c = cfg.clone();
        c.input.window_norm = norm;
        let mut det = Detector::new(c, dev)?;
        det.fit(&fit_part, |_| {})?;
        let s = det.score(&x)?;
        let maps = s
            .maps
            .context("the imputation scorer gives per-step maps")?;
        let peak = maps.max(1)?.to_vec1::<f32>()?;
        let auroc = dmad::metrics::auroc(&peak, &labels)?;
        if best.as_ref().is_none_or(|b| auroc > b.2) {
            best = Some((det, norm, auroc));
        }
    }
    Ok(best.expect("two candidates"))
}
