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
}
