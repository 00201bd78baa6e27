//! Bad input gets clear errors: wrong tensors, invalid configs, and weights files that are
//! missing, empty, truncated, malformed or of another config.

mod common;

use candle_core::{DType, Device, Tensor};
use common::testdata;
use dmad_unet::{
    load_into_varmap, DownBlockType, Error, MlpConfig, MlpDenoiser, ModulesConfig, UNet1d, UNet2d,
    UNetConfig,
};

fn fixture_config() -> anyhow::Result<UNetConfig> {
    let text = std::fs::read_to_string(testdata("unet2d/diffusers_unet2d_tiny.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(UNetConfig::from_json(&v["config"].to_string())?)
}

fn weights() -> std::path::PathBuf {
    testdata("unet2d/diffusers_unet2d_tiny.safetensors")
}

fn tiny_net() -> anyhow::Result<UNet2d> {
    Ok(UNet2d::with_varmap(UNetConfig::tiny(3), DType::F32, &Device::Cpu)?.0)
}

#[test]
fn wrong_input_channel_count_is_a_shape_error() -> anyhow::Result<()> {
    let net = tiny_net()?;
    let x = Tensor::zeros((2, 1, 16, 16), DType::F32, &Device::Cpu)?;
    let t = Tensor::new(&[1u32, 2], &Device::Cpu)?;
    let err = net.forward(&x, &t).unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { got, .. } if got == &[2, 1, 16, 16]),
        "{err}"
    );
    assert!(
        err.to_string().contains("[batch, 3, height, width]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn wrong_rank_and_indivisible_sizes_are_shape_errors() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let net = tiny_net()?;
    let t = Tensor::new(&[1u32], &dev)?;
    let x3 = Tensor::zeros((1, 3, 16), DType::F32, &dev)?;
    assert!(matches!(
        net.forward(&x3, &t),
        Err(Error::ShapeMismatch { .. })
    ));
    let odd = Tensor::zeros((1, 3, 15, 16), DType::F32, &dev)?;
    let err = net.forward(&odd, &t).unwrap_err();
    assert!(err.to_string().contains("divisible by 2"), "{err}");
    let net1 = UNet1d::with_varmap(UNetConfig::tiny(2), DType::F32, &dev)?.0;
    let x4 = Tensor::zeros((1, 2, 8, 8), DType::F32, &dev)?;
    assert!(matches!(
        net1.forward(&x4, &t),
        Err(Error::ShapeMismatch { .. })
    ));
    let ints = Tensor::zeros((1, 3, 16, 16), DType::U32, &dev)?;
    assert!(matches!(
        net.forward(&ints, &t),
        Err(Error::ShapeMismatch { .. })
    ));
    Ok(())
}

#[test]
fn timesteps_must_be_one_per_sample() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let net = tiny_net()?;
    let x = Tensor::zeros((2, 3, 16, 16), DType::F32, &dev)?;
    for t in [
        Tensor::new(&[1u32], &dev)?,
        Tensor::new(1u32, &dev)?,
        Tensor::new(&[[1u32, 2]], &dev)?,
    ] {
        let err = net.forward(&x, &t).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::ShapeMismatch {
                    context: "timesteps t",
                    ..
                }
            ),
            "{err}"
        );
    }
    Ok(())
}

fn build_err(cfg: UNetConfig) -> Error {
    match UNet2d::with_varmap(cfg, DType::F32, &Device::Cpu) {
        Ok(_) => panic!("the config was accepted"),
        Err(e) => e,
    }
}

fn assert_field(err: Error, want: &str) {
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if *field == want),
        "expected InvalidConfig on {want}, got {err}"
    );
}

