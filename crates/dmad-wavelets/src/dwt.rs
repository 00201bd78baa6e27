//! Single-level discrete wavelet transform and its inverse, in 1D and along any axis.
//!
//! The conventions are PyWavelets 1.8.0's (`pywt.dwt`, `pywt.idwt`): for a filter `h` of length
//! `F` and every mode but periodization, coefficient `o` is `sum_j h[j] x[2o + 1 - j]` over the
//! extended signal, giving `floor((N + F - 1) / 2)` coefficients; periodization gives
//! `ceil(N / 2)` coefficients `sum_j h[j] x[2o + F/2 - j]` over the periodic signal (an odd
//! signal is first padded with its last sample). The inverse keeps PyWavelets' output lengths:
//! `2n - F + 2` samples from `n` coefficients, `2n` for periodization.

use std::collections::BTreeMap;

use crate::array::NdArray;
use crate::error::check_finite;
use crate::{Error, Mode, Result, Wavelet};

/// The float types the DWT kernels run on (f64, and f32 for tensors).
pub(crate) trait Real:
    Copy
    + Default
    + PartialEq
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
    + std::iter::Sum
    + Send
    + Sync
    + 'static
{
    fn from_f64(v: f64) -> Self;
}

impl Real for f64 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl Real for f32 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

/// Output samples computed per block: keeps the working set of the filter loops in L1.
const BLOCK: usize = 512;

/// A value of the extended signal as a linear combination of input samples.
type Combo = Vec<(usize, f64)>;

/// Number of coefficients of a single-level DWT of `len` samples with a filter of `filter_len`
/// taps (PyWavelets' `dwt_coeff_len`).
pub fn dwt_coeff_len(len: usize, filter_len: usize, mode: Mode) -> usize {
    if len == 0 || filter_len == 0 {
        return 0;
    }
    match mode {
        Mode::Periodization => len.div_ceil(2),
        _ => (len + filter_len - 1) / 2,
    }
}

/// The deepest useful decomposition level for a signal of `len` samples and a filter of
/// `filter_len` taps: `floor(log2(len / (filter_len - 1)))`, 0 when the signal is shorter than
/// the filter (PyWavelets' `dwt_max_level`).
pub fn dwt_max_level(len: usize, filter_len: usize) -> usize {
    if filter_len <= 1 || len < filter_len - 1 {
        return 0;
    }
    (len / (filter_len - 1)).ilog2() as usize
}

/// Number of samples an inverse DWT gives for `coeff_len` coefficients.
pub(crate) fn idwt_out_len(coeff_len: usize, filter_len: usize, mode: Mode) -> usize {
    match mode {
        Mode::Periodization => 2 * coeff_len,
        _ => (2 * coeff_len + 2).saturating_sub(filter_len),
    }
}

fn add_term(m: &mut BTreeMap<usize, f64>, combo: &BTreeMap<usize, f64>, c: f64) {
    for (&i, &v) in combo {
        *m.entry(i).or_insert(0.0) += c * v;
    }
}

fn single(i: usize, c: f64) -> Combo {
    vec![(i, c)]
}

