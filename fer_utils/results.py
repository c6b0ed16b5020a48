"""Results tables built from run directories only (never from notebook outputs).

``collect_runs`` reads every finished run's ``metrics.json``; the table builders
aggregate over seeds (paper W) or folds (paper F), add paired tests against the
baseline on the same test images, and put the papers' printed numbers beside ours.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import io as fio
from .metrics import accuracy_interval, discordant_groups, holm, paired_test, wilson_interval
from .reproduce import study_of
from .reported import (PAPER_F_BACKBONES, PAPER_F_TABLE4, PAPER_W, PAPER_W_LOSSES,
                       PAPER_W_RESNET50_ACC, paper_f_dataset_key)

HEADLINE = ("accuracy", "f1", "kappa", "alpha", "auc_pr", "auc", "balanced_accuracy")


def _kind_of(name: str) -> str:
    return {"W": "paper_w", "F": "paper_f"}.get(study_of(name), "other")


def collect_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per finished run under ``runs_dir`` with its headline test metrics."""
    rows = []
    for path in sorted(Path(runs_dir).glob("*/metrics.json")):
        m = json.loads(path.read_text())
        cfg = m.get("loss_settings", [])
        parts = path.parent.name.split("-")
        row = {"run": path.parent.name, "run_dir": str(path.parent), "study": _kind_of(path.parent.name),
               "dataset": m["dataset"], "backbone": m["backbone"], "head": m["head"],
               "losses": "->".join(m["losses"]), "seed": m["seed"], "fold": m["fold"],
               "pretrained": "pretrained" in parts, "strategy": _strategy_of(path.parent.name),
               "best_epoch": m["best_epoch"], "train_time_s": m["train_time_s"],
               "reduction": cfg[0].get("reduction") if cfg else None}
        for key in HEADLINE:
            row[key] = m["test"][key]
            lo_hi = m["test"].get("ci", {}).get(key)
            row[f"{key}_lo"], row[f"{key}_hi"] = (lo_hi if lo_hi else (np.nan, np.nan))
        for name, pc in m["test"]["per_class"].items():
            row[f"recall[{name}]"] = pc["recall"]
        counts = m.get("split_info", {}).get("train_class_counts")
        row["minority_class"] = m["test"]["class_names"][int(np.argmin(counts))] if counts else None
        rows.append(row)
    return pd.DataFrame(rows)


def _strategy_of(run_name: str) -> str | None:
    from .study import STRATEGIES
    return next((s for s in STRATEGIES if f"-{s}-" in run_name), None)


def load_predictions(run_dir: str | Path, stage: int | None = None) -> dict[str, np.ndarray]:
    name = "predictions.npz" if stage is None else f"predictions_stage{stage}.npz"
    with np.load(Path(run_dir) / name) as f:
        return {k: f[k] for k in f.files}


def _mean_std(values: pd.Series) -> str:
    v = values.dropna().to_numpy(dtype=float) * 100
    if len(v) == 0:
        return "n/a"
    return f"{v.mean():.2f}" if len(v) == 1 else f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


PAPER_W_TABLE_NOTE = (
    "Mean ± std over seeds (seed-to-seed spread). Intervals and tests take the unit in the "
    "'unit' column (subjects where the test set records them, else images) and never count "
    "seeds as images: accuracy 95% CI and minority recall are bootstraps that resample whole "
    "units and apply the same resample to every seed (Wilson's interval for one seed at the "
    "image); f1 95% CI is the mean of the per-seed image bootstraps. p acc vs baseline: exact "
    "sign-flip test over units of the seed-summed differences in correct images against the "
    "same seeds of the baseline (= exact McNemar for one seed at the image), with "
    "(units where the baseline is better / this row is better); vs scratch: the same test of "
    "a pre-trained row against the same loss and backbone from scratch, on the seeds both "
    "have (Δ columns also over those seeds). Holm: adjusted over the family of every test "
    "in this table. Runs published without predictions "
    "(the first FER2013 grid) give per-seed Wilson intervals from their confusion matrices "
    "and no paired test.")


