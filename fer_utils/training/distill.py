"""Knowledge distillation from fixed teacher probabilities (Hinton et al., 2015; in neither paper).

Teachers (finished runs: one, or several whose probabilities are averaged, an ensemble) score
every training image once (``teacher_targets``, ``scripts/make_soft_targets.py``); the file
holds each image's id, label and the teachers' mean class probabilities. A run naming it in
``data.soft_targets`` trains on

    (1 - w) * its own loss + w * cross-entropy(teacher probabilities, student logits)

with ``w = data.soft_target_weight``. The targets are the teachers' probabilities of the stored
image (with each teacher's own test-time augmentation), computed once rather than on every
augmented view: the teachers cost no time while the student trains, at the price of targets
that do not follow the crop. Temperature 1: the mean of label-smoothed teachers is soft already.

A teacher that trained on the student's validation images makes the student's validation score
optimistic (what the teacher learnt from those labels reaches the student through the other
images): say so when the teachers held out other images than the student.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import io as fio
from ..data import Split

#: The arrays of a soft-target file.
TARGET_KEYS = ("image_id", "y_true", "prob")


def soft_cross_entropy(logits: torch.Tensor, target_prob: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c p_c log softmax(logits)_c (the KL divergence to the
    teacher up to its entropy, a constant)."""
    return -(target_prob * F.log_softmax(logits, dim=1)).sum(1).mean()


def with_distillation(loss: torch.Tensor, parts: dict, logits: torch.Tensor,
                      target_prob: torch.Tensor, weight: float):
    """The run's loss blended with the soft-target term; the logged parts keep the run's own
    terms as they are and add ``distill`` (the soft cross-entropy)."""
    soft = soft_cross_entropy(logits, target_prob)
    return (1.0 - weight) * loss + weight * soft, {**parts, "distill": soft.detach()}


def _training_probabilities(run_dir: Path, root: str | None, device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, labels, probabilities) of one teacher on every training image it can see:
    its train split plus, when validation was held out of train, its validation split; sorted
    by ``image_keys``."""
    from .evaluate import load_run_data, split_probabilities
    cfg, model, data = load_run_data(run_dir, root=root, device=device)
    if cfg.data.val_from == "test":
        raise ValueError(f"{run_dir}: selected on the test split (val_from test); its teacher "
                         "targets would carry a test-selected model")
    if cfg.data.fold is not None:
        raise ValueError(f"{run_dir}: a K-fold run (fold {cfg.data.fold}) sees only its folds' "
                         "images; soft targets serve one fixed training set")
    parts = [data.train, data.val] if "val_holdout" in data.info else [data.train]
    if any(part.ids is None for part in parts):
        raise ValueError(f"{run_dir}: {cfg.data.dataset} gives its images no ids to key targets by")
    ids = np.concatenate([np.asarray(part.ids).astype(str) for part in parts])
    labels = np.concatenate([np.asarray(part.labels, dtype=np.int64) for part in parts])
    probs = np.concatenate([split_probabilities(cfg, model, part, device) for part in parts])
    order = np.argsort(image_keys(ids, labels), kind="stable")
    return ids[order], labels[order], probs[order]


def image_keys(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each image's key: its id and label. An id alone is not unique: the FER2013 folder layout
    names an image by its file name, and two names occur under two class folders each."""
    return np.char.add(np.char.add(np.asarray(ids).astype(str), "#"), np.asarray(labels).astype(str))


def teacher_targets(run_dirs: list, *, root: str | None = None, device: str = "cpu") -> dict:
    """The teachers' mean probabilities on the training images, sorted by ``image_keys``.
    Every teacher must have scored the same images with the same labels and classes."""
    if not run_dirs:
        raise ValueError("no teacher runs given")
    ids = labels = None
    probs = []
    for run in map(Path, run_dirs):
        run_ids, run_labels, run_prob = _training_probabilities(run, root, device)
        if ids is None:
            ids, labels = run_ids, run_labels
        elif not (np.array_equal(ids, run_ids) and np.array_equal(labels, run_labels)):
            raise ValueError(f"{run}: scores other training images or labels than {run_dirs[0]}")
        elif run_prob.shape[1] != probs[0].shape[1]:
            raise ValueError(f"{run}: predicts {run_prob.shape[1]} classes, {run_dirs[0]} {probs[0].shape[1]}")
        probs.append(run_prob)
    return {"image_id": ids, "y_true": labels, "prob": np.mean(probs, axis=0).astype(np.float32),
            "teachers": np.array([str(r) for r in run_dirs]),
            "teacher_train_s": np.array([teacher_train_seconds(r) for r in map(Path, run_dirs)])}


