//! Elementwise kernels: explicit AVX2 + FMA versions (runtime-detected) and portable scalar
//! versions that also handle the tails.

/// Whether the AVX2 + FMA kernels can run on this CPU.
#[inline]
pub(crate) fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX-512F kernels can run on this CPU (they also use FMA, part of AVX-512F).
#[inline]
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Dispatches to the AVX-512 kernel when available, else as `dispatch!`. Used for the
/// kernels bound by arithmetic (`exp`, SiLU), where 16 lanes pay; each machine always takes the
/// same path, so results stay bit-identical run to run.
macro_rules! dispatch512 {
    ($name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if avx512() {
                // SAFETY: the CPU supports AVX-512F, checked just above.
                return unsafe { x512::$name($($arg),*) };
            }
        }
        dispatch!($name($($arg),*))
    }};
}

/// Dispatches to the AVX2 kernel when available, else the scalar one.
macro_rules! dispatch {
    ($name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if avx2() {
                // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                return unsafe { x86::$name($($arg),*) };
            }
        }
        scalar::$name($($arg),*)
    }};
}

/// `e^x` in f32 (Cephes `expf`: range reduction by `ln 2` and a degree-6 polynomial), relative
/// error below 2e-7 on `[-87, 88]`; inputs are clamped to that range (so `exp(-inf) = 1.6e-38`,
/// not 0).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    // floor() through a truncating cast: exact on this range, and unlike `f32::floor` (a libm
    // call without SSE4.1) it vectorises, so loops over `exp` and `sigmoid` do too.
    let v = x * std::f32::consts::LOG2_E + 0.5;
    let t = v as i32 as f32;
    let fx = if t > v { t - 1.0 } else { t };
    let r = x - fx * LN2_HI + fx * LN2_LO;
    let r2 = r * r;
    let mut y = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        y = y * r + c;
    }
    y = y * r2 + r + 1.0;
    let n = fx as i32;
    y * f32::from_bits(((n + 127) as u32) << 23)
}

/// The constants of [`exp`] (and of its vector versions): the clamping range, `ln 2` split
/// into a high part and a low correction, and the polynomial in `r` (highest degree first)
/// with `e^r = 1 + r + r^2 * poly(r)`.
const EXP_MIN: f32 = -87.0;
const EXP_MAX: f32 = 88.0;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = 2.121_944_4e-4;
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];

/// `1 / (1 + e^-z)`.
#[inline(always)]
pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// Sum of `x - shift`: f32 lanes over blocks of 1024 values, blocks added in f64.
pub(crate) fn sum_shifted(x: &[f32], shift: f32) -> f64 {
    dispatch!(sum_shifted(x, shift))
}

/// Sum of `((x - m) - lo)^2`.
pub(crate) fn sum_sq_dev(x: &[f32], m: f32, lo: f32) -> f64 {
    dispatch!(sum_sq_dev(x, m, lo))
}

/// Mean of a non-empty slice, split into an f32 value and its f32 residue, so that
/// `(x - hi) - lo` stays accurate for data far from zero. Shifted by the first value so that
/// the f32 lane sums keep their precision.
pub(crate) fn mean_split(x: &[f32]) -> (f32, f32) {
    let pivot = x[0];
    let m = pivot as f64 + sum_shifted(x, pivot) / x.len() as f64;
    let hi = m as f32;
    (hi, (m - hi as f64) as f32)
}

/// `o = z` or `o = silu(z)` with `z = ((x - mean) - lo) * a + b`.
pub(crate) fn affine(x: &[f32], o: &mut [f32], c: Affine, silu: bool) {
    dispatch512!(affine(x, o, c, silu))
}

/// GroupNorm backward, first pass over one channel: `dz = dL/dz` (through SiLU when `silu`)
/// into `dz`; returns `(sum dz, sum dz * xhat)`.
pub(crate) fn gn_dz(
    x: &[f32],
    dy: &[f32],
    dz: &mut [f32],
    c: Affine,
    rstd: f32,
    silu: bool,
) -> (f32, f32) {
    dispatch512!(gn_dz(x, dy, dz, c, rstd, silu))
}

/// GroupNorm backward, second pass: `d = rstd * (d * g - m1 - xhat * m2)` in place.
pub(crate) fn gn_dx(x: &[f32], d: &mut [f32], c: Affine, rstd: f32, m1: f32, m2: f32) {
    dispatch512!(gn_dx(x, d, c, rstd, m1, m2))
}

/// `max(init, max x)`.
pub(crate) fn max(x: &[f32], init: f32) -> f32 {
    dispatch!(max(x, init))
}

