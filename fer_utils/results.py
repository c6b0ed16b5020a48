"""Results tables built from run directories only (never from notebook outputs).

``collect_runs`` reads every finished run's ``metrics.json``; the table builders
aggregate over seeds (paper W) or folds (paper F), add paired tests against the
baseline on the same test images, and put the papers' printed numbers beside ours.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import io as fio
from .metrics import mcnemar, paired_bootstrap, wilson_interval
from .reported import (PAPER_F_BACKBONES, PAPER_F_TABLE4, PAPER_W, PAPER_W_LOSSES,
                       PAPER_W_RESNET50_ACC, paper_f_dataset_key)

HEADLINE = ("accuracy", "f1", "kappa", "alpha", "auc_pr", "auc", "balanced_accuracy")


def _kind_of(name: str) -> str:
    return {"W": "paper_w", "F": "paper_f"}.get(name.split("-", 1)[0], "other")


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


def paper_w_table(runs: pd.DataFrame, baseline: str = "softmax",
                  metrics=("accuracy", "f1", "kappa", "alpha", "auc_pr", "auc")) -> pd.DataFrame:
    """Paper W Table 5/6 style: mean ± std over seeds (percent), the mean per-seed 95%
    bootstrap interval of accuracy and F1, the paired bootstrap test of each loss against
    ``baseline`` on the same test images (seed-matched), and the paper's numbers."""
    w = runs[runs["study"] == "paper_w"]
    out = []
    for (backbone, pretrained, loss), g in w.groupby(["backbone", "pretrained", "losses"], sort=False):
        row = {"backbone": backbone, "pretrained": pretrained, "loss": loss, "seeds": len(g)}
        for m in metrics:
            row[m] = _mean_std(g[m])
        for m in ("accuracy", "f1"):
            row[f"{m} 95% CI"] = f"[{g[f'{m}_lo'].mean() * 100:.1f}, {g[f'{m}_hi'].mean() * 100:.1f}]"
        row["min-class recall"] = _mean_std(g[[c for c in g if c.startswith("recall[")]].min(axis=1))
        row.update(_minority_recall(g))
        row["intra/inter (test emb.)"] = _compactness(g)
        base = w[(w.backbone == backbone) & (w.pretrained == pretrained) & (w.losses == baseline)]
        row.update(_paired_vs_baseline(g, base, loss == baseline))
        row.update(_paper_w_reported(backbone, pretrained, loss))
        out.append(row)
    return _in_order(pd.DataFrame(out), "loss", PAPER_W_LOSSES)


def _in_order(table: pd.DataFrame, column: str, order) -> pd.DataFrame:
    """Rows in the papers' order (unknown values last, stable)."""
    if table.empty:
        return table
    rank = {v: i for i, v in enumerate(order)}
    return table.sort_values(column, key=lambda c: c.map(lambda v: rank.get(v, len(rank))),
                             kind="stable").reset_index(drop=True)


def _minority_recall(runs: pd.DataFrame) -> dict:
    """Recall of the smallest training class, pooled over seeds, with a Wilson 95% interval."""
    name = runs["minority_class"].iloc[0]
    if name is None:
        return {}
    hits = total = 0
    for run_dir in runs["run_dir"]:
        p = load_predictions(run_dir)
        c = list(json.loads((Path(run_dir) / "metrics.json").read_text())["test"]["class_names"]).index(name)
        sel = p["y_true"] == c
        hits += int((p["y_prob"][sel].argmax(1) == c).sum())
        total += int(sel.sum())
    lo, hi = wilson_interval(hits, total)
    return {f"minority recall ({name})": f"{100 * hits / max(total, 1):.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"}


