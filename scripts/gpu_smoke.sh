#!/usr/bin/env bash
# Smoke test of a fresh GPU box, under 10 minutes: install the project (from a wheelhouse
# when the box has no network), then scripts/gpu_smoke.py writes runs/gpu_smoke/gpu_smoke.json.
#   bash scripts/gpu_smoke.sh                 # pip reaches an index, or everything is installed
#   bash scripts/gpu_smoke.sh wheelhouse/     # offline: wheels made by scripts/make_wheelhouse.py
# A torch already installed on the box (its CUDA build) is kept: the venv sees the system
# site-packages, and the project accepts any torch >= 2.4.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELHOUSE="${1:-}"
VENV="${FER_VENV:-.venv-gpu}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv --system-site-packages "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet)
if [ -n "$WHEELHOUSE" ]; then PIP+=(--no-index --find-links "$WHEELHOUSE"); fi
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" -c constraints.txt torch torchvision   # no torch on the box: the study's pins
fi
"${PIP[@]}" -e ".[notebooks,test]"
"${PIP[@]}" --no-deps "facenet-pytorch==2.6.0"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
export MPLBACKEND=Agg
"$VENV/bin/python" scripts/gpu_smoke.py "${@:2}"
