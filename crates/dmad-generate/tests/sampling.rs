//! Normal sampling and harmonisation with the exact denoiser of Gaussian data (an oracle): the
//! moments of generated samples, the unmasked region of harmonised samples, reproducibility.

use candle_core::{DType, Device, Tensor};
use dmad_core::PredictionType;
use dmad_diffusion::{
    DdimConfig, DdimSampler, DdpmConfig, DdpmSampler, DpmSolverConfig, DpmSolverSampler,
    EulerConfig, EulerSampler, GaussianDenoiser, NoiseSchedule, NoiseScheduleConfig, Sampler,
    Start,
};
use dmad_generate::{
    harmonise, inject_image, inject_series, sample_normal, Error, HarmoniseConfig, ImageAnomaly,
    SeriesAnomaly, TableAnomaly, TableInjector, IMAGE_MIN_CHANGE, SERIES_MIN_CHANGE,
    TABLE_MIN_CHANGE,
};

/// The stated tolerance of the unmasked region of a harmonised sample (it is in fact exact).
const UNMASKED_TOL: f32 = 1e-6;

fn schedule() -> NoiseSchedule {
    NoiseScheduleConfig::default().build().unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// Every sampler of dmad-diffusion with `steps` steps, for epsilon prediction.
fn samplers(s: &NoiseSchedule, steps: usize) -> Vec<(&'static str, Box<dyn Sampler>)> {
    let pred = PredictionType::Epsilon;
    vec![
        (
            "ddim",
            Box::new(
                DdimSampler::new(
                    s,
                    DdimConfig {
                        num_inference_steps: steps,
                        prediction_type: pred,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "ddpm",
            Box::new(
                DdpmSampler::new(
                    s,
                    DdpmConfig {
                        num_inference_steps: steps,
                        prediction_type: pred,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "dpm_solver",
            Box::new(
                DpmSolverSampler::new(
                    s,
                    DpmSolverConfig {
                        num_inference_steps: steps,
                        prediction_type: pred,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "euler",
            Box::new(
                EulerSampler::new(
                    s,
                    EulerConfig {
                        num_inference_steps: steps,
                        prediction_type: pred,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
        ),
    ]
}

fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

#[test]
fn generated_normal_samples_match_the_gaussian_moments() {
    let s = schedule();
    let (mean, std) = (1.0, 0.5);
    let model = GaussianDenoiser::new(&s, mean, std, PredictionType::Epsilon).unwrap();
    // 8192 values: the standard error of the mean is 0.0055, of the std 0.004. The samplers'
    // discretisation bias at 250 steps (leading spacing) is up to 0.017 on the std (measured:
    // DDIM 0.491, DDPM 0.484, DPM-Solver++ 0.496, Euler 0.491; means within 0.008).
    // Stated tolerance: 0.03 on both.
    for (name, mut sampler) in samplers(&s, 250) {
        let x = sample_normal(&model, &mut sampler, &[2048, 4], 3, &Device::Cpu).unwrap();
        let (m, sd) = moments(&values(&x));
        println!("{name}: mean {m:.4} std {sd:.4}");
        assert!((m - mean).abs() < 0.03, "{name}: mean {m}");
        assert!((sd - std).abs() < 0.03, "{name}: std {sd}");
        let again = sample_normal(&model, &mut sampler, &[2048, 4], 3, &Device::Cpu).unwrap();
        assert_eq!(values(&x), values(&again), "{name}: not reproducible");
        let other = sample_normal(&model, &mut sampler, &[2048, 4], 4, &Device::Cpu).unwrap();
        assert_ne!(
            values(&x),
            values(&other),
            "{name}: the seed changes nothing"
        );
    }
}

#[test]
fn harmonised_images_keep_the_unmasked_region_and_their_mask() {
    let s = schedule();
    let model = GaussianDenoiser::new(&s, 0.0, 0.4, PredictionType::Epsilon).unwrap();
    for (name, mut sampler) in samplers(&s, 20) {
        let normal = sample_normal(&model, &mut sampler, &[3, 1, 24, 24], 0, &Device::Cpu)
            .unwrap()
            .clamp(-1f32, 1f32)
            .unwrap();
        for kind in ImageAnomaly::ALL {
            let what = format!("{name} {}", kind.name());
            let a = inject_image(&normal, kind, 1.0, 5).unwrap();
            let cfg = HarmoniseConfig {
                start: Start::Strength(0.5),
                seed: 9,
                resample: 0,
            };
            let h = a
                .harmonised(
                    &model,
                    &mut sampler,
                    &normal,
                    &cfg,
                    IMAGE_MIN_CHANGE,
                    -1.0,
                    1.0,
                )
                .unwrap();
            let (o, x, p, m) = (values(&normal), values(&h.x), values(&a.x), values(&h.mask));
            let mut masked_moved = 0f64;
            let mut pre = 0f64;
            for k in 0..o.len() {
                if m[k] == 0.0 {
                    assert!(
                        (x[k] - o[k]).abs() <= UNMASKED_TOL,
                        "{what}: unmasked pixel {k}"
                    );
                } else {
                    assert!(
                        (x[k] - o[k]).abs() >= IMAGE_MIN_CHANGE * 0.999,
                        "{what}: {k}"
                    );
                    masked_moved += (x[k] - p[k]).abs() as f64;
                    pre += (p[k] - o[k]).abs() as f64;
                }
            }
            // The masked region was denoised, not copied; the defect stays (it is not
            // restored to the normal image).
            assert!(masked_moved > 0.0, "{what}: harmonisation changed nothing");
            assert!(pre > 0.0, "{what}");
            let again = a
                .harmonised(
                    &model,
                    &mut sampler,
                    &normal,
                    &cfg,
                    IMAGE_MIN_CHANGE,
                    -1.0,
                    1.0,
                )
                .unwrap();
            assert_eq!(values(&again.x), x, "{what}: not reproducible");
        }
    }
}

#[test]
fn harmonised_series_and_projected_rows_keep_the_unmasked_region() {
    let s = schedule();
    let model = GaussianDenoiser::new(&s, 0.0, 1.0, PredictionType::Epsilon).unwrap();
    let mut ddim = DdimSampler::new(
        &s,
        DdimConfig {
            num_inference_steps: 20,
            ..Default::default()
        },
    )
    .unwrap();
    let normal = sample_normal(&model, &mut ddim, &[4, 2, 64], 1, &Device::Cpu).unwrap();
    for kind in SeriesAnomaly::ALL {
        let a = inject_series(&normal, kind, 0.8, 2).unwrap();
        let h = a
            .harmonised(
                &model,
                &mut ddim,
                &normal,
                &HarmoniseConfig::default(),
                SERIES_MIN_CHANGE,
                f32::MIN,
                f32::MAX,
            )
            .unwrap();
        let (o, x, m) = (values(&normal), values(&h.x), values(&h.mask));
        for k in 0..o.len() {
            let pos = (k / 128) * 64 + k % 64;
            if m[pos] == 0.0 {
                assert!((x[k] - o[k]).abs() <= UNMASKED_TOL, "{}: {k}", kind.name());
            } else {
                assert!(
                    (x[k] - o[k]).abs() >= SERIES_MIN_CHANGE * 0.999,
                    "{}",
                    kind.name()
                );
            }
        }
    }
    // Tables: the few-step projection of dependency anomalies (only some columns masked).
    let rows = sample_normal(&model, &mut ddim, &[64, 5], 2, &Device::Cpu).unwrap();
    let inj = TableInjector::fit(&rows).unwrap();
    let a = inj
        .inject(
            &rows.narrow(0, 0, 8).unwrap(),
            TableAnomaly::Dependency,
            0.6,
            3,
        )
        .unwrap();
    let mut few = DdimSampler::new(
        &s,
        DdimConfig {
            num_inference_steps: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let cfg = HarmoniseConfig {
        start: Start::Strength(0.3),
        seed: 1,
        resample: 0,
    };
    let orig = rows.narrow(0, 0, 8).unwrap();
    let p = a
        .harmonised(
            &model,
            &mut few,
            &orig,
            &cfg,
            TABLE_MIN_CHANGE,
            f32::MIN,
            f32::MAX,
        )
        .unwrap();
    let (o, x, m) = (values(&orig), values(&p.x), values(&p.mask));
    assert!(m.contains(&0.0) && m.contains(&1.0));
    for k in 0..o.len() {
        if m[k] == 0.0 {
            assert!((x[k] - o[k]).abs() <= UNMASKED_TOL, "row value {k}");
        } else {
            assert!((x[k] - o[k]).abs() >= TABLE_MIN_CHANGE * 0.999);
        }
    }
}

#[test]
fn harmonising_a_defect_pulls_it_towards_the_normal_data() {
    // With the exact denoiser of N(0, 0.3^2) images, a bright defect (+1) is pulled towards the
    // data the further back harmonisation starts.
    let s = schedule();
    let model = GaussianDenoiser::new(&s, 0.0, 0.3, PredictionType::Epsilon).unwrap();
    let mut ddim = DdimSampler::new(
        &s,
        DdimConfig {
            num_inference_steps: 20,
            ..Default::default()
        },
    )
    .unwrap();
    let normal = Tensor::zeros((1, 1, 16, 16), DType::F32, &Device::Cpu).unwrap();
    let mask = Tensor::zeros((1, 1, 16, 16), DType::F32, &Device::Cpu)
        .unwrap()
        .slice_assign(
            &[0..1, 0..1, 4..12, 4..12],
            &Tensor::ones((1, 1, 8, 8), DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
    let defect = (&normal + &mask).unwrap();
    let mut energy = |strength: f64| {
        let h = harmonise(
            &model,
            &mut ddim,
            &normal,
            &defect,
            &mask,
            &HarmoniseConfig {
                start: Start::Strength(strength),
                seed: 0,
                resample: 0,
            },
        )
        .unwrap();
        let v = values(&(h * &mask).unwrap());
        v.iter().map(|x| x.abs() as f64).sum::<f64>() / 64.0
    };
    let (weak, strong) = (energy(0.1), energy(0.9));
    println!("mean |defect| after harmonisation: start 0.1 -> {weak:.3}, 0.9 -> {strong:.3}");
    assert!(weak > 0.5, "a short harmonisation keeps the defect: {weak}");
    assert!(
        strong < weak * 0.5,
        "a long one pulls it towards 0: {weak} -> {strong}"
    );
}

#[test]
fn bad_input_is_an_error() {
    let s = schedule();
    let model = GaussianDenoiser::new(&s, 0.0, 1.0, PredictionType::Epsilon).unwrap();
    let mut ddim = DdimSampler::new(&s, DdimConfig::default()).unwrap();
    for shape in [&[0usize, 4][..], &[4], &[2, 0]] {
        assert!(matches!(
            sample_normal(&model, &mut ddim, shape, 0, &Device::Cpu),
            Err(Error::ShapeMismatch { .. })
        ));
    }
    let v = GaussianDenoiser::new(&s, 0.0, 1.0, PredictionType::VPrediction).unwrap();
    assert!(sample_normal(&v, &mut ddim, &[2, 2], 0, &Device::Cpu).is_err());
    let x = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    let y = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
    let cfg = HarmoniseConfig::default();
    assert!(matches!(
        harmonise(&model, &mut ddim, &x, &y, &x, &cfg),
        Err(Error::ShapeMismatch { .. })
    ));
    let bad_mask = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        harmonise(&model, &mut ddim, &x, &x, &bad_mask, &cfg),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        harmonise(&v, &mut ddim, &x, &x, &x, &cfg),
        Err(Error::InvalidConfig { .. })
    ));
    let none = HarmoniseConfig {
        start: Start::Strength(0.001),
        ..HarmoniseConfig::default()
    };
    assert!(matches!(
        harmonise(&model, &mut ddim, &x, &x, &x, &none),
        Err(Error::Diffusion(_))
    ));
}

/// RePaint's resampling: the jumps back use the sampler's own forward process, so with the
/// exact denoiser and everything masked the samples keep the data's moments; the unmasked
/// region stays exact and the result is reproducible.
#[test]
fn resampling_keeps_the_moments_and_the_unmasked_region() {
    let s = schedule();
    let model = GaussianDenoiser::new(&s, 1.0, 0.5, PredictionType::Epsilon).unwrap();
    // 250 steps, so the samplers' own discretisation bias (which every repeated step adds
    // again) stays small; stated tolerance 0.03 on mean and std, as for plain sampling.
    for (name, mut sampler) in samplers(&s, 250) {
        if name == "dpm_solver" {
            continue; // multistep: repeated steps would enter its history
        }
        let zeros = Tensor::zeros((2048, 4), DType::F32, &Device::Cpu).unwrap();
        let ones = Tensor::ones((2048, 4), DType::F32, &Device::Cpu).unwrap();
        for resample in [0, 2] {
            let cfg = HarmoniseConfig {
                start: Start::Strength(1.0),
                seed: 4,
                resample,
            };
            let x = harmonise(&model, &mut sampler, &zeros, &zeros, &ones, &cfg).unwrap();
            let (m, sd) = moments(&values(&x));
            println!("{name} resample {resample}: mean {m:.4} std {sd:.4}");
            assert!(
                (m - 1.0).abs() < 0.04 && (sd - 0.5).abs() < 0.04,
                "{name} {resample}"
            );
        }
        // Half masked: the other half is exact, and the result is reproducible.
        let orig = sample_normal(&model, &mut sampler, &[16, 1, 8, 8], 1, &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(
            (0..64).map(|i| (i % 2) as f32).collect::<Vec<_>>(),
            (1, 1, 8, 8),
            &Device::Cpu,
        )
        .unwrap();
        let pert = (&orig + 1.0).unwrap();
        let cfg = HarmoniseConfig {
            start: Start::Strength(0.5),
            seed: 2,
            resample: 3,
        };
        let h = harmonise(&model, &mut sampler, &orig, &pert, &mask, &cfg).unwrap();
        let again = harmonise(&model, &mut sampler, &orig, &pert, &mask, &cfg).unwrap();
        assert_eq!(values(&h), values(&again), "{name}: not reproducible");
        let single = harmonise(
            &model,
            &mut sampler,
            &orig,
            &pert,
            &mask,
            &HarmoniseConfig { resample: 0, ..cfg },
        )
        .unwrap();
        assert_ne!(
            values(&h),
            values(&single),
            "{name}: resampling changed nothing"
        );
        let (o, x) = (values(&orig), values(&h));
        for k in 0..o.len() {
            if k % 2 == 0 {
                assert!((x[k] - o[k]).abs() <= UNMASKED_TOL, "{name}: unmasked {k}");
            }
        }
    }
}
