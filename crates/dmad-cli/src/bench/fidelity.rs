//! The fidelity cell of `dmad bench`: how close a fitted model's generated normal samples are
//! to real ones (classifier two-sample tests, and for images the Frechet distance on
//! EfficientNet-Lite0 features).

use super::*;

/// The fidelity of one dataset's generated normal samples: classifier two-sample tests
/// (Lopez-Paz & Oquab, arXiv 1610.06545) on the samples as the detector sees them (standardised
/// table rows, normalised series windows, images and scalograms in `[-1, 1]`), and for images and
/// scalograms the Frechet distance and a two-sample test on pooled EfficientNet-Lite0 features.
/// Each figure for the generated samples comes with the same figure for the real normal test
/// samples as a reference (what real data that the model did not see scores).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Fidelity {
    /// Generated normal samples, and as many real training samples (evenly spaced).
    pub(super) generated: usize,
    /// Real normal test samples of the reference (at most `generated`), against as many
    /// training samples.
    pub(super) reference: usize,
    /// The sampler and its steps.
    pub(super) sampler: String,
    pub(super) steps: usize,
    /// Two-sample accuracy, generated vs train: logistic regression and 5-NN (0.5: not told
    /// apart; 1: always told apart).
    pub(super) c2st_logistic: f64,
    pub(super) c2st_knn: f64,
    /// The same for real normal test samples vs train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reference_c2st_logistic: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reference_c2st_knn: Option<f64>,
    /// Frechet distance on pooled EfficientNet-Lite0 features, generated vs train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fd_generated: Option<f64>,
    /// The same, real normal test vs train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fd_reference: Option<f64>,
    /// Two-sample accuracy on those features, generated vs train (logistic, 5-NN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) feature_c2st_logistic: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) feature_c2st_knn: Option<f64>,
    /// Why a figure is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) note: Option<String>,
}

/// Generated normal samples per fidelity cell (fewer where the training set is smaller).
pub(super) const FIDELITY_SAMPLES: usize = 96;
/// DDIM steps of the fidelity cell's sampling.
pub(super) const FIDELITY_STEPS: usize = 25;
/// `k` of `x`'s samples, evenly spaced (all of them when `k >= n`).
pub(super) fn evenly_spaced(x: &Tensor, k: usize) -> Result<Tensor> {
    let n = x.dim(0)?;
    if k >= n {
        return Ok(x.clone());
    }
    let idx: Vec<u32> = (0..k).map(|i| (i * n / k) as u32).collect();
    Ok(x.index_select(&Tensor::new(idx.as_slice(), x.device())?, 0)?)
}

/// The normal samples of a test set: labelled 0, or for a windowed series the test windows
/// whose every point is normal.
pub(super) fn normal_test_samples(test: &TestSet) -> Result<Tensor> {
    let (x, keep): (&Tensor, Vec<u32>) = match test {
        TestSet::Samples(t) => (
            &t.x,
            (0..t.labels.len() as u32)
                .filter(|&i| t.labels[i as usize] == 0)
                .collect(),
        ),
        TestSet::Points(task) => (
            &task.test,
            task.test_starts
                .iter()
                .enumerate()
                .filter(|(_, &s)| {
                    task.test_labels
                        .get(s..s + task.window)
                        .is_some_and(|w| w.iter().all(|&l| l == 0))
                })
                .map(|(i, _)| i as u32)
                .collect(),
        ),
    };
    Ok(x.index_select(&Tensor::new(keep.as_slice(), x.device())?, 0)?)
}

/// The fidelity cell of a dataset: the `full` model fitted on unit 0's training samples as the
/// bench fits it, [`FIDELITY_SAMPLES`] normal samples generated with seeded
/// [`FIDELITY_STEPS`]-step DDIM, and the figures of [`Fidelity`] against as many evenly
/// spaced training samples, beside those of the real normal test samples.
pub(super) fn run_fidelity(
    ds: &Dataset,
    cfg: &DetectorConfig,
    opts: &Options,
    dev: &Device,
) -> Result<UnitMetrics> {
    use dmad::generate::{
        frechet_distance, pool_features, two_sample_test, C2stConfig, GenerateConfig, Generator,
    };
    use dmad::FeatureExtractor as _;
    let start = Instant::now();
    let (train, test) =
        prepare_unit(ds, cfg, 0, dev).with_context(|| format!("reading {} (unit 0)", ds.id))?;
    let mut cfg = cfg.clone();
    cfg.train.seed = opts.seed;
    cfg.scoring.seed = opts.seed;
    let mut det = Detector::new(cfg, dev)?;
    det.fit(&train, |_| {})?;
    let n = FIDELITY_SAMPLES.min(train.dim(0)?);
    if n < 4 {
        bail!(
            "{}: {n} training samples are too few for a two-sample test",
            ds.id
        );
    }
    let gen_cfg = GenerateConfig {
        steps: FIDELITY_STEPS,
        ..GenerateConfig::default()
    };
    let sampler = format!("{:?}", gen_cfg.sampler);
    let generated = Generator::new(&det, gen_cfg)?.normal(n, opts.seed)?;
    let real = evenly_spaced(&train, n)?;
    let reference = evenly_spaced(&normal_test_samples(&test)?, n)?;
    let m = reference.dim(0)?;
    let c2st = C2stConfig {
        seed: opts.seed,
        ..C2stConfig::default()
    };
    let g = two_sample_test(&real, &generated, &c2st)?;
    let mut f = Fidelity {
        generated: n,
        reference: m,
        sampler,
        steps: FIDELITY_STEPS,
        c2st_logistic: g.logistic,
        c2st_knn: g.knn,
        ..Fidelity::default()
    };
    // The reference: as many training samples as there are normal test samples.
    if m >= 4 {
        let r = two_sample_test(&evenly_spaced(&train, m)?, &reference, &c2st)?;
        f.reference_c2st_logistic = Some(r.logistic);
        f.reference_c2st_knn = Some(r.knn);
    }
    if matches!(ds.modality(), Modality::Image | Modality::Audio) {
        match efficientnet_from_env(dev)? {
            Some(ex) => {
                let pooled = |x: &Tensor| -> Result<Tensor> {
                    let mut parts = Vec::new();
                    for i in (0..x.dim(0)?).step_by(16) {
                        let len = 16.min(x.dim(0)? - i);
                        parts.push(pool_features(&ex.features(&x.narrow(0, i, len)?)?)?);
                    }
                    Ok(Tensor::cat(&parts, 0)?)
                };
                let (fr, fg) = (pooled(&real)?, pooled(&generated)?);
                f.fd_generated = Some(frechet_distance(&fr, &fg)?);
                if m >= 2 {
                    f.fd_reference = Some(frechet_distance(&fr, &pooled(&reference)?)?);
                }
                let c = two_sample_test(&fr, &fg, &c2st)?;
                f.feature_c2st_logistic = Some(c.logistic);
                f.feature_c2st_knn = Some(c.knn);
            }
            None => {
                f.note = Some(format!(
                    "{EFFICIENTNET_ENV} unset: no Frechet distance on EfficientNet-Lite0 features"
                ))
            }
        }
    }
    if m < 4 {
        let note = format!("{m} normal test samples: no reference two-sample test");
        f.note = Some(match f.note.take() {
            Some(n) => format!("{n}; {note}"),
            None => note,
        });
    }
    Ok(UnitMetrics {
        auroc: f64::NAN,
        auprc: f64::NAN,
        f1_max: f64::NAN,
        fidelity: Some(f),
        wall_s: start.elapsed().as_secs_f64(),
        ..UnitMetrics::default()
    })
}
