#!/usr/bin/env bash
# dmad vs PyTorch + diffusers on the issue's U-Net ([32, 64, 128], 64x64 grey, batch 16,
# attention at the two lower levels): training steps and one sampling step, both with 2 threads,
# in one run: PyTorch, then dmad, then PyTorch again (the machine may be shared and loaded).
# Prints a table with the dmad/PyTorch ratios (> 1: dmad is faster).
#
# Run from the repository root: benches/peers/run_unet_peer.sh
# Environment: UNET_BENCH_STEPS (timed training steps, default 20), UNET_BENCH_REPS (timed
# sampling steps, default 3). Needs python3 with torch and diffusers (tested: torch 2.15.0,
# diffusers 0.42.1).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CANDLE_NUM_THREADS=2 RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
STEPS="${UNET_BENCH_STEPS:-20}"
REPS="${UNET_BENCH_REPS:-3}"
export UNET_BENCH_STEPS="$STEPS" UNET_BENCH_REPS="$REPS"

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "nproc: $(nproc)"
cargo build --release --example unet_throughput
peer() {
    python3 benches/peers/unet_peer.py --steps "$STEPS" --reps "$REPS" --threads 2 | grep '^torch '
}
# The machine may be shared: the peer runs right before and right after dmad, and the load
# average (1, 5, 15 min) is printed around each side.
echo "load average before PyTorch (1): $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%T)"
torch_before="$(peer)"
echo "$torch_before"
echo "load average before dmad: $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%T)"
dmad_line="$(./target/release/examples/unet_throughput | grep '^dmad ')"
echo "$dmad_line"
echo "load average before PyTorch (2): $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%T)"
torch_after="$(peer)"
echo "$torch_after"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%T)"

python3 - "$dmad_line" "$torch_before" "$torch_after" <<'PY'
import sys

def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

d, t1, t2 = (parse(a) for a in sys.argv[1:4])
steps = int(d["steps"])
print()
print("| measure | dmad | PyTorch before | PyTorch after | dmad/PyTorch (before, after) |")
print("|---|---|---|---|---|")
for key, label in [
    ("train_samples_per_s", f"training, samples/s (batch 16, mean of {steps} steps)"),
    ("sample_images_per_s", "one sampling step (forward + DDIM), images/s"),
]:
    print(f"| {label} | {d[key]:.3f} | {t1[key]:.3f} | {t2[key]:.3f} | "
          f"{d[key] / t1[key]:.2f}, {d[key] / t2[key]:.2f} |")
for key, label in [
    ("train_s_per_step", "training, s/step"),
    ("sample_s_per_step", "one sampling step, s"),
]:
    print(f"| {label} | {d[key]:.3f} | {t1[key]:.3f} | {t2[key]:.3f} | "
          f"{t1[key] / d[key]:.2f}, {t2[key] / d[key]:.2f} |")
ext = "" if steps == 20 else f" (extrapolated from {steps})"
print(f"| 20 training steps, s{ext} | {20 * d['train_s_per_step']:.1f} | "
      f"{20 * t1['train_s_per_step']:.1f} | {20 * t2['train_s_per_step']:.1f} | "
      f"{t1['train_s_per_step'] / d['train_s_per_step']:.2f}, "
      f"{t2['train_s_per_step'] / d['train_s_per_step']:.2f} |")
PY
