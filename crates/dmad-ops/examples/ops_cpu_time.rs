//! CPU time (user + system, all threads) and wall time per call of the benchmark ops, for A/B
//! comparisons on a shared machine where wall-clock timings swing with the load.
//!
//! ```bash
//! RAYON_NUM_THREADS=2 cargo run --release -p dmad-ops --example ops_cpu_time -- conv_fb 10
//! ```
//! Ops: `conv`, `conv_fb`, `conv_vjp`, `harness` (`conv_fb`'s autograd harness alone), `gn_silu`,
//! `gn_silu_fb`, `gn_silu_vjp`, `attention`, `attention_fb` (shapes as in
//! `benches/ops.rs`; `*_fb`: forward and candle's autograd of `(y * up).sum()`; `*_vjp`: forward
//! and the graph-free `conv2d_backward` / `group_norm_backward` with `up`); the second argument is the number of timed calls (default 10).

use std::time::Instant;

use candle_core::{Device, Tensor, Var};

fn t(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// User + system CPU seconds of this process (all threads), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(f64::NAN);
    ticks / 100.0
}

fn main() -> anyhow::Result<()> {
    // glibc's malloc keeps freed tensor buffers, as `dmad::init_cpu` sets it for the CLI; run
    // with `GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072` for glibc's defaults.
    dmad_core::alloc::retain_freed_buffers();
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("conv_fb");
    let reps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let cfg = candle_nn::Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    let x = Var::from_tensor(&t(&[8, 64, 64, 64], 1))?;
    let w = Var::from_tensor(&(t(&[64, 64, 3, 3], 2) * 0.05)?)?;
    let b = Var::from_tensor(&t(&[64], 3))?;
    let gw = Var::from_tensor(&(t(&[64], 6) + 1.0)?)?;
    let up = t(&[8, 64, 64, 64], 4);
    let q = Var::from_tensor(&t(&[32, 1024, 16], 9))?;
    let k = Var::from_tensor(&t(&[32, 1024, 16], 10))?;
    let v = Var::from_tensor(&t(&[32, 1024, 16], 11))?;
    let aup = t(&[32, 1024, 16], 12);
    let run = || -> anyhow::Result<()> {
        match op {
            "conv" => drop(dmad_ops::conv2d(x.as_tensor(), &w, Some(&b), &cfg)?),
            "conv_fb" => {
                let y = dmad_ops::conv2d(&x, &w, Some(&b), &cfg)?;
                (y * &up)?.sum_all()?.backward()?;
            }
            // The autograd harness of `conv_fb` without the convolution: `(x * up).sum()` and
            // its backward (candle's elementwise ops and gradient accumulation).
            "harness" => {
                (x.as_tensor() * &up)?.sum_all()?.backward()?;
            }
            // Forward, then the graph-free backward with `up` as the upstream gradient: the
            // op's own cost, as the peer's `torch.autograd.grad(y, inputs, up)`.
            "conv_vjp" => {
                let y = dmad_ops::conv2d(x.as_tensor(), &w, Some(&b), &cfg)?;
                drop(y);
                drop(dmad_ops::conv2d_backward(x.as_tensor(), &w, &cfg, &up)?);
            }
            "gn_silu_vjp" => {
                let y = dmad_ops::group_norm_silu(x.as_tensor(), 32, &gw, &b, 1e-5)?;
                drop(y);
                drop(dmad_ops::group_norm_backward(
                    x.as_tensor(),
                    32,
                    &gw,
                    &b,
                    1e-5,
                    true,
                    &up,
                )?);
            }
            "gn_silu" => drop(dmad_ops::group_norm_silu(x.as_tensor(), 32, &gw, &b, 1e-5)?),
            "gn_silu_fb" => {
                let y = dmad_ops::group_norm_silu(&x, 32, &gw, &b, 1e-5)?;
                (y * &up)?.sum_all()?.backward()?;
            }
            "attention" => drop(dmad_ops::attention(q.as_tensor(), &k, &v, None)?),
            "attention_fb" => {
                let y = dmad_ops::attention(&q, &k, &v, None)?;
                (y * &aup)?.sum_all()?.backward()?;
            }
            other => anyhow::bail!("unknown op {other}"),
        }
        Ok(())
    };
    run()?;
    let (c0, t0) = (cpu_seconds(), Instant::now());
    for _ in 0..reps {
        run()?;
    }
    let (cpu, wall) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    println!(
        "{op}: {:.2} ms CPU per call, {:.2} ms wall per call ({reps} calls)",
        cpu * 1e3 / reps as f64,
        wall * 1e3 / reps as f64
    );
    Ok(())
}
