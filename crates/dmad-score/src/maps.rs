//! Anomaly-map post-processing: Gaussian smoothing, resizing to the input, and scores per
//! point of a series from overlapping windows.
//!
//! Maps are `[batch, height, width]` (images, scalograms) or `[batch, length]` (series
//! windows), as [`crate::ScoreOutput::map`].

use candle_core::{DType, Tensor};

use crate::efficientnet::resize_bilinear;
use crate::{Error, Result};

pub use dmad_data::timeseries::Reduce;

/// How far the Gaussian kernel reaches, in standard deviations (scipy's `truncate`).
pub const GAUSSIAN_TRUNCATE: f64 = 4.0;

/// The normalised 1-D Gaussian kernel of `sigma`, `2r + 1` taps with
/// `r = floor(GAUSSIAN_TRUNCATE * sigma + 0.5)`, as `scipy.ndimage.gaussian_filter1d`.
///
/// # Errors
/// [`dmad_core::Error::InvalidConfig`] (field `sigma`) unless `sigma` is positive and finite.
pub fn gaussian_kernel(sigma: f64) -> Result<Vec<f64>> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::config(
            "sigma",
            format!("must be positive and finite, got {sigma}"),
        ));
    }
    let r = (GAUSSIAN_TRUNCATE * sigma + 0.5) as i64;
    let w: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp())
        .collect();
    let s: f64 = w.iter().sum();
    Ok(w.into_iter().map(|v| v / s).collect())
}

/// scipy's `reflect` boundary (`d c b a | a b c d | d c b a`): the index read for `i`.
fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    let p = 2 * n;
    let m = i.rem_euclid(p);
    (if m < n { m } else { p - 1 - m }) as usize
}

/// Correlates every run of `len` values (stride `stride`, `count` runs starting at the
/// offsets `starts`) with `kernel`, with reflected boundaries.
fn smooth_axis(data: &mut [f64], len: usize, stride: usize, starts: &[usize], kernel: &[f64]) {
    let r = (kernel.len() / 2) as i64;
    let mut line = vec![0f64; len];
    for &s in starts {
        for (i, v) in line.iter_mut().enumerate() {
            *v = data[s + i * stride];
        }
        for i in 0..len {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                acc += w * line[reflect(i as i64 + k as i64 - r, len)];
            }
            data[s + i * stride] = acc;
        }
    }
}

/// Smooths anomaly maps with a Gaussian of standard deviation `sigma` (in positions), along
/// the last axis of `[batch, length]` maps and the last two axes of `[batch, height, width]`
/// (or `[batch, channel, height, width]`) maps. Separable, with scipy's defaults: reflected
/// boundaries and a kernel truncated at 4 sigma, computed in `f64`: the result equals
/// `scipy.ndimage.gaussian_filter(map[b], sigma)` per sample.
///
/// `sigma = 0` returns the map unchanged.
///
/// # Shapes
/// `map`: `[batch, length]`, `[batch, height, width]` or `[batch, channel, height, width]`;
/// returns the same shape, dtype and device.
///
/// # Errors
/// [`dmad_core::Error::InvalidConfig`] (field `sigma`) for a negative or non-finite sigma,
/// [`dmad_core::Error::ShapeMismatch`] for another rank or an empty axis.
pub fn gaussian_smooth(map: &Tensor, sigma: f64) -> Result<Tensor> {
    let dims = map.dims().to_vec();
    if !(2..=4).contains(&dims.len()) || dims.contains(&0) {
        return Err(Error::shape(
            "gaussian_smooth: map",
            "[batch, length], [batch, height, width] or [batch, channel, height, width], no empty axis",
            &dims,
        ));
    }
    if sigma == 0.0 {
        return Ok(map.clone());
    }
    let kernel = gaussian_kernel(sigma)?;
    let mut data: Vec<f64> = map.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let rank = dims.len();
    let w = dims[rank - 1];
    // The last axis: runs of `w` contiguous values.
    let rows: Vec<usize> = (0..data.len() / w).map(|i| i * w).collect();
    smooth_axis(&mut data, w, 1, &rows, &kernel);
    if rank >= 3 {
        let h = dims[rank - 2];
        let planes = data.len() / (h * w);
        let starts: Vec<usize> = (0..planes)
            .flat_map(|p| (0..w).map(move |c| p * h * w + c))
            .collect();
        smooth_axis(&mut data, h, w, &starts, &kernel);
    }
    Ok(Tensor::from_vec(data, dims, map.device())?.to_dtype(map.dtype())?)
}

