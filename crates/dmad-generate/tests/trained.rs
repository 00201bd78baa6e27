//! A tiny MLP denoiser trained on a toy distribution generates samples with its moments.

use candle_core::{DType, Device, Tensor};
use dmad_diffusion::{DdimConfig, DdimSampler, NoiseSchedule, NoiseScheduleConfig};
use dmad_generate::sample_normal;
use dmad_train::{Control, TrainConfig, Trainer};
use dmad_unet::{MlpConfig, MlpDenoiser};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// The toy distribution: two independent columns, `N(1, 0.3^2)` and `N(-0.5, 0.6^2)`.
const MEANS: [f64; 2] = [1.0, -0.5];
const STDS: [f64; 2] = [0.3, 0.6];

fn toy(n: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cols: Vec<Normal<f64>> = (0..2)
        .map(|j| Normal::new(MEANS[j], STDS[j]).unwrap())
        .collect();
    let v: Vec<f32> = (0..n)
        .flat_map(|_| {
            [
                cols[0].sample(&mut rng) as f32,
                cols[1].sample(&mut rng) as f32,
            ]
        })
        .collect();
    Tensor::from_vec(v, (n, 2), &Device::Cpu).unwrap()
}

/// Trains a small v-prediction MLP (width 64, 2 blocks) for 1500 steps on 2048 toy rows, then
/// draws 2048 rows with DDIM (50 steps). Stated tolerance: 0.06 on each column's mean and
/// standard deviation (measured: means 0.994 and -0.510, stds 0.282 and 0.565; the Monte Carlo
/// error is below 0.015, the model's error dominates). (With epsilon prediction the same budget
/// gives a std of 1.08 for the narrow column: the small network does not learn the low-noise
/// end; v-prediction does.)
#[test]
fn a_trained_mlp_generates_the_moments_of_its_toy_distribution() {
    let dev = Device::Cpu;
    let schedule = NoiseSchedule::new(NoiseScheduleConfig::default()).unwrap();
    let cfg = MlpConfig {
        width: 64,
        depth: 2,
        time_embedding_dim: 32,
        prediction_type: dmad_core::PredictionType::VPrediction,
        ..MlpConfig::new(2)
    };
    let (model, varmap) = MlpDenoiser::with_varmap(cfg, DType::F32, &dev).unwrap();
    let train = TrainConfig {
        steps: 1500,
        batch_size: 128,
        learning_rate: 2e-3,
        lr_warmup_steps: 20,
        ema_decay: Some(0.99),
        checkpoint_every: None,
        seed: 3,
        ..Default::default()
    };
    let mut trainer = Trainer::new(
        train,
        schedule.clone(),
        &varmap,
        serde_json::json!({"kind": "mlp"}),
    )
    .unwrap();
    let data = toy(2048, 1);
    trainer
        .fit(&model, &data, None, None, |_| Control::Continue)
        .unwrap();
    trainer.apply_ema().unwrap();
    let mut ddim = DdimSampler::new(
        &schedule,
        DdimConfig {
            num_inference_steps: 50,
            prediction_type: dmad_core::PredictionType::VPrediction,
            ..Default::default()
        },
    )
    .unwrap();
    let x = sample_normal(&model, &mut ddim, &[2048, 2], 5, &dev).unwrap();
    let rows = x.to_vec2::<f32>().unwrap();
    for j in 0..2 {
        let col: Vec<f64> = rows.iter().map(|r| r[j] as f64).collect();
        let m = col.iter().sum::<f64>() / col.len() as f64;
        let sd = (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / col.len() as f64).sqrt();
        println!(
            "column {j}: mean {m:.4} (want {}), std {sd:.4} (want {})",
            MEANS[j], STDS[j]
        );
        assert!((m - MEANS[j]).abs() < 0.06, "column {j}: mean {m}");
        assert!((sd - STDS[j]).abs() < 0.06, "column {j}: std {sd}");
    }
}