/// The extension of an `n`-sample signal: `left[m - 1]` is the value at position `-m`
/// (`m = 1..=left`), `right[j]` the value at position `n + j`, each as a combination of input
/// samples. Follows the edge rules of PyWavelets' `downsampling_convolution`.
pub(crate) fn extension(
    n: usize,
    mode: Mode,
    left: usize,
    right: usize,
) -> (Vec<Combo>, Vec<Combo>) {
    debug_assert!(n >= 1);
    let mode = if mode == Mode::Smooth && n < 2 {
        Mode::Constant
    } else {
        mode
    };
    let last = n - 1;
    match mode {
        Mode::Zero => (vec![vec![]; left], vec![vec![]; right]),
        Mode::Constant => (vec![single(0, 1.0); left], vec![single(last, 1.0); right]),
        Mode::Smooth => {
            let l = (1..=left)
                .map(|m| vec![(0, 1.0 + m as f64), (1, -(m as f64))])
                .collect();
            let r = (1..=right)
                .map(|k| vec![(last, 1.0 + k as f64), (last - 1, -(k as f64))])
                .collect();
            (l, r)
        }
        Mode::Periodic => {
            let l = (1..=left)
                .map(|m| single(last - (m - 1) % n, 1.0))
                .collect();
            let r = (0..right).map(|j| single(j % n, 1.0)).collect();
            (l, r)
        }
        Mode::Periodization => {
            // Periodic over the signal padded to even length with its last sample.
            let np = n + n % 2;
            let idx = |p: usize| if p >= n { last } else { p };
            let l = (1..=left)
                .map(|m| single(idx(np - 1 - (m - 1) % np), 1.0))
                .collect();
            let r = (0..right).map(|j| single(idx((n + j) % np), 1.0)).collect();
            (l, r)
        }
        Mode::Symmetric | Mode::Antisymmetric => {
            let anti = mode == Mode::Antisymmetric;
            // Period 2n: first copy (sign-flipped when antisymmetric), then mirrored copy.
            let val = |m: usize, left_side: bool| {
                let q = m % (2 * n);
                let (i, first) = if q < n {
                    (q, true)
                } else {
                    (2 * n - 1 - q, false)
                };
                let i = if left_side { i } else { last - i };
                single(i, if anti && first { -1.0 } else { 1.0 })
            };
            let l = (0..left).map(|m| val(m, true)).collect();
            let r = (0..right).map(|j| val(j, false)).collect();
            (l, r)
        }
        Mode::Reflect => {
            if n == 1 {
                return (vec![single(0, 1.0); left], vec![single(0, 1.0); right]);
            }
            let p = 2 * n - 2;
            let val = |m: usize| {
                // Whole-sample mirror about the edge: offsets 1, 2, ..., n-1, n-2, ..., 0, 1...
                let q = m % p;
                if q < n {
                    q
                } else {
                    p - q
                }
            };
            let l = (1..=left).map(|m| single(val(m), 1.0)).collect();
            let r = (1..=right).map(|j| single(last - val(j), 1.0)).collect();
            (l, r)
        }
        Mode::Antireflect => {
            let side = |count: usize, from_left: bool| -> Vec<Combo> {
                // Position k steps away from the edge sample, k = 1, 2, ...
                let at = |k: usize| if from_left { k } else { last - k };
                let edge = at(0);
                let far = at(last);
                let mut out = Vec::with_capacity(count);
                let mut le: BTreeMap<usize, f64> = BTreeMap::from([(edge, 1.0)]);
                'outer: loop {
                    if n < 2 {
                        while out.len() < count {
                            out.push(single(edge, 1.0));
                        }
                        break;
                    }
                    let mut tmp = le.clone();
                    for k in 1..n {
                        if out.len() == count {
                            break 'outer;
                        }
                        // tmp = le - (x[at(k)] - x[edge])
                        tmp = le.clone();
                        add_term(
                            &mut tmp,
                            &BTreeMap::from([(at(k), 1.0), (edge, -1.0)]),
                            -1.0,
                        );
                        out.push(tmp.iter().map(|(&i, &v)| (i, v)).collect());
                    }
                    le = tmp.clone();
                    for k in 1..n {
                        if out.len() == count {
                            break 'outer;
                        }
                        // tmp = le + (x[at(last - k)] - x[far])
                        tmp = le.clone();
                        add_term(
                            &mut tmp,
                            &BTreeMap::from([(at(last - k), 1.0), (far, -1.0)]),
                            1.0,
                        );
                        out.push(tmp.iter().map(|(&i, &v)| (i, v)).collect());
                    }
                    le = tmp;
                    if out.len() == count {
                        break;
                    }
                }
                out
            };
            (side(left, true), side(right, false))
        }
    }
}

#[inline]
fn eval<T: Real>(combo: &Combo, x: &[T]) -> T {
    combo.iter().map(|&(i, c)| T::from_f64(c) * x[i]).sum()
}

/// Geometry of a downsampling convolution: left pad, right pad and the offset `c0`
/// (coefficient `o` reads extended positions `2o + c0 - j`).
fn down_geometry(n: usize, f: usize, mode: Mode) -> (usize, usize, usize, usize) {
    let out = dwt_coeff_len(n, f, mode);
    let c0 = if mode == Mode::Periodization {
        f / 2
    } else {
        1
    };
    let pl = f;
    // Highest extended index read: 2(out-1) + c0 (+ pl in buffer coordinates).
    let needed = 2 * (out - 1) + c0 + 1;
    let pr = needed.saturating_sub(n);
    (out, pl, pr, c0)
}

