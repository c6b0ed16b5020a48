"""Figures of the study, each from run directories or dataset arrays.

Every function returns a matplotlib Figure; ``fer_utils.io.save_figure`` writes it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use(matplotlib.get_backend())  # respect MPLBACKEND (Agg headless)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .metrics import embedding_compactness  # noqa: E402


def class_distribution(counts: Sequence[int], class_names: Sequence[str], title: str = ""):
    """Bar chart of images per class (paper W Fig. 3) with the imbalance ratio."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.barplot(x=list(class_names), y=list(counts), ax=ax, color="tab:blue")
    ratio = max(counts) / max(min(counts), 1)
    ax.set(ylabel="images", title=f"{title} (imbalance ratio {ratio:.1f}:1)".strip())
    ax.tick_params(axis="x", rotation=30)
    for i, c in enumerate(counts):
        ax.text(i, c, str(c), ha="center", va="bottom", fontsize=8)
    return fig


def sample_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                per_class: int = 6, seed: int = 0):
    """A few images per class, one row per class."""
    rng = np.random.default_rng(seed)
    k = len(class_names)
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 1.1, k * 1.15), squeeze=False)
    for c, name in enumerate(class_names):
        idx = np.flatnonzero(labels == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(pick):
                img = np.asarray(images[pick[j]]).transpose(1, 2, 0)
                ax.imshow(img.squeeze(), cmap="gray" if img.shape[2] == 1 else None, vmin=0, vmax=255)
        axes[c, 0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def learning_curves(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None):
    """Train loss, validation loss and validation accuracy per epoch (paper W Fig. 5)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for i, run in enumerate(run_dirs):
        df = pd.read_csv(Path(run) / "metrics.csv")
        x = np.arange(1, len(df) + 1)
        label = labels[i] if labels else Path(run).name
        for ax, col in zip(axes, ("train_loss", "val_loss", "val_accuracy")):
            ax.plot(x, df[col], marker=".", label=label)
    for ax, title in zip(axes, ("training loss", "validation loss", "validation accuracy")):
        ax.set(xlabel="epoch", title=title)
    axes[2].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def time_to_accuracy(curves: dict[str, pd.DataFrame], target: float = 0.70, budget_min: float = 60.0):
    """Accuracy against training minutes, one line per recipe (``metrics.csv`` of a run trained
    with ``MONITOR_TEST``): PublicTest accuracy solid, validation dashed, the epoch chosen on
    validation circled. The test curve is shown, never used to choose."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (label, df) in enumerate(curves.items()):
        if "monitor_test_accuracy" not in df:
            raise ValueError(f"{label}: no monitor_test_accuracy column (train with MONITOR_TEST: true)")
        color, minutes = f"C{i}", df["elapsed_s"] / 60
        ax.plot(minutes, 100 * df["monitor_test_accuracy"], color=color, marker=".", label=f"{label}: PublicTest")
        ax.plot(minutes, 100 * df["val_accuracy"], color=color, ls="--", lw=1, label=f"{label}: validation")
        best = df.index[df["epoch"] == df["best_epoch"].iloc[-1]][-1]  # the loop's own choice
        ax.scatter(minutes[best], 100 * df["monitor_test_accuracy"][best], s=90, facecolors="none",
                   edgecolors=color, zorder=3)
    ax.axhline(100 * target, color="grey", lw=0.8, ls=":")
    ax.axvline(budget_min, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="training minutes (2 CPU cores)", ylabel="accuracy %",
           title="FER2013: accuracy per CPU-minute (circle: epoch chosen on validation)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def candidate_record(record: pd.DataFrame, target: float = 0.70, budget_min: float = 60.0):
    """Every recorded time-to-accuracy candidate (``benchmarks/time_to_accuracy.py --record``)
    as the model it chose on validation: PublicTest accuracy (filled) and validation accuracy
    (hollow) against its training minutes (a distilled run's teachers' minutes included:
    ``teacher_min``), beside the hour and the target. Points carry a
    number (in minutes order) and a key in a panel beside the axes names each number's profile, epochs
    and minutes: several candidates end within a few minutes and a point of each other, where
    full labels would overlap. A run's host is in the record, not on the figure: minutes
    compare hosts as much as recipes."""
    needed = {"config", "epochs", "train_min", "val_acc_selected", "test_acc_selected"}
    missing = sorted(needed - set(record.columns))
    if missing:
        raise ValueError(f"not a candidates' record: missing column(s) {', '.join(missing)}")
    fig, (ax, key_ax) = plt.subplots(1, 2, figsize=(9.5, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    record = record.assign(teacher_min=record.get("teacher_min", 0.0))
    record = record.assign(total_min=record["train_min"] + record["teacher_min"].fillna(0.0))
    ax.scatter(record["total_min"], record["test_acc_selected"], color="C0", zorder=3,
               label="PublicTest (the model chosen on validation)")
    ax.scatter(record["total_min"], record["val_acc_selected"], facecolors="none", edgecolors="C1",
               zorder=3, label="validation (what chose it)")
    key = []
    for i, (_, row) in enumerate(record.sort_values("total_min").iterrows(), start=1):
        name = Path(str(row["config"])).parent.name or str(row["config"])
        name = name.removeprefix("fer2013_")  # the figure's title names the dataset
        # numbers alternate below and above their points: neighbours in minutes stay apart
        ax.annotate(str(i), (row["total_min"], row["test_acc_selected"]), textcoords="offset points",
                    xytext=(3, -10 if i % 2 else 4), fontsize=7)
        teachers = f" + {row['teacher_min']:.1f} teacher" if row["teacher_min"] > 0 else ""
        key.append(f"{i:>2}  {name} ({row['epochs']} ep., {row['train_min']:.1f}{teachers} min)")
    key_ax.axis("off")
    key_ax.text(0.0, 1.0, "\n".join(key), transform=key_ax.transAxes, va="top", fontsize=7,
                family="monospace")
    ax.axhline(100 * target, color="grey", lw=0.8, ls=":")
    ax.axvline(budget_min, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="training minutes, teachers included (2 CPU cores)", ylabel="accuracy %",
           title="FER2013 candidates (one run each)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def confusion_matrices(matrices: Sequence[np.ndarray], titles: Sequence[str],
                       class_names: Sequence[str], normalize: bool = True):
    """Row-normalised confusion matrices side by side (paper W Fig. 6, paper F Figs. 3/5)."""
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.9 * n, 3.6), squeeze=False)
    for ax, cm, title in zip(axes[0], matrices, titles):
        cm = np.asarray(cm, dtype=float)
        if normalize:
            cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        sns.heatmap(cm, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", vmin=0,
                    vmax=1 if normalize else None, cbar=False, ax=ax, annot_kws={"fontsize": 7},
                    xticklabels=class_names, yticklabels=class_names)
        ax.set(title=title, xlabel="predicted", ylabel="true")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def per_class_recall(table: pd.DataFrame, labels: Sequence[str]):
    """Grouped bars of per-class test recall, one hue per row of ``table`` (a
    ``results.per_class_recall_table``) named by ``labels`` (``results.setting_labels`` keeps
    the initialisations and backbones of one loss apart)."""
    ids = [c for c in ("backbone", "pretrained", "losses", "strategy", "runs") if c in table]
    long = table.assign(setting=list(labels)).melt(id_vars=ids + ["setting"], var_name="class",
                                                    value_name="recall %")
    fig, ax = plt.subplots(figsize=(10, 3.6))
    sns.barplot(data=long, x="class", y="recall %", hue="setting", ax=ax)
    ax.legend(fontsize=7, ncol=2)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def embedding_compactness_plot(embeddings: dict[str, tuple[np.ndarray, np.ndarray]],
                               class_names: Sequence[str]):
    """For each loss: intra-class spread vs inter-center distance, and a 2-D PCA projection.

    ``embeddings`` maps a label to (embedding (N, d), labels (N,)).
    """
    from sklearn.decomposition import PCA

    n = len(embeddings)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.6 * (n + 1), 3.5), squeeze=False)
    stats = {k: embedding_compactness(e.astype(np.float64), y) for k, (e, y) in embeddings.items()}
    names = list(stats)
    ratio = [stats[k]["ratio"] for k in names]
    axes[0, 0].barh(names, ratio, color="tab:purple")
    axes[0, 0].set(title="intra-class / inter-center\n(lower = more compact)", xlabel="ratio")
    axes[0, 0].tick_params(labelsize=7)
    palette = sns.color_palette("tab10", len(class_names))
    for ax, (key, (emb, y)) in zip(axes[0, 1:], embeddings.items()):
        xy = PCA(n_components=2, random_state=0).fit_transform(emb.astype(np.float64))
        for c, name in enumerate(class_names):
            sel = y == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=palette[c], label=name, alpha=0.6)
        ax.set(title=f"{key}\nratio {stats[key]['ratio']:.3f}", xticks=[], yticks=[])
        ax.title.set_fontsize(8)
    axes[0, -1].legend(fontsize=6, markerscale=2, loc="best")
    fig.tight_layout()
    return fig


def strategy_accuracy(table: pd.DataFrame, runs: pd.DataFrame):
    """Per-fold test accuracy of each paper F strategy (box + points)."""
    f = runs[runs["study"] == "paper_f"].copy()
    f["accuracy %"] = f["accuracy"] * 100
    fig, ax = plt.subplots(figsize=(8, 3.4))
    sns.boxplot(data=f, x="strategy", y="accuracy %", hue="backbone", ax=ax, fliersize=0)
    # seaborn jitters the points with NumPy's global generator: a fixed seed (and the caller's
    # state put back) makes a rerun redraw the same figure, byte for byte.
    state = np.random.get_state()
    np.random.seed(0)
    try:
        sns.stripplot(data=f, x="strategy", y="accuracy %", hue="backbone", dodge=True, ax=ax,
                      color="black", size=3, legend=False)
    finally:
        np.random.set_state(state)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig
