//! Convolutions through tiled im2col and the `gemm` crate, and Winograd F(2x2, 3x3) for 3x3
//! kernels at stride 1 (module `winograd`).

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use candle_nn::{Conv1dConfig, Conv2dConfig};
use rayon::prelude::*;

use crate::util::{cpu_slice, gemm, use_cpu_kernel, with_f32, Mat, SendPtr};
use crate::{Error, Result};
use dmad_core::alloc::zeroed;

mod winograd;

/// Bytes of im2col columns per tile: small enough to stay in a core's L2 cache.
const TILE_BYTES: usize = 256 * 1024;

/// The geometry of one 2D convolution (a 1D one has `h = kh = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geom {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    groups: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn cin_g(&self) -> usize {
        self.cin / self.groups
    }
    fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
    /// Rows of the im2col matrix of one group.
    fn k(&self) -> usize {
        self.cin_g() * self.kh * self.kw
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// A 1x1 kernel at stride 1 without padding: the input is its own im2col matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    /// Output rows per tile.
    fn tile_rows(&self) -> usize {
        let pixels = (TILE_BYTES / 4 / self.k()).max(1);
        (pixels / self.wo).clamp(1, self.ho)
    }
    fn tiles(&self) -> usize {
        self.ho.div_ceil(self.tile_rows())
    }
    fn tile(&self, t: usize) -> (usize, usize) {
        let r = self.tile_rows();
        (t * r, ((t + 1) * r).min(self.ho))
    }
    /// The range of output columns `ow` whose input column `ow * sw + off` lies inside.
    fn valid_cols(&self, off: isize) -> (usize, usize) {
        let (sw, w, wo) = (self.sw as isize, self.w as isize, self.wo as isize);
        let lo = if off >= 0 { 0 } else { (-off + sw - 1) / sw };
        let hi = if w - off <= 0 {
            0
        } else {
            (w - off + sw - 1) / sw
        };
        let lo = lo.min(wo) as usize;
        (lo, (hi.min(wo) as usize).max(lo))
    }

    /// Fills `cols` (`k x (oh1 - oh0) * wo`) with the patches of output rows `oh0..oh1` of
    /// `xg` (`cin_g x h x w`, one sample and group).
    fn im2col(&self, xg: &[f32], oh0: usize, oh1: usize, cols: &mut [f32]) {
        let t = (oh1 - oh0) * self.wo;
        for ci in 0..self.cin_g() {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = (ci * self.kh + ki) * self.kw + kj;
                    let dst = &mut cols[row * t..(row + 1) * t];
                    let off = (kj * self.dw) as isize - self.pw as isize;
                    let (lo, hi) = self.valid_cols(off);
                    for (r, oh) in (oh0..oh1).enumerate() {
                        let d = &mut dst[r * self.wo..(r + 1) * self.wo];
                        let ih = (oh * self.sh + ki * self.dh) as isize - self.ph as isize;
                        if ih < 0 || ih >= self.h as isize {
                            d.fill(0.0);
                            continue;
                        }
                        let xrow = &xg[(ci * self.h + ih as usize) * self.w..][..self.w];
                        d[..lo].fill(0.0);
                        d[hi..].fill(0.0);
                        if self.sw == 1 {
                            let s = (lo as isize + off) as usize;
                            d[lo..hi].copy_from_slice(&xrow[s..s + hi - lo]);
                        } else {
                            for (ow, v) in d.iter_mut().enumerate().take(hi).skip(lo) {
                                *v = xrow[(ow as isize * self.sw as isize + off) as usize];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the columns `cols` back into `dxg` (the transpose of [`Geom::im2col`]).
    fn col2im(&self, cols: &[f32], oh0: usize, oh1: usize, dxg: &mut [f32]) {
        let t = (oh1 - oh0) * self.wo;
        for ci in 0..self.cin_g() {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = (ci * self.kh + ki) * self.kw + kj;
                    let src = &cols[row * t..(row + 1) * t];
                    let off = (kj * self.dw) as isize - self.pw as isize;
                    let (lo, hi) = self.valid_cols(off);
                    for (r, oh) in (oh0..oh1).enumerate() {
                        let ih = (oh * self.sh + ki * self.dh) as isize - self.ph as isize;
                        if ih < 0 || ih >= self.h as isize {
                            continue;
                        }
                        let s = &src[r * self.wo..(r + 1) * self.wo];
                        let xrow = &mut dxg[(ci * self.h + ih as usize) * self.w..][..self.w];
                        if self.sw == 1 {
                            let b = (lo as isize + off) as usize;
                            for (d, v) in xrow[b..b + hi - lo].iter_mut().zip(&s[lo..hi]) {
                                *d += v;
                            }
                        } else {
                            for (ow, v) in s.iter().enumerate().take(hi).skip(lo) {
                                xrow[(ow as isize * self.sw as isize + off) as usize] += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The forward pass: Winograd F(2x2, 3x3) where it applies, tiled im2col otherwise.
    fn forward(&self, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        if self.winograd_ok() {
            self.wino_forward(x, &self.wino_weights(wt), bias)
        } else {
            self.im2col_forward(x, wt, bias)
        }
    }

    /// Returns `(dx, dweight)`: Winograd F(2x2, 3x3) where it applies, tiled im2col otherwise.
    fn backward(&self, x: &[f32], wt: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        if self.winograd_ok() {
            self.wino_backward(x, wt, dy)
        } else {
            self.im2col_backward(x, wt, dy)
        }
    }

    fn im2col_forward(&self, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (p, k, cout_g, cin_g, hw) =
            (self.p(), self.k(), self.cout_g(), self.cin_g(), self.hw());
        let mut out = zeroed(self.n * self.cout * p);
        let tiles = self.tiles();
        let jobs = self.n * self.groups * tiles;
        let outp = SendPtr(out.as_mut_ptr());
        let run = |job: usize, cols: &mut Vec<f32>, parallel: bool| {
            let (ng, tile) = (job / tiles, job % tiles);
            let (b, g) = (ng / self.groups, ng % self.groups);
            let (oh0, oh1) = self.tile(tile);
            let t = (oh1 - oh0) * self.wo;
            let xg = &x[(b * self.cin + g * cin_g) * hw..][..cin_g * hw];
            let rhs = if self.pointwise() {
                Mat {
                    ptr: xg[oh0 * self.wo..].as_ptr(),
                    rs: hw,
                    cs: 1,
                }
            } else {
                cols.resize(k * t, 0.0);
                self.im2col(xg, oh0, oh1, cols);
                Mat {
                    ptr: cols.as_ptr(),
                    rs: t,
                    cs: 1,
                }
            };
            let row0 = b * self.cout + g * cout_g;
            // SAFETY: this job alone writes columns oh0*wo..oh1*wo of rows row0..row0+cout_g.
            let dst = unsafe { outp.get().add(row0 * p + oh0 * self.wo) };
            if let Some(bias) = bias {
                for co in 0..cout_g {
                    // SAFETY: as above; the row segment has t values.
                    let d = unsafe { std::slice::from_raw_parts_mut(dst.add(co * p), t) };
                    d.fill(bias[g * cout_g + co]);
                }
            }
            let lhs = Mat {
                ptr: wt[g * cout_g * k..].as_ptr(),
                rs: k,
                cs: 1,
            };
            // SAFETY: all views lie inside their buffers (shapes checked by the caller).
            unsafe { gemm(cout_g, t, k, dst, p, bias.is_some(), lhs, rhs, parallel) };
        };
        if jobs >= rayon::current_num_threads() {
            (0..jobs)
                .into_par_iter()
                .for_each_init(Vec::new, |cols, job| run(job, cols, false));
        } else {
            let mut cols = Vec::new();
            (0..jobs).for_each(|job| run(job, &mut cols, true));
        }
        out
    }

    /// Returns `(dx, dweight)` through im2col.
    fn im2col_backward(&self, x: &[f32], wt: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (p, k, cout_g, cin_g, hw) =
            (self.p(), self.k(), self.cout_g(), self.cin_g(), self.hw());
        let mut dx = zeroed(x.len());
        let dxp = SendPtr(dx.as_mut_ptr());
        let wlen = self.cout * k;
        let job = |ng: usize,
                   dw: &mut Vec<f32>,
                   cols: &mut Vec<f32>,
                   dcols: &mut Vec<f32>,
                   parallel: bool| {
            let (b, g) = (ng / self.groups, ng % self.groups);
            let xg = &x[(b * self.cin + g * cin_g) * hw..][..cin_g * hw];
            // SAFETY: this job alone writes the group's channels of sample b.
            let dxg = unsafe {
                std::slice::from_raw_parts_mut(
                    dxp.get().add((b * self.cin + g * cin_g) * hw),
                    cin_g * hw,
                )
            };
            let wg = &wt[g * cout_g * k..][..cout_g * k];
            let dwg = &mut dw[g * cout_g * k..][..cout_g * k];
            for tile in 0..self.tiles() {
                let (oh0, oh1) = self.tile(tile);
                let t = (oh1 - oh0) * self.wo;
                let dyt = Mat {
                    ptr: dy[(b * self.cout + g * cout_g) * p + oh0 * self.wo..].as_ptr(),
                    rs: p,
                    cs: 1,
                };
                let wt_t = Mat {
                    ptr: wg.as_ptr(),
                    rs: 1,
                    cs: k,
                };
                if self.pointwise() {
                    let xt = Mat {
                        ptr: xg[oh0 * self.wo..].as_ptr(),
                        rs: 1,
                        cs: hw,
                    };
                    // SAFETY: views inside their buffers; dw and dx regions are this job's own.
                    unsafe {
                        gemm(cout_g, k, t, dwg.as_mut_ptr(), k, true, dyt, xt, parallel);
                        let dst = dxg[oh0 * self.wo..].as_mut_ptr();
                        gemm(k, t, cout_g, dst, hw, false, wt_t, dyt, parallel);
                    }
                } else {
                    cols.resize(k * t, 0.0);
                    dcols.resize(k * t, 0.0);
                    self.im2col(xg, oh0, oh1, cols);
                    let ct = Mat {
                        ptr: cols.as_ptr(),
                        rs: 1,
                        cs: t,
                    };
                    // SAFETY: views inside their buffers; dw is this job's accumulator.
                    unsafe {
                        gemm(cout_g, k, t, dwg.as_mut_ptr(), k, true, dyt, ct, parallel);
                        gemm(
                            k,
                            t,
                            cout_g,
                            dcols.as_mut_ptr(),
                            t,
                            false,
                            wt_t,
                            dyt,
                            parallel,
                        );
                    }
                    self.col2im(dcols, oh0, oh1, dxg);
                }
            }
        };
        let jobs = self.n * self.groups;
        let dw = if jobs >= rayon::current_num_threads() {
            // Fixed chunks of jobs, each with its own accumulator, summed in chunk order: the
            // result does not depend on how rayon schedules the jobs (a `fold`/`reduce` would
            // sum in an order that depends on work stealing).
            let per = jobs.div_ceil(DW_CHUNKS);
            let partials: Vec<Vec<f32>> = (0..jobs.div_ceil(per))
                .into_par_iter()
                .map(|chunk| {
                    let (mut dw, mut cols, mut dcols) =
                        (vec![0.0f32; wlen], Vec::new(), Vec::new());
                    for ng in chunk * per..((chunk + 1) * per).min(jobs) {
                        job(ng, &mut dw, &mut cols, &mut dcols, false);
                    }
                    dw
                })
                .collect();
            let mut it = partials.into_iter();
            let mut dw = it.next().unwrap_or_else(|| vec![0.0f32; wlen]);
            for p in it {
                dw.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
            }
            dw
        } else {
            let (mut dw, mut cols, mut dcols) = (vec![0.0f32; wlen], Vec::new(), Vec::new());
            (0..jobs).for_each(|ng| job(ng, &mut dw, &mut cols, &mut dcols, true));
            dw
        };
        (dx, dw)
    }
}

/// The number of partial weight gradients of a parallel convolution backward pass (fixed, so
/// that the summation order is the same for every thread count and schedule).
const DW_CHUNKS: usize = 8;

/// Sum of `dy` (`[n, c, p]`) over samples and positions, per channel.
fn bias_grad(dy: &[f32], n: usize, c: usize, p: usize) -> Vec<f32> {
    (0..c)
        .into_par_iter()
        .map(|co| {
            let s: f64 = (0..n)
                .map(|b| {
                    dy[(b * c + co) * p..][..p]
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>()
                })
                .sum();
            s as f32
        })
        .collect()
}

/// The custom op: `x`, `weight` and, when `bias` is set, a bias as third argument.
#[derive(Debug, Clone, Copy)]
struct ConvOp {
    geom: Geom,
    /// Output rank: 3 for conv1d, 4 for conv2d.
    rank: usize,
}

impl ConvOp {
    fn out_shape(&self) -> Shape {
        let g = &self.geom;
        if self.rank == 3 {
            Shape::from((g.n, g.cout, g.wo))
        } else {
            Shape::from((g.n, g.cout, g.ho, g.wo))
        }
    }

    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Vec<f32>)> {
        let (dx, dw, db) = with_f32(&[x, w, grad], "dmad-conv", |s| {
            let (dx, dw) = self.geom.backward(s[0], s[1], s[2]);
            let db = bias_grad(s[2], self.geom.n, self.geom.cout, self.geom.p());
            Ok((dx, dw, db))
        })?;
        let dev = x.device();
        Ok((
            Tensor::from_vec(dx, x.shape(), dev)?,
            Tensor::from_vec(dw, w.shape(), dev)?,
            db,
        ))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "dmad-conv"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_slice(s1, l1, "dmad-conv")?;
        let w = cpu_slice(s2, l2, "dmad-conv")?;
        Ok((
            CpuStorage::F32(self.geom.forward(x, w, None)),
            self.out_shape(),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.grads(x, w, grad)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "dmad-conv-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_slice(s1, l1, "dmad-conv-bias")?;
        let w = cpu_slice(s2, l2, "dmad-conv-bias")?;
        let b = cpu_slice(s3, l3, "dmad-conv-bias")?;
        Ok((
            CpuStorage::F32(self.geom.forward(x, w, Some(b))),
            self.out_shape(),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.grads(x, w, grad)?;
        Ok((
            Some(dx),
            Some(dw),
            Some(Tensor::from_vec(db, b.shape(), b.device())?),
        ))
    }
}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidConfig { field, reason }
}

/// Checks the arguments and returns the geometry (of a `1 x len` image for conv1d).
#[allow(clippy::too_many_arguments)]
fn geometry(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    rank: usize,
    padding: usize,
    stride: usize,
    dilation: usize,
    groups: usize,
) -> Result<Geom> {
    let what = if rank == 3 { "conv1d" } else { "conv2d" };
    let (xd, wd) = (x.dims(), w.dims());
    if xd.len() != rank {
        return Err(Error::ShapeMismatch {
            context: if rank == 3 { "conv1d: x" } else { "conv2d: x" },
            expected: format!(
                "rank {rank}: [batch, channels, {}]",
                if rank == 3 { "len" } else { "h, w" }
            ),
            got: xd.to_vec(),
        });
    }
    if wd.len() != rank {
        return Err(Error::ShapeMismatch {
            context: if rank == 3 {
                "conv1d: weight"
            } else {
                "conv2d: weight"
            },
            expected: format!("rank {rank}: [out, in / groups, kernel...]"),
            got: wd.to_vec(),
        });
    }
    if stride == 0 {
        return Err(invalid(
            "stride",
            format!("is 0 in {what}; it must be at least 1"),
        ));
    }
    if dilation == 0 {
        return Err(invalid(
            "dilation",
            format!("is 0 in {what}; it must be at least 1"),
        ));
    }
    let (cin, cout) = (xd[1], wd[0]);
    if groups == 0 || cin % groups != 0 || cout % groups != 0 {
        return Err(invalid(
            "groups",
            format!(
                "is {groups} in {what}; it must divide both {cin} input and {cout} output channels"
            ),
        ));
    }
    if wd[1] * groups != cin {
        return Err(Error::ShapeMismatch {
            context: if rank == 3 {
                "conv1d: weight"
            } else {
                "conv2d: weight"
            },
            expected: format!(
                "[{cout}, {} (= {cin} input channels / {groups} groups), ...]",
                cin / groups
            ),
            got: wd.to_vec(),
        });
    }
    if let Some(b) = bias {
        if b.dims() != [cout] {
            return Err(Error::ShapeMismatch {
                context: if rank == 3 {
                    "conv1d: bias"
                } else {
                    "conv2d: bias"
                },
                expected: format!("[{cout}]"),
                got: b.dims().to_vec(),
            });
        }
    }
    let (h, wi, kh, kw, ph) = if rank == 3 {
        (1, xd[2], 1, wd[2], 0)
    } else {
        (xd[2], xd[3], wd[2], wd[3], padding)
    };
    let span = |k: usize| dilation * (k.max(1) - 1) + 1;
    if h + 2 * ph < span(kh) || wi + 2 * padding < span(kw) || kh == 0 || kw == 0 {
        return Err(Error::ShapeMismatch {
            context: if rank == 3 { "conv1d: x" } else { "conv2d: x" },
            expected: format!(
                "spatial size (plus padding {padding}) at least the dilated kernel {:?}",
                &wd[2..]
            ),
            got: xd.to_vec(),
        });
    }
    let (sh, dh) = if rank == 3 {
        (1, 1)
    } else {
        (stride, dilation)
    };
    Ok(Geom {
        n: xd[0],
        cin,
        h,
        w: wi,
        cout,
        kh,
        kw,
        ph,
        pw: padding,
        sh,
        sw: stride,
        dh,
        dw: dilation,
        groups,
        ho: (h + 2 * ph - span(kh)) / sh + 1,
        wo: (wi + 2 * padding - span(kw)) / stride + 1,
    })
}

fn run(op: ConvOp, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    if op.geom.n == 0 || op.geom.p() == 0 || op.geom.cout == 0 {
        return Ok(Tensor::zeros(op.out_shape(), x.dtype(), x.device())?);
    }
    Ok(match bias {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op)?,
        None => x.apply_op2(&w, op)?,
    })
}

/// 2D convolution (cross-correlation, like candle and PyTorch) with an optional bias:
/// `candle_nn::Conv2d::new(weight, bias, *cfg).forward(x)`.
///
/// Fast path for f32 on the CPU (tiled im2col + `gemm`; Winograd F(2x2, 3x3) for 3x3 kernels at
/// stride 1 without dilation, padding at most 2 and at least 8 channels per group; backward
/// for `x`, `weight` and `bias`); candle's own `conv2d` elsewhere. `cfg.cudnn_fwd_algo` only matters on that fallback.
///
/// # Shapes
/// `x`: `[batch, in, h, w]`; `weight`: `[out, in / groups, kh, kw]`; `bias`: `[out]`;
/// output: `[batch, out, (h + 2p - d(kh - 1) - 1) / s + 1, (w + 2p - d(kw - 1) - 1) / s + 1]`.
///
/// # Errors
/// [`Error::ShapeMismatch`] for wrong ranks, a weight or bias that does not fit the channels, an
/// input smaller than the dilated kernel; [`Error::InvalidConfig`] for a zero stride or
/// dilation, or groups that do not divide the channels.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::randn(0f32, 1.0, (1, 4, 8, 8), &Device::Cpu)?;
/// let w = Tensor::randn(0f32, 0.1, (6, 4, 3, 3), &Device::Cpu)?;
/// let cfg = candle_nn::Conv2dConfig { stride: 2, padding: 1, ..Default::default() };
/// assert_eq!(dmad_ops::conv2d(&x, &w, None, &cfg)?.dims(), &[1, 6, 4, 4]);
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    cfg: &Conv2dConfig,
) -> Result<Tensor> {
    let geom = geometry(
        x,
        weight,
        bias,
        4,
        cfg.padding,
        cfg.stride,
        cfg.dilation,
        cfg.groups,
    )?;
    let mut ts = vec![x, weight];
    ts.extend(bias);
    if !use_cpu_kernel(&ts) {
        let conv = candle_nn::Conv2d::new(weight.clone(), bias.cloned(), *cfg);
        return Ok(candle_core::Module::forward(&conv, x)?);
    }
    run(ConvOp { geom, rank: 4 }, x, weight, bias)
}

/// The gradients `(dx, dweight, dbias)` of [`conv2d`] (with a bias) for the upstream gradient
/// `dy`: the vector-Jacobian product that autograd runs, without a graph. `dbias` is the
/// gradient of a bias whether or not the forward pass had one.
///
/// On the CPU in f32 these are the kernels behind the op's backward pass (Winograd or im2col as
/// in the forward); elsewhere candle's autograd of its own `conv2d`.
///
/// # Shapes
/// As [`conv2d`]; `dy` like its output; `dbias`: `[out]`.
///
/// # Errors
/// As [`conv2d`], and [`Error::ShapeMismatch`] when `dy` is not shaped like the output.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::randn(0f32, 1.0, (1, 4, 8, 8), &Device::Cpu)?;
/// let w = Tensor::randn(0f32, 0.1, (6, 4, 3, 3), &Device::Cpu)?;
/// let cfg = candle_nn::Conv2dConfig { padding: 1, ..Default::default() };
/// let dy = Tensor::ones((1, 6, 8, 8), candle_core::DType::F32, &Device::Cpu)?;
/// let (dx, dw, db) = dmad_ops::conv2d_backward(&x, &w, &cfg, &dy)?;
/// assert_eq!((dx.dims(), dw.dims(), db.dims()), (x.dims(), w.dims(), &[6][..]));
/// # Ok::<(), dmad_ops::Error>(())
/// ```
pub fn conv2d_backward(
    x: &Tensor,
    weight: &Tensor,
    cfg: &Conv2dConfig,
    dy: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let geom = geometry(
        x,
        weight,
        None,
        4,
        cfg.padding,
        cfg.stride,
        cfg.dilation,
        cfg.groups,
    )?;
    let op = ConvOp { geom, rank: 4 };
    if dy.shape() != &op.out_shape() {
        return Err(Error::ShapeMismatch {
            context: "conv2d_backward: dy",
            expected: format!("{:?}, the shape of the output", op.out_shape().dims()),
            got: dy.dims().to_vec(),
        });
    }
    if !use_cpu_kernel(&[x, weight, dy]) || geom.n == 0 || geom.p() == 0 || geom.cout == 0 {
        let bias = Tensor::zeros(geom.cout, x.dtype(), x.device())?;
        let g = crate::util::autograd_vjp(&[x, weight, &bias], dy, |t| {
            let conv = candle_nn::Conv2d::new(t[1].clone(), Some(t[2].clone()), *cfg);
            Ok(candle_core::Module::forward(&conv, &t[0])?)
        })?;
        return Ok((g[0].clone(), g[1].clone(), g[2].clone()));
    }
    let (dx, dw, db) = op.grads(&x.contiguous()?, &weight.contiguous()?, dy)?;
    Ok((dx, dw, Tensor::from_vec(db, geom.cout, x.device())?))
}

/// 1D convolution with an optional bias: `candle_nn::Conv1d::new(weight, bias, *cfg).forward(x)`.
///
/// Computed as a `1 x k` [`conv2d`] on the CPU, so its backward pass is exact for every batch
/// size and kernel width (candle 0.11.1's own `conv1d` backward is not).
///
/// # Shapes
/// `x`: `[batch, in, len]`; `weight`: `[out, in / groups, k]`; `bias`: `[out]`;
/// output: `[batch, out, (len + 2p - d(k - 1) - 1) / s + 1]`.
///
/// # Errors
/// As [`conv2d`].
pub fn conv1d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    cfg: &Conv1dConfig,
) -> Result<Tensor> {
    let geom = geometry(
        x,
        weight,
        bias,
        3,
        cfg.padding,
        cfg.stride,
        cfg.dilation,
        cfg.groups,
    )?;
    let mut ts = vec![x, weight];
    ts.extend(bias);
    if !use_cpu_kernel(&ts) {
        let conv = candle_nn::Conv1d::new(weight.clone(), bias.cloned(), *cfg);
        return Ok(candle_core::Module::forward(&conv, x)?);
    }
    run(ConvOp { geom, rank: 3 }, x, weight, bias)
}

/// [`conv2d`] with the weight, bias and configuration of a `candle_nn::Conv2d` layer (so layers
/// built by `candle_nn::conv2d(.., vb)` keep their parameter names).
///
/// # Errors
/// As [`conv2d`].
pub fn conv2d_layer(conv: &candle_nn::Conv2d, x: &Tensor) -> Result<Tensor> {
    conv2d(x, conv.weight(), conv.bias(), conv.config())
}

/// [`conv1d`] with the parameters of a `candle_nn::Conv1d` layer.
///
/// # Errors
/// As [`conv2d`].
pub fn conv1d_layer(conv: &candle_nn::Conv1d, x: &Tensor) -> Result<Tensor> {
    conv1d(x, conv.weight(), conv.bias(), conv.config())
}
