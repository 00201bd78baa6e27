//! Continuous wavelet transform, as PyWavelets 1.8.0's `pywt.cwt`.
//!
//! PyWavelets samples the wavelet on `2^precision` points of its support, integrates it with a
//! cumulative sum, resamples the integral at each scale, convolves the signal with it and
//! differentiates: `coef = -sqrt(scale) * diff(convolve(x, int_psi_scale))`, centred. This
//! module does exactly that (both the `conv` and the `fft` methods), with the difference folded
//! into the kernel so no precision is lost to cancellation, FFTs from RustFFT with plans cached
//! by a planner, and two real-wavelet scales per complex FFT.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::{Arc, Mutex};

use num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

use crate::error::check_finite;
use crate::{Error, Result};

/// The family (and parameters) of a continuous wavelet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ContinuousFamily {
    /// Morlet: `cos(5x) exp(-x^2/2)`.
    Morl,
    /// Mexican hat (Ricker).
    Mexh,
    /// Derivative of a Gaussian, order 1 to 8.
    Gaus(u8),
    /// Complex Gaussian derivative, order 1 to 8.
    Cgau(u8),
    /// Complex Morlet with bandwidth `b` and centre frequency `c` (`cmorB-C`).
    Cmor {
        /// Bandwidth frequency B.
        b: f64,
        /// Centre frequency C.
        c: f64,
    },
    /// Shannon with bandwidth `b` and centre frequency `c` (`shanB-C`).
    Shan {
        /// Bandwidth frequency B.
        b: f64,
        /// Centre frequency C.
        c: f64,
    },
    /// Frequency B-spline of order `m`, bandwidth `b`, centre frequency `c` (`fbspM-B-C`).
    Fbsp {
        /// Spline order M >= 1.
        m: u32,
        /// Bandwidth frequency B.
        b: f64,
        /// Centre frequency C.
        c: f64,
    },
}

/// A continuous wavelet, as PyWavelets' `pywt.ContinuousWavelet`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuousWavelet {
    name: String,
    family: ContinuousFamily,
    lower_bound: f64,
    upper_bound: f64,
}

fn parse_params(rest: &str, count: usize, name: &str) -> Result<Vec<f64>> {
    let unknown = || Error::UnknownWavelet {
        name: name.to_string(),
    };
    let vals: Vec<f64> = rest
        .split('-')
        .map(|p| p.parse::<f64>().map_err(|_| unknown()))
        .collect::<Result<_>>()?;
    if vals.len() != count || vals.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return Err(unknown());
    }
    Ok(vals)
}

impl ContinuousWavelet {
    /// The continuous wavelet called `name`: `morl`, `mexh`, `gaus1`..`gaus8`, `cgau1`..`cgau8`,
    /// `cmorB-C`, `shanB-C`, `fbspM-B-C` (for example `cmor1.5-1.0`, `fbsp2-1.0-0.5`). The bare
    /// `cmor`, `shan`, `fbsp` take PyWavelets' defaults (`cmor1.0-0.5`, `shan0.5-1.0`,
    /// `fbsp2-1.0-0.5`).
    ///
    /// # Errors
    /// [`Error::UnknownWavelet`] for any other name, or parameters that are not positive
    /// numbers (an integer order for fbsp).
    pub fn new(name: &str) -> Result<Self> {
        let unknown = || Error::UnknownWavelet {
            name: name.to_string(),
        };
        let order = |rest: &str| -> Result<u8> {
            match rest.parse::<u8>() {
                Ok(n @ 1..=8) => Ok(n),
                _ => Err(unknown()),
            }
        };
        let (family, lb, ub) = if name == "morl" {
            (ContinuousFamily::Morl, -8.0, 8.0)
        } else if name == "mexh" {
            (ContinuousFamily::Mexh, -8.0, 8.0)
        } else if let Some(rest) = name.strip_prefix("gaus") {
            (ContinuousFamily::Gaus(order(rest)?), -5.0, 5.0)
        } else if let Some(rest) = name.strip_prefix("cgau") {
            (ContinuousFamily::Cgau(order(rest)?), -5.0, 5.0)
        } else if let Some(rest) = name.strip_prefix("cmor") {
            let v = if rest.is_empty() {
                vec![1.0, 0.5]
            } else {
                parse_params(rest, 2, name)?
            };
            (ContinuousFamily::Cmor { b: v[0], c: v[1] }, -8.0, 8.0)
        } else if let Some(rest) = name.strip_prefix("shan") {
            let v = if rest.is_empty() {
                vec![0.5, 1.0]
            } else {
                parse_params(rest, 2, name)?
            };
            (ContinuousFamily::Shan { b: v[0], c: v[1] }, -20.0, 20.0)
        } else if let Some(rest) = name.strip_prefix("fbsp") {
            let v = if rest.is_empty() {
                vec![2.0, 1.0, 0.5]
            } else {
                parse_params(rest, 3, name)?
            };
            if v[0] < 1.0 || v[0].fract() != 0.0 || v[0] > 64.0 {
                return Err(unknown());
            }
            let m = v[0] as u32;
            (
                ContinuousFamily::Fbsp {
                    m,
                    b: v[1],
                    c: v[2],
                },
                -20.0,
                20.0,
            )
        } else {
            return Err(unknown());
        };
        Ok(Self {
            name: name.to_string(),
            family,
            lower_bound: lb,
            upper_bound: ub,
        })
    }

