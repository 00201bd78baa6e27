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
