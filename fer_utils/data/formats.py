"""Shared pieces of the real-dataset readers: the dataset spec, errors, roots, checks.

Every reader turns a dataset as distributed into an *index*: a pandas DataFrame with
one row per image and at least ``path``, ``id``, ``label`` and either ``split``
(``train``/``val``/``test``) or ``fold``, plus ``subject`` where the dataset knows it.
``finalize_index`` orders the rows (train, val, test; or by fold) and checks that no
image id, and for folds no subject, is in two parts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..paths import project_path, shared_data_root
from .splits import assert_disjoint, subject_folds

SPLIT_ORDER = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DataFormatError(ValueError):
    """A dataset file is missing, unreadable or not in the documented format."""


def default_data_root() -> Path:
    """``$FER_DATA_ROOT``, else ``<project>/../shared/data``."""
    return shared_data_root()


@dataclass(frozen=True)
class DatasetSpec:
    """What the registry needs to know about one real dataset.

    ``build(root, **protocol)`` returns an unchecked index; ``names(**protocol)`` the
    class names in label order. ``defaults`` lists every protocol option with its
    default: any other ``data.params`` key is an error.
    """

    name: str
    names: Callable[..., tuple[str, ...]]
    build: Callable[..., "object"]
    defaults: dict
    description: str
    #: Folder under ``default_data_root()`` used when ``data.root`` is not set.
    default_dir: str
    #: Channels of the decoded images (1 = grayscale, 3 = RGB).
    channels: int = 3
    #: K-fold dataset: the index has a ``fold`` column built with ``data.num_folds``.
    kfold: bool = False
    #: Options that only change decoding (crop, margin...), not the index.
    decode_options: tuple[str, ...] = field(default=("crop", "margin", "no_face"))

    def protocol(self, params: dict) -> dict:
        """``params`` over the defaults; unknown keys are an error naming the valid ones."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            hint = " (set data.num_folds instead)" if "num_folds" in unknown and self.kfold else ""
            raise ValueError(f"unknown {self.name} params {unknown}{hint}; valid: {sorted(self.defaults)}")
        return {**self.defaults, **params}

    def class_names(self, **params) -> tuple[str, ...]:
        p = self.protocol(params)
        return self.names(**{k: v for k, v in p.items() if k not in self.decode_options})


def resolve_root(root: str | Path | None, default_dir: str) -> Path:
    """``root``, or ``default_data_root()/default_dir``; a clear error when missing."""
    # Relative roots start at the project root; $FER_DATA_ROOT expands (see fer_utils.paths).
    path = project_path(root) if root is not None else default_data_root() / default_dir
    if not path.exists():
        where = "data.root" if root is not None else f"default root ($FER_DATA_ROOT or ../shared/data)/{default_dir}"
        raise FileNotFoundError(f"dataset root not found: {path} (from {where})")
    return path


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; hidden files (``._x.png``) skipped."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())


def match_class_folders(root: Path, names: tuple[str, ...], where: str) -> dict[str, Path]:
    """Class name -> sub-folder of ``root`` (case-insensitive); unknown folders are an error."""
    folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise DataFormatError(f"{root}: unknown class folder(s) {unknown} in {where}; expected {list(names)}")
    empty = [n for n in names if n not in folders or not image_files(folders[n])]
    if empty:
        raise DataFormatError(f"{root}: no images for class(es) {empty} in {where}")
    return {n: folders[n] for n in names}


def subject_codes(subjects) -> np.ndarray:
    """Integer subject ids: the number in ``S005``/``P012`` when unambiguous, else sorted rank."""
    values = [str(s) for s in subjects]
    unique = sorted(set(values))
    numbers = [re.fullmatch(r"\D*(\d+)", s) for s in unique]
    if all(numbers) and len({int(m.group(1)) for m in numbers}) == len(unique):
        code = {s: int(m.group(1)) for s, m in zip(unique, numbers)}
    else:
        code = {s: i for i, s in enumerate(unique)}
    return np.array([code[s] for s in values], dtype=np.int64)


def assign_folds(df, num_folds: int, scheme: str):
    """Add a subject-independent ``fold`` column (sorted subject ids, ``rank_mod`` or ``blocks``)."""
    df = df.copy()
    df["fold"] = subject_folds(df["subject"].astype(str).to_numpy(), num_folds, scheme)
    return df


def finalize_index(df, names: tuple[str, ...], name: str):
    """Order the rows, type the columns and check the index is leakage-free.

    Raises if an image id, or (for folds) a subject, is in two parts, if a label is
    outside ``[0, len(names))`` or if a class has no image.
    """
    num_classes = len(names)
    if len(df) == 0:
        raise DataFormatError(f"{name}: no images found")
    df = df.copy()
    df["label"] = df["label"].astype(np.int64)
    bad = df[(df["label"] < 0) | (df["label"] >= num_classes)]
    if len(bad):
        raise DataFormatError(f"{name}: label(s) {sorted(bad['label'].unique())} outside [0, {num_classes}) "
                              f"e.g. {bad['path'].iloc[0]}")
    empty = [names[i] for i in np.flatnonzero(np.bincount(df["label"], minlength=num_classes) == 0)]
    if empty:
        raise DataFormatError(f"{name}: no images for class(es) {empty}")
    if "fold" in df:
        df = df.sort_values(["fold", "path"], kind="stable").reset_index(drop=True)
        groups = {f"fold {f}": g for f, g in df.groupby("fold")}
        assert_disjoint({k: g["subject"].astype(str).to_numpy() for k, g in groups.items()}, "subjects")
    else:
        unknown = sorted(set(df["split"]) - set(SPLIT_ORDER))
        if unknown:
            raise DataFormatError(f"{name}: unknown split(s) {unknown}")
        order = df["split"].map({s: i for i, s in enumerate(SPLIT_ORDER)})
        df = df.assign(_order=order).sort_values(["_order"], kind="stable").drop(columns="_order")
        df = df.reset_index(drop=True)
        groups = {s: g for s, g in df.groupby("split")}
    assert_disjoint({k: g["id"].astype(str).to_numpy() for k, g in groups.items()}, "image ids")
    return df