/// Resizes anomaly maps to `size` with bilinear interpolation (PyTorch's
/// `F.interpolate(mode="bilinear", align_corners=False)`; linear for series): `[height,
/// width]` for `[batch, height, width]` maps, `[length]` for `[batch, length]` maps.
///
/// # Shapes
/// `map`: `[batch, h, w]` or `[batch, l]`; returns `[batch, size[0], size[1]]` or
/// `[batch, size[0]]`.
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] if the map is not rank 2 or 3, or `size` does not have
/// one entry per spatial axis; [`dmad_core::Error::InvalidConfig`] for a zero size.
pub fn resize_map(map: &Tensor, size: &[usize]) -> Result<Tensor> {
    let dims = map.dims();
    match (dims.len(), size.len()) {
        (3, 2) => {
            if dims[1..] == size[..] {
                return Ok(map.clone());
            }
            Ok(resize_bilinear(&map.unsqueeze(1)?, size[0], size[1])?.squeeze(1)?)
        }
        (2, 1) => {
            if dims[1] == size[0] {
                return Ok(map.clone());
            }
            let (b, l) = (dims[0], dims[1]);
            let x = map.reshape((b, 1, 1, l))?;
            Ok(resize_bilinear(&x, 1, size[0])?.reshape((b, size[0]))?)
        }
        _ => Err(Error::shape(
            "resize_map: map (with one target size per spatial axis)",
            format!("[batch, height, width] with a 2-entry size or [batch, length] with a 1-entry size; size {size:?}"),
            dims,
        )),
    }
}

/// One score per point of an `n`-point series from per-step scores of overlapping windows:
/// each point gets the mean or the max (`reduce`) over the windows that cover it. The windows
/// are those of `dmad_data::timeseries::windows` (starts from
/// `dmad_data::timeseries::window_starts`).
///
/// # Shapes
/// `step_map`: `[windows, length]`, for example the map of a series scorer; `starts`: one
/// start per window. Returns `n` scores.
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] if `step_map` is not `[starts.len(), length]`;
/// [`Error::Data`] if a window runs past `n` or a point is not covered.
pub fn series_point_scores(
    step_map: &Tensor,
    starts: &[usize],
    n: usize,
    reduce: Reduce,
) -> Result<Vec<f32>> {
    let dims = step_map.dims();
    if dims.len() != 2 || dims[0] != starts.len() || dims[1] == 0 {
        return Err(Error::shape(
            "series_point_scores: step_map",
            format!("[{}, length] (one row per window start)", starts.len()),
            dims,
        ));
    }
    let length = dims[1];
    let v = step_map
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(dmad_data::timeseries::steps_to_points(
        &v, starts, length, n, reduce,
    )?)
}

/// One score per point of an `n`-point series from one score per window (mean or max over the
/// windows covering each point); see [`series_point_scores`] for per-step scores.
///
/// # Errors
/// As `dmad_data::timeseries::window_to_points`, wrapped in [`Error::Data`].
pub fn window_point_scores(
    scores: &[f32],
    starts: &[usize],
    length: usize,
    n: usize,
    reduce: Reduce,
) -> Result<Vec<f32>> {
    Ok(dmad_data::timeseries::window_to_points(
        scores, starts, length, n, reduce,
    )?)
}

/// Which per-sample score a [`Smoothed`] scorer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MapScore {
    /// The inner scorer's score, unchanged. The default.
    #[default]
    Inner,
    /// The maximum of the smoothed map (common for images: one bright defect counts).
    Max,
    /// The mean of the smoothed map.
    Mean,
    /// The mean of the `k` largest values of the smoothed map (more robust than the maximum
    /// to one noisy position; `k` at least 1, capped at the map's size).
    TopKMean {
        /// Positions averaged.
        k: usize,
    },
}