def paper_w_table(runs: pd.DataFrame, baseline: str = "softmax",
                  metrics=("accuracy", "f1", "kappa", "alpha", "auc_pr", "auc"),
                  unit: str = "subject") -> pd.DataFrame:
    """Paper W Table 5/6 style: mean ± std over seeds (percent), intervals and paired tests
    at the level of ``unit`` (see ``scored``) with seeds never counted as images, the test
    of each loss against ``baseline`` on the same images and seeds and of each pre-trained
    row against the same loss from scratch, Holm-adjusted over every test of the table, and
    the paper's numbers (``PAPER_W_TABLE_NOTE``)."""
    w = runs[runs["study"] == "paper_w"]
    out, tests = [], {label: [] for label in PAPER_W_REFERENCES}
    for (backbone, pretrained, loss), g in w.groupby(["backbone", "pretrained", "losses"], sort=False):
        row = {"backbone": backbone, "pretrained": pretrained, "loss": loss, "seeds": len(g)}
        for m in metrics:
            row[m] = _mean_std(g[m])
        sc = scored(g, unit)
        row["unit"] = sc.unit_text if sc else "image (no predictions)"
        row["accuracy 95% CI"] = _accuracy_interval_text(sc, g)
        row["f1 95% CI"] = f"[{g['f1_lo'].mean() * 100:.1f}, {g['f1_hi'].mean() * 100:.1f}]"
        row["min-class recall"] = _mean_std(g[[c for c in g if c.startswith("recall[")]].min(axis=1))
        row.update(_minority_recall(g, sc))
        row["intra/inter (test emb.)"] = _compactness(g)
        references = {
            "baseline": (_runs_of(w, backbone, pretrained, baseline, "losses")
                         if loss != baseline else None),
            # Paper W's Table 5 question: does pre-training beat the same loss from scratch?
            "scratch": _runs_of(w, backbone, False, loss, "losses") if pretrained else None}
        for label, ref in references.items():
            row.update(_vs_reference(label, g, ref, unit))
            tests[label].append(row.pop("_test"))
        row.update(_paper_w_reported(backbone, pretrained, loss))
        out.append(row)
    table = _with_holm(pd.DataFrame(out), tests, "p acc vs {}")
    return _in_order(table, "loss", PAPER_W_LOSSES)


#: The references each paper W row is tested against (column order): the baseline loss of
#: the same backbone and initialisation, and (pre-trained rows) the same loss from scratch.
PAPER_W_REFERENCES = ("baseline", "scratch")


def _in_order(table: pd.DataFrame, column: str, order) -> pd.DataFrame:
    """Rows in the papers' order (unknown values last, stable)."""
    if table.empty:
        return table
    rank = {v: i for i, v in enumerate(order)}
    return table.sort_values(column, key=lambda c: c.map(lambda v: rank.get(v, len(rank))),
                             kind="stable").reset_index(drop=True)


def _minority_recall(runs: pd.DataFrame, sc: "Scored | None") -> dict:
    """Recall of the smallest training class, mean over seeds, with its 95% interval at the
    table's unit (seeds resampled together, never pooled as images)."""
    name = runs["minority_class"].iloc[0]
    if name is None:
        return {}
    key = f"minority recall ({name})"
    if sc is None:  # published without predictions: each seed's counts, each its own Wilson
        counts = [_class_counts(d, name) for d in runs["run_dir"]]
        return {key: _per_seed_wilson_text(counts)}
    c = sc.class_names.index(name)
    sel = sc.y == c
    correct = sc.correct[:, sel]
    groups = None if sc.groups is None else sc.groups[sel]
    lo, hi = _interval(correct, groups)
    return {key: f"{100 * correct.mean():.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"}


def _interval(correct: np.ndarray, groups: np.ndarray | None) -> tuple[float, float]:
    """``accuracy_interval`` of a (seeds, n) matrix; one seed at the image is Wilson's."""
    if correct.shape[0] == 1 and groups is None:
        return accuracy_interval(correct[0])
    return accuracy_interval(correct, groups)


def test_metrics(run_dir: str | Path) -> dict:
    """A run's test metrics as its metrics.json records them: there also for runs published
    without predictions."""
    return json.loads((Path(run_dir) / "metrics.json").read_text())["test"]


def test_confusion_matrix(run_dir: str | Path) -> np.ndarray:
    """A run's test confusion matrix (rows true), from its metrics.json."""
    return np.array(test_metrics(run_dir)["confusion_matrix"], dtype=np.int64)


def _class_counts(run_dir: str, name: str) -> tuple[int, int]:
    """(hits, images) of class ``name`` in a run's test confusion matrix."""
    test = test_metrics(run_dir)
    c = list(test["class_names"]).index(name)
    row = test["confusion_matrix"][c]
    return int(row[c]), int(sum(row))


