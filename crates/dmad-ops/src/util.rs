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

/// The vector-Jacobian product of `f` at `inputs` for the upstream gradient `dy`, through
/// candle's autograd: the path of the `*_backward` functions off the fast CPU kernels. An input
/// that `f` does not reach gets a zero gradient.
pub(crate) fn autograd_vjp(
    inputs: &[&Tensor],
    dy: &Tensor,
    f: impl FnOnce(&[Tensor]) -> crate::Result<Tensor>,
) -> crate::Result<Vec<Tensor>> {
    let vars = inputs
        .iter()
        .map(|t| candle_core::Var::from_tensor(t))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let grads = (f(&ts)? * dy.detach())?.sum_all()?.backward()?;
    vars.iter()
        .map(|v| match grads.get(v) {
            Some(g) => Ok(g.clone()),
            None => Ok(v.zeros_like()?),
        })
        .collect()
}
