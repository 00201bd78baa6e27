//! The default `Kernels::Fast` (dmad-ops' CPU kernels) against `Kernels::Candle` (the plain
//! candle composition) on the same parameters, in f32: outputs and the gradients of every
//! parameter and of the input.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use dmad_unet::{
    Activation, DownBlockType, Kernels, ModulesConfig, TimeScaleShift, UNet1d, UNet2d, UNetConfig,
    UpBlockType,
};

fn tiny(in_channels: usize, modules: ModulesConfig) -> UNetConfig {
    UNetConfig {
        in_channels,
        out_channels: in_channels,
        down_block_types: vec![DownBlockType::DownBlock, DownBlockType::AttnDownBlock],
        up_block_types: vec![UpBlockType::AttnUpBlock, UpBlockType::UpBlock],
        block_out_channels: vec![8, 16],
        layers_per_block: 1,
        norm_num_groups: Some(4),
        attention_head_dim: Some(4),
        modules,
        ..UNetConfig::default()
    }
}

fn all_modules() -> ModulesConfig {
    let mut m = ModulesConfig::all();
    m.attention_heads = 2;
    m.adapter_channels = 4;
    m.time_conv_channels = 2;
    m
}

/// `max |a - b| <= tol * max(max |b|, 1e-3)` over a whole tensor (relative to its scale).
fn assert_rel(got: &Tensor, want: &Tensor, tol: f64, what: &str) -> anyhow::Result<()> {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes differ");
    let got = got.flatten_all()?.to_vec1::<f32>()?;
    let want = want.flatten_all()?.to_vec1::<f32>()?;
    let scale = want.iter().fold(0f64, |m, &w| m.max((w as f64).abs()));
    let err = got
        .iter()
        .zip(&want)
        .fold(0f64, |m, (&g, &w)| m.max((g as f64 - w as f64).abs()));
    assert!(got.iter().all(|g| g.is_finite()), "{what}: non-finite");
    assert!(
        err <= tol * scale.max(1e-3),
        "{what}: max error {err} for a scale {scale} (tolerance {tol})"
    );
    Ok(())
}

/// Builds the network twice on one `VarMap` (fast and plain kernels, shared parameters) and
/// compares outputs and gradients of `sum(out * w)`.
fn compare<N>(
    cfg: UNetConfig,
    build: impl Fn(UNetConfig, VarBuilder) -> dmad_unet::Result<N>,
    forward: impl Fn(&N, &Tensor, &Tensor) -> dmad_unet::Result<Tensor>,
    x_shape: &[usize],
) -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    assert_eq!(cfg.kernels, Kernels::Fast, "fast kernels are the default");
    let fast = build(cfg.clone(), vb.clone())?;
    let plain = build(
        UNetConfig {
            kernels: Kernels::Candle,
            ..cfg
        },
        vb,
    )?;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, x_shape, &dev)?)?;
    let w = Tensor::randn(0f32, 1.0, x_shape, &dev)?;
    let t = Tensor::new(&[7u32, 400, 999][..x_shape[0]], &dev)?;
    let y_fast = forward(&fast, x.as_tensor(), &t)?;
    let y_plain = forward(&plain, x.as_tensor(), &t)?;
    assert_rel(&y_fast, &y_plain, 1e-4, "output")?;
    let g_fast = (y_fast * &w)?.sum_all()?.backward()?;
    let g_plain = (y_plain * &w)?.sum_all()?.backward()?;
    let vars = vm.data().lock().unwrap().clone();
    assert!(vars.len() > 20, "the network has its parameters");
    for (name, var) in vars.iter().chain([(&"input".to_string(), &x)]) {
        let a = g_fast
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no fast gradient for {name}"));
        let b = g_plain
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no plain gradient for {name}"));
        if name.ends_with("to_k.bias") {
            // softmax is shift-invariant along the keys, so this gradient is exactly zero in
            // exact arithmetic and both paths give rounding noise: both must be negligible.
            for (g, which) in [(a, "fast"), (b, "plain")] {
                let m = g.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(m < 1e-4, "{name} ({which}): {m} should be ~0");
            }
            continue;
        }
        assert_rel(a, b, 1e-4, name)?;
    }
    Ok(())
}

