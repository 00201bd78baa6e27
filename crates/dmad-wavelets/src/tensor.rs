//! Differentiable DWT and inverse DWT of candle tensors, for networks (the U-Net's wavelet
//! pyramid).
//!
//! The transforms are strided convolutions with the fixed wavelet filters, built only from
//! candle ops (`index_select`/`matmul` for the boundary extension, `conv1d`/`conv2d`, `reshape`),
//! so they run on every candle device (CPU, CUDA, Metal) and candle's autograd differentiates
//! them. Results equal the f64 transforms ([`crate::dwt`], [`crate::dwt2`]) in every one of the
//! nine modes, up to the tensor's float precision.
//!
//! Mode support and cost: `Periodization` (exact halving: `[H, W] -> [H/2, W/2]` for even sizes,
//! the recommended mode inside networks), `Zero`, `Constant`, `Symmetric`, `Reflect`, `Periodic`
//! extend with one `index_select`; `Antisymmetric` adds a sign multiply; `Smooth` and
//! `Antireflect` extend through a small dense matrix product (slower, same results).
//!
//! Inverse lengths follow PyWavelets: `2n` for periodization, `2n - F + 2` otherwise (the
//! original length, or one more for odd lengths).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, DType, Device, DeviceLocation, Layout, Shape, Tensor, D};

use crate::dwt::{dwt_blocks, dwt_coeff_len, extension, idwt_blocks, Real};
use crate::{Error, Mode, Result, Wavelet};

/// Axes up to this length are transformed by a dense matrix product (default).
pub const DENSE_MAX_LEN: usize = 256;

/// Dense analysis (`[n, 2m]`: approximation columns, then detail columns) and synthesis
/// (`[2m, len]`: approximation rows, then detail rows) matrices, per length, device and dtype.
#[derive(Debug, Default)]
struct Matrices {
    cache: Mutex<HashMap<(bool, usize, DeviceLocation, DType), Tensor>>,
}

impl Matrices {
    fn get(
        &self,
        synthesis: bool,
        len: usize,
        w: &Wavelet,
        mode: Mode,
        dev: &Device,
        dtype: DType,
    ) -> Result<Tensor> {
        let key = (synthesis, len, dev.location(), dtype);
        if let Some(t) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(t.clone());
        }
        // Columns/rows are the f64 transforms of unit vectors: exactly the f64 path.
        let (rows, cols, data) = if synthesis {
            let out = crate::dwt::idwt_out_len(len, w.rec_len(), mode);
            let mut data = Vec::with_capacity(2 * len * out);
            for part in 0..2 {
                for o in 0..len {
                    let mut e = vec![0.0; len];
                    e[o] = 1.0;
                    let y = if part == 0 {
                        idwt_blocks(Some(&e), None, 1, len, 1, w, mode)
                    } else {
                        idwt_blocks(None, Some(&e), 1, len, 1, w, mode)
                    };
                    data.extend(y);
                }
            }
            (2 * len, out, data)
        } else {
            let out = dwt_coeff_len(len, w.dec_len(), mode);
            let mut data = vec![0.0; len * 2 * out];
            for i in 0..len {
                let mut e = vec![0.0; len];
                e[i] = 1.0;
                let (a, d) = dwt_blocks(&e, 1, len, 1, w, mode);
                data[i * 2 * out..i * 2 * out + out].copy_from_slice(&a);
                data[i * 2 * out + out..(i + 1) * 2 * out].copy_from_slice(&d);
            }
            (len, 2 * out, data)
        };
        let t = Tensor::from_vec(data, (rows, cols), dev)?.to_dtype(dtype)?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, t.clone());
        Ok(t)
    }
}

