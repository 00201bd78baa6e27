//! Tables: a diffusion detector on the wbc table the repository ships (ADBench/DTE split,
//! seed 0), scored by partial-diffusion reconstruction and by DTE; prints both AUROCs.
//!
//! Run: `cargo run --release --example tables`

use dmad::{prepare, Detector, DetectorConfig, ScorerConfig};

fn main() -> anyhow::Result<()> {
    dmad::init_cpu();
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let dev = dmad::device_from_env()?;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/data/tabular");
    let task = prepare::table(
        data.join("wbc.csv"),
        Some(&data.join("splits/wbc.json")),
        0,
        &dev,
    )?;
    let features = task.train.dim(1)?;
    println!(
        "wbc: {} normal train rows, {} test rows ({} anomalies), {features} features",
        task.train.dim(0)?,
        task.test.labels.len(),
        task.test.labels.iter().filter(|&&l| l == 1).count()
    );
    for (name, scorer) in [
        ("reconstruction", ScorerConfig::Reconstruction),
        ("DTE (k = 5)", ScorerConfig::Dte { k: 5 }),
    ] {
        let mut cfg = DetectorConfig::for_tables(features);
        cfg.train.steps = 1000;
        cfg.scorer = scorer;
        let mut det = Detector::new(cfg, &dev)?;
        det.fit(&task.train, |_| {})?;
        let scores = det.score(&task.test.x)?.scores;
        let thr = det.threshold()?.value;
        let r = dmad::evaluate(&scores, &task.test.labels, Some(thr))?;
        println!(
            "{name:>15}: AUROC {:.3}  AUPRC {:.3}  F1 at the normal-data threshold {:.3}",
            r.auroc,
            r.auprc,
            r.f1_at_threshold.unwrap_or(0.0)
        );
    }
    Ok(())
}
