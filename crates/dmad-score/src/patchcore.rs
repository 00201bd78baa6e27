//! PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", arXiv
//! 2106.08265): a memory bank of normal patch features, thinned by a greedy k-center coreset,
//! and each test patch scored by its distance to the nearest bank entry.
//!
//! dmad uses it as the strongest non-diffusion peer for images and scalograms (issue 17) on
//! the patch features of [`crate::patch`]; it is a usable detector in its own right.

use candle_core::{DType, Device, Tensor, D};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::{Error, Result};

/// Configuration of [`PatchCore`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PatchCoreConfig {
    /// The share of the training patches kept in the memory bank, in `(0, 1]` (1 keeps every
    /// patch). Default 0.01 (PatchCore's 1 % setting).
    pub coreset_ratio: f64,
    /// Seed of the coreset's first centre. Default 0.
    pub seed: u64,
}

impl Default for PatchCoreConfig {
    fn default() -> Self {
        Self {
            coreset_ratio: 0.01,
            seed: 0,
        }
    }
}

/// A memory bank of normal patch features `[m, dims]`.
#[derive(Debug, Clone)]
pub struct PatchCore {
    bank: Tensor,
    /// `|b|^2` of every bank row, `[1, m]`.
    bank_sq: Tensor,
}

impl PatchCore {
    /// Builds the memory bank from the training patches `rows` (`[n, dims]`): a greedy
    /// k-center coreset of `max(1, round(ratio * n))` rows.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (field `coreset_ratio`) for a ratio outside `(0,
    /// 1]` and (field `rows`) for non-finite rows; [`dmad_core::Error::ShapeMismatch`] for
    /// rows that are not `[n >= 1, dims >= 1]`.
    pub fn fit(cfg: &PatchCoreConfig, rows: &Tensor) -> Result<Self> {
        if !(cfg.coreset_ratio > 0.0 && cfg.coreset_ratio <= 1.0) {
            return Err(Error::config(
                "coreset_ratio",
                format!("{} is not in (0, 1]", cfg.coreset_ratio),
            ));
        }
        let (n, _) = check_rows(rows, "PatchCore::fit: rows")?;
        let m = ((cfg.coreset_ratio * n as f64).round() as usize).clamp(1, n);
        let bank = if m == n {
            rows.to_dtype(DType::F32)?
        } else {
            let idx = k_center_greedy(rows, m, cfg.seed)?;
            let idx: Vec<u32> = idx.into_iter().map(|i| i as u32).collect();
            let idx = Tensor::new(idx.as_slice(), rows.device())?;
            rows.to_dtype(DType::F32)?.index_select(&idx, 0)?
        };
        Self::from_bank(bank)
    }

    /// A detector with the given memory bank `[m, dims]` (for example one saved earlier).
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] for a bank that is not `[m >= 1, dims >= 1]`.
    pub fn from_bank(bank: Tensor) -> Result<Self> {
        check_rows(&bank, "PatchCore: memory bank")?;
        let bank = bank.to_dtype(DType::F32)?.contiguous()?;
        let bank_sq = bank.sqr()?.sum_keepdim(1)?.t()?.contiguous()?;
        Ok(Self { bank, bank_sq })
    }

    /// The memory bank `[m, dims]`.
    pub fn bank(&self) -> &Tensor {
        &self.bank
    }

    /// The Euclidean distance of every row of `rows` (`[n, dims]`) to its nearest bank row.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] when the rows' width differs from the bank's.
    pub fn nearest_distances(&self, rows: &Tensor) -> Result<Vec<f32>> {
        let (n, dims) = check_rows(rows, "PatchCore::nearest_distances: rows")?;
        if dims != self.bank.dim(1)? {
            return Err(Error::shape(
                "PatchCore::nearest_distances: rows",
                format!("[n, {}] (the bank's width)", self.bank.dim(1)?),
                rows.dims(),
            ));
        }
        let rows = rows.to_dtype(DType::F32)?;
        let bank_t = self.bank.t()?.contiguous()?;
        // Chunks keep the [chunk, m] distance matrix small.
        const CHUNK: usize = 4096;
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            let a = rows.narrow(0, start, len)?.contiguous()?;
            let a_sq = a.sqr()?.sum_keepdim(1)?;
            let d2 = a_sq
                .broadcast_add(&self.bank_sq)?
                .sub(&(a.matmul(&bank_t)? * 2.0)?)?;
            let min = d2.min(D::Minus1)?.clamp(0f32, f32::MAX)?.sqrt()?;
            out.extend(min.to_vec1::<f32>()?);
            start += len;
        }
        Ok(out)
    }
}

