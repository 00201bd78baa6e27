//! Reconstruction, feature and combined scorers, maps and `fit_lambda`, on analytic denoisers
//! and tiny extractors.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use dmad_core::{FeatureExtractor, PredictionType};
use dmad_diffusion::{
    DdimConfig, DdimSampler, DdpmConfig, DdpmSampler, GaussianDenoiser, NoiseSchedule,
    NoiseScheduleConfig, NoiseSource, SeededNoise, Start,
};
use dmad_score::maps::{self, gaussian_smooth, series_point_scores, MapScore, Reduce};
use dmad_score::{
    default_lambda_grid, fit_lambda, squared_error, CombinedScorer, Error, FeatureDistance,
    FeatureScorer, NormKind, Normaliser, ReconstructionConfig, ReconstructionScorer, Reconstructor,
    ScoreOutput, Scorer, Terms,
};

fn schedule() -> NoiseSchedule {
    NoiseScheduleConfig::default().build().unwrap()
}

/// The exact denoiser of N(0, 0.5^2) data.
fn gaussian(s: &NoiseSchedule) -> GaussianDenoiser {
    GaussianDenoiser::new(s, 0.0, 0.5, PredictionType::Epsilon).unwrap()
}

fn ddim(s: &NoiseSchedule, steps: usize) -> DdimSampler {
    DdimSampler::new(
        s,
        DdimConfig {
            num_inference_steps: steps,
            ..Default::default()
        },
    )
    .unwrap()
}

fn ddpm(s: &NoiseSchedule, steps: usize) -> DdpmSampler {
    DdpmSampler::new(
        s,
        DdpmConfig {
            num_inference_steps: steps,
            ..Default::default()
        },
    )
    .unwrap()
}

fn normal_images(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Tensor {
    (SeededNoise::new(seed)
        .draw(&[n, c, h, w], &Device::Cpu)
        .unwrap()
        * 0.5)
        .unwrap()
}

/// Normal images with a `3 x 3` patch of value 2.5 at rows/cols 2..5 and 4..7.
fn defective_images(n: usize, seed: u64) -> Tensor {
    let x = normal_images(n, 1, 10, 12, seed);
    let mut v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for b in 0..n {
        for i in 2..5 {
            for j in 4..7 {
                v[b * 120 + i * 12 + j] = 2.5;
            }
        }
    }
    Tensor::from_vec(v, (n, 1, 10, 12), &Device::Cpu).unwrap()
}

fn argmax2(map: &Tensor, b: usize) -> (usize, usize) {
    let m = map.get(b).unwrap().to_vec2::<f32>().unwrap();
    let mut best = (0, 0);
    for (i, row) in m.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if v > m[best.0][best.1] {
                best = (i, j);
            }
        }
    }
    best
}

fn is_shape(e: &Error) -> bool {
    matches!(e, Error::Core(dmad_core::Error::ShapeMismatch { .. }))
}

fn is_config(e: &Error, f: &str) -> bool {
    matches!(e, Error::Core(dmad_core::Error::InvalidConfig { field, .. }) if *field == f)
}

/// A small frozen "network": the input itself and its 2x2 average pool, times `gain`.
#[derive(Debug, Clone)]
struct PoolExtractor {
    gain: f64,
}

impl FeatureExtractor for PoolExtractor {
    fn features(&self, x: &Tensor) -> dmad_core::Result<Vec<Tensor>> {
        Ok(vec![(x * self.gain)?, (x.avg_pool2d(2)? * self.gain)?])
    }
}