/// Checks the common preconditions of a forward transform along one axis of length `n`.
pub(crate) fn check_forward(x: &[f64], n: usize, mode: Mode, context: &'static str) -> Result<()> {
    if n == 0 {
        return Err(Error::EmptyInput { context });
    }
    if matches!(mode, Mode::Reflect | Mode::Antireflect) && n < 2 {
        return Err(Error::TooShort {
            context: "dwt in reflect/antireflect mode",
            len: n,
            min: 2,
        });
    }
    check_finite(x, context)
}

/// What a single-level DWT along an axis of `n` samples needs, computed once: the filters, the
/// geometry of [`down_geometry`] and the boundary extension.
pub(crate) struct AxisPlan<T> {
    lo: Vec<T>,
    hi: Vec<T>,
    n: usize,
    /// Number of coefficients.
    pub(crate) out: usize,
    pl: usize,
    pr: usize,
    c0: usize,
    lext: Vec<Combo>,
    rext: Vec<Combo>,
}

impl<T: Real> AxisPlan<T> {
    pub(crate) fn new(n: usize, w: &Wavelet, mode: Mode) -> Self {
        let f = w.dec_len();
        let (out, pl, pr, c0) = down_geometry(n, f, mode);
        let (lext, rext) = extension(n, mode, pl, pr);
        Self {
            lo: w.dec_lo().iter().map(|&v| T::from_f64(v)).collect(),
            hi: w.dec_hi().iter().map(|&v| T::from_f64(v)).collect(),
            n,
            out,
            pl,
            pr,
            c0,
            lext,
            rext,
        }
    }

    /// Work buffers for [`AxisPlan::row`].
    pub(crate) fn row_work(&self) -> RowWork<T> {
        let f = self.lo.len();
        RowWork {
            lvals: vec![T::default(); self.pl],
            rvals: vec![T::default(); self.pr],
            even: vec![T::default(); BLOCK + f],
            odd: vec![T::default(); BLOCK + f],
        }
    }

    /// The DWT of one contiguous row: `io` gives the `n` input samples and takes the `out`
    /// approximation coefficients, `d` the detail coefficients.
    ///
    /// Blocked polyphase: each block of outputs reads its stretch of the extended row, split
    /// into even and odd samples, from a buffer that stays in L1. The extension values are
    /// evaluated before any output is written and every block is read before it is written,
    /// so [`RowIo::InPlace`] is exact as long as no later block reads below the outputs
    /// already written: true for filters shorter than `BLOCK + 2` taps (see
    /// [`AxisPlan::in_place_ok`]).
    pub(crate) fn row(&self, io: &mut RowIo<'_, T>, d: &mut [T], work: &mut RowWork<T>) {
        let (n, pl, out) = (self.n, self.pl, self.out);
        let f = self.lo.len();
        let RowWork {
            lvals,
            rvals,
            even,
            odd,
        } = work;
        {
            let xr = io.x();
            for (m, c) in self.lext.iter().enumerate() {
                lvals[m] = eval(c, xr);
            }
            for (j, c) in self.rext.iter().enumerate() {
                rvals[j] = eval(c, xr);
            }
        }
        let base = self.c0 + pl;
        let mut start = 0;
        while start < out {
            let len = BLOCK.min(out - start);
            // Local index 0 is extended index p0; the block reads local 0 ..= 2 len + f - 3.
            let p0 = 2 * start + base + 1 - f;
            let half = len + f / 2 - 1;
            {
                let xr = io.x();
                if p0 >= pl && p0 + 2 * half <= pl + n {
                    let src = &xr[p0 - pl..p0 - pl + 2 * half];
                    for ((e, o), pair) in
                        even.iter_mut().zip(odd.iter_mut()).zip(src.chunks_exact(2))
                    {
                        *e = pair[0];
                        *o = pair[1];
                    }
                } else {
                    // Extended row at buffer index q (q = position + pl).
                    let get = |q: usize| -> T {
                        if q < pl {
                            lvals[pl - 1 - q]
                        } else if q < pl + n {
                            xr[q - pl]
                        } else {
                            rvals[q - pl - n]
                        }
                    };
                    for k in 0..half {
                        even[k] = get(p0 + 2 * k);
                        odd[k] = get(p0 + 2 * k + 1);
                    }
                }
            }
            down_block(
                &even[..half],
                &odd[..half],
                &self.lo,
                &self.hi,
                &mut io.a()[start..start + len],
                &mut d[start..start + len],
            );
            start += len;
        }
    }