    /// The wavelet's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The family and its parameters.
    pub fn family(&self) -> ContinuousFamily {
        self.family
    }
    /// Whether the wavelet (and so its CWT) is complex.
    pub fn is_complex(&self) -> bool {
        matches!(
            self.family,
            ContinuousFamily::Cgau(_)
                | ContinuousFamily::Cmor { .. }
                | ContinuousFamily::Shan { .. }
                | ContinuousFamily::Fbsp { .. }
        )
    }
    /// The support on which the wavelet is sampled, `(lower, upper)`.
    pub fn bounds(&self) -> (f64, f64) {
        (self.lower_bound, self.upper_bound)
    }

    /// The wavelet function at `t`.
    pub fn psi(&self, t: f64) -> Complex64 {
        let x = t;
        let x2 = x * x;
        let g = (-x2).exp();
        let sq = |v: f64| v.sqrt();
        let spi2 = sq(PI / 2.0);
        let re = |v: f64| Complex64::new(v, 0.0);
        match self.family {
            ContinuousFamily::Morl => re((5.0 * x).cos() * (-x2 / 2.0).exp()),
            ContinuousFamily::Mexh => {
                re((1.0 - x2) * (-x2 / 2.0).exp() * 2.0 / (sq(3.0) * sq(sq(PI))))
            }
            ContinuousFamily::Gaus(n) => re(match n {
                1 => -2.0 * x * g / sq(spi2),
                2 => -2.0 * (2.0 * x2 - 1.0) * g / sq(3.0 * spi2),
                3 => -4.0 * (-2.0 * x.powi(3) + 3.0 * x) * g / sq(15.0 * spi2),
                4 => 4.0 * (-12.0 * x2 + 4.0 * x.powi(4) + 3.0) * g / sq(105.0 * spi2),
                5 => {
                    8.0 * (-4.0 * x.powi(5) + 20.0 * x.powi(3) - 15.0 * x) * g
                        / sq(105.0 * 9.0 * spi2)
                }
                6 => {
                    -8.0 * (8.0 * x.powi(6) - 60.0 * x.powi(4) + 90.0 * x2 - 15.0) * g
                        / sq(105.0 * 9.0 * 11.0 * spi2)
                }
                7 => {
                    -16.0
                        * (-8.0 * x.powi(7) + 84.0 * x.powi(5) - 210.0 * x.powi(3) + 105.0 * x)
                        * g
                        / sq(105.0 * 9.0 * 11.0 * 13.0 * spi2)
                }
                _ => {
                    16.0 * (16.0 * x.powi(8) - 224.0 * x.powi(6) + 840.0 * x.powi(4) - 840.0 * x2
                        + 105.0)
                        * g
                        / sq(105.0 * 9.0 * 11.0 * 13.0 * 15.0 * spi2)
                }
            }),
            ContinuousFamily::Cgau(n) => {
                let (s, c) = x.sin_cos();
                let p = |k: i32| x.powi(k);
                let (r, i, norm) = match n {
                    1 => (-2.0 * x * c - s, 2.0 * x * s - c, 2.0),
                    2 => (
                        4.0 * x2 * c + 4.0 * x * s - 3.0 * c,
                        -4.0 * x2 * s + 4.0 * x * c + 3.0 * s,
                        10.0,
                    ),
                    3 => (
                        -8.0 * p(3) * c - 12.0 * x2 * s + 18.0 * x * c + 7.0 * s,
                        8.0 * p(3) * s - 12.0 * x2 * c - 18.0 * x * s + 7.0 * c,
                        76.0,
                    ),
                    4 => (
                        16.0 * p(4) * c + 32.0 * p(3) * s - 72.0 * x2 * c - 56.0 * x * s + 25.0 * c,
                        -16.0 * p(4) * s + 32.0 * p(3) * c + 72.0 * x2 * s
                            - 56.0 * x * c
                            - 25.0 * s,
                        764.0,
                    ),
                    5 => (
                        -32.0 * p(5) * c - 80.0 * p(4) * s + 240.0 * p(3) * c + 280.0 * x2 * s
                            - 250.0 * x * c
                            - 81.0 * s,
                        32.0 * p(5) * s - 80.0 * p(4) * c - 240.0 * p(3) * s
                            + 280.0 * x2 * c
                            + 250.0 * x * s
                            - 81.0 * c,
                        9496.0,
                    ),
                    6 => (
                        64.0 * p(6) * c + 192.0 * p(5) * s - 720.0 * p(4) * c - 1120.0 * p(3) * s
                            + 1500.0 * x2 * c
                            + 972.0 * x * s
                            - 331.0 * c,
                        -64.0 * p(6) * s + 192.0 * p(5) * c + 720.0 * p(4) * s
                            - 1120.0 * p(3) * c
                            - 1500.0 * x2 * s
                            + 972.0 * x * c
                            + 331.0 * s,
                        140152.0,
                    ),
                    7 => (
                        -128.0 * p(7) * c - 448.0 * p(6) * s
                            + 2016.0 * p(5) * c
                            + 3920.0 * p(4) * s
                            - 7000.0 * p(3) * c
                            - 6804.0 * x2 * s
                            + 4634.0 * x * c
                            + 1303.0 * s,
                        128.0 * p(7) * s - 448.0 * p(6) * c - 2016.0 * p(5) * s
                            + 3920.0 * p(4) * c
                            + 7000.0 * p(3) * s
                            - 6804.0 * x2 * c
                            - 4634.0 * x * s
                            + 1303.0 * c,
                        2390480.0,
                    ),
                    _ => (
                        256.0 * p(8) * c + 1024.0 * p(7) * s
                            - 5376.0 * p(6) * c
                            - 12544.0 * p(5) * s
                            + 28000.0 * p(4) * c
                            + 36288.0 * p(3) * s
                            - 37072.0 * x2 * c
                            - 20848.0 * x * s
                            + 5937.0 * c,
                        -256.0 * p(8) * s + 1024.0 * p(7) * c + 5376.0 * p(6) * s
                            - 12544.0 * p(5) * c
                            - 28000.0 * p(4) * s
                            + 36288.0 * p(3) * c
                            + 37072.0 * x2 * s
                            - 20848.0 * x * c
                            - 5937.0 * s,
                        46206736.0,
                    ),
                };
                let k = g / sq(norm * spi2);
                Complex64::new(r * k, i * k)
            }
            ContinuousFamily::Cmor { b, c } => {
                let a = (-x2 / b).exp() / sq(PI * b);
                let ph = 2.0 * PI * c * x;
                Complex64::new(ph.cos() * a, ph.sin() * a)
            }
            ContinuousFamily::Shan { b, c } => {
                let ph = 2.0 * PI * c * x;
                let mut v = Complex64::new(ph.cos() * sq(b), ph.sin() * sq(b));
                if x != 0.0 {
                    let s = (x * b * PI).sin() / (x * b * PI);
                    v *= s;
                }
                v
            }
            ContinuousFamily::Fbsp { m, b, c } => {
                let ph = 2.0 * PI * c * x;
                let mut v = Complex64::new(ph.cos() * sq(b), ph.sin() * sq(b));
                if x != 0.0 {
                    let arg = PI * x * b / m as f64;
                    v *= (arg.sin() / arg).powf(m as f64);
                }
                v
            }
        }
    }

