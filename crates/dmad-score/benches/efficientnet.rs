//! EfficientNet-Lite0 feature extraction on the CPU: forward, and forward + backward to the
//! input (the perceptual loss of training). Random weights, so no download is needed.
//!
//! ```bash
//! cargo bench -p dmad-score --bench efficientnet -- --warm-up-time 1 --measurement-time 3
//! ```

use candle_core::{DType, Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use dmad_core::FeatureExtractor;
use dmad_score::efficientnet::{
    EfficientNet, EfficientNetConfig, EfficientNetExtractor, ExtractorConfig,
};

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut cfg = EfficientNetConfig::lite0();
    cfg.num_classes = None;
    let net = EfficientNet::random(&cfg, 0, DType::F32, &dev).unwrap();
    let ex = EfficientNetExtractor::new(net, ExtractorConfig::default()).unwrap();
    let mut g = c.benchmark_group("efficientnet_lite0");
    g.sample_size(10);
    for batch in [1usize, 8] {
        // Grey 256x256 images, resized to 224 by the extractor.
        let x = Tensor::rand(-1f32, 1.0, (batch, 1, 256, 256), &dev).unwrap();
        g.bench_function(format!("cpu_features_b{batch}_256to224"), |b| {
            b.iter(|| ex.features(&x).unwrap())
        });
        let v = Var::from_tensor(&x).unwrap();
        g.bench_function(format!("cpu_features_backward_b{batch}_256to224"), |b| {
            b.iter(|| {
                let feats = ex.features(v.as_tensor()).unwrap();
                let mut loss = feats[0].sqr().unwrap().mean_all().unwrap();
                for f in &feats[1..] {
                    loss = (loss + f.sqr().unwrap().mean_all().unwrap()).unwrap();
                }
                loss.backward().unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