    /// Whether [`AxisPlan::row`] may write the approximation over its input.
    pub(crate) fn in_place_ok(&self) -> bool {
        self.lo.len() < BLOCK + 2 && self.out <= self.n
    }

    /// The DWT along the middle axis of `[n, inner]` block `xb` (`inner > 1`: the lanes are
    /// vectorised), one output row `o` at a time: into `into = Some((ca, cd))` (`[out, inner]`
    /// each, zero-filled), or else into scratch rows handed to `emit(o, a_row, d_row)`.
    fn lanes(
        &self,
        xb: &[T],
        inner: usize,
        rows: &mut (Vec<T>, Vec<T>, Vec<T>, Vec<T>),
        mut into: Option<(&mut [T], &mut [T])>,
        mut emit: impl FnMut(usize, &[T], &[T]),
    ) {
        let (n, pl, f) = (self.n, self.pl, self.lo.len());
        let (lrows, rrows, ar, dr) = rows;
        lrows.resize(self.pl * inner, T::default());
        rrows.resize(self.pr * inner, T::default());
        ar.resize(inner, T::default());
        dr.resize(inner, T::default());
        fill_rows(&self.lext, xb, inner, lrows);
        fill_rows(&self.rext, xb, inner, rrows);
        // Row `s` of the extended block (buffer coordinates: s = position + pl).
        let row = |s: usize| -> &[T] {
            if s < pl {
                let m = pl - 1 - s;
                &lrows[m * inner..(m + 1) * inner]
            } else if s < pl + n {
                &xb[(s - pl) * inner..(s - pl + 1) * inner]
            } else {
                let j = s - pl - n;
                &rrows[j * inner..(j + 1) * inner]
            }
        };
        for o in 0..self.out {
            let (a, d) = match &mut into {
                Some((ca, cd)) => (
                    &mut ca[o * inner..(o + 1) * inner],
                    &mut cd[o * inner..(o + 1) * inner],
                ),
                None => {
                    ar.fill(T::default());
                    dr.fill(T::default());
                    (&mut ar[..], &mut dr[..])
                }
            };
            for j in 0..f {
                let src = row(2 * o + self.c0 + pl - j);
                axpy2(a, d, self.lo[j], self.hi[j], src);
            }
            if into.is_none() {
                emit(o, ar, dr);
            }
        }
    }
}

/// Work buffers of [`AxisPlan::row`].
pub(crate) struct RowWork<T> {
    lvals: Vec<T>,
    rvals: Vec<T>,
    even: Vec<T>,
    odd: Vec<T>,
}

/// Input and approximation output of [`AxisPlan::row`]: separate, or one buffer (the input
/// in `[..n]` is overwritten by the approximation in `[..out]`).
pub(crate) enum RowIo<'a, T> {
    /// Input `x`, approximation into `a`.
    Split(&'a [T], &'a mut [T]),
    /// Input and approximation in one buffer.
    InPlace(&'a mut [T]),
}

impl<T> RowIo<'_, T> {
    fn x(&self) -> &[T] {
        match self {
            RowIo::Split(x, _) => x,
            RowIo::InPlace(b) => b,
        }
    }
    fn a(&mut self) -> &mut [T] {
        match self {
            RowIo::Split(_, a) => a,
            RowIo::InPlace(b) => b,
        }
    }
}

/// Single-level DWT of `outer` independent blocks of shape `[n, inner]` (row-major), along the
/// middle axis. Returns `(approx, detail)` of shape `[outer, out, inner]` each.
pub(crate) fn dwt_blocks<T: Real>(
    x: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    w: &Wavelet,
    mode: Mode,
) -> (Vec<T>, Vec<T>) {
    let plan = AxisPlan::<T>::new(n, w, mode);
    let out = plan.out;
    let mut ca = dmad_core::alloc::zeroed(outer * out * inner);
    let mut cd = dmad_core::alloc::zeroed(outer * out * inner);
    if inner == 1 {
        let mut work = plan.row_work();
        for ((xr, ab), db) in x
            .chunks_exact(n)
            .zip(ca.chunks_exact_mut(out))
            .zip(cd.chunks_exact_mut(out))
        {
            plan.row(&mut RowIo::Split(xr, ab), db, &mut work);
        }
    } else {
        let mut rows = Default::default();
        for ((xb, cab), cdb) in x
            .chunks_exact(n * inner)
            .zip(ca.chunks_exact_mut(out * inner))
            .zip(cd.chunks_exact_mut(out * inner))
        {
            plan.lanes(xb, inner, &mut rows, Some((cab, cdb)), |_, _, _| {});
        }
    }
    (ca, cd)
}