    /// `(psi, x)`: the wavelet sampled on `2^precision` points from the lower to the upper
    /// bound, as `ContinuousWavelet.wavefun(level=precision)` (NumPy's `linspace` grid).
    pub fn wavefun(&self, precision: u32) -> (Vec<Complex64>, Vec<f64>) {
        let x = linspace(self.lower_bound, self.upper_bound, 1usize << precision);
        let psi = x.iter().map(|&t| self.psi(t)).collect();
        (psi, x)
    }

    /// The central frequency, as `pywt.central_frequency(wavelet, precision)`: the frequency
    /// of the largest FFT bin of the sampled wavelet, in cycles per unit of the wavelet's
    /// support.
    pub fn central_frequency(&self, precision: u32) -> f64 {
        let (mut psi, x) = self.wavefun(precision);
        let n = psi.len();
        let domain = x[n - 1] - x[0];
        FftPlanner::new().plan_fft_forward(n).process(&mut psi);
        let mut best = 1;
        let mut best_val = -1.0;
        for (k, v) in psi.iter().enumerate().skip(1) {
            let a = v.norm();
            if a > best_val {
                best_val = a;
                best = k;
            }
        }
        let mut index = best + 1; // argmax over psi_hat[1:], plus 2
        if index as f64 > n as f64 / 2.0 {
            index = n - index + 2;
        }
        1.0 / (domain / (index as f64 - 1.0))
    }
}

/// NumPy's `linspace(start, stop, num)`: `start + i * step`, the last point exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut x: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    x[num - 1] = stop;
    x
}

/// The normalised frequency (cycles per sample) of `scale`: `central_frequency / scale`, as
/// `pywt.scale2frequency(wavelet, scale, precision)`. Divide by the sampling period for hertz.
pub fn scale2frequency(wavelet: &ContinuousWavelet, scale: f64, precision: u32) -> f64 {
    wavelet.central_frequency(precision) / scale
}

