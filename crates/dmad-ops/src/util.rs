//! Access to the f32 data behind CPU tensors and storages.

use candle_core::{CpuStorage, Layout, Storage, Tensor};

/// The contiguous f32 values of a CPU storage under `layout`.
pub(crate) fn cpu_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &'static str,
) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: expects contiguous inputs"),
    }
}

/// Calls `f` with the contiguous f32 values of each CPU tensor in `ts` (made contiguous first).
pub(crate) fn with_f32<R>(
    ts: &[&Tensor],
    op: &'static str,
    f: impl FnOnce(&[&[f32]]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let ts = ts
        .iter()
        .map(|t| t.contiguous())
        .collect::<candle_core::Result<Vec<_>>>()?;
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        match &**storage {
            Storage::Cpu(cpu) => slices.push(cpu_slice(cpu, layout, op)?),
            _ => candle_core::bail!("{op}: the CPU kernel got a tensor on another device"),
        }
    }
    f(&slices)
}

/// Whether the fast CPU kernels apply: every tensor is an f32 tensor on the CPU.
pub(crate) fn use_cpu_kernel(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32)
}

/// Raw pointer that rayon tasks may share; every user writes disjoint regions only.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: users only write disjoint regions from different threads.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// A strided read-only matrix view for [`gemm`].
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub(crate) ptr: *const f32,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// `dst[m, n] = (read_dst ? dst : 0) + lhs[m, k] * rhs[k, n]` with the `gemm` crate.
///
/// # Safety
/// Every view must be valid for its extent (`m x k`, `k x n`, `m x n`) and `dst` must not alias
/// the inputs or be written concurrently.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    read_dst: bool,
    lhs: Mat,
    rhs: Mat,
    parallel: bool,
) {
    let par = if parallel && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: forwarded to the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            read_dst,
            lhs.ptr,
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.ptr,
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// Buffers from this many bytes on are prefaulted in one system call, and from [`HUGE_FROM`]
/// on also advised as transparent huge pages.
const POPULATE_FROM: usize = 1 << 18;
/// See [`POPULATE_FROM`].
const HUGE_FROM: usize = 1 << 22;

/// A zero-filled vector of `n` floats whose pages are mapped up front: a multi-MiB `Vec` is a
/// fresh `mmap` with glibc's defaults, and writing it page by page costs one fault per 4 KiB
/// inside the parallel kernels. As in `dmad-wavelets` (and NumPy for large arrays), the
/// 2 MiB-aligned part is advised as huge pages (`MADV_HUGEPAGE`) and the whole range is
/// prefaulted in one call (`MADV_POPULATE_WRITE`, Linux 5.14). Both are hints that change no
/// contents; where refused they are ignored.
pub(crate) fn zeroed(n: usize) -> Vec<f32> {
    let v = vec![0.0f32; n];
    advise(&v);
    v
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise(v: &[f32]) {
    use std::ffi::{c_int, c_void};
    extern "C" {
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    /// `MADV_HUGEPAGE` and `MADV_POPULATE_WRITE` (Linux 5.14) on x86_64 and aarch64.
    const MADV_HUGEPAGE: c_int = 14;
    const MADV_POPULATE_WRITE: c_int = 23;
    const HUGE: usize = 1 << 21;
    const PAGE: usize = 1 << 12;
    let bytes = std::mem::size_of_val(v);
    if bytes < POPULATE_FROM {
        return;
    }
    let start = v.as_ptr() as usize;
    let (lo, hi) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
    if bytes >= HUGE_FROM && hi > lo {
        // SAFETY: [lo, hi) lies inside the allocation behind `v` and is page-aligned;
        // MADV_HUGEPAGE only sets a flag on the mapping and changes no data. A failure (THP
        // unsupported) is harmless and ignored.
        unsafe {
            madvise(lo as *mut c_void, hi - lo, MADV_HUGEPAGE);
        }
    }
    let (lo, hi) = (start.next_multiple_of(PAGE), (start + bytes) / PAGE * PAGE);
    if hi > lo {
        // SAFETY: as above; MADV_POPULATE_WRITE maps the pages of the range as a write would,
        // in one call instead of one fault per page, and changes no data. Older kernels refuse
        // it (EINVAL), which is ignored: the pages then fault in on first write.
        unsafe {
            madvise(lo as *mut c_void, hi - lo, MADV_POPULATE_WRITE);
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn advise(_v: &[f32]) {}