#[test]
fn reconstruction_scores_out_of_distribution_higher() -> Result<()> {
    let s = schedule();
    let rec = Reconstructor::new(
        gaussian(&s),
        ddim(&s, 20),
        ReconstructionConfig {
            start: Start::Strength(0.5),
            draws: 2,
            seed: 3,
        },
    )?;
    let scorer = ReconstructionScorer::new(rec);
    let inl = scorer.score(&normal_images(8, 3, 8, 8, 1))?;
    let out = scorer.score(&normal_images(8, 3, 8, 8, 2).affine(0.5, 2.0)?)?;
    assert_eq!(inl.scores.len(), 8);
    assert_eq!(inl.map.as_ref().unwrap().dims(), &[8, 8, 8]);
    let max_in = inl.scores.iter().copied().fold(f32::MIN, f32::max);
    let min_out = out.scores.iter().copied().fold(f32::MAX, f32::min);
    assert!(
        min_out > max_in,
        "ood {min_out} vs in-distribution {max_in}"
    );
    // The score is the mean of the map (the squared error averaged over every element).
    let m = inl
        .map
        .unwrap()
        .reshape((8, 64))?
        .mean(1)?
        .to_vec1::<f32>()?;
    for (a, b) in m.iter().zip(&inl.scores) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
    }
    Ok(())
}

#[test]
fn reconstruction_is_reproducible_and_averages_draws() -> Result<()> {
    let s = schedule();
    let x = normal_images(4, 1, 6, 6, 9);
    let cfg = |draws, seed| ReconstructionConfig {
        start: Start::Strength(0.6),
        draws,
        seed,
    };
    // DDPM is stochastic at every step: the seed fixes it.
    let ddpm = ddpm(&s, 10);
    let one = Reconstructor::new(gaussian(&s), ddpm.clone(), cfg(1, 5))?;
    let a = ReconstructionScorer::new(one.clone()).score(&x)?;
    let b = ReconstructionScorer::new(one).score(&x)?;
    assert_eq!(a.scores, b.scores);
    let other =
        ReconstructionScorer::new(Reconstructor::new(gaussian(&s), ddpm.clone(), cfg(1, 6))?)
            .score(&x)?;
    assert_ne!(a.scores, other.scores);
    // Three draws average the squared errors of the three reconstructions.
    let three = Reconstructor::new(gaussian(&s), ddpm, cfg(3, 5))?;
    let recs = three.reconstruct(&x)?;
    assert_eq!(recs.len(), 3);
    let per: Vec<ScoreOutput> = recs
        .iter()
        .map(|r| squared_error(&x, r))
        .collect::<dmad_score::Result<_>>()?;
    assert_eq!(per[0].scores, a.scores, "draw 0 uses the configured seed");
    let avg = ReconstructionScorer::new(three).score(&x)?;
    for i in 0..4 {
        let want = (per[0].scores[i] + per[1].scores[i] + per[2].scores[i]) / 3.0;
        assert!((avg.scores[i] - want).abs() <= 1e-6 * want.max(1.0));
    }
    Ok(())
}

#[test]
fn the_mean_of_draws_is_scored_as_one_reconstruction() -> Result<()> {
    let s = schedule();
    let x = normal_images(4, 1, 6, 6, 9);
    let cfg = |draws| ReconstructionConfig {
        start: Start::Strength(0.6),
        draws,
        seed: 5,
    };
    let ddpm = ddpm(&s, 10);
    let three = Reconstructor::new(gaussian(&s), ddpm.clone(), cfg(3))?;
    let recs = three.reconstruct(&x)?;
    let mean = three.clone().mean_of_draws(true);
    assert!(mean.averages_draws() && !three.averages_draws());
    let one = mean.reconstruct(&x)?;
    assert_eq!(one.len(), 1);
    let want = ((&recs[0] + &recs[1])? + &recs[2])? / 3.0;
    let diff = (&one[0] - &want?)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff <= 1e-6, "the mean reconstruction is off by {diff}");
    // The squared error of the mean is at most the mean of the squared errors (Jensen), and
    // below it where the draws differ: the draw-to-draw detail is gone from the score.
    let of_mean = ReconstructionScorer::new(mean).score(&x)?;
    let of_errors = ReconstructionScorer::new(three).score(&x)?;
    for (m, e) in of_mean.scores.iter().zip(&of_errors.scores) {
        assert!(m < e, "error of the mean {m} vs mean error {e}");
    }
    // One draw: the mean is that draw.
    let single = Reconstructor::new(gaussian(&s), ddpm, cfg(1))?;
    assert_eq!(
        ReconstructionScorer::new(single.clone().mean_of_draws(true))
            .score(&x)?
            .scores,
        ReconstructionScorer::new(single).score(&x)?.scores
    );
    Ok(())
}