/// Single-level 2D DWT of `outer` images `[n0, n1]` (row-major) over both axes, fused: each
/// output row of the column pass is transformed along the row at once, so the half-transformed
/// arrays are never stored. Returns `[aa, ad, da, dd]` (first letter: axis 0), each
/// `[outer, out0, out1]`; the arithmetic is that of [`dwt_blocks`] along axis 0 then axis 1.
pub(crate) fn dwt2_blocks<T: Real>(
    x: &[T],
    outer: usize,
    n0: usize,
    n1: usize,
    w: &Wavelet,
    mode: Mode,
) -> [Vec<T>; 4] {
    let p0 = AxisPlan::<T>::new(n0, w, mode);
    let p1 = AxisPlan::<T>::new(n1, w, mode);
    let (o0, o1) = (p0.out, p1.out);
    let mut outs: [Vec<T>; 4] = std::array::from_fn(|_| dmad_core::alloc::zeroed(outer * o0 * o1));
    let mut work = p1.row_work();
    let mut rows = Default::default();
    for (b, xb) in x.chunks_exact(n0 * n1).enumerate() {
        let [aa, ad, da, dd] = &mut outs;
        p0.lanes(xb, n1, &mut rows, None, |o, ar, dr| {
            let at = (b * o0 + o) * o1..(b * o0 + o + 1) * o1;
            p1.row(
                &mut RowIo::Split(ar, &mut aa[at.clone()]),
                &mut ad[at.clone()],
                &mut work,
            );
            p1.row(
                &mut RowIo::Split(dr, &mut da[at.clone()]),
                &mut dd[at],
                &mut work,
            );
        });
    }
    outs
}

/// Evaluates the extension combos for every lane: `rows[m*inner + l] = sum c * x[i*inner + l]`.
fn fill_rows<T: Real>(combos: &[Combo], xb: &[T], inner: usize, rows: &mut [T]) {
    for (m, combo) in combos.iter().enumerate() {
        let dst = &mut rows[m * inner..(m + 1) * inner];
        dst.fill(T::default());
        for &(i, c) in combo {
            let c = T::from_f64(c);
            for (d, s) in dst.iter_mut().zip(&xb[i * inner..(i + 1) * inner]) {
                *d += c * *s;
            }
        }
    }
}

#[inline]
fn axpy2<T: Real>(a: &mut [T], d: &mut [T], ca: T, cd: T, src: &[T]) {
    for ((a, d), s) in a.iter_mut().zip(d.iter_mut()).zip(src) {
        *a += ca * *s;
        *d += cd * *s;
    }
}

/// `a[o] = sum_j lo[j] e[2o + F - 1 - j]`, `d` likewise with `hi`, from the polyphase parts
/// `even[k] = e[2k]`, `odd[k] = e[2k + 1]` of a block's stretch `e`. Taps are summed in
/// PyWavelets' order.
fn down_block<T: Real>(even: &[T], odd: &[T], lo: &[T], hi: &[T], a: &mut [T], d: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { down_block_avx2(even, odd, lo, hi, a, d) };
            return;
        }
    }
    down_block_generic(even, odd, lo, hi, a, d);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn down_block_avx2<T: Real>(
    even: &[T],
    odd: &[T],
    lo: &[T],
    hi: &[T],
    a: &mut [T],
    d: &mut [T],
) {
    down_block_generic(even, odd, lo, hi, a, d)
}

#[inline(always)]
fn down_block_generic<T: Real>(
    even: &[T],
    odd: &[T],
    lo: &[T],
    hi: &[T],
    a: &mut [T],
    d: &mut [T],
) {
    let len = a.len();
    let f = lo.len();
    // Register-blocked for the common short filters (haar to db8): each group of LANES
    // outputs sums all taps in registers, in the same order as below.
    match f {
        2 => return down_block_fixed::<T, 2>(even, odd, lo, hi, a, d),
        4 => return down_block_fixed::<T, 4>(even, odd, lo, hi, a, d),
        6 => return down_block_fixed::<T, 6>(even, odd, lo, hi, a, d),
        8 => return down_block_fixed::<T, 8>(even, odd, lo, hi, a, d),
        _ => {}
    }
    a.fill(T::default());
    d.fill(T::default());
    for (j, (&cl, &ch)) in lo.iter().zip(hi).enumerate() {
        let s = f - 1 - j;
        let src = if s.is_multiple_of(2) {
            &even[s / 2..s / 2 + len]
        } else {
            &odd[s / 2..s / 2 + len]
        };
        axpy2(a, d, cl, ch, src);
    }
}

