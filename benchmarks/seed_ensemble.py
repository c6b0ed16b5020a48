"""Test-split accuracy of an ensemble of finished runs: the mean of their predicted
probabilities (each with its own test-time augmentation), image by image. Issue 17's stretch
asks for the best accuracy within 3 hours of CPU; two 50-minute seeds of one recipe are one
way to spend them.

    python benchmarks/seed_ensemble.py results/models/fer2013 \\
        results/fer2013/progressive_ls_val_seed1/runs/W-resnet18_half_s1-scratch-softmax-seed1 \\
        --out results/benchmarks/fer2013_seed_ensemble.json

Fix the members before looking at any test result: nothing here chooses among them. Only the
test split is scored. Members trained with different seeds hold out different validation
images (the seed draws the holdout), so one member's validation images are another's training
images and their validation predictions cannot be combined. The members' training minutes add
up, and the script reports their sum.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_utils.metrics import evaluate, mcnemar  # noqa: E402
from fer_utils.results import load_predictions  # noqa: E402


def _member_predictions(run_dir) -> dict[str, np.ndarray]:
    pred = load_predictions(run_dir)
    missing = sorted({"y_true", "y_prob", "image_id"} - set(pred))
    if missing:
        raise ValueError(f"{run_dir}/predictions.npz has no {', '.join(missing)} (runs saved before image "
                         "ids were: scripts/attach_test_groups.py adds them)")
    return pred


def ensemble_predictions(run_dirs: list) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The members' test predictions averaged (``y_prob`` the mean of their probabilities) and
    the members' own predictions. Refuses members scored on other images, in another order or
    with other labels, and scores that are not probabilities."""
    if len(run_dirs) < 2:
        raise ValueError("an ensemble needs at least two runs")
    members = [_member_predictions(r) for r in run_dirs]
    first = members[0]
    for run, m in zip(run_dirs[1:], members[1:]):
        if not np.array_equal(m["image_id"], first["image_id"]):
            raise ValueError(f"{run} was scored on other test images (or in another order) than {run_dirs[0]}")
        if not np.array_equal(m["y_true"], first["y_true"]):
            raise ValueError(f"{run} has other test labels than {run_dirs[0]}")
        if m["y_prob"].shape != first["y_prob"].shape:
            raise ValueError(f"{run} predicts {m['y_prob'].shape[1]} classes, {run_dirs[0]} {first['y_prob'].shape[1]}")
    for run, m in zip(run_dirs, members):
        # averaging logits would weight a confident member more than averaging probabilities
        if not np.allclose(m["y_prob"].sum(1), 1.0, atol=1e-4):
            raise ValueError(f"{run}: y_prob rows do not sum to 1; not probabilities")
    mean = {"y_true": first["y_true"], "image_id": first["image_id"],
            "y_prob": np.mean([m["y_prob"] for m in members], axis=0)}
    return mean, members


def _member_summary(run_dir: Path) -> dict:
    """Seed, training minutes, test accuracy and class names from a run's metrics.json."""
    final = json.loads((run_dir / "metrics.json").read_text())
    missing = [k for k in ("train_time_s", "test") if k not in final]
    missing += [f"test.{k}" for k in ("accuracy", "class_names") if k not in final.get("test", {})]
    if missing:
        raise ValueError(f"{run_dir}/metrics.json has no {', '.join(missing)}: not a finished run")
    return {"run": str(run_dir), "seed": final.get("seed"), "train_min": round(final["train_time_s"] / 60, 1),
            "test_accuracy": round(100 * final["test"]["accuracy"], 2),
            "class_names": final["test"]["class_names"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="finished runs or model folders holding predictions.npz and metrics.json")
    p.add_argument("--bootstrap", type=int, default=1000, help="stratified bootstrap replicates for the intervals")
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args(argv)
    run_dirs = [Path(r) for r in args.runs]
    members = [_member_summary(r) for r in run_dirs]
    names = members[0]["class_names"]
    if any(m["class_names"] != names for m in members):
        raise ValueError("the runs name their classes differently")
    ens, member_preds = ensemble_predictions(run_dirs)
    scores = evaluate(ens["y_true"], ens["y_prob"], names, n_bootstrap=args.bootstrap)
    pred = ens["y_prob"].argmax(1)
    for m, mp in zip(members, member_preds):
        test = mcnemar(ens["y_true"], pred, mp["y_prob"].argmax(1))
        m["vs_ensemble"] = {"only_ensemble_right": test["a_only_correct"],
                            "only_member_right": test["b_only_correct"], "p": test["p_value"]}
        print(f"member {m['run']}: seed {m['seed']}, {m['train_min']} training min, "
              f"test accuracy {m['test_accuracy']:.2f}%; images only the ensemble gets right "
              f"{test['a_only_correct']}, only this member {test['b_only_correct']} (exact McNemar p {test['p_value']:.3g})")
    ci = scores.get("ci", {})
    out = {"command": "python benchmarks/seed_ensemble.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "members": members, "train_min_total": round(sum(m["train_min"] for m in members), 1),
           "n_test": int(len(pred)), "test_accuracy": round(100 * scores["accuracy"], 2),
           "test_accuracy_ci": [round(100 * v, 2) for v in ci.get("accuracy", [])],
           "test_macro_f1": round(100 * scores["f1"], 2),
           "test_macro_f1_ci": [round(100 * v, 2) for v in ci.get("f1", [])],
           "recall": {c: round(100 * v["recall"], 2) for c, v in scores["per_class"].items()}}
    print(f"ensemble of {len(members)} ({out['train_min_total']} training min together): test accuracy "
          f"{out['test_accuracy']:.2f}% {out['test_accuracy_ci']}, macro-F1 {out['test_macro_f1']:.2f}% "
          f"{out['test_macro_f1_ci']} on {out['n_test']} images")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    from fer_utils.cli import run
    sys.exit(run(main, prog=f"benchmarks/{Path(__file__).name}"))
