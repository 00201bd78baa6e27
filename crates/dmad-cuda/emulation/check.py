#!/usr/bin/env python3
"""Runs dmad-cuda's CUDA kernel source on the CPU (host emulation, one thread per block) and
checks it against the tools of record: PyWavelets 1.8.0 (DWT/IDWT, periodization), PyTorch
autograd in float64 (GroupNorm + SiLU forward and backward, attention) and numpy (the fused
sampler step, f32 and bf16).

What this covers: the kernels' indexing, boundary wrapping, filter order and maths, as written
in kernels/*.cu. What it cannot: anything parallel (warp shuffles and block reductions run
with one thread), launch configuration, and the PTX itself. Those need a GPU (tests/gpu.rs).

Run: python3 crates/dmad-cuda/emulation/check.py   (needs g++, numpy, PyWavelets, torch)
"""

import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np
import pywt
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
F32P = ctypes.POINTER(ctypes.c_float)
U16P = ctypes.POINTER(ctypes.c_uint16)


def build():
    so = os.path.join(tempfile.mkdtemp(prefix="dmad-cuda-emu-"), "emu.so")
    subprocess.run(
        ["g++", "-O2", "-std=c++17", "-shared", "-fPIC", "-I", os.path.join(HERE, "include"),
         "-x", "c++", os.path.join(HERE, "harness.cpp"), "-o", so],
        check=True,
    )
    lib = ctypes.CDLL(so)
    # size_t arguments must be declared (ctypes passes plain ints as 32-bit int).
    for name, ptr in (("emu_step", F32P), ("emu_step_bf16", U16P)):
        getattr(lib, name).argtypes = [ptr, ptr, ptr, F32P, ptr, ctypes.c_size_t,
                                       ctypes.c_size_t, ctypes.c_float, ctypes.c_int]
    return lib


def p(a):
    assert a.flags["C_CONTIGUOUS"]
    if a.dtype == np.float32:
        return a.ctypes.data_as(F32P)
    assert a.dtype == np.uint16
    return a.ctypes.data_as(U16P)


FAILS = []


def close(name, got, want, tol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))) if got.size else 0.0
    ok = err <= tol and np.all(np.isfinite(got))
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max rel err {err:.2e} (tol {tol:.0e})")
    if not ok:
        FAILS.append(name)


def group_norm(lib, rng):
    for (n, c, sp, g) in [(1, 4, (5, 7), 2), (2, 6, (3, 3), 3), (3, 8, (1, 9), 8), (2, 64, (8, 8), 32), (2, 6, (2, 3, 2), 2)]:
        for silu in (0, 1):
            dims = (n, c) + sp
            hw = int(np.prod(sp))
            x = (rng.standard_normal(dims) * 2 + 0.5).astype(np.float32)
            w = (rng.standard_normal(c) * 0.5 + 1).astype(np.float32)
            b = (rng.standard_normal(c) * 0.5).astype(np.float32)
            dy = rng.standard_normal(dims).astype(np.float32)
            y = np.empty_like(x)
            lib.emu_gn_fwd(p(x), p(w), p(b), p(y), n, c, g, hw, ctypes.c_float(1e-5), silu)
            out = np.empty(x.size + 2 * n * c, np.float32)
            lib.emu_gn_bwd(p(x), p(w), p(b), p(dy), p(out), n, c, g, hw, ctypes.c_float(1e-5), silu)
            xt, wt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
            yt = torch.nn.functional.group_norm(xt, g, wt, bt, 1e-5)
            if silu:
                yt = torch.nn.functional.silu(yt)
            yt.backward(torch.tensor(dy, dtype=torch.float64))
            name = f"group_norm{'+silu' if silu else ''} {dims} groups {g}"
            close(name + " forward", y, yt.detach().numpy(), 1e-5)
            close(name + " dx", out[: x.size].reshape(dims), xt.grad.numpy(), 1e-4)
            dgamma = out[x.size: x.size + n * c].reshape(n, c).sum(0)
            dbeta = out[x.size + n * c:].reshape(n, c).sum(0)
            close(name + " dweight", dgamma, wt.grad.numpy(), 1e-4)
            close(name + " dbias", dbeta, bt.grad.numpy(), 1e-4)


