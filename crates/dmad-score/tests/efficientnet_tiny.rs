//! EfficientNet on a tiny randomly initialised network: shapes, preprocessing, gradients and
//! bad input.

use candle_core::{DType, Device, Tensor, Var};
use dmad_core::FeatureExtractor;
use dmad_score::efficientnet::{
    random_weights, EfficientNet, EfficientNetConfig, EfficientNetExtractor, ExtractorConfig,
    FeatureTaps,
};
use dmad_score::Error;

fn tiny(dtype: DType) -> EfficientNet {
    EfficientNet::random(&EfficientNetConfig::tiny(), 7, dtype, &Device::Cpu).unwrap()
}

fn extractor(image_size: Option<(usize, usize)>, dtype: DType) -> EfficientNetExtractor {
    let cfg = ExtractorConfig {
        image_size,
        ..Default::default()
    };
    EfficientNetExtractor::new(tiny(dtype), cfg).unwrap()
}

/// Seeded uniform values in [-1, 1].
fn input(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

#[test]
fn default_taps_are_strides_4_8_16_finest_first() {
    let ex = extractor(Some((32, 32)), DType::F32);
    assert_eq!(ex.tap_blocks(), &[2, 3, 4]);
    let feats = ex.features(&input(&[2, 3, 20, 24], 1, DType::F32)).unwrap();
    let dims: Vec<Vec<usize>> = feats.iter().map(|f| f.dims().to_vec()).collect();
    assert_eq!(
        dims,
        [vec![2, 12, 8, 8], vec![2, 16, 4, 4], vec![2, 24, 2, 2]]
    );
    for f in &feats {
        let v = f.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn without_resizing_sides_are_ceil_of_input_over_stride() {
    let ex = extractor(None, DType::F32);
    for (h, w) in [(30, 18), (17, 33), (5, 5), (1, 1)] {
        let feats = ex.features(&input(&[1, 1, h, w], 2, DType::F32)).unwrap();
        for (f, s) in feats.iter().zip([4usize, 8, 16]) {
            // SAME padding halves (rounding up) at every stride-2 step.
            let side = |n: usize| (0..s.trailing_zeros()).fold(n, |n, _| n.div_ceil(2));
            assert_eq!(&f.dims()[2..], &[side(h), side(w)], "{h}x{w} at stride {s}");
        }
    }
}

#[test]
fn taps_by_stride_or_block_and_their_errors() {
    let net = tiny(DType::F32);
    let strides: Vec<usize> = net.blocks().iter().map(|b| b.output_stride).collect();
    assert_eq!(strides, [2, 4, 4, 8, 16]);
    let make = |taps| {
        EfficientNetExtractor::new(
            net.clone(),
            ExtractorConfig {
                taps,
                ..Default::default()
            },
        )
    };
    // The deepest block at each stride, in ascending order whatever the order asked.
    assert_eq!(
        make(FeatureTaps::Strides(vec![16, 2, 4]))
            .unwrap()
            .tap_blocks(),
        &[0, 2, 4]
    );
    assert_eq!(
        make(FeatureTaps::Blocks(vec![3, 1])).unwrap().tap_blocks(),
        &[1, 3]
    );
    for (taps, needle) in [
        (
            FeatureTaps::Strides(vec![32]),
            "no block has output stride 32",
        ),
        (FeatureTaps::Strides(vec![]), "at least one block"),
        (FeatureTaps::Blocks(vec![5]), "block 5 does not exist"),
        (FeatureTaps::Blocks(vec![1, 1]), "tapped twice"),
    ] {
        let e = make(taps).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Core(dmad_core::Error::InvalidConfig { field: "taps", .. })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains(needle), "{e}");
    }
    let bad = |cfg: ExtractorConfig| {
        EfficientNetExtractor::new(net.clone(), cfg)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(ExtractorConfig {
        image_size: Some((0, 4)),
        ..Default::default()
    })
    .contains("image_size"));
    assert!(bad(ExtractorConfig {
        std: [0.2, 0.0, 0.2],
        ..Default::default()
    })
    .contains("std"));
    assert!(bad(ExtractorConfig {
        mean: [f64::NAN, 0.0, 0.0],
        ..Default::default()
    })
    .contains("mean"));
}

#[test]
fn grey_input_equals_the_grey_channel_repeated_to_rgb() {
    let ex = extractor(Some((24, 24)), DType::F32);
    let grey = input(&[2, 1, 19, 21], 3, DType::F32);
    let rgb = Tensor::cat(&[&grey, &grey, &grey], 1).unwrap();
    let a = ex.features(&grey).unwrap();
    let b = ex.features(&rgb).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.dims(), y.dims());
        assert!(max_abs_diff(x, y) <= 1e-5);
    }
    // And the preprocessing is ((x + 1) / 2 - mean) / std on each channel.
    let p = ex
        .preprocess(&Tensor::zeros((1, 1, 24, 24), DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    let corner: Vec<f32> = (0..3)
        .map(|c| {
            p.get(0)
                .unwrap()
                .get(c)
                .unwrap()
                .get(0)
                .unwrap()
                .get(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        })
        .collect();
    let want = [
        (0.5 - 0.485) / 0.229,
        (0.5 - 0.456) / 0.224,
        (0.5 - 0.406) / 0.225,
    ];
    for (g, w) in corner.iter().zip(want) {
        assert!((*g as f64 - w).abs() <= 1e-6, "{g} vs {w}");
    }
}

#[test]
fn gradient_flows_to_the_input_and_matches_finite_differences() {
    // f64 so that central differences are accurate.
    let ex = extractor(Some((16, 16)), DType::F64);
    let x0 = input(&[1, 1, 12, 10], 4, DType::F64);
    let loss = |x: &Tensor| -> Tensor {
        let feats = ex.features(x).unwrap();
        let mut total = Tensor::new(0f64, &Device::Cpu).unwrap();
        for f in feats {
            total = (total + f.sqr().unwrap().mean_all().unwrap()).unwrap();
        }
        total
    };
    let var = Var::from_tensor(&x0).unwrap();
    let grads = loss(var.as_tensor()).backward().unwrap();
    let g = grads
        .get(var.as_tensor())
        .expect("a gradient for the input");
    assert_eq!(g.dims(), x0.dims());
    let gv = g.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert!(gv.iter().all(|v| v.is_finite()));
    let norm = gv.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(norm > 1e-6, "gradient norm {norm}");
    // Directional derivative along a fixed direction d: <g, d> vs (L(x + h d) - L(x - h d)) / 2h.
    let d = input(&[1, 1, 12, 10], 5, DType::F64);
    let h = 1e-5;
    let lp = loss(&(&x0 + (&d * h).unwrap()).unwrap())
        .to_scalar::<f64>()
        .unwrap();
    let lm = loss(&(&x0 - (&d * h).unwrap()).unwrap())
        .to_scalar::<f64>()
        .unwrap();
    let numeric = (lp - lm) / (2.0 * h);
    let analytic: f64 = gv
        .iter()
        .zip(d.flatten_all().unwrap().to_vec1::<f64>().unwrap())
        .map(|(a, b)| a * b)
        .sum();
    assert!(
        (numeric - analytic).abs() <= 1e-6 * numeric.abs().max(1.0),
        "finite difference {numeric} vs backprop {analytic}"
    );
}

#[test]
fn bad_input_shapes_are_shape_errors() {
    let ex = extractor(Some((16, 16)), DType::F32);
    let dev = Device::Cpu;
    for shape in [
        vec![16, 16],
        vec![1, 2, 8, 8],
        vec![1, 4, 8, 8],
        vec![0, 3, 8, 8],
        vec![1, 3, 0, 8],
        vec![1, 3, 8, 8, 1],
    ] {
        let x = Tensor::zeros(shape.as_slice(), DType::F32, &dev).unwrap();
        match ex.features(&x) {
            Err(dmad_core::Error::ShapeMismatch { context, got, .. }) => {
                assert_eq!(context, "EfficientNetExtractor input");
                assert_eq!(got, shape);
            }
            other => panic!("{shape:?}: {other:?}"),
        }
    }
    // The network itself wants 3 channels.
    let x = Tensor::zeros((1, 1, 8, 8), DType::F32, &dev).unwrap();
    let e = ex.network().forward(&x).unwrap_err().to_string();
    assert!(
        e.contains("EfficientNet input") && e.contains("[1, 1, 8, 8]"),
        "{e}"
    );
    let x = Tensor::zeros((1, 3, 8, 8), DType::F32, &dev).unwrap();
    assert!(ex
        .network()
        .forward_blocks(&x, 5)
        .unwrap_err()
        .to_string()
        .contains("last_block"));
}

#[test]
fn forward_gives_logits_and_no_classifier_is_unsupported() {
    let net = tiny(DType::F32);
    let x = input(&[3, 3, 16, 16], 6, DType::F32);
    assert_eq!(net.forward(&x).unwrap().dims(), &[3, 10]);
    let mut cfg = EfficientNetConfig::tiny();
    cfg.num_classes = None;
    let net = EfficientNet::random(&cfg, 7, DType::F32, &Device::Cpu).unwrap();
    let e = net.forward(&x).unwrap_err();
    assert!(
        matches!(e, Error::Core(dmad_core::Error::Unsupported(_))),
        "{e:?}"
    );
}

#[test]
fn batch_items_are_independent() {
    let ex = extractor(Some((20, 20)), DType::F32);
    let x = input(&[3, 3, 20, 20], 8, DType::F32);
    let all = ex.features(&x).unwrap();
    let one = ex.features(&x.narrow(0, 1, 1).unwrap()).unwrap();
    for (a, o) in all.iter().zip(&one) {
        assert!(max_abs_diff(&a.narrow(0, 1, 1).unwrap(), o) <= 1e-5);
    }
}

mod safetensors_files {
    use super::*;
    use std::collections::HashMap;

    fn save(
        map: &HashMap<String, Tensor>,
        dir: &tempfile::TempDir,
        name: &str,
    ) -> std::path::PathBuf {
        let p = dir.path().join(name);
        candle_core::safetensors::save(map, &p).unwrap();
        p
    }

    fn load(p: &std::path::Path) -> dmad_score::Result<EfficientNet> {
        EfficientNet::from_safetensors(&EfficientNetConfig::tiny(), p, DType::F32, &Device::Cpu)
    }

    fn weights_error(
        r: dmad_score::Result<EfficientNet>,
    ) -> (std::path::PathBuf, Option<String>, String) {
        match r {
            Err(Error::Weights {
                path,
                tensor,
                reason,
            }) => (path, tensor, reason),
            other => panic!("expected a weights error, got {other:?}"),
        }
    }

    #[test]
    fn a_saved_network_loads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let p = save(
            &random_weights(&EfficientNetConfig::tiny(), 7).unwrap(),
            &dir,
            "tiny.safetensors",
        );
        let x = input(&[2, 3, 16, 16], 9, DType::F32);
        let a = load(&p).unwrap().forward(&x).unwrap();
        let b = tiny(DType::F32).forward(&x).unwrap();
        assert_eq!(max_abs_diff(&a, &b), 0.0);
    }

    #[test]
    fn a_var_builder_gives_the_same_network() {
        let map = random_weights(&EfficientNetConfig::tiny(), 7).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(map, DType::F32, &Device::Cpu);
        let a = EfficientNet::new(&EfficientNetConfig::tiny(), vb).unwrap();
        let x = input(&[2, 3, 16, 16], 10, DType::F32);
        let b = tiny(DType::F32);
        assert_eq!(
            max_abs_diff(&a.forward(&x).unwrap(), &b.forward(&x).unwrap()),
            0.0
        );
        // A builder without the tensors is an error, not a panic.
        let empty = candle_nn::VarBuilder::from_tensors(HashMap::new(), DType::F32, &Device::Cpu);
        assert!(EfficientNet::new(&EfficientNetConfig::tiny(), empty).is_err());
    }

    #[test]
    fn truncated_empty_and_malformed_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = save(
            &random_weights(&EfficientNetConfig::tiny(), 7).unwrap(),
            &dir,
            "tiny.safetensors",
        );
        let bytes = std::fs::read(&p).unwrap();
        let cut = dir.path().join("truncated.safetensors");
        std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
        let empty = dir.path().join("empty.safetensors");
        std::fs::write(&empty, b"").unwrap();
        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"this is not a safetensors file at all").unwrap();
        for f in [&cut, &empty, &junk] {
            let r = load(f);
            let msg = r.as_ref().unwrap_err().to_string();
            let (path, tensor, _) = weights_error(r);
            assert_eq!(&path, f);
            assert_eq!(tensor, None);
            assert!(msg.contains(&f.display().to_string()), "{msg}");
        }
        let missing = dir.path().join("does-not-exist.safetensors");
        match load(&missing) {
            Err(Error::Core(dmad_core::Error::Io { path, .. })) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_misshapen_and_non_float_tensors_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let full = random_weights(&EfficientNetConfig::tiny(), 7).unwrap();

        let mut m = full.clone();
        m.remove("_blocks.3._depthwise_conv.weight");
        let p = save(&m, &dir, "missing.safetensors");
        let (path, tensor, reason) = weights_error(load(&p));
        assert_eq!(
            (path, tensor.as_deref(), reason.as_str()),
            (
                p.clone(),
                Some("_blocks.3._depthwise_conv.weight"),
                "missing"
            )
        );

        // The file of another architecture: Lite0's first tensors do not fit the tiny net.
        let mut m = full.clone();
        m.insert(
            "_bn0.running_var".into(),
            Tensor::ones(32, DType::F32, &Device::Cpu).unwrap(),
        );
        let p = save(&m, &dir, "misshapen.safetensors");
        let r = load(&p);
        let msg = r.as_ref().unwrap_err().to_string();
        let (_, tensor, reason) = weights_error(r);
        assert_eq!(tensor.as_deref(), Some("_bn0.running_var"));
        assert!(
            reason.contains("[32]") && reason.contains("[8]"),
            "{reason}"
        );
        assert!(
            msg.contains("misshapen.safetensors") && msg.contains("_bn0.running_var"),
            "{msg}"
        );

        let mut m = full;
        m.insert(
            "_fc.bias".into(),
            Tensor::zeros(10, DType::U8, &Device::Cpu).unwrap(),
        );
        let p = save(&m, &dir, "u8.safetensors");
        let (_, tensor, reason) = weights_error(load(&p));
        assert_eq!(tensor.as_deref(), Some("_fc.bias"));
        assert!(reason.contains("dtype"), "{reason}");
    }

    #[test]
    fn weights_errors_cross_the_feature_extractor_trait_with_the_file() {
        let e: dmad_core::Error = Error::Weights {
            path: "w.safetensors".into(),
            tensor: Some("_fc.bias".into()),
            reason: "missing".into(),
        }
        .into();
        match e {
            dmad_core::Error::InvalidInput { path, reason, .. } => {
                assert_eq!(path.unwrap(), std::path::Path::new("w.safetensors"));
                assert!(reason.contains("_fc.bias"));
            }
            other => panic!("{other:?}"),
        }
    }
}