/// Outputs per register block of [`down_block_fixed`].
const LANES: usize = 8;

/// [`down_block_generic`] for a filter of `F` taps: the taps of LANES outputs are summed in
/// registers (from zero, tap 0 first, as there), and each output is stored once.
#[inline(always)]
fn down_block_fixed<T: Real, const F: usize>(
    even: &[T],
    odd: &[T],
    lo: &[T],
    hi: &[T],
    a: &mut [T],
    d: &mut [T],
) {
    let len = a.len();
    let lo: [T; F] = std::array::from_fn(|j| lo[j]);
    let hi: [T; F] = std::array::from_fn(|j| hi[j]);
    let full = len / LANES * LANES;
    for o in (0..full).step_by(LANES) {
        let mut acc_a = [T::default(); LANES];
        let mut acc_d = [T::default(); LANES];
        for j in 0..F {
            let s = F - 1 - j;
            let src = if s.is_multiple_of(2) { even } else { odd };
            let src: &[T; LANES] = src[s / 2 + o..][..LANES].try_into().expect("LANES");
            for i in 0..LANES {
                acc_a[i] += lo[j] * src[i];
                acc_d[i] += hi[j] * src[i];
            }
        }
        let a: &mut [T; LANES] = (&mut a[o..o + LANES]).try_into().expect("LANES");
        let d: &mut [T; LANES] = (&mut d[o..o + LANES]).try_into().expect("LANES");
        *a = acc_a;
        *d = acc_d;
    }
    for o in full..len {
        let (mut acc_a, mut acc_d) = (T::default(), T::default());
        for j in 0..F {
            let s = F - 1 - j;
            let v = if s.is_multiple_of(2) {
                even[s / 2 + o]
            } else {
                odd[s / 2 + o]
            };
            acc_a += lo[j] * v;
            acc_d += hi[j] * v;
        }
        a[o] = acc_a;
        d[o] = acc_d;
    }
}

/// Checks and returns the common coefficient length of an inverse transform.
fn idwt_len(
    a: Option<(&[usize], usize)>,
    d: Option<(&[usize], usize)>,
    f: usize,
    mode: Mode,
) -> Result<usize> {
    let n = match (a, d) {
        (Some((sa, na)), Some((sd, nd))) => {
            if sa != sd {
                return Err(Error::ShapeMismatch {
                    context: "idwt (approximation vs detail coefficients)",
                    expected: sa.to_vec(),
                    got: sd.to_vec(),
                });
            }
            debug_assert_eq!(na, nd);
            na
        }
        (Some((_, n)), None) | (None, Some((_, n))) => n,
        (None, None) => {
            return Err(Error::EmptyInput {
                context: "idwt (neither approximation nor detail coefficients given)",
            })
        }
    };
    if n == 0 {
        return Err(Error::EmptyInput {
            context: "idwt coefficients",
        });
    }
    if mode != Mode::Periodization && n < f / 2 {
        return Err(Error::TooShort {
            context: "idwt coefficients (need at least half the filter length)",
            len: n,
            min: f / 2,
        });
    }
    Ok(n)
}

/// Index plan of the inverse: output `2p + r` (`r` = 0, 1) is
/// `sum_j taps_r[j] * c[p + base_r - j]`, `j < F/2`. Returns `(taps_even, base_even, taps_odd,
/// base_odd)` as offsets into the tap parity (0 = even taps, 1 = odd taps).
fn up_plan(f: usize, mode: Mode) -> [(usize, isize); 2] {
    let h = f / 2;
    match mode {
        Mode::Periodization => {
            let q = (f / 4) as isize;
            if h % 2 == 1 {
                [(0, q), (1, q)]
            } else {
                [(1, q - 1), (0, q)]
            }
        }
        _ => [(0, h as isize - 1), (1, h as isize - 1)],
    }
}