#[test]
fn invalid_configs_name_the_field() {
    let mut c = UNetConfig::tiny(1);
    c.norm_num_groups = Some(5);
    let err = build_err(c);
    assert!(err.to_string().contains("5 groups do not divide"), "{err}");
    assert_field(err, "norm_num_groups");

    let mut c = UNetConfig::tiny(1);
    c.down_block_types.push(DownBlockType::DownBlock);
    assert_field(build_err(c), "down_block_types");

    let mut c = UNetConfig::tiny(1);
    c.attention_head_dim = Some(24);
    assert_field(build_err(c), "attention_head_dim");

    let mut c = UNetConfig::tiny(1);
    c.block_out_channels = vec![];
    assert_field(build_err(c), "block_out_channels");

    let mut c = UNetConfig::tiny(1);
    c.dropout = 0.1;
    assert_field(build_err(c), "dropout");

    let mut c = UNetConfig::tiny(1);
    c.in_channels = 0;
    assert_field(build_err(c), "in_channels");

    let mut c = UNetConfig::tiny(1);
    c.layers_per_block = 0;
    assert_field(build_err(c), "layers_per_block");

    let mut c = UNetConfig::tiny(1);
    c.modules = ModulesConfig::from_mask(2);
    c.modules.attention_heads = 3;
    assert_field(build_err(c), "attention_head_dim");

    let mut c = UNetConfig::tiny(1);
    c.modules = ModulesConfig::from_mask(8);
    c.modules.time_conv_kernel = 4;
    assert_field(build_err(c), "modules.time_conv_kernel");

    let mut c = UNetConfig::tiny(1);
    c.modules = ModulesConfig::from_mask(4);
    c.modules.adapter_channels = 0;
    assert_field(build_err(c), "modules.adapter_channels");
}

#[test]
fn unknown_json_values_are_config_errors() {
    let err = UNetConfig::from_json(r#"{"time_embedding_type": "fourier"}"#).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field: "json", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("fourier"), "{err}");
    let err =
        UNetConfig::from_json(r#"{"down_block_types": ["CrossAttnDownBlock2D"]}"#).unwrap_err();
    assert!(err.to_string().contains("CrossAttnDownBlock2D"), "{err}");
    assert!(UNetConfig::from_json("{").is_err());
}

#[test]
fn weights_of_another_config_name_the_file_and_the_shapes() -> anyhow::Result<()> {
    let mut cfg = fixture_config()?;
    cfg.block_out_channels = vec![32, 48];
    let err = UNet2d::load(weights(), cfg, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Checkpoint { path, .. } if path == &weights()),
        "{err}"
    );
    assert!(msg.contains("diffusers_unet2d_tiny.safetensors"), "{msg}");
    assert!(
        msg.contains(
            "down_blocks.1.attentions.0.to_k.weight: file has [64, 64], config needs [48, 48]"
        ),
        "{msg}"
    );
    Ok(())
}

#[test]
fn wrong_input_channel_count_in_the_config_is_reported_on_load() -> anyhow::Result<()> {
    let mut cfg = fixture_config()?;
    cfg.in_channels = 1;
    let msg = UNet2d::load(weights(), cfg, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("conv_in.weight: file has [32, 3, 3, 3], config needs [32, 1, 3, 3]"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn modules_missing_from_a_diffusers_file_are_listed() -> anyhow::Result<()> {
    let mut cfg = fixture_config()?;
    cfg.modules.input_adapter = true;
    let msg = UNet2d::load(weights(), cfg, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing"), "{msg}");
    assert!(msg.contains("input_adapter.conv1.weight"), "{msg}");
    Ok(())
}

#[test]
fn missing_empty_truncated_and_malformed_files_are_errors() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let cfg = fixture_config()?;

    let missing = dir.path().join("missing.safetensors");
    let err = UNet2d::load(&missing, cfg.clone(), &dev).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &missing),
        "{err}"
    );

    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"")?;
    let err = UNet2d::load(&empty, cfg.clone(), &dev).unwrap_err();
    assert!(
        matches!(&err, Error::Checkpoint { path, .. } if path == &empty),
        "{err}"
    );
    assert!(err.to_string().contains("empty.safetensors"), "{err}");

    let bytes = std::fs::read(weights())?;
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    let err = UNet2d::load(&truncated, cfg.clone(), &dev).unwrap_err();
    assert!(
        matches!(&err, Error::Checkpoint { path, .. } if path == &truncated),
        "{err}"
    );
    assert!(err.to_string().contains("truncated.safetensors"), "{err}");

    let malformed = dir.path().join("malformed.safetensors");
    std::fs::write(&malformed, b"this is not a safetensors file at all")?;
    let err = UNet2d::load(&malformed, cfg, &dev).unwrap_err();
    assert!(
        matches!(&err, Error::Checkpoint { path, .. } if path == &malformed),
        "{err}"
    );
    Ok(())
}

#[test]
fn saved_varmaps_load_back_for_inference_and_for_resuming() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let mut cfg = UNetConfig::tiny(1);
    cfg.modules = ModulesConfig::from_mask(0b1110);
    let (net, varmap) = UNet2d::with_varmap(cfg.clone(), DType::F32, &dev)?;
    let path = dir.path().join("w.safetensors");
    varmap.save(&path)?;
    let x = Tensor::randn(0f32, 1.0, (2, 1, 16, 16), &dev)?;
    let t = Tensor::new(&[3u32, 77], &dev)?;
    let want = net.forward(&x, &t)?;

    let loaded = UNet2d::load(&path, cfg.clone(), &dev)?;
    let d = (loaded.forward(&x, &t)? - &want)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(d, 0.0);

    let (fresh, fresh_vars) = UNet2d::with_varmap(cfg.clone(), DType::F32, &dev)?;
    load_into_varmap(&fresh_vars, &path)?;
    let d = (fresh.forward(&x, &t)? - &want)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(d, 0.0);

    // A varmap of another config refuses the file, naming it.
    let (_, other) = UNet2d::with_varmap(UNetConfig::tiny(1), DType::F32, &dev)?;
    let err = load_into_varmap(&other, &path).unwrap_err();
    assert!(matches!(&err, Error::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("w.safetensors"), "{err}");
    Ok(())
}

#[test]
fn mlp_denoiser_shapes_and_bad_input() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let cfg = MlpConfig {
        width: 16,
        depth: 3,
        time_embedding_dim: 8,
        ..MlpConfig::new(5)
    };
    assert_eq!(MlpConfig::from_json(&cfg.to_json()?)?, cfg);
    let (net, _) = MlpDenoiser::with_varmap(cfg, DType::F32, &dev)?;
    let x = Tensor::randn(0f32, 1.0, (7, 5), &dev)?;
    let t = Tensor::new(&[0u32, 1, 2, 3, 500, 998, 999], &dev)?;
    let out = net.forward(&x, &t)?;
    assert_eq!(out.dims(), &[7, 5]);
    assert!(out
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .all(|v| v.is_finite()));

    let wrong = Tensor::randn(0f32, 1.0, (7, 4), &dev)?;
    let err = net.forward(&wrong, &t).unwrap_err();
    assert!(err.to_string().contains("[batch, 5]"), "{err}");
    let short_t = Tensor::new(&[1u32], &dev)?;
    assert!(matches!(
        net.forward(&x, &short_t),
        Err(Error::ShapeMismatch { .. })
    ));

    let err = match MlpDenoiser::with_varmap(MlpConfig::default(), DType::F32, &dev) {
        Ok(_) => panic!("in_features 0 was accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(
            &err,
            Error::InvalidConfig {
                field: "in_features",
                ..
            }
        ),
        "{err}"
    );
    let odd = MlpConfig {
        time_embedding_dim: 7,
        ..MlpConfig::new(2)
    };
    assert!(matches!(
        MlpDenoiser::with_varmap(odd, DType::F32, &dev),
        Err(Error::InvalidConfig {
            field: "time_embedding_dim",
            ..
        })
    ));
    Ok(())
}

