"""CPU time-to-accuracy (DAWNBench style) of the study's FER2013 recipe.

    python benchmarks/time_to_accuracy.py                  # configs/fer2013_long
    python benchmarks/time_to_accuracy.py --config configs/fer2013_long/10_finetune_per_loss.yaml
    python benchmarks/time_to_accuracy.py --config configs/fer2013_fast/10_finetune_per_loss.yaml \
        --compare results/fer2013/headline/runs/W-resnet18-scratch-softmax-seed0 \
        --figure results/benchmarks/time_to_accuracy_cpu.png   # + the curves beside another run
    python benchmarks/time_to_accuracy.py --config ... --no-train \
        --record results/benchmarks/fer2013_time_to_accuracy.csv   # a line in the candidates' record
        --record-figure results/benchmarks/fer2013_time_to_accuracy.png  # + every candidate drawn

Trains the recipe's run (or resumes it, or reads it when finished: it is the same run
directory the pipeline writes) and prints the training wall-clock at which PublicTest
accuracy first reached each target. The recipe must set ``MONITOR_TEST: true``: the loop
then scores the test split after every epoch, outside the timed epoch and never for model
selection. Training time is the sum of epoch times (forward, backward, augmentation and
validation); data decoding, model building and the monitoring itself are not counted.
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

from fer_utils.config import SOFT_TARGET_WEIGHT, stage_extras  # noqa: E402
from fer_utils.study import paper_w_configs_from_parameters  # noqa: E402
from fer_utils.training import run_dir_of, train_run  # noqa: E402
from fer_utils.training.distill import targets_cost_minutes  # noqa: E402

DEFAULT_CONFIG = ROOT / "configs" / "fer2013_long" / "10_finetune_per_loss.yaml"


def time_to_targets(metrics_csv: Path, targets: list[float]) -> list[dict]:
    """First epoch (and cumulative training seconds) at which monitored test accuracy >= each target."""
    rows = pd.read_csv(metrics_csv)
    if "monitor_test_accuracy" not in rows:
        raise ValueError(f"{metrics_csv} has no monitor_test_accuracy column: train with MONITOR_TEST: true")
    out = []
    for t in targets:
        hit = rows[rows["monitor_test_accuracy"] >= t]
        if hit.empty:
            out.append({"target": t, "epoch": None, "seconds": None,
                        "best_seen": float(rows["monitor_test_accuracy"].max())})
        else:
            r = hit.iloc[0]
            out.append({"target": t, "epoch": int(r["epoch"]) + 1, "seconds": float(r["elapsed_s"]),
                        "best_seen": float(rows["monitor_test_accuracy"].max())})
    return out


def accuracy_at_minutes(rows: pd.DataFrame, minutes: list[float]) -> dict:
    """Monitored PublicTest accuracy of the last epoch (a ``metrics.csv`` row) that had finished
    by each mark of training wall-clock (None before the first epoch ends): the run's
    trajectory, not a model one would ship at that minute (a one-cycle run stopped early has
    not annealed)."""
    out = {}
    for m in minutes:
        done = rows[rows["elapsed_s"] <= 60 * m]
        out[m] = None if done.empty else float(done["monitor_test_accuracy"].iloc[-1])
    return out


RECORD_MINUTES = (20, 40, 60)


def candidate_row(config: str, run_dir: Path) -> dict:
    """One line of the candidates' record: recipe, host, commit, speed, accuracy at 20/40/60
    training minutes and the model chosen on validation."""
    info = json.loads((run_dir / "run_info.json").read_text())
    final = json.loads((run_dir / "metrics.json").read_text())
    rows = pd.read_csv(run_dir / "metrics.csv")
    at = accuracy_at_minutes(rows, list(RECORD_MINUTES))
    machine = info.get("machine", {})
    config_saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    seed = config_saved.get("seed", 0)
    row = {"config": config, "seed": seed, "commit": info.get("git", {}).get("sha", "")[:7],
           "cpu": (f"{machine['cpu_model']} ({machine.get('cpu_capability', '?')})" if "cpu_model" in machine
                   else "not recorded (run predates it)"),
           "epochs": len(rows), "mean_epoch_s": round(float(rows["epoch_time_s"].mean()), 1)}
    row.update({f"test_acc_at_{m}_min": None if a is None else round(100 * a, 2) for m, a in at.items()})
    row.update({"best_val_epoch": final["best_epoch"] + 1,
                "val_acc_selected": round(100 * final["val"]["accuracy"], 2),
                "test_acc_selected": round(100 * final["test"]["accuracy"], 2),
                "train_min": round(final["train_time_s"] / 60, 1),
                "teacher_min": teacher_minutes(config_saved)})
    return row


def teacher_minutes(config_saved: dict) -> float:
    """Training minutes spent before the run on the teachers it distils from (0: none): a
    distilled run's own minutes are not its recipe's cost."""
    targets = config_saved.get("data", {}).get("soft_targets")
    return round(targets_cost_minutes(targets), 1) if targets else 0.0


def record_candidate(csv: Path, row: dict) -> None:
    """Add ``row`` to the record, replacing an earlier line of the same recipe and seed on the
    same CPU."""
    table = pd.read_csv(csv) if csv.is_file() else pd.DataFrame(columns=list(row))
    missing = sorted(set(row) - set(table.columns))
    if missing:  # a blank column would read as "unknown" beside the new line: say so instead
        raise ValueError(f"{csv} has no column(s) {', '.join(missing)}: add them to its earlier lines first")
    if table["seed"].isna().any():  # NaN never equals a seed: a rerun would add a twin line
        raise ValueError(f"{csv} has lines with a blank seed: fill them in first")
    keep = ~((table["config"] == row["config"]) & (table["seed"] == row["seed"]) & (table["cpu"] == row["cpu"]))
    table = pd.concat([table[keep], pd.DataFrame([row])], ignore_index=True)
    csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv, index=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="a notebook-10 parameter file")
    p.add_argument("--targets", type=float, nargs="+", default=[0.65, 0.68, 0.70])
    p.add_argument("--no-train", action="store_true", help="only report an existing run")
    p.add_argument("--compare", nargs="*", default=[], metavar="RUN_DIR",
                   help="finished runs (local or published) drawn beside this one in --figure")
    p.add_argument("--figure", help="PNG of accuracy vs training minutes (needs the run's metrics.csv)")
    p.add_argument("--record", metavar="CSV", help="add the finished run as a line of this candidates' "
                   "record (e.g. results/benchmarks/fer2013_time_to_accuracy.csv)")
    p.add_argument("--record-figure", metavar="PNG", help="draw every candidate of the --record CSV "
                   "(selected model's accuracy vs training minutes)")
    args = p.parse_args(argv)
    if args.record_figure and not args.record:
        raise ValueError("--record-figure draws the --record CSV: give --record too")
    params = yaml.safe_load(Path(args.config).read_text())
    configs = paper_w_configs_from_parameters(params)
    if len(configs) != 1:
        raise ValueError(f"{args.config} defines {len(configs)} runs; time-to-accuracy needs one")
    cfg = configs[0]
    if not cfg.monitor_test:
        raise ValueError(f"{args.config}: set MONITOR_TEST: true")
    run_dir = run_dir_of(cfg) if args.no_train else train_run(cfg, progress=True)
    info = json.loads((run_dir / "run_info.json").read_text())
    final = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else None
    print(f"recipe: {args.config}")
    print(f"run: {run_dir}")
    print(f"machine: {info.get('machine')}")
    for r in time_to_targets(run_dir / "metrics.csv", args.targets):
        when = (f"{r['seconds'] / 60:6.1f} min (epoch {r['epoch']})" if r["seconds"] is not None
                else f"not reached (best {100 * r['best_seen']:.1f}%)")
        print(f"PublicTest accuracy >= {100 * r['target']:.0f}%: {when}")
    if final:
        print(f"selected model (best validation epoch {final['best_epoch'] + 1}): PublicTest accuracy "
              f"{100 * final['test']['accuracy']:.2f}%, training time {final['train_time_s'] / 60:.1f} min")
    if args.record:
        if not final:
            raise ValueError(f"{run_dir} has not finished: nothing to record")
        record_candidate(Path(args.record), candidate_row(args.config, run_dir))
        print(f"recorded in {args.record}")
    if args.record_figure:
        save_record_figure(Path(args.record), Path(args.record_figure), target=max(args.targets))
        print(f"record figure: {args.record_figure}")
    if args.figure:
        save_curves([run_dir, *args.compare], Path(args.figure), target=max(args.targets))
        print(f"figure: {args.figure}")
    return 0


def recipe_label(run_dir: Path) -> str:
    """``backbone, N epochs`` from a run's config.yaml (the legend of the figure), plus the
    one-cycle warm-up when it is not the default 0.3, the progressive-resizing sides, the loss
    parameters (e.g. label smoothing), the weight average, an augmentation other than notebook
    10's ``w``, mixup, distillation and a seed other than 0, if any (runs that differ only there stay apart)."""
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    label = f"{cfg['model']['backbone']}, {sum(s['epochs'] for s in cfg['stages'])} epochs"
    data = cfg.get("data", {})
    extras = [x for s in cfg["stages"] for x in stage_extras(s)]
    if data.get("augmentation", "w") != "w":
        extras.append(f"augmentation {data['augmentation']}")
    if data.get("mixup"):
        extras.append(f"mixup {data['mixup']}")
    if data.get("soft_targets"):  # the file is in config.yaml; the legend keeps it short
        extras.append(f"distilled (weight {data.get('soft_target_weight', SOFT_TARGET_WEIGHT):g})")
    if cfg.get("seed", 0):
        extras.append(f"seed {cfg['seed']}")
    return label + "".join(f", {x}" for x in extras)


def save_curves(run_dirs: list, out: Path, target: float) -> None:
    from fer_utils import io as fio
    from fer_utils.plots import time_to_accuracy
    missing = [str(r) for r in run_dirs if not (Path(r) / "metrics.csv").is_file()]
    if missing:
        raise FileNotFoundError(f"no metrics.csv in {', '.join(missing)}")
    labels = [recipe_label(Path(r)) for r in run_dirs]
    if len(set(labels)) < len(labels):  # a dict would silently keep only one of them
        raise ValueError(f"runs with the same recipe label cannot share the figure: {labels}")
    curves = {label: pd.read_csv(Path(r) / "metrics.csv") for label, r in zip(labels, run_dirs)}
    fio.save_figure(out, time_to_accuracy(curves, target=target))


def save_record_figure(csv: Path, out: Path, target: float) -> None:
    from fer_utils import io as fio
    from fer_utils.plots import candidate_record
    fio.save_figure(out, candidate_record(pd.read_csv(csv), target=target))


if __name__ == "__main__":
    from fer_utils.cli import run
    sys.exit(run(main, prog=f"benchmarks/{Path(__file__).name}"))