fn check_rows(rows: &Tensor, context: &'static str) -> Result<(usize, usize)> {
    match rows.dims() {
        &[n, d] if n > 0 && d > 0 => Ok((n, d)),
        got => Err(Error::shape(context, "[rows >= 1, dims >= 1]", got)),
    }
}

/// Greedy k-center selection (Sener and Savarese, arXiv 1708.00489; PatchCore's coreset): `m`
/// row indices of `rows` (`[n, dims]`), the first drawn from `seed`, each next one the row
/// farthest from every row chosen so far. Returns the indices in the order chosen.
///
/// Exact, and accelerated with the triangle inequality (as Elkan's k-means): a row whose
/// nearest centre `a` lies at distance `r` cannot come closer to a new centre `c` when
/// `|c - a| >= 2 r`, so its features are not read again. Late in the selection almost every
/// row is skipped, which turns a scan of the whole bank per centre into a scan of two small
/// arrays.
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] for rows that are not `[n >= 1, dims >= 1]`;
/// [`dmad_core::Error::InvalidConfig`] (field `m`) for `m` of 0 or more than `n`, and (field
/// `rows`) for non-finite values.
pub fn k_center_greedy(rows: &Tensor, m: usize, seed: u64) -> Result<Vec<usize>> {
    let (n, dims) = check_rows(rows, "k_center_greedy: rows")?;
    if m == 0 || m > n {
        return Err(Error::config(
            "m",
            format!("the coreset size must be in [1, {n}], got {m}"),
        ));
    }
    let data: Vec<f32> = rows
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1()?;
    if data.iter().any(|v| !v.is_finite()) {
        return Err(Error::config(
            "rows",
            "the patch features hold non-finite values",
        ));
    }
    let row = |r: usize| &data[r * dims..(r + 1) * dims];
    let sq =
        |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum() };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut chosen: Vec<usize> = Vec::with_capacity(m);
    // Per row: the distance to its nearest chosen centre and that centre's position in
    // `chosen`.
    let mut min_d = vec![f32::INFINITY; n];
    let mut nearest = vec![0u32; n];
    let mut next = rng.random_range(0..n);
    const BLOCK: usize = 4096;
    for k in 0..m {
        chosen.push(next);
        let c = row(next);
        // Distances from the new centre to the earlier ones.
        let to_centres: Vec<f32> = chosen[..k].iter().map(|&j| sq(row(j), c).sqrt()).collect();
        let (far, _) = min_d
            .par_chunks_mut(BLOCK)
            .zip(nearest.par_chunks_mut(BLOCK))
            .enumerate()
            .map(|(b, (md_block, nn_block))| {
                let mut best = (0usize, f32::NEG_INFINITY);
                for (i, (md, nn)) in md_block.iter_mut().zip(nn_block.iter_mut()).enumerate() {
                    let r = b * BLOCK + i;
                    let skip = k > 0 && to_centres[*nn as usize] >= 2.0 * *md;
                    if !skip {
                        let d = sq(row(r), c).sqrt();
                        if d < *md {
                            *md = d;
                            *nn = k as u32;
                        }
                    }
                    if *md > best.1 {
                        best = (r, *md);
                    }
                }
                best
            })
            .reduce(
                || (0, f32::NEG_INFINITY),
                |a, b| {
                    if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) {
                        b
                    } else {
                        a
                    }
                },
            );
        next = far;
    }
    Ok(chosen)
}

