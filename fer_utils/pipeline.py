"""Run the study's notebooks in order with papermill: ``python -m fer_utils.pipeline DATASET``.

For each notebook ``notebooks/NN_*.ipynb`` with a parameter file
``configs/<DATASET>/NN_*.yaml``, papermill executes it with those parameters and writes the
executed copy under ``<runs_dir>/notebooks/``. Notebooks without a parameter file for the
dataset are skipped (e.g. no paper F study on AffectNet). Training runs that already
finished are skipped inside the notebooks, interrupted ones resume, and the last notebook
refreshes ``results/<DATASET>/``.

What happens to the runs published under ``results/<DATASET>/runs`` depends on the profile:
- real-data profiles (expensive) *restore* them into the runs folder first
  (``results.restore_runs``), so a study cut off on one machine resumes from a fresh checkout
  at run granularity; ``--no-restore`` retrains them, ``--verify N`` retrains N of them, picked
  reproducibly, into ``runs/verify/<DATASET>`` and compares (``fer_utils.reproduce``);
- profiles in ``REPRODUCED_BY_DEFAULT`` (the synthetic demo) *reproduce* them: every run is
  trained from scratch, the tables go to ``<RUNS_DIR>/results`` instead of over the committed
  ones, and the runs are compared with the published ones; the exit status is 1 when they
  differ beyond the measured cross-machine tolerance. ``--no-restore`` is how such a profile
  is published: train and write ``results/<DATASET>``.
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
#: Profiles cheap enough to retrain on every call: the pipeline proves they reproduce.
REPRODUCED_BY_DEFAULT = ("synthetic",)


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
    _check_overrides(steps, overrides)
    out_dir = PROJECT_ROOT / runs_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    if restore and not force:
        _restore_published(steps, overrides, PROJECT_ROOT / runs_dir)
    for notebook, config in steps:
        names = notebook_defaults(notebook)  # each notebook gets only its own parameters
        params = {k: v for k, v in load_parameters(config, overrides).items() if k in names}
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

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client sends SIGINT to every kernel it shuts down, before the shutdown
            # request; an idle kernel may then log "[IPKernelApp] ERROR | KeyboardInterrupt
            # caught in kernel" after a notebook that ran fine. The request alone suffices.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

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
              f"(metrics and, where published, predictions; no checkpoints): training skips "
              f"them. Restoring is the "
              f"default for real-data profiles; --no-restore retrains them, --verify N retrains "
              f"N of them and compares", flush=True)


def notebook_defaults(notebook: Path) -> dict:
    """The literal values of a notebook's ``parameters`` cell."""
    import ast
    import json
    cell = next(c for c in json.loads(notebook.read_text())["cells"]
                if "parameters" in c.get("metadata", {}).get("tags", []))
    return {n.target.id: ast.literal_eval(n.value) for n in ast.parse("".join(cell["source"])).body}


def _check_overrides(steps, overrides: dict, where: str = "this profile's notebooks") -> None:
    """A ``--set`` name that no notebook of the profile has is a typo: papermill would only
    warn and train with the default."""
    known = set().union(*(notebook_defaults(nb) for nb, _ in steps))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"--set {', '.join(unknown)}: not a parameter of {where} "
                         f"(valid: {', '.join(sorted(known))})")


def grids_of(dataset: str, overrides: dict | None = None,
             per_notebook: dict | None = None) -> dict[str, list]:
    """{notebook number ("10", "20"): the run configurations its grid trains} for the
    profile's notebooks 10 and 20, built without executing them: notebook defaults, then the
    parameter file, then ``overrides`` (parameters of any notebook of the profile), then
    ``per_notebook[number]`` (parameters of that notebook alone)."""
    from . import study
    build = {"10": study.paper_w_configs_from_parameters, "20": study.paper_f_configs_from_parameters}
    steps, overrides, per_notebook = plan(dataset), dict(overrides or {}), dict(per_notebook or {})
    _check_overrides(steps, overrides)
    grids = {}
    for notebook, config in steps:
        number = notebook.name[:2]
        if number in build:
            own = dict(per_notebook.pop(number, {}))
            _check_overrides([(notebook, config)], own, where=f"notebook {notebook.name}")
            params = {**notebook_defaults(notebook), **load_parameters(config, {**overrides, **own})}
            grids[number] = build[number](params)
    if per_notebook:
        raise ValueError(f"{dataset} has no grid notebook numbered {', '.join(sorted(per_notebook))}")
    return grids


def grid_configs(dataset: str, overrides: dict | None = None) -> list:
    """Every run configuration the profile's notebooks 10 and 20 would train (``grids_of``)."""
    return [c for configs in grids_of(dataset, overrides).values() for c in configs]


def _published_dir(dataset: str, overrides: dict) -> tuple[str, Path]:
    results_dir = load_parameters(plan(dataset)[-1][1], overrides).get("RESULTS_DIR", f"results/{dataset}")
    return results_dir, PROJECT_ROOT / results_dir / "runs"