/// `x = exp(x - m)` in place; returns the sum of the new values.
pub(crate) fn exp_sub_sum(x: &mut [f32], m: f32) -> f32 {
    dispatch512!(exp_sub_sum(x, m))
}

/// Scores of one tile: `s[i, j] = sum_c q[i, c] * kt[c, j]` for `q`: `[rows, d]`, `kt`: `[d, cols]`
/// (keys transposed), `s`: `[rows, cols]`. A register-blocked kernel for the small head widths
/// where `gemm`'s packing does not pay.
pub(crate) fn qkt(q: &[f32], kt: &[f32], s: &mut [f32], rows: usize, cols: usize, d: usize) {
    assert!(q.len() >= rows * d && kt.len() >= d * cols && s.len() >= rows * cols);
    dispatch!(qkt(q, kt, s, rows, cols, d))
}

/// Per-channel constants of a GroupNorm affine map: `z = ((x - mean) - lo) * a + b`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Affine {
    pub(crate) mean: f32,
    pub(crate) lo: f32,
    /// `gamma * rstd` in the forward pass, `gamma` in the backward pass.
    pub(crate) a: f32,
    pub(crate) b: f32,
}

mod scalar {
    use super::{exp, sigmoid, Affine};

    pub(super) fn sum_shifted(x: &[f32], shift: f32) -> f64 {
        let mut total = 0.0f64;
        for block in x.chunks(1024) {
            let mut acc = [0.0f32; 8];
            let mut it = block.chunks_exact(8);
            for c in &mut it {
                for j in 0..8 {
                    acc[j] += c[j] - shift;
                }
            }
            let s: f32 =
                it.remainder().iter().map(|v| v - shift).sum::<f32>() + acc.iter().sum::<f32>();
            total += s as f64;
        }
        total
    }

    pub(super) fn sum_sq_dev(x: &[f32], m: f32, lo: f32) -> f64 {
        let mut total = 0.0f64;
        for block in x.chunks(1024) {
            let s: f32 = block.iter().map(|v| ((v - m) - lo).powi(2)).sum();
            total += s as f64;
        }
        total
    }

    pub(super) fn affine(x: &[f32], o: &mut [f32], c: Affine, silu: bool) {
        for (o, &v) in o.iter_mut().zip(x) {
            let z = ((v - c.mean) - c.lo) * c.a + c.b;
            *o = if silu { z * sigmoid(z) } else { z };
        }
    }

    pub(super) fn gn_dz(
        x: &[f32],
        dy: &[f32],
        dz: &mut [f32],
        c: Affine,
        rstd: f32,
        silu: bool,
    ) -> (f32, f32) {
        let (mut s, mut sx) = (0.0f32, 0.0f32);
        for ((&v, &g), d) in x.iter().zip(dy).zip(dz.iter_mut()) {
            let xhat = ((v - c.mean) - c.lo) * rstd;
            *d = if silu {
                let z = xhat * c.a + c.b;
                let sg = sigmoid(z);
                g * (sg * (1.0 + z * (1.0 - sg)))
            } else {
                g
            };
            s += *d;
            sx += *d * xhat;
        }
        (s, sx)
    }

    pub(super) fn gn_dx(x: &[f32], d: &mut [f32], c: Affine, rstd: f32, m1: f32, m2: f32) {
        for (d, &v) in d.iter_mut().zip(x) {
            let xhat = ((v - c.mean) - c.lo) * rstd;
            *d = rstd * (*d * c.a - m1 - xhat * m2);
        }
    }

    pub(super) fn qkt(q: &[f32], kt: &[f32], s: &mut [f32], rows: usize, cols: usize, d: usize) {
        qkt_cols(q, kt, s, 0..rows, 0..cols, cols, d);
    }

    /// [`super::qkt`] restricted to some rows and columns.
    pub(super) fn qkt_cols(
        q: &[f32],
        kt: &[f32],
        s: &mut [f32],
        rows: std::ops::Range<usize>,
        js: std::ops::Range<usize>,
        cols: usize,
        d: usize,
    ) {
        for i in rows {
            for j in js.clone() {
                let mut acc = 0.0f32;
                for c in 0..d {
                    acc += q[i * d + c] * kt[c * cols + j];
                }
                s[i * cols + j] = acc;
            }
        }
    }

    pub(super) fn max(x: &[f32], init: f32) -> f32 {
        x.iter().fold(init, |a, &b| a.max(b))
    }

    pub(super) fn exp_sub_sum(x: &mut [f32], m: f32) -> f32 {
        let mut s = 0.0;
        for v in x {
            *v = exp(*v - m);
            s += *v;
        }
        s
    }
}

