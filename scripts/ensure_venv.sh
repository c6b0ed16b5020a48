#!/usr/bin/env bash
# Create ./.venv (Python 3.11) and install the project with its notebook and test
# extras, unless an install of the same pyproject.toml is already there.
# Sourced by run_study.sh and run_tests.sh; safe to run repeatedly.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FER_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.fer_utils-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing fer_utils and its dependencies into $VENV (torch first: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch/torchvision first, at the study's pins (constraints.txt), so nothing else pulls
  # a different build; the project itself accepts any torch >= 2.4.
  "$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" torch torchvision
  "$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[notebooks,test]"
  # MTCNN face detection (its wheel ships the weights). Its metadata pins torch<2.3,
  # numpy<2 and Pillow<10.3, which current stacks contradict, so it goes in without deps.
  "$VENV/bin/python" -m pip install --quiet --no-deps "facenet-pytorch==2.6.0"
  "$VENV/bin/python" -m pip install --quiet requests
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