/// How the CWT convolutions are computed (PyWavelets' `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CwtMethod {
    /// Direct convolution, `O(len * kernel)` per scale.
    Conv,
    /// FFT convolution, `O(n log n)` per scale.
    Fft,
}

/// Options of a CWT.
#[derive(Debug, Clone, PartialEq)]
pub struct CwtConfig {
    /// Sampling period of the signal, for the returned frequencies only. Default 1.0.
    pub sampling_period: f64,
    /// Convolution method. Default [`CwtMethod::Conv`] (PyWavelets' default).
    pub method: CwtMethod,
    /// The wavelet is sampled on `2^precision` points. Default 12 (PyWavelets' default);
    /// accepted 4..=20.
    pub precision: u32,
}

impl Default for CwtConfig {
    fn default() -> Self {
        Self {
            sampling_period: 1.0,
            method: CwtMethod::Conv,
            precision: 12,
        }
    }
}

/// CWT coefficients, row-major `[scales, time]`.
#[derive(Debug, Clone, PartialEq)]
pub enum CwtCoefs {
    /// From a real wavelet.
    Real(Vec<f64>),
    /// From a complex wavelet.
    Complex(Vec<Complex64>),
}

/// The result of a CWT, as PyWavelets' `(coefs, frequencies)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cwt {
    /// The coefficients, `[scales.len(), len]` row-major.
    pub coefs: CwtCoefs,
    /// The frequency of each scale, `scale2frequency / sampling_period`.
    pub frequencies: Vec<f64>,
    /// The scales.
    pub scales: Vec<f64>,
    /// The number of samples of the signal.
    pub len: usize,
    /// The wavelet sampling precision the coefficients were computed with (for the inverse).
    pub precision: u32,
}

impl Cwt {
    /// The coefficient at `(scale index, time)` as a complex number (imaginary part 0 for a
    /// real wavelet).
    pub fn get(&self, scale: usize, t: usize) -> Complex64 {
        match &self.coefs {
            CwtCoefs::Real(v) => Complex64::new(v[scale * self.len + t], 0.0),
            CwtCoefs::Complex(v) => v[scale * self.len + t],
        }
    }
}

/// The integrated wavelet of one `(wavelet, precision)`: `int_psi` (conjugated for complex
/// wavelets) and the grid step.
#[derive(Debug)]
pub(crate) struct Integrated {
    int_psi: Vec<Complex64>,
    step: f64,
    range: f64,
    central_frequency: f64,
}

impl Integrated {
    fn new(w: &ContinuousWavelet, precision: u32) -> Self {
        let (psi, x) = w.wavefun(precision);
        let step = x[1] - x[0];
        let mut acc = Complex64::new(0.0, 0.0);
        let int_psi = psi
            .iter()
            .map(|&p| {
                acc += p;
                let v = acc * step;
                if w.is_complex() {
                    v.conj()
                } else {
                    v
                }
            })
            .collect();
        Self {
            int_psi,
            step,
            range: x[x.len() - 1] - x[0],
            central_frequency: w.central_frequency(precision),
        }
    }

    /// The differentiated kernel of `scale`, `dk` (length L + 1), and the output offset:
    /// `coef[n] = -sqrt(scale) * (x * dk)[n + offset]`.
    pub(crate) fn kernel(&self, scale: f64) -> Result<(Vec<Complex64>, usize)> {
        let stop = scale * self.range + 1.0;
        let count = stop.ceil() as usize;
        let denom = scale * self.step;
        let m = self.int_psi.len();
        let mut ker: Vec<Complex64> = (0..count)
            .map(|k| (k as f64 / denom) as usize)
            .filter(|&j| j < m)
            .map(|j| self.int_psi[j])
            .collect();
        ker.reverse();
        let l = ker.len();
        if l < 2 {
            return Err(Error::InvalidArgument {
                name: "scales",
                reason: "scale too small for the wavelet's sampling",
            });
        }
        let mut dk = Vec::with_capacity(l + 1);
        dk.push(ker[0]);
        for k in 1..l {
            dk.push(ker[k] - ker[k - 1]);
        }
        dk.push(-ker[l - 1]);
        // diff(conv) has N + L - 2 samples; PyWavelets keeps [floor(d), .. - ceil(d)),
        // d = (L - 2) / 2, and diff(conv)[m] = (x * dk)[m + 1].
        let offset = (l - 2) / 2 + 1;
        Ok((dk, offset))
    }
}

/// Builds CWT plans and caches what they share: integrated wavelets per `(name, precision)` and
/// RustFFT plans per length, as RustFFT's `FftPlanner`.
pub struct CwtPlanner {
    fft: Mutex<FftPlanner<f64>>,
    integrated: Mutex<HashMap<(String, u32), Arc<Integrated>>>,
}

impl std::fmt::Debug for CwtPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CwtPlanner").finish_non_exhaustive()
    }
}

