"""The GPU box's smoke test: does the CUDA path run, and how fast is it? One JSON of what
it measured. ``bash scripts/gpu_smoke.sh`` installs the project first, then runs this.

    python scripts/gpu_smoke.py                      # all steps, on cuda, into runs/gpu_smoke
    python scripts/gpu_smoke.py --steps throughput   # some steps

Steps (each timed, each recorded with its command, return code and the tail of its output;
a failing step does not stop the others):

* ``pipeline``: the synthetic study (every notebook, ``configs/synthetic``) with
  ``DEVICE=cuda`` and ``PRECISION=bf16``, in a fresh runs folder (the committed results are
  never touched), then the reproduction verdict is not asked for (GPU arithmetic differs);
* ``throughput``: ``benchmarks/throughput.py`` for paper W (SE-ResNet-50, batch 36 and 256)
  and paper F (Inception-v3, batch 32 and 256) and the FER2013 recipes (the headline ResNet-18;
  the shipped model's at batch 64 and 256), naive vs ours;
* ``torchrun``: a two-process DistributedDataParallel run (NCCL) when two GPUs are present;
* ``grids`` (only when asked for: ``pipeline`` trains the same runs): the synthetic profile's
  notebook-10 and notebook-20 grids trained through the package (``study.run_grid``) with
  ``DEVICE=cuda`` and ``PRECISION=bf16``, no papermill: the notebooks' training path on a box
  that lacks the notebook stack. Fresh runs every time (``OUT/grid_runs`` is emptied first).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("pipeline", "throughput", "torchrun", "grids")
DEFAULT_STEPS = ("pipeline", "throughput", "torchrun")
#: The synthetic profile's grids by name: notebook 10 (paper W) and notebook 20 (paper F).
GRIDS = {"paper_w": "10", "paper_f": "20"}


def _run(name: str, cmd: list[str], timeout: int) -> dict:
    """Run one step; never raises (a GPU box's first run should report everything it can)."""
    print(f"[gpu-smoke] {name}: {' '.join(cmd)}", flush=True)
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out = 124, f"timed out after {timeout} s\n{exc.stdout or ''}{exc.stderr or ''}"
    seconds = round(time.time() - t0, 1)
    print(f"[gpu-smoke] {name}: rc {rc} in {seconds} s", flush=True)
    return {"command": " ".join(cmd), "returncode": rc, "seconds": seconds, "output_tail": out[-3000:]}


def environment() -> dict:
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "bf16_supported": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())}
    return info


def pipeline_step(out: Path, device: str, timeout: int) -> dict:
    sets = [f"DEVICE={device}", "PRECISION=bf16", f"RUNS_DIR={out / 'synthetic_runs'}",
            f"RESULTS_DIR={out / 'synthetic_results'}"]
    cmd = [sys.executable, "-m", "fer_utils.pipeline", "synthetic", "--no-restore"]
    for s in sets:
        cmd += ["--set", s]
    result = _run("pipeline", cmd, timeout)
    table = out / "synthetic_results" / "tables" / "paper_w_losses.md"
    result["paper_w_table"] = table.read_text() if table.exists() else None
    return result


def throughput_step(out: Path, device: str, recipes: list[str], steps: int, warmup: int, timeout: int) -> dict:
    path = out / "throughput.json"
    cmd = [sys.executable, "benchmarks/throughput.py", "--device", device, "--out", str(path),
           "--recipes", *recipes, "--steps", str(steps), "--warmup", str(warmup)]
    result = _run("throughput", cmd, timeout)
    result["results"] = json.loads(path.read_text()) if path.exists() else None
    return result


def torchrun_step(out: Path, timeout: int) -> dict:
    import torch
    if torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU(s): needs 2"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "fer_utils", "train", "--set", "device=cuda", "--set", "precision=bf16",
           "--set", f"runs_dir={out / 'torchrun_runs'}", "--set", "data.image_size=64",
           "--set", "stages.0.epochs=2", "--set", "batch_size=64"]
    return _run("torchrun", cmd, timeout)


def grids_step(out: Path, device: str, timeout: int, sets: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--train-grids", "--device", device,
           "--out", str(out)] + [a for s in sets for a in ("--grid-set", s)]
    path = out / "grids.json"
    path.unlink(missing_ok=True)  # an earlier smoke's figures are not this one's
    result = _run("grids", cmd, timeout)
    result["results"] = json.loads(path.read_text()) if path.exists() else None
    return result


