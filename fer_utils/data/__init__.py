"""Datasets as in-memory uint8 arrays with leakage-free train / val / test splits.

``DATASETS`` maps a dataset name to an entry that knows its class order and how
to produce its image arrays; ``load_dataset(data_config)`` applies the study's
split policy on top (validation held out of train, or a subject-independent fold).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .splits import assert_disjoint, stratified_holdout, subject_folds, subject_holdout  # noqa: F401


@dataclass
class Split:
    """One split: uint8 images (N, C, H, W), int64 labels, and what each image belongs to:
    optional int subject codes, image ids and sequence ids (str; a CK+ / Oulu-CASIA
    sequence's frames are near copies, so tests and intervals need to know them)."""

    images: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray | None = None
    ids: np.ndarray | None = None
    sequences: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "Split":
        def pick(a):
            return None if a is None else a[index]
        return Split(np.asarray(self.images[index]), self.labels[index], pick(self.subjects),
                     pick(self.ids), pick(self.sequences))

    def groups(self) -> dict[str, np.ndarray]:
        """Per-image ``image_id``, ``sequence`` and (where known) ``subject``, as saved beside
        a run's test predictions. A dataset without sequences has one image per sequence."""
        out = {}
        if self.ids is not None:
            out["image_id"] = np.asarray(self.ids).astype(str)
            seq = self.sequences if self.sequences is not None else self.ids
            out["sequence"] = np.asarray(seq).astype(str)
        if self.subjects is not None:
            out["subject"] = np.asarray(self.subjects).astype(np.int64)
        return out


@dataclass
class DatasetSplits:
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    #: How the splits were made, recorded in the run directory.
    info: dict = field(default_factory=dict)

    def class_counts(self, split: str = "train") -> list[int]:
        labels = getattr(self, split).labels
        return np.bincount(labels, minlength=len(self.class_names)).tolist()


@dataclass(frozen=True)
class DatasetEntry:
    #: class_names(**params) -> tuple of names in the dataset's label order.
    class_names: Callable[..., tuple[str, ...]]
    #: load(data_config) -> dict with "train" and "test" Splits (and optionally "val"),
    #: or {"all": Split} with a "folds" array for K-fold datasets.
    load: Callable[..., dict]
    description: str = ""


def _synthetic_class_names(**_params) -> tuple[str, ...]:
    from .synthetic import CLASS_NAMES
    return tuple(CLASS_NAMES)


SYNTHETIC_DEFAULTS = {"n_train": 6000, "n_test_per_class": 150, "seed": 0, "difficulty": 1.0,
                      "proportions": None, "cv": False}


def _synthetic_source_hash() -> str:
    """Changes whenever the generator's code does, so its cached faces are redrawn."""
    import hashlib
    from pathlib import Path
    return hashlib.sha256((Path(__file__).parent / "synthetic.py").read_bytes()).hexdigest()[:12]


def _load_synthetic(cfg) -> dict:
    """Imbalanced train set (paper W Table 3 proportions) and a balanced test set, like
    paper W's AffectNet protocol; the test faces come from a different generator seed."""
    from .cache import cached_arrays
    from .synthetic import make_synthetic_faces

    unknown = set(cfg.params) - set(SYNTHETIC_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown synthetic params {sorted(unknown)}; valid: {sorted(SYNTHETIC_DEFAULTS)}")
    p = {**SYNTHETIC_DEFAULTS, **cfg.params}

    def build(n, seed, proportions):
        key = {"n": n, "size": cfg.image_size, "seed": seed, "proportions": proportions,
               "difficulty": p["difficulty"], "generator": _synthetic_source_hash()}

        def make():
            faces = make_synthetic_faces(n, size=cfg.image_size, seed=seed, proportions=proportions,
                                         difficulty=p["difficulty"])
            return {"images": faces.images, "labels": faces.labels, "subjects": faces.subjects}

        a = cached_arrays("synthetic", key, make)
        ids = np.array([f"synthetic-{seed}-{i}" for i in range(n)])  # each face an independent draw
        return Split(a["images"], np.asarray(a["labels"]), np.asarray(a["subjects"]), ids)

    n_classes = len(_synthetic_class_names())
    if p["cv"]:  # K-fold protocol (paper F): subject-disjoint folds over one imbalanced pool
        pool = build(p["n_train"], p["seed"], p["proportions"])
        return {"all": pool, "folds": subject_folds(pool.subjects, cfg.num_folds)}
    return {"train": build(p["n_train"], p["seed"], p["proportions"]),
            "test": build(p["n_test_per_class"] * n_classes, p["seed"] + 10_000, "balanced")}


DATASETS: dict[str, DatasetEntry] = {
    "synthetic": DatasetEntry(_synthetic_class_names, _load_synthetic,
                              "procedurally drawn faces, AffectNet's 8 classes (pipeline demo only)"),
}


def _register_real_datasets() -> None:
    """One entry per real dataset reader (fer_utils.data.index.SPECS)."""
    from .index import SPECS, loader
    for name, spec in SPECS.items():
        DATASETS[name] = DatasetEntry(spec.class_names, loader(name), spec.description)


_register_real_datasets()


def build_index(name: str, root=None, **protocol):
    """Checked per-image index (pandas DataFrame) of a real dataset; see ``index.build_index``."""
    from .index import build_index as _build_index
    return _build_index(name, root, **protocol)


def default_data_root():
    """Where the datasets live: ``$FER_DATA_ROOT``, else ``<project>/../shared/data``."""
    from .formats import default_data_root as _default_data_root
    return _default_data_root()


def class_names(name: str, **params) -> tuple[str, ...]:
    """Class names of dataset ``name`` in its label order."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(sorted(DATASETS))}")
    return DATASETS[name].class_names(**params)


def _match_channels(split: Split, in_chans: int) -> Split:
    c = split.images.shape[1]
    if c == in_chans:
        return split
    if in_chans == 3 and c == 1:
        images = np.repeat(split.images, 3, axis=1)
    elif in_chans == 1 and c == 3:  # ITU-R 601 luma, as PIL's convert("L")
        w = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)
        images = np.clip((split.images * w).sum(1, keepdims=True) + 0.5, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"cannot convert {c}-channel images to {in_chans} channels")
    return Split(images, split.labels, split.subjects, split.ids, split.sequences)


def _holdout_val(train: Split, cfg, seed: int, by_subject: bool) -> tuple[Split, Split]:
    """Validation carved out of train: by whole subjects for subject-independent
    protocols (K-fold CV), else stratified by class."""
    if by_subject:
        keep, held = subject_holdout(train.subjects, fraction=cfg.val_fraction, seed=seed)
        assert_disjoint({"train": train.subjects[keep], "val": train.subjects[held]}, "subjects")
    else:
        keep, held = stratified_holdout(train.labels, fraction=cfg.val_fraction, seed=seed)
    return train.take(keep), train.take(held)


def load_dataset(cfg, split_seed: int = 0) -> DatasetSplits:
    """Load ``cfg.dataset`` and apply the split policy of ``cfg`` (a ``DataConfig``).

    The validation split is held out of train (stratified, seeded by ``split_seed``)
    unless the dataset ships one; ``val_from="test"`` reproduces paper F's printed
    protocol of selecting on the test fold and is recorded as leaking.
    """
    names = class_names(cfg.dataset, **cfg.params)
    parts = DATASETS[cfg.dataset].load(cfg)
    info = {"dataset": cfg.dataset, "val_from": cfg.val_from, **parts.get("info", {})}
    if "all" in parts:  # K-fold dataset: test = one subject-disjoint fold
        if cfg.fold is None:
            raise ValueError(f"dataset {cfg.dataset!r} is K-fold: set data.fold (0..{cfg.num_folds - 1})")
        folds = parts["folds"]
        train = parts["all"].take(np.flatnonzero(folds != cfg.fold))
        test = parts["all"].take(np.flatnonzero(folds == cfg.fold))
        info.update(fold=cfg.fold, num_folds=cfg.num_folds)
    else:
        train, test = parts["train"], parts["test"]
    if cfg.val_from == "test":
        val = test
        info["leaks"] = "model selection on the test split (paper F as printed)"
    elif "val" in parts:
        val = parts["val"]
    else:
        by_subject = "all" in parts and train.subjects is not None
        train, val = _holdout_val(train, cfg, split_seed, by_subject)
        info["val_fraction"] = cfg.val_fraction
        info["val_holdout"] = "subjects" if by_subject else "stratified"
    if train.subjects is not None and test.subjects is not None and "all" in parts:
        assert_disjoint({"train": train.subjects, "test": test.subjects}, "subjects")
    splits = [_match_channels(s, cfg.in_chans) for s in (train, val, test)]
    out = DatasetSplits(*splits, class_names=names, info=info)
    for split_name in ("train", "val", "test"):
        info[f"n_{split_name}"] = len(getattr(out, split_name))
    info["train_class_counts"] = out.class_counts("train")
    return out