/// Extends `x` along `dim` (of length `n`) by `left` and `right` samples in `mode`, with
/// differentiable candle ops. `x_ext[left + i] = x[i]`.
fn pad_dim(x: &Tensor, dim: usize, mode: Mode, left: usize, right: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    if left == 0 && right == 0 {
        return Ok(x.clone());
    }
    if mode == Mode::Zero {
        return Ok(x.pad_with_zeros(dim, left, right)?);
    }
    let (lext, rext) = extension(n, mode, left, right);
    // Position p of the extended axis as (source index, coefficient) terms.
    let mut rows: Vec<Vec<(usize, f64)>> = Vec::with_capacity(left + n + right);
    rows.extend(lext.into_iter().rev());
    rows.extend((0..n).map(|i| vec![(i, 1.0)]));
    rows.extend(rext);
    let single = rows.iter().all(|r| r.len() == 1);
    if single {
        let idx: Vec<u32> = rows.iter().map(|r| r[0].0 as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), x.device())?;
        let y = x.contiguous()?.index_select(&idx, dim)?;
        if rows.iter().all(|r| r[0].1 == 1.0) {
            return Ok(y);
        }
        let mut shape = vec![1usize; x.rank()];
        shape[dim] = rows.len();
        let sign: Vec<f64> = rows.iter().map(|r| r[0].1).collect();
        let sign = Tensor::from_vec(sign, shape, x.device())?.to_dtype(x.dtype())?;
        return Ok(y.broadcast_mul(&sign)?);
    }
    // General linear extension: x_ext = E x along `dim`, E of shape [n_ext, n].
    let mut e = vec![0.0f64; rows.len() * n];
    for (p, r) in rows.iter().enumerate() {
        for &(i, c) in r {
            e[p * n + i] += c;
        }
    }
    let et = Tensor::from_vec(e, (rows.len(), n), x.device())?
        .to_dtype(x.dtype())?
        .t()?;
    let last = x.rank() - 1;
    let xt = x.transpose(dim, last)?.contiguous()?;
    let y = xt.broadcast_matmul(&et)?;
    Ok(y.transpose(dim, last)?.contiguous()?)
}

/// The 2D DWT of `[batch, h, w]` on the CPU with the crate's f64 kernels, as a candle custom op:
/// output `[batch, 4, h', w']` (cA, cH, cV, cD). The backward pass is the adjoint through the
/// dense analysis matrices, `grad_x = M_h grad_Y M_w^T`.
struct Dwt2dCpu {
    wavelet: Wavelet,
    mode: Mode,
    matrices: Arc<Matrices>,
}

impl Dwt2dCpu {
    /// `[batch, h, w]` -> `[batch, 4, h', w']`; returns the data, `h' * w'` and `w'`.
    fn run<T: Real>(&self, x: &[T], batch: usize, h: usize, w: usize) -> (Vec<T>, usize, usize) {
        let ow = dwt_coeff_len(w, self.wavelet.dec_len(), self.mode);
        let oh = dwt_coeff_len(h, self.wavelet.dec_len(), self.mode);
        let band = oh * ow;
        let mut out = Vec::with_capacity(batch * 4 * band);
        // Images in chunks whose intermediates stay in cache (about 256 KiB of input).
        let chunk = (32768 / (h * w).max(1)).clamp(1, batch.max(1));
        let mut b0 = 0;
        while b0 < batch {
            let nb = chunk.min(batch - b0);
            let xs = &x[b0 * h * w..(b0 + nb) * h * w];
            // Along the width (contiguous rows), then along the height (rows as lanes).
            let (a, d) = dwt_blocks(xs, nb * h, w, 1, &self.wavelet, self.mode);
            let (aa, da) = dwt_blocks(&a, nb, h, ow, &self.wavelet, self.mode);
            let (ad, dd) = dwt_blocks(&d, nb, h, ow, &self.wavelet, self.mode);
            for b in 0..nb {
                for src in [&aa, &da, &ad, &dd] {
                    out.extend_from_slice(&src[b * band..(b + 1) * band]);
                }
            }
            b0 += nb;
        }
        (out, band, ow)
    }
}