def _per_seed_wilson_text(counts: list[tuple[int, int]]) -> str:
    """Mean of per-seed rates, then each seed's own Wilson 95% interval."""
    rates = [h / n for h, n in counts if n]
    return f"{100 * np.mean(rates):.1f} {_per_seed_wilson_spans(counts)}"


def _per_seed_wilson_spans(counts: list[tuple[int, int]]) -> str:
    """Each seed's (hits, images) as its own Wilson 95% interval, in percent."""
    spans = " ".join(f"[{100 * lo:.1f}, {100 * hi:.1f}]" for lo, hi in
                     (wilson_interval(h, n) for h, n in counts))
    return spans + (" (per seed)" if len(counts) > 1 else "")


def _accuracy_interval_text(sc: "Scored | None", runs: pd.DataFrame) -> str:
    if sc is None:
        counts = []
        for d in runs["run_dir"]:
            cm = test_confusion_matrix(d)
            counts.append((int(np.trace(cm)), int(cm.sum())))
        return _per_seed_wilson_spans(counts)
    lo, hi = _interval(sc.correct, sc.groups)
    return f"[{lo * 100:.1f}, {hi * 100:.1f}]"


def _compactness(runs: pd.DataFrame) -> str:
    """Test-embedding intra-class spread / inter-center distance (lower = more compact and
    separated), mean ± std over seeds: what center and weighted-cluster losses claim to improve."""
    ratios = [run_compactness(d) for d in runs["run_dir"]]
    v = np.array([r for r in ratios if r is not None], dtype=float)
    if len(v) == 0:
        return "n/a"
    return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def _vs_reference(label: str, runs: pd.DataFrame, ref: pd.DataFrame | None, unit: str) -> dict:
    """Seed-matched differences from the reference runs (accuracy and macro-F1, points) and
    the paired test of accuracy at the unit, as columns named "... vs <label>"; ``_test``
    carries the raw result for Holm. No reference (None): empty cells and no test."""
    empty = {f"Δacc vs {label}": "", f"Δf1 vs {label}": "", f"p acc vs {label}": "", "_test": None}
    if ref is None or ref.empty:
        return empty
    seeds = sorted(set(runs.seed) & set(ref.seed))
    if not seeds:
        return {**empty, f"p acc vs {label}": "no common seed"}
    mine, theirs = (r[r.seed.isin(seeds)].sort_values("seed") for r in (runs, ref))
    res = compare_runs(theirs, mine, unit)
    return {f"Δacc vs {label}": f"{(mine.accuracy.mean() - theirs.accuracy.mean()) * 100:+.2f}",
            f"Δf1 vs {label}": f"{(mine.f1.mean() - theirs.f1.mean()) * 100:+.2f}",
            f"p acc vs {label}": _test_text(res), "_test": res}


def _paper_w_reported(backbone: str, pretrained: bool, loss: str) -> dict:
    if (backbone, pretrained) in PAPER_W and loss in PAPER_W[(backbone, pretrained)]:
        acc, f1 = PAPER_W[(backbone, pretrained)][loss][:2]
        return {"paper acc": acc, "paper F1": f1}
    if backbone == "resnet50" and loss in PAPER_W_RESNET50_ACC[pretrained]:
        return {"paper acc": PAPER_W_RESNET50_ACC[pretrained][loss], "paper F1": np.nan}
    return {"paper acc": np.nan, "paper F1": np.nan}


def per_class_recall_table(runs: pd.DataFrame, study: str = "paper_w") -> pd.DataFrame:
    """Per-class test recall (percent) per setting, pooled over the setting's runs: over seeds
    (same test set, so this equals the mean over seeds) or over folds (every image tested once,
    so small classes are not lost to folds that hold one or two of their images). Read from
    the runs' test confusion matrices, so runs published without predictions count too."""
    r = runs[runs["study"] == study]
    keys = ["backbone", "pretrained", "strategy" if study == "paper_f" else "losses"]
    rows = []
    for key, g in r.groupby(keys, sort=False):
        tests = [test_metrics(d) for d in g["run_dir"]]
        cm = np.sum([np.array(t["confusion_matrix"]) for t in tests], axis=0)
        support = cm.sum(axis=1)
        recall = {n: 100 * float(cm[c, c] / support[c]) if support[c] else np.nan
                  for c, n in enumerate(tests[0]["class_names"])}
        rows.append({**dict(zip(keys, key)), "runs": len(g), **recall})
    from .study import STRATEGIES
    return _in_order(pd.DataFrame(rows).round(1), keys[-1],
                     tuple(STRATEGIES) if study == "paper_f" else PAPER_W_LOSSES)


