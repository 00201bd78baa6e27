//! The complex form of [`dmad_core::alloc::zeroed`] (large buffers prefaulted in one system
//! call, huge pages advised), which the real coefficient buffers call directly.

/// A zero-filled vector of `n` complex values whose pages are advised as huge.
pub(crate) fn zeroed_complex(n: usize) -> Vec<num_complex::Complex64> {
    let mut v = std::mem::ManuallyDrop::new(dmad_core::alloc::zeroed::<f64>(2 * n));
    // SAFETY: `Complex64` is `#[repr(C)] { re: f64, im: f64 }`: the allocation of `2n` f64
    // (capacity exactly `2n`: `vec!` allocates the length asked for) has the size and alignment
    // of `n` complex values, and all-zero bits are `0 + 0i`.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast(), n, v.capacity() / 2) }
}
