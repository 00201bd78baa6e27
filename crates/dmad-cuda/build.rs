//! Compiles `kernels/*.cu` to PTX with nvcc when the `cuda` feature is on; a no-op otherwise.
//!
//! nvcc is looked up in `$CUDA_ROOT/bin`, `$CUDA_PATH/bin`, `$CUDA_HOME/bin`, then `PATH`. The
//! PTX targets `compute_$CUDA_COMPUTE_CAP` (default: the first GPU's capability from
//! `nvidia-smi`, else 80); the driver JIT-compiles it for the GPU it runs on.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: [&str; 4] = ["group_norm", "dwt", "sampler", "attention"];

fn nvcc() -> PathBuf {
    for var in ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME"] {
        if let Some(root) = std::env::var_os(var) {
            let p = PathBuf::from(root).join("bin").join("nvcc");
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from("nvcc")
}

fn compute_cap() -> String {
    if let Ok(c) = std::env::var("CUDA_COMPUTE_CAP") {
        return c.replace('.', "");
    }
    Command::new("nvidia-smi")
        .args(["--query-gpu=compute_cap", "--format=csv,noheader"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.trim().replace('.', "")))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "80".into())
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=kernels");
    for var in ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME", "CUDA_COMPUTE_CAP"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let (nvcc, cap) = (nvcc(), compute_cap());
    for k in KERNELS {
        let ptx = out.join(format!("{k}.ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", "-std=c++17", "-lineinfo"])
            .arg(format!("-arch=compute_{cap}"))
            .arg(format!("kernels/{k}.cu"))
            .arg("-o")
            .arg(&ptx)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): install the CUDA toolkit or set CUDA_ROOT \
                     (see docs/CUDA.md)",
                    nvcc.display()
                )
            });
        assert!(status.success(), "nvcc failed on kernels/{k}.cu");
    }
}