#[test]
fn unet2d_fast_kernels_match_candle_with_all_modules() -> anyhow::Result<()> {
    compare(
        tiny(1, all_modules()),
        UNet2d::new,
        UNet2d::forward,
        &[2, 1, 8, 12],
    )
}

#[test]
fn unet2d_fast_kernels_match_candle_with_scale_shift_and_mish() -> anyhow::Result<()> {
    let cfg = UNetConfig {
        resnet_time_scale_shift: TimeScaleShift::ScaleShift,
        act_fn: Activation::Mish,
        attn_norm_num_groups: Some(4),
        ..tiny(3, ModulesConfig::none())
    };
    compare(cfg, UNet2d::new, UNet2d::forward, &[3, 3, 8, 8])
}

#[test]
fn unet1d_fast_kernels_match_candle_with_all_modules() -> anyhow::Result<()> {
    compare(
        tiny(2, all_modules()),
        UNet1d::new,
        UNet1d::forward,
        &[3, 2, 16],
    )
}

#[test]
fn unet1d_fast_kernels_match_candle_with_odd_downsampling() -> anyhow::Result<()> {
    let cfg = UNetConfig {
        downsample_padding: 0,
        ..tiny(1, ModulesConfig::none())
    };
    compare(cfg, UNet1d::new, UNet1d::forward, &[2, 1, 10])
}

/// Spatial sizes whose channels are not a whole number of SIMD vectors (10 x 14, then 5 x 7):
/// the GroupNorm kernels' partial vectors.
#[test]
fn unet2d_fast_kernels_match_candle_on_odd_sizes() -> anyhow::Result<()> {
    compare(
        tiny(1, ModulesConfig::none()),
        UNet2d::new,
        UNet2d::forward,
        &[2, 1, 10, 14],
    )
}

/// The fast kernels are bit-reproducible: two forward and backward passes of one network on
/// the same input, with differently placed buffers (a copy of the input at an odd offset in
/// a larger storage, other allocations in between), give identical bits.
#[test]
fn unet2d_fast_kernels_are_bit_reproducible() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let net = UNet2d::new(tiny(1, all_modules()), vb)?;
    let shape = [3usize, 1, 10, 14];
    let n: usize = shape.iter().product();
    let x = Tensor::randn(0f32, 1.0, &shape[..], &dev)?;
    let w = Tensor::randn(0f32, 1.0, &shape[..], &dev)?;
    let t = Tensor::new(&[7u32, 400, 999], &dev)?;
    let bits = |t: &Tensor| -> anyhow::Result<Vec<u32>> {
        Ok(t.flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .map(|v| v.to_bits())
            .collect())
    };
    let mut runs = Vec::new();
    let mut keep = Vec::new();
    for off in [0usize, 3] {
        let xin = if off == 0 {
            x.clone()
        } else {
            let pad = Tensor::zeros(off, DType::F32, &dev)?;
            Tensor::cat(&[&pad, &x.flatten_all()?], 0)?
                .narrow(0, off, n)?
                .reshape(&shape[..])?
        };
        let y = net.forward(&xin, &t)?;
        let grads = (&y * &w)?.sum_all()?.backward()?;
        let mut run = vec![bits(&y)?];
        let vars = vm.data().lock().unwrap().clone();
        let mut names: Vec<_> = vars.keys().cloned().collect();
        names.sort();
        for name in names {
            run.push(bits(grads.get(vars[&name].as_tensor()).expect("gradient"))?);
        }
        runs.push(run);
        // Shift the allocator's state before the next run.
        keep.push(Tensor::zeros(1 + 7 * off, DType::F32, &dev)?);
    }
    assert!(runs[0] == runs[1], "two runs of the fast kernels differ");
    Ok(())
}