/// The binary and ternary methods of a [`lanes::Lanes`] instance, one intrinsic each:
/// `name(b, ..) => intrinsic;` becomes `unsafe fn name(self, b: Self, ..) -> Self`.
#[cfg(target_arch = "x86_64")]
macro_rules! lane_ops {
    ($($name:ident($($arg:ident),+) => $f:ident;)+) => {
        $(
            #[inline(always)]
            unsafe fn $name(self, $($arg: Self),+) -> Self {
                $f(self, $($arg),+)
            }
        )+
    };
}

/// The entry points of the [`lanes`] kernels for one vector type, compiled for `$feature`:
/// `affine`, `gn_dz`, `gn_dx` and `exp_sub_sum`, with the signatures of the dispatchers.
#[cfg(target_arch = "x86_64")]
macro_rules! lane_kernels {
    ($feature:literal, $v:ty) => {
        #[target_feature(enable = $feature)]
        pub(super) unsafe fn affine(x: &[f32], o: &mut [f32], c: Affine, silu: bool) {
            lanes::affine::<$v>(x, o, c, silu)
        }

        #[target_feature(enable = $feature)]
        pub(super) unsafe fn gn_dz(
            x: &[f32],
            dy: &[f32],
            dz: &mut [f32],
            c: Affine,
            rstd: f32,
            silu: bool,
        ) -> (f32, f32) {
            lanes::gn_dz::<$v>(x, dy, dz, c, rstd, silu)
        }

        #[target_feature(enable = $feature)]
        pub(super) unsafe fn gn_dx(
            x: &[f32],
            d: &mut [f32],
            c: Affine,
            rstd: f32,
            m1: f32,
            m2: f32,
        ) {
            lanes::gn_dx::<$v>(x, d, c, rstd, m1, m2)
        }

        #[target_feature(enable = $feature)]
        pub(super) unsafe fn exp_sub_sum(x: &mut [f32], m: f32) -> f32 {
            lanes::exp_sub_sum::<$v>(x, m)
        }
    };
}