impl Default for CwtPlanner {
    fn default() -> Self {
        Self::new()
    }
}

/// The shared planner of [`cwt()`] keeps sampled wavelets up to this precision.
const SHARED_PRECISION: u32 = 16;

/// Smallest 2^a 3^b 5^c >= n.
pub(crate) fn next_fast_len(n: usize) -> usize {
    let mut best = n.next_power_of_two();
    let mut p5 = 1;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut v = p35;
            while v < n {
                v *= 2;
            }
            best = best.min(v);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

impl CwtPlanner {
    /// An empty planner.
    pub fn new() -> Self {
        Self {
            fft: Mutex::new(FftPlanner::new()),
            integrated: Mutex::new(HashMap::new()),
        }
    }

    /// The planner that [`cwt()`] shares across calls (as scipy.fft caches its plans): it keeps
    /// the FFT plans of the sizes used and the sampled wavelets of precision up to
    /// [`SHARED_PRECISION`] (at most 1 MiB each).
    fn shared() -> &'static CwtPlanner {
        static SHARED: std::sync::OnceLock<CwtPlanner> = std::sync::OnceLock::new();
        SHARED.get_or_init(CwtPlanner::new)
    }

    pub(crate) fn integrated(&self, w: &ContinuousWavelet, precision: u32) -> Arc<Integrated> {
        if precision > SHARED_PRECISION && std::ptr::eq(self, Self::shared()) {
            return Arc::new(Integrated::new(w, precision));
        }
        let key = (w.name().to_string(), precision);
        let mut cache = self.integrated.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            cache
                .entry(key)
                .or_insert_with(|| Arc::new(Integrated::new(w, precision))),
        )
    }

    pub(crate) fn fft_pair(&self, n: usize) -> (Arc<dyn Fft<f64>>, Arc<dyn Fft<f64>>) {
        let mut p = self.fft.lock().unwrap_or_else(|e| e.into_inner());
        (p.plan_fft_forward(n), p.plan_fft_inverse(n))
    }

    /// A plan for the CWT of signals of `len` samples at `scales`: kernels (and their spectra
    /// for the FFT method) are computed once; [`CwtPlan::process`] then transforms any number of
    /// signals.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for no scales or `len == 0`, [`Error::InvalidArgument`] for a scale
    /// that is not finite and positive, a sampling period that is not finite and positive, or a
    /// precision outside 4..=20.
    pub fn plan_cwt(
        &self,
        wavelet: &ContinuousWavelet,
        scales: &[f64],
        len: usize,
        config: &CwtConfig,
    ) -> Result<Arc<CwtPlan>> {
        self.plan_inner(wavelet, scales, len, config, true)
    }

    /// As [`CwtPlanner::plan_cwt`]; `keep_spectra: false` computes the kernel spectra during
    /// [`CwtPlan::process`] instead of storing them (less memory for a one-off transform).
    pub(crate) fn plan_inner(
        &self,
        wavelet: &ContinuousWavelet,
        scales: &[f64],
        len: usize,
        config: &CwtConfig,
        keep_spectra: bool,
    ) -> Result<Arc<CwtPlan>> {
        if scales.is_empty() {
            return Err(Error::EmptyInput {
                context: "cwt scales",
            });
        }
        if len == 0 {
            return Err(Error::EmptyInput {
                context: "cwt signal",
            });
        }
        if scales.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(Error::InvalidArgument {
                name: "scales",
                reason: "scales must be finite and positive",
            });
        }
        if !config.sampling_period.is_finite() || config.sampling_period <= 0.0 {
            return Err(Error::InvalidArgument {
                name: "sampling_period",
                reason: "must be finite and positive",
            });
        }
        if !(4..=20).contains(&config.precision) {
            return Err(Error::InvalidArgument {
                name: "precision",
                reason: "must be in 4..=20",
            });
        }
        let integ = self.integrated(wavelet, config.precision);
        let kernels: Vec<(Vec<Complex64>, usize)> = scales
            .iter()
            .map(|&s| integ.kernel(s))
            .collect::<Result<_>>()?;
        let frequencies = scales
            .iter()
            .map(|&s| integ.central_frequency / s / config.sampling_period)
            .collect();
        let complex = wavelet.is_complex();
        let fft = match config.method {
            CwtMethod::Conv => None,
            CwtMethod::Fft => Some(self.fft_groups(&kernels, len, complex, keep_spectra)),
        };
        Ok(Arc::new(CwtPlan {
            precision: config.precision,
            scales: scales.to_vec(),
            len,
            complex,
            kernels,
            frequencies,
            fft,
        }))
    }
}

