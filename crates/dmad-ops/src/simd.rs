//! Vectorisation helpers: runtime AVX2/FMA dispatch and an auto-vectorisable `exp`.

/// Runs `f` inside a function compiled for AVX2 + FMA when the CPU has them, so that the loops
/// `f` inlines are vectorised with 8-wide registers; on other CPUs it just calls `f`.
#[inline(always)]
pub(crate) fn vectorize<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports every feature `run_avx2` is compiled with.
            return unsafe { run_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `e^x` in f32 (Cephes `expf`: range reduction by `ln 2` and a degree-6 polynomial), relative
/// error below 2e-7 on `[-87, 88]`; inputs are clamped to that range (so `exp(-inf) = 1.6e-38`,
/// not 0). Written without branches so that loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let fx = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - fx * 0.693_359_4 + fx * 2.121_944_4e-4;
    let r2 = r * r;
    let mut y = 1.987_569_1e-4_f32;
    y = y * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 0.166_666_65;
    y = y * r + 0.5;
    y = y * r2 + r + 1.0;
    let n = fx as i32;
    y * f32::from_bits(((n + 127) as u32) << 23)
}

/// `1 / (1 + e^-z)`.
#[inline(always)]
pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// Mean of a non-empty slice, split into an f32 value and its f32 residue.
#[inline(always)]
pub(crate) fn mean_split(x: &[f32]) -> (f32, f32) {
    // Shifted by the first value: for data far from zero `x - x[0]` is exact and small, so the
    // f32 lane sums keep their precision.
    let pivot = x[0];
    let m = pivot as f64 + sum_shifted(x, pivot) / x.len() as f64;
    let hi = m as f32;
    (hi, (m - hi as f64) as f32)
}

/// Sum of `x - shift`: f32 lanes over blocks of 1024 values, blocks added in f64.
#[inline(always)]
pub(crate) fn sum_shifted(x: &[f32], shift: f32) -> f64 {
    let mut total = 0.0f64;
    for block in x.chunks(1024) {
        let mut acc = [0.0f32; 16];
        let mut it = block.chunks_exact(16);
        for c in &mut it {
            for j in 0..16 {
                acc[j] += c[j] - shift;
            }
        }
        let mut s: f32 = it.remainder().iter().map(|v| v - shift).sum();
        for a in acc {
            s += a;
        }
        total += s as f64;
    }
    total
}

/// Sum of squared deviations from `m + lo` (`lo` is the f32 rounding residue of the mean, so that
/// `x - m` stays exact for data far from zero).
#[inline(always)]
pub(crate) fn sum_sq_dev(x: &[f32], m: f32, lo: f32) -> f64 {
    let mut total = 0.0f64;
    for block in x.chunks(1024) {
        let mut acc = [0.0f32; 16];
        let mut it = block.chunks_exact(16);
        for c in &mut it {
            for j in 0..16 {
                let d = (c[j] - m) - lo;
                acc[j] += d * d;
            }
        }
        let mut s: f32 = it.remainder().iter().map(|v| ((v - m) - lo).powi(2)).sum();
        for a in acc {
            s += a;
        }
        total += s as f64;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_within_2e7_relative() {
        let mut worst = 0.0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let e = x.exp();
            worst = worst.max(((exp(x) - e) / e).abs());
            x += 0.0137;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(vectorize(|| exp(0.0)), 1.0);
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        assert!((sigmoid(1e30) - 1.0).abs() < 1e-7);
        assert!(sigmoid(-1e30).abs() < 1e-30);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn sums_match_naive_f64() {
        let x: Vec<f32> = (0..5000)
            .map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.3)
            .collect();
        let naive: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((sum_shifted(&x, 0.0) - naive).abs() < 1e-3);
        let m = (naive / x.len() as f64) as f32;
        let naive_sq: f64 = x.iter().map(|&v| (v as f64 - m as f64).powi(2)).sum();
        assert!((sum_sq_dev(&x, m, 0.0) - naive_sq).abs() / naive_sq < 1e-5);
    }
}
