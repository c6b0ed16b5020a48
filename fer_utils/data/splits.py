"""Leakage-free index splits: stratified hold-outs and subject-independent folds."""
from __future__ import annotations

import numpy as np

from ..choices import check_choice


def stratified_holdout(labels: np.ndarray, *, fraction: float | None = None,
                       per_class: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held_out), holding out a fraction or a fixed count per class.

    Every class keeps at least one training sample; the split is a pure function of
    ``labels`` and ``seed``.
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("give exactly one of fraction or per_class")
    if fraction is not None and not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n = per_class if per_class is not None else int(round(fraction * len(idx)))
        held.append(idx[:min(n, len(idx) - 1)])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), held_out)
    return keep, held_out


def subject_holdout(subjects: np.ndarray, *, fraction: float, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held_out) by whole subjects, holding out about ``fraction``
    of the images: an inner validation split that shares no subject with training."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    subjects = np.asarray(subjects)
    unique = np.unique(subjects)
    if len(unique) < 2:
        raise ValueError("a subject hold-out needs at least two subjects")
    order = unique[np.random.default_rng(seed).permutation(len(unique))]
    counts = {s: c for s, c in zip(*np.unique(subjects, return_counts=True))}
    chosen, total = [], 0
    for s in order[:-1]:  # at least one subject stays in training
        if total >= fraction * len(subjects):
            break
        chosen.append(s)
        total += counts[s]
    held = np.isin(subjects, chosen)
    return np.flatnonzero(~held), np.flatnonzero(held)


def subject_folds(subjects: np.ndarray, num_folds: int = 10, scheme: str = "rank_mod") -> np.ndarray:
    """Fold of every sample such that no subject appears in two folds.

    ``rank_mod``: sort the unique subject ids, fold = rank % num_folds (CK+ convention,
    strided). ``blocks``: contiguous blocks of sorted subjects (an Oulu-CASIA convention).
    """
    check_choice("fold scheme", scheme, ("rank_mod", "blocks"))
    subjects = np.asarray(subjects)
    unique = np.unique(subjects)  # sorted
    if len(unique) < num_folds:
        raise ValueError(f"{len(unique)} subjects cannot fill {num_folds} subject-disjoint folds")
    if scheme == "rank_mod":
        fold_of = {s: i % num_folds for i, s in enumerate(unique)}
    else:  # blocks
        size = int(np.ceil(len(unique) / num_folds))
        fold_of = {s: i // size for i, s in enumerate(unique)}
    return np.array([fold_of[s] for s in subjects], dtype=np.int64)


def assert_disjoint(groups: dict[str, np.ndarray], what: str) -> None:
    """Raise if any value (image id or subject) appears in two of the named groups."""
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = np.intersect1d(groups[a], groups[b])
            if len(shared):
                raise ValueError(f"leakage: {len(shared)} {what} shared by {a} and {b}, "
                                 f"e.g. {shared[:3].tolist()}")