PAPER_F_TABLE_NOTE = (
    "accuracy, f1: mean ± std over folds. Pooled accuracy: every image tested once across "
    "folds. The 'unit' column names what the interval and the tests treat as independent: "
    "subjects where the data record them (CK+ / Oulu-CASIA: a subject's frames and sequences "
    "are near copies of one face, and subject-independent folds make subjects, not frames, "
    "independent), else images. Pooled 95% CI: bootstrap over units (Wilson at the image). "
    "p vs X: exact two-sided sign-flip test over units of the differences in correct images "
    "(= exact McNemar at the image), with (units where X is better / where this row is "
    "better); X = CE only of the same initialisation, the same strategy from scratch, and "
    "for CE -> focal its exact CE -> CE control (stage 2 plain CE at alpha x lr and weight "
    "decay / alpha: with gamma 0 the very same SGD steps). Holm p: adjusted over the family "
    "of every test in this table. paper acc: the paper's number for the same backbone with "
    "its ImageNet / VGG-Face weights.")


def paper_f_table(runs: pd.DataFrame, baseline: str = "ce_only", unit: str = "subject") -> pd.DataFrame:
    """Paper F Table 2-5 style: K-fold mean ± std accuracy per backbone and strategy, the
    pooled out-of-fold accuracy (every image is tested exactly once across folds) with its
    interval at ``unit``, paired tests at ``unit`` against ``baseline``, against the same
    strategy from scratch (pre-trained rows) and of CE -> focal against its exact CE -> CE
    control, Holm-adjusted over the table, and the paper's numbers (``PAPER_F_TABLE_NOTE``)."""
    f = runs[runs["study"] == "paper_f"]
    out, tests = [], {label: [] for label in PAPER_F_REFERENCES}
    for (backbone, pretrained, strategy), g in f.groupby(["backbone", "pretrained", "strategy"],
                                                          sort=False):
        sc = scored(g, unit)
        row = {"backbone": backbone, "pretrained": pretrained, "strategy": strategy,
               "losses": g["losses"].iloc[0],
               "folds": g["fold"].nunique(), "seeds": g["seed"].nunique(),
               "accuracy": _mean_std(g["accuracy"]), "f1": _mean_std(g["f1"]),
               "unit": sc.unit_text if sc else "image (no predictions)"}
        row["pooled accuracy"] = f"{sc.correct.mean() * 100:.2f}" if sc else "n/a"
        row["pooled 95% CI"] = _accuracy_interval_text(sc, g) if sc else "n/a"
        references = {
            "CE only": _runs_of(f, backbone, pretrained, baseline) if strategy != baseline else None,
            "CE->CE control": (_runs_of(f, backbone, pretrained, "ce_then_ce_scaled_lr")
                               if strategy == "ce_then_focal" else None),
            # Transfer's question: do pre-trained weights beat the same strategy from scratch?
            "scratch": _runs_of(f, backbone, False, strategy) if pretrained else None}
        for label, ref in references.items():
            res = compare_runs(ref, g, unit) if ref is not None and not ref.empty else None
            row[f"p vs {label}"] = _test_text(res)
            tests[label].append(res)
        key = paper_f_dataset_key(g["dataset"].iloc[0])
        # The paper's backbones start from ImageNet / VGG-Face weights, never from scratch.
        row["paper acc"] = _paper_f_reported(key, backbone, strategy) if pretrained else np.nan
        out.append(row)
    table = _with_holm(pd.DataFrame(out), tests, "p vs {}")
    from .study import STRATEGIES
    return _in_order(table, "strategy", tuple(STRATEGIES))


#: The references each paper F row is tested against (column order).
PAPER_F_REFERENCES = ("CE only", "CE->CE control", "scratch")


# ----------------------------------------------------------------- units and paired tests
@dataclass
class Scored:
    """Right/wrong of a setting's runs on its test images: one row per seed, folds of a
    seed concatenated in fold order (so every image of a CV appears once per seed)."""

    correct: np.ndarray            # (seeds, n) bool
    y: np.ndarray                  # (n,) labels
    keys: np.ndarray               # (n,) image ids (or fold:index when none were saved)
    seeds: list
    groups: np.ndarray | None      # (n,) unit labels; None = every image its own unit
    unit: str
    class_names: list

    @property
    def unit_text(self) -> str:
        n = len(self.y) if self.groups is None else len(np.unique(self.groups))
        return f"{self.unit} ({n})"


