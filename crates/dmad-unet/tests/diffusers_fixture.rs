//! The tiny diffusers UNet2DModel in `testdata/unet2d` (diffusers 0.42.1) must be reproduced
//! within 1e-4.

mod common;

use candle_core::{Device, Tensor};
use common::{assert_close, flatten, shape, testdata};
use dmad_core::Denoiser;
use dmad_unet::{UNet2d, UNetConfig};

fn fixture() -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(testdata("unet2d/diffusers_unet2d_tiny.json"))?;
    Ok(serde_json::from_str(&text)?)
}

#[test]
fn diffusers_config_json_parses_and_round_trips() -> anyhow::Result<()> {
    let fx = fixture()?;
    let cfg = UNetConfig::from_json(&fx["config"].to_string())?;
    assert_eq!(cfg.block_out_channels, vec![32, 64]);
    assert_eq!(cfg.norm_num_groups, Some(8));
    assert_eq!(cfg.attention_head_dim, Some(8));
    assert!(cfg.flip_sin_to_cos);
    let back = UNetConfig::from_json(&cfg.to_json()?)?;
    assert_eq!(back, cfg);
    Ok(())
}

#[test]
fn tiny_unet2d_matches_diffusers_within_1e_4() -> anyhow::Result<()> {
    let fx = fixture()?;
    let dev = Device::Cpu;
    let cfg = UNetConfig::from_json(&fx["config"].to_string())?;
    let net = UNet2d::load(
        testdata("unet2d/diffusers_unet2d_tiny.safetensors"),
        cfg,
        &dev,
    )?;

    let mut input = Vec::new();
    flatten(&fx["input"], &mut input);
    let x = Tensor::from_vec(input, shape(&fx["input"]), &dev)?;
    let steps: Vec<u32> = fx["timesteps"]
        .as_array()
        .expect("timesteps array")
        .iter()
        .map(|v| v.as_u64().expect("integer timestep") as u32)
        .collect();
    let t = Tensor::new(steps.as_slice(), &dev)?;
    let out = net.predict(&x, &t)?;
    assert_eq!(out.dims(), shape(&fx["output"]).as_slice());

    let mut want = Vec::new();
    flatten(&fx["output"], &mut want);
    let got = out.flatten_all()?.to_vec1::<f32>()?;
    assert_close(&got, &want, 1e-4, "tiny UNet2d vs diffusers");

    // Float timesteps give the same result as integer ones.
    let tf = t.to_dtype(candle_core::DType::F32)?;
    let out_f = net.predict(&x, &tf)?.flatten_all()?.to_vec1::<f32>()?;
    assert_close(&out_f, &want, 1e-4, "float timesteps");
    Ok(())
}
