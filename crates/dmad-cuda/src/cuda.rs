//! Launch glue of the CUDA kernels (`kernels/*.cu`, compiled to PTX by `build.rs`).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{CudaStorage, DType, Layout, Result};

const GROUP_NORM: &str = include_str!(concat!(env!("OUT_DIR"), "/group_norm.ptx"));
const DWT: &str = include_str!(concat!(env!("OUT_DIR"), "/dwt.ptx"));
const SAMPLER: &str = include_str!(concat!(env!("OUT_DIR"), "/sampler.ptx"));
const ATTENTION: &str = include_str!(concat!(env!("OUT_DIR"), "/attention.ptx"));

/// Threads per block of the elementwise kernels.
const BLOCK: u32 = 256;

/// Threads per block of the GroupNorm kernels (one block per group of `len` values): more for
/// large groups, so that the few blocks of a 256x256 layer still fill the SMs.
fn group_block(len: usize) -> u32 {
    if len >= 1 << 16 {
        1024
    } else {
        256
    }
}

fn view<'a, T: CudaDType>(
    s: &'a CudaStorage,
    l: &Layout,
    op: &'static str,
) -> Result<CudaView<'a, T>> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: expects contiguous inputs")))?;
    Ok(s.as_cuda_slice::<T>()?.slice(a..b))
}

fn grid(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((n as u32).div_ceil(BLOCK), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Calls `$body` with `$t` bound to the Rust type and `$sfx` to the kernel suffix of `$dtype`.
macro_rules! by_dtype {
    ($dtype:expr, $op:expr, |$t:ident, $sfx:ident| $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                let $sfx = "f32";
                $body
            }
            DType::BF16 => {
                type $t = half::bf16;
                let $sfx = "bf16";
                $body
            }
            d => candle_core::bail!("{}: f32 or bf16 only, got {d:?}", $op),
        }
    };
}