def _compactness(runs: pd.DataFrame) -> str:
    """Test-embedding intra-class spread / inter-center distance (lower = more compact and
    separated), mean ± std over seeds: what center and weighted-cluster losses claim to improve."""
    ratios = [run_compactness(d) for d in runs["run_dir"]]
    v = np.array([r for r in ratios if r is not None], dtype=float)
    if len(v) == 0:
        return "n/a"
    return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def _paired_vs_baseline(runs: pd.DataFrame, base: pd.DataFrame, is_baseline: bool) -> dict:
    """Seed-matched paired bootstrap of (this loss - baseline) on accuracy and macro-F1."""
    if is_baseline or base.empty:
        return {"Δacc vs baseline": "", "Δf1 vs baseline": "", "p (acc, f1) per seed": ""}
    diffs = {"accuracy": [], "f1": []}
    ps = []
    for _, r in runs.iterrows():
        b = base[base.seed == r.seed]
        if b.empty:
            continue
        pa, pb = load_predictions(b.iloc[0].run_dir), load_predictions(r.run_dir)
        res = {m: paired_bootstrap(pa["y_true"], pa["y_prob"], pb["y_prob"], metric=m,
                                   n_bootstrap=1000, seed=int(r.seed)) for m in diffs}
        for m in diffs:
            diffs[m].append(res[m]["difference"] * 100)
        ps.append(f"{res['accuracy']['p_value']:.3f}/{res['f1']['p_value']:.3f}")
    if not ps:
        return {"Δacc vs baseline": "n/a", "Δf1 vs baseline": "n/a", "p (acc, f1) per seed": ""}
    return {"Δacc vs baseline": f"{np.mean(diffs['accuracy']):+.2f}",
            "Δf1 vs baseline": f"{np.mean(diffs['f1']):+.2f}",
            "p (acc, f1) per seed": ", ".join(ps)}


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
    so small classes are not lost to folds that hold one or two of their images)."""
    r = runs[runs["study"] == study]
    keys = ["backbone", "pretrained", "strategy" if study == "paper_f" else "losses"]
    rows = []
    for key, g in r.groupby(keys, sort=False):
        names = json.loads((Path(g["run_dir"].iloc[0]) / "metrics.json").read_text())["test"]["class_names"]
        y, pred, _ = _pooled(g)
        recall = {n: 100 * float((pred[y == c] == c).mean()) if (y == c).any() else np.nan
                  for c, n in enumerate(names)}
        rows.append({**dict(zip(keys, key)), "runs": len(g), **recall})
    from .study import STRATEGIES
    return _in_order(pd.DataFrame(rows).round(1), keys[-1],
                     tuple(STRATEGIES) if study == "paper_f" else PAPER_W_LOSSES)


PAPER_F_TABLE_NOTE = (
    "accuracy, f1: mean ± std over folds. Pooled accuracy: every image tested once across "
    "folds, Wilson 95% interval. McNemar: exact two-sided test on the pooled out-of-fold "
    "predictions, (reference right only / this row right only); references: CE only of the "
    "same initialisation, the same strategy from scratch, and for CE -> focal the control that "
    "continues with plain CE at 0.25 x lr (what a gamma = 0, alpha = 0.25 focal stage amounts to). "
    "paper acc: the paper's number for the same backbone with its ImageNet / VGG-Face weights.")


def paper_f_table(runs: pd.DataFrame, baseline: str = "ce_only") -> pd.DataFrame:
    """Paper F Table 2-5 style: K-fold mean ± std accuracy per backbone and strategy, exact
    McNemar tests on the pooled out-of-fold predictions (every image is tested exactly once
    across folds, so pooling is valid) against ``baseline``, against the same strategy from
    scratch (pre-trained rows) and of CE -> focal against its CE -> CE control, and the
    paper's numbers (``PAPER_F_TABLE_NOTE`` says the same under the written table)."""
    f = runs[runs["study"] == "paper_f"]
    out = []
    for (backbone, pretrained, strategy), g in f.groupby(["backbone", "pretrained", "strategy"],
                                                          sort=False):
        row = {"backbone": backbone, "pretrained": pretrained, "strategy": strategy,
               "losses": g["losses"].iloc[0],
               "folds": g["fold"].nunique(), "seeds": g["seed"].nunique(),
               "accuracy": _mean_std(g["accuracy"]), "f1": _mean_std(g["f1"]),
               **_pooled_accuracy_with_interval(g)}
        row.update(_mcnemar_vs_baseline(g, _runs_of(f, backbone, pretrained, baseline), strategy == baseline))
        row["McNemar p vs CE->CE control"] = _mcnemar_vs_control(
            g, _runs_of(f, backbone, pretrained, "ce_then_ce_scaled_lr"), strategy)
        # Transfer's question: does starting from pre-trained weights beat the same strategy
        # from scratch on the very same test images?
        scratch = _runs_of(f, backbone, False, strategy)
        row["McNemar p vs scratch"] = pooled_mcnemar(scratch, g) if pretrained and not scratch.empty else ""
        key = paper_f_dataset_key(g["dataset"].iloc[0])
        # The paper's backbones start from ImageNet / VGG-Face weights, never from scratch.
        row["paper acc"] = _paper_f_reported(key, backbone, strategy) if pretrained else np.nan
        out.append(row)
    from .study import STRATEGIES
    return _in_order(pd.DataFrame(out), "strategy", tuple(STRATEGIES))


