#!/usr/bin/env bash
# DCASE-style audio peers (log-mel stats kNN, 5-frame log-mel window kNN) on the two audio sets of
# PROTOCOL.md: creates/reuses the peers' venv with the same pinned packages as run_classical.sh
# (needs only python3 >= 3.10 with venv and PyPI), then runs benches/peers/audio_dcase.py.
#
# Run from anywhere:
#   benches/peers/run_audio_dcase.sh                   # both sets, writes docs/results/audio_dcase.{json,md}
#   benches/peers/run_audio_dcase.sh --quick --out /tmp/audio-dcase   # audio/mining-hard only (CI)
# Environment:
#   DMAD_DATA         the data directory (default ../shared/data, relative to the repository root)
#   DMAD_PEERS_VENV   where the venv lives (default ./target/peers-venv, shared with run_classical.sh)
#   PYTHON            the interpreter that creates the venv (default python3)
# Other arguments are passed to audio_dcase.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${DMAD_PEERS_VENV:-target/peers-venv}"
PY="${PYTHON:-python3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}" \
  MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"

# The pins are read from run_classical.sh so that the two scripts cannot drift apart.
PINLINE="$(sed -n 's/^PINS=(\(.*\))$/\1/p' benches/peers/run_classical.sh)"
read -r -a PINS <<<"$PINLINE"
if [[ ${#PINS[@]} -eq 0 ]]; then
  echo "error: benches/peers/run_classical.sh: no PINS=(...) line to read the pinned packages from" >&2
  exit 2
fi
STAMP="$VENV/.dmad-audio-dcase-pins"
WANT="${PINS[*]}"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
  echo "$WANT" >"$STAMP"
fi

DATA="${DMAD_DATA:-../shared/data}"
export DMAD_PEERS_COMMAND="DMAD_DATA=$DATA benches/peers/run_audio_dcase.sh${*:+ $*}"
exec "$VENV/bin/python" benches/peers/audio_dcase.py --data "$DATA" "$@"