#[test]
fn reconstruction_map_localises_a_defect() -> Result<()> {
    let s = schedule();
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?;
    let out = ReconstructionScorer::new(rec).score(&defective_images(3, 4))?;
    let map = gaussian_smooth(out.map.as_ref().unwrap(), 1.0)?;
    assert_eq!(map.dims(), &[3, 10, 12]);
    for b in 0..3 {
        let (i, j) = argmax2(&map, b);
        assert!(
            (2..5).contains(&i) && (4..7).contains(&j),
            "peak at {i},{j}"
        );
    }
    Ok(())
}

#[test]
fn series_and_tables_get_the_right_maps() -> Result<()> {
    let s = schedule();
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?;
    let scorer = ReconstructionScorer::new(rec);
    // Series windows [batch, channel, length]: a map per time step.
    let mut v = SeededNoise::new(1)
        .draw(&[5, 2, 16], &Device::Cpu)?
        .affine(0.5, 0.0)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    // A spike at step 9 of every window (both channels).
    for w in 0..5 {
        for c in 0..2 {
            v[w * 32 + c * 16 + 9] = 3.0;
        }
    }
    let x = Tensor::from_vec(v, (5, 2, 16), &Device::Cpu)?;
    let out = scorer.score(&x)?;
    let map = out.map.unwrap();
    assert_eq!(map.dims(), &[5, 16]);
    // Windows of length 16 at starts 0, 4, ..., 16 over a 32-point series.
    let starts = [0, 4, 8, 12, 16];
    let points = series_point_scores(&map, &starts, 32, Reduce::Mean)?;
    assert_eq!(points.len(), 32);
    let points_max = series_point_scores(&map, &starts, 32, Reduce::Max)?;
    assert!(points.iter().zip(&points_max).all(|(a, b)| a <= b));
    for (w, &st) in starts.iter().enumerate() {
        let row = map.get(w)?.to_vec1::<f32>()?;
        let peak = (0..16).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(peak, 9, "window {w} at {st}");
    }
    // Tables: scores only.
    let t = scorer.score(&Tensor::zeros((4, 6), DType::F32, &Device::Cpu)?)?;
    assert!(t.map.is_none());
    assert_eq!(t.scores.len(), 4);
    Ok(())
}

#[test]
fn feature_map_has_input_size_and_localises() -> Result<()> {
    let s = schedule();
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?;
    let scorer = FeatureScorer::new(rec, PoolExtractor { gain: 1.0 });
    let x = defective_images(2, 7);
    let out = scorer.score(&x)?;
    let map = out.map.unwrap();
    assert_eq!(map.dims(), &[2, 10, 12]);
    for b in 0..2 {
        let (i, j) = argmax2(&map, b);
        assert!(
            (1..6).contains(&i) && (3..8).contains(&j),
            "peak at {i},{j}"
        );
    }
    // Identical inputs have no feature error.
    let f0 = PoolExtractor { gain: 1.0 }.features(&x)?;
    let zero = dmad_score::feature_error(&PoolExtractor { gain: 1.0 }, &f0, &x)?;
    assert!(zero.scores.iter().all(|&v| v == 0.0));
    // terms() gives the same feature term as score(), and the reconstruction scorer's term.
    let terms = scorer.terms(&x)?;
    assert_eq!(terms.feat.scores, out.scores);
    let recon = ReconstructionScorer::new(scorer.reconstructor().clone()).score(&x)?;
    assert_eq!(terms.recon.scores, recon.scores);
    Ok(())
}