def _report(table, results_dir: str, published: dict, out: Path):
    """Write the run-by-run comparison beside the reproduced runs and print the verdict."""
    from . import reproduce
    from .io import write_text
    write_text(out, table.round(4).to_csv(index=False))
    v = reproduce.verdict(table, reproduce.Tolerance.load(PROJECT_ROOT / results_dir))
    print(f"[verify] {reproduce.host_note(published, list(table.run))}; run by run: {out}")
    for line in v.lines:
        print(f"[verify] {line}")
    print(f"[verify] verdict: {v.status.upper()}", flush=True)
    return v


def reproduce_study(dataset: str, parameters: dict | None = None, force: bool = False):
    """Train the whole profile through its notebooks (tables under ``<RUNS_DIR>/results``, so
    the committed ones stay the reference), then compare every published run."""
    from . import reproduce
    overrides = dict(parameters or {})
    _check_overrides(plan(dataset), overrides)
    results_dir, published_dir = _published_dir(dataset, overrides)
    published = reproduce.published_runs(published_dir)  # read before anything is written
    if not published:
        raise ValueError(f"{results_dir}/runs holds no published runs to reproduce")
    runs_dir = load_parameters(plan(dataset)[0][1], overrides).get("RUNS_DIR", f"runs/{dataset}")
    overrides.setdefault("RESULTS_DIR", f"{runs_dir}/results")
    print(f"[pipeline] {dataset}: training every run from scratch (nothing restored), tables in "
          f"{overrides['RESULTS_DIR']}; then comparing with the {len(published)} runs published in "
          f"{results_dir}/runs", flush=True)
    out = run(dataset, force=force, parameters=overrides, restore=False)
    table = reproduce.compare(published, out.parent)
    return _report(table, results_dir, published, out.parent / "reproduction.csv")


def verify_runs(dataset: str, n: int | None, *, seed: int = 0, parameters: dict | None = None,
                into: str | None = None, match: str | None = None):
    """Retrain ``n`` published runs of the profile (all when None), chosen reproducibly, into
    a fresh folder and compare them with the published ones; ``match`` (a glob such as
    ``F-*``) restricts the choice to the runs whose names it matches."""
    from fnmatch import fnmatchcase

    from . import reproduce, study
    from .config import config_from_dict
    overrides = dict(parameters or {})
    results_dir, published_dir = _published_dir(dataset, overrides)
    published = reproduce.published_runs(published_dir)
    configs = {c.name: c for c in grid_configs(dataset, overrides)
               if c.name in published and fnmatchcase(c.name, match or "*")}
    if not configs:
        raise ValueError(f"none of the runs of profile {dataset!r}{f' matching {match!r}' if match else ''} "
                         f"is published in {results_dir}/runs")
    names = reproduce.pick(list(configs), n or len(configs), seed) if n else sorted(configs)
    target = PROJECT_ROOT / (into or f"runs/verify/{dataset}")
    print(f"[verify] retraining {len(names)} of the {len(configs)} published runs of {dataset} "
          f"(picked with seed {seed}) into {target}: {', '.join(names)}", flush=True)
    # run_grid: two-stage runs adopt the stage 1 of a chosen one-stage run, as in the notebooks
    study.run_grid([config_from_dict({**configs[name].to_dict(), "runs_dir": str(target)})
                    for name in names])
    table = reproduce.compare(published, target, names)
    return _report(table, results_dir, published, target / "reproduction.csv")


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
                   help="train every run (restore nothing, compare nothing) and write RESULTS_DIR: "
                        "how a profile is published")
    p.add_argument("--verify", nargs="?", const="all", metavar="N",
                   help="retrain N published runs of the profile (default all), picked reproducibly, "
                        "into runs/verify/DATASET and compare them with the published ones")
    p.add_argument("--verify-seed", type=int, default=0, help="seed that picks the --verify runs")
    p.add_argument("--verify-into", metavar="DIR", help="folder for the --verify runs")
    p.add_argument("--verify-runs", metavar="PATTERN",
                   help="--verify only published runs whose names match this glob, e.g. 'F-*'")
    args = p.parse_args(argv)
    t0 = time.time()
    parameters = _parse_set(args.sets)
    if args.verify_runs and args.verify is None:
        args.verify = "all"
    if args.verify is not None:
        if args.verify != "all" and not args.verify.isdigit():
            raise ValueError(f"--verify expects a number of runs or nothing (all), got {args.verify!r}")
        ok = verify_runs(args.dataset, None if args.verify == "all" else int(args.verify),
                         seed=args.verify_seed, parameters=parameters, into=args.verify_into,
                         match=args.verify_runs).ok
    elif args.restore and args.dataset in REPRODUCED_BY_DEFAULT:
        ok = reproduce_study(args.dataset, parameters, force=args.force).ok
    else:
        out = run(args.dataset, force=args.force, parameters=parameters, restore=args.restore)
        print(f"[pipeline] executed notebooks in {out}")
        ok = True
    print(f"[pipeline] finished in {time.time() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
