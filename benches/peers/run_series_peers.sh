#!/usr/bin/env bash
# Time-series peers (MP-join, Sub-PCA, Sub-KNN; issue 21) on the series of PROTOCOL.md: creates
# a venv with pinned packages (needs only python3 >= 3.10 with venv and PyPI), then runs
# benches/peers/series_peers.py.
#
# Run from anywhere:
#   benches/peers/run_series_peers.sh                  # full run, writes docs/results/series_peers.{json,md}
#   benches/peers/run_series_peers.sh --quick --out /tmp/series-quick   # Yahoo + ucr/Beef (CI)
# Environment:
#   DMAD_DATA                the data directory (default ../shared/data, relative to the repository root)
#   DMAD_SERIES_PEERS_VENV   where the venv lives (default ./target/series-peers-venv)
#   PYTHON                   the interpreter that creates the venv (default python3)
# Other arguments are passed to series_peers.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${DMAD_SERIES_PEERS_VENV:-target/series-peers-venv}"
PY="${PYTHON:-python3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}" \
  MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}" NUMBA_NUM_THREADS="${NUMBA_NUM_THREADS:-2}"

# classical.py's pins (its loaders are imported) plus STUMPY and the numba it runs on.
PINS=(numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pillow==13.0.0 numba==0.68.1 stumpy==1.14.1)
# TSB-AD 1.5 only for VUS-PR, without its heavy dependencies (torch, ...), as run_classical.sh.
TSB=TSB-AD==1.5
STAMP="$VENV/.dmad-series-peers-pins"
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
export DMAD_PEERS_COMMAND="DMAD_DATA=$DATA benches/peers/run_series_peers.sh${*:+ $*}"
exec "$VENV/bin/python" benches/peers/series_peers.py --data "$DATA" "$@"
