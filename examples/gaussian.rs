//! Samples the exact denoiser of Gaussian data with every sampler and prints each sampler's
//! error against the true distribution.
//!
//! Run: `cargo run --release --example gaussian`
//!
//! The data are i.i.d. `N(0.5, 0.4^2)`. Its optimal denoiser is known in closed form
//! ([`dmad::diffusion::GaussianDenoiser`]), so the only errors left are the sampler's
//! discretisation error and the Monte Carlo error of the sample (about 0.0016 on the mean and
//! 0.0011 on the std for 65536 samples). Each row samples 65536 values from standard normal
//! noise with a fixed seed, and reports the sample's mean and std, their errors, and the KL
//! divergence `KL(N(mean, std^2) || N(0.5, 0.4^2))`. The last rows reconstruct data samples
//! by partial diffusion (strength 0.5), which must also keep the distribution.
//!
//! What to expect (the analytic values, from the exact scalar recursion of each update):
//! - every sampler gets the mean right to Monte Carlo error;
//! - the std shows each sampler's discretisation error: DDPM with the `fixed_small` variance
//!   (and DDIM with eta = 1, the same update) loses variance with few steps (std 0.348 at 50
//!   steps, 0.396 at 1000); deterministic DDIM and Euler are first order (0.374 at 50 steps,
//!   0.394 at 250); DPM-Solver++ 2M is second order, but its last step jumps from the last plan
//!   timestep straight to sigma = 0 and returns the posterior mean there, so it is limited by
//!   how close that timestep is to 0 (t = 50 at 20 `linspace` steps: std 0.367; t = 20 at 50
//!   steps: 0.397).

use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Tensor};
use dmad::diffusion::{
    reconstruct, sample, BetaSchedule, DdimConfig, DdimSampler, DdpmConfig, DdpmSampler,
    DpmSolverConfig, DpmSolverSampler, EulerConfig, EulerSampler, GaussianDenoiser, NoiseSchedule,
    NoiseScheduleConfig, NoiseSource, PredictionType, Sampler, SeededNoise, Start,
};

const MEAN: f64 = 0.5;
const STD: f64 = 0.4;
/// 64 samples of 1024 independent values: 65536 values in all. (The per-sample work of a
/// step, such as gathering coefficients, is per batch entry, so many tiny samples would be
/// slow for no gain.)
const SHAPE: [usize; 2] = [64, 1024];
const N: usize = SHAPE[0] * SHAPE[1];

fn samplers(
    schedule: &NoiseSchedule,
    pred: PredictionType,
) -> Result<Vec<(String, Box<dyn Sampler>)>> {
    let ddpm = |n: usize| -> Result<Box<dyn Sampler>> {
        Ok(Box::new(DdpmSampler::new(
            schedule,
            DdpmConfig {
                num_inference_steps: n,
                prediction_type: pred,
                ..Default::default()
            },
        )?))
    };
    let ddim = |n: usize, eta: f64| -> Result<Box<dyn Sampler>> {
        Ok(Box::new(DdimSampler::new(
            schedule,
            DdimConfig {
                num_inference_steps: n,
                prediction_type: pred,
                eta,
                ..Default::default()
            },
        )?))
    };
    let dpm = |n: usize| -> Result<Box<dyn Sampler>> {
        Ok(Box::new(DpmSolverSampler::new(
            schedule,
            DpmSolverConfig {
                num_inference_steps: n,
                prediction_type: pred,
                ..Default::default()
            },
        )?))
    };
    let euler = |n: usize| -> Result<Box<dyn Sampler>> {
        Ok(Box::new(EulerSampler::new(
            schedule,
            EulerConfig {
                num_inference_steps: n,
                prediction_type: pred,
                ..Default::default()
            },
        )?))
    };
    Ok(vec![
        ("DDPM, 1000 steps".into(), ddpm(1000)?),
        ("DDPM, 50 steps".into(), ddpm(50)?),
        ("DDIM, 250 steps".into(), ddim(250, 0.0)?),
        ("DDIM, 50 steps".into(), ddim(50, 0.0)?),
        ("DDIM eta=1, 50 steps".into(), ddim(50, 1.0)?),
        ("DPM-Solver++ 2M, 50 steps".into(), dpm(50)?),
        ("DPM-Solver++ 2M, 20 steps".into(), dpm(20)?),
        ("Euler, 250 steps".into(), euler(250)?),
        ("Euler, 50 steps".into(), euler(50)?),
    ])
}

