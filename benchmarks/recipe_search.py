"""Screen FER2013 training recipes by accuracy per CPU-minute (issue 17), choosing on validation.

    python benchmarks/recipe_search.py                          # every candidate of the file
    python benchmarks/recipe_search.py --only resnet18_half_s1  # some of them
    python benchmarks/recipe_search.py --report                 # only the table of finished ones

Each candidate is a set of notebook-10 parameters laid over a base recipe (both in
``benchmarks/fer2013_recipes.yaml``), trained as one run into ``<runs_dir>/<candidate>/``
(interrupted runs resume, finished ones are read). The table ranks candidates by their
**validation** accuracy (the held-out part of train): PublicTest accuracy is printed beside it,
monitored after every epoch for the time-to-accuracy curves, and never used to choose. A
one-cycle schedule anneals over the epochs it is given, so candidates are compared at equal
budgets (the file's EPOCHS are sized so that each takes about the same training minutes);
the table records what each actually took (epoch times: training and validation, as
``time_to_accuracy.py`` counts them). One seed per candidate: a screen, so differences
within the seed spread (about a point) do not separate candidates. Run it on an otherwise
quiet machine: the minutes are the measurement.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_utils.config import ONECYCLE_WARMUP  # noqa: E402
from fer_utils.pipeline import notebook_defaults  # noqa: E402
from fer_utils.study import paper_w_configs_from_parameters  # noqa: E402
from fer_utils.training import run_dir_of, train_run  # noqa: E402

DEFAULT_FILE = ROOT / "benchmarks" / "fer2013_recipes.yaml"
DEFAULT_OUT = ROOT / "results" / "benchmarks" / "fer2013_recipes.csv"
#: The notebook whose parameters a candidate sets; its ``parameters`` cell names them all.
NOTEBOOK = ROOT / "notebooks" / "10_finetune_per_loss.ipynb"


def candidate_params(spec: dict, base: dict, name: str) -> dict:
    """The notebook-10 parameters of one candidate: ``base`` (the file's base recipe), then its
    overrides, then its own runs folder and test monitoring (for the curves)."""
    overrides = spec["candidates"][name] or {}
    # the same names pipeline --set accepts: a name notebook 10 lacks would be silently ignored
    unknown = sorted(set(overrides) - set(notebook_defaults(NOTEBOOK)))
    if unknown:
        raise ValueError(f"candidate {name}: unknown parameter(s) {', '.join(unknown)} "
                         f"(not in {NOTEBOOK.name}'s parameters cell)")
    return {**base, **overrides, "RUNS_DIR": f"{spec['runs_dir']}/{name}", "MONITOR_TEST": True}


def summary(name: str, run_dir: Path, params: dict) -> dict:
    """One row of the table from a finished run: budget, throughput, validation-chosen result."""
    curve = pd.read_csv(run_dir / "metrics.csv")
    final = json.loads((run_dir / "metrics.json").read_text())
    n_train = final["split_info"]["n_train"]
    seconds = float(curve["elapsed_s"].iloc[-1])
    return {
        "candidate": name,
        "backbone": params["BACKBONES"][0],
        "augmentation": params.get("AUGMENTATION", "w"),
        "loss_params": json.dumps(params.get("LOSS_PARAMS", {})),
        "tta": params.get("TTA", "none"),
        "warmup": params.get("WARMUP", ONECYCLE_WARMUP),
        "epochs": len(curve),
        # epoch times include validation (with the recipe's TTA), as time_to_accuracy.py counts
        "minutes_train_and_val": round(seconds / 60, 1),
        "train_img_per_s_incl_val": round(n_train * len(curve) / seconds, 1),
        "best_val_accuracy": round(100 * final["val"]["accuracy"], 2),
        "best_epoch": final["best_epoch"] + 1,
        "test_accuracy_of_best_val_epoch": round(100 * final["test"]["accuracy"], 2),
        "test_accuracy_last_epoch_monitored": round(100 * float(curve["monitor_test_accuracy"].iloc[-1]), 2),
        "run": str(run_dir.relative_to(ROOT)) if run_dir.is_relative_to(ROOT) else str(run_dir),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", default=str(DEFAULT_FILE), help="base recipe and candidates (YAML)")
    p.add_argument("--only", nargs="+", help="candidates to train (default: all of the file)")
    p.add_argument("--report", action="store_true", help="train nothing; tabulate finished candidates")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="CSV table of the finished candidates")
    args = p.parse_args(argv)
    spec = yaml.safe_load(Path(args.file).read_text())
    names = list(spec["candidates"])
    for name in args.only or []:
        if name not in names:
            raise ValueError(f"unknown candidate {name!r}; the file has {', '.join(names)}")
    # every candidate is checked before any trains: a typo in the last must not wait hours
    base = yaml.safe_load((ROOT / spec["base"]).read_text())
    params = {name: candidate_params(spec, base, name) for name in names}
    configs = {name: paper_w_configs_from_parameters(params[name]) for name in names}
    for name, found in configs.items():
        if len(found) != 1:
            raise ValueError(f"candidate {name} defines {len(found)} runs; a candidate is one run")
    rows = []
    for name in names:
        run_dir = run_dir_of(configs[name][0])
        if not args.report and (args.only is None or name in args.only):
            print(f"[recipes] {name}: {json.dumps(spec['candidates'][name] or {})}", flush=True)
            run_dir = train_run(configs[name][0], progress=True)
        if (run_dir / "metrics.json").exists():
            rows.append(summary(name, run_dir, params[name]))
    if not rows:
        print("[recipes] no finished candidate yet")
        return 0
    table = pd.DataFrame(rows).sort_values("best_val_accuracy", ascending=False)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.drop(columns=["run"]).to_string(index=False))
    print(f"[recipes] ranked by validation accuracy (PublicTest shown, never used to choose); "
          f"table: {args.out}")
    return 0


if __name__ == "__main__":
    from fer_utils.cli import run
    sys.exit(run(main, prog=f"benchmarks/{Path(__file__).name}"))
