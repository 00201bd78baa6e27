#!/usr/bin/env bash
# dmad vs PyTorch on one training step of the feature-space MLP denoiser (152 features, batch
# 512, depth 3, widths 256 and 512; one timestep per sample and 32 shared timesteps), 2 threads,
# in one run: PyTorch, then dmad (criterion, benches/train_step.rs), then PyTorch again (the
# machine may be shared and loaded).
#
# Run from the repository root: benches/peers/run_mlp_peer.sh
# Environment: PYTHON (default python3; needs torch, tested with torch 2.15.0),
# MLP_BENCH_STEPS (timed PyTorch steps, default 30).
set -euo pipefail
cd "$(dirname "$0")/../.."
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
PYTHON="${PYTHON:-python3}"
STEPS="${MLP_BENCH_STEPS:-30}"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "nproc: $(nproc)"
cargo build --release --bench train_step
peer() {
    for width in 256 512; do
        for distinct in 0 32; do
            "$PYTHON" benches/peers/mlp_peer.py --width "$width" --distinct "$distinct" --steps "$STEPS"
        done
    done
}
echo "load average before PyTorch (1): $(cut -d' ' -f1-3 /proc/loadavg)"
peer
echo "load average before dmad: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --bench train_step -- --warm-up-time 2 --measurement-time 10 2>&1 | grep -E "^mlp_train_step|time:"
echo "load average before PyTorch (2): $(cut -d' ' -f1-3 /proc/loadavg)"
peer
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