#[test]
fn errors_convert_to_the_shared_error() {
    let e: dmad_core::Error = Error::Checkpoint {
        path: "w.safetensors".into(),
        reason: "x".into(),
    }
    .into();
    assert!(matches!(
        e,
        dmad_core::Error::InvalidInput { path: Some(_), .. }
    ));
}

#[test]
fn frozen_views_follow_the_variables() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let cfg = UNetConfig::tiny(1);
    let (net, varmap) = UNet2d::with_varmap(cfg.clone(), DType::F32, &dev)?;
    let frozen = UNet2d::new(
        cfg,
        candle_nn::VarBuilder::from_tensors(dmad_unet::frozen_tensors(&varmap), DType::F32, &dev),
    )?;
    let x = Tensor::randn(0f32, 1.0, (1, 1, 16, 16), &dev)?;
    let t = Tensor::new(&[42u32], &dev)?;
    let max_diff = |a: &Tensor, b: &Tensor| -> anyhow::Result<f32> {
        Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
    };
    assert_eq!(
        max_diff(&net.forward(&x, &t)?, &frozen.forward(&x, &t)?)?,
        0.0
    );
    // An optimiser-style in-place update is seen by the frozen copy.
    for var in varmap.all_vars() {
        var.set(&(var.as_tensor() * 0.5)?)?;
    }
    let out = frozen.forward(&x, &t)?;
    assert!(!out.track_op());
    assert_eq!(max_diff(&net.forward(&x, &t)?, &out)?, 0.0);
    Ok(())
}
