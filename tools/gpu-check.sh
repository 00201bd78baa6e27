#!/usr/bin/env bash
# GPU checks of the `cuda` feature (issue 11): build here, run on a GPU machine.
#
#   tools/gpu-check.sh build [DIR]   # on the build machine (needs nvcc, no GPU): compiles
#                                    # dmad-cuda's tests and the GPU bench with --features cuda
#                                    # and puts them, the PyTorch peer and DIR/run.sh into DIR
#                                    # (default target/gpu-check/)
#   DIR/run.sh                       # on the GPU machine: runs them; logs in DIR/out/
#
# Build environment: nvcc on PATH or CUDA_ROOT set (docs/CUDA.md: a CUDA install, or nvcc from
# PyPI with a link stub). If DMAD_CUDA_ENV names a script, it is sourced first (it may set
# CUDA_ROOT, PATH, RUSTFLAGS and CARGO_TARGET_DIR). CUDA_COMPUTE_CAP defaults to 90 (H100).
# The GPU machine needs a driver for CUDA >= the nvcc used here and the CUDA libraries
# (cuBLAS, NVRTC, cudart); run.sh finds PyTorch's CUDA 13 wheels if installed, and the bundle
# carries cuRAND (which those wheels lack). The GPU machine needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
mode=${1:-build}
DIR=${2:-$ROOT/target/gpu-check}

if [ "$mode" != build ]; then
  echo "usage: tools/gpu-check.sh build [DIR]; then DIR/run.sh on the GPU machine" >&2
  exit 2
fi

if [ -n "${DMAD_CUDA_ENV:-}" ]; then
  # shellcheck disable=SC1090
  source "$DMAD_CUDA_ENV"
fi
if ! command -v nvcc >/dev/null && [ ! -x "${CUDA_ROOT:-/nonexistent}/bin/nvcc" ]; then
  echo "nvcc not found: install CUDA or set CUDA_ROOT / DMAD_CUDA_ENV (docs/CUDA.md)" >&2
  exit 1
fi
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/cuda}
mkdir -p "$DIR/bin" "$DIR/out"

# Prints the executables cargo built, one per line (from --message-format=json on stdin).
executables() {
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])
'
}

t0=$(date +%s)
echo "== building dmad-cuda tests with --features cuda (target dir $CARGO_TARGET_DIR)"
tests=$(cargo test -p dmad-cuda --features cuda --no-run --message-format=json | executables)
echo "== building the GPU bench (release)"
benches=$(cargo bench -p dmad-cuda --features cuda --bench gpu --no-run --message-format=json | executables)
echo "== built in $(( $(date +%s) - t0 )) s"

rm -f "$DIR"/bin/*
for exe in $tests; do cp "$exe" "$DIR/bin/test-$(basename "$exe")"; done
for exe in $benches; do cp "$exe" "$DIR/bin/bench-$(basename "$exe")"; done
cp benches/peers/unet_cuda_peer.py "$DIR/"
# PyTorch's CUDA 13 wheels carry cuBLAS, cudart and NVRTC but not cuRAND, which candle links:
# ship the build's copy (used only when the GPU machine has none of its own).
mkdir -p "$DIR/lib"
curand=""
for d in "${CUDA_ROOT:-}/lib" "${CUDA_ROOT:-}/lib64" "${CUDA_PATH:-}/lib64" /usr/local/cuda/lib64; do
  if [ -e "$d/libcurand.so.10" ]; then curand=$d/libcurand.so.10; break; fi
done
if [ -n "$curand" ]; then
  cp -L "$curand" "$DIR/lib/"
else
  echo "note: libcurand.so.10 not found here; the GPU machine must provide it" >&2
fi
git rev-parse HEAD > "$DIR/COMMIT" 2>/dev/null || true

cat > "$DIR/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the GPU checks built by tools/gpu-check.sh; logs go to out/ beside this script.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out
mkdir -p "$OUT"
lib=$(python3 -c "import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],'cu13','lib'))" 2>/dev/null || true)
if [ -n "$lib" ] && [ -d "$lib" ]; then export LD_LIBRARY_PATH=$lib:${LD_LIBRARY_PATH:-}; fi
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$HERE/lib  # fallback: cuRAND
{ echo "commit $(cat "$HERE/COMMIT" 2>/dev/null)"; date -u; nvidia-smi || true; } | tee "$OUT/env.log"
status=0
for t in "$HERE"/bin/test-*; do
  name=$(basename "$t")
  echo "== $name"
  if ! "$t" --nocapture 2>&1 | tee "$OUT/$name.log"; then status=1; fi
done
# The GPU tests pass vacuously without a device: treat a skip as a failure here.
if grep -l "skipped: no CUDA device" "$OUT"/test-*.log 2>/dev/null; then
  echo "FAIL: the tests above found no CUDA device (driver, LD_LIBRARY_PATH?)"
  status=1
fi
for b in "$HERE"/bin/bench-*; do
  name=$(basename "$b")
  echo "== $name"
  "$b" --bench --warm-up-time 2 --measurement-time ${BENCH_SECONDS:-10} 2>&1 | tee "$OUT/$name.log" || status=1
done
if python3 -c "import torch, diffusers; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "== PyTorch + diffusers peer"
  python3 "$HERE/unet_cuda_peer.py" 2>&1 | tee "$OUT/peer.log"
  python3 "$HERE/unet_cuda_peer.py" --no-tf32 --dtypes f32 2>&1 | tee "$OUT/peer-no-tf32.log"
else
  echo "== PyTorch + diffusers peer skipped: needs torch with CUDA and diffusers" | tee "$OUT/peer.log"
fi
echo "== done (status $status); logs in $OUT"
exit $status
RUN
chmod +x "$DIR/run.sh"
echo "== ready: $DIR ($(du -sh "$DIR" | cut -f1)). Copy it to the GPU machine and run:"
echo "   $(basename "$DIR")/run.sh"