impl CustomOp1 for Dwt2dCpu {
    fn name(&self) -> &'static str {
        "dmad-dwt2d-cpu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, h, w) = layout.shape().dims3()?;
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("dwt2d: input must be contiguous".into()))?;
        let shape_of = |band: usize, ow: usize| Shape::from((batch, 4, band / ow, ow));
        match storage {
            CpuStorage::F32(v) => {
                let (out, band, ow) = self.run(&v[start..end], batch, h, w);
                Ok((CpuStorage::F32(out), shape_of(band, ow)))
            }
            CpuStorage::F64(v) => {
                let (out, band, ow) = self.run(&v[start..end], batch, h, w);
                Ok((CpuStorage::F64(out), shape_of(band, ow)))
            }
            _ => Err(candle_core::Error::Msg("dwt2d: f32 or f64 only".into())),
        }
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (batch, h, w) = arg.dims3()?;
        let (_, _, oh, ow) = grad.dims4()?;
        let m = |len: usize| {
            self.matrices
                .get(
                    false,
                    len,
                    &self.wavelet,
                    self.mode,
                    arg.device(),
                    arg.dtype(),
                )
                .map_err(|e| candle_core::Error::Msg(e.to_string()))
        };
        let (mh, mw) = (m(h)?, m(w)?); // [h, 2oh], [w, 2ow]
        let g = |k: usize| grad.narrow(1, k, 1).and_then(|t| t.squeeze(1));
        let top = Tensor::cat(&[g(0)?, g(2)?], 2)?;
        let bottom = Tensor::cat(&[g(1)?, g(3)?], 2)?;
        let gy = Tensor::cat(&[top, bottom], 1)?; // [batch, 2oh, 2ow]
        let t = gy
            .reshape((batch * 2 * oh, 2 * ow))?
            .matmul(&mw.t()?)?
            .reshape((batch, 2 * oh, w))?;
        Ok(Some(mh.broadcast_left(batch)?.matmul(&t)?))
    }
}

/// Left and right pads so that `conv(stride 2)` with the reversed filter gives PyWavelets'
/// coefficients: `(left, right, out)`.
fn down_pads(n: usize, f: usize, mode: Mode) -> (usize, usize, usize) {
    let out = dwt_coeff_len(n, f, mode);
    let c0 = if mode == Mode::Periodization {
        f / 2
    } else {
        1
    };
    let left = f - 1 - c0;
    let right = (2 * (out - 1) + f).saturating_sub(left + n);
    (left, right, out)
}

fn reversed(v: &[f64]) -> Vec<f64> {
    v.iter().rev().copied().collect()
}

fn outer(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .flat_map(|&x| b.iter().map(move |&y| x * y))
        .collect()
}

fn kernel(data: Vec<f64>, shape: &[usize], dev: &Device, dtype: DType) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, dev)?.to_dtype(dtype)?)
}

/// Inserts a zero after every element along `dim`: `[.., n, ..] -> [.., 2n, ..]`.
fn upsample_dim(x: &Tensor, dim: usize) -> Result<Tensor> {
    let z = x.zeros_like()?;
    let y = Tensor::stack(&[x, &z], dim + 1)?;
    let mut shape = x.dims().to_vec();
    shape[dim] *= 2;
    Ok(y.reshape(shape)?)
}

/// Pads an upsampled axis for the inverse: one zero on the left (valid reconstruction), or
/// circularly `F/2` left and `F/2 - 1` right (periodization).
fn pad_up(u: &Tensor, dim: usize, f: usize, mode: Mode) -> Result<Tensor> {
    if mode == Mode::Periodization {
        let m = u.dim(dim)?;
        let (l, r) = (f / 2, f / 2 - 1);
        let idx: Vec<u32> = (0..l + m + r)
            .map(|p| ((p + m * (l / m + 1) - l) % m) as u32)
            .collect();
        let len = idx.len();
        let idx = Tensor::from_vec(idx, len, u.device())?;
        Ok(u.contiguous()?.index_select(&idx, dim)?)
    } else {
        Ok(u.pad_with_zeros(dim, 1, 0)?)
    }
}

