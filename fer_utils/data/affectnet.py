"""AffectNet: the original CSV release and the re-distributed per-image ``.npy`` release.

CSV: ``Manually_Annotated_file_lists/{training,validation}.csv`` (header sniffed) and
``Manually_Annotated_Images/<subDirectory_filePath>``; faces are cropped by the
given box (x, y, width, height) grown by ``margin`` on every side.
NPY: ``{train_set,val_set}/images/<N>.jpg`` with ``annotations/<N>_exp.npy``.

Protocol (paper W): classes 0-7 (``num_classes=7`` drops Contempt); None, Uncertain
and No-Face rows (codes 8-10) and rows with an invalid box are skipped and counted;
``val_per_class`` training images per class are held out as validation with
``val_seed``; the official validation set is the test set.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from ..choices import check_choice
from .cache import cached_arrays
from .formats import IMAGE_SUFFIXES, DataFormatError, DatasetSpec
from .splits import stratified_holdout

#: Expression codes 0..10; the first 8 are the classes.
CODES: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
                          "none", "uncertain", "no-face")
COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
           "expression", "valence", "arousal")
DEFAULTS = {"layout": "auto", "num_classes": 8, "val_per_class": 500, "val_seed": 0,
            "crop": "auto", "margin": 0.1, "no_face": "error"}


def _names(num_classes: int = 8, **_protocol) -> tuple[str, ...]:
    check_choice("affectnet num_classes", num_classes, (7, 8))
    return CODES[:num_classes]


def _candidates(root: Path) -> list[Path]:
    """``root``, its sub-folders and theirs: where the release's folders may sit."""
    subs = [p for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
    return [root, *subs, *(q for p in subs for q in sorted(p.iterdir()) if q.is_dir() and
                           q.name.startswith("Manually"))]


def find_csv_layout(root: Path) -> tuple[Path, Path, Path] | None:
    """(training.csv, validation.csv, image folder) of the original release, or None."""
    lists = next((d for d in _candidates(root) if (d / "training.csv").is_file()), None)
    if lists is None:
        return None
    images = next((d / "Manually_Annotated_Images" for d in _candidates(root)
                   if (d / "Manually_Annotated_Images").is_dir()), None)
    if images is None:
        raise DataFormatError(f"{root}: found {lists / 'training.csv'} but no Manually_Annotated_Images/ folder")
    if not (lists / "validation.csv").is_file():
        raise DataFormatError(f"{lists}: training.csv without validation.csv")
    return lists / "training.csv", lists / "validation.csv", images


def read_csv(path: Path, images: Path, num_classes: int) -> tuple[list[dict], dict]:
    """Usable rows of one AffectNet CSV and the count of rows skipped per documented reason."""
    rows, skipped = [], {"none_uncertain_noface": 0, "invalid_box": 0, "contempt": 0}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        for n, row in enumerate(reader, start=1):
            if n == 1 and row and row[0].strip().lower() == COLUMNS[0].lower():
                continue  # header present in some copies
            if len(row) != len(COLUMNS):
                raise DataFormatError(f"{path}: line {n} has {len(row)} fields, expected {len(COLUMNS)} "
                                      f"({','.join(COLUMNS)})")
            try:
                code = int(float(row[6]))
                box = tuple(float(v) for v in row[1:5])
            except ValueError:
                raise DataFormatError(f"{path}: line {n}: expression or box is not a number: {row[1:5] + row[6:7]}"
                                      ) from None
            if not 0 <= code < len(CODES):
                raise DataFormatError(f"{path}: line {n}: unknown expression code {code} (valid 0..10)")
            if code >= 8:
                skipped["none_uncertain_noface"] += 1
            elif code >= num_classes:
                skipped["contempt"] += 1
            elif not (box[2] > 0 and box[3] > 0 and np.isfinite(box).all()):
                skipped["invalid_box"] += 1
            else:
                rel = row[0].strip()
                rows.append({"path": str(images / rel), "id": rel, "label": code, "bbox": box})
    return rows, skipped


def read_exp(path: Path) -> int:
    """The code in a 0-d ``<N>_exp.npy`` (an int, a float or a numpy string)."""
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError:  # object arrays need pickle; these are the user's own files
        a = np.load(path, allow_pickle=True)
    except (OSError, EOFError) as err:
        raise DataFormatError(f"{path}: not a readable .npy ({err})") from None
    try:
        return int(float(np.asarray(a).item()))
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: expression {a!r} is not a number") from None


def read_npy_set(folder: Path) -> list[tuple[str, Path, int]]:
    """(id, image path, code) of ``<set>/images/<N>.jpg`` + ``<set>/annotations/<N>_exp.npy``,
    the codes parsed once and cached by the annotation files' names, sizes and mtimes."""
    images = sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith("."))
    exp = [folder / "annotations" / f"{p.stem}_exp.npy" for p in images]
    h = hashlib.sha256()
    missing = []
    for p in exp:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            missing.append(str(p))
            continue
        h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    if missing:
        raise DataFormatError(f"{len(missing)} images in {folder / 'images'} have no annotation, "
                              f"e.g. {missing[:5]}")
    codes = cached_arrays("affectnet-npy-labels", {"folder": str(folder), "files": h.hexdigest()},
                          lambda: {"codes": np.array([read_exp(p) for p in exp], dtype=np.int64)})["codes"]
    return [(f"{folder.name}/{p.stem}", p, int(c)) for p, c in zip(images, codes)]


