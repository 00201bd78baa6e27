//! Fidelity of generated samples: the Frechet distance between feature distributions and a
//! classifier two-sample test.

use candle_core::{DType, Tensor};
use dmad_core::FeatureExtractor;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

fn rows_of(x: &Tensor, context: &'static str) -> Result<(Vec<f64>, usize, usize)> {
    let dims = x.dims();
    if dims.len() != 2 || dims[0] < 2 || dims[1] == 0 {
        return Err(Error::shape(context, "[n >= 2, features >= 1]", dims));
    }
    let v: Vec<f64> = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    if v.iter().any(|a| !a.is_finite()) {
        return Err(Error::config(
            "features",
            format!("{context} holds a non-finite value"),
        ));
    }
    Ok((v, dims[0], dims[1]))
}

/// Mean and covariance (`ddof = 1`, as `numpy.cov`) of `n` rows of `d` values.
fn mean_cov(v: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mu = vec![0f64; d];
    for r in 0..n {
        for j in 0..d {
            mu[j] += v[r * d + j];
        }
    }
    mu.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0f64; d * d];
    for r in 0..n {
        let row = &v[r * d..(r + 1) * d];
        for i in 0..d {
            let a = row[i] - mu[i];
            for j in i..d {
                cov[i * d + j] += a * (row[j] - mu[j]);
            }
        }
    }
    for i in 0..d {
        for j in i..d {
            let c = cov[i * d + j] / (n - 1) as f64;
            cov[i * d + j] = c;
            cov[j * d + i] = c;
        }
    }
    (mu, cov)
}

