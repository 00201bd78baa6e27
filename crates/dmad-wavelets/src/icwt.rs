//! Inverse CWT by the single-integral formula (Morlet's formula; Torrence & Compo 1998, eq. 11;
//! ssqueezepy's `icwt(one_int=True)` is the same idea).
//!
//! With PyWavelets' normalisation, `W(a, b) = a^(-1/2) sum_t x[t] conj(psi((t - b) / a))`, so
//! `W_a` has spectrum `sqrt(a) X(w) conj(Psi(a w))` and
//!
//! `x[b] ~ Re( sum_j dln(a_j) W(a_j, b) / sqrt(a_j) ) / C`,
//! `C = 1/2 int_0^inf Re[Psi(xi) + Psi(-xi)] / xi dxi`,
//!
//! where `dln(a_j)` are trapezoid weights in `ln a` (log-spaced scales give the constant
//! `ln 2 / voices`). `C` is computed once per wavelet from the sampled wavelet's Fourier
//! transform. The formula needs `C != 0`: it works for morl, mexh, the even `gaus` and `cgau`
//! orders, cmor, shan and fbsp, not for odd `gaus`/`cgau` orders (their `C` vanishes), which get
//! [`Error::Unsupported`].
//!
//! Accuracy depends on how well the scales cover the signal's band (measured in
//! `docs/WAVELETS.md` and tested in `tests/icwt.rs`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use num_complex::Complex64;
use rustfft::FftPlanner;

use crate::cwt::{next_fast_len, ContinuousWavelet, Cwt, CwtPlanner};
use crate::{Error, Result};

/// The reconstruction constant `C` of `wavelet` (see the module docs), from its sampling at
/// `2^precision` points.
pub fn icwt_constant(wavelet: &ContinuousWavelet, precision: u32) -> f64 {
    let (psi, x) = wavelet.wavefun(precision);
    let dt = x[1] - x[0];
    let lb = x[0];
    // Zero-padded FFT: fine frequency grid dxi = 2 pi / (m dt).
    let m = (psi.len() * 64).next_power_of_two();
    let mut buf = psi.clone();
    buf.resize(m, Complex64::new(0.0, 0.0));
    FftPlanner::new().plan_fft_forward(m).process(&mut buf);
    let dxi = 2.0 * std::f64::consts::PI / (m as f64 * dt);
    let mut acc = 0.0;
    for k in 1..m / 2 {
        let xi = k as f64 * dxi;
        // Psi(xi) = dt e^{-i xi lb} FFT[k]; Psi(-xi) = dt e^{i xi lb} FFT[m - k].
        let pos = buf[k] * Complex64::from_polar(dt, -xi * lb);
        let neg = buf[m - k] * Complex64::from_polar(dt, xi * lb);
        acc += (pos.re + neg.re) / xi * dxi;
    }
    acc / 2.0
}

/// `(C, abs integral)` of a wavelet, computed once per wavelet name and cached.
fn constants(wavelet: &ContinuousWavelet) -> (f64, f64) {
    static CACHE: OnceLock<Mutex<HashMap<String, (f64, f64)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(wavelet.name())
    {
        return *v;
    }
    let v = (icwt_constant(wavelet, 12), icwt_abs_integral(wavelet, 12));
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(wavelet.name().to_string(), v);
    v
}

/// Trapezoid weights of `scales` in `ln a`.
fn log_weights(scales: &[f64]) -> Vec<f64> {
    let l: Vec<f64> = scales.iter().map(|s| s.ln()).collect();
    let n = l.len();
    (0..n)
        .map(|j| {
            let lo = if j == 0 {
                l[0]
            } else {
                (l[j - 1] + l[j]) / 2.0
            };
            let hi = if j + 1 == n {
                l[n - 1]
            } else {
                (l[j] + l[j + 1]) / 2.0
            };
            (hi - lo).abs()
        })
        .collect()
}

