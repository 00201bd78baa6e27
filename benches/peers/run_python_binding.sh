#!/usr/bin/env bash
# dmad from Python (the binding, crates/dmad-py) against PyOD's KNN and IForest and against the
# same dmad call from Rust (the dmad CLI), on one table of PROTOCOL.md: fit + score time and AUROC.
# Creates a venv with pinned packages, installs ./crates/dmad-py into it (maturin, the workspace's
# target/), builds the CLI, then runs benches/peers/python_binding.py.
#
# Run from anywhere:
#   benches/peers/run_python_binding.sh          # cardio, 5 seeds: docs/results/python_binding.{json,md}
#   benches/peers/run_python_binding.sh --table wbc --out /tmp/pb
# Environment:
#   DMAD_DATA        the data directory (default ../shared/data, relative to the repository root)
#   DMAD_PY_VENV     where the venv lives (default ./target/py-bench-venv)
#   PYTHON           the interpreter that creates the venv (default python3)
# Other arguments are passed to python_binding.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${DMAD_PY_VENV:-target/py-bench-venv}"
PY="${PYTHON:-python3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}" \
  MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"

PINS=(maturin==1.16.0 numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pyod==3.6.7)
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
# maturin's build backend runs `maturin` from PATH: the venv's.
PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/python" -m pip install --quiet \
  --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./crates/dmad-py
cargo build --release -p dmad-cli

DATA="${DMAD_DATA:-../shared/data}"
export DMAD_PEERS_COMMAND="DMAD_DATA=$DATA benches/peers/run_python_binding.sh${*:+ $*}"
exec "$VENV/bin/python" benches/peers/python_binding.py --data "$DATA" --cli target/release/dmad "$@"