def dwt(lib, rng):
    for name in ("haar", "db2", "db4", "sym3", "coif2"):
        wav = pywt.Wavelet(name)
        lo, hi = np.array(wav.dec_lo, np.float32), np.array(wav.dec_hi, np.float32)
        slo, shi = np.array(wav.rec_lo[::-1], np.float32), np.array(wav.rec_hi[::-1], np.float32)
        f = len(lo)
        for (bb, c, h, w) in [(1, 1, 2, 2), (2, 3, 8, 8), (1, 2, 6, 10), (2, 1, 16, 12), (1, 1, 4, 4)]:
            x = rng.standard_normal((bb, c, h, w)).astype(np.float32)
            y = np.empty((bb, 4 * c, h // 2, w // 2), np.float32)
            lib.emu_dwt2(p(x), p(y), p(lo), p(hi), f, bb, c, h, w, ctypes.c_float(0.5), 0)
            ca, (ch, cv, cd) = pywt.dwt2(x.astype(np.float64), wav, mode="periodization")
            want = 0.5 * np.concatenate([ca, ch, cv, cd], axis=1)
            tag = f"{name} {(bb, c, h, w)}"
            close(f"dwt2 {tag} vs pywt.dwt2", y, want, 1e-5)
            z = np.empty_like(x)
            bands = rng.standard_normal(y.shape).astype(np.float32)
            lib.emu_dwt2(p(bands), p(z), p(slo), p(shi), f, bb, c, h, w, ctypes.c_float(2.0), 1)
            bd = bands.astype(np.float64)
            want = 2.0 * pywt.idwt2((bd[:, :c], (bd[:, c:2 * c], bd[:, 2 * c:3 * c], bd[:, 3 * c:])),
                                    wav, mode="periodization")
            close(f"idwt2 {tag} vs pywt.idwt2", z, want, 1e-5)
            # The DWT's backward is the transpose kernel with the analysis filters: check the
            # adjoint identity <dwt(x), u> = <x, dwt^T(u)>.
            g = np.empty_like(x)
            lib.emu_dwt2(p(bands), p(g), p(lo), p(hi), f, bb, c, h, w, ctypes.c_float(0.5), 1)
            lhs = float(np.sum(y.astype(np.float64) * bands))
            rhs = float(np.sum(x.astype(np.float64) * g))
            close(f"dwt2 backward {tag} (adjoint identity)", np.array([lhs]), np.array([rhs]), 1e-5)


def bf16_round(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_value(u):
    return (u.astype(np.uint32) << 16).view(np.float32)


def step(lib, rng):
    dims = (4, 3, 5, 5)
    n, per = int(np.prod(dims)), int(np.prod(dims[1:]))
    x, m, aux = (rng.standard_normal(dims).astype(np.float32) for _ in range(3))
    for clip in (0.0, 0.8):
        k = rng.standard_normal((4, 8)).astype(np.float32)
        out = np.empty(2 * n, np.float32)
        lib.emu_step(p(x), p(m), p(aux), p(k), p(out), per, n, ctypes.c_float(clip), 1)
        kk = k.astype(np.float64)[:, :, None, None, None]
        xd, md, ad = (a.astype(np.float64) for a in (x, m, aux))
        x0 = kk[:, 0] * xd + kk[:, 1] * md
        if clip > 0:
            x0 = np.clip(x0, -clip, clip)
        eps = kk[:, 2] * xd + kk[:, 3] * md
        want = kk[:, 4] * xd + kk[:, 5] * x0 + kk[:, 6] * eps + kk[:, 7] * ad
        close(f"sampler step clip {clip}: update", out[:n].reshape(dims), want, 1e-5)
        close(f"sampler step clip {clip}: x0", out[n:].reshape(dims), x0, 1e-5)
        xb, mb, ab = (bf16_round(a) for a in (x, m, aux))
        outb = np.empty(2 * n, np.uint16)
        lib.emu_step_bf16(p(xb), p(mb), p(ab), p(k), p(outb), per, n, ctypes.c_float(clip), 1)
        xd, md, ad = (bf16_value(a).astype(np.float64) for a in (xb, mb, ab))
        x0 = kk[:, 0] * xd + kk[:, 1] * md
        if clip > 0:
            x0 = np.clip(x0, -clip, clip)
        eps = kk[:, 2] * xd + kk[:, 3] * md
        want = kk[:, 4] * xd + kk[:, 5] * x0 + kk[:, 6] * eps + kk[:, 7] * ad
        close(f"sampler step bf16 clip {clip}: update", bf16_value(outb[:n]).reshape(dims), want, 2.0 / 256)


def attention(lib, rng):
    for (bh, tq, tk, d) in [(2, 5, 7, 8), (3, 70, 130, 16), (1, 1, 1, 32), (2, 9, 65, 64)]:
        q = rng.standard_normal((bh, tq, d)).astype(np.float32)
        k = rng.standard_normal((bh, tk, d)).astype(np.float32)
        v = rng.standard_normal((bh, tk, d)).astype(np.float32)
        o = np.empty_like(q)
        scale = 1.0 / np.sqrt(d)
        lib.emu_attention(p(q), p(k), p(v), p(o), bh, tq, tk, d, ctypes.c_float(scale))
        s = q.astype(np.float64) @ k.astype(np.float64).transpose(0, 2, 1) * scale
        s = np.exp(s - s.max(-1, keepdims=True))
        want = (s / s.sum(-1, keepdims=True)) @ v.astype(np.float64)
        close(f"attention {(bh, tq, tk, d)}", o, want, 1e-5)


def main():
    lib = build()
    rng = np.random.default_rng(0)
    group_norm(lib, rng)
    dwt(lib, rng)
    step(lib, rng)
    attention(lib, rng)
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
