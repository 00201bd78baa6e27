//! Gradient check: candle's backward pass against central finite differences, in f64, on a
//! few parameters of tiny networks with the modules switched on.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use dmad_unet::{
    DownBlockType, MlpConfig, MlpDenoiser, ModulesConfig, UNet1d, UNet2d, UNetConfig, UpBlockType,
    WaveletFusion,
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

/// Compares d(loss)/d(param[index]) from backward with a central difference.
fn check(
    varmap: &VarMap,
    loss: &dyn Fn() -> anyhow::Result<Tensor>,
    params: &[(&str, usize)],
) -> anyhow::Result<()> {
    let vars: std::collections::HashMap<String, Var> = varmap.data().lock().unwrap().clone();
    let grads = loss()?.backward()?;
    for &(name, index) in params {
        let var = vars
            .get(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        let analytic = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"))
            .flatten_all()?
            .to_vec1::<f64>()?[index];
        let orig = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
        let h = 1e-6;
        let at = |delta: f64| -> anyhow::Result<f64> {
            let mut v = orig.clone();
            v[index] += delta;
            var.set(&Tensor::from_vec(v, var.shape(), var.device())?)?;
            Ok(loss()?.to_scalar::<f64>()?)
        };
        let numeric = (at(h)? - at(-h)?) / (2.0 * h);
        var.set(&Tensor::from_vec(orig, var.shape(), var.device())?)?;
        let err = (analytic - numeric).abs();
        assert!(
            err <= 1e-6 * 1f64.max(numeric.abs()),
            "{name}[{index}]: backward {analytic} vs finite difference {numeric}"
        );
    }
    Ok(())
}

#[test]
fn unet2d_gradients_match_finite_differences() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let mut modules = ModulesConfig::all();
    modules.attention_heads = 2;
    modules.adapter_channels = 4;
    modules.time_conv_channels = 2;
    let (net, varmap) = UNet2d::with_varmap(tiny(1, modules), DType::F64, &dev)?;
    let x = Tensor::randn(0f64, 1.0, (2, 1, 4, 8), &dev)?;
    let w = Tensor::randn(0f64, 1.0, (2, 1, 4, 8), &dev)?;
    let t = Tensor::new(&[7u32, 400], &dev)?;
    let loss = || -> anyhow::Result<Tensor> { Ok((net.forward(&x, &t)? * &w)?.sum_all()?) };
    check(
        &varmap,
        &loss,
        &[
            ("input_adapter.conv1.weight", 5),
            ("wavelet_pyramid.proj.0.weight", 6),
            ("time_conv.conv1.weight", 1),
            ("time_embedding.linear_1.weight", 3),
            ("down_blocks.0.attentions.0.to_q.weight", 7),
            ("down_blocks.1.resnets.0.norm1.weight", 2),
            ("mid_block.attentions.0.to_k.bias", 1),
            ("up_blocks.0.upsamplers.0.conv.weight", 11),
            ("up_blocks.1.resnets.1.conv_shortcut.weight", 4),
            ("conv_out.bias", 0),
        ],
    )
}

#[test]
fn unet1d_gradients_match_finite_differences() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let mut modules = ModulesConfig::from_mask(0b0001);
    modules.wavelet_fusion = WaveletFusion::Concat;
    let (net, varmap) = UNet1d::with_varmap(tiny(2, modules), DType::F64, &dev)?;
    let x = Tensor::randn(0f64, 1.0, (2, 2, 8), &dev)?;
    let w = Tensor::randn(0f64, 1.0, (2, 2, 8), &dev)?;
    let t = Tensor::new(&[1f64, 250.5], &dev)?;
    let loss = || -> anyhow::Result<Tensor> { Ok((net.forward(&x, &t)? * &w)?.sum_all()?) };
    check(
        &varmap,
        &loss,
        &[
            ("conv_in.weight", 3),
            ("wavelet_pyramid.proj.0.bias", 1),
            ("wavelet_pyramid.fuse.0.weight", 17),
            ("down_blocks.0.downsamplers.0.conv.weight", 9),
            ("down_blocks.1.attentions.0.to_v.weight", 5),
            ("up_blocks.0.upsamplers.0.conv.weight", 2),
            ("conv_norm_out.bias", 1),
        ],
    )
}

#[test]
fn mlp_gradients_match_finite_differences() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let cfg = MlpConfig {
        width: 8,
        depth: 2,
        time_embedding_dim: 6,
        ..MlpConfig::new(3)
    };
    let (net, varmap) = MlpDenoiser::with_varmap(cfg, DType::F64, &dev)?;
    let x = Tensor::randn(0f64, 1.0, (4, 3), &dev)?;
    let w = Tensor::randn(0f64, 1.0, (4, 3), &dev)?;
    let t = Tensor::new(&[1u32, 20, 300, 999], &dev)?;
    let loss = || -> anyhow::Result<Tensor> { Ok((net.forward(&x, &t)? * &w)?.sum_all()?) };
    check(
        &varmap,
        &loss,
        &[
            ("proj_in.weight", 4),
            ("blocks.0.norm.weight", 2),
            ("blocks.1.time_proj.weight", 9),
            ("time_embedding.linear_2.bias", 3),
            ("proj_out.weight", 1),
        ],
    )
}
