//! Multilevel 1D transforms and the 2D transforms, as PyWavelets' `wavedec`, `waverec`,
//! `dwt2`, `idwt2`, `wavedec2` and `waverec2`.

use crate::array::NdArray;
use crate::dwt::{
    check_forward, dwt2_blocks, dwt_axis, dwt_coeff_len, dwt_max_level, idwt_axis, AxisPlan, RowIo,
};
use crate::error::check_finite;
use crate::{Error, Mode, Result, Wavelet};

/// Checks a requested level against the maximum; `None` means the maximum.
fn resolve_level(level: Option<usize>, max: usize) -> Result<usize> {
    match level {
        None => Ok(max),
        Some(l) if l > max => Err(Error::LevelTooHigh { level: l, max }),
        Some(l) => Ok(l),
    }
}

/// Multilevel 1D DWT, as `pywt.wavedec(x, wavelet, mode, level)`: returns
/// `[cA_n, cD_n, cD_(n-1), ..., cD_1]`. `level: None` uses [`dwt_max_level`].
///
/// # Errors
/// [`Error::LevelTooHigh`] for a level above [`dwt_max_level`], and the errors of
/// [`crate::dwt`].
pub fn wavedec(
    x: &[f64],
    wavelet: &Wavelet,
    mode: Mode,
    level: Option<usize>,
) -> Result<Vec<Vec<f64>>> {
    if x.is_empty() {
        return Err(Error::EmptyInput { context: "wavedec" });
    }
    check_finite(x, "wavedec")?;
    let level = resolve_level(level, dwt_max_level(x.len(), wavelet.dec_len()))?;
    if level == 0 {
        return Ok(vec![x.to_vec()]);
    }
    // Level 1 reads `x`; every deeper level overwrites the approximation of the level above
    // with its own (one scratch buffer for all levels), and the details go straight into the
    // returned vectors.
    let mut out = Vec::with_capacity(level + 1);
    let mut a: Vec<f64> = Vec::new();
    let mut n = x.len();
    for k in 0..level {
        if matches!(mode, Mode::Reflect | Mode::Antireflect) && n < 2 {
            return Err(Error::TooShort {
                context: "dwt in reflect/antireflect mode",
                len: n,
                min: 2,
            });
        }
        let plan = AxisPlan::<f64>::new(n, wavelet, mode);
        let mut d = dmad_core::alloc::zeroed(plan.out);
        let mut work = plan.row_work();
        if k == 0 {
            a = dmad_core::alloc::zeroed(plan.out);
            plan.row(&mut RowIo::Split(x, &mut a), &mut d, &mut work);
        } else if plan.in_place_ok() {
            plan.row(&mut RowIo::InPlace(&mut a[..n]), &mut d, &mut work);
        } else {
            let mut next = vec![0.0; plan.out];
            plan.row(&mut RowIo::Split(&a[..n], &mut next), &mut d, &mut work);
            a = next;
        }
        n = plan.out;
        out.push(d);
    }
    a.truncate(n);
    a.shrink_to_fit();
    out.push(a);
    out.reverse();
    Ok(out)
}

/// Multilevel 1D inverse DWT, as `pywt.waverec(coeffs, wavelet, mode)`, from
/// `[cA_n, cD_n, ..., cD_1]`. An approximation one longer than the next detail is trimmed, as in
/// PyWavelets.
///
/// # Errors
/// [`Error::EmptyInput`] for an empty list, [`Error::ShapeMismatch`] for coefficients that do
/// not fit together, and the errors of [`crate::idwt`].
pub fn waverec(coeffs: &[Vec<f64>], wavelet: &Wavelet, mode: Mode) -> Result<Vec<f64>> {
    let arrays: Vec<NdArray> = coeffs
        .iter()
        .map(|c| NdArray::from_vec(c.clone()))
        .collect();
    Ok(waverec_axis(&arrays, wavelet, mode, 0)?.into_data())
}