#[test]
fn feature_scorer_runs_the_tiny_efficientnet() -> Result<()> {
    use dmad_score::efficientnet::{EfficientNet, EfficientNetConfig, ExtractorConfig};
    use dmad_score::EfficientNetExtractor;
    let dev = Device::Cpu;
    let net = EfficientNet::random(&EfficientNetConfig::tiny(), 42, DType::F32, &dev)?;
    let ext = EfficientNetExtractor::new(
        net,
        ExtractorConfig {
            image_size: Some((32, 32)),
            ..Default::default()
        },
    )?;
    let s = schedule();
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 5), ReconstructionConfig::default())?;
    let out = FeatureScorer::new(rec, ext).score(&normal_images(2, 3, 20, 24, 3))?;
    assert_eq!(out.map.unwrap().dims(), &[2, 20, 24]);
    assert!(out.scores.iter().all(|v| v.is_finite() && *v > 0.0));
    Ok(())
}

fn terms_for(gain: f64, x: &Tensor) -> Result<Terms> {
    let s = schedule();
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?;
    Ok(FeatureScorer::new(rec, PoolExtractor { gain }).terms(x)?)
}

#[test]
fn normalisation_makes_lambda_scale_invariant() -> Result<()> {
    let normal = normal_images(16, 1, 8, 8, 11);
    let test = defective_images(4, 12).narrow(2, 0, 8)?.narrow(3, 0, 8)?;
    for kind in [NormKind::MeanStd, NormKind::MedianIqr] {
        let mut combined = Vec::new();
        for gain in [1.0, 30.0] {
            let s = schedule();
            let rec =
                Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?;
            let fs = FeatureScorer::new(rec, PoolExtractor { gain });
            let norm = Normaliser::fit(&fs.terms(&normal)?, kind)?;
            assert!(norm.recon_map.is_some() && norm.feat_map.is_some());
            let scorer = CombinedScorer::new(fs, norm, 0.3)?;
            combined.push(scorer.score(&test)?);
        }
        // The feature term grew 900-fold; the combined score did not change.
        for (a, b) in combined[0].scores.iter().zip(&combined[1].scores) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{kind:?}: {a} vs {b}"
            );
        }
        let (ma, mb) = (
            combined[0]
                .map
                .as_ref()
                .unwrap()
                .flatten_all()?
                .to_vec1::<f32>()?,
            combined[1]
                .map
                .as_ref()
                .unwrap()
                .flatten_all()?
                .to_vec1::<f32>()?,
        );
        assert_eq!(combined[0].map.as_ref().unwrap().dims(), &[4, 8, 8]);
        for (a, b) in ma.iter().zip(&mb) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0));
        }
    }
    // lambda = 1 is the normalised reconstruction term alone.
    let t = terms_for(1.0, &test)?;
    let norm = Normaliser::fit(&terms_for(1.0, &normal)?, NormKind::MeanStd)?;
    let a = norm.combine(1.0, &t)?;
    for (a, r) in a.scores.iter().zip(&t.recon.scores) {
        let z = (*r as f64 - norm.recon.location) / norm.recon.scale;
        assert!((*a as f64 - z).abs() <= 1e-5 * z.abs().max(1.0));
    }
    Ok(())
}

fn synthetic(recon: &[f32], feat: &[f32]) -> Terms {
    Terms {
        recon: ScoreOutput {
            scores: recon.to_vec(),
            map: None,
        },
        feat: ScoreOutput {
            scores: feat.to_vec(),
            map: None,
        },
    }
}

fn noise_vec(n: usize, seed: u64, scale: f32, shift: f32) -> Vec<f32> {
    SeededNoise::new(seed)
        .draw(&[n], &Device::Cpu)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(|v| v * scale + shift)
        .collect()
}

