//! Large coefficient buffers that page-fault less.
//!
//! A multi-MiB `Vec` from the system allocator is a fresh `mmap` on every call with glibc's
//! default settings, so writing it costs one page fault per 4 KiB; those faults, not the
//! arithmetic, dominated the multilevel DWTs and the CWT output. The buffers here are
//! prefaulted in one system call (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14) and, as NumPy
//! does for its arrays of 4 MiB and more, ask for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`) on the 2 MiB-aligned part of the allocation before it is first
//! written. Both are hints that change no contents; where refused they are ignored.

use crate::dwt::Real;

/// Buffers from this many bytes on get the huge-page advice.
const HUGE_FROM: usize = 1 << 22;
/// Buffers from this many bytes on are prefaulted in one system call.
const POPULATE_FROM: usize = 1 << 18;

/// A zero-filled vector of `n` values whose pages are advised as huge.
pub(crate) fn zeroed<T: Real>(n: usize) -> Vec<T> {
    let v = vec![T::default(); n];
    advise_huge(&v);
    v
}

/// A zero-filled vector of `n` complex values whose pages are advised as huge.
pub(crate) fn zeroed_complex(n: usize) -> Vec<num_complex::Complex64> {
    let mut v = std::mem::ManuallyDrop::new(zeroed::<f64>(2 * n));
    // SAFETY: `Complex64` is `#[repr(C)] { re: f64, im: f64 }`: the allocation of `2n` f64
    // (capacity exactly `2n`: `vec!` allocates the length asked for) has the size and alignment
    // of `n` complex values, and all-zero bits are `0 + 0i`.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast(), n, v.capacity() / 2) }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise_huge<T>(v: &[T]) {
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
fn advise_huge<T>(_v: &[T]) {}