/// Inverse of [`dwt_blocks`]: `a`, `d` of shape `[outer, n, inner]` give `[outer, out, inner]`.
pub(crate) fn idwt_blocks(
    a: Option<&[f64]>,
    d: Option<&[f64]>,
    outer: usize,
    n: usize,
    inner: usize,
    w: &Wavelet,
    mode: Mode,
) -> Vec<f64> {
    let f = w.rec_len();
    let h = f / 2;
    let out = idwt_out_len(n, f, mode);
    let pairs = out / 2;
    let plan = up_plan(f, mode);
    // Coefficients are read at c[p + base - j] for p < pairs, j < h: pad circularly for
    // periodization (no padding is needed otherwise).
    let (pl, pr) = if mode == Mode::Periodization {
        (h + 1, h + 1)
    } else {
        (0, 0)
    };
    let next = n + pl + pr;
    let wrap = |k: usize| (k + n * (pl / n + 1) - pl) % n;
    let taps = |which: usize, filt: &[f64]| -> Vec<f64> {
        filt.iter().skip(which).step_by(2).copied().collect()
    };
    let lo = [taps(0, w.rec_lo()), taps(1, w.rec_lo())];
    let hi = [taps(0, w.rec_hi()), taps(1, w.rec_hi())];
    let mut y = vec![0.0; outer * out * inner];
    let mut tmp = vec![0.0; pairs.max(1) * inner];
    let mut ext_a = vec![0.0; next * inner];
    let mut ext_d = vec![0.0; next * inner];
    for b in 0..outer {
        let blk = |c: &[f64], ext: &mut Vec<f64>| {
            let cb = &c[b * n * inner..(b + 1) * n * inner];
            for k in 0..next {
                let src = wrap(k);
                ext[k * inner..(k + 1) * inner]
                    .copy_from_slice(&cb[src * inner..(src + 1) * inner]);
            }
        };
        if let Some(a) = a {
            blk(a, &mut ext_a);
        }
        if let Some(d) = d {
            blk(d, &mut ext_d);
        }
        let yb = &mut y[b * out * inner..(b + 1) * out * inner];
        for (r, &(parity, base)) in plan.iter().enumerate() {
            // Offset of c[p + base - j] in the extended buffer: p + base - j + pl.
            let off0 = base + pl as isize;
            let mut first = true;
            for (coeffs, bank, ext) in [(a, &lo, &ext_a), (d, &hi, &ext_d)] {
                if coeffs.is_none() {
                    continue;
                }
                let t = &bank[parity];
                tmp.fill(0.0);
                for (j, &c) in t.iter().enumerate().take(h) {
                    let s = (off0 - j as isize) as usize;
                    let src = &ext[s * inner..(s + pairs) * inner];
                    for (o, v) in tmp.iter_mut().zip(src) {
                        *o += c * v;
                    }
                }
                // Scatter into output rows 2p + r.
                for p in 0..pairs {
                    let dst = &mut yb[(2 * p + r) * inner..(2 * p + r + 1) * inner];
                    let srow = &tmp[p * inner..(p + 1) * inner];
                    if first {
                        dst.copy_from_slice(srow);
                    } else {
                        for (o, v) in dst.iter_mut().zip(srow) {
                            *o += v;
                        }
                    }
                }
                first = false;
            }
        }
    }
    y
}

/// Single-level 1D DWT, as `pywt.dwt(x, wavelet, mode)`: returns `(cA, cD)`.
///
/// # Errors
/// [`Error::EmptyInput`] for an empty signal, [`Error::NonFinite`] for a NaN or infinity,
/// [`Error::TooShort`] for a one-sample signal in reflect or antireflect mode.
///
/// # Example
/// ```
/// use dmad_wavelets::{dwt, Mode, Wavelet};
/// let w = Wavelet::new("haar")?;
/// let (ca, cd) = dwt(&[1.0, 2.0, 3.0, 4.0], &w, Mode::Symmetric)?;
/// assert!((ca[0] - 3.0 / 2f64.sqrt()).abs() < 1e-12);
/// assert!((cd[1] + 1.0 / 2f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), dmad_wavelets::Error>(())
/// ```
pub fn dwt(x: &[f64], wavelet: &Wavelet, mode: Mode) -> Result<(Vec<f64>, Vec<f64>)> {
    check_forward(x, x.len(), mode, "dwt")?;
    Ok(dwt_blocks(x, 1, x.len(), 1, wavelet, mode))
}

