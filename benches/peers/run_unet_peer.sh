#!/usr/bin/env bash
# dmad vs PyTorch + diffusers on the issue's U-Net ([32, 64, 128], 64x64 grey, batch 16,
# attention at the two lower levels): training steps and one sampling step, both with 2 threads,
# back to back in one run. Prints a table with the dmad/PyTorch ratio (> 1: dmad is faster).
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
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); nproc: $(nproc)"
cargo build --release --example unet_throughput
dmad_line="$(./target/release/examples/unet_throughput | grep '^dmad ')"
echo "$dmad_line"
echo "load average between: $(cut -d' ' -f1-3 /proc/loadavg)"
torch_line="$(python3 benches/peers/unet_peer.py --steps "$STEPS" --reps "$REPS" --threads 2 | grep '^torch ')"
echo "$torch_line"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$dmad_line" "$torch_line" <<'PY'
import sys

def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

d, t = parse(sys.argv[1]), parse(sys.argv[2])
steps = int(d["steps"])
print()
print(f"| measure | dmad | PyTorch + diffusers | dmad/PyTorch |")
print(f"|---|---|---|---|")
for key, label in [
    ("train_samples_per_s", f"training, samples/s (batch 16, mean of {steps} steps)"),
    ("sample_images_per_s", "one sampling step (forward + DDIM), images/s"),
]:
    print(f"| {label} | {d[key]:.3f} | {t[key]:.3f} | {d[key] / t[key]:.2f} |")
for key, label in [
    ("train_s_per_step", "training, s/step"),
    ("sample_s_per_step", "one sampling step, s"),
]:
    print(f"| {label} | {d[key]:.3f} | {t[key]:.3f} | {t[key] / d[key]:.2f} |")
print(f"| 20 training steps, s{'' if steps == 20 else f' (extrapolated from {steps})'} "
      f"| {20 * d['train_s_per_step']:.1f} | {20 * t['train_s_per_step']:.1f} | "
      f"{t['train_s_per_step'] / d['train_s_per_step']:.2f} |")
PY
