#!/usr/bin/env python3
"""PyTorch peer of crates/dmad-ops/benches/ops.rs: the same ops and shapes on 2 CPU threads.

Run (right after the criterion bench, in the same shell command):
    python3 benches/peers/torch_ops_peer.py [--seconds 3] [--filter attention_fwd_bwd]

Prints one line per op: name, median wall ms, GFLOP/s (same FLOP counts as the Rust bench),
and the CPU time per call (user + system of all threads, `time.process_time`, mean over the
timed calls; compare with crates/dmad-ops/examples/ops_cpu_time.rs).
"""
import argparse
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


FILTER = ""


def bench(name, fn, flops, seconds):
    if FILTER not in name:
        return
    for _ in range(2):
        fn()
    times = []
    start = time.perf_counter()
    cpu0 = time.process_time()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / len(times)
    times.sort()
    med = times[len(times) // 2]
    print(f"{name:<48} {med * 1e3:9.3f} ms {flops / med / 1e9:8.2f} GFLOP/s (n={len(times)})"
          f" cpu {cpu * 1e3:8.2f} ms/call")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--filter", default="", help="only the ops whose name contains this")
    args = ap.parse_args()
    s = args.seconds
    global FILTER
    FILTER = args.filter
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    x = torch.rand(8, 64, 64, 64) * 2 - 1
    w = (torch.rand(64, 64, 3, 3) * 2 - 1) * 0.05
    b = torch.rand(64) * 2 - 1
    conv_flops = 2 * 8 * 64 * 64 * 64 * 64 * 9
    with torch.no_grad():
        bench("conv2d_3x3_64to64_cpu_8x64x64x64", lambda: F.conv2d(x, w, b, padding=1), conv_flops, s)
    xv, wv, bv = (t.clone().requires_grad_(True) for t in (x, w, b))
    up = torch.rand(8, 64, 64, 64)

    def conv_fb():
        (F.conv2d(xv, wv, bv, padding=1) * up).sum().backward()

    bench("conv2d_3x3_64to64_fwd_bwd_cpu_8x64x64x64", conv_fb, 3 * conv_flops, s)

    # Forward, then the gradients for the upstream gradient `up` without the mul/sum harness:
    # as `ops_cpu_time conv_vjp` (forward + dmad_ops::conv2d_backward).
    def conv_vjp():
        torch.autograd.grad(F.conv2d(xv, wv, bv, padding=1), (xv, wv, bv), up)

    bench("conv2d_3x3_64to64_vjp_cpu_8x64x64x64", conv_vjp, 3 * conv_flops, s)

    # The autograd harness of conv_fb alone (no convolution), as `ops_cpu_time harness`.
    def harness():
        (xv * up).sum().backward()

    bench("harness_mul_sum_bwd_8x64x64x64", harness, 1, s)

    gw = torch.rand(64) + 1
    gb = torch.rand(64) * 2 - 1
    n = 8 * 64 * 64 * 64
    with torch.no_grad():
        bench("group_norm_silu_32g_cpu_8x64x64x64",
              lambda: F.silu(F.group_norm(x, 32, gw, gb, 1e-5)), 10 * n, s)
    gwv, gbv = gw.clone().requires_grad_(True), gb.clone().requires_grad_(True)

    def gn_fb():
        (F.silu(F.group_norm(xv, 32, gwv, gbv, 1e-5)) * up).sum().backward()

    bench("group_norm_silu_32g_fwd_bwd_cpu_8x64x64x64", gn_fb, 30 * n, s)

    def gn_vjp():
        y = F.silu(F.group_norm(xv, 32, gwv, gbv, 1e-5))
        torch.autograd.grad(y, (xv, gwv, gbv), up)

    bench("group_norm_silu_32g_vjp_cpu_8x64x64x64", gn_vjp, 30 * n, s)

    bh, t, d = 32, 1024, 16
    q, k, v = (torch.rand(bh, t, d) * 2 - 1 for _ in range(3))
    att_flops = 4 * bh * t * t * d
    with torch.no_grad():
        bench("attention_1024tok_8x4heads_d16_cpu (sdpa)",
              lambda: F.scaled_dot_product_attention(q, k, v), att_flops, s)
        bench("attention_1024tok_8x4heads_d16_cpu (matmul-softmax)",
              lambda: torch.softmax(q @ k.transpose(1, 2) / d ** 0.5, -1) @ v, att_flops, s)
    qv, kv, vv = (t_.clone().requires_grad_(True) for t_ in (q, k, v))
    aup = torch.rand(bh, t, d)

    def att_fb():
        (F.scaled_dot_product_attention(qv, kv, vv) * aup).sum().backward()

    # Nominal FLOP of forward + backward: 3.5x the forward (as in the Rust bench).
    bench("attention_fwd_bwd_1024tok_8x4heads_d16_cpu (sdpa)", att_fb, 3.5 * att_flops, s)


if __name__ == "__main__":
    main()
