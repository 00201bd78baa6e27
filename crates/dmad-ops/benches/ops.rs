//! Per-op CPU benchmarks: dmad-ops against plain candle (the PyTorch peer is
//! `benches/peers/torch_ops_peer.py`, run right after in the same shell command).
//!
//! ```bash
//! cargo bench -p dmad-ops --bench ops -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Shapes: conv2d 3x3, 64 -> 64 channels, padding 1, with bias, on `[8, 64, 64, 64]`;
//! GroupNorm (32 groups) + SiLU on the same shape; attention over 32x32 = 1024 tokens, batch 8,
//! 4 heads of width 16 (64 channels / 4), so `[32, 1024, 16]`. Throughput is in FLOP (criterion
//! prints it as elem/s): conv `2 N Cout Ho Wo Cin 9`, attention `4 BH T^2 d`, GroupNorm+SiLU a
//! nominal 10 per element (about what a fused kernel does), backward conv 2x the forward.

use candle_core::{Device, Module, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn t(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
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

fn conv(c: &mut Criterion) {
    // As `dmad::init_cpu` sets it for the CLI (idempotent; both arms get it).
    dmad_core::alloc::retain_freed_buffers();
    let x = t(&[8, 64, 64, 64], 1);
    let w = (t(&[64, 64, 3, 3], 2) * 0.05).unwrap();
    let b = t(&[64], 3);
    let cfg = candle_nn::Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    let layer = candle_nn::Conv2d::new(w.clone(), Some(b.clone()), cfg);
    let flops = 2 * 8 * 64 * 64 * 64 * 64 * 9;
    let mut g = c.benchmark_group("conv2d_3x3_64to64_cpu_8x64x64x64");
    g.throughput(Throughput::Elements(flops));
    g.bench_function("dmad", |bch| {
        bch.iter(|| dmad_ops::conv2d(&x, &w, Some(&b), &cfg).unwrap())
    });
    g.bench_function("candle", |bch| bch.iter(|| layer.forward(&x).unwrap()));
    g.finish();

    // Backward: gradients for x, weight and bias (forward included, as in training).
    let xv = Var::from_tensor(&x).unwrap();
    let wv = Var::from_tensor(&w).unwrap();
    let bv = Var::from_tensor(&b).unwrap();
    let up = t(&[8, 64, 64, 64], 4);
    let mut g = c.benchmark_group("conv2d_3x3_64to64_fwd_bwd_cpu_8x64x64x64");
    g.throughput(Throughput::Elements(3 * flops));
    g.bench_function("dmad", |bch| {
        bch.iter(|| {
            let y = dmad_ops::conv2d(&xv, &wv, Some(&bv), &cfg).unwrap();
            (y * &up).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    let layer_v = candle_nn::Conv2d::new(wv.as_tensor().clone(), Some(bv.as_tensor().clone()), cfg);
    g.bench_function("candle", |bch| {
        bch.iter(|| {
            let y = layer_v.forward(&xv).unwrap();
            (y * &up).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    g.finish();

    // Forward, then the graph-free backward for the upstream gradient `up` (no autograd
    // harness; the peer's `torch.autograd.grad(y, inputs, up)`). candle has no such call.
    let mut g = c.benchmark_group("conv2d_3x3_64to64_vjp_cpu_8x64x64x64");
    g.throughput(Throughput::Elements(3 * flops));
    g.bench_function("dmad", |bch| {
        bch.iter(|| {
            drop(dmad_ops::conv2d(&x, &w, Some(&b), &cfg).unwrap());
            dmad_ops::conv2d_backward(&x, &w, &cfg, &up).unwrap()
        })
    });
    g.finish();
}

fn group_norm(c: &mut Criterion) {
    // As `dmad::init_cpu` sets it for the CLI (idempotent; both arms get it).
    dmad_core::alloc::retain_freed_buffers();
    let x = t(&[8, 64, 64, 64], 5);
    let w = (t(&[64], 6) + 1.0).unwrap();
    let b = t(&[64], 7);
    let gn = candle_nn::GroupNorm::new(w.clone(), b.clone(), 64, 32, 1e-5).unwrap();
    let mut g = c.benchmark_group("group_norm_silu_32g_cpu_8x64x64x64");
    g.throughput(Throughput::Elements(10 * 8 * 64 * 64 * 64));
    g.bench_function("dmad", |bch| {
        bch.iter(|| dmad_ops::group_norm_silu(&x, 32, &w, &b, 1e-5).unwrap())
    });
    g.bench_function("candle", |bch| {
        bch.iter(|| gn.forward(&x).unwrap().silu().unwrap())
    });
    g.finish();

    let xv = Var::from_tensor(&x).unwrap();
    let wv = Var::from_tensor(&w).unwrap();
    let bv = Var::from_tensor(&b).unwrap();
    let up = t(&[8, 64, 64, 64], 8);
    let gn_v =
        candle_nn::GroupNorm::new(wv.as_tensor().clone(), bv.as_tensor().clone(), 64, 32, 1e-5)
            .unwrap();
    let mut g = c.benchmark_group("group_norm_silu_32g_fwd_bwd_cpu_8x64x64x64");
    g.throughput(Throughput::Elements(30 * 8 * 64 * 64 * 64));
    g.bench_function("dmad", |bch| {
        bch.iter(|| {
            let y = dmad_ops::group_norm_silu(&xv, 32, &wv, &bv, 1e-5).unwrap();
            (y * &up).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    g.bench_function("candle", |bch| {
        bch.iter(|| {
            let y = gn_v.forward(&xv).unwrap().silu().unwrap();
            (y * &up).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("group_norm_silu_32g_vjp_cpu_8x64x64x64");
    g.throughput(Throughput::Elements(30 * 8 * 64 * 64 * 64));
    g.bench_function("dmad", |bch| {
        bch.iter(|| {
            drop(dmad_ops::group_norm_silu(&x, 32, &w, &b, 1e-5).unwrap());
            dmad_ops::group_norm_backward(&x, 32, &w, &b, 1e-5, true, &up).unwrap()
        })
    });
    g.finish();
}

fn attention(c: &mut Criterion) {
    // As `dmad::init_cpu` sets it for the CLI (idempotent; both arms get it).
    dmad_core::alloc::retain_freed_buffers();
    let (bh, n, d) = (32, 1024, 16);
    let q = t(&[bh, n, d], 9);
    let k = t(&[bh, n, d], 10);
    let v = t(&[bh, n, d], 11);
    let scale = 1.0 / (d as f64).sqrt();
    let mut g = c.benchmark_group("attention_1024tok_8x4heads_d16_cpu");
    g.throughput(Throughput::Elements((4 * bh * n * n * d) as u64));
    g.bench_function("dmad", |bch| {
        bch.iter(|| dmad_ops::attention(&q, &k, &v, None).unwrap())
    });
    g.bench_function("candle", |bch| {
        bch.iter(|| {
            let s = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
            candle_nn::ops::softmax_last_dim(&s)
                .unwrap()
                .matmul(&v)
                .unwrap()
        })
    });
    g.finish();

    // Backward: gradients for q, k and v (forward included). Nominal FLOP: 3.5x the forward
    // (FlashAttention's count: the backward is 2.5 forwards, without the recomputation).
    let (qv, kv, vv) = (
        Var::from_tensor(&q).unwrap(),
        Var::from_tensor(&k).unwrap(),
        Var::from_tensor(&v).unwrap(),
    );
    let up = t(&[bh, n, d], 12);
    let mut g = c.benchmark_group("attention_fwd_bwd_1024tok_8x4heads_d16_cpu");
    g.throughput(Throughput::Elements((14 * bh * n * n * d) as u64));
    g.bench_function("dmad", |bch| {
        bch.iter(|| {
            let y = dmad_ops::attention(&qv, &kv, &vv, None).unwrap();
            (y * &up).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    g.bench_function("candle", |bch| {
        bch.iter(|| {
            let s = (qv.matmul(&kv.t().unwrap()).unwrap() * scale).unwrap();
            let y = candle_nn::ops::softmax(&s, candle_core::D::Minus1)
                .unwrap()
                .matmul(&vv)
                .unwrap();
            (y * &up).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, group_norm, conv, attention);
criterion_main!(benches);
