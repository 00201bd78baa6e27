//! Images: the brick texture crops the repository ships (MVTec AD layout with masks); prints
//! image AUROC and pixel AUROC. With EfficientNet-Lite0's weights (`DMAD_EFFICIENTNET`, see
//! docs/EFFICIENTNET.md) it fits the best trained image configuration of docs/RESULTS.md:
//! parametric diffusion-time estimation on the patch features (`dmad fit --scorer
//! feature-dte`); without them, the method's 2D U-Net (all four modules) in pixel space.
//!
//! Run: `cargo run --release --example images`

use dmad::data::Split;
use dmad::{prepare, Detector, DetectorConfig, Modality, ScorerConfig};

fn main() -> anyhow::Result<()> {
    dmad::init_cpu();
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let dev = dmad::device_from_env()?;
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/data/textures-ad/brick");
    let cfg = match std::env::var_os("DMAD_EFFICIENTNET") {
        Some(weights) => {
            let mut cfg = DetectorConfig::feature_diffusion(Modality::Image, 1);
            cfg.scorer = ScorerConfig::DteCategorical {
                bins: 7,
                surprisal: false,
            };
            cfg.scoring.feature_weights = Some(weights.into());
            // The shipped crops are 64x64; a few passes over their patches suffice.
            cfg.input.image_size = 64;
            cfg.train.steps = 600;
            println!("parametric DTE on EfficientNet-Lite0 patch features");
            cfg
        }
        None => {
            let mut cfg = DetectorConfig::for_images(1);
            // Attention at every stage is quadratic in the pixels: 32x32 keeps it small.
            cfg.input.image_size = 32;
            cfg.train.steps = 300;
            cfg.scoring.steps = 20;
            println!(
                "the pixel-space U-Net (set DMAD_EFFICIENTNET for the feature-space detector, \
                 which detects far better: docs/EFFICIENTNET.md)"
            );
            cfg
        }
    };
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
