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