/// The kernels of the scales that share one FFT size. In block mode they are convolved with
/// the signal by overlap-save: block `b` holds the outputs `first + b * block ..` (indices of the
/// full convolution `x * dk`), the circular convolution of the segment
/// `x[first + b * block - taps + 1 ..][..size]` with the kernel, read from `taps - 1` on; a short
/// kernel gets a short FFT, and the segment spectra are shared by every scale of the group.
/// Otherwise (`whole`) one circular convolution of the zero-padded signal covers every output,
/// read at `t + offset`.
struct FftGroup {
    size: usize,
    whole: bool,
    /// First output index (of `x * dk`) covered by block 0 (block mode).
    first: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
    /// Longest kernel of the group (taps).
    taps: usize,
    /// Valid outputs per block: `size - taps + 1`.
    block: usize,
    /// Blocks covering every output of the group's scales.
    blocks: usize,
    /// Per FFT: one scale (complex wavelets) or two scales packed as real and imaginary parts.
    items: Vec<Vec<usize>>,
    /// Kernel spectra of the items, if kept (empty for a one-off transform).
    spectra: Vec<Vec<Complex64>>,
}

/// The FFT size for a kernel of `taps` taps and `outputs` wanted outputs in a one-off
/// transform: the power of two with the least work (`blocks * size log size` for the
/// convolution plus `size log size / 2` for the kernel's share of a packed kernel spectrum), or
/// `whole` (one block covering everything) if none is cheaper.
fn block_size(taps: usize, outputs: usize, whole: usize) -> usize {
    let work = |m: usize, blocks: usize| (blocks as f64 + 0.5) * m as f64 * (m as f64).log2();
    let mut best = whole;
    let mut best_cost = work(whole, 1);
    let mut m = 16;
    while m < whole {
        if m > taps {
            let cost = work(m, outputs.div_ceil(m + 1 - taps));
            if cost < best_cost * 0.999 {
                best = m;
                best_cost = cost;
            }
        }
        m *= 2;
    }
    best
}

impl CwtPlanner {
    /// Groups the scales by FFT size and, if `keep_spectra`, computes the kernel spectra.
    fn fft_groups(
        &self,
        kernels: &[(Vec<Complex64>, usize)],
        len: usize,
        complex: bool,
        keep_spectra: bool,
    ) -> Vec<FftGroup> {
        let mut by_size: std::collections::BTreeMap<(usize, bool), Vec<usize>> = Default::default();
        // Outputs (x * dk)[off .. off + len] do not alias in a circular convolution of the
        // zero-padded signal of size >= len + taps - 1 - off.
        let whole = next_fast_len(
            kernels
                .iter()
                .map(|(dk, off)| len + dk.len() - 1 - off)
                .max()
                .unwrap_or(len),
        );
        for (s, (dk, _)) in kernels.iter().enumerate() {
            // A kept plan pays the kernel spectra once: one size for all is then the least
            // work. A one-off transform also pays them, at the size they are used at.
            let size = if keep_spectra {
                whole
            } else {
                block_size(dk.len(), len, whole)
            };
            by_size.entry((size, size == whole)).or_default().push(s);
        }
        by_size
            .into_iter()
            .map(|((size, whole), scales)| {
                let taps = scales
                    .iter()
                    .map(|&s| kernels[s].0.len())
                    .max()
                    .unwrap_or(1);
                let first = scales.iter().map(|&s| kernels[s].1).min().unwrap_or(0);
                let end = scales
                    .iter()
                    .map(|&s| kernels[s].1 + len)
                    .max()
                    .unwrap_or(len);
                let (block, blocks) = if whole {
                    (size, 1)
                } else {
                    let block = size + 1 - taps;
                    (block, (end - first).div_ceil(block))
                };
                let items: Vec<Vec<usize>> = if complex {
                    scales.iter().map(|&s| vec![s]).collect()
                } else {
                    scales.chunks(2).map(<[usize]>::to_vec).collect()
                };
                let (fwd, inv) = self.fft_pair(size);
                let mut spectra = Vec::new();
                if keep_spectra {
                    let mut scratch = vec![Complex64::new(0.0, 0.0); fwd.get_inplace_scratch_len()];
                    for item in &items {
                        let mut t = Vec::new();
                        item_spectrum(kernels, item, size, fwd.as_ref(), &mut scratch, &mut t);
                        spectra.push(t);
                    }
                }
                FftGroup {
                    size,
                    whole,
                    first,
                    fwd,
                    inv,
                    taps,
                    block,
                    blocks,
                    items,
                    spectra,
                }
            })
            .collect()
    }
}

/// Work buffers of [`CwtPlan::process`], sized for its largest group.
struct GroupWork {
    scratch: Vec<Complex64>,
    segs: Vec<Complex64>,
    buf: Vec<Complex64>,
    spectrum: Vec<Complex64>,
}

