"""Execute every notebook top to bottom with its default (smoke) parameters and save it
in place: the committed notebooks are complete runs (see README, "Notebook hygiene").

Usage: source scripts/pin_kernels.sh && python scripts/refresh_notebooks.py [notebooks/NN_name.ipynb ...]
(nbval runs under those pinned kernels, so the saved outputs must be made under them too.)
Timing metadata is not recorded, so a refresh changes only what the cells print. The smoke
runs folder (``runs/smoke``) is emptied first, so the saved outputs come from fresh training.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    from fer_utils.pipeline import _local_kernel_manager
    NotebookClient(nb, timeout=1800, kernel_name="python3", record_timing=False,
                   kernel_manager_class=_local_kernel_manager(),
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    print(f"refreshed {path.relative_to(ROOT)}")


PINNED = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS")

if __name__ == "__main__":
    missing = [k for k in PINNED if k not in os.environ]
    if missing:
        sys.exit(f"refresh_notebooks.py: {', '.join(missing)} not set; run it after "
                 f"`source scripts/pin_kernels.sh`, as run_tests.sh runs nbval")
    targets = [Path(p).resolve() for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    shutil.rmtree(ROOT / "runs" / "smoke", ignore_errors=True)
    for target in targets:
        refresh(target)
