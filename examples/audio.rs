//! Audio: the machine-hum clips the repository ships (DCASE task-2 layout) become their
//! log-mel statistics (per band the mean and deviation over the clip, the DCASE baselines'
//! features), and parametric diffusion-time estimation scores them: a classifier of how much
//! noise a training clip's statistics were given, each clip scored by its expected diffusion
//! time (`dmad fit --scorer log-mel-dte`, the best audio configuration of docs/RESULTS.md).
//! Prints AUROC.
//!
//! Run: `cargo run --release --example audio`

use dmad::data::Split;
use dmad::{prepare, Detector, DetectorConfig};

fn main() -> anyhow::Result<()> {
    dmad::init_cpu();
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let dev = dmad::device_from_env()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/data/audio/hum");
    // The preset's 2000 steps: with six clips each step is one pass over them, each clip's
    // statistics noised anew every time (a few seconds).
    let cfg = DetectorConfig::for_audio_log_mel();
    let train = prepare::audio(&root, Split::Train, &cfg.input, &dev)?;
    let test = prepare::audio(&root, Split::Test, &cfg.input, &dev)?;
    println!(
        "{} training clips, {} test clips, log-mel statistics {:?}",
        train.labels.len(),
        test.labels.len(),
        &train.x.dims()[1..]
    );
    let mut det = Detector::new(cfg, &dev)?;
    det.fit(&train.x, |_| {})?;
    let s = det.score(&test.x)?;
    for ((kind, src), score) in test.kinds.iter().zip(&test.sources).zip(&s.scores) {
        println!("{score:>10.5}  {kind:<10} {src}");
    }
    let r = dmad::evaluate(&s.scores, &test.labels, Some(det.threshold()?.value))?;
    println!("AUROC {:.3}  AUPRC {:.3}", r.auroc, r.auprc);
    Ok(())
}
