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
# pip, quiet, less one warning: a host pip.conf that names index folders which do not exist
# (as on this project's lab machines) makes pip print a WARNING line per package; the install
# is unaffected, and any other warning or error still shows. A failing pip still fails here.
pip_install() {
  "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 \
    | { grep -v "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$" || true; }
}
STAMP="$VENV/.fer_utils-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing fer_utils and its dependencies into $VENV (torch first: a few minutes)"
  pip_install --upgrade pip
  # torch/torchvision first, at the study's pins (constraints.txt), so nothing else pulls
  # a different build; the project itself accepts any torch >= 2.4.
  pip_install -c "$ROOT/constraints.txt" torch torchvision
  # setuptools announces every editable install with a multi-line UserWarning ("be careful
  # with folders ... with the same name as your package"): information, not a problem here.
  PYTHONWARNINGS=ignore::UserWarning pip_install -c "$ROOT/constraints.txt" -e "$ROOT[notebooks,test]"
  # MTCNN face detection (its wheel ships the weights). Its metadata pins torch<2.3,
  # numpy<2 and Pillow<10.3, which current stacks contradict, so it goes in without deps.
  pip_install --no-deps "facenet-pytorch==2.6.0"
  pip_install requests
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
