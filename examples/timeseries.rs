//! Time series: a 1D U-Net detector (all four modules of the method) on UCR Anomaly Archive
//! series #135, which the repository ships; windows are scored by reconstruction and mapped
//! back to points. Prints the point-level AUROC and the UCR top-1 hit.
//!
//! Run: `cargo run --release --example timeseries`

use dmad::{prepare, Detector, DetectorConfig};

fn main() -> anyhow::Result<()> {
    dmad::init_cpu();
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let dev = dmad::device_from_env()?;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/data/ucr-anomaly/135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt");
    let mut cfg = DetectorConfig::for_series(1);
    cfg.train.steps = 300;
    cfg.train.batch_size = 32;
    cfg.scoring.steps = 20;
    cfg.scoring.batch_size = 64;
    let input = &cfg.input;
    let task = prepare::ucr_series(
        &file,
        input.window,
        input.train_stride,
        input.test_stride,
        &dev,
    )?;
    println!(
        "{}: {} train windows, {} test windows of {} points",
        task.name,
        task.train.dim(0)?,
        task.test.dim(0)?,
        task.window
    );
    let mut det = Detector::new(cfg, &dev)?;
    det.fit(&task.train, |p| {
        if p.step % 100 == 0 {
            println!("step {:>4}  loss {:.4}", p.step, p.loss);
        }
    })?;
    let s = det.score(&task.test)?;
    let points = task.detector_points(&det, &s)?;
    let r = dmad::evaluate(&points, &task.test_labels, None)?;
    let (begin, end) = task.anomaly.expect("UCR files name their anomaly");
    let hit = dmad::metrics::ucr_top1_hit(&points, task.test_offset, begin, end)?;
    println!(
        "point AUROC {:.3}  AUPRC {:.3}  UCR top-1 hit: {hit}",
        r.auroc, r.auprc
    );
    Ok(())
}
