#!/usr/bin/env bash
# Classical peers (IForest, KNN, LOF) on every dataset of PROTOCOL.md: creates a venv with pinned
# packages (needs only python3 >= 3.10 with venv and PyPI), then runs benches/peers/classical.py.
#
# Run from anywhere:
#   benches/peers/run_classical.sh                    # full run, writes docs/results/classical.{json,md}
#   benches/peers/run_classical.sh --quick --out /tmp/classical-quick   # wbc + Yahoo only (CI)
# Environment:
#   DMAD_DATA         the data directory (default ../shared/data, relative to the repository root)
#   DMAD_PEERS_VENV   where the venv lives (default ./target/peers-venv)
#   PYTHON            the interpreter that creates the venv (default python3)
# Other arguments are passed to classical.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${DMAD_PEERS_VENV:-target/peers-venv}"
PY="${PYTHON:-python3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}" \
  MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"

PINS=(numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pillow==13.0.0)
# TSB-AD 1.5 only for VUS-PR: its metric module needs numpy + scikit-learn, so install it without
# its heavy dependencies (torch, transformers, ...). A failure leaves VUS-PR null, not the run.
TSB=TSB-AD==1.5
STAMP="$VENV/.dmad-classical-pins"
WANT="${PINS[*]} $TSB"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$TSB"; then
    echo "warning: $TSB could not be installed; VUS-PR will be reported as missing" >&2
  fi
  echo "$WANT" >"$STAMP"
fi

DATA="${DMAD_DATA:-../shared/data}"
export DMAD_PEERS_COMMAND="DMAD_DATA=$DATA benches/peers/run_classical.sh${*:+ $*}"
exec "$VENV/bin/python" benches/peers/classical.py --data "$DATA" "$@"