fn check_rank(x: &Tensor, min: usize, context: &'static str) -> Result<()> {
    if x.rank() < min {
        return Err(Error::ShapeMismatch {
            context,
            expected: vec![0; min],
            got: x.dims().to_vec(),
        });
    }
    if x.dims().iter().rev().take(min).any(|&d| d == 0) {
        return Err(Error::EmptyInput { context });
    }
    Ok(())
}

fn check_inverse_len(n: usize, f: usize, mode: Mode, context: &'static str) -> Result<()> {
    if mode != Mode::Periodization && n < f / 2 {
        return Err(Error::TooShort {
            context,
            len: n,
            min: f / 2,
        });
    }
    Ok(())
}

/// A differentiable single-level 1D DWT over the last axis of a tensor (`[batch, channel,
/// time]`, or any rank >= 1).
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// use dmad_wavelets::{tensor::Dwt1d, Mode, Wavelet};
/// let dwt = Dwt1d::new(&Wavelet::new("db2")?, Mode::Periodization);
/// let x = Tensor::randn(0f32, 1.0, (2, 3, 16), &Device::Cpu)?;
/// let (a, d) = dwt.forward(&x)?; // each [2, 3, 8]
/// let y = dwt.inverse(&a, &d)?; // [2, 3, 16], equal to x
/// assert!(y.sub(&x)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dwt1d {
    wavelet: Wavelet,
    lo: Vec<f64>,
    hi: Vec<f64>,
    rec_lo: Vec<f64>,
    rec_hi: Vec<f64>,
    mode: Mode,
    dense_max: usize,
    cpu_kernels: bool,
    matrices: Arc<Matrices>,
}

impl Dwt1d {
    /// A transform with the given wavelet and extension mode.
    pub fn new(wavelet: &Wavelet, mode: Mode) -> Self {
        Self {
            wavelet: wavelet.clone(),
            dense_max: DENSE_MAX_LEN,
            cpu_kernels: true,
            matrices: Arc::default(),
            lo: wavelet.dec_lo().to_vec(),
            hi: wavelet.dec_hi().to_vec(),
            rec_lo: wavelet.rec_lo().to_vec(),
            rec_hi: wavelet.rec_hi().to_vec(),
            mode,
        }
    }

    /// The extension mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Sets the longest axis transformed by a dense matrix product (default
    /// [`DENSE_MAX_LEN`]); longer axes use a strided convolution. Both give the same values;
    /// the matrix product is much faster on short axes. `0` always convolves.
    pub fn with_dense_max_len(mut self, len: usize) -> Self {
        self.dense_max = len;
        self
    }

    fn matrix(&self, synthesis: bool, len: usize, x: &Tensor) -> Result<Tensor> {
        self.matrices.get(
            synthesis,
            len,
            &self.wavelet,
            self.mode,
            x.device(),
            x.dtype(),
        )
    }

