//! Images: a 2D U-Net detector (all four modules of the method) on the brick texture crops
//! the repository ships (MVTec AD layout with masks); prints image AUROC and pixel AUROC.
//!
//! Run: `cargo run --release --example images`

use dmad::data::Split;
use dmad::{prepare, Detector, DetectorConfig};

fn main() -> anyhow::Result<()> {
    dmad::init_cpu();
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let dev = dmad::device_from_env()?;
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/data/textures-ad/brick");
    let mut cfg = DetectorConfig::for_images(1);
    // Attention at every stage is quadratic in the pixels: 32x32 keeps the example small.
    cfg.input.image_size = 32;
    cfg.train.steps = 300;
    cfg.scoring.steps = 20;
    let size = cfg.input.image_size;
    let train = prepare::images(&root, Split::Train, size, 1, &dev)?;
    let test = prepare::images(&root, Split::Test, size, 1, &dev)?;
    let x = prepare::with_flips(&train.x)?;
    println!(
        "{} training images (with flips), {} test images",
        x.dim(0)?,
        test.labels.len()
    );
    let mut det = Detector::new(cfg, &dev)?;
    det.fit(&x, |p| {
        if p.step % 50 == 0 {
            println!("step {:>4}  loss {:.4}", p.step, p.loss);
        }
    })?;
    let s = det.score(&test.x)?;
    let r = dmad::evaluate(&s.scores, &test.labels, Some(det.threshold()?.value))?;
    println!("image AUROC {:.3}  AUPRC {:.3}", r.auroc, r.auprc);
    if let (Some(maps), Some(masks)) = (&s.maps, &test.masks) {
        let n = maps.dim(0)?;
        let maps: Vec<Vec<f32>> = (0..n)
            .map(|i| maps.get(i)?.flatten_all()?.to_vec1())
            .collect::<Result<_, _>>()?;
        let masks: Vec<Vec<bool>> = (0..n)
            .map(|i| {
                Ok(masks
                    .get(i)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|&v| v > 0.5)
                    .collect())
            })
            .collect::<anyhow::Result<_>>()?;
        println!(
            "pixel AUROC {:.3}",
            dmad::metrics::pixel_auroc(&maps, &masks)?
        );
    }
    Ok(())
}