def teacher_train_seconds(run_dir: Path) -> float:
    """A teacher's training time (its metrics.json): what the targets cost before any student."""
    return float(json.loads((Path(run_dir) / "metrics.json").read_text())["train_time_s"])


def targets_cost_minutes(path: str | Path) -> float:
    """The teachers' training minutes behind a soft-target file."""
    with np.load(path) as f:
        if "teacher_train_s" not in f.files:
            raise ValueError(f"{path} does not record its teachers' training time (teacher_train_s); "
                             "remake it with scripts/make_soft_targets.py")
        return float(f["teacher_train_s"].sum() / 60)


def check_same_targets(run_dir: Path, soft_targets: str | None) -> None:
    """Refuse to resume a distilled run on another targets file than the one it started with
    (its run_info.json records the file's SHA-256; the config names it by path only)."""
    info_path = Path(run_dir) / "run_info.json"
    if soft_targets is None or not info_path.is_file():
        return
    recorded = json.loads(info_path.read_text()).get("soft_targets_sha256")
    if recorded is not None and recorded != fio.sha256_file(soft_targets):
        raise ValueError(f"{run_dir} started on another version of {soft_targets} (SHA-256 "
                         f"{recorded[:12]}...); restore that file or train a new run")


def save_targets(path: str | Path, targets: dict) -> Path:
    return fio.save_npz(path, targets)


def targets_for(path: str | Path, split: Split, num_classes: int) -> np.ndarray:
    """The soft targets of ``split``'s images, in the split's order; one-line errors when the
    file lacks an image, disagrees on a label, or holds other classes or no probabilities."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.soft_targets: no such file: {path}")
    with np.load(path) as f:
        missing_keys = [k for k in TARGET_KEYS if k not in f.files]
        if missing_keys:
            raise ValueError(f"{path}: not a soft-target file (no {', '.join(missing_keys)}; "
                             "write one with scripts/make_soft_targets.py)")
        ids, labels, prob = f["image_id"].astype(str), f["y_true"], f["prob"].astype(np.float32)
    if prob.ndim != 2 or ids.ndim != 1 or not len(ids) == len(labels) == len(prob):
        raise ValueError(f"{path}: needs one id, one label and one row of class probabilities per "
                         f"image, got {len(ids)} ids, {len(labels)} labels, prob of shape {prob.shape}")
    keys = image_keys(ids, labels)
    order = np.argsort(keys, kind="stable")  # for the look-up below
    keys, prob = keys[order], prob[order]
    if prob.shape[1] != num_classes:
        raise ValueError(f"{path}: holds {prob.shape[1]} classes, the dataset has {num_classes}")
    if len(np.unique(keys)) != len(keys):
        raise ValueError(f"{path}: an image (id and label) appears twice")
    if (prob < 0).any() or not np.allclose(prob.sum(1), 1.0, atol=1e-3):
        raise ValueError(f"{path}: rows are not probabilities (negative, or not summing to 1)")
    if split.ids is None:
        raise ValueError("data.soft_targets: the dataset gives its images no ids to match targets to")
    want = image_keys(split.ids, split.labels)
    pos = np.searchsorted(keys, want)
    found = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == want)
    if not found.all():
        raise ValueError(f"{path}: no targets for {int((~found).sum())} of {len(want)} training images "
                         f"(first: {want[~found][0].replace('#', ' labelled ')}); made from another "
                         "dataset copy or other labels?")
    return prob[pos]
