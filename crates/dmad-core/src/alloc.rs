//! Large zero-filled buffers that page-fault less.
//!
//! A multi-MiB `Vec` from the system allocator is a fresh `mmap` on every call with glibc's
//! default settings, so writing it costs one page fault per 4 KiB; in dmad's kernels (the
//! multilevel DWTs, the CWT output, the convolutions) those faults, not the arithmetic,
//! dominated. [`zeroed`] prefaults the buffer in one system call
//! (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14) and, as NumPy does for its arrays of 4 MiB
//! and more, asks for transparent huge pages (`madvise(MADV_HUGEPAGE)`) on the 2 MiB-aligned
//! part of the allocation before it is first written. Both are hints that change no
//! contents; where refused (other systems, older kernels) they are ignored.

/// Buffers from this many bytes on are prefaulted in one system call.
const POPULATE_FROM: usize = 1 << 18;
/// Buffers from this many bytes on also get the huge-page advice.
const HUGE_FROM: usize = 1 << 22;

/// A vector of `n` copies of `T::default()` (zero for the numeric types) whose pages are
/// mapped up front and, for large buffers, advised as huge.
///
/// # Example
/// ```
/// let v = dmad_core::alloc::zeroed::<f32>(1 << 20);
/// assert_eq!(v.len(), 1 << 20);
/// assert!(v.iter().all(|&x| x == 0.0));
/// ```
pub fn zeroed<T: Copy + Default>(n: usize) -> Vec<T> {
    let v = vec![T::default(); n];
    advise(&v);
    v
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise<T>(v: &[T]) {
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
        // MADV_HUGEPAGE only sets a flag on the mapping and changes no data. A failure (e.g.
        // THP unsupported) is harmless and ignored.
        unsafe {
            madvise(lo as *mut c_void, hi - lo, MADV_HUGEPAGE);
        }
    }
    let (lo, hi) = (start.next_multiple_of(PAGE), (start + bytes) / PAGE * PAGE);
    if hi > lo {
        // SAFETY: as above; MADV_POPULATE_WRITE maps the pages of the range writable as a
        // write would, in one call instead of one fault per page, and changes no data.
        // Kernels before 5.14 refuse it (EINVAL), which is ignored: the pages then fault in
        // on first write as usual.
        unsafe {
            madvise(lo as *mut c_void, hi - lo, MADV_POPULATE_WRITE);
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn advise<T>(_v: &[T]) {}

/// Tunes glibc's `malloc` so that freed multi-MiB buffers are kept and reused instead of being
/// handed back to the system and faulted in again on the next allocation. Returns whether the
/// settings were applied.
///
/// With glibc's defaults a tensor of more than a few MiB is a fresh `mmap` (and its pages fresh
/// faults) on every allocation, and freed heap memory above 128 KiB is trimmed. A training step
/// allocates and frees dozens of activation-sized tensors (candle makes a new tensor for every
/// op and every gradient), so on the CPU those page faults cost as much as the arithmetic: on
/// 2 cores, `(x * up).sum()` and its backward on `[8, 64, 64, 64]` takes 31 ms with the
/// defaults and 8 ms with these settings (`docs/PERFORMANCE.md`). This sets
/// `M_MMAP_THRESHOLD` to 32 MiB (glibc's maximum) and `M_TRIM_THRESHOLD` to 1 GiB; the cost is
/// that the process keeps up to its peak heap size mapped.
///
/// Does nothing (and returns `false`) off glibc, and when the user chose malloc settings
/// through `GLIBC_TUNABLES` (any `glibc.malloc.` entry) or `MALLOC_MMAP_THRESHOLD_` /
/// `MALLOC_TRIM_THRESHOLD_`. Call it early in `main`; `dmad::init_cpu` does.
pub fn retain_freed_buffers() -> bool {
    let user_set = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."))
        || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some();
    !user_set && set_malloc_thresholds()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_thresholds() -> bool {
    use std::ffi::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    // SAFETY: mallopt only changes allocator parameters; it is thread-safe in glibc and
    // returns 0 for a value it refuses, leaving the old setting.
    unsafe { mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_thresholds() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroed_buffers_of_every_size_are_zero() {
        for n in [0, 1, 1000, (1 << 18) / 4 + 3, (1 << 22) / 8 + 5] {
            let v = super::zeroed::<f64>(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }

    /// With freed buffers retained, a new zeroed buffer that reuses a dirty one is still zero.
    #[test]
    fn retained_buffers_come_back_zeroed() {
        let applied = super::retain_freed_buffers();
        let user_set = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."))
            || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
            || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some();
        if cfg!(all(target_os = "linux", target_env = "gnu")) && !user_set {
            assert!(applied, "glibc accepted the malloc thresholds");
        }
        for round in 0..4 {
            let dirty = vec![round as f32 + 1.0; 2 << 20];
            assert_eq!(dirty[dirty.len() - 1], round as f32 + 1.0);
            drop(dirty);
            let v = super::zeroed::<f32>(2 << 20);
            assert!(v.iter().all(|&x| x == 0.0), "round {round}");
        }
    }
}
