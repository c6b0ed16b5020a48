"""FER2013: the Kaggle CSV (``emotion,pixels,Usage``) and the image-folder layout.

Study protocol: Training = train, PublicTest = validation, PrivateTest = test.
``test_split`` makes the choice explicit when a copy lacks a half:

- ``"PrivateTest"``: the protocol; an error when the copy has no PrivateTest images.
- ``"PublicTest"``: PublicTest is the test split, validation is held out of train
  (stratified, ``data.val_fraction``); PrivateTest rows, if any, are left out.
- ``"auto"`` (default): ``"PrivateTest"`` when present, else ``"PublicTest"`` with a
  warning, recorded in the index's ``attrs["info"]`` and the run's data info. The
  copy in ``../shared/data/fer2013`` holds PublicTest only, so it is read this way:
  its test metrics are PublicTest metrics, not the published PrivateTest ones.

A test folder whose file names do not say which half they are (``im0.png``) is read
as an unnamed test split (``usage="Test"``), also with a warning.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

from ..choices import check_choice
from .formats import DataFormatError, DatasetSpec, image_files, match_class_folders

#: CSV label order (the folder layout's alphabetical order is different).
CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
USAGES = ("Training", "PublicTest", "PrivateTest")
CSV_NAMES = ("fer2013.csv", "icml_face_data.csv")
DEFAULTS = {"layout": "auto", "test_split": "auto"}


def _names(**_protocol) -> tuple[str, ...]:
    return CLASS_NAMES


def read_csv(path: Path) -> list[dict]:
    """Rows of a FER2013 CSV (header sniffed); a malformed row is an error naming its line."""
    rows = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None:
            raise DataFormatError(f"{path}: empty file")
        header = [c.strip().lower() for c in first]
        has_header = "pixels" in header
        cols = header if has_header else ["emotion", "pixels", "usage"]
        missing = {"emotion", "pixels", "usage"} - set(cols)
        if missing:
            raise DataFormatError(f"{path}: header {first} lacks column(s) {sorted(missing)}")
        ie, ip, iu = cols.index("emotion"), cols.index("pixels"), cols.index("usage")
        lines = reader if has_header else [first, *reader]
        for n, row in enumerate(lines, start=2 if has_header else 1):
            if len(row) != len(cols):
                raise DataFormatError(f"{path}: line {n} has {len(row)} fields, expected {len(cols)} "
                                      f"({','.join(cols)})")
            try:
                label = int(row[ie])
            except ValueError:
                raise DataFormatError(f"{path}: line {n}: emotion {row[ie]!r} is not an integer") from None
            if not 0 <= label < len(CLASS_NAMES):
                raise DataFormatError(f"{path}: line {n}: unknown emotion label {label} (valid 0..6)")
            usage = row[iu].strip()
            if usage not in USAGES:
                raise DataFormatError(f"{path}: line {n}: unknown Usage {usage!r}; valid: {', '.join(USAGES)}")
            rows.append({"path": f"{path}#{n}", "id": f"line{n}", "label": label, "usage": usage,
                         "pixels": row[ip]})
    return rows


def read_folders(root: Path) -> list[dict]:
    """``train/<class>/Training_<id>.jpg`` and ``test/<class>/{PublicTest,PrivateTest}_<id>.jpg``."""
    if not (root / "train").is_dir():
        raise DataFormatError(f"{root}: no train/ folder and no {' or '.join(CSV_NAMES)}")
    rows = []
    for top in ("train", "test"):
        if not (root / top).is_dir():
            continue
        for name, folder in match_class_folders(root / top, CLASS_NAMES, f"{top}/").items():
            for p in image_files(folder):
                prefix = p.stem.split("_", 1)[0]
                usage = prefix if prefix in USAGES else ("Training" if top == "train" else "Test")
                rows.append({"path": str(p), "id": p.stem, "label": CLASS_NAMES.index(name), "usage": usage})
    return rows


def find_csv(root: Path) -> Path | None:
    if root.is_file():
        return root
    return next((root / n for n in CSV_NAMES if (root / n).is_file()), None)


def _resolve(usages: set[str], test_split: str, root: Path) -> str:
    """The half to test on: ``test_split``, or for ``"auto"`` the first of PrivateTest, PublicTest, Test."""
    if test_split == "auto":
        half = next((h for h in ("PrivateTest", "PublicTest", "Test") if h in usages), None)
        if half is None:
            raise DataFormatError(f"{root}: no test images (no PublicTest, PrivateTest or test/ folder)")
        return half
    if test_split not in usages:
        if "Test" in usages and not {"PublicTest", "PrivateTest"} & usages:
            raise DataFormatError(f"{root}: test/ file names do not say PublicTest or PrivateTest; "
                                  f"cannot select {test_split}: use test_split='auto'")
        other = "PublicTest" if test_split == "PrivateTest" else "PrivateTest"
        raise DataFormatError(f"{root} holds no {test_split} images (usages: {sorted(usages)}): pass "
                              f"data.params.test_split='{other}' (or 'auto') to test on {other}")
    return test_split


def _choose_test(counts: dict[str, int], test_split: str, root: Path) -> tuple[dict, dict]:
    """Usage -> split mapping for ``test_split``, and what to record about it."""
    half = _resolve(set(counts), test_split, root)
    val = "PublicTest" if half == "PrivateTest" and "PublicTest" in counts else None
    mapping = {"Training": "train", half: "test", **({val: "val"} if val else {})}
    info = {"test_split": half if half != "Test" else "Test (unnamed half)",
            "validation": val or "held out of train (stratified, data.val_fraction)"}
    if half == "PublicTest" and test_split == "auto":
        info["protocol_note"] = (
            f"{root} holds no PrivateTest images: PublicTest ({counts['PublicTest']} images) is the TEST split "
            "and validation is held out of train (stratified); results are PublicTest results, not the "
            "published PrivateTest protocol (set data.params.test_split='PublicTest' to silence)")
    elif half == "Test":
        info["protocol_note"] = (f"{root}: test/ file names do not say PublicTest or PrivateTest; the whole "
                                 "test/ folder is the test split and validation is held out of train")
    elif half == "PrivateTest" and val is None:
        info["protocol_note"] = (f"{root} holds no PublicTest images: validation is held out of train "
                                 "(stratified) instead of PublicTest")
    return mapping, info


def build(root: Path, layout: str = "auto", test_split: str = "auto"):
    """Index of FER2013 under ``root`` (a CSV file, a folder holding one, or the folder layout)."""
    import pandas as pd

    check_choice("fer2013 layout", layout, ("auto", "csv", "folders"))
    check_choice("fer2013 test_split", test_split, ("auto", "PrivateTest", "PublicTest"))
    csv_path = find_csv(root) if layout in ("auto", "csv") else None
    if layout == "csv" and csv_path is None:
        raise DataFormatError(f"{root}: no {' or '.join(CSV_NAMES)} found")
    rows = read_csv(csv_path) if csv_path is not None else read_folders(root)
    df = pd.DataFrame(rows)
    if not (df["usage"] == "Training").any():
        raise DataFormatError(f"{root}: no Training images")
    counts = {str(k): int(v) for k, v in df["usage"].value_counts().sort_index().items()}
    mapping, info = _choose_test(counts, test_split, root)
    df["split"] = df["usage"].map(mapping)
    unused = df["split"].isna()
    info = {"layout": "csv" if csv_path is not None else "folders",
            "usage_counts": counts,
            **info}
    if unused.any():
        info["unused"] = {str(k): int(v) for k, v in df.loc[unused, "usage"].value_counts().items()}
    df = df[~unused].reset_index(drop=True)
    if "protocol_note" in info:
        warnings.warn(f"fer2013: {info['protocol_note']}", UserWarning, stacklevel=3)
    df.attrs["info"] = info
    return df


SPEC = DatasetSpec(
    name="fer2013", names=_names, build=build, defaults=DEFAULTS, default_dir="fer2013", channels=1,
    description="FER2013 (CSV or image folders), 7 classes; PublicTest = val, PrivateTest = test "
                "(test_split='auto' falls back to PublicTest as test, with a warning)")
