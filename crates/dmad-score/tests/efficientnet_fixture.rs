//! EfficientNet-Lite0 against PyTorch (`efficientnet-lite-pytorch` 0.1.0): every block
//! output, the head features and the logits for the stored `brick` input, within 1e-4.
//!
//! The weights are not in the repository: the test reads
//! `$DMAD_SHARED/weights/efficientnet-lite0.safetensors`, falling back to
//! `../shared/weights/efficientnet-lite0.safetensors` next to the workspace, and is skipped
//! with a note when neither exists. `docs/EFFICIENTNET.md` explains how to make the file.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};
use dmad_core::FeatureExtractor;
use dmad_score::efficientnet::{
    EfficientNet, EfficientNetConfig, EfficientNetExtractor, ExtractorConfig, FeatureTaps,
};
use serde_json::Value;

const TOL: f64 = 1e-4;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn weights_path() -> Option<PathBuf> {
    let rel = "weights/efficientnet-lite0.safetensors";
    let candidates = [
        std::env::var_os("DMAD_SHARED").map(|d| PathBuf::from(d).join(rel)),
        Some(workspace_root().join("../shared").join(rel)),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

fn expected() -> Value {
    let p = workspace_root().join("testdata/efficientnet/lite0_brick_expected.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The stored grey image, `[1, 1, 224, 224]` in `[0, 1]` (u8 / 255 in f32).
fn brick_grey() -> Tensor {
    let p = workspace_root().join("testdata/efficientnet/brick224_gray.u8");
    let bytes = std::fs::read(p).unwrap();
    assert_eq!(bytes.len(), 224 * 224);
    let v: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();
    Tensor::from_vec(v, (1, 1, 224, 224), &Device::Cpu).unwrap()
}

/// The fixture's input: the grey image repeated to RGB and normalised with the ImageNet mean
/// and std, in f32 exactly as torchvision does (bit-identical to the fixture's `input`).
fn brick_input() -> Tensor {
    let g = brick_grey()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mean = [0.485f32, 0.456, 0.406];
    let std = [0.229f32, 0.224, 0.225];
    let mut v = Vec::with_capacity(3 * g.len());
    for c in 0..3 {
        v.extend(g.iter().map(|x| (x - mean[c]) / std[c]));
    }
    Tensor::from_vec(v, (1, 3, 224, 224), &Device::Cpu).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f64;
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let err = (a - b).abs() / b.abs().max(1.0);
        worst = worst.max(err);
        assert!(err <= TOL, "{what}[{i}]: got {a}, PyTorch {b}");
    }
    println!(
        "{what}: {} values, worst scaled error {worst:.2e}",
        got.len()
    );
}

/// Checks `t` against a fixture entry `{shape, channel_mean, corner}`: the shape, the mean of
/// every channel over the image, and the top-left 3x3 of the first four channels.
fn check_summary(what: &str, t: &Tensor, want: &Value) {
    let shape: Vec<usize> = floats(&want["shape"]).iter().map(|&x| x as usize).collect();
    assert_eq!(t.dims(), shape.as_slice(), "{what}: shape");
    let t64 = t.to_dtype(DType::F64).unwrap();
    let means = t64
        .get(0)
        .unwrap()
        .flatten_from(1)
        .unwrap()
        .mean(D::Minus1)
        .unwrap();
    assert_close(
        &format!("{what} channel_mean"),
        &means.to_vec1::<f64>().unwrap(),
        &floats(&want["channel_mean"]),
    );
    let corner = t64
        .get(0)
        .unwrap()
        .narrow(0, 0, 4)
        .unwrap()
        .narrow(1, 0, 3)
        .unwrap()
        .narrow(2, 0, 3)
        .unwrap();
    let corner = corner.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert_close(&format!("{what} corner"), &corner, &floats(&want["corner"]));
}

#[test]
fn lite0_matches_pytorch_block_by_block() {
    let Some(path) = weights_path() else {
        println!("SKIPPED: efficientnet-lite0.safetensors not found (set DMAD_SHARED)");
        return;
    };
    let want = expected();
    let net = EfficientNet::from_safetensors(
        &EfficientNetConfig::lite0(),
        &path,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let x = brick_input();
    let blocks = net.forward_blocks(&x, 15).unwrap();
    assert_eq!(blocks.len(), 16);
    for (i, b) in blocks.iter().enumerate() {
        check_summary(
            &format!("block{i}"),
            b,
            &want["blocks"][format!("block{i}")],
        );
    }
    let head = net.forward_head(&blocks[15]).unwrap();
    check_summary("head_features", &head, &want["head_features"]);
    let logits = net
        .classify(&head)
        .unwrap()
        .get(0)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let logits = logits.to_vec1::<f64>().unwrap();
    assert_close(
        "logits_first10",
        &logits[..10],
        &floats(&want["logits_first10"]),
    );
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top5: Vec<f64> = order[..5].iter().map(|&i| i as f64).collect();
    assert_eq!(top5, floats(&want["logits_top5"]), "top-5 classes");
}

/// The extractor, fed the grey image in `[-1, 1]`, does the fixture's preprocessing itself
/// (the image is already 224 x 224, so the resize is the identity) and returns the PyTorch
/// block outputs at strides 4, 8 and 16 (blocks 2, 4 and 10), and any tapped blocks.
#[test]
fn lite0_extractor_preprocesses_like_the_reference() {
    let Some(path) = weights_path() else {
        println!("SKIPPED: efficientnet-lite0.safetensors not found (set DMAD_SHARED)");
        return;
    };
    let want = expected();
    let ex = EfficientNetExtractor::lite0(&path, &Device::Cpu).unwrap();
    assert_eq!(ex.tap_blocks(), &[2, 4, 10]);
    let x = ((brick_grey() * 2.0).unwrap() - 1.0).unwrap();
    let feats = ex.features(&x).unwrap();
    assert_eq!(feats.len(), 3);
    for (f, i) in feats.iter().zip([2, 4, 10]) {
        check_summary(
            &format!("extractor block{i}"),
            f,
            &want["blocks"][format!("block{i}")],
        );
    }
    // Explicit block taps, given out of order, come back finest first.
    let net = ex.network().clone();
    let cfg = ExtractorConfig {
        taps: FeatureTaps::Blocks(vec![15, 0]),
        ..Default::default()
    };
    let ex = EfficientNetExtractor::new(net, cfg).unwrap();
    let feats = ex.features(&x).unwrap();
    check_summary("extractor block0", &feats[0], &want["blocks"]["block0"]);
    check_summary("extractor block15", &feats[1], &want["blocks"]["block15"]);
}
