"""Run the study's notebooks in order with papermill: ``python -m fer_utils.pipeline DATASET``.

For each notebook ``notebooks/NN_*.ipynb`` with a parameter file
``configs/<DATASET>/NN_*.yaml``, papermill executes it with those parameters and writes the
executed copy under ``<runs_dir>/notebooks/``. Notebooks without a parameter file for the
dataset are skipped (e.g. no paper F study on AffectNet). Training runs that already
finished are skipped inside the notebooks, interrupted ones resume, and the last notebook
refreshes ``results/<DATASET>/``. Runs published there with their predictions are first
restored into the runs folder (``results.restore_runs``), so a study cut off on one
machine resumes from a fresh checkout at run granularity; ``--no-restore`` retrains them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from .paths import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
CONFIGS = PROJECT_ROOT / "configs"


def plan(dataset: str) -> list[tuple[Path, Path]]:
    """(notebook, parameter file) pairs to execute for ``dataset``, in order."""
    folder = CONFIGS / dataset
    if not folder.is_dir():
        valid = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir())
        raise ValueError(f"no parameter files for dataset {dataset!r} in {CONFIGS}; valid: {', '.join(valid)}")
    pairs = [(nb, folder / f"{nb.stem}.yaml") for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))]
    return [(nb, cfg) for nb, cfg in pairs if cfg.exists()]


def load_parameters(path: Path, overrides: dict) -> dict:
    params = yaml.safe_load(path.read_text()) or {}
    params.update(overrides)
    return params


def run(dataset: str, *, force: bool = False, parameters: dict | None = None,
        kernel: str = "python3", restore: bool = True) -> Path:
    """Execute the notebooks for ``dataset``; returns the folder of executed notebooks."""
    import papermill as pm

    overrides = dict(parameters or {})
    steps = plan(dataset)
    if not steps:
        raise ValueError(f"configs/{dataset}/ holds no parameter file matching a notebook")
    runs_dir = load_parameters(steps[0][1], overrides).get("RUNS_DIR", f"runs/{dataset}")
    if force:  # never overwrite finished runs: train a fresh copy in a new folder
        runs_dir = f"{runs_dir}-{time.strftime('%Y%m%d-%H%M%S')}"
        overrides["RUNS_DIR"] = runs_dir
    out_dir = PROJECT_ROOT / runs_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    if restore and not force:
        _restore_published(steps, overrides, PROJECT_ROOT / runs_dir)
    for notebook, config in steps:
        params = load_parameters(config, overrides)
        t0 = time.time()
        print(f"[pipeline] {notebook.name} with {config.relative_to(PROJECT_ROOT)}", flush=True)
        pm.execute_notebook(str(notebook), str(out_dir / notebook.name), parameters=params,
                            kernel_name=kernel, cwd=str(NOTEBOOKS), progress_bar=False,
                            log_output=False, kernel_manager_class=_local_kernel_manager())
        print(f"[pipeline] {notebook.name} done in {time.time() - t0:.0f} s", flush=True)
    return out_dir


def _local_kernel_manager():
    """Kernels over IPC sockets: the kernel and papermill share this machine, and ipykernel
    warns about every unencrypted TCP kernel (a WARNING line per notebook otherwise)."""
    import os
    import tempfile

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class LocalKernelManager(AsyncKernelManager):
        transport = "ipc"

        @default("ip")
        def _ip_default(self):
            # An absolute socket path: the kernel runs in the notebook's folder, the client
            # wherever it was started, and a relative path would name two different sockets.
            return os.path.join(tempfile.gettempdir(), f"fer-kernel-{os.getpid()}-{id(self):x}-ipc")
    return LocalKernelManager


def _restore_published(steps, overrides: dict, runs_dir: Path) -> None:
    from .results import restore_runs
    published = load_parameters(steps[-1][1], overrides).get("RESULTS_DIR")
    if not published:
        return
    restored = restore_runs(PROJECT_ROOT / published / "runs", runs_dir)
    if restored:
        print(f"[pipeline] restored {len(restored)} finished runs from {published}/runs "
              f"(metrics and predictions, no checkpoints): training skips them", flush=True)


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point; input errors (unknown dataset, a notebook's configuration error) are one
    line and exit status 2 (``--debug`` / ``FER_DEBUG=1`` for the traceback)."""
    from .cli import run as run_cli
    return run_cli(_main, argv, prog="python -m fer_utils.pipeline")


def _main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_utils.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="a folder name under configs/ (synthetic, fer2013, ckplus48, ...)")
    p.add_argument("--force", action="store_true",
                   help="retrain everything into a new, timestamped runs folder")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="override a notebook parameter for every notebook, e.g. --set DEVICE=cuda")
    p.add_argument("--no-restore", dest="restore", action="store_false",
                   help="do not restore finished runs published under RESULTS_DIR/runs; train them")
    args = p.parse_args(argv)
    t0 = time.time()
    out = run(args.dataset, force=args.force, parameters=_parse_set(args.sets), restore=args.restore)
    print(f"[pipeline] finished in {time.time() - t0:.0f} s; executed notebooks in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