/// Eigen-decomposition of a symmetric `d x d` matrix by cyclic Jacobi rotations: the
/// eigenvalues and the eigenvectors as the columns of a row-major matrix.
fn sym_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0f64; d * d];
    (0..d).for_each(|i| v[i * d + i] = 1.0);
    let norm: f64 = a
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j] * a[i * d + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * norm {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// The square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding are taken as 0).
fn sym_sqrt(a: &[f64], d: usize) -> Vec<f64> {
    let (w, v) = sym_eigen(a, d);
    let mut out = vec![0f64; d * d];
    for k in 0..d {
        let s = w[k].max(0.0).sqrt();
        if s == 0.0 {
            continue;
        }
        for i in 0..d {
            let vi = v[i * d + k] * s;
            for j in 0..d {
                out[i * d + j] += vi * v[j * d + k];
            }
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0f64; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

/// The Frechet distance between Gaussians fitted to two sets of feature vectors (the FID of
/// Heusel et al., arXiv 1706.08500, on any features):
/// `|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^(1/2) S_b S_a^(1/2))^(1/2))`, with covariances
/// `ddof = 1` as `numpy.cov` and the matrix square roots from symmetric eigen-decompositions
/// (so no complex parts arise, unlike `scipy.linalg.sqrtm` of the non-symmetric product).
///
/// For images and scalograms, pass pooled EfficientNet-Lite0 features ([`pool_features`] of
/// `dmad_score::EfficientNetExtractor`'s layers) of real and generated normal samples.
///
/// # Shapes
/// `a`: `[n, d]`, `b`: `[m, d]`, `n, m >= 2`.
///
/// # Errors
/// [`Error::ShapeMismatch`] for another rank, fewer than 2 rows or different widths;
/// [`Error::InvalidConfig`] for non-finite values.
pub fn frechet_distance(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (va, na, da) = rows_of(a, "frechet_distance: a")?;
    let (vb, nb, db) = rows_of(b, "frechet_distance: b")?;
    if da != db {
        return Err(Error::shape(
            "frechet_distance: b",
            format!("[m, {da}] (as wide as a)"),
            b.dims(),
        ));
    }
    let d = da;
    let (mu_a, s_a) = mean_cov(&va, na, d);
    let (mu_b, s_b) = mean_cov(&vb, nb, d);
    let diff: f64 = mu_a.iter().zip(&mu_b).map(|(x, y)| (x - y).powi(2)).sum();
    let sq_a = sym_sqrt(&s_a, d);
    let mut m = matmul(&matmul(&sq_a, &s_b, d), &sq_a, d);
    // Symmetrise away rounding before the eigen-decomposition.
    for i in 0..d {
        for j in i + 1..d {
            let s = 0.5 * (m[i * d + j] + m[j * d + i]);
            m[i * d + j] = s;
            m[j * d + i] = s;
        }
    }
    let (w, _) = sym_eigen(&m, d);
    let tr_sqrt: f64 = w.iter().map(|x| x.max(0.0).sqrt()).sum();
    let tr = |s: &[f64]| (0..d).map(|i| s[i * d + i]).sum::<f64>();
    Ok((diff + tr(&s_a) + tr(&s_b) - 2.0 * tr_sqrt).max(0.0))
}

/// Global average pooling of feature layers (`[n, c_l, ...]` each) into one vector per sample,
/// `[n, sum c_l]`, in layer order.
///
/// # Errors
/// [`Error::ShapeMismatch`] for no layer, a layer of rank below 2 or different batch sizes.
pub fn pool_features(layers: &[Tensor]) -> Result<Tensor> {
    let first = layers
        .first()
        .ok_or_else(|| Error::shape("pool_features: layers", "at least one layer", &[0]))?;
    let n = first.dim(0)?;
    let mut pooled = Vec::with_capacity(layers.len());
    for l in layers {
        if l.rank() < 2 || l.dim(0)? != n {
            return Err(Error::shape(
                "pool_features: layer",
                format!("[{n}, channels, ...]"),
                l.dims(),
            ));
        }
        let c = l.dim(1)?;
        pooled.push(l.to_dtype(DType::F32)?.reshape((n, c, ()))?.mean(2)?);
    }
    Ok(Tensor::cat(&pooled, 1)?)
}

/// The Frechet distance between the pooled features of real and generated samples through a
/// frozen extractor (for images and scalograms, `dmad_score::EfficientNetExtractor`: the FID
/// of the issue on EfficientNet-Lite0 features): both sets go through `extractor` in batches of
/// `batch_size`, each layer is average-pooled ([`pool_features`]) and [`frechet_distance`]
/// compares the two sets of vectors.
///
/// # Errors
/// [`Error::InvalidConfig`] for `batch_size = 0`; errors of the extractor; as
/// [`frechet_distance`].
pub fn feature_frechet_distance<F: FeatureExtractor + ?Sized>(
    extractor: &F,
    real: &Tensor,
    generated: &Tensor,
    batch_size: usize,
) -> Result<f64> {
    if batch_size == 0 {
        return Err(Error::config("batch_size", "must be at least 1"));
    }
    let pooled = |x: &Tensor| -> Result<Tensor> {
        let n = x.dim(0)?;
        let mut parts = Vec::new();
        let mut start = 0;
        while start < n {
            let len = batch_size.min(n - start);
            parts.push(pool_features(
                &extractor.features(&x.narrow(0, start, len)?)?,
            )?);
            start += len;
        }
        if parts.is_empty() {
            return Err(Error::shape(
                "feature_frechet_distance",
                "[n >= 2, ...]",
                x.dims(),
            ));
        }
        Ok(Tensor::cat(&parts, 0)?)
    };
    frechet_distance(&pooled(real)?, &pooled(generated)?)
}

/// How the classifier two-sample test runs.
#[derive(Debug, Clone, PartialEq)]
pub struct C2stConfig {
    /// Seed of the train/test split. Default 0.
    pub seed: u64,
    /// Fraction of the samples held out for the accuracy, in `(0, 1)`. Default 0.5.
    pub test_fraction: f64,
    /// Neighbours of the k-nearest-neighbour discriminator. Default 5.
    pub k: usize,
    /// Full-batch gradient-descent steps of the logistic regression. Default 300.
    pub steps: usize,
    /// Its learning rate. Default 0.5.
    pub learning_rate: f64,
    /// Its L2 penalty. Default 1e-3.
    pub l2: f64,
}

impl Default for C2stConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            test_fraction: 0.5,
            k: 5,
            steps: 300,
            learning_rate: 0.5,
            l2: 1e-3,
        }
    }
}

/// The held-out accuracies of two discriminators between real and generated samples: 0.5 when
/// the generated samples cannot be told apart, 1 when they always can (Lopez-Paz & Oquab,
/// *Revisiting Classifier Two-Sample Tests*, arXiv 1610.06545).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct C2st {
    /// Accuracy of a logistic regression on standardised features.
    pub logistic: f64,
    /// Accuracy of a k-nearest-neighbour vote (Euclidean, standardised features).
    pub knn: f64,
    /// How many samples were held out.
    pub n_test: usize,
}

/// The classifier two-sample test between `real` and `generated` samples (rows, or windows
/// flattened to rows): both are pooled, labelled, shuffled with `cfg.seed`, split, standardised
/// with the training part's statistics, and two discriminators are trained and scored on the
/// held-out part.
///
/// # Shapes
/// `real`: `[n, ...]`, `generated`: `[m, ...]` with the same sample shape; each is flattened
/// to rows.
///
/// # Errors
/// [`Error::ShapeMismatch`] for different sample shapes or fewer than 2 samples of either;
/// [`Error::InvalidConfig`] for a test fraction outside `(0, 1)`, `k = 0`, non-finite values,
/// or a split that leaves a part empty.
pub fn two_sample_test(real: &Tensor, generated: &Tensor, cfg: &C2stConfig) -> Result<C2st> {
    if real.dims().get(1..) != generated.dims().get(1..) {
        return Err(Error::shape(
            "two_sample_test: generated",
            format!("[m, {:?}] (real's sample shape)", real.dims().get(1..)),
            generated.dims(),
        ));
    }
    if !(cfg.test_fraction > 0.0 && cfg.test_fraction < 1.0) || cfg.k == 0 {
        return Err(Error::config(
            "test_fraction/k",
            format!(
                "need 0 < test_fraction < 1 and k >= 1, got {} and {}",
                cfg.test_fraction, cfg.k
            ),
        ));
    }
    let flat = |x: &Tensor| -> Result<Tensor> {
        let n = x.dim(0)?;
        Ok(x.reshape((n, ()))?)
    };
    let (va, na, d) = rows_of(&flat(real)?, "two_sample_test: real")?;
    let (vb, nb, _) = rows_of(&flat(generated)?, "two_sample_test: generated")?;
    let n = na + nb;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
    let n_test = ((n as f64) * cfg.test_fraction).round() as usize;
    if n_test == 0 || n_test >= n {
        return Err(Error::config(
            "test_fraction",
            format!("{} of {n} samples leaves a part empty", cfg.test_fraction),
        ));
    }
    let row = |i: usize| -> &[f64] {
        if i < na {
            &va[i * d..(i + 1) * d]
        } else {
            &vb[(i - na) * d..(i - na + 1) * d]
        }
    };
    let label = |i: usize| if i < na { 0.0 } else { 1.0 };
    let (test, train) = idx.split_at(n_test);
    // Standardise with the training part's statistics.
    let mut mu = vec![0f64; d];
    let mut sd = vec![0f64; d];
    for &i in train {
        row(i).iter().zip(&mut mu).for_each(|(x, m)| *m += x);
    }
    mu.iter_mut().for_each(|m| *m /= train.len() as f64);
    for &i in train {
        for j in 0..d {
            sd[j] += (row(i)[j] - mu[j]).powi(2);
        }
    }
    sd.iter_mut()
        .for_each(|s| *s = (*s / train.len() as f64).sqrt().max(1e-12));
    let z = |i: usize| -> Vec<f64> {
        row(i)
            .iter()
            .zip(mu.iter().zip(&sd))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    };
    let ztrain: Vec<Vec<f64>> = train.iter().map(|&i| z(i)).collect();
    let ytrain: Vec<f64> = train.iter().map(|&i| label(i)).collect();
    let ztest: Vec<Vec<f64>> = test.iter().map(|&i| z(i)).collect();
    let ytest: Vec<f64> = test.iter().map(|&i| label(i)).collect();

    // Logistic regression, full-batch gradient descent.
    let mut w = vec![0f64; d];
    let mut b = 0f64;
    let m = ztrain.len() as f64;
    for _ in 0..cfg.steps {
        let mut gw = vec![0f64; d];
        let mut gb = 0f64;
        for (x, y) in ztrain.iter().zip(&ytrain) {
            let p = 1.0 / (1.0 + (-(dot(&w, x) + b)).exp());
            let e = p - y;
            gw.iter_mut().zip(x).for_each(|(g, xi)| *g += e * xi);
            gb += e;
        }
        for j in 0..d {
            w[j] -= cfg.learning_rate * (gw[j] / m + cfg.l2 * w[j]);
        }
        b -= cfg.learning_rate * gb / m;
    }
    let logistic = ztest
        .iter()
        .zip(&ytest)
        .filter(|(x, y)| ((dot(&w, x) + b > 0.0) as u8 as f64) == **y)
        .count() as f64
        / ztest.len() as f64;

    // k nearest neighbours.
    let k = cfg.k.min(ztrain.len());
    let knn = ztest
        .iter()
        .zip(&ytest)
        .filter(|(x, y)| {
            let mut dist: Vec<(f64, f64)> = ztrain
                .iter()
                .zip(&ytrain)
                .map(|(t, l)| {
                    (
                        t.iter().zip(x.iter()).map(|(a, b)| (a - b).powi(2)).sum(),
                        *l,
                    )
                })
                .collect();
            dist.sort_by(|a, b| a.0.total_cmp(&b.0));
            let votes: f64 = dist[..k].iter().map(|p| p.1).sum();
            // Ties go to "real".
            ((votes * 2.0 > k as f64) as u8 as f64) == **y
        })
        .count() as f64
        / ztest.len() as f64;
    Ok(C2st {
        logistic,
        knn,
        n_test,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_eigen_reconstructs_the_matrix() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let (w, v) = sym_eigen(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| v[i * 3 + k] * w[k] * v[j * 3 + k]).sum();
                assert!((r - a[i * 3 + j]).abs() < 1e-12, "{i},{j}: {r}");
            }
        }
        let s = sym_sqrt(&a, 3);
        let s2 = matmul(&s, &s, 3);
        for i in 0..9 {
            assert!((s2[i] - a[i]).abs() < 1e-12);
        }
    }
}