/// Reconstructs a signal from its CWT by the single-integral formula (module docs).
///
/// `cwt` must come from [`crate::cwt()`] (PyWavelets' normalisation) with `wavelet`, at two or
/// more distinct scales, ideally log-spaced and covering the signal's band.
///
/// # Errors
/// [`Error::InvalidArgument`] for fewer than two scales or repeated scales,
/// [`Error::Unsupported`] for a wavelet whose constant vanishes (odd gaus/cgau orders).
///
/// # Example
/// ```
/// use dmad_wavelets::{cwt, icwt_single_integral, ContinuousWavelet, CwtConfig, CwtMethod};
/// let x: Vec<f64> = (0..1024).map(|i| (i as f64 * 0.15).sin()).collect();
/// let w = ContinuousWavelet::new("morl")?;
/// let scales: Vec<f64> = (0..80).map(|j| 2.0 * 2f64.powf(j as f64 / 16.0)).collect();
/// let cfg = CwtConfig { method: CwtMethod::Fft, ..CwtConfig::default() };
/// let y = icwt_single_integral(&cwt(&x, &scales, &w, &cfg)?, &w)?;
/// let err: f64 = x[100..924].iter().zip(&y[100..924]).map(|(a, b)| (a - b).powi(2)).sum();
/// let norm: f64 = x[100..924].iter().map(|a| a * a).sum();
/// assert!((err / norm).sqrt() < 0.1);
/// # Ok::<(), dmad_wavelets::Error>(())
/// ```
pub fn icwt_single_integral(cwt: &Cwt, wavelet: &ContinuousWavelet) -> Result<Vec<f64>> {
    if cwt.scales.len() < 2 {
        return Err(Error::InvalidArgument {
            name: "scales",
            reason: "the inverse CWT needs at least two scales",
        });
    }
    let weights = log_weights(&cwt.scales);
    if weights.contains(&0.0) {
        return Err(Error::InvalidArgument {
            name: "scales",
            reason: "scales must be distinct",
        });
    }
    let (c, norm) = constants(wavelet);
    // |C| relative to the integral of |Psi|/xi: a vanishing C means an odd wavelet.
    if c.abs() < 1e-6 * norm {
        return Err(Error::Unsupported(
            "single-integral inverse CWT: this wavelet's constant vanishes (odd gaus/cgau order)",
        ));
    }
    let n = cwt.len;
    let mut y = vec![0.0; n];
    for (j, (&a, &wj)) in cwt.scales.iter().zip(&weights).enumerate() {
        let g = wj / a.sqrt() / c;
        for (t, v) in y.iter_mut().enumerate() {
            *v += g * cwt.get(j, t).re;
        }
    }
    Ok(y)
}

/// `1/2 int_0^inf (|Psi(xi)| + |Psi(-xi)|) / xi dxi`, the scale against which `C` is judged.
fn icwt_abs_integral(wavelet: &ContinuousWavelet, precision: u32) -> f64 {
    let (psi, x) = wavelet.wavefun(precision);
    let dt = x[1] - x[0];
    let m = (psi.len() * 64).next_power_of_two();
    let mut buf = psi;
    buf.resize(m, Complex64::new(0.0, 0.0));
    FftPlanner::new().plan_fft_forward(m).process(&mut buf);
    let dxi = 2.0 * std::f64::consts::PI / (m as f64 * dt);
    (1..m / 2)
        .map(|k| (buf[k].norm() + buf[m - k].norm()) * dt / (k as f64 * dxi) * dxi)
        .sum::<f64>()
        / 2.0
}