/// Multilevel DWT along `axis` of an n-d array, as `pywt.wavedec(x, ..., axis=axis)`.
///
/// # Errors
/// As [`wavedec`], plus [`Error::InvalidAxis`].
pub fn wavedec_axis(
    x: &NdArray,
    wavelet: &Wavelet,
    mode: Mode,
    level: Option<usize>,
    axis: usize,
) -> Result<Vec<NdArray>> {
    let (_, n, _) = x.split(axis)?;
    if n == 0 {
        return Err(Error::EmptyInput { context: "wavedec" });
    }
    check_finite(x.data(), "wavedec")?;
    let level = resolve_level(level, dwt_max_level(n, wavelet.dec_len()))?;
    let mut details = Vec::with_capacity(level + 1);
    let mut a: Option<NdArray> = None;
    for _ in 0..level {
        let (ca, cd) = dwt_axis(a.as_ref().unwrap_or(x), wavelet, mode, axis)?;
        details.push(cd);
        a = Some(ca);
    }
    details.push(a.unwrap_or_else(|| x.clone()));
    details.reverse();
    Ok(details)
}

/// Multilevel inverse DWT along `axis`, as `pywt.waverec(coeffs, ..., axis=axis)`.
///
/// # Errors
/// As [`waverec`], plus [`Error::InvalidAxis`].
pub fn waverec_axis(
    coeffs: &[NdArray],
    wavelet: &Wavelet,
    mode: Mode,
    axis: usize,
) -> Result<NdArray> {
    let (first, rest) = coeffs.split_first().ok_or(Error::EmptyInput {
        context: "waverec (empty coefficient list)",
    })?;
    let mut a = first.clone();
    for d in rest {
        if a.ndim() != d.ndim() || axis >= d.ndim() {
            return Err(Error::ShapeMismatch {
                context: "waverec (approximation vs detail)",
                expected: a.shape().to_vec(),
                got: d.shape().to_vec(),
            });
        }
        if a.shape()[axis] == d.shape()[axis] + 1 {
            a = trim_last(&a, axis)?;
        }
        if a.shape() != d.shape() {
            return Err(Error::ShapeMismatch {
                context: "waverec (approximation vs detail)",
                expected: a.shape().to_vec(),
                got: d.shape().to_vec(),
            });
        }
        a = idwt_axis(Some(&a), Some(d), wavelet, mode, axis)?;
    }
    Ok(a)
}

/// Drops the last index along `axis`.
fn trim_last(a: &NdArray, axis: usize) -> Result<NdArray> {
    let (outer, n, inner) = a.split(axis)?;
    let mut data = Vec::with_capacity(outer * (n - 1) * inner);
    for b in 0..outer {
        data.extend_from_slice(&a.data()[b * n * inner..(b * n + n - 1) * inner]);
    }
    NdArray::new(a.shape_with(axis, n - 1), data)
}

fn check_axes(ndim: usize, axes: [usize; 2]) -> Result<()> {
    for &ax in &axes {
        if ax >= ndim {
            return Err(Error::InvalidAxis { axis: ax, ndim });
        }
    }
    if axes[0] == axes[1] {
        return Err(Error::InvalidAxis {
            axis: axes[1],
            ndim,
        });
    }
    Ok(())
}

/// Single-level 2D DWT over `axes` of an n-d array, as `pywt.dwt2(x, wavelet, mode, axes)`:
/// returns `(cA, [cH, cV, cD])`, where `cH` holds the details along `axes[0]` (approximation
/// along `axes[1]`), `cV` the details along `axes[1]`, `cD` the details along both.
///
/// # Errors
/// [`Error::InvalidAxis`] for an axis out of range or repeated, and the errors of
/// [`crate::dwt`].
pub fn dwt2(
    x: &NdArray,
    wavelet: &Wavelet,
    mode: Mode,
    axes: [usize; 2],
) -> Result<(NdArray, [NdArray; 3])> {
    check_axes(x.ndim(), axes)?;
    let nd = x.ndim();
    if axes == [nd - 2, nd - 1] {
        // The last two axes, in order: the fused kernel (same arithmetic, no intermediates).
        let (outer, n0, n1) = (x.split(nd - 2)?.0, x.shape()[nd - 2], x.shape()[nd - 1]);
        check_forward(x.data(), n0, mode, "dwt_axis")?;
        check_forward(&[], n1, mode, "dwt_axis")?;
        let (o0, o1) = (
            dwt_coeff_len(n0, wavelet.dec_len(), mode),
            dwt_coeff_len(n1, wavelet.dec_len(), mode),
        );
        let mut shape = x.shape().to_vec();
        shape[nd - 2] = o0;
        shape[nd - 1] = o1;
        let [aa, ad, da, dd] = if outer == 0 {
            std::array::from_fn(|_| Vec::new())
        } else {
            dwt2_blocks(x.data(), outer, n0, n1, wavelet, mode)
        };
        let arr = |v: Vec<f64>| NdArray::new(shape.clone(), v);
        return Ok((arr(aa)?, [arr(da)?, arr(ad)?, arr(dd)?]));
    }
    let (a, d) = dwt_axis(x, wavelet, mode, axes[0])?;
    let (aa, ad) = dwt_axis(&a, wavelet, mode, axes[1])?;
    let (da, dd) = dwt_axis(&d, wavelet, mode, axes[1])?;
    Ok((aa, [da, ad, dd]))
}

