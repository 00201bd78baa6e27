//! Fidelity metrics: the Frechet distance against scipy and exact identities, the classifier
//! two-sample test.

use candle_core::{DType, Device, Tensor};
use dmad_generate::{frechet_distance, pool_features, two_sample_test, C2stConfig, Error};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn gaussian(n: usize, d: usize, seed: u64, shift: f32) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n * d)
        .map(|i| {
            let z: f32 = StandardNormal.sample(&mut rng);
            z * (1.0 + (i % d) as f32 * 0.3) + shift
        })
        .collect();
    Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap()
}

#[test]
fn frechet_distance_matches_scipy() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/generate/frechet.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in v["cases"].as_array().unwrap() {
        let dim = |k: &str| case[k].as_u64().unwrap() as usize;
        let vals = |k: &str| -> Vec<f64> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let a = Tensor::from_vec(vals("a"), (dim("n"), dim("d")), &Device::Cpu).unwrap();
        let b = Tensor::from_vec(vals("b"), (dim("m"), dim("d")), &Device::Cpu).unwrap();
        let want = case["fid"].as_f64().unwrap();
        let got = frechet_distance(&a, &b).unwrap();
        println!("d={}: dmad {got:.12} scipy {want:.12}", dim("d"));
        // scipy's sqrtm of the non-symmetric product is accurate to about 1e-10 here.
        assert!(close(got, want, 1e-8), "{got} vs {want}");
    }
}

#[test]
fn frechet_distance_identities() {
    // In f64, so that shifting and scaling are exact up to f64 rounding.
    let a64 = gaussian(300, 6, 1, 0.0).to_dtype(DType::F64).unwrap();
    // Same set: 0.
    assert!(frechet_distance(&a64, &a64).unwrap().abs() < 1e-9);
    // A shift by c: |c|^2 (the covariances are equal).
    let shifted = (&a64 + 0.5).unwrap();
    assert!(close(
        frechet_distance(&a64, &shifted).unwrap(),
        6.0 * 0.25,
        1e-9
    ));
    // Scaling by 2: |mu|^2 + tr(S).
    let mu: Vec<f64> = a64.mean(0).unwrap().to_vec1().unwrap();
    let centred = a64.broadcast_sub(&a64.mean_keepdim(0).unwrap()).unwrap();
    let tr: f64 = centred
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
        / 299.0;
    let want = mu.iter().map(|m| m * m).sum::<f64>() + tr;
    assert!(close(
        frechet_distance(&a64, &(&a64 * 2.0).unwrap()).unwrap(),
        want,
        1e-9
    ));
    // Features of image layers pool to one vector per sample.
    let layers = [
        Tensor::ones((4, 3, 8, 8), DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros((4, 5, 2, 2), DType::F32, &Device::Cpu).unwrap(),
    ];
    let p = pool_features(&layers).unwrap();
    assert_eq!(p.dims(), &[4, 8]);
}

#[test]
fn two_sample_test_tells_shifted_samples_apart_and_not_equal_ones() {
    let cfg = C2stConfig::default();
    let real = gaussian(300, 8, 1, 0.0);
    let same = gaussian(300, 8, 2, 0.0);
    let far = gaussian(300, 8, 3, 1.5);
    let t0 = two_sample_test(&real, &same, &cfg).unwrap();
    let t1 = two_sample_test(&real, &far, &cfg).unwrap();
    println!("same distribution: {t0:?}; shifted by 1.5: {t1:?}");
    assert_eq!(t0.n_test, 300);
    // 300 held out: the accuracy of a chance classifier has a standard error of 0.029.
    assert!(
        (t0.logistic - 0.5).abs() < 0.1 && (t0.knn - 0.5).abs() < 0.1,
        "{t0:?}"
    );
    assert!(t1.logistic > 0.9 && t1.knn > 0.8, "{t1:?}");
    // Windows are flattened to rows.
    let w = real.reshape((300, 2, 4)).unwrap();
    assert_eq!(
        two_sample_test(&w, &same.reshape((300, 2, 4)).unwrap(), &cfg).unwrap(),
        t0
    );
}

#[test]
fn bad_input_is_an_error() {
    let a = gaussian(10, 3, 1, 0.0);
    let b = gaussian(10, 4, 1, 0.0);
    assert!(matches!(
        frechet_distance(&a, &b),
        Err(Error::ShapeMismatch { .. })
    ));
    let one = gaussian(1, 3, 1, 0.0);
    assert!(matches!(
        frechet_distance(&a, &one),
        Err(Error::ShapeMismatch { .. })
    ));
    let nan = Tensor::new(&[[0f32, f32::NAN], [1.0, 2.0]], &Device::Cpu).unwrap();
    assert!(matches!(
        frechet_distance(&nan, &nan),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        pool_features(&[]),
        Err(Error::ShapeMismatch { .. })
    ));
    let cfg = C2stConfig::default();
    assert!(matches!(
        two_sample_test(&a, &b, &cfg),
        Err(Error::ShapeMismatch { .. })
    ));
    for bad in [
        C2stConfig {
            test_fraction: 0.0,
            ..C2stConfig::default()
        },
        C2stConfig {
            test_fraction: 1.0,
            ..C2stConfig::default()
        },
        C2stConfig {
            k: 0,
            ..C2stConfig::default()
        },
    ] {
        assert!(matches!(
            two_sample_test(&a, &a, &bad),
            Err(Error::InvalidConfig { .. })
        ));
    }
}

#[test]
fn feature_frechet_distance_through_an_extractor() {
    use dmad_score::efficientnet::{
        EfficientNet, EfficientNetConfig, EfficientNetExtractor, ExtractorConfig,
    };
    let dev = Device::Cpu;
    let net = EfficientNet::random(&EfficientNetConfig::tiny(), 1, DType::F32, &dev).unwrap();
    let cfg = ExtractorConfig {
        image_size: Some((32, 32)),
        ..Default::default()
    };
    let ex = EfficientNetExtractor::new(net, cfg).unwrap();
    let real = Tensor::rand(-1f32, 1.0, (12, 1, 24, 24), &dev).unwrap();
    let other = Tensor::rand(-1f32, 1.0, (12, 1, 24, 24), &dev).unwrap();
    let bright = (&other * 0.3).unwrap().affine(1.0, 0.6).unwrap();
    // The same set, in batches of 5, is at distance 0.
    let same = dmad_generate::feature_frechet_distance(&ex, &real, &real, 5).unwrap();
    assert!(same.abs() < 1e-6, "{same}");
    let near = dmad_generate::feature_frechet_distance(&ex, &real, &other, 12).unwrap();
    let far = dmad_generate::feature_frechet_distance(&ex, &real, &bright, 12).unwrap();
    println!("FD on tiny EfficientNet features: same 0, another draw {near:.4}, brighter {far:.4}");
    assert!(far > near, "{near} {far}");
    assert!(matches!(
        dmad_generate::feature_frechet_distance(&ex, &real, &real, 0),
        Err(Error::InvalidConfig { .. })
    ));
}