#[test]
fn fit_lambda_picks_the_informative_term() -> Result<()> {
    // Reconstruction separates the anomalies; the feature term points the wrong way, on a
    // scale 1000 times larger.
    let normal = synthetic(
        &noise_vec(200, 1, 1.0, 0.0),
        &noise_vec(200, 2, 1000.0, 0.0),
    );
    let anomalous = synthetic(
        &noise_vec(50, 3, 1.0, 3.0),
        &noise_vec(50, 4, 1000.0, -1000.0),
    );
    let norm = Normaliser::fit(&normal, NormKind::MeanStd)?;
    let fit = fit_lambda(&norm, &normal, &anomalous, &default_lambda_grid())?;
    assert_eq!(fit.curve.len(), 21);
    assert!(fit.lambda >= 0.7, "lambda {}", fit.lambda);
    assert!(fit.auroc > 0.95);
    assert!(
        fit.curve[0].1 < 0.5,
        "feature term alone is anti-informative"
    );
    // The mirror case picks the feature term.
    let normal = synthetic(&noise_vec(200, 5, 0.01, 0.0), &noise_vec(200, 6, 1.0, 0.0));
    let anomalous = synthetic(&noise_vec(50, 7, 0.01, -0.01), &noise_vec(50, 8, 1.0, 3.0));
    let norm = Normaliser::fit(&normal, NormKind::MedianIqr)?;
    let fit = fit_lambda(&norm, &normal, &anomalous, &default_lambda_grid())?;
    assert!(fit.lambda <= 0.3, "lambda {}", fit.lambda);
    // Bad input.
    assert!(is_config(
        &fit_lambda(&norm, &normal, &anomalous, &[]).unwrap_err(),
        "lambda"
    ));
    assert!(is_config(
        &fit_lambda(&norm, &normal, &anomalous, &[0.5, 1.5]).unwrap_err(),
        "lambda"
    ));
    let empty = synthetic(&[], &[]);
    assert!(matches!(
        fit_lambda(&norm, &normal, &empty, &[0.5]),
        Err(Error::Metrics(_))
    ));
    let ragged = synthetic(&[1.0, 2.0], &[1.0]);
    assert!(is_shape(
        &fit_lambda(&norm, &normal, &ragged, &[0.5]).unwrap_err()
    ));
    Ok(())
}

#[test]
fn bad_input_is_an_error() -> Result<()> {
    let s = schedule();
    let dev = Device::Cpu;
    // Configuration.
    let bad_draws = ReconstructionConfig {
        draws: 0,
        ..Default::default()
    };
    assert!(is_config(
        &Reconstructor::new(gaussian(&s), ddim(&s, 10), bad_draws).unwrap_err(),
        "draws"
    ));
    let bad_start = ReconstructionConfig {
        start: Start::Strength(0.0),
        ..Default::default()
    };
    assert!(matches!(
        Reconstructor::new(gaussian(&s), ddim(&s, 10), bad_start),
        Err(Error::Diffusion(_))
    ));
    let v_model = GaussianDenoiser::new(&s, 0.0, 0.5, PredictionType::VPrediction)?;
    assert!(is_config(
        &Reconstructor::new(v_model, ddim(&s, 10), ReconstructionConfig::default()).unwrap_err(),
        "prediction_type"
    ));
    // Shapes.
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 5), ReconstructionConfig::default())?;
    let scorer = ReconstructionScorer::new(rec.clone());
    for x in [
        Tensor::zeros((0, 1, 4, 4), DType::F32, &dev)?,
        Tensor::zeros(5, DType::F32, &dev)?,
        Tensor::zeros((1, 1, 1, 2, 2), DType::F32, &dev)?,
        Tensor::zeros((2, 1, 0, 4), DType::F32, &dev)?,
        Tensor::zeros((2, 3), DType::U32, &dev)?,
    ] {
        assert!(is_shape(&scorer.score(&x).unwrap_err()), "{:?}", x.dims());
    }
    let x = Tensor::zeros((2, 1, 4, 4), DType::F32, &dev)?;
    assert!(is_shape(
        &squared_error(&x, &Tensor::zeros((2, 1, 4, 5), DType::F32, &dev)?).unwrap_err()
    ));
    // Lambda outside [0, 1].
    let normal = terms_for(1.0, &normal_images(6, 1, 4, 4, 1))?;
    let norm = Normaliser::fit(&normal, NormKind::MeanStd)?;
    let fs = FeatureScorer::new(rec, PoolExtractor { gain: 1.0 });
    for l in [-0.1, 1.1, f64::NAN] {
        assert!(is_config(
            &CombinedScorer::new(fs.clone(), norm.clone(), l).unwrap_err(),
            "lambda"
        ));
        assert!(is_config(&norm.combine(l, &normal).unwrap_err(), "lambda"));
    }
    let mut ok = CombinedScorer::new(fs, norm, 0.5)?;
    assert!(ok.set_lambda(2.0).is_err());
    assert_eq!(ok.lambda(), 0.5);
    // Normal statistics that cannot normalise.
    let input = |e: &Error| matches!(e, Error::Core(dmad_core::Error::InvalidInput { .. }));
    let constant = synthetic(&[1.0, 1.0, 1.0], &[0.0, 1.0, 2.0]);
    assert!(input(
        &Normaliser::fit(&constant, NormKind::MeanStd).unwrap_err()
    ));
    let nan = synthetic(&[1.0, f32::NAN, 2.0], &[0.0, 1.0, 2.0]);
    assert!(input(
        &Normaliser::fit(&nan, NormKind::MeanStd).unwrap_err()
    ));
    let one = synthetic(&[1.0], &[1.0]);
    assert!(input(
        &Normaliser::fit(&one, NormKind::MedianIqr).unwrap_err()
    ));
    Ok(())
}