/// The plain greedy k-center, scanning every row for every centre: the oracle of the tests.
#[cfg(test)]
fn k_center_greedy_plain(data: &[f32], dims: usize, m: usize, first: usize) -> Vec<usize> {
    let n = data.len() / dims;
    let mut min_d = vec![f32::INFINITY; n];
    let mut chosen = vec![first];
    for _ in 1..m {
        let c = &data[chosen.last().unwrap() * dims..][..dims];
        for (r, md) in min_d.iter_mut().enumerate() {
            let d: f32 = data[r * dims..][..dims]
                .iter()
                .zip(c)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            *md = md.min(d.sqrt());
        }
        let far = (0..n).fold(0, |best, r| if min_d[r] > min_d[best] { r } else { best });
        chosen.push(far);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = v.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (v.len(), 2), &Device::Cpu).unwrap()
    }

    #[test]
    fn the_coreset_takes_the_farthest_points_first() {
        // A tight cluster near the origin and three far corners.
        let r = rows(&[
            [0.0, 0.0],
            [0.1, 0.0],
            [0.0, 0.1],
            [10.0, 0.0],
            [0.0, 10.0],
            [10.0, 10.0],
        ]);
        let idx = k_center_greedy(&r, 4, 0).unwrap();
        assert_eq!(idx.len(), 4);
        let mut corners: Vec<usize> = idx.iter().copied().filter(|&i| i >= 3).collect();
        corners.sort();
        assert_eq!(corners, [3, 4, 5], "{idx:?}");
        // Seeded: the same selection twice.
        assert_eq!(idx, k_center_greedy(&r, 4, 0).unwrap());
    }

    #[test]
    fn the_accelerated_coreset_matches_the_plain_one() {
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for (n, dims, m) in [(500, 8, 50), (2000, 16, 120), (300, 3, 300)] {
            // Clustered data, where the pruning skips most rows.
            let data: Vec<f32> = (0..n * dims)
                .map(|i| {
                    let cluster = (i / dims % 7) as f32 * 3.0;
                    let z: f64 = StandardNormal.sample(&mut rng);
                    cluster + z as f32 * 0.5
                })
                .collect();
            let t = Tensor::from_vec(data.clone(), (n, dims), &Device::Cpu).unwrap();
            let fast = k_center_greedy(&t, m, 4).unwrap();
            let plain = k_center_greedy_plain(&data, dims, m, fast[0]);
            assert_eq!(fast, plain, "n {n}, dims {dims}, m {m}");
        }
    }

    #[test]
    fn nearest_distances_match_brute_force() {
        let bank = rows(&[[0.0, 0.0], [3.0, 4.0]]);
        let pc = PatchCore::from_bank(bank).unwrap();
        let q = rows(&[[0.0, 1.0], [3.0, 4.0], [6.0, 8.0]]);
        let d = pc.nearest_distances(&q).unwrap();
        for (got, want) in d.iter().zip([1.0f32, 0.0, 5.0]) {
            assert!((got - want).abs() < 1e-4, "{d:?}");
        }
    }

    #[test]
    fn a_full_bank_keeps_every_row_and_scores_them_zero() {
        let r = rows(&[[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]]);
        let cfg = PatchCoreConfig {
            coreset_ratio: 1.0,
            seed: 3,
        };
        let pc = PatchCore::fit(&cfg, &r).unwrap();
        assert_eq!(pc.bank().dims(), &[3, 2]);
        assert!(pc.nearest_distances(&r).unwrap().iter().all(|d| *d < 1e-3));
    }

    #[test]
    fn bad_ratios_and_widths_are_named() {
        let r = rows(&[[1.0, 2.0]]);
        let cfg = PatchCoreConfig {
            coreset_ratio: 0.0,
            seed: 0,
        };
        let e = PatchCore::fit(&cfg, &r).unwrap_err().to_string();
        assert!(e.contains("coreset_ratio"), "{e}");
        let pc = PatchCore::from_bank(r).unwrap();
        let wide = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let e = pc.nearest_distances(&wide).unwrap_err().to_string();
        assert!(e.contains("bank's width"), "{e}");
    }
}