/// The spectrum (size `p`) of one FFT's kernels: one kernel (complex wavelets), or two real
/// kernels packed as real and imaginary parts.
fn item_spectrum(
    kernels: &[(Vec<Complex64>, usize)],
    item: &[usize],
    p: usize,
    fwd: &dyn Fft<f64>,
    scratch: &mut [Complex64],
    out: &mut Vec<Complex64>,
) {
    out.clear();
    out.extend_from_slice(&kernels[item[0]].0);
    if let Some(&sb) = item.get(1) {
        let dkb = &kernels[sb].0;
        if dkb.len() > out.len() {
            out.resize(dkb.len(), Complex64::new(0.0, 0.0));
        }
        for (a, b) in out.iter_mut().zip(dkb) {
            a.im = b.re;
        }
    }
    out.resize(p, Complex64::new(0.0, 0.0));
    fwd.process_with_scratch(out, scratch);
}

/// A prepared CWT for one wavelet, scale set, signal length and method. Build it with
/// [`CwtPlanner::plan_cwt`].
pub struct CwtPlan {
    precision: u32,
    scales: Vec<f64>,
    len: usize,
    complex: bool,
    kernels: Vec<(Vec<Complex64>, usize)>,
    frequencies: Vec<f64>,
    fft: Option<Vec<FftGroup>>,
}

impl std::fmt::Debug for CwtPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CwtPlan")
            .field("scales", &self.scales)
            .field("len", &self.len)
            .field("complex", &self.complex)
            .finish_non_exhaustive()
    }
}

impl CwtPlan {
    /// The signal length the plan was made for.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Always false: plans are for non-empty signals.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The scales.
    pub fn scales(&self) -> &[f64] {
        &self.scales
    }
    /// The frequency of each scale.
    pub fn frequencies(&self) -> &[f64] {
        &self.frequencies
    }

    /// The CWT of `x`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x.len()` is not the planned length, [`Error::NonFinite`]
    /// for a NaN or infinity.
    pub fn process(&self, x: &[f64]) -> Result<Cwt> {
        if x.len() != self.len {
            return Err(Error::ShapeMismatch {
                context: "CwtPlan::process (signal length vs plan)",
                expected: vec![self.len],
                got: vec![x.len()],
            });
        }
        check_finite(x, "cwt signal")?;
        let n = self.len;
        let ns = self.scales.len();
        let mut real = if self.complex {
            Vec::new()
        } else {
            dmad_core::alloc::zeroed::<f64>(ns * n)
        };
        let mut cplx = if self.complex {
            crate::alloc::zeroed_complex(ns * n)
        } else {
            Vec::new()
        };
        match &self.fft {
            None => {
                for (s, (dk, off)) in self.kernels.iter().enumerate() {
                    let g = -self.scales[s].sqrt();
                    for t in 0..n {
                        // (x * dk)[m] = sum_k x[m - k] dk[k], m = t + off.
                        let m = t + off;
                        let k_lo = m.saturating_sub(n - 1);
                        let k_hi = m.min(dk.len() - 1);
                        let mut acc = Complex64::new(0.0, 0.0);
                        for k in k_lo..=k_hi {
                            acc += dk[k] * x[m - k];
                        }
                        if self.complex {
                            cplx[s * n + t] = acc * g;
                        } else {
                            real[s * n + t] = acc.re * g;
                        }
                    }
                }
            }
            Some(groups) => {
                // Work buffers shared by the groups.
                let zero = Complex64::new(0.0, 0.0);
                let most = |f: &dyn Fn(&FftGroup) -> usize| groups.iter().map(f).max().unwrap_or(0);
                let mut work = GroupWork {
                    scratch: vec![
                        zero;
                        most(&|g| g
                            .fwd
                            .get_inplace_scratch_len()
                            .max(g.inv.get_inplace_scratch_len()))
                    ],
                    segs: Vec::with_capacity(most(&|g| g.blocks * g.size)),
                    buf: vec![zero; most(&|g| g.blocks * g.size)],
                    spectrum: Vec::with_capacity(most(&|g| g.size)),
                };
                for g in groups {
                    self.process_group(g, x, &mut real, &mut cplx, &mut work);
                }
            }
        }
        Ok(Cwt {
            coefs: if self.complex {
                CwtCoefs::Complex(cplx)
            } else {
                CwtCoefs::Real(real)
            },
            frequencies: self.frequencies.clone(),
            scales: self.scales.clone(),
            len: n,
            precision: self.precision,
        })
    }