def _pooled(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list]:
    ys, preds, keys = [], [], []
    for _, r in g.sort_values(["seed", "fold"]).iterrows():
        p = load_predictions(r.run_dir)
        ys.append(p["y_true"])
        preds.append(p["y_prob"].argmax(1))
        keys += [(r.seed, r.fold, i) for i in range(len(p["y_true"]))]
    return np.concatenate(ys), np.concatenate(preds), keys


def _pooled_accuracy(g: pd.DataFrame) -> float:
    y, pred, _ = _pooled(g)
    return float((y == pred).mean())


def _pooled_accuracy_with_interval(g: pd.DataFrame) -> dict:
    """Pooled out-of-fold accuracy and its Wilson 95% interval (over pooled test images)."""
    y, pred, _ = _pooled(g)
    correct = int((y == pred).sum())
    lo, hi = wilson_interval(correct, len(y))
    return {"pooled accuracy": f"{correct / len(y) * 100:.2f}",
            "pooled 95% CI": f"[{lo * 100:.1f}, {hi * 100:.1f}]"}


def pooled_mcnemar(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """Exact McNemar p of ``b`` vs ``a`` (run tables, e.g. two strategies' folds) on their
    pooled predictions, formatted with the discordant counts: "p (a right only / b right
    only)"; refused when the two did not test the same images."""
    ya, pa, ka = _pooled(a)
    yb, pb, kb = _pooled(b)
    if ka != kb or not np.array_equal(ya, yb):
        return "unpaired (different folds/seeds)"
    res = mcnemar(ya, pa, pb)
    return f"{res['p_value']:.3f} ({res['a_only_correct']}/{res['b_only_correct']})"


def _mcnemar_vs_baseline(g: pd.DataFrame, base: pd.DataFrame, is_baseline: bool) -> dict:
    if is_baseline or base.empty:
        return {"McNemar p vs CE only": ""}
    return {"McNemar p vs CE only": pooled_mcnemar(base, g)}


def _mcnemar_vs_control(g: pd.DataFrame, control: pd.DataFrame, strategy: str) -> str:
    """CE -> focal against the control that continues with plain CE at 0.25 x lr: with paper
    F's CK+ settings (alpha 0.25, gamma 0) the focal stage is 0.25 x CE, so a gain over CE
    only that the control matches comes from the extra epochs, not from the focal loss."""
    if strategy != "ce_then_focal" or control.empty:
        return ""
    return pooled_mcnemar(control, g)


def _runs_of(f: pd.DataFrame, backbone: str, pretrained: bool, strategy: str) -> pd.DataFrame:
    """The paper F runs of one backbone, initialisation and strategy (a McNemar reference)."""
    return f[(f.backbone == backbone) & (f.pretrained.astype(bool) == bool(pretrained))
             & (f.strategy == strategy)]


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
    md = (f"# {title}\n\n" if title else "") + table.to_markdown(index=False) + "\n"
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
    p = load_predictions(run_dir)
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


def restore_runs(exported_dir: str | Path, runs_dir: str | Path) -> list[str]:
    """Copy finished runs published by ``export_runs`` back into ``runs_dir``, so a study
    interrupted on one machine resumes on another at run granularity: restored runs count
    as finished (training skips them, tables use their predictions) but have no
    checkpoints, so they cannot seed transfer or be re-evaluated. Only runs exported with
    their predictions, and absent from ``runs_dir`` (finished or not), are restored; each
    gets a ``restored_from.txt``. Returns the restored run names."""
    exported_dir, runs_dir = Path(exported_dir), Path(runs_dir)
    restored = []
    for metrics in sorted(exported_dir.glob("*/metrics.json")):
        src = metrics.parent
        dst = runs_dir / src.name
        if dst.exists() or not (src / "predictions.npz").exists():
            continue
        for f in sorted(src.iterdir()):
            if f.is_file():
                fio.write_bytes(dst / f.name, f.read_bytes())
        fio.write_text(dst / RESTORED_MARK, f"{src}\n(no checkpoints: published metrics and predictions only)\n")
        restored.append(src.name)
    return restored


def test_embeddings(runs: pd.DataFrame, label: str = "losses") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{run[label]: (test embedding, y_true)}`` for the runs whose predictions hold
    embeddings (runs restored from a results folder do not)."""
    out = {}
    for r in runs.itertuples():
        p = load_predictions(r.run_dir)
        if "embedding" in p:
            out[getattr(r, label)] = (p["embedding"], p["y_true"])
    return out