/// GroupNorm (+ SiLU) forward: `x [N, C, ...]`, `gamma`, `beta` `[C]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn group_norm_fwd(
    x: (&CudaStorage, &Layout),
    gamma: (&CudaStorage, &Layout),
    beta: (&CudaStorage, &Layout),
    groups: usize,
    eps: f32,
    silu: bool,
) -> Result<CudaStorage> {
    const OP: &str = "dmad-cuda group_norm";
    let dims = x.1.dims();
    let (n, c, hw) = (dims[0], dims[1], dims[2..].iter().product::<usize>());
    let dev = x.0.device.clone();
    by_dtype!(x.0.dtype(), OP, |T, sfx| {
        let (xv, gv, bv) = (
            view::<T>(x.0, x.1, OP)?,
            view::<T>(gamma.0, gamma.1, OP)?,
            view::<T>(beta.0, beta.1, OP)?,
        );
        // SAFETY: every element is written by the kernel.
        let out = unsafe { dev.alloc::<T>(n * c * hw)? };
        let func =
            dev.get_or_load_custom_func(&format!("gn_fwd_{sfx}"), "dmad_group_norm", GROUP_NORM)?;
        let (ci, gi, hwi, si) = (c as i32, groups as i32, hw as i32, silu as i32);
        let mut b = func.builder();
        b.arg(&xv)
            .arg(&gv)
            .arg(&bv)
            .arg(&out)
            .arg(&ci)
            .arg(&gi)
            .arg(&hwi)
            .arg(&eps)
            .arg(&si);
        let cfg = LaunchConfig {
            grid_dim: ((n * groups) as u32, 1, 1),
            block_dim: (group_block(c / groups * hw), 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: argument types and order match `gn_fwd_*` in kernels/group_norm.cu.
        unsafe { b.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    })
}

/// GroupNorm (+ SiLU) backward: `gb` is `[2, C]` (gamma, beta); the output packs `dx`, then
/// the per-sample partial `dgamma [N, C]` and `dbeta [N, C]`.
pub(crate) fn group_norm_bwd(
    x: (&CudaStorage, &Layout),
    gb: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
    groups: usize,
    eps: f32,
    silu: bool,
) -> Result<CudaStorage> {
    const OP: &str = "dmad-cuda group_norm backward";
    let dims = x.1.dims();
    let (n, c, hw) = (dims[0], dims[1], dims[2..].iter().product::<usize>());
    let dev = x.0.device.clone();
    by_dtype!(x.0.dtype(), OP, |T, sfx| {
        let (xv, gbv, dyv) = (
            view::<T>(x.0, x.1, OP)?,
            view::<T>(gb.0, gb.1, OP)?,
            view::<T>(dy.0, dy.1, OP)?,
        );
        let (gv, bv) = (gbv.slice(0..c), gbv.slice(c..2 * c));
        // SAFETY: every element is written by the kernel.
        let out = unsafe { dev.alloc::<T>(n * c * hw + 2 * n * c)? };
        let func =
            dev.get_or_load_custom_func(&format!("gn_bwd_{sfx}"), "dmad_group_norm", GROUP_NORM)?;
        let (ni, ci, gi, hwi, si) = (n as i32, c as i32, groups as i32, hw as i32, silu as i32);
        let mut b = func.builder();
        b.arg(&xv).arg(&gv).arg(&bv).arg(&dyv).arg(&out);
        b.arg(&ni).arg(&ci).arg(&gi).arg(&hwi).arg(&eps).arg(&si);
        let cfg = LaunchConfig {
            grid_dim: ((n * groups) as u32, 1, 1),
            block_dim: (group_block(c / groups * hw), 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: argument types and order match `gn_bwd_*` in kernels/group_norm.cu.
        unsafe { b.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    })
}

/// The filter pair of the DWT kernels, passed by value (`struct Filters` in kernels/dwt.cu).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Filters {
    lo: [f32; crate::dwt::MAX_TAPS],
    hi: [f32; crate::dwt::MAX_TAPS],
    len: i32,
}

// SAFETY: plain `#[repr(C)]` data, the layout of `struct Filters` in kernels/dwt.cu.
unsafe impl DeviceRepr for Filters {}

impl Filters {
    pub(crate) fn new(lo: &[f32], hi: &[f32]) -> Self {
        let mut f = Self {
            lo: [0.0; crate::dwt::MAX_TAPS],
            hi: [0.0; crate::dwt::MAX_TAPS],
            len: lo.len() as i32,
        };
        f.lo[..lo.len()].copy_from_slice(lo);
        f.hi[..hi.len()].copy_from_slice(hi);
        f
    }
}

/// The periodized 2D DWT (`transpose = false`: `[B, C, H, W] -> [B, 4C, H/2, W/2]`) or its
/// transpose (`[B, 4C, h, w] -> [B, C, 2h, 2w]`); `(b, c, hh, ww)` are the full-size dims.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dwt2(
    x: (&CudaStorage, &Layout),
    filters: Filters,
    transpose: bool,
    b: usize,
    c: usize,
    hh: usize,
    ww: usize,
    scale: f32,
) -> Result<CudaStorage> {
    const OP: &str = "dmad-cuda dwt2";
    let dev = x.0.device.clone();
    let n = b * c * hh * ww;
    by_dtype!(x.0.dtype(), OP, |T, sfx| {
        let xv = view::<T>(x.0, x.1, OP)?;
        // SAFETY: every element is written by the kernel.
        let out = unsafe { dev.alloc::<T>(n)? };
        let name = if transpose { "idwt2" } else { "dwt2" };
        let func = dev.get_or_load_custom_func(&format!("{name}_{sfx}"), "dmad_dwt", DWT)?;
        let (bi, ci, hi, wi) = (b as i32, c as i32, hh as i32, ww as i32);
        let mut lb = func.builder();
        lb.arg(&xv)
            .arg(&out)
            .arg(&filters)
            .arg(&bi)
            .arg(&ci)
            .arg(&hi)
            .arg(&wi)
            .arg(&scale);
        // One thread per output: quarter-size bands (forward) or full-size planes (transpose).
        let threads = if transpose { n } else { n / 4 };
        // SAFETY: argument types and order match `dwt2_*` / `idwt2_*` in kernels/dwt.cu.
        unsafe { lb.launch(grid(threads)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    })
}

/// The fused sampler update (kernels/sampler.cu); `k` holds 8 coefficients per sample.
pub(crate) fn sampler_step(
    x: (&CudaStorage, &Layout),
    m: (&CudaStorage, &Layout),
    aux: (&CudaStorage, &Layout),
    k: &[f32],
    clip: f32,
    want_x0: bool,
) -> Result<CudaStorage> {
    const OP: &str = "dmad-cuda sampler_step";
    let dev = x.0.device.clone();
    let n = x.1.shape().elem_count();
    let per = n / x.1.dims()[0].max(1);
    by_dtype!(x.0.dtype(), OP, |T, sfx| {
        let (xv, mv, av) = (
            view::<T>(x.0, x.1, OP)?,
            view::<T>(m.0, m.1, OP)?,
            view::<T>(aux.0, aux.1, OP)?,
        );
        let kd = dev.clone_htod(k)?;
        // SAFETY: every element is written by the kernel.
        let out = unsafe { dev.alloc::<T>(if want_x0 { 2 * n } else { n })? };
        let func = dev.get_or_load_custom_func(&format!("step_{sfx}"), "dmad_sampler", SAMPLER)?;
        let (per, nn, w) = (per, n, want_x0 as i32);
        let mut b = func.builder();
        b.arg(&xv)
            .arg(&mv)
            .arg(&av)
            .arg(&kd)
            .arg(&out)
            .arg(&per)
            .arg(&nn)
            .arg(&clip)
            .arg(&w);
        // SAFETY: argument types and order match `step_*` in kernels/sampler.cu.
        unsafe { b.launch(grid(n)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    })
}

/// Blocked attention (kernels/attention.cu): `q [bh, tq, d]`, `k`, `v` `[bh, tk, d]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    q: (&CudaStorage, &Layout),
    k: (&CudaStorage, &Layout),
    v: (&CudaStorage, &Layout),
    bh: usize,
    tq: usize,
    tk: usize,
    d: usize,
    scale: f32,
) -> Result<CudaStorage> {
    const OP: &str = "dmad-cuda attention";
    const ROWS: u32 = 128;
    let dev = q.0.device.clone();
    by_dtype!(q.0.dtype(), OP, |T, sfx| {
        let (qv, kv, vv) = (
            view::<T>(q.0, q.1, OP)?,
            view::<T>(k.0, k.1, OP)?,
            view::<T>(v.0, v.1, OP)?,
        );
        // SAFETY: every element is written by the kernel.
        let out = unsafe { dev.alloc::<T>(bh * tq * d)? };
        let func =
            dev.get_or_load_custom_func(&format!("attn_d{d}_{sfx}"), "dmad_attention", ATTENTION)?;
        let (tqi, tki) = (tq as i32, tk as i32);
        let mut b = func.builder();
        b.arg(&qv)
            .arg(&kv)
            .arg(&vv)
            .arg(&out)
            .arg(&tqi)
            .arg(&tki)
            .arg(&scale);
        let cfg = LaunchConfig {
            grid_dim: ((tq as u32).div_ceil(ROWS), bh as u32, 1),
            block_dim: (ROWS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: argument types and order match `attn_d*_*` in kernels/attention.cu.
        unsafe { b.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev))
    })
}
