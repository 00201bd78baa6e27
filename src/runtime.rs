//! Process-level set-up: the device to run on and the CPU thread pools.

use candle_core::Device;

use crate::{Error, Result};

/// Process set-up for CPU work; call it first thing in `main`, before any tensor is made. The
/// `dmad` command line and the examples do.
///
/// - [`init_cpu_threads`]: candle's spinning elementwise pool off (unless `CANDLE_NUM_THREADS`
///   is set);
/// - [`dmad_core::alloc::retain_freed_buffers`]: glibc's malloc keeps freed tensor buffers for
///   reuse instead of faulting fresh pages in for every tensor (unless the user set malloc
///   tunables). On 2 cores this made the fused GroupNorm+SiLU forward and backward inside
///   candle's autograd 3.2x faster (`docs/PERFORMANCE.md`).
pub fn init_cpu() {
    init_cpu_threads();
    dmad_core::alloc::retain_freed_buffers();
}

/// Makes candle's own CPU thread pool single-threaded unless `CANDLE_NUM_THREADS` is already
/// set. Call it first thing in `main`, before any tensor is made.
///
/// dmad's CPU kernels (convolution, GroupNorm, attention, the wavelet ops) and candle's
/// matmul run on rayon's pool. Candle 0.11 also keeps a second pool for its elementwise ops
/// whose threads spin-wait at a barrier; next to rayon's threads, on a machine with few
/// cores or other load, that spinning takes the cores the real work needs. On a loaded
/// 2-core machine a training step of the demo's image U-Net ran 3.2x faster with it off
/// (18.6 s instead of 59.1 s for 30 steps; `docs/PERFORMANCE.md`). The elementwise ops then
/// run on the calling thread; they are memory-bound and cheap next to the kernels.
pub fn init_cpu_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Setting the environment is sound here: this runs before any other thread of the
        // process reads it (the caller's contract: first thing in `main`).
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// The device named by `name`: `cpu`, `cuda` (GPU 0) or `cuda:N`.
///
/// # Errors
/// [`Error::InvalidConfig`] for an unknown name; candle's error when the CUDA device cannot be
/// opened (for example in a build without the `cuda` feature; see `docs/CUDA.md`).
pub fn device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => Ok(Device::new_cuda(0)?),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(ordinal)) => Ok(Device::new_cuda(ordinal)?),
            _ => Err(Error::InvalidConfig {
                field: "device",
                reason: format!("unknown device {name:?}; expected cpu, cuda or cuda:N"),
            }),
        },
    }
}

/// The device named by the environment variable `DMAD_DEVICE` (see [`device`]), or the CPU
/// when it is unset. The examples use it: `DMAD_DEVICE=cuda cargo run --release --features
/// cuda --example images`.
///
/// # Errors
/// As [`device`].
pub fn device_from_env() -> Result<Device> {
    match std::env::var("DMAD_DEVICE") {
        Ok(name) if !name.trim().is_empty() => device(&name),
        _ => Ok(Device::Cpu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert!(device("cpu").unwrap().is_cpu());
        assert!(device(" CPU ").unwrap().is_cpu());
        let err = device("tpu").unwrap_err().to_string();
        assert!(err.contains("tpu"), "{err}");
        assert!(device("cuda:x").is_err());
    }
}