/// Single-level 1D inverse DWT, as `pywt.idwt(cA, cD, wavelet, mode)`. A missing part counts as
/// zeros.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `cA` and `cD` differ in length, [`Error::EmptyInput`] if both are
/// missing or empty, [`Error::TooShort`] if they are shorter than half the filter (except in
/// periodization mode), [`Error::NonFinite`] for a NaN.
pub fn idwt(
    ca: Option<&[f64]>,
    cd: Option<&[f64]>,
    wavelet: &Wavelet,
    mode: Mode,
) -> Result<Vec<f64>> {
    let sa = ca.map(|c| vec![c.len()]);
    let sd = cd.map(|c| vec![c.len()]);
    let n = idwt_len(
        sa.as_deref().map(|s| (s, s[0])),
        sd.as_deref().map(|s| (s, s[0])),
        wavelet.rec_len(),
        mode,
    )?;
    if let Some(c) = ca {
        check_finite(c, "idwt approximation")?;
    }
    if let Some(c) = cd {
        check_finite(c, "idwt detail")?;
    }
    Ok(idwt_blocks(ca, cd, 1, n, 1, wavelet, mode))
}

/// Single-level DWT along `axis` of an n-d array (the other axes are batch axes), as
/// `pywt.dwt(x, wavelet, mode, axis=axis)`.
///
/// # Errors
/// As [`dwt`], plus [`Error::InvalidAxis`].
pub fn dwt_axis(
    x: &NdArray,
    wavelet: &Wavelet,
    mode: Mode,
    axis: usize,
) -> Result<(NdArray, NdArray)> {
    let (outer, n, inner) = x.split(axis)?;
    check_forward(x.data(), n, mode, "dwt_axis")?;
    let out = dwt_coeff_len(n, wavelet.dec_len(), mode);
    let shape = x.shape_with(axis, out);
    if outer * inner == 0 {
        return Ok((NdArray::zeros(shape.clone()), NdArray::zeros(shape)));
    }
    let (ca, cd) = dwt_blocks(x.data(), outer, n, inner, wavelet, mode);
    Ok((NdArray::new(shape.clone(), ca)?, NdArray::new(shape, cd)?))
}

/// Single-level inverse DWT along `axis`, as `pywt.idwt(cA, cD, wavelet, mode, axis=axis)`.
///
/// # Errors
/// As [`idwt`], plus [`Error::InvalidAxis`].
pub fn idwt_axis(
    ca: Option<&NdArray>,
    cd: Option<&NdArray>,
    wavelet: &Wavelet,
    mode: Mode,
    axis: usize,
) -> Result<NdArray> {
    let any = ca.or(cd).ok_or(Error::EmptyInput {
        context: "idwt_axis (neither approximation nor detail coefficients given)",
    })?;
    let (outer, _, inner) = any.split(axis)?;
    let n = idwt_len(
        ca.map(|c| (c.shape(), c.shape()[axis])),
        cd.map(|c| (c.shape(), c.shape()[axis])),
        wavelet.rec_len(),
        mode,
    )?;
    if let Some(c) = ca {
        check_finite(c.data(), "idwt_axis approximation")?;
    }
    if let Some(c) = cd {
        check_finite(c.data(), "idwt_axis detail")?;
    }
    let out = idwt_out_len(n, wavelet.rec_len(), mode);
    let shape = any.shape_with(axis, out);
    if outer * inner == 0 {
        return Ok(NdArray::zeros(shape));
    }
    let y = idwt_blocks(
        ca.map(|c| c.data()),
        cd.map(|c| c.data()),
        outer,
        n,
        inner,
        wavelet,
        mode,
    );
    NdArray::new(shape, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_pywt() {
        assert_eq!(dwt_coeff_len(1, 40, Mode::Symmetric), 20);
        assert_eq!(dwt_coeff_len(101, 8, Mode::Periodization), 51);
        assert_eq!(dwt_max_level(1000, 8), 7);
        assert_eq!(dwt_max_level(1, 2), 0);
        assert_eq!(idwt_out_len(20, 40, Mode::Zero), 2);
    }

    #[test]
    fn antireflect_extension_matches_recursive_definition() {
        let x = [1.0, 4.0, 2.0];
        let (l, r) = extension(3, Mode::Antireflect, 5, 5);
        // x[-1] = 2x0 - x1, x[-2] = 2x0 - x2, x[-3] = x[-2] + x1 - x2, ...
        let lv: Vec<f64> = l.iter().map(|c| eval(c, &x)).collect();
        assert_eq!(&lv[..3], &[-2.0, 0.0, 2.0]);
        let rv: Vec<f64> = r.iter().map(|c| eval(c, &x)).collect();
        assert_eq!(&rv[..2], &[0.0, 3.0]);
    }
}