/// Single-level 2D inverse DWT, as `pywt.idwt2((cA, (cH, cV, cD)), wavelet, mode, axes)`.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the four arrays differ in shape, and the errors of
/// [`crate::idwt`].
pub fn idwt2(
    approx: &NdArray,
    details: &[NdArray; 3],
    wavelet: &Wavelet,
    mode: Mode,
    axes: [usize; 2],
) -> Result<NdArray> {
    check_axes(approx.ndim(), axes)?;
    for d in details {
        if d.shape() != approx.shape() {
            return Err(Error::ShapeMismatch {
                context: "idwt2 (detail vs approximation)",
                expected: approx.shape().to_vec(),
                got: d.shape().to_vec(),
            });
        }
    }
    let [ch, cv, cd] = details;
    let a = idwt_axis(Some(approx), Some(cv), wavelet, mode, axes[1])?;
    let d = idwt_axis(Some(ch), Some(cd), wavelet, mode, axes[1])?;
    idwt_axis(Some(&a), Some(&d), wavelet, mode, axes[0])
}

/// The coefficients of a multilevel 2D DWT: `approx` is `cA_n`, `details[k]` is
/// `[cH, cV, cD]` of level `n - k` (coarsest first, as PyWavelets' list).
#[derive(Debug, Clone, PartialEq)]
pub struct Wavedec2 {
    /// The approximation at the deepest level.
    pub approx: NdArray,
    /// `[cH, cV, cD]` per level, from level `n` down to level 1.
    pub details: Vec<[NdArray; 3]>,
}

/// Multilevel 2D DWT, as `pywt.wavedec2(x, wavelet, mode, level, axes)`. `level: None` uses
/// the smaller [`dwt_max_level`] of the two axes.
///
/// # Errors
/// [`Error::LevelTooHigh`], [`Error::InvalidAxis`], and the errors of [`crate::dwt`].
pub fn wavedec2(
    x: &NdArray,
    wavelet: &Wavelet,
    mode: Mode,
    level: Option<usize>,
    axes: [usize; 2],
) -> Result<Wavedec2> {
    check_axes(x.ndim(), axes)?;
    let max = axes
        .iter()
        .map(|&ax| dwt_max_level(x.shape()[ax], wavelet.dec_len()))
        .min()
        .unwrap_or(0);
    if axes.iter().any(|&ax| x.shape()[ax] == 0) {
        return Err(Error::EmptyInput {
            context: "wavedec2",
        });
    }
    check_finite(x.data(), "wavedec2")?;
    let level = resolve_level(level, max)?;
    let mut details = Vec::with_capacity(level);
    let mut a: Option<NdArray> = None;
    for _ in 0..level {
        let (ca, ds) = dwt2(a.as_ref().unwrap_or(x), wavelet, mode, axes)?;
        details.push(ds);
        a = Some(ca);
    }
    details.reverse();
    Ok(Wavedec2 {
        approx: a.unwrap_or_else(|| x.clone()),
        details,
    })
}

/// Multilevel 2D inverse DWT, as `pywt.waverec2(coeffs, wavelet, mode, axes)`. An
/// approximation one longer than the details along an axis is trimmed, as in PyWavelets.
///
/// # Errors
/// [`Error::ShapeMismatch`] for coefficients that do not fit together, and the errors of
/// [`idwt2`].
pub fn waverec2(
    coeffs: &Wavedec2,
    wavelet: &Wavelet,
    mode: Mode,
    axes: [usize; 2],
) -> Result<NdArray> {
    check_axes(coeffs.approx.ndim(), axes)?;
    let mut a = coeffs.approx.clone();
    for ds in &coeffs.details {
        for &ax in &axes {
            if a.ndim() == ds[0].ndim() && a.shape()[ax] == ds[0].shape()[ax] + 1 {
                a = trim_last(&a, ax)?;
            }
        }
        a = idwt2(&a, ds, wavelet, mode, axes)?;
    }
    Ok(a)
}