/// Mean and (unbiased) standard deviation of all values.
fn moments(x: &Tensor) -> Result<(f64, f64)> {
    let v = x
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    Ok((m, var.sqrt()))
}

/// `KL(N(m, s^2) || N(MEAN, STD^2))`.
fn kl(m: f64, s: f64) -> f64 {
    (STD / s).ln() + (s * s + (m - MEAN).powi(2)) / (2.0 * STD * STD) - 0.5
}

fn row(name: &str, pred: PredictionType, x: &Tensor, secs: f64) -> Result<()> {
    let (m, s) = moments(x)?;
    println!(
        "{name:<28} {:<13} {m:>8.4} {s:>8.4} {:>+9.4} {:>+9.4} {:>10.2e} {:>7.2}",
        pred.as_str(),
        m - MEAN,
        s - STD,
        kl(m, s),
        secs * 1e3
    );
    Ok(())
}

fn main() -> Result<()> {
    // Each tensor op here touches 65536 values: too little for candle's spinning CPU thread
    // pool to pay off, and on a busy machine the pool makes the run 20x slower. Run candle
    // single-threaded unless the user chose otherwise. (Set before the first tensor op.)
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    // `DMAD_DEVICE=cuda` runs on CUDA device 0 (build with `--features cuda`).
    let device = match std::env::var("DMAD_DEVICE").as_deref() {
        Ok("cuda") => Device::new_cuda(0)?,
        _ => Device::Cpu,
    };
    let schedule = NoiseScheduleConfig {
        beta_schedule: BetaSchedule::Linear,
        ..Default::default()
    }
    .build()?;
    println!("data N({MEAN}, {STD}^2), {N} samples, linear schedule, T = 1000, CPU");
    println!(
        "{:<28} {:<13} {:>8} {:>8} {:>9} {:>9} {:>10} {:>7}",
        "sampler", "prediction", "mean", "std", "mean err", "std err", "KL", "ms"
    );
    let data = SeededNoise::new(1)
        .draw(&SHAPE, &device)?
        .affine(STD, MEAN)?;
    for pred in [
        PredictionType::Epsilon,
        PredictionType::VPrediction,
        PredictionType::Sample,
    ] {
        let model = GaussianDenoiser::new(&schedule, MEAN, STD, pred)?;
        for (name, mut sampler) in samplers(&schedule, pred)? {
            let mut noise = SeededNoise::new(0);
            let x_t = (noise.draw(&SHAPE, &device)? * sampler.init_noise_sigma())?;
            let start = Instant::now();
            let x0 = sample(&model, &mut sampler, &x_t, &mut noise)?;
            row(&name, pred, &x0, start.elapsed().as_secs_f64())?;
        }
    }
    println!("partial diffusion (reconstruction of data samples), strength 0.5:");
    for pred in [PredictionType::Epsilon, PredictionType::VPrediction] {
        let model = GaussianDenoiser::new(&schedule, MEAN, STD, pred)?;
        for (name, mut sampler) in samplers(&schedule, pred)? {
            let mut noise = SeededNoise::new(2);
            let start = Instant::now();
            let rec = reconstruct(
                &model,
                &mut sampler,
                &data,
                Start::Strength(0.5),
                &mut noise,
            )?;
            row(&name, pred, &rec, start.elapsed().as_secs_f64())?;
        }
    }
    Ok(())
}
