//! Shape tests for 1D and 2D networks with each of the 16 on/off combinations of the four
//! method modules, on tiny configs.

use candle_core::{DType, Device, Tensor};
use dmad_core::{Denoiser, PredictionType};
use dmad_unet::{DownBlockType, ModulesConfig, UNet1d, UNet2d, UNetConfig, UpBlockType};

/// A tiny config: widths [16, 32], 4 groups, head width 8, attention at the lower level.
fn tiny(in_channels: usize, mask: u8) -> UNetConfig {
    let mut modules = ModulesConfig::from_mask(mask);
    modules.attention_heads = 2;
    modules.adapter_channels = 8;
    modules.time_conv_channels = 4;
    UNetConfig {
        sample_size: 8,
        in_channels,
        out_channels: in_channels,
        down_block_types: vec![DownBlockType::DownBlock, DownBlockType::AttnDownBlock],
        up_block_types: vec![UpBlockType::AttnUpBlock, UpBlockType::UpBlock],
        block_out_channels: vec![16, 32],
        layers_per_block: 1,
        norm_num_groups: Some(4),
        attention_head_dim: Some(8),
        modules,
        ..UNetConfig::default()
    }
}

fn check_output(out: &Tensor, dims: &[usize]) -> anyhow::Result<()> {
    assert_eq!(out.dims(), dims);
    let v = out.flatten_all()?.to_vec1::<f32>()?;
    assert!(v.iter().all(|x| x.is_finite()), "non-finite output");
    Ok(())
}

#[test]
fn unet2d_every_module_combination_keeps_shapes() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (2, 2, 8, 8), &dev)?;
    let t = Tensor::new(&[3u32, 900], &dev)?;
    for mask in 0..16u8 {
        let (net, _) = UNet2d::with_varmap(tiny(2, mask), DType::F32, &dev)?;
        check_output(&net.predict(&x, &t)?, &[2, 2, 8, 8])?;
    }
    Ok(())
}

#[test]
fn unet1d_every_module_combination_keeps_shapes() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (3, 3, 16), &dev)?;
    let t = Tensor::new(&[0f32, 10.5, 999.0], &dev)?;
    for mask in 0..16u8 {
        let (net, _) = UNet1d::with_varmap(tiny(3, mask), DType::F32, &dev)?;
        check_output(&net.predict(&x, &t)?, &[3, 3, 16])?;
    }
    Ok(())
}

#[test]
fn each_switch_adds_its_own_parameters() -> anyhow::Result<()> {
    let names = |mask: u8| -> anyhow::Result<Vec<String>> {
        Ok(UNet2d::parameter_shapes(&tiny(1, mask))?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    };
    let base = names(0)?;
    assert!(base.iter().all(|n| !n.starts_with("input_adapter")
        && !n.starts_with("time_conv")
        && !n.starts_with("down_blocks.0.attentions")));
    let mha = names(2)?;
    assert!(mha
        .iter()
        .any(|n| n.starts_with("down_blocks.0.attentions.0.to_q")));
    assert!(mha
        .iter()
        .any(|n| n.starts_with("up_blocks.1.attentions.1.to_out.0")));
    let adapter = names(4)?;
    assert!(adapter.contains(&"input_adapter.conv1.weight".to_string()));
    let hybrid = names(8)?;
    assert!(hybrid.contains(&"time_conv.conv1.weight".to_string()));
    // With the adapter, conv_in reads the adapter width, not the input channels.
    let shapes = UNet2d::parameter_shapes(&tiny(1, 4))?;
    let conv_in = shapes.iter().find(|(n, _)| n == "conv_in.weight").unwrap();
    assert_eq!(conv_in.1, vec![16, 8, 3, 3]);
    Ok(())
}

#[test]
fn the_adapter_lets_any_channel_count_reach_the_same_core() -> anyhow::Result<()> {
    // Cores of two adapted networks (1 and 3 input channels) have identical shapes.
    let core = |c: usize| -> anyhow::Result<Vec<(String, Vec<usize>)>> {
        Ok(UNet2d::parameter_shapes(&tiny(c, 4))?
            .into_iter()
            .filter(|(n, _)| !n.starts_with("input_adapter") && !n.starts_with("conv_out"))
            .collect())
    };
    assert_eq!(core(1)?, core(3)?);
    Ok(())
}

#[test]
fn prediction_type_comes_from_the_config() -> anyhow::Result<()> {
    let mut cfg = tiny(1, 0);
    cfg.prediction_type = PredictionType::VPrediction;
    let (net, _) = UNet1d::with_varmap(cfg, DType::F32, &Device::Cpu)?;
    assert_eq!(net.prediction_type(), PredictionType::VPrediction);
    Ok(())
}

#[test]
fn f64_inputs_keep_their_dtype() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let (net, _) = UNet2d::with_varmap(tiny(1, 0), DType::F32, &dev)?;
    let x = Tensor::randn(0f64, 1.0, (1, 1, 8, 8), &dev)?;
    let t = Tensor::new(&[5u32], &dev)?;
    assert_eq!(net.forward(&x, &t)?.dtype(), DType::F64);
    Ok(())
}

#[test]
fn config_with_modules_round_trips_through_json() -> anyhow::Result<()> {
    let mut cfg = tiny(2, 15);
    cfg.modules.wavelet_fusion = dmad_unet::WaveletFusion::Concat;
    cfg.modules.wavelet = "db4".into();
    cfg.prediction_type = PredictionType::Sample;
    let json = cfg.to_json()?;
    assert!(json.contains("\"prediction_type\": \"sample\""));
    assert_eq!(UNetConfig::from_json(&json)?, cfg);
    Ok(())
}

#[test]
fn wavelet_pyramid_variants_keep_shapes() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let x2 = Tensor::randn(0f32, 1.0, (2, 1, 16, 8), &dev)?;
    let x1 = Tensor::randn(0f32, 1.0, (2, 1, 32), &dev)?;
    let t = Tensor::new(&[3u32, 900], &dev)?;
    for (levels, fusion, wavelet) in [
        (1, dmad_unet::WaveletFusion::Concat, "db2"),
        (0, dmad_unet::WaveletFusion::Add, "haar"),
        (2, dmad_unet::WaveletFusion::Concat, "db4"),
    ] {
        let mut cfg = tiny(1, 1);
        cfg.block_out_channels = vec![8, 16, 16];
        cfg.down_block_types.push(DownBlockType::DownBlock);
        cfg.up_block_types.insert(0, UpBlockType::UpBlock);
        cfg.modules.wavelet_levels = levels;
        cfg.modules.wavelet_fusion = fusion;
        cfg.modules.wavelet = wavelet.into();
        let (net, _) = UNet2d::with_varmap(cfg.clone(), DType::F32, &dev)?;
        check_output(&net.predict(&x2, &t)?, &[2, 1, 16, 8])?;
        let (net, _) = UNet1d::with_varmap(cfg, DType::F32, &dev)?;
        check_output(&net.predict(&x1, &t)?, &[2, 1, 32])?;
    }
    Ok(())
}