    /// `(approx, detail)` of `x` along its last axis.
    ///
    /// # Shapes
    /// `[..., n] -> ([..., m], [..., m])` with `m = dwt_coeff_len(n, F, mode)`.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for an empty last axis, [`Error::TooShort`] for one sample in
    /// reflect/antireflect mode, and candle errors.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        check_rank(x, 1, "Dwt1d::forward")?;
        let dims = x.dims().to_vec();
        let n = dims[dims.len() - 1];
        if matches!(self.mode, Mode::Reflect | Mode::Antireflect) && n < 2 {
            return Err(Error::TooShort {
                context: "Dwt1d::forward in reflect/antireflect mode",
                len: n,
                min: 2,
            });
        }
        let f = self.lo.len();
        let (left, right, out) = down_pads(n, f, self.mode);
        let batch: usize = dims[..dims.len() - 1].iter().product();
        let mut oshape = dims.clone();
        *oshape.last_mut().expect("rank >= 1") = out;
        if n <= self.dense_max {
            let m = self.matrix(false, n, x)?;
            let y = x.reshape((batch, n))?.matmul(&m)?;
            let a = y.narrow(1, 0, out)?.reshape(oshape.clone())?;
            let d = y.narrow(1, out, out)?.reshape(oshape)?;
            return Ok((a, d));
        }
        let xe = pad_dim(&x.reshape((batch, 1, n))?, 2, self.mode, left, right)?;
        let mut w = reversed(&self.lo);
        w.extend(reversed(&self.hi));
        // conv2d over a height-1 image: candle 0.11's CPU conv1d backward is wrong for batch > 1
        // with two output channels, its conv2d backward is right.
        let w = kernel(w, &[2, 1, 1, f], x.device(), x.dtype())?;
        let y = xe.unsqueeze(2)?.conv2d(&w, 0, 2, 1, 1)?.squeeze(2)?; // [batch, 2, out]
        let a = y.narrow(1, 0, 1)?.reshape(oshape.clone())?;
        let d = y.narrow(1, 1, 1)?.reshape(oshape)?;
        Ok((a, d))
    }

    /// The inverse: a signal from `approx` and `detail` of equal shape.
    ///
    /// # Shapes
    /// `([..., m], [..., m]) -> [..., 2m]` (periodization) or `[..., 2m - F + 2]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ, [`Error::TooShort`] for fewer than `F/2`
    /// coefficients outside periodization, and candle errors.
    pub fn inverse(&self, approx: &Tensor, detail: &Tensor) -> Result<Tensor> {
        check_rank(approx, 1, "Dwt1d::inverse")?;
        if approx.dims() != detail.dims() {
            return Err(Error::ShapeMismatch {
                context: "Dwt1d::inverse (detail vs approx)",
                expected: approx.dims().to_vec(),
                got: detail.dims().to_vec(),
            });
        }
        let dims = approx.dims().to_vec();
        let m = dims[dims.len() - 1];
        let f = self.rec_lo.len();
        check_inverse_len(m, f, self.mode, "Dwt1d::inverse")?;
        let batch: usize = dims[..dims.len() - 1].iter().product();
        if m <= self.dense_max {
            let s = self.matrix(true, m, approx)?;
            let c = Tensor::cat(&[approx, detail], D::Minus1)?.reshape((batch, 2 * m))?;
            let y = c.matmul(&s)?;
            let mut oshape = dims;
            *oshape.last_mut().expect("rank >= 1") = y.dim(1)?;
            return Ok(y.reshape(oshape)?);
        }
        let c = Tensor::stack(&[approx, detail], D::Minus2)?.reshape((batch, 2, m))?;
        let u = pad_up(&upsample_dim(&c, 2)?, 2, f, self.mode)?;
        let mut w = reversed(&self.rec_lo);
        w.extend(reversed(&self.rec_hi));
        let w = kernel(w, &[1, 2, 1, f], approx.device(), approx.dtype())?;
        let y = u.unsqueeze(2)?.conv2d(&w, 0, 1, 1, 1)?.squeeze(2)?; // [batch, 1, len]
        let len = y.dim(2)?;
        let mut oshape = dims;
        *oshape.last_mut().expect("rank >= 1") = len;
        Ok(y.reshape(oshape)?)
    }
}

/// A differentiable single-level 2D DWT over the last two axes of a tensor (`[batch, channel,
/// height, width]`, or any rank >= 2), with PyWavelets' `dwt2` conventions.
///
/// Subbands come in PyWavelets' order `(cA, [cH, cV, cD])`: `cH` is the detail along the height
/// axis (approximation along the width), `cV` the detail along the width, `cD` along both.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// use dmad_wavelets::{tensor::Dwt2d, Mode, Wavelet};
/// let dwt = Dwt2d::new(&Wavelet::new("haar")?, Mode::Periodization);
/// let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu)?;
/// let s = dwt.forward_stacked(&x)?; // [2, 12, 4, 4]: LL of the 3 channels, then cH, cV, cD
/// let y = dwt.inverse_stacked(&s)?;
/// assert!(y.sub(&x)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dwt2d {
    one: Dwt1d,
}

