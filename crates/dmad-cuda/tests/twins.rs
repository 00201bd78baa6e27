//! The CPU twins of the kernels against the tools of record, on the CPU: candle's GroupNorm
//! (+ SiLU) and its autograd, `dmad-wavelets`' tensor DWT (itself checked against PyWavelets
//! 1.8.0), and `dmad-diffusion`'s DDIM and DPM-Solver++ samplers (checked against diffusers).

mod common;

use candle_core::{DType, Device, Module, Tensor, Var};
use common::{assert_close, randn};
use dmad_core::PredictionType;
use dmad_cuda::{group_norm_kernel, sampler_step, Dwt2dPeriodization, Error, StepCoefs};
use dmad_diffusion::{
    DdimConfig, DdimSampler, DpmSolverConfig, DpmSolverSampler, NoiseScheduleConfig, Sampler,
};
use dmad_wavelets::tensor::Dwt2d;
use dmad_wavelets::{Mode, Wavelet};

fn candle_gn(x: &Tensor, g: usize, w: &Tensor, b: &Tensor, silu: bool) -> Tensor {
    let c = x.dim(1).unwrap();
    let y = candle_nn::GroupNorm::new(w.clone(), b.clone(), c, g, 1e-5)
        .unwrap()
        .forward(x)
        .unwrap();
    if silu {
        y.silu().unwrap()
    } else {
        y
    }
}