/// One score per map (`[batch, ...]`) by `how`; [`MapScore::Inner`] has no map summary.
///
/// # Errors
/// [`dmad_core::Error::InvalidConfig`] (field `map_score`) for [`MapScore::Inner`] or a top-k
/// mean with `k = 0`; [`dmad_core::Error::ShapeMismatch`] for an empty batch or map.
pub fn reduce_maps(map: &Tensor, how: MapScore) -> Result<Vec<f32>> {
    let b = map.dim(0)?;
    let flat = map.to_dtype(DType::F32)?.reshape((b, ()))?;
    if b == 0 || flat.dim(1)? == 0 {
        return Err(Error::shape(
            "reduce_maps: map",
            "[batch >= 1, ...] with positions",
            map.dims(),
        ));
    }
    Ok(match how {
        MapScore::Max => flat.max(1)?.to_vec1::<f32>()?,
        MapScore::Mean => flat.mean(1)?.to_vec1::<f32>()?,
        MapScore::TopKMean { k } if k >= 1 => {
            let k = k.min(flat.dim(1)?);
            flat.to_vec2::<f32>()?
                .into_iter()
                .map(|mut v| {
                    v.sort_unstable_by(|a, b| b.total_cmp(a));
                    v[..k].iter().sum::<f32>() / k as f32
                })
                .collect()
        }
        MapScore::TopKMean { .. } => {
            return Err(Error::config("map_score", "a top-k mean needs k >= 1"))
        }
        MapScore::Inner => {
            return Err(Error::config(
                "map_score",
                "MapScore::Inner is the inner scorer's score, not a summary of a map",
            ))
        }
    })
}

/// Anomaly maps `[n, out_h, out_w]` from per-patch scores (`n * h * w`, image by image, each
/// image's patches in row-major order, as [`crate::patch::to_rows`] lays them out): resized
/// bilinearly to the output size and smoothed with a Gaussian of `sigma` pixels (0: none).
///
/// # Errors
/// [`dmad_core::Error::ShapeMismatch`] when `patch_scores` does not hold `n * h * w` values;
/// the errors of [`resize_map`] and [`gaussian_smooth`].
pub fn patch_maps(
    patch_scores: &[f32],
    n: usize,
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
    sigma: f64,
    device: &candle_core::Device,
) -> Result<Tensor> {
    if patch_scores.len() != n * h * w {
        return Err(Error::shape(
            "patch_maps: patch scores",
            format!("{n} x {h} x {w} values"),
            &[patch_scores.len()],
        ));
    }
    let map = Tensor::from_slice(patch_scores, (n, h, w), device)?;
    let map = resize_map(&map, &[out_h, out_w])?;
    if sigma > 0.0 {
        gaussian_smooth(&map, sigma)
    } else {
        Ok(map)
    }
}

/// Wraps a scorer and smooths its maps with [`gaussian_smooth`]; the score is the inner
/// scorer's or a summary of the smoothed map ([`MapScore`]). Scorers without maps pass through
/// unchanged (with [`MapScore::Inner`]).
#[derive(Debug, Clone)]
pub struct Smoothed<S> {
    inner: S,
    sigma: f64,
    score: MapScore,
}

impl<S: crate::Scorer> Smoothed<S> {
    /// Smooths the maps of `inner` with a Gaussian of standard deviation `sigma` positions
    /// (0: no smoothing).
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (field `sigma`) for a negative or non-finite sigma.
    pub fn new(inner: S, sigma: f64, score: MapScore) -> Result<Self> {
        if sigma != 0.0 {
            gaussian_kernel(sigma)?;
        }
        Ok(Self {
            inner,
            sigma,
            score,
        })
    }

    /// The wrapped scorer.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: crate::Scorer> crate::Scorer for Smoothed<S> {
    fn score(&self, x: &Tensor) -> Result<crate::ScoreOutput> {
        smooth_and_reduce(self.inner.score(x)?, self.sigma, self.score)
    }
}

