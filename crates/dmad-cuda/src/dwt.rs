//! The single-level 2D DWT of the U-Net's wavelet pyramid (periodization mode) and its
//! inverse, forward and backward, with a CUDA kernel and a CPU twin of the same maths.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use dmad_wavelets::tensor::Dwt2d;
use dmad_wavelets::{Mode, Wavelet};

use crate::util::{cpu_f32, cpu_store, supported};
use crate::{Error, Result};

/// The longest filter the kernels take (db16; longer wavelets use `dmad-wavelets`).
pub const MAX_TAPS: usize = 32;

/// The analysis (`transpose = false`) or its transpose, with filters `lo`, `hi` and a scale:
///
/// `band_k[i, j] = scale * sum_{p, q} fy_k[p] fx_k[q] x[(2i + f/2 - p) mod H, (2j + f/2 - q) mod W]`
///
/// with `(fy, fx)` = `(lo, lo)`, `(hi, lo)`, `(lo, hi)`, `(hi, hi)` for cA, cH, cV, cD.
#[derive(Debug, Clone)]
struct Dwt2Op {
    lo: Vec<f32>,
    hi: Vec<f32>,
    transpose: bool,
    scale: f32,
}

impl Dwt2Op {
    /// `(batch, channels, H, W)` of the full-size side, from the input dims.
    fn full_dims(&self, dims: &[usize]) -> candle_core::Result<(usize, usize, usize, usize)> {
        let [b, c, h, w] = dims else {
            candle_core::bail!("dmad-cuda dwt2: expects rank 4, got {dims:?}")
        };
        Ok(if self.transpose {
            (*b, c / 4, 2 * h, 2 * w)
        } else {
            (*b, *c, *h, *w)
        })
    }