def scored(runs: pd.DataFrame, unit: str = "subject") -> Scored | None:
    """The runs' test predictions as a ``Scored``; None when a run has no predictions.

    ``unit`` is ``"subject"``, ``"sequence"`` or ``"image"``; when the predictions do not
    record it (FER2013 has no subjects) the unit falls back to the image, and says so.
    Raises if two seeds of the setting did not test the same images in the same order.
    """
    if unit not in ("subject", "sequence", "image"):
        raise ValueError(f"unit must be subject, sequence or image, got {unit!r}")
    if not all((Path(d) / "predictions.npz").exists() for d in runs["run_dir"]):
        return None
    rows, first = [], None
    for seed, s in runs.groupby("seed", sort=True):
        preds = [load_predictions(d) for d in s.sort_values("fold", na_position="first")["run_dir"]]
        y = np.concatenate([p["y_true"] for p in preds])
        keys = (np.concatenate([p["image_id"] for p in preds]) if all("image_id" in p for p in preds)
                else np.array([f"{f}:{i}" for f, p in zip(sorted(s.fold.fillna(-1)), preds)
                               for i in range(len(p["y_true"]))]))
        groups = (np.concatenate([p[unit] for p in preds]).astype(str)
                  if unit != "image" and all(unit in p for p in preds) else None)
        if first is None:
            first = (y, keys, groups)
        elif not (np.array_equal(y, first[0]) and np.array_equal(keys, first[1])):
            raise ValueError(f"seeds of {runs['run'].iloc[0]}... tested different images")
        rows.append(np.concatenate([p["y_prob"].argmax(1) for p in preds]) == y)
    y, keys, groups = first
    names = test_metrics(runs["run_dir"].iloc[0])["class_names"]
    return Scored(np.stack(rows), y, keys, sorted(runs.seed.unique()), groups,
                  unit if groups is not None else "image", list(names))


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, unit: str = "subject") -> dict | str:
    """Paired test of ``b`` against ``a`` (run tables of two settings) on the images and
    seeds they share: ``metrics.paired_test`` at ``unit``, as ``{"p", "a_better",
    "b_better", "unit"}``; a string saying why when they cannot be paired."""
    sa, sb = scored(a, unit), scored(b, unit)
    if sa is None or sb is None:
        return "n/a (no predictions)"
    seeds = [s for s in sa.seeds if s in sb.seeds]
    if not seeds or not np.array_equal(sa.keys, sb.keys) or not np.array_equal(sa.y, sb.y):
        return "unpaired (different folds/seeds)"
    ca = sa.correct[[sa.seeds.index(s) for s in seeds]]
    cb = sb.correct[[sb.seeds.index(s) for s in seeds]]
    a_better, b_better = discordant_groups(ca, cb, sa.groups)
    return {"p": paired_test(ca, cb, sa.groups), "a_better": a_better, "b_better": b_better,
            "unit": sa.unit}


def _test_text(res) -> str:
    if res is None:
        return ""
    if isinstance(res, str):
        return res
    return f"{res['p']:.3f} ({res['a_better']}/{res['b_better']})"


def _with_holm(table: pd.DataFrame, tests: dict[str, list], column: str) -> pd.DataFrame:
    """``table`` with a "Holm <p column>" beside each ``column.format(label)`` of ``tests``
    (label -> one raw test per row, None where the row has none): one family, every test of
    the table, as the tables' notes say."""
    if table.empty:
        return table
    adjusted = iter(_holm_texts([t for label in tests for t in tests[label]]))
    for label in tests:
        name = column.format(label)
        table.insert(table.columns.get_loc(name) + 1, f"Holm {name}", [next(adjusted) for _ in tests[label]])
    return table


def _holm_texts(tests: list) -> list[str]:
    """Holm-adjusted p of each test (a family: the list), '' where there is no test."""
    p = [t["p"] if isinstance(t, dict) else None for t in tests]
    return ["" if q is None else f"{q:.3f}" for q in holm(p)]