/// Smooths the map of `out` with a Gaussian of `sigma` positions ([`gaussian_smooth`]; 0: none)
/// and replaces its scores by the summary `how` of the smoothed map ([`MapScore::Inner`]:
/// keeps them). An output without a map passes through with [`MapScore::Inner`].
///
/// # Errors
/// [`dmad_core::Error::Unsupported`] for a map summary of an output without a map; the errors
/// of [`gaussian_smooth`] and [`reduce_maps`].
pub fn smooth_and_reduce(
    out: crate::ScoreOutput,
    sigma: f64,
    how: MapScore,
) -> Result<crate::ScoreOutput> {
    let Some(map) = out.map else {
        if how != MapScore::Inner {
            return Err(Error::Core(dmad_core::Error::Unsupported(
                "a map score (MapScore::Max/Mean) of a scorer without maps",
            )));
        }
        return Ok(out);
    };
    let map = gaussian_smooth(&map, sigma)?;
    let scores = match how {
        MapScore::Inner => out.scores,
        how => reduce_maps(&map, how)?,
    };
    Ok(crate::ScoreOutput {
        scores,
        map: Some(map),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Direct 2-D correlation with a 2-D Gaussian kernel and reflected boundaries.
    fn direct_2d(x: &[f64], h: usize, w: usize, sigma: f64) -> Vec<f64> {
        let k = gaussian_kernel(sigma).unwrap();
        let r = (k.len() / 2) as i64;
        let mut out = vec![0.0; h * w];
        for i in 0..h {
            for j in 0..w {
                let mut acc = 0.0;
                for (a, ka) in k.iter().enumerate() {
                    for (b, kb) in k.iter().enumerate() {
                        let ii = reflect(i as i64 + a as i64 - r, h);
                        let jj = reflect(j as i64 + b as i64 - r, w);
                        acc += ka * kb * x[ii * w + jj];
                    }
                }
                out[i * w + j] = acc;
            }
        }
        out
    }

    #[test]
    fn reflect_matches_scipy_convention() {
        // n = 3: ... 2 2 1 0 | 0 1 2 | 2 1 0 | 0 ... (i = -4 .. 6)
        let got: Vec<usize> = (-4..7).map(|i| reflect(i, 3)).collect();
        assert_eq!(got, [2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]);
        assert_eq!(reflect(5, 1), 0);
    }

    #[test]
    fn separable_equals_direct_2d_over_sizes() {
        let dev = Device::Cpu;
        for (h, w, sigma) in [
            (1, 1, 1.0),
            (5, 7, 0.8),
            (9, 4, 2.0),
            (3, 12, 4.0),
            (16, 16, 1.5),
        ] {
            let n = h * w;
            let x: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
            let t = Tensor::from_vec(x.clone(), (1, h, w), &dev).unwrap();
            let got = gaussian_smooth(&t, sigma)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let want = direct_2d(&x, h, w, sigma);
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-12 * e.abs().max(1.0),
                    "{h}x{w} s={sigma}"
                );
            }
        }
    }

    #[test]
    fn matches_scipy_gaussian_filter1d() {
        // scipy 1.17.1 `gaussian_filter1d(np.arange(6.0), 1.0)` and of a unit impulse at 2.
        let x = Tensor::new(
            &[[0f64, 1., 2., 3., 4., 5.], [0., 0., 1., 0., 0., 0.]],
            &Device::Cpu,
        )
        .unwrap();
        let y = gaussian_smooth(&x, 1.0).unwrap().to_vec2::<f64>().unwrap();
        let want = [
            [
                0.4270409504,
                1.0679558654,
                2.0046995229,
                2.9953004771,
                3.9320441346,
                4.5729590496,
            ],
            [
                0.058422989,
                0.2421052763,
                0.3989434694,
                0.2419714457,
                0.0539911274,
                0.0045656922,
            ],
        ];
        for (row, wrow) in y.iter().zip(&want) {
            for (g, e) in row.iter().zip(wrow) {
                assert!((g - e).abs() < 1e-9, "{g} vs {e}");
            }
        }
    }

    #[test]
    fn smoothing_keeps_shape_and_rejects_bad_sigma() {
        let x = Tensor::ones((2, 1, 5, 6), DType::F32, &Device::Cpu).unwrap();
        let y = gaussian_smooth(&x, 1.3).unwrap();
        assert_eq!(y.dims(), &[2, 1, 5, 6]);
        assert_eq!(y.dtype(), DType::F32);
        let ones = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(ones.iter().all(|v| (v - 1.0).abs() < 1e-6));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                gaussian_smooth(&x, bad),
                Err(Error::Core(dmad_core::Error::InvalidConfig {
                    field: "sigma",
                    ..
                }))
            ));
        }
        let v = Tensor::ones(5, DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            gaussian_smooth(&v, 1.0),
            Err(Error::Core(dmad_core::Error::ShapeMismatch { .. }))
        ));
    }

    #[test]
    fn resize_maps_to_input_size() {
        let dev = Device::Cpu;
        let m = Tensor::arange(0f32, 8.0, &dev)
            .unwrap()
            .reshape((2, 2, 2))
            .unwrap();
        assert_eq!(resize_map(&m, &[5, 3]).unwrap().dims(), &[2, 5, 3]);
        let s = Tensor::new(&[[0f32, 1.0]], &dev).unwrap();
        let r = resize_map(&s, &[4]).unwrap().to_vec2::<f32>().unwrap();
        // PyTorch: F.interpolate(x[None], size=4, mode="linear") = [0, 0.25, 0.75, 1]
        assert_eq!(r, [[0.0, 0.25, 0.75, 1.0]]);
        assert!(resize_map(&s, &[4, 4]).is_err());
        assert!(resize_map(&m, &[0, 3]).is_err());
    }

    #[test]
    fn series_points_from_windows() {
        let dev = Device::Cpu;
        // 2 windows of length 3 over 4 points, starts 0 and 1.
        let m = Tensor::new(&[[1f32, 2., 3.], [10., 20., 30.]], &dev).unwrap();
        let mean = series_point_scores(&m, &[0, 1], 4, Reduce::Mean).unwrap();
        assert_eq!(mean, [1.0, 6.0, 11.5, 30.0]);
        let max = series_point_scores(&m, &[0, 1], 4, Reduce::Max).unwrap();
        assert_eq!(max, [1.0, 10.0, 20.0, 30.0]);
        assert!(series_point_scores(&m, &[0], 4, Reduce::Mean).is_err());
        assert!(matches!(
            series_point_scores(&m, &[0, 2], 4, Reduce::Mean),
            Err(Error::Data(_))
        ));
        let w = window_point_scores(&[1.0, 3.0], &[0, 1], 3, 4, Reduce::Mean).unwrap();
        assert_eq!(w, [1.0, 2.0, 2.0, 3.0]);
    }

    struct Fixed(Option<Tensor>);

    impl crate::Scorer for Fixed {
        fn score(&self, x: &Tensor) -> Result<crate::ScoreOutput> {
            Ok(crate::ScoreOutput {
                scores: vec![7.0; x.dim(0)?],
                map: self.0.clone(),
            })
        }
    }

    #[test]
    fn smoothed_scorer_summarises_the_smoothed_map() {
        use crate::Scorer;
        let dev = Device::Cpu;
        let mut v = vec![0f32; 2 * 5 * 5];
        v[12] = 25.0; // sample 0, centre
        let map = Tensor::from_vec(v, (2, 5, 5), &dev).unwrap();
        let x = Tensor::zeros((2, 1, 5, 5), DType::F32, &dev).unwrap();
        let inner = Smoothed::new(Fixed(Some(map.clone())), 1.0, MapScore::Inner).unwrap();
        assert_eq!(inner.score(&x).unwrap().scores, [7.0, 7.0]);
        let max = Smoothed::new(Fixed(Some(map.clone())), 1.0, MapScore::Max).unwrap();
        let out = max.score(&x).unwrap();
        let sm = gaussian_smooth(&map, 1.0).unwrap();
        let want = sm.get(0).unwrap().flatten_all().unwrap().max(0).unwrap();
        assert_eq!(out.scores[0], want.to_scalar::<f32>().unwrap());
        assert!(out.scores[0] < 25.0 && out.scores[0] > 1.0);
        assert_eq!(out.scores[1], 0.0);
        let mean = Smoothed::new(Fixed(Some(map)), 0.0, MapScore::Mean).unwrap();
        assert_eq!(mean.score(&x).unwrap().scores, [1.0, 0.0]);
        assert!(Smoothed::new(Fixed(None), -1.0, MapScore::Inner).is_err());
        let none = Smoothed::new(Fixed(None), 1.0, MapScore::Max).unwrap();
        assert!(matches!(
            none.score(&x),
            Err(Error::Core(dmad_core::Error::Unsupported(_)))
        ));
        // Batched scoring joins the batches in order.
        let b = Fixed(None).score_batched(&Tensor::zeros((5, 2), DType::F32, &dev).unwrap(), 2);
        assert_eq!(b.unwrap().scores.len(), 5);
        assert!(Fixed(None).score_batched(&x, 0).is_err());
    }
}