/// The arithmetic-bound kernels (`exp`, SiLU, the GroupNorm passes, the softmax), written once
/// over a SIMD vector type and instantiated for AVX2 (`x86`) and AVX-512F (`x512`) inside
/// functions compiled for those features. Every element goes through the same vector code
/// (partial vectors at the ends are loaded with zeros in the unused lanes), so a result
/// depends on its value only, never on its position or address.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use super::{Affine, EXP_MAX, EXP_MIN, EXP_POLY, LN2_HI, LN2_LO};

    /// A vector of `N` f32 lanes. Every method is `unsafe`: it needs the CPU feature of its
    /// instance, which the callers (`#[target_feature]` functions) guarantee.
    pub(super) trait Lanes: Copy {
        const N: usize;
        unsafe fn splat(v: f32) -> Self;
        unsafe fn add(self, b: Self) -> Self;
        unsafe fn sub(self, b: Self) -> Self;
        unsafe fn mul(self, b: Self) -> Self;
        /// `self * b + c`, fused.
        unsafe fn mul_add(self, b: Self, c: Self) -> Self;
        /// `c - self * b`, fused.
        unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self;
        /// `self * b - c`, fused.
        unsafe fn mul_sub(self, b: Self, c: Self) -> Self;
        unsafe fn min(self, b: Self) -> Self;
        unsafe fn max(self, b: Self) -> Self;
        unsafe fn floor(self) -> Self;
        /// An approximate `1 / self` (12 or 14 bits).
        unsafe fn recip_approx(self) -> Self;
        /// `2^self` for integral lanes in the normal exponent range.
        unsafe fn pow2i(self) -> Self;
        /// Lanes `0..k` from `p` (all when `k >= N`), zero elsewhere; reads nothing past `k`.
        unsafe fn load(p: *const f32, k: usize) -> Self;
        /// Stores lanes `0..k` (all when `k >= N`) to `p`.
        unsafe fn store(self, p: *mut f32, k: usize);
        /// Lanes `0..k` kept, the others zero.
        unsafe fn keep(self, k: usize) -> Self;
        /// The sum of the lanes (in a fixed order).
        unsafe fn sum(self) -> f32;
    }

    /// [`super::exp`], lane by lane.
    #[inline(always)]
    unsafe fn exp<V: Lanes>(x: V) -> V {
        let x = x.max(V::splat(EXP_MIN)).min(V::splat(EXP_MAX));
        let fx = x
            .mul_add(V::splat(std::f32::consts::LOG2_E), V::splat(0.5))
            .floor();
        let r = fx.neg_mul_add(V::splat(LN2_HI), x);
        let r = fx.mul_add(V::splat(LN2_LO), r);
        let r2 = r.mul(r);
        let mut y = V::splat(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            y = y.mul_add(r, V::splat(c));
        }
        let y = y.mul_add(r2, r).add(V::splat(1.0));
        y.mul(fx.pow2i())
    }

    /// `1 / (1 + e^-z)` by the approximate reciprocal and one Newton step (about 1e-7
    /// relative, much cheaper than a division).
    #[inline(always)]
    unsafe fn sigmoid<V: Lanes>(z: V) -> V {
        let den = V::splat(1.0).add(exp(V::splat(0.0).sub(z)));
        let r = den.recip_approx();
        r.mul(den.neg_mul_add(r, V::splat(2.0)))
    }

    /// `x - mean - lo`, the centred value with the mean's residue.
    #[inline(always)]
    unsafe fn centre<V: Lanes>(v: V, c: &Affine) -> V {
        v.sub(V::splat(c.mean)).sub(V::splat(c.lo))
    }

    #[inline(always)]
    unsafe fn affine1<V: Lanes>(v: V, c: &Affine, silu: bool) -> V {
        let z = centre(v, c).mul_add(V::splat(c.a), V::splat(c.b));
        if silu {
            z.mul(sigmoid(z))
        } else {
            z
        }
    }

    /// [`super::affine`]. Plain stores: with freed buffers retained
    /// (`dmad_core::alloc::retain_freed_buffers`) the output usually reuses memory that is
    /// still cached, where non-temporal stores measured slower (GroupNorm+SiLU on
    /// `[8, 64, 64, 64]`: 0.56 against 0.67 ms forward, 1.7 against 2.7 ms forward + backward).
    #[inline(always)]
    pub(super) unsafe fn affine<V: Lanes>(x: &[f32], o: &mut [f32], c: Affine, silu: bool) {
        let n = x.len().min(o.len());
        let (xp, op) = (x.as_ptr(), o.as_mut_ptr());
        let mut i = 0;
        while i < n {
            let k = (n - i).min(V::N);
            affine1(V::load(xp.add(i), k), &c, silu).store(op.add(i), k);
            i += V::N;
        }
    }

    /// [`super::gn_dz`].
    #[inline(always)]
    pub(super) unsafe fn gn_dz<V: Lanes>(
        x: &[f32],
        dy: &[f32],
        dz: &mut [f32],
        c: Affine,
        rstd: f32,
        silu: bool,
    ) -> (f32, f32) {
        let n = x.len().min(dy.len()).min(dz.len());
        let (xp, gp, dp) = (x.as_ptr(), dy.as_ptr(), dz.as_mut_ptr());
        let (mut s, mut sx) = (V::splat(0.0), V::splat(0.0));
        let one = V::splat(1.0);
        let mut i = 0;
        while i < n {
            let k = (n - i).min(V::N);
            let xhat = centre(V::load(xp.add(i), k), &c).mul(V::splat(rstd));
            let g = V::load(gp.add(i), k);
            let d = if silu {
                let z = xhat.mul_add(V::splat(c.a), V::splat(c.b));
                let sg = sigmoid(z);
                // g * sg * (1 + z * (1 - sg)); unused lanes zeroed so that they add nothing.
                let t = z.mul_add(one.sub(sg), one);
                g.mul(sg.mul(t)).keep(k)
            } else {
                g
            };
            d.store(dp.add(i), k);
            s = s.add(d);
            sx = d.mul_add(xhat, sx);
            i += V::N;
        }
        (s.sum(), sx.sum())
    }

    /// [`super::gn_dx`].
    #[inline(always)]
    pub(super) unsafe fn gn_dx<V: Lanes>(
        x: &[f32],
        d: &mut [f32],
        c: Affine,
        rstd: f32,
        m1: f32,
        m2: f32,
    ) {
        let n = x.len().min(d.len());
        let (xp, dp) = (x.as_ptr(), d.as_mut_ptr());
        let rv = V::splat(rstd);
        let mut i = 0;
        while i < n {
            let k = (n - i).min(V::N);
            let xhat = centre(V::load(xp.add(i), k), &c).mul(rv);
            let t = V::load(dp.add(i), k)
                .mul_sub(V::splat(c.a), V::splat(m1))
                .sub(xhat.mul(V::splat(m2)));
            rv.mul(t).store(dp.add(i), k);
            i += V::N;
        }
    }

    /// [`super::exp_sub_sum`].
    #[inline(always)]
    pub(super) unsafe fn exp_sub_sum<V: Lanes>(x: &mut [f32], m: f32) -> f32 {
        let n = x.len();
        let p = x.as_mut_ptr();
        let mv = V::splat(m);
        let mut s = V::splat(0.0);
        let mut i = 0;
        while i < n {
            let k = (n - i).min(V::N);
            let e = exp(V::load(p.add(i), k).sub(mv)).keep(k);
            e.store(p.add(i), k);
            s = s.add(e);
            i += V::N;
        }
        s.sum()
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::lanes::{self, Lanes};
    use super::{scalar, Affine};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let mut a = [0.0f32; 8];
        _mm256_storeu_ps(a.as_mut_ptr(), v);
        a.iter().sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_shifted(x: &[f32], shift: f32) -> f64 {
        let sh = _mm256_set1_ps(shift);
        let mut total = 0.0f64;
        for block in x.chunks(1024) {
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut it = block.chunks_exact(16);
            for c in &mut it {
                a0 = _mm256_add_ps(a0, _mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), sh));
                a1 = _mm256_add_ps(a1, _mm256_sub_ps(_mm256_loadu_ps(c.as_ptr().add(8)), sh));
            }
            let s = hsum(_mm256_add_ps(a0, a1)) as f64 + scalar::sum_shifted(it.remainder(), shift);
            total += s;
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_sq_dev(x: &[f32], m: f32, lo: f32) -> f64 {
        let (mv, lov) = (_mm256_set1_ps(m), _mm256_set1_ps(lo));
        let mut total = 0.0f64;
        for block in x.chunks(1024) {
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut it = block.chunks_exact(16);
            for c in &mut it {
                let d0 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), mv), lov);
                let d1 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr().add(8)), mv), lov);
                a0 = _mm256_fmadd_ps(d0, d0, a0);
                a1 = _mm256_fmadd_ps(d1, d1, a1);
            }
            total += hsum(_mm256_add_ps(a0, a1)) as f64 + scalar::sum_sq_dev(it.remainder(), m, lo);
        }
        total
    }

    /// `NR` rows x 16 columns of scores starting at `(i, j)`.
    #[inline(always)]
    unsafe fn qkt_block<const NR: usize>(
        q: *const f32,
        kt: *const f32,
        s: *mut f32,
        (i, j): (usize, usize),
        cols: usize,
        d: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; NR];
        for c in 0..d {
            let k0 = _mm256_loadu_ps(kt.add(c * cols + j));
            let k1 = _mm256_loadu_ps(kt.add(c * cols + j + 8));
            for (r, a) in acc.iter_mut().enumerate() {
                let qb = _mm256_set1_ps(*q.add((i + r) * d + c));
                a[0] = _mm256_fmadd_ps(qb, k0, a[0]);
                a[1] = _mm256_fmadd_ps(qb, k1, a[1]);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(s.add((i + r) * cols + j), a[0]);
            _mm256_storeu_ps(s.add((i + r) * cols + j + 8), a[1]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn qkt(
        q: &[f32],
        kt: &[f32],
        s: &mut [f32],
        rows: usize,
        cols: usize,
        d: usize,
    ) {
        let body = cols / 16 * 16;
        let (qp, kp, sp) = (q.as_ptr(), kt.as_ptr(), s.as_mut_ptr());
        let mut i = 0;
        while i < rows {
            let nr = (rows - i).min(4);
            let mut j = 0;
            while j < body {
                match nr {
                    4 => qkt_block::<4>(qp, kp, sp, (i, j), cols, d),
                    3 => qkt_block::<3>(qp, kp, sp, (i, j), cols, d),
                    2 => qkt_block::<2>(qp, kp, sp, (i, j), cols, d),
                    _ => qkt_block::<1>(qp, kp, sp, (i, j), cols, d),
                }
                j += 16;
            }
            scalar::qkt_cols(q, kt, s, i..i + nr, body..cols, cols, d);
            i += nr;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn max(x: &[f32], init: f32) -> f32 {
        let mut m = _mm256_set1_ps(init);
        let mut it = x.chunks_exact(8);
        for c in &mut it {
            m = _mm256_max_ps(m, _mm256_loadu_ps(c.as_ptr()));
        }
        let mut a = [0.0f32; 8];
        _mm256_storeu_ps(a.as_mut_ptr(), m);
        scalar::max(it.remainder(), a.iter().fold(init, |p, &q| p.max(q)))
    }
    impl Lanes for __m256 {
        const N: usize = 8;
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            _mm256_set1_ps(v)
        }
        lane_ops! {
            add(b) => _mm256_add_ps;
            sub(b) => _mm256_sub_ps;
            mul(b) => _mm256_mul_ps;
            mul_add(b, c) => _mm256_fmadd_ps;
            neg_mul_add(b, c) => _mm256_fnmadd_ps;
            mul_sub(b, c) => _mm256_fmsub_ps;
            min(b) => _mm256_min_ps;
            max(b) => _mm256_max_ps;
        }
        #[inline(always)]
        unsafe fn floor(self) -> Self {
            _mm256_floor_ps(self)
        }
        #[inline(always)]
        unsafe fn recip_approx(self) -> Self {
            _mm256_rcp_ps(self)
        }
        #[inline(always)]
        unsafe fn pow2i(self) -> Self {
            let n = _mm256_cvtps_epi32(self);
            _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_add_epi32(n, _mm256_set1_epi32(127)),
                23,
            ))
        }
        #[inline(always)]
        unsafe fn load(p: *const f32, k: usize) -> Self {
            if k >= 8 {
                _mm256_loadu_ps(p)
            } else {
                let mut buf = [0.0f32; 8];
                std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), k);
                _mm256_loadu_ps(buf.as_ptr())
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, k: usize) {
            if k >= 8 {
                _mm256_storeu_ps(p, self)
            } else {
                let mut buf = [0.0f32; 8];
                _mm256_storeu_ps(buf.as_mut_ptr(), self);
                std::ptr::copy_nonoverlapping(buf.as_ptr(), p, k);
            }
        }
        #[inline(always)]
        unsafe fn keep(self, k: usize) -> Self {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let m = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(k as i32), idx));
            _mm256_and_ps(self, m)
        }
        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            hsum(self)
        }
    }

    lane_kernels!("avx2,fma", __m256);
}