def _runs_of(runs: pd.DataFrame, backbone: str, pretrained: bool, setting: str,
             key: str = "strategy") -> pd.DataFrame:
    """The runs of one backbone, initialisation and setting (``key``: paper F's "strategy" or
    paper W's "losses"): the reference a paired test compares a row with."""
    return runs[(runs.backbone == backbone) & (runs.pretrained.astype(bool) == bool(pretrained))
                & (runs[key] == setting)]


def _paper_f_reported(key: str | None, backbone: str, strategy: str) -> float:
    if key is None:
        return np.nan
    if backbone == "inception_v3" and strategy in PAPER_F_TABLE4.get(key, {}):
        return PAPER_F_TABLE4[key][strategy]
    if backbone in PAPER_F_BACKBONES and strategy in ("ce_only", "ce_then_focal"):
        return PAPER_F_BACKBONES[backbone][key][strategy == "ce_then_focal"]
    return np.nan


def write_table(table: pd.DataFrame, out_dir: str | Path, name: str, title: str = "",
                note: str = "") -> tuple[Path, Path]:
    """Write ``name.csv`` and ``name.md`` (atomically) under ``out_dir``."""
    out_dir = Path(out_dir)
    csv_path = fio.write_text(out_dir / f"{name}.csv", table.to_csv(index=False))
    # disable_numparse: cells keep the text they were formatted to ("0.000", "89.60"),
    # rather than tabulate re-reading them as numbers ("0", "89.6")
    md = (f"# {title}\n\n" if title else "") + table.to_markdown(index=False, disable_numparse=True) + "\n"
    if note:
        md += f"\n{note}\n"
    md_path = fio.write_text(out_dir / f"{name}.md", md)
    return csv_path, md_path


def pooled_confusion(runs: pd.DataFrame, class_names, stage: int | None = None) -> np.ndarray:
    """Confusion matrix (rows true) summed over runs, e.g. over the folds of a CV;
    ``stage`` picks an earlier stage's best model (None = the run's final model)."""
    k = len(class_names)
    cm = np.zeros((k, k), dtype=np.int64)
    for run_dir in runs["run_dir"]:
        p = load_predictions(run_dir, stage)
        np.add.at(cm, (p["y_true"], p["y_prob"].argmax(1)), 1)
    return cm


def run_compactness(run_dir: str | Path) -> float | None:
    """One run's test-embedding intra/inter ratio: from its saved embeddings, or, for a run
    restored from a results folder (published without embeddings), from the value
    ``export_runs`` computed and published beside it; None when neither exists."""
    from .metrics import embedding_compactness
    p = load_predictions(run_dir) if (Path(run_dir) / "predictions.npz").exists() else {}
    if "embedding" in p:
        return embedding_compactness(p["embedding"].astype(np.float32), p["y_true"])["ratio"]
    published = Path(run_dir) / COMPACTNESS_FILE
    return json.loads(published.read_text())["ratio"] if published.exists() else None


#: Small per-run files worth publishing beside the tables (no checkpoints).
RUN_FILES = ("config.yaml", "run_info.json", "metrics.json", "metrics.csv")
#: Prediction arrays published with them: what the tables, paired tests and confusion plots
#: need. Test embeddings stay behind (512 numbers per image: megabytes per FER2013 run).
PREDICTION_KEYS = ("y_true", "y_prob", "image_id", "sequence", "subject")
RESTORED_MARK = "restored_from.txt"
#: What the embeddings left behind would have told the tables: their intra/inter ratio.
COMPACTNESS_FILE = "embedding_compactness.json"


def export_runs(runs: pd.DataFrame, out_dir: str | Path) -> Path:
    """Copy each run's config, metrics and test predictions (without embeddings, but with
    their compactness ratio, ``COMPACTNESS_FILE``) to ``out_dir/<run>/``: the results folder
    documents every number in its tables, and a fresh checkout can rebuild them, or resume
    the study, without retraining (see ``restore_runs``). Checkpoints and data are never
    copied."""
    out_dir = Path(out_dir)
    for run_dir in runs["run_dir"]:
        src = Path(run_dir)
        for name in RUN_FILES:
            if (src / name).exists():
                fio.write_text(out_dir / src.name / name, (src / name).read_text())
        for npz in sorted(src.glob("predictions*.npz")):
            with np.load(npz) as f:
                fio.save_npz(out_dir / src.name / npz.name, {k: f[k] for k in PREDICTION_KEYS if k in f.files})
        ratio = run_compactness(src) if (src / "predictions.npz").exists() else None
        if ratio is not None:
            fio.write_text(out_dir / src.name / COMPACTNESS_FILE, json.dumps({"ratio": ratio}) + "\n")
    return out_dir