    /// The CPU twin of `dwt2_*` / `idwt2_*`.
    fn run(&self, x: &[f32], b: usize, c: usize, hh: usize, ww: usize) -> Vec<f32> {
        let (h, w, f) = (hh / 2, ww / 2, self.lo.len());
        let c0 = (f / 2) as isize;
        let wrap = |v: isize, n: usize| v.rem_euclid(n as isize) as usize;
        let band = h * w;
        let mut out = vec![0.0f32; b * c * hh * ww];
        let filt = |k: usize, p: usize, q: usize| -> f64 {
            let fy = if k & 1 == 0 { &self.lo } else { &self.hi };
            let fx = if k & 2 == 0 { &self.lo } else { &self.hi };
            fy[p] as f64 * fx[q] as f64
        };
        for bb in 0..b {
            for cc in 0..c {
                let plane = (bb * c + cc) * hh * ww;
                for i in 0..h {
                    for j in 0..w {
                        for k in 0..4 {
                            let bi = bb * 4 * c * band + (k * c + cc) * band + i * w + j;
                            let mut acc = 0.0f64;
                            for p in 0..f {
                                let r = wrap(2 * i as isize + c0 - p as isize, hh);
                                for q in 0..f {
                                    let s = wrap(2 * j as isize + c0 - q as isize, ww);
                                    let xi = plane + r * ww + s;
                                    if self.transpose {
                                        out[xi] +=
                                            (self.scale as f64 * filt(k, p, q) * x[bi] as f64)
                                                as f32;
                                    } else {
                                        acc += filt(k, p, q) * x[xi] as f64;
                                    }
                                }
                            }
                            if !self.transpose {
                                out[bi] = (self.scale as f64 * acc) as f32;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn flipped(&self) -> Self {
        Self {
            transpose: !self.transpose,
            ..self.clone()
        }
    }
}

impl CustomOp1 for Dwt2Op {
    fn name(&self) -> &'static str {
        if self.transpose {
            "dmad-cuda-idwt2"
        } else {
            "dmad-cuda-dwt2"
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, hh, ww) = self.full_dims(l.dims())?;
        let x = cpu_f32(s, l, self.name())?;
        let y = self.run(&x, b, c, hh, ww);
        let shape = if self.transpose {
            Shape::from((b, c, hh, ww))
        } else {
            Shape::from((b, 4 * c, hh / 2, ww / 2))
        };
        Ok((cpu_store(y, s.dtype()), shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, c, hh, ww) = self.full_dims(l.dims())?;
        let filters = crate::cuda::Filters::new(&self.lo, &self.hi);
        let out = crate::cuda::dwt2((s, l), filters, self.transpose, b, c, hh, ww, self.scale)?;
        let shape = if self.transpose {
            Shape::from((b, c, hh, ww))
        } else {
            Shape::from((b, 4 * c, hh / 2, ww / 2))
        };
        Ok((out, shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // The op is linear: its gradient is its transpose applied to the output gradient.
        Ok(Some(grad.contiguous()?.apply_op1(self.flipped())?))
    }
}

/// The periodized single-level 2D DWT of the wavelet pyramid and its inverse, differentiable,
/// on this crate's kernels: CUDA on a CUDA device, the CPU twin (direct sums) on the CPU.
///
/// Results equal [`Dwt2d::forward_stacked`] / [`Dwt2d::inverse_stacked`] in
/// [`Mode::Periodization`] (PyWavelets' `dwt2(..., mode="periodization")`), times `scale`.
/// The backward pass of each is the other's kernel with the same filters (the transpose).
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// use dmad_cuda::Dwt2dPeriodization;
/// let dwt = Dwt2dPeriodization::new(&dmad_wavelets::Wavelet::new("db2")?)?;
/// let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu)?;
/// let bands = dwt.forward_kernel(&x, 1.0)?; // [2, 12, 4, 4]
/// let y = dwt.inverse_kernel(&bands, 1.0)?;
/// assert!(y.sub(&x)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dwt2dPeriodization {
    analysis: (Vec<f32>, Vec<f32>),
    synthesis: (Vec<f32>, Vec<f32>),
    fallback: Dwt2d,
}

impl Dwt2dPeriodization {
    /// The transform of `wavelet`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for filters longer than [`MAX_TAPS`].
    pub fn new(wavelet: &Wavelet) -> Result<Self> {
        if wavelet.dec_len() > MAX_TAPS || wavelet.rec_len() > MAX_TAPS {
            return Err(Error::Unsupported(
                "the DWT kernels take filters of at most 32 taps; use dmad_wavelets::tensor::Dwt2d",
            ));
        }
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        // The synthesis is the transpose of an analysis with the time-reversed rec filters.
        let rev = |v: &[f64]| v.iter().rev().map(|&x| x as f32).collect::<Vec<_>>();
        Ok(Self {
            analysis: (f32s(wavelet.dec_lo()), f32s(wavelet.dec_hi())),
            synthesis: (rev(wavelet.rec_lo()), rev(wavelet.rec_hi())),
            fallback: Dwt2d::new(wavelet, Mode::Periodization),
        })
    }

    fn check(x: &Tensor, bands: bool, context: &'static str) -> Result<()> {
        let ok = match x.dims() {
            [_, c, h, w] => {
                *h > 0 && *w > 0 && (bands && c % 4 == 0 || !bands && h % 2 == 0 && w % 2 == 0)
            }
            _ => false,
        };
        if !ok {
            return Err(Error::ShapeMismatch {
                context,
                expected: if bands {
                    "[B, 4C, h, w] with h, w > 0".into()
                } else {
                    "[B, C, H, W] with even H, W > 0".into()
                },
                got: x.dims().to_vec(),
            });
        }
        if !supported(x.dtype()) {
            return Err(Error::Unsupported(
                "the DWT kernels take f32 or bf16 tensors",
            ));
        }
        Ok(())
    }

    /// `scale` times the DWT of `x`, bands stacked as channels (cA, cH, cV, cD blocks of `C`),
    /// on this crate's kernels.
    ///
    /// # Shapes
    /// `[B, C, H, W]` (even `H`, `W`) -> `[B, 4C, H/2, W/2]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for other shapes, [`Error::Unsupported`] for dtypes other
    /// than f32 and bf16.
    pub fn forward_kernel(&self, x: &Tensor, scale: f64) -> Result<Tensor> {
        Self::check(x, false, "Dwt2dPeriodization::forward (x)")?;
        let op = Dwt2Op {
            lo: self.analysis.0.clone(),
            hi: self.analysis.1.clone(),
            transpose: false,
            scale: scale as f32,
        };
        Ok(x.contiguous()?.apply_op1(op)?)
    }

    /// `scale` times the inverse DWT of stacked bands, on this crate's kernels.
    ///
    /// # Shapes
    /// `[B, 4C, h, w]` -> `[B, C, 2h, 2w]`.
    ///
    /// # Errors
    /// As [`Dwt2dPeriodization::forward_kernel`].
    pub fn inverse_kernel(&self, bands: &Tensor, scale: f64) -> Result<Tensor> {
        Self::check(bands, true, "Dwt2dPeriodization::inverse (bands)")?;
        let op = Dwt2Op {
            lo: self.synthesis.0.clone(),
            hi: self.synthesis.1.clone(),
            transpose: true,
            scale: scale as f32,
        };
        Ok(bands.contiguous()?.apply_op1(op)?)
    }

    /// [`Dwt2dPeriodization::forward_kernel`] on CUDA (f32, bf16, even sizes);
    /// `dmad-wavelets`' [`Dwt2d::forward_stacked`] times `scale` otherwise.
    ///
    /// # Errors
    /// As the path taken.
    pub fn forward_stacked(&self, x: &Tensor, scale: f64) -> Result<Tensor> {
        if x.device().is_cuda() && Self::check(x, false, "").is_ok() {
            return self.forward_kernel(x, scale);
        }
        let y = self.fallback.forward_stacked(x)?;
        Ok(if scale == 1.0 { y } else { (y * scale)? })
    }

    /// [`Dwt2dPeriodization::inverse_kernel`] on CUDA (f32, bf16); `dmad-wavelets`'
    /// [`Dwt2d::inverse_stacked`] times `scale` otherwise.
    ///
    /// # Errors
    /// As the path taken.
    pub fn inverse_stacked(&self, bands: &Tensor, scale: f64) -> Result<Tensor> {
        if bands.device().is_cuda() && Self::check(bands, true, "").is_ok() {
            return self.inverse_kernel(bands, scale);
        }
        let y = self.fallback.inverse_stacked(bands)?;
        Ok(if scale == 1.0 { y } else { (y * scale)? })
    }
}