/// The 16-lane AVX-512F instance of the [`lanes`] kernels.
#[cfg(target_arch = "x86_64")]
mod x512 {
    use super::lanes::{self, Lanes};
    use super::Affine;
    use std::arch::x86_64::*;

    /// Mask of lanes `0..k` (`k <= 16`).
    #[inline(always)]
    fn mask(k: usize) -> __mmask16 {
        ((1u32 << k.min(16)) - 1) as __mmask16
    }

    impl Lanes for __m512 {
        const N: usize = 16;
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            _mm512_set1_ps(v)
        }
        lane_ops! {
            add(b) => _mm512_add_ps;
            sub(b) => _mm512_sub_ps;
            mul(b) => _mm512_mul_ps;
            mul_add(b, c) => _mm512_fmadd_ps;
            neg_mul_add(b, c) => _mm512_fnmadd_ps;
            mul_sub(b, c) => _mm512_fmsub_ps;
            min(b) => _mm512_min_ps;
            max(b) => _mm512_max_ps;
        }
        #[inline(always)]
        unsafe fn floor(self) -> Self {
            // Round toward negative infinity, exceptions suppressed.
            _mm512_roundscale_ps::<0x09>(self)
        }
        #[inline(always)]
        unsafe fn recip_approx(self) -> Self {
            _mm512_rcp14_ps(self)
        }
        #[inline(always)]
        unsafe fn pow2i(self) -> Self {
            let n = _mm512_cvtps_epi32(self);
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
                n,
                _mm512_set1_epi32(127),
            )))
        }
        #[inline(always)]
        unsafe fn load(p: *const f32, k: usize) -> Self {
            _mm512_maskz_loadu_ps(mask(k), p)
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, k: usize) {
            _mm512_mask_storeu_ps(p, mask(k), self)
        }
        #[inline(always)]
        unsafe fn keep(self, k: usize) -> Self {
            _mm512_maskz_mov_ps(mask(k), self)
        }
        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            _mm512_reduce_add_ps(self)
        }
    }

    lane_kernels!("avx512f", __m512);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_within_2e7_relative() {
        let mut xs = Vec::new();
        let mut x = -87.0f32;
        while x < 88.0 {
            xs.push(x);
            x += 0.0137;
        }
        let mut fast = xs.clone();
        exp_sub_sum(&mut fast, 0.0);
        let mut worst = 0.0f32;
        for (&x, &f) in xs.iter().zip(&fast) {
            let e = x.exp();
            worst = worst.max(((exp(x) - e) / e).abs()).max(((f - e) / e).abs());
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        assert!((sigmoid(1e30) - 1.0).abs() < 1e-7);
        assert!(sigmoid(-1e30).abs() < 1e-30);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
        let x = [1e30f32, -1e30, 0.0, 3.0, -3.0, 50.0, -50.0, 0.5, 1.0];
        let mut o = [0.0f32; 9];
        affine(
            &x,
            &mut o,
            Affine {
                mean: 0.0,
                lo: 0.0,
                a: 1.0,
                b: 0.0,
            },
            true,
        );
        for (&v, &y) in x.iter().zip(&o) {
            let want = if v < -80.0 { 0.0 } else { v * sigmoid(v) };
            assert!(
                (y - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{v}: {y} vs {want}"
            );
        }
    }

    /// Values in `[-6, 6)` from a fixed linear congruential sequence.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 * 12.0 - 6.0
            })
            .collect()
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// Every elementwise kernel gives bit-identical results for the same values wherever they
    /// lie in memory (input and output at every offset modulo 64 bytes) and wherever they lie
    /// inside the slice (an element computed in a head, body or tail gets the same bits).
    #[test]
    fn elementwise_kernels_do_not_depend_on_alignment_or_position() {
        let c = Affine {
            mean: 0.3,
            lo: 1e-8,
            a: 1.7,
            b: -0.2,
        };
        for n in [1usize, 5, 8, 13, 64, 100] {
            let x = values(n, n as u32);
            let g = values(n, 7 + n as u32);
            for silu in [false, true] {
                let mut want: Option<[Vec<u32>; 4]> = None;
                for xo in 0..16 {
                    for oo in 0..16 {
                        let mut xb = vec![0.0f32; n + 16];
                        xb[xo..xo + n].copy_from_slice(&x);
                        let mut gb = vec![0.0f32; n + 16];
                        gb[oo..oo + n].copy_from_slice(&g);
                        let xs = &xb[xo..xo + n];
                        let mut ob = vec![f32::NAN; n + 16];
                        affine(xs, &mut ob[oo..oo + n], c, silu);
                        let mut db = vec![f32::NAN; n + 16];
                        let sums = gn_dz(xs, &gb[oo..oo + n], &mut db[oo..oo + n], c, 0.9, silu);
                        let dz = bits(&db[oo..oo + n]);
                        gn_dx(xs, &mut db[oo..oo + n], c, 0.9, 0.01, -0.02);
                        let mut eb = vec![0.0f32; n + 16];
                        eb[oo..oo + n].copy_from_slice(&x);
                        let se = exp_sub_sum(&mut eb[oo..oo + n], 1.5);
                        let got = [
                            bits(&ob[oo..oo + n]),
                            dz,
                            bits(&db[oo..oo + n]),
                            bits(&[sums.0, sums.1, se]),
                        ];
                        match &want {
                            None => want = Some(got),
                            Some(w) => assert_eq!(w, &got, "n {n} silu {silu} offsets {xo} {oo}"),
                        }
                    }
                }
                // Position: the value at index i computed alone equals it computed in the slice.
                let all = want.unwrap();
                for i in 0..n {
                    let mut o = [0.0f32; 1];
                    affine(&x[i..=i], &mut o, c, silu);
                    assert_eq!(o[0].to_bits(), all[0][i], "affine n {n} at {i}");
                    let mut d = [0.0f32; 1];
                    gn_dz(&x[i..=i], &g[i..=i], &mut d, c, 0.9, silu);
                    assert_eq!(d[0].to_bits(), all[1][i], "gn_dz n {n} at {i}");
                }
            }
        }
    }

    /// Results of the elementwise kernels on one input: affine, affine + SiLU, `gn_dz` (values
    /// and sums), `gn_dx`, `exp_sub_sum` (values and sum).
    type Outputs = (
        Vec<f32>,
        Vec<f32>,
        Vec<f32>,
        (f32, f32),
        Vec<f32>,
        Vec<f32>,
        f32,
    );

    fn run_kernels(
        x: &[f32],
        g: &[f32],
        affine: impl Fn(&[f32], &mut [f32], Affine, bool),
        gn_dz: impl Fn(&[f32], &[f32], &mut [f32], Affine, f32, bool) -> (f32, f32),
        gn_dx: impl Fn(&[f32], &mut [f32], Affine, f32, f32, f32),
        exp_sub_sum: impl Fn(&mut [f32], f32) -> f32,
    ) -> Outputs {
        let n = x.len();
        let c = Affine {
            mean: 0.3,
            lo: 1e-8,
            a: 1.7,
            b: -0.2,
        };
        let (mut a, mut asilu, mut dz) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        affine(x, &mut a, c, false);
        affine(x, &mut asilu, c, true);
        let sums = gn_dz(x, g, &mut dz, c, 0.9, true);
        let mut dx = dz.clone();
        gn_dx(x, &mut dx, c, 0.9, 0.01, -0.02);
        let mut e = x.to_vec();
        let se = exp_sub_sum(&mut e, 1.5);
        (a, asilu, dz, sums, dx, e, se)
    }

    fn assert_outputs_close(a: &Outputs, b: &Outputs, what: &str) {
        let close =
            |x: f32, y: f32, scale: f32| (x - y).abs() <= 1e-6 * scale.max(y.abs()).max(1.0);
        let vecs = [
            (&a.0, &b.0),
            (&a.1, &b.1),
            (&a.2, &b.2),
            (&a.4, &b.4),
            (&a.5, &b.5),
        ];
        for (k, (u, v)) in vecs.iter().enumerate() {
            for (i, (&x, &y)) in u.iter().zip(v.iter()).enumerate() {
                assert!(close(x, y, 0.0), "{what}: output {k} at {i}: {x} vs {y}");
            }
        }
        // Sums: relative to the sum of magnitudes (lane order differs between the paths).
        let mag = |v: &[f32]| v.iter().map(|x| x.abs()).sum::<f32>();
        assert!(close(a.3 .0, b.3 .0, mag(&b.2)), "{what}: sum dz");
        assert!(
            close(a.3 .1, b.3 .1, 6.0 * mag(&b.2)),
            "{what}: sum dz xhat"
        );
        assert!(close(a.6, b.6, mag(&b.5)), "{what}: exp sum");
    }

    /// The AVX2 and AVX-512 kernels (whichever this CPU has) agree with the scalar ones within
    /// 1e-6 relative: `dispatch512!` hides the AVX2 path on an AVX-512 machine, so it is tested
    /// here directly.
    #[test]
    fn every_simd_path_agrees_with_the_scalar_kernels() {
        for n in [1usize, 7, 8, 15, 16, 17, 100, 1000] {
            let (x, g) = (values(n, 3 + n as u32), values(n, 11 + n as u32));
            let want = run_kernels(
                &x,
                &g,
                scalar::affine,
                scalar::gn_dz,
                scalar::gn_dx,
                scalar::exp_sub_sum,
            );
            // The kernels of one SIMD module; only called once its features are checked.
            #[cfg(target_arch = "x86_64")]
            macro_rules! simd_path {
                ($m:ident) => {
                    // SAFETY: the caller checked the module's CPU features.
                    unsafe {
                        run_kernels(
                            &x,
                            &g,
                            |x, o, c, s| $m::affine(x, o, c, s),
                            |x, g, d, c, r, s| $m::gn_dz(x, g, d, c, r, s),
                            |x, d, c, r, a, b| $m::gn_dx(x, d, c, r, a, b),
                            |x, m| $m::exp_sub_sum(x, m),
                        )
                    }
                };
            }
            #[cfg(target_arch = "x86_64")]
            {
                if avx2() {
                    assert_outputs_close(&simd_path!(x86), &want, &format!("avx2 n {n}"));
                }
                if avx512() {
                    assert_outputs_close(&simd_path!(x512), &want, &format!("avx512 n {n}"));
                }
            }
        }
    }

    #[test]
    fn qkt_matches_naive_for_odd_tiles() {
        for &(rows, cols, d) in &[
            (1, 1, 1),
            (5, 37, 3),
            (4, 16, 16),
            (7, 33, 8),
            (64, 256, 16),
        ] {
            let q: Vec<f32> = (0..rows * d)
                .map(|i| ((i * 13) % 17) as f32 * 0.1 - 0.8)
                .collect();
            let kt: Vec<f32> = (0..d * cols)
                .map(|i| ((i * 7) % 11) as f32 * 0.1 - 0.5)
                .collect();
            let mut s = vec![0.0f32; rows * cols];
            qkt(&q, &kt, &mut s, rows, cols, d);
            for i in 0..rows {
                for j in 0..cols {
                    let want: f32 = (0..d).map(|c| q[i * d + c] * kt[c * cols + j]).sum();
                    assert!(
                        (s[i * cols + j] - want).abs() < 1e-5,
                        "{rows}x{cols}x{d} at {i},{j}"
                    );
                }
            }
        }
    }

    #[test]
    fn sums_and_max_match_naive() {
        let x: Vec<f32> = (0..5003)
            .map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.3)
            .collect();
        let naive: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((sum_shifted(&x, 0.0) - naive).abs() < 1e-3);
        let m = (naive / x.len() as f64) as f32;
        let naive_sq: f64 = x.iter().map(|&v| (v as f64 - m as f64).powi(2)).sum();
        assert!((sum_sq_dev(&x, m, 0.0) - naive_sq).abs() / naive_sq < 1e-5);
        assert_eq!(max(&x, f32::NEG_INFINITY), 0.7);
        assert_eq!(max(&x[..3], 5.0), 5.0);
    }
}