def _npy_rows(root: Path, set_name: str, num_classes: int) -> tuple[list[dict], dict]:
    rows, skipped = [], {"none_uncertain_noface": 0, "contempt": 0}
    for ident, path, code in read_npy_set(root / set_name):
        if not 0 <= code < len(CODES):
            raise DataFormatError(f"{root / set_name / 'annotations'}/{path.stem}_exp.npy: unknown expression "
                                  f"code {code} (valid 0..10)")
        if code >= 8:
            skipped["none_uncertain_noface"] += 1
        elif code >= num_classes:
            skipped["contempt"] += 1
        else:
            rows.append({"path": str(path), "id": ident, "label": code})
    return rows, skipped


def build(root: Path, layout: str = "auto", num_classes: int = 8, val_per_class: int = 500, val_seed: int = 0):
    """Index of AffectNet: train (minus the held-out validation), val, and test = official validation."""
    import pandas as pd

    check_choice("affectnet layout", layout, ("auto", "csv", "npy"))
    _names(num_classes)
    found = find_csv_layout(root) if layout in ("auto", "csv") else None
    if found is not None:
        train_csv, val_csv, images = found
        train, skip_train = read_csv(train_csv, images, num_classes)
        test, skip_test = read_csv(val_csv, images, num_classes)
        layout = "csv"
    elif layout == "csv":
        raise DataFormatError(f"{root}: no Manually_Annotated_file_lists/training.csv")
    elif (root / "train_set").is_dir() and (root / "val_set").is_dir():
        train, skip_train = _npy_rows(root, "train_set", num_classes)
        test, skip_test = _npy_rows(root, "val_set", num_classes)
        layout = "npy"
    else:
        raise DataFormatError(f"{root}: neither the CSV release (Manually_Annotated_file_lists/training.csv) "
                              "nor the per-image release (train_set/, val_set/)")
    train_df, test_df = pd.DataFrame(train), pd.DataFrame(test)
    for what, part in (("training", train_df), ("validation", test_df)):
        counts = np.bincount(part["label"], minlength=num_classes) if len(part) else np.zeros(num_classes)
        if (counts == 0).any():
            raise DataFormatError(f"{root}: no {what} images for class(es) "
                                  f"{[CODES[i] for i in np.flatnonzero(counts == 0)]}")
    _, held = stratified_holdout(train_df["label"].to_numpy(), per_class=val_per_class, seed=val_seed)
    train_df["split"] = "train"
    train_df.loc[held, "split"] = "val"
    test_df["split"] = "test"
    df = pd.concat([train_df, test_df], ignore_index=True)
    df.attrs["info"] = {"layout": layout, "skipped_train": skip_train, "skipped_test": skip_test,
                        "val": f"{val_per_class} per class held out of train (seed {val_seed})",
                        "test": "official validation set"}
    df.attrs["default_crop"] = "box" if layout == "csv" else "none"
    print(f"affectnet: skipped (documented protocol) train {skip_train}, test {skip_test}", file=sys.stderr)
    return df


SPEC = DatasetSpec(
    name="affectnet", names=_names, build=build, defaults=DEFAULTS, default_dir="AffectNet", channels=3,
    description="AffectNet (CSV with boxes or per-image .npy), 8 or 7 classes; paper W protocol: "
                "500/class of train as val, official validation as test")