def attach_test_groups(run_dir: str | Path, root: str | None = None) -> int:
    """Add ``image_id`` / ``sequence`` / ``subject`` to the predictions of a run made before
    predictions carried them, derived from the run's own config: the test split of a config
    is deterministic, so rebuilding it gives the images in the order the run tested them
    (checked: the labels must match row for row). ``root`` replaces the config's data root
    (a run made on another machine). Returns the number of prediction files rewritten."""
    import yaml
    from .config import config_from_dict
    from .data import load_dataset
    run_dir = Path(run_dir)
    cfg = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    if root is not None:
        cfg.data.root = root
    test = load_dataset(cfg.data, split_seed=cfg.seed).test
    groups = test.groups()
    changed = 0
    for npz in sorted(run_dir.glob("predictions*.npz")):
        with np.load(npz) as f:
            arrays = {k: f[k] for k in f.files}
        if not np.array_equal(arrays["y_true"], test.labels):
            raise ValueError(f"{npz}: its labels do not match the test split its config builds; "
                             "not the same images or not the same order")
        if all(k in arrays and np.array_equal(arrays[k], v) for k, v in groups.items()):
            continue
        fio.save_npz(npz, {**arrays, **groups})
        changed += 1
    return changed


def restore_runs(exported_dir: str | Path, runs_dir: str | Path) -> list[str]:
    """Copy finished runs published by ``export_runs`` back into ``runs_dir``, so a study
    interrupted on one machine resumes on another at run granularity: restored runs count
    as finished (training skips them, tables use their metrics and predictions) but have no
    checkpoints, so they cannot seed transfer or be re-evaluated. Runs published without
    predictions (older grids) are restored too: their table rows keep their metrics and say
    "no predictions" where a paired test would need them, and a second grid published into
    the same results folder keeps them in its tables. Runs already in ``runs_dir`` (finished
    or not) are left alone; each restored run gets a ``restored_from.txt``. Returns the
    restored run names."""
    exported_dir, runs_dir = Path(exported_dir), Path(runs_dir)
    restored = []
    for metrics in sorted(exported_dir.glob("*/metrics.json")):
        src = metrics.parent
        dst = runs_dir / src.name
        if dst.exists():
            continue
        for f in sorted(src.iterdir()):
            if f.is_file():
                fio.write_bytes(dst / f.name, f.read_bytes())
        kept = "metrics and predictions" if (src / "predictions.npz").exists() else \
            "metrics only: published without predictions"
        fio.write_text(dst / RESTORED_MARK, f"{src}\n(no checkpoints: {kept})\n")
        restored.append(src.name)
    return restored


def setting_labels(runs: pd.DataFrame, key: str = "losses") -> list[str]:
    """One label per row (a run, or a table row of ``per_class_recall_table``) for legends
    and panel titles: its ``key`` (the loss setting, or paper F's "strategy"), with the
    initialisation added ("softmax (pre-trained)", "softmax (scratch)") when the rows mix
    pre-trained and from-scratch ones, and the backbone when they mix backbones, so that no
    two settings share a name."""
    labels = list(runs[key])
    if runs["pretrained"].astype(bool).nunique() > 1:
        labels = [f"{l} ({'pre-trained' if p else 'scratch'})" for l, p in zip(labels, runs["pretrained"])]
    if runs["backbone"].nunique() > 1:
        labels = [f"{b}: {l}" for b, l in zip(runs["backbone"], labels)]
    return labels


def missing_embeddings(runs: pd.DataFrame) -> list[str]:
    """Setting labels (``setting_labels``) of the runs that hold no test embeddings: a figure
    drawn from ``test_embeddings`` alone would silently leave these settings out."""
    have = test_embeddings(runs)
    return [label for label in setting_labels(runs) if label not in have]


def test_embeddings(runs: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{setting label: (test embedding, y_true)}`` (labels of ``setting_labels``) for the
    runs whose predictions hold embeddings (runs restored from a results folder do not; runs
    published without predictions have none at all)."""
    out = {}
    for r, label in zip(runs.itertuples(), setting_labels(runs)):
        if not (Path(r.run_dir) / "predictions.npz").exists():
            continue
        p = load_predictions(r.run_dir)
        if "embedding" in p:
            out[label] = (p["embedding"], p["y_true"])
    return out