impl Dwt2d {
    /// A transform with the given wavelet and extension mode (the same on both axes).
    pub fn new(wavelet: &Wavelet, mode: Mode) -> Self {
        Self {
            one: Dwt1d::new(wavelet, mode),
        }
    }

    /// The extension mode.
    pub fn mode(&self) -> Mode {
        self.one.mode
    }

    /// As [`Dwt1d::with_dense_max_len`]: both axes no longer than `len` use dense matrix
    /// products (default [`DENSE_MAX_LEN`]), otherwise a strided 2D convolution.
    pub fn with_dense_max_len(mut self, len: usize) -> Self {
        self.one.dense_max = len;
        self
    }

    /// On the CPU, for f32 and f64 tensors, the forward transform runs the crate's f64 kernels
    /// as a candle custom op (its backward pass uses dense matrix products); default `true`.
    /// `false` uses the candle-op paths everywhere (what CUDA and Metal always use).
    pub fn with_cpu_kernels(mut self, on: bool) -> Self {
        self.one.cpu_kernels = on;
        self
    }

    /// `(cA, [cH, cV, cD])` of `x` over its last two axes.
    ///
    /// # Shapes
    /// `[..., h, w] -> [..., h', w']` each, `h' = dwt_coeff_len(h, F, mode)`.
    ///
    /// # Errors
    /// As [`Dwt1d::forward`].
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, [Tensor; 3])> {
        let y = self.forward_bands(x)?;
        let band = |k: usize| -> Result<Tensor> {
            Ok(y.narrow(y.rank() - 3, k, 1)?.squeeze(y.rank() - 3)?)
        };
        Ok((band(0)?, [band(1)?, band(2)?, band(3)?]))
    }

    /// The four subbands as one tensor `[..., 4, h', w']` (order cA, cH, cV, cD).
    fn forward_bands(&self, x: &Tensor) -> Result<Tensor> {
        check_rank(x, 2, "Dwt2d::forward")?;
        let dims = x.dims().to_vec();
        let r = dims.len();
        let (h, w) = (dims[r - 2], dims[r - 1]);
        let mode = self.one.mode;
        if matches!(mode, Mode::Reflect | Mode::Antireflect) && (h < 2 || w < 2) {
            return Err(Error::TooShort {
                context: "Dwt2d::forward in reflect/antireflect mode",
                len: h.min(w),
                min: 2,
            });
        }
        let f = self.one.lo.len();
        let (lh, rh, oh) = down_pads(h, f, mode);
        let (lw, rw, ow) = down_pads(w, f, mode);
        let batch: usize = dims[..r - 2].iter().product();
        let mut oshape = dims[..r - 2].to_vec();
        oshape.extend([4, oh, ow]);
        if self.one.cpu_kernels
            && x.device().is_cpu()
            && matches!(x.dtype(), DType::F32 | DType::F64)
        {
            let op = Dwt2dCpu {
                wavelet: self.one.wavelet.clone(),
                mode,
                matrices: Arc::clone(&self.one.matrices),
            };
            let y = x.reshape((batch, h, w))?.contiguous()?.apply_op1(op)?;
            return Ok(y.reshape(oshape)?);
        }
        if h.max(w) <= self.one.dense_max {
            let mw = self.one.matrix(false, w, x)?; // [w, 2ow]
            let mh = self.one.matrix(false, h, x)?.t()?.contiguous()?; // [2oh, h]
            let y1 = x
                .reshape((batch * h, w))?
                .matmul(&mw)?
                .reshape((batch, h, 2 * ow))?;
            let y2 = mh.broadcast_left(batch)?.matmul(&y1)?; // [batch, 2oh, 2ow]
            let q = |r0: usize, c0: usize| -> Result<Tensor> {
                Ok(y2.narrow(1, r0, oh)?.narrow(2, c0, ow)?)
            };
            // cA, cH (detail along height), cV (detail along width), cD.
            let bands = Tensor::stack(&[q(0, 0)?, q(oh, 0)?, q(0, ow)?, q(oh, ow)?], 1)?;
            return Ok(bands.reshape(oshape)?);
        }
        let xe = x.reshape((batch, 1, h, w))?;
        let xe = pad_dim(&xe, 2, mode, lh, rh)?;
        let xe = pad_dim(&xe, 3, mode, lw, rw)?;
        let (lo, hi) = (reversed(&self.one.lo), reversed(&self.one.hi));
        let mut k = outer(&lo, &lo);
        k.extend(outer(&hi, &lo));
        k.extend(outer(&lo, &hi));
        k.extend(outer(&hi, &hi));
        let k = kernel(k, &[4, 1, f, f], x.device(), x.dtype())?;
        let y = xe.conv2d(&k, 0, 2, 1, 1)?; // [batch, 4, oh, ow]
        Ok(y.reshape(oshape)?)
    }

    /// The four subbands stacked as channels: `[B, C, H, W] -> [B, 4C, H', W']`, subband-major
    /// (channels `0..C` are cA, `C..2C` cH, `2C..3C` cV, `3C..4C` cD).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `x` has rank 4, and the errors of [`Dwt2d::forward`].
    pub fn forward_stacked(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, _, _) = x.dims4().map_err(|_| Error::ShapeMismatch {
            context: "Dwt2d::forward_stacked (expects [B, C, H, W])",
            expected: vec![0; 4],
            got: x.dims().to_vec(),
        })?;
        let y = self.forward_bands(x)?; // [B, C, 4, h, w]
        let (h, w) = (y.dim(3)?, y.dim(4)?);
        Ok(y.transpose(1, 2)?.contiguous()?.reshape((b, 4 * c, h, w))?)
    }

    /// The inverse of [`Dwt2d::forward`].
    ///
    /// # Shapes
    /// four `[..., h, w]` -> `[..., 2h, 2w]` (periodization) or `[..., 2h - F + 2, 2w - F + 2]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the four shapes differ, [`Error::TooShort`] as in
    /// [`Dwt1d::inverse`], and candle errors.
    pub fn inverse(&self, approx: &Tensor, details: &[Tensor; 3]) -> Result<Tensor> {
        check_rank(approx, 2, "Dwt2d::inverse")?;
        for d in details {
            if d.dims() != approx.dims() {
                return Err(Error::ShapeMismatch {
                    context: "Dwt2d::inverse (detail vs approx)",
                    expected: approx.dims().to_vec(),
                    got: d.dims().to_vec(),
                });
            }
        }
        let bands = Tensor::stack(
            &[approx, &details[0], &details[1], &details[2]],
            approx.rank() - 2,
        )?;
        self.inverse_bands(&bands)
    }

    /// `[..., 4, h, w]` (cA, cH, cV, cD) -> `[..., H, W]`.
    fn inverse_bands(&self, bands: &Tensor) -> Result<Tensor> {
        let dims = bands.dims().to_vec();
        let r = dims.len();
        let (h, w) = (dims[r - 2], dims[r - 1]);
        let f = self.one.rec_lo.len();
        let mode = self.one.mode;
        check_inverse_len(h.min(w), f, mode, "Dwt2d::inverse")?;
        let batch: usize = dims[..r - 3].iter().product();
        if h.max(w) <= self.one.dense_max {
            let c = bands.reshape((batch, 4, h, w))?;
            let band = |k: usize| -> Result<Tensor> { Ok(c.narrow(1, k, 1)?.squeeze(1)?) };
            // Rows: approximation then detail along height; columns: along width.
            let top = Tensor::cat(&[band(0)?, band(2)?], 2)?;
            let bottom = Tensor::cat(&[band(1)?, band(3)?], 2)?;
            let y = Tensor::cat(&[top, bottom], 1)?; // [batch, 2h, 2w]
            let sw = self.one.matrix(true, w, bands)?; // [2w, W]
            let sh = self.one.matrix(true, h, bands)?.t()?.contiguous()?; // [H, 2h]
            let ow = sw.dim(1)?;
            let z = y
                .reshape((batch * 2 * h, 2 * w))?
                .matmul(&sw)?
                .reshape((batch, 2 * h, ow))?;
            let out = sh.broadcast_left(batch)?.matmul(&z)?; // [batch, H, W]
            let mut oshape = dims[..r - 3].to_vec();
            oshape.extend([out.dim(1)?, ow]);
            return Ok(out.reshape(oshape)?);
        }
        let c = bands.reshape((batch, 4, h, w))?;
        let u = upsample_dim(&upsample_dim(&c, 2)?, 3)?;
        let u = pad_up(&pad_up(&u, 2, f, mode)?, 3, f, mode)?;
        let (lo, hi) = (reversed(&self.one.rec_lo), reversed(&self.one.rec_hi));
        let mut k = outer(&lo, &lo);
        k.extend(outer(&hi, &lo));
        k.extend(outer(&lo, &hi));
        k.extend(outer(&hi, &hi));
        let k = kernel(k, &[1, 4, f, f], bands.device(), bands.dtype())?;
        let y = u.conv2d(&k, 0, 1, 1, 1)?; // [batch, 1, H, W]
        let (oh, ow) = (y.dim(2)?, y.dim(3)?);
        let mut oshape = dims[..r - 3].to_vec();
        oshape.extend([oh, ow]);
        Ok(y.reshape(oshape)?)
    }

    /// The inverse of [`Dwt2d::forward_stacked`]: `[B, 4C, h, w] -> [B, C, H, W]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `y` has rank 4 with a channel count divisible by 4.
    pub fn inverse_stacked(&self, y: &Tensor) -> Result<Tensor> {
        let bad = || Error::ShapeMismatch {
            context: "Dwt2d::inverse_stacked (expects [B, 4C, h, w])",
            expected: vec![0; 4],
            got: y.dims().to_vec(),
        };
        let (b, c4, h, w) = y.dims4().map_err(|_| bad())?;
        if c4 % 4 != 0 {
            return Err(bad());
        }
        let bands = y
            .reshape((b, 4, c4 / 4, h, w))?
            .transpose(1, 2)?
            .contiguous()?;
        self.inverse_bands(&bands)
    }
}

