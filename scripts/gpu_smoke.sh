#!/usr/bin/env bash
# Smoke test of a fresh GPU box: install what the smoke runs (the package, papermill, ipykernel;
# from a wheelhouse when the box has no network), then scripts/gpu_smoke.py writes
# runs/gpu_smoke/gpu_smoke.json (each step under its own time limit; the README's "On a GPU box"
# says what ran on an H200 and how long it took).
#   bash scripts/gpu_smoke.sh                 # pip reaches an index, or everything is installed
#   bash scripts/gpu_smoke.sh wheelhouse/     # offline: wheels made by scripts/make_wheelhouse.py --smoke
#   bash scripts/gpu_smoke.sh wheelhouse/ --steps throughput --out /tmp/smoke   # arguments after
#                                             # the first go to scripts/gpu_smoke.py
# A torch already installed on the box (its CUDA build) is kept: the venv sees the interpreter's
# packages (the system site-packages, or those of the venv PYTHON lives in), and the project
# accepts any torch >= 2.4. pip is the interpreter's own (`pip --python`), so the venv needs no
# ensurepip, which many images leave out.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELHOUSE="${1:-}"
VENV="${FER_VENV:-.venv-gpu}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv --system-site-packages --without-pip "$VENV"
  # --system-site-packages shows the *base* interpreter's packages; when PYTHON is itself in a
  # venv (GPU images often keep torch in one, e.g. /opt/torch/.venv), a .pth file adds that
  # venv's site-packages after the new venv's own.
  "$PY" - "$VENV" <<'PYEOF'
import pathlib, site, subprocess, sys
if sys.prefix != sys.base_prefix:
    own = subprocess.check_output([f"{sys.argv[1]}/bin/python", "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True)
    pathlib.Path(own.strip(), "_parent_venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
PYEOF
fi
PIP=("$PY" -m pip --python "$VENV/bin/python" install --quiet)
if [ -n "$WHEELHOUSE" ]; then PIP+=(--no-index --find-links "$WHEELHOUSE"); fi
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" -c constraints.txt torch torchvision   # no torch on the box: the study's pins
fi
# What the smoke runs: the package and the notebooks' executor (pyproject's "smoke" extra).
# JupyterLab, nbval and the test extras are for people and CI.
"${PIP[@]}" -e ".[smoke]"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
export MPLBACKEND=Agg
"$VENV/bin/python" scripts/gpu_smoke.py "${@:2}"
