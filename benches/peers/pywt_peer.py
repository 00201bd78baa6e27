#!/usr/bin/env python3
"""PyWavelets peer of crates/dmad-wavelets/benches/wavelets.rs: the same transforms on inputs of
the same sizes, single-threaded, timed in the same run.

    pip install PyWavelets==1.8.0 numpy
    python3 benches/peers/pywt_peer.py              # PyWavelets only
    python3 benches/peers/pywt_peer.py --with-rust  # cargo bench (criterion) first, then PyWavelets,
                                                    # and one table with both (docs/PERFORMANCE.md)
    python3 benches/peers/pywt_peer.py --cpu        # CPU time (user + sys, getrusage) per call of
                                                    # both sides in child processes: robust on a
                                                    # busy machine; also with glibc malloc tunables

Both sides run on one thread: RAYON_NUM_THREADS=1 for the Rust benches (candle reads it), and
OMP/OpenBLAS/MKL thread variables set to 1 here (PyWavelets itself is single-threaded).
Times are means over repeated runs (criterion's point estimate on the Rust side), in ms.
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import pywt

# criterion bench id -> (label, PyWavelets callable factory)
rng = np.random.default_rng(0)


def cases():
    x = rng.uniform(-1, 1, 1 << 20)
    img = rng.uniform(-1, 1, (1024, 1024))
    sig = rng.uniform(-1, 1, 16000)
    scales = np.arange(1, 65, dtype=np.float64)
    batch = rng.uniform(-1, 1, (16, 64, 64, 64)).astype(np.float32)
    return [
        ("cpu_f64/wavedec/2^20/db4/symmetric/max_level", "wavedec 2^20, db4, symmetric, max level (f64)",
         lambda: pywt.wavedec(x, "db4", "symmetric")),
        ("cpu_f64/wavedec2/1024x1024/db2/symmetric/level3", "wavedec2 1024x1024, db2, symmetric, 3 levels (f64)",
         lambda: pywt.wavedec2(img, "db2", "symmetric", level=3)),
        ("cpu_f64/cwt/16000x64/morl/fft", "cwt 16000 samples x 64 scales, morl, fft (f64)",
         lambda: pywt.cwt(sig, scales, "morl", method="fft")),
        ("cpu_f64/cwt/16000x64/morl/fft/planned", "  same, plan reused (dmad CwtPlan; PyWavelets has none)",
         lambda: pywt.cwt(sig, scales, "morl", method="fft")),
        ("cpu_f32/tensor_dwt2d/16x64x64x64/db2/symmetric", "tensor DWT2 [16,64,64,64], db2, symmetric (f32; pywt.dwt2 axes -2,-1)",
         lambda: pywt.dwt2(batch, "db2", "symmetric", axes=(-2, -1))),
        ("cpu_f32/tensor_dwt2d/16x64x64x64/db2/periodization", "tensor DWT2 [16,64,64,64], db2, periodization (f32)",
         lambda: pywt.dwt2(batch, "db2", "periodization", axes=(-2, -1))),
    ]


def time_py(fn, min_time=3.0, min_runs=10):
    fn()  # warm-up
    runs = []
    start = time.perf_counter()
    while len(runs) < min_runs or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1e3)
    return statistics.mean(runs), min(runs)


UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}


def run_rust(root):
    cmd = ["cargo", "bench", "-p", "dmad-wavelets", "--bench", "wavelets", "--",
           "--warm-up-time", "1", "--measurement-time", "3"]
    print("running:", "RAYON_NUM_THREADS=1", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=os.environ)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit("cargo bench failed")
    times = {}
    name = None
    for line in out.stdout.splitlines():
        s = line.strip()
        if s.startswith("cpu_"):
            name = s.split()[0]
        m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", s)
        if m and name:
            times[name] = float(m.group(1)) * UNITS[m.group(2)]
            name = None
    return times


# --cpu: case -> (label, reps, PyWavelets statement over the inputs of child())
CPU_CASES = [
    ("wavedec", "wavedec 2^20, db4, symmetric, max level (f64)", 40),
    ("wavedec2", "wavedec2 1024x1024, db2, symmetric, 3 levels (f64)", 20),
    ("cwt", "cwt 16000 x 64 scales, morl, fft (f64)", 20),
    ("cwt_planned", "  same, dmad plan reused", 20),
    ("tensor", "tensor DWT2 [16,64,64,64], db2, symmetric (f32)", 10),
    ("tensor_per", "tensor DWT2 [16,64,64,64], db2, periodization (f32)", 10),
]


def child(case, reps):
    """Runs one PyWavelets case `reps` times (inputs as the Rust timing example's sizes)."""
    x = rng.uniform(-1, 1, 1 << 20)
    img = x.reshape(1024, 1024).copy()
    sig = x[:16000].copy()
    scales = np.arange(1, 65, dtype=np.float64)
    batch = np.resize(x, (16, 64, 64, 64)).astype(np.float32)
    ops = {
        "none": lambda: None,
        "wavedec": lambda: pywt.wavedec(x, "db4", "symmetric"),
        "wavedec2": lambda: pywt.wavedec2(img, "db2", "symmetric", level=3),
        "cwt": lambda: pywt.cwt(sig, scales, "morl", method="fft"),
        "cwt_planned": lambda: pywt.cwt(sig, scales, "morl", method="fft"),
        "tensor": lambda: pywt.dwt2(batch, "db2", "symmetric", axes=(-2, -1)),
        "tensor_per": lambda: pywt.dwt2(batch, "db2", "periodization", axes=(-2, -1)),
    }
    for _ in range(reps):
        ops[case]()


def cpu_of(cmd, env):
    """User + sys CPU seconds of a child process."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_cpu(root):
    subprocess.run(["cargo", "build", "--release", "-p", "dmad-wavelets", "--example", "timing"],
                   cwd=root, check=True)
    exe = os.path.join(root, "target", "release", "examples", "timing")
    tuned = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"
    print(f"PyWavelets {pywt.__version__}, NumPy {np.__version__}; CPU time (user + sys) per call, ms, "
          f"child processes, inputs excluded; load average {os.getloadavg()[0]:.1f}")
    print()
    print("| case | malloc | dmad-wavelets | PyWavelets | speed-up |")
    print("|---|---|---:|---:|---:|")
    for env_name, extra in [("default", {}), ("tuned", {"GLIBC_TUNABLES": tuned})]:
        env = dict(os.environ, **extra)
        for case, label, reps in CPU_CASES:
            def per_call(cmd_of):
                base = min(cpu_of(cmd_of("none"), env) for _ in range(2))
                full = min(cpu_of(cmd_of(case), env) for _ in range(2))
                return max(full - base, 0.0) / reps * 1e3
            rs = per_call(lambda c: [exe, c, str(reps)])
            py = per_call(lambda c: [sys.executable, __file__, "--child", c, str(reps)])
            print(f"| {label} | {env_name} | {rs:.2f} | {py:.2f} | {py / rs:.1f}x |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--with-rust", action="store_true", help="run the criterion benches first")
    ap.add_argument("--cpu", action="store_true", help="CPU-time comparison in child processes")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "REPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    if args.cpu:
        run_cpu(root)
        return
    rust = run_rust(root) if args.with_rust else {}
    load = os.getloadavg()[0]
    print(f"PyWavelets {pywt.__version__}, NumPy {np.__version__}, 1 thread; load average {load:.1f}")
    print()
    print("| case | dmad-wavelets (ms) | PyWavelets mean (ms) | PyWavelets best (ms) | speed-up (mean/mean) |")
    print("|---|---:|---:|---:|---:|")
    for key, label, fn in cases():
        mean, best = time_py(fn)
        r = rust.get(key)
        rs = f"{r:.2f}" if r is not None else "-"
        sp = f"{mean / r:.1f}x" if r else "-"
        print(f"| {label} | {rs} | {mean:.2f} | {best:.2f} | {sp} |")


if __name__ == "__main__":
    main()