/// `(approx, detail)` of `x` along its last axis: [`Dwt1d::forward`] in one call.
///
/// # Errors
/// As [`Dwt1d::forward`].
pub fn dwt1d(x: &Tensor, wavelet: &Wavelet, mode: Mode) -> Result<(Tensor, Tensor)> {
    Dwt1d::new(wavelet, mode).forward(x)
}

/// The inverse of [`dwt1d`].
///
/// # Errors
/// As [`Dwt1d::inverse`].
pub fn idwt1d(approx: &Tensor, detail: &Tensor, wavelet: &Wavelet, mode: Mode) -> Result<Tensor> {
    Dwt1d::new(wavelet, mode).inverse(approx, detail)
}

/// `(cA, [cH, cV, cD])` of `x` over its last two axes: [`Dwt2d::forward`] in one call.
///
/// # Errors
/// As [`Dwt2d::forward`].
pub fn dwt2d(x: &Tensor, wavelet: &Wavelet, mode: Mode) -> Result<(Tensor, [Tensor; 3])> {
    Dwt2d::new(wavelet, mode).forward(x)
}

/// The inverse of [`dwt2d`].
///
/// # Errors
/// As [`Dwt2d::inverse`].
pub fn idwt2d(
    approx: &Tensor,
    details: &[Tensor; 3],
    wavelet: &Wavelet,
    mode: Mode,
) -> Result<Tensor> {
    Dwt2d::new(wavelet, mode).inverse(approx, details)
}