#[test]
fn group_norm_twin_matches_candle_forward_and_backward() {
    let cases: &[(usize, usize, &[usize], usize)] = &[
        (1, 4, &[5, 7], 2),
        (2, 6, &[3, 3], 3),
        (3, 8, &[1, 9], 8),
        (2, 12, &[11], 4),
        (4, 64, &[4, 5], 32),
        (2, 6, &[2, 3, 2], 2),
    ];
    for (k, &(n, c, sp, g)) in cases.iter().enumerate() {
        for silu in [false, true] {
            let mut dims = vec![n, c];
            dims.extend_from_slice(sp);
            let seed = 10 * k as u64;
            let x = Var::from_tensor(&randn(seed, &dims, 2.0, 0.5)).unwrap();
            let w = Var::from_tensor(&randn(seed + 1, &[c], 0.5, 1.0)).unwrap();
            let b = Var::from_tensor(&randn(seed + 2, &[c], 0.5, 0.0)).unwrap();
            let up = randn(seed + 3, &dims, 1.0, 0.0);
            let what = format!("case {k} {dims:?} groups {g} silu {silu}");
            let ours = group_norm_kernel(&x, g, &w, &b, 1e-5, silu).unwrap();
            let theirs = candle_gn(&x, g, &w, &b, silu);
            assert_close(&ours, &theirs, 1e-5, &format!("{what}: forward"));
            let go = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
            let gt = (theirs * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (v, name) in [(&x, "dx"), (&w, "dweight"), (&b, "dbias")] {
                let (a, e) = (go.get(v).unwrap(), gt.get(v).unwrap());
                assert_close(a, e, 1e-4, &format!("{what}: {name}"));
            }
        }
    }
}

#[test]
fn group_norm_dispatch_on_the_cpu_is_dmad_ops() {
    let x = randn(1, &[2, 8, 6, 6], 1.0, 0.0);
    let w = randn(2, &[8], 0.3, 1.0);
    let b = randn(3, &[8], 0.3, 0.0);
    let ours = dmad_cuda::group_norm_silu(&x, 4, &w, &b, 1e-5).unwrap();
    let ops = dmad_ops::group_norm_silu(&x, 4, &w, &b, 1e-5).unwrap();
    assert_close(&ours, &ops, 0.0, "dispatch = dmad-ops");
    let plain = dmad_cuda::group_norm(&x, 4, &w, &b, 1e-5).unwrap();
    assert_close(&plain, &candle_gn(&x, 4, &w, &b, false), 1e-5, "group_norm");
}

#[test]
fn group_norm_twin_in_bf16_is_the_f32_result_rounded() {
    let x = randn(4, &[2, 8, 5, 5], 1.5, 0.2);
    let w = randn(5, &[8], 0.3, 1.0);
    let b = randn(6, &[8], 0.3, 0.0);
    let bf = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
    let y16 = group_norm_kernel(&bf(&x), 4, &bf(&w), &bf(&b), 1e-5, true).unwrap();
    assert_eq!(y16.dtype(), DType::BF16);
    // Reference from the bf16-rounded inputs in f32; bf16 keeps 8 bits: relative 2^-8.
    let f = |t: &Tensor| bf(t).to_dtype(DType::F32).unwrap();
    let y32 = group_norm_kernel(&f(&x), 4, &f(&w), &f(&b), 1e-5, true).unwrap();
    assert_close(&y16, &y32, 1.0 / 256.0, "bf16 vs f32");
}

#[test]
fn group_norm_kernel_rejects_bad_input() {
    let x = randn(1, &[2, 6, 4], 1.0, 0.0);
    let w = randn(2, &[6], 1.0, 0.0);
    match group_norm_kernel(&x, 4, &w, &w, 1e-5, true) {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "num_groups"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    match group_norm_kernel(&x.flatten_from(1).unwrap(), 3, &w, &w, 1e-5, true) {
        Err(Error::ShapeMismatch { context, .. }) => assert_eq!(context, "group_norm: x"),
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    let short = randn(3, &[5], 1.0, 0.0);
    assert!(matches!(
        group_norm_kernel(&x, 3, &short, &w, 1e-5, true),
        Err(Error::ShapeMismatch {
            context: "group_norm: weight",
            ..
        })
    ));
    let x64 = x.to_dtype(DType::F64).unwrap();
    let w64 = w.to_dtype(DType::F64).unwrap();
    assert!(matches!(
        group_norm_kernel(&x64, 3, &w64, &w64, 1e-5, true),
        Err(Error::Unsupported(_))
    ));
}

const WAVELETS: [&str; 5] = ["haar", "db2", "db4", "sym3", "coif2"];

#[test]
fn dwt_twin_matches_dmad_wavelets_forward_inverse_and_gradient() {
    let sizes: &[(usize, usize, usize, usize)] = &[
        (1, 1, 2, 2),
        (2, 3, 8, 8),
        (1, 2, 6, 10),
        (2, 1, 16, 12),
        (1, 1, 4, 4),
    ];
    for name in WAVELETS {
        let wav = Wavelet::new(name).unwrap();
        let ours = Dwt2dPeriodization::new(&wav).unwrap();
        let reference = Dwt2d::new(&wav, Mode::Periodization);
        for (k, &(b, c, h, w)) in sizes.iter().enumerate() {
            let what = format!("{name} {:?}", (b, c, h, w));
            let x = Var::from_tensor(&randn(100 + k as u64, &[b, c, h, w], 1.0, 0.3)).unwrap();
            let y = ours.forward_kernel(&x, 0.5).unwrap();
            let y_ref = (reference.forward_stacked(&x).unwrap() * 0.5).unwrap();
            assert_close(&y, &y_ref, 1e-5, &format!("{what}: forward"));

            let bands = randn(200 + k as u64, y.dims(), 1.0, 0.0);
            let z = ours.inverse_kernel(&bands, 2.0).unwrap();
            let z_ref = (reference.inverse_stacked(&bands).unwrap() * 2.0).unwrap();
            assert_close(&z, &z_ref, 1e-5, &format!("{what}: inverse"));

            let up = randn(300 + k as u64, y.dims(), 1.0, 0.0);
            let g = (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
            let g_ref = (y_ref * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let (ga, gr) = (g.get(&x).unwrap(), g_ref.get(&x).unwrap());
            assert_close(ga, gr, 1e-5, &format!("{what}: dx of the forward"));

            let bv = Var::from_tensor(&bands).unwrap();
            let up2 = randn(400 + k as u64, &[b, c, h, w], 1.0, 0.0);
            let z = ours.inverse_kernel(&bv, 2.0).unwrap();
            let z_ref = (reference.inverse_stacked(&bv).unwrap() * 2.0).unwrap();
            let g = (z * &up2).unwrap().sum_all().unwrap().backward().unwrap();
            let g_ref = (z_ref * &up2)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let (ga, gr) = (g.get(&bv).unwrap(), g_ref.get(&bv).unwrap());
            assert_close(ga, gr, 1e-5, &format!("{what}: dbands of the inverse"));
        }
    }
}

#[test]
fn dwt_twin_round_trips_and_the_dispatch_matches_it_on_the_cpu() {
    for name in WAVELETS {
        let ours = Dwt2dPeriodization::new(&Wavelet::new(name).unwrap()).unwrap();
        let x = randn(7, &[2, 2, 12, 8], 1.0, 0.0);
        let back = ours
            .inverse_kernel(&ours.forward_kernel(&x, 1.0).unwrap(), 1.0)
            .unwrap();
        assert_close(&back, &x, 1e-5, &format!("{name}: idwt(dwt(x))"));
        let fast = ours.forward_stacked(&x, 0.5).unwrap();
        let twin = ours.forward_kernel(&x, 0.5).unwrap();
        assert_close(&fast, &twin, 1e-5, &format!("{name}: dispatch forward"));
        let inv = ours.inverse_stacked(&twin, 2.0).unwrap();
        assert_close(&inv, &x, 1e-5, &format!("{name}: dispatch inverse"));
    }
}

#[test]
fn dwt_rejects_bad_input() {
    let ours = Dwt2dPeriodization::new(&Wavelet::new("db2").unwrap()).unwrap();
    let odd = randn(1, &[1, 1, 5, 4], 1.0, 0.0);
    assert!(matches!(
        ours.forward_kernel(&odd, 1.0),
        Err(Error::ShapeMismatch { .. })
    ));
    let three = randn(1, &[1, 3, 2, 2], 1.0, 0.0);
    assert!(matches!(
        ours.inverse_kernel(&three, 1.0),
        Err(Error::ShapeMismatch { .. })
    ));
    let rank3 = randn(1, &[1, 4, 4], 1.0, 0.0);
    assert!(matches!(
        ours.forward_kernel(&rank3, 1.0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Dwt2dPeriodization::new(&Wavelet::new("db20").unwrap()),
        Err(Error::Unsupported(_))
    ));
}

fn per_sample_t(ts: &[f64]) -> Tensor {
    let v: Vec<u32> = ts.iter().map(|&t| t as u32).collect();
    Tensor::from_vec(v, ts.len(), &Device::Cpu).unwrap()
}

#[test]
fn fused_ddim_step_matches_the_ddim_sampler() {
    let schedule = NoiseScheduleConfig::default().build().unwrap();
    let ac = schedule.alphas_cumprod().to_vec();
    let cases = [
        (PredictionType::Epsilon, 0.0, None),
        (PredictionType::Epsilon, 0.7, None),
        (PredictionType::VPrediction, 0.0, Some(1.0)),
        (PredictionType::Sample, 0.3, Some(0.5)),
    ];
    for (k, (pred, eta, clip)) in cases.into_iter().enumerate() {
        let cfg = DdimConfig {
            num_inference_steps: 10,
            prediction_type: pred,
            eta,
            clip_sample: clip.is_some(),
            clip_sample_range: clip.unwrap_or(1.0),
            ..DdimConfig::default()
        };
        let mut sampler = DdimSampler::new(&schedule, cfg).unwrap();
        let plan = sampler.timesteps().to_vec();
        let ratio = (schedule.num_train_timesteps() / 10) as i64;
        // Each sample at its own plan step, the last one at the final step.
        let ts = [plan[0], plan[3], plan[9]];
        let x = randn(500 + k as u64, &[3, 2, 4, 4], 1.0, 0.0);
        let m = randn(600 + k as u64, &[3, 2, 4, 4], 1.0, 0.0);
        let noise = randn(700 + k as u64, &[3, 2, 4, 4], 1.0, 0.0);
        let want = sampler
            .step(&m, &per_sample_t(&ts), &x, Some(&noise))
            .unwrap();
        let a: Vec<f64> = ts.iter().map(|&t| ac[t as usize]).collect();
        let ap: Vec<f64> = ts
            .iter()
            .map(|&t| {
                let p = t as i64 - ratio;
                if p >= 0 {
                    ac[p as usize]
                } else {
                    1.0
                }
            })
            .collect();
        let coefs = StepCoefs::ddim(pred, &a, &ap, eta, clip).unwrap();
        let aux = (eta > 0.0).then_some(&noise);
        let (got, x0) = sampler_step(&x, &m, aux, &coefs, true).unwrap();
        assert_close(&got, &want, 1e-5, &format!("case {k}: DDIM step"));
        assert_eq!(x0.unwrap().dims(), x.dims());
    }
}

#[test]
fn fused_dpm_solver_pp_steps_match_the_sampler_over_a_trajectory() {
    let schedule = NoiseScheduleConfig::default().build().unwrap();
    for pred in [PredictionType::Epsilon, PredictionType::VPrediction] {
        let cfg = DpmSolverConfig {
            num_inference_steps: 6,
            prediction_type: pred,
            ..DpmSolverConfig::default()
        };
        let mut sampler = DpmSolverSampler::new(&schedule, cfg).unwrap();
        let plan = sampler.timesteps().to_vec();
        let sigmas = sampler.sigmas().to_vec();
        let mut x = randn(800, &[2, 3, 5], 1.0, 0.0);
        let mut ours = x.clone();
        let mut prev_x0: Option<Tensor> = None;
        for (i, &t) in plan.iter().enumerate() {
            let m = randn(900 + i as u64, &[2, 3, 5], 1.0, 0.0);
            x = sampler.step(&m, &per_sample_t(&[t, t]), &x, None).unwrap();
            let second = i > 0 && i != plan.len() - 1;
            let s1 = if second { Some(sigmas[i - 1]) } else { None };
            let coefs =
                StepCoefs::dpm_solver_pp(pred, &[s1, s1], &[sigmas[i]; 2], &[sigmas[i + 1]; 2])
                    .unwrap();
            let aux = if second { prev_x0.as_ref() } else { None };
            let (next, x0) = sampler_step(&ours, &m, aux, &coefs, true).unwrap();
            ours = next;
            prev_x0 = x0;
            assert_close(&ours, &x, 1e-4, &format!("{pred:?} step {i}"));
        }
    }
}

#[test]
fn sampler_step_bf16_and_bad_input() {
    let x = randn(1, &[2, 8], 1.0, 0.0);
    let m = randn(2, &[2, 8], 1.0, 0.0);
    let coefs =
        StepCoefs::ddim(PredictionType::Epsilon, &[0.5, 0.9], &[0.7, 1.0], 0.0, None).unwrap();
    let (y32, _) = sampler_step(&x, &m, None, &coefs, false).unwrap();
    let bf = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
    let (y16, _) = sampler_step(&bf(&x), &bf(&m), None, &coefs, false).unwrap();
    assert_eq!(y16.dtype(), DType::BF16);
    assert_close(&y16, &y32, 2.0 / 256.0, "bf16 step");

    assert!(matches!(
        sampler_step(&x, &m.narrow(1, 0, 4).unwrap(), None, &coefs, false),
        Err(Error::ShapeMismatch { .. })
    ));
    let one = StepCoefs::ddim(PredictionType::Epsilon, &[0.5], &[0.7], 0.0, None).unwrap();
    assert!(matches!(
        sampler_step(&x, &m, None, &one, false),
        Err(Error::ShapeMismatch { .. })
    ));
    let noisy = StepCoefs::ddim(
        PredictionType::Epsilon,
        &[0.5, 0.9],
        &[0.7, 0.95],
        1.0,
        None,
    )
    .unwrap();
    assert!(matches!(
        sampler_step(&x, &m, None, &noisy, false),
        Err(Error::InvalidConfig { field: "aux", .. })
    ));
    assert!(matches!(
        StepCoefs::ddim(PredictionType::Epsilon, &[0.5], &[0.7, 0.2], 0.0, None),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        StepCoefs::ddim(PredictionType::Epsilon, &[1.5], &[0.7], 0.0, None),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn attention_twin_matches_dmad_ops_forward_and_backward() {
    for (k, &(bh, tq, tk, d)) in [
        (2, 5, 7, 8),
        (3, 70, 130, 16),
        (1, 1, 1, 32),
        (2, 9, 65, 64),
    ]
    .iter()
    .enumerate()
    {
        let what = format!("{:?}", (bh, tq, tk, d));
        let seed = 1000 + 10 * k as u64;
        let q = Var::from_tensor(&randn(seed, &[bh, tq, d], 1.0, 0.0)).unwrap();
        let kk = Var::from_tensor(&randn(seed + 1, &[bh, tk, d], 1.0, 0.0)).unwrap();
        let v = Var::from_tensor(&randn(seed + 2, &[bh, tk, d], 1.0, 0.0)).unwrap();
        let up = randn(seed + 3, &[bh, tq, d], 1.0, 0.0);
        let ours = dmad_cuda::attention_kernel(&q, &kk, &v, None).unwrap();
        // The plain candle composition (dmad-ops' reference for its own kernel).
        let s = (q.matmul(&kk.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let theirs = candle_nn::ops::softmax(&s, candle_core::D::Minus1)
            .unwrap()
            .matmul(&v)
            .unwrap();
        assert_close(&ours, &theirs, 1e-5, &format!("{what}: forward"));
        let ops = dmad_ops::attention(&q, &kk, &v, None).unwrap();
        assert_close(&ours, &ops, 1e-5, &format!("{what}: vs dmad-ops"));
        let go = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gt = (theirs * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (t, name) in [(&q, "dq"), (&kk, "dk"), (&v, "dv")] {
            let (a, e) = (go.get(t).unwrap(), gt.get(t).unwrap());
            assert_close(a, e, 1e-4, &format!("{what}: {name}"));
        }
    }
}

#[test]
fn attention_bf16_dispatch_and_bad_input() {
    let q = randn(1, &[2, 6, 8], 1.0, 0.0);
    let k = randn(2, &[2, 9, 8], 1.0, 0.0);
    let bf = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
    let y16 = dmad_cuda::attention_kernel(&bf(&q), &bf(&k), &bf(&k), Some(0.5)).unwrap();
    let f = |t: &Tensor| bf(t).to_dtype(DType::F32).unwrap();
    let y32 = dmad_cuda::attention_kernel(&f(&q), &f(&k), &f(&k), Some(0.5)).unwrap();
    assert_close(&y16, &y32, 1.0 / 256.0, "bf16 vs f32");
    let d = dmad_cuda::attention(&q, &k, &k, None).unwrap();
    let o = dmad_ops::attention(&q, &k, &k, None).unwrap();
    assert_close(&d, &o, 0.0, "dispatch = dmad-ops on the CPU");

    let wide = randn(3, &[1, 4, 24], 1.0, 0.0);
    assert!(matches!(
        dmad_cuda::attention_kernel(&wide, &wide, &wide, None),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        dmad_cuda::attention_kernel(&q, &k, &q, None),
        Err(Error::ShapeMismatch {
            context: "attention: v",
            ..
        })
    ));
    assert!(matches!(
        dmad_cuda::attention_kernel(&q.flatten_all().unwrap(), &k, &k, None),
        Err(Error::ShapeMismatch {
            context: "attention: q",
            ..
        })
    ));
}
