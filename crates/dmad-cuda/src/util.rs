//! Host-side helpers: the values behind CPU storages as f32, and back.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout};

/// The contiguous values of a CPU storage under `layout`, as f32 (f32 and bf16 only).
pub(crate) fn cpu_f32(
    s: &CpuStorage,
    l: &Layout,
    op: &'static str,
) -> candle_core::Result<Vec<f32>> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: expects contiguous inputs")))?;
    match s {
        CpuStorage::F32(v) => Ok(v[a..b].to_vec()),
        CpuStorage::BF16(v) => Ok(v[a..b].iter().map(|x| x.to_f32()).collect()),
        other => candle_core::bail!("{op}: f32 or bf16 only, got {:?}", other.dtype()),
    }
}

/// A CPU storage of `dtype` (f32 or bf16) holding `v`.
pub(crate) fn cpu_store(v: Vec<f32>, dtype: DType) -> CpuStorage {
    match dtype {
        DType::BF16 => CpuStorage::BF16(v.into_iter().map(half::bf16::from_f32).collect()),
        _ => CpuStorage::F32(v),
    }
}

/// Whether the kernels take this dtype.
pub(crate) fn supported(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::BF16)
}
