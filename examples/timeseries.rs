//! Time series: imputation diffusion (a 1D U-Net with all four modules of the method, trained to
//! fill grating-masked segments of normal windows) on UCR Anomaly Archive series #135, which
//! the repository ships. The window is two periods of the training part; `fit_series` holds
//! nothing out of a series this short and chooses the noise levels and the smoothing of the
//! point scores on anomalies injected into the training series. Prints the choice, the
//! point-level AUROC and the UCR top-1 hit.
//!
//! Run: `cargo run --release --example timeseries` (about two minutes on two cores)

use dmad::data::NonFinite;
use dmad::train::Control;
use dmad::{prepare, Detector, DetectorConfig};

fn main() -> anyhow::Result<()> {
    dmad::init_cpu();
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let dev = dmad::device_from_env()?;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/data/ucr-anomaly/135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt");
    // The training part, standardised, and its period (never the test part).
    let (mut split, _) = prepare::ucr_split_with(&file, NonFinite::Reject)?;
    split.normalise();
    let period = prepare::train_period(&split.train);
    let cfg = DetectorConfig::series_imputation_for_period(1, period);
    let input = &cfg.input;
    let task = prepare::ucr_series(
        &file,
        input.window,
        input.train_stride,
        input.test_stride,
        &dev,
    )?;
    println!(
        "{}: period {period}, windows of {} points, {} test windows",
        task.name,
        task.window,
        task.test.dim(0)?
    );
    let mut det = Detector::new(cfg, &dev)?;
    let fit = dmad::series::fit_series(&mut det, &split.train, None, |p| {
        if p.step % 100 == 0 {
            println!("step {:>4}  loss {:.4}", p.step, p.loss);
        }
        Control::Continue
    })?;
    if let Some(c) = &fit.choice {
        println!(
            "chosen on injected anomalies ({}): {:?}, point sigma {} steps",
            if c.in_sample { "in sample" } else { "held out" },
            c.scorer,
            c.point_sigma
        );
    }
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