#[test]
fn batched_scoring_joins_batches_in_order() -> Result<()> {
    let s = schedule();
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 5), ReconstructionConfig::default())?;
    let fs = FeatureScorer::new(rec, PoolExtractor { gain: 1.0 });
    let x = normal_images(7, 1, 6, 6, 21);
    let out = fs.score_batched(&x, 3)?;
    assert_eq!(out.scores.len(), 7);
    assert_eq!(out.map.as_ref().unwrap().dims(), &[7, 6, 6]);
    // The last batch (one sample) is scored as it would be alone.
    let last = fs.score(&x.narrow(0, 6, 1)?)?;
    assert_eq!(out.scores[6], last.scores[0]);
    let terms = fs.terms_batched(&x, 4)?;
    assert_eq!(terms.recon.scores.len(), 7);
    assert_eq!(terms.feat.map.unwrap().dims(), &[7, 6, 6]);
    assert!(is_config(
        &fs.score_batched(&x, 0).unwrap_err(),
        "batch_size"
    ));
    // Smoothed maps and a max-of-map score.
    use dmad_score::maps::{MapScore, Smoothed};
    let sm = Smoothed::new(fs, 1.0, MapScore::Max)?;
    let o = sm.score(&defective_images(2, 3).narrow(2, 0, 8)?.narrow(3, 0, 8)?)?;
    let m = o.map.unwrap();
    for b in 0..2 {
        let mx = m.get(b)?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert_eq!(o.scores[b], mx);
    }
    Ok(())
}