def train_grids(out: Path, device: str, sets=()) -> None:
    """Train the synthetic grids on ``device`` into ``out/grid_runs``; per grid its seconds and
    each run's test accuracy go to ``out/grids.json``, rewritten after each grid."""
    import shutil
    grids = smoke_grids(out, device, sets)
    from fer_utils import study  # importable now: smoke_grids put the checkout on sys.path
    shutil.rmtree(out / "grid_runs", ignore_errors=True)
    report = {}
    for name, number in GRIDS.items():
        t0 = time.time()
        dirs = study.run_grid(grids[number], progress=False)
        report[name] = {"seconds": round(time.time() - t0, 1), "runs": {
            d.name: json.loads((d / "metrics.json").read_text())["test"]["accuracy"] for d in dirs}}
        print(f"[gpu-smoke] grid {name}: {len(dirs)} runs in {report[name]['seconds']} s", flush=True)
        (out / "grids.json").write_text(json.dumps(report, indent=1) + "\n")


def smoke_grids(out: Path, device: str, sets=()) -> dict[str, list]:
    """{notebook number: run configs} of the synthetic profile's grids as the pipeline builds
    them (``fer_utils.pipeline.grids_of``), on ``device`` in bf16, runs under
    ``out/grid_runs/<grid>``. ``sets``: ``NAME=VALUE`` (YAML values) over both grids,
    ``GRID.NAME=VALUE`` over one (``paper_w`` or ``paper_f``; e.g. to shrink them). A name no
    notebook has, or a malformed set, is a one-line error (papermill would ignore it)."""
    import yaml
    sys.path.insert(0, str(ROOT))  # a bare GPU box runs this without installing the package
    from fer_utils.pipeline import grids_of
    both, own = {"DEVICE": device, "PRECISION": "bf16"}, {number: {} for number in GRIDS.values()}
    for text in sets:
        key, eq, value = text.partition("=")
        grid, _, param = key.rpartition(".")
        if not eq or grid not in ("", *GRIDS):
            raise SystemExit(f"gpu_smoke: --grid-set needs NAME=VALUE or GRID.NAME=VALUE with GRID "
                             f"one of {', '.join(GRIDS)}, got {text!r}")
        (own[GRIDS[grid]] if grid else both)[param] = yaml.safe_load(value)
    for name, number in GRIDS.items():
        own[number].setdefault("RUNS_DIR", str(out / "grid_runs" / name))
    try:
        return grids_of("synthetic", both, own)
    except ValueError as err:
        raise SystemExit(f"gpu_smoke: {str(err).replace('--set', '--grid-set', 1)}") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(DEFAULT_STEPS))
    p.add_argument("--device", default="cuda", help="cuda (default); cpu only to test the script itself")
    p.add_argument("--out", default=str(ROOT / "runs" / "gpu_smoke"), help="folder for runs and the JSON")
    p.add_argument("--recipes", nargs="+", default=["paper_w", "paper_w_large_batch", "paper_f",
                                                    "paper_f_large_batch", "fer2013", "fer2013_fast",
                                                    "fer2013_fast_large_batch"])
    # 10 + 3 steps per recipe: on an H200 four recipes then took under 2 minutes with a reinstall,
    # where the benchmark's own 20 + 5 ran past 230 s within the first three recipes.
    p.add_argument("--bench-steps", type=int, default=10, help="timed steps per recipe")
    p.add_argument("--bench-warmup", type=int, default=3, help="untimed steps per recipe")
    p.add_argument("--timeout", type=int, default=420, help="seconds per step")
    p.add_argument("--grid-set", dest="grid_sets", action="append", default=[], metavar="NAME=VALUE",
                   help="grids step: a notebook parameter laid over both synthetic grids "
                        "(GRID.NAME=VALUE: over paper_w or paper_f only)")
    p.add_argument("--train-grids", action="store_true", help=argparse.SUPPRESS)  # the grids step's worker
    args = p.parse_args(argv)
    out = Path(args.out).resolve()  # the steps run from the project root
    if args.grid_sets or "grids" in args.steps:
        smoke_grids(out, args.device, args.grid_sets)  # refuses a typo before any step runs
    out.mkdir(parents=True, exist_ok=True)
    if args.train_grids:
        train_grids(out, args.device, args.grid_sets)
        return 0
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": args.device,
              "environment": environment(), "steps": {}}
    if args.device == "cuda" and not report["environment"]["cuda_available"]:
        print("gpu_smoke: CUDA is not available on this machine (torch "
              f"{report['environment']['torch']}); nothing to measure", file=sys.stderr)
        return 2
    for step in args.steps:
        if step == "pipeline":
            report["steps"][step] = pipeline_step(out, args.device, args.timeout)
        elif step == "throughput":
            report["steps"][step] = throughput_step(out, args.device, args.recipes, args.bench_steps,
                                                    args.bench_warmup, args.timeout)
        elif step == "grids":
            report["steps"][step] = grids_step(out, args.device, args.timeout, args.grid_sets)
        else:
            report["steps"][step] = torchrun_step(out, args.timeout)
    path = out / "gpu_smoke.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    failed = [k for k, v in report["steps"].items() if v.get("returncode", 0) != 0]
    print(f"[gpu-smoke] wrote {path}; " + (f"FAILED steps: {', '.join(failed)}" if failed else "all steps ran"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