    /// Overlap-save convolution of `x` with the kernels of one group (see [`FftGroup`]).
    fn process_group(
        &self,
        g: &FftGroup,
        x: &[f64],
        real: &mut [f64],
        cplx: &mut [Complex64],
        work: &mut GroupWork,
    ) {
        let (m, n) = (g.size, self.len);
        let zero = Complex64::new(0.0, 0.0);
        let GroupWork {
            scratch,
            segs,
            buf,
            spectrum: own,
        } = work;
        let scratch = &mut scratch[..g
            .fwd
            .get_inplace_scratch_len()
            .max(g.inv.get_inplace_scratch_len())];
        // Segment spectra: segment b starts at input index first + b * block - (taps - 1)
        // (at 0 for a whole group).
        segs.clear();
        segs.resize(g.blocks * m, zero);
        for (b, seg) in segs.chunks_exact_mut(m).enumerate() {
            let start = if g.whole {
                0
            } else {
                (g.first + b * g.block) as isize - (g.taps as isize - 1)
            };
            for (i, v) in seg.iter_mut().enumerate() {
                let j = start + i as isize;
                if j >= 0 && (j as usize) < n {
                    v.re = x[j as usize];
                }
            }
        }
        g.fwd.process_with_scratch(segs, scratch);
        let norm = 1.0 / m as f64;
        let buf = &mut buf[..g.blocks * m];
        for (q, item) in g.items.iter().enumerate() {
            let spec: &[Complex64] = if g.spectra.is_empty() {
                item_spectrum(&self.kernels, item, m, g.fwd.as_ref(), scratch, own);
                own
            } else {
                &g.spectra[q]
            };
            for (bb, sb) in buf.chunks_exact_mut(m).zip(segs.chunks_exact(m)) {
                for ((o, a), k) in bb.iter_mut().zip(sb).zip(spec) {
                    *o = a * k;
                }
            }
            g.inv.process_with_scratch(buf, scratch);
            for (half, &s) in item.iter().enumerate() {
                let off = self.kernels[s].1;
                let gain = -self.scales[s].sqrt() * norm;
                // Output t is (x * dk)[t + off]: in block mode block (t + off - first) / block,
                // at index (t + off - first) % block + taps - 1 of that block.
                let mut t = 0;
                while t < n {
                    let (src_at, cnt) = if g.whole {
                        (off, n)
                    } else {
                        let pos = t + off - g.first;
                        let (b, r) = (pos / g.block, pos % g.block);
                        (b * m + r + g.taps - 1, (g.block - r).min(n - t))
                    };
                    let src = &buf[src_at..][..cnt];
                    if self.complex {
                        for (o, v) in cplx[s * n + t..][..cnt].iter_mut().zip(src) {
                            *o = v * gain;
                        }
                    } else if half == 0 {
                        for (o, v) in real[s * n + t..][..cnt].iter_mut().zip(src) {
                            *o = v.re * gain;
                        }
                    } else {
                        for (o, v) in real[s * n + t..][..cnt].iter_mut().zip(src) {
                            *o = v.im * gain;
                        }
                    }
                    t += cnt;
                }
            }
        }
    }
}

/// The continuous wavelet transform of `x` at `scales`, as `pywt.cwt(x, scales, wavelet,
/// sampling_period, method, precision=12)`.
///
/// Builds a one-off plan (kernel spectra at the FFT size each scale needs, not kept), with FFT
/// plans and sampled wavelets from a planner shared by all calls; use [`CwtPlanner`] to
/// transform many signals of one length.
///
/// # Errors
/// [`Error::EmptyInput`], [`Error::NonFinite`], [`Error::InvalidArgument`] (see
/// [`CwtPlanner::plan_cwt`]).
///
/// # Example
/// ```
/// use dmad_wavelets::cwt::{cwt, ContinuousWavelet, CwtConfig, CwtMethod};
/// let x: Vec<f64> = (0..256).map(|i| (i as f64 * 0.2).sin()).collect();
/// let w = ContinuousWavelet::new("morl")?;
/// let scales: Vec<f64> = (1..=16).map(f64::from).collect();
/// let cfg = CwtConfig { method: CwtMethod::Fft, ..CwtConfig::default() };
/// let out = cwt(&x, &scales, &w, &cfg)?;
/// assert_eq!(out.frequencies[0], 0.8125); // morl's central frequency at scale 1
/// # Ok::<(), dmad_wavelets::Error>(())
/// ```
pub fn cwt(
    x: &[f64],
    scales: &[f64],
    wavelet: &ContinuousWavelet,
    config: &CwtConfig,
) -> Result<Cwt> {
    if x.is_empty() {
        return Err(Error::EmptyInput {
            context: "cwt signal",
        });
    }
    check_finite(x, "cwt signal")?;
    CwtPlanner::shared()
        .plan_inner(wavelet, scales, x.len(), config, false)?
        .process(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_lengths() {
        assert_eq!(next_fast_len(1), 1);
        assert_eq!(next_fast_len(7), 8);
        assert_eq!(next_fast_len(11), 12);
        assert_eq!(next_fast_len(16513), 16875);
    }

    #[test]
    fn names_parse() {
        for n in [
            "morl",
            "mexh",
            "gaus3",
            "cgau8",
            "cmor1.5-1.0",
            "shan",
            "fbsp2-1-0.5",
        ] {
            ContinuousWavelet::new(n).unwrap();
        }
        for n in ["gaus9", "cmor1.5", "fbsp0.5-1-1", "db4", "shan-1-1"] {
            assert!(matches!(
                ContinuousWavelet::new(n),
                Err(Error::UnknownWavelet { .. })
            ));
        }
    }
}