#[test]
fn cosine_feature_distance_ignores_scale_and_localises() -> Result<()> {
    let s = schedule();
    let x = defective_images(2, 7);
    let rec = || Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default());
    let cos = |gain| -> Result<ScoreOutput> {
        FeatureScorer::new(rec()?, PoolExtractor { gain })
            .with_distance(FeatureDistance::Cosine)
            .score(&x)
            .map_err(Into::into)
    };
    let (a, b) = (cos(1.0)?, cos(5.0)?);
    for (u, v) in a.scores.iter().zip(&b.scores) {
        assert!((u - v).abs() <= 1e-5 * u.abs().max(1.0), "{u} vs {v}");
    }
    let map = a.map.unwrap();
    assert_eq!(map.dims(), &[2, 10, 12]);
    let (lo, hi) = (
        map.min_all()?.to_scalar::<f32>()?,
        map.max_all()?.to_scalar::<f32>()?,
    );
    // Two layers, each 1 - cos in [0, 2].
    assert!(lo >= -1e-6 && hi <= 4.0 + 1e-6, "{lo} {hi}");
    // On a three-channel "network" (the input itself): a position whose vector turns by 90
    // degrees is at distance 1, rescaled positions at 0.
    #[derive(Debug)]
    struct Identity;
    impl FeatureExtractor for Identity {
        fn features(&self, x: &Tensor) -> dmad_core::Result<Vec<Tensor>> {
            Ok(vec![x.clone()])
        }
    }
    let x0 = Tensor::ones((1, 3, 4, 4), DType::F32, &Device::Cpu)?;
    let mut v = (x0.clone() * 3.0)?.flatten_all()?.to_vec1::<f32>()?;
    // Position (1, 2) becomes (1, -1, 0): orthogonal to (1, 1, 1).
    for (c, val) in [1.0f32, -1.0, 0.0].into_iter().enumerate() {
        v[c * 16 + 4 + 2] = val;
    }
    let x1 = Tensor::from_vec(v, (1, 3, 4, 4), &Device::Cpu)?;
    let out = dmad_score::feature_error_with(
        &Identity,
        &Identity.features(&x0)?,
        &x1,
        FeatureDistance::Cosine,
    )?;
    let m = out.map.unwrap().to_vec3::<f32>()?;
    for (r, row) in m[0].iter().enumerate() {
        for (c, &d) in row.iter().enumerate() {
            let want = if (r, c) == (1, 2) { 1.0 } else { 0.0 };
            assert!((d - want).abs() < 1e-6, "({r}, {c}): {d}");
        }
    }
    assert!((out.scores[0] - 1.0 / 16.0).abs() < 1e-6);
    // Identical inputs are at distance 0.
    let f0 = PoolExtractor { gain: 1.0 }.features(&x)?;
    let zero = dmad_score::feature_error_with(
        &PoolExtractor { gain: 1.0 },
        &f0,
        &x,
        FeatureDistance::Cosine,
    )?;
    assert!(zero.scores.iter().all(|&v| v.abs() < 1e-6));
    Ok(())
}

#[test]
fn pooled_terms_score_the_smoothed_maps_maximum() -> Result<()> {
    let s = schedule();
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?;
    let terms =
        FeatureScorer::new(rec, PoolExtractor { gain: 1.0 }).terms(&defective_images(2, 3))?;
    let pooled = terms.clone().pooled(1.0, MapScore::Max)?;
    for (t, p) in [(&terms.recon, &pooled.recon), (&terms.feat, &pooled.feat)] {
        let smooth = maps::gaussian_smooth(t.map.as_ref().unwrap(), 1.0)?;
        assert_eq!(p.scores, maps::reduce_maps(&smooth, MapScore::Max)?);
    }
    // MapScore::Inner with sigma 0 changes nothing.
    let same = terms.clone().pooled(0.0, MapScore::Inner)?;
    assert_eq!(same.recon.scores, terms.recon.scores);
    Ok(())
}

#[test]
fn conditioning_pulls_the_reconstruction_to_the_input() -> Result<()> {
    let s = schedule();
    let x = defective_images(2, 5);
    let err = |w: f64| -> Result<f32> {
        let rec = Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?
            .conditioned(&s, w)?;
        assert_eq!(rec.condition(), w);
        let out = ReconstructionScorer::new(rec).score(&x)?;
        Ok(out.scores.iter().sum())
    };
    let (free, some, full) = (err(0.0)?, err(1.0)?, err(1e9)?);
    assert!(
        full < 1e-8 && some < free && some > full,
        "{free} {some} {full}"
    );
    let rec = Reconstructor::new(gaussian(&s), ddim(&s, 10), ReconstructionConfig::default())?;
    assert!(is_config(
        &rec.conditioned(&s, -1.0).unwrap_err(),
        "condition"
    ));
    Ok(())
}