/// Reconstructs a signal from its CWT: the single-integral sum over scales, normalised per
/// frequency by the exact response of the discrete transform instead of one constant.
///
/// PyWavelets' discretisation (integrate, resample, difference, centre) shifts each scale by
/// up to one sample and low-passes it slightly, which limits [`icwt_single_integral`] at high
/// frequencies. Here the scale sum `R = sum_j dln(a_j) W_j / sqrt(a_j)` is divided, bin by bin
/// of its FFT, by the response `H(w)` of that same sum computed from the actual kernels, as a
/// least-squares estimate over the bins `w` and `-w` (the signal is real). Bins where `|H|` is
/// below 10% of its peak (outside the band the scales cover) are set to zero. Works for every
/// wavelet, odd ones included.
///
/// `cwt` must come from [`crate::cwt()`] with `wavelet`.
///
/// # Errors
/// [`Error::InvalidArgument`] for fewer than two scales or repeated scales.
///
/// # Example
/// ```
/// use dmad_wavelets::{cwt, icwt, ContinuousWavelet, CwtConfig, CwtMethod};
/// let x: Vec<f64> = (0..1024).map(|i| (i as f64 * 0.15).sin()).collect();
/// let w = ContinuousWavelet::new("morl")?;
/// let scales: Vec<f64> = (0..80).map(|j| 2.0 * 2f64.powf(j as f64 / 16.0)).collect();
/// let cfg = CwtConfig { method: CwtMethod::Fft, ..CwtConfig::default() };
/// let y = icwt(&cwt(&x, &scales, &w, &cfg)?, &w)?;
/// let err: f64 = x[100..924].iter().zip(&y[100..924]).map(|(a, b)| (a - b).powi(2)).sum();
/// let norm: f64 = x[100..924].iter().map(|a| a * a).sum();
/// assert!((err / norm).sqrt() < 0.05);
/// # Ok::<(), dmad_wavelets::Error>(())
/// ```
pub fn icwt(cwt: &Cwt, wavelet: &ContinuousWavelet) -> Result<Vec<f64>> {
    if cwt.scales.len() < 2 {
        return Err(Error::InvalidArgument {
            name: "scales",
            reason: "the inverse CWT needs at least two scales",
        });
    }
    let weights = log_weights(&cwt.scales);
    if weights.contains(&0.0) {
        return Err(Error::InvalidArgument {
            name: "scales",
            reason: "scales must be distinct",
        });
    }
    let n = cwt.len;
    let planner = CwtPlanner::new();
    let integ = planner.integrated(wavelet, cwt.precision);
    // Combined kernel by lag: W_j[t] = -sqrt(a_j) sum_m dk_j[m] x[t + off_j - m], so
    // R[t] = sum_lag h[lag] x[t - lag] with h[m - off_j] += -w_j dk_j[m].
    let mut taps: Vec<(isize, Complex64)> = Vec::new();
    for (&a, &w) in cwt.scales.iter().zip(&weights) {
        let (dk, off) = integ.kernel(a)?;
        for (m, v) in dk.iter().enumerate() {
            taps.push((m as isize - off as isize, -w * v));
        }
    }
    let max_lag = taps.iter().map(|t| t.0.unsigned_abs()).max().unwrap_or(0);
    let p = next_fast_len(n + max_lag);
    let (fwd, inv) = planner.fft_pair(p);
    let mut h = vec![Complex64::new(0.0, 0.0); p];
    for (lag, v) in taps {
        h[lag.rem_euclid(p as isize) as usize] += v;
    }
    fwd.process(&mut h);
    let mut r = vec![Complex64::new(0.0, 0.0); p];
    for (j, (&a, &w)) in cwt.scales.iter().zip(&weights).enumerate() {
        let g = w / a.sqrt();
        for (t, v) in r.iter_mut().take(n).enumerate() {
            *v += cwt.get(j, t) * g;
        }
    }
    fwd.process(&mut r);
    let den: Vec<f64> = (0..p)
        .map(|k| h[k].norm_sqr() + h[(p - k) % p].norm_sqr())
        .collect();
    let peak = den.iter().fold(0.0f64, |m, &v| m.max(v));
    let mut xh = vec![Complex64::new(0.0, 0.0); p];
    for k in 0..p {
        let nk = (p - k) % p;
        // |H| below 10% of its peak: outside the covered band, where dividing would amplify
        // the boundary effects of the transform.
        if den[k] > 1e-2 * peak {
            xh[k] = (h[k].conj() * r[k] + h[nk] * r[nk].conj()) / den[k];
        }
    }
    inv.process(&mut xh);
    Ok(xh[..n].iter().map(|z| z.re / p as f64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morlet_constant_matches_closed_form() {
        // Psi(xi) = sqrt(2 pi) (e^{-(xi-5)^2/2} + e^{-(xi+5)^2/2}) / 2 for cos(5t) e^{-t^2/2};
        // C = int_0^inf Psi(xi)/xi dxi, by quadrature here.
        let w = ContinuousWavelet::new("morl").unwrap();
        let mut want = 0.0f64;
        let h: f64 = 1e-4;
        let mut xi: f64 = h / 2.0;
        while xi < 40.0 {
            let p = (2.0 * std::f64::consts::PI).sqrt()
                * ((-(xi - 5.0) * (xi - 5.0) / 2.0).exp() + (-(xi + 5.0) * (xi + 5.0) / 2.0).exp())
                / 2.0;
            want += p / xi * h;
            xi += h;
        }
        let got = icwt_constant(&w, 12);
        assert!((got - want).abs() < 1e-3 * want, "{got} vs {want}");
    }

    #[test]
    fn odd_wavelets_have_a_vanishing_constant() {
        let w = ContinuousWavelet::new("gaus1").unwrap();
        assert!(icwt_constant(&w, 12).abs() < 1e-6 * icwt_abs_integral(&w, 12));
    }
}
