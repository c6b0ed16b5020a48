"""CK+ (Extended Cohn-Kanade): the original release and the CK+48 class-folder copy.

Original: every ``*_emotion.txt`` under the root labels the sequence whose frames
(``S005_001_00000011.png``) are found anywhere under the root, so the usual nestings
(``cohn-kanade-images/``, ``extended-cohn-kanade-images/``, ``Emotion_labels/Emotion/``)
all work. The last ``frames`` frames of each labelled sequence are kept (981 images
for 3), optionally with its first frame as ``neutral``. Sequences without an
emotion file have no label and are not used.

CK+48: ``<class>/S010_004_00000017.png``; the subject is the file-name prefix.

Folds: subject-independent, sorted subject ids, fold = rank % num_folds.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ..choices import check_choice
from .formats import (IMAGE_SUFFIXES, DataFormatError, DatasetSpec, assign_folds, image_files,
                      match_class_folders)

#: CK+ emotion codes 0..7.
CODES: tuple[str, ...] = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
FRAME = re.compile(r"(S\d+)_(\d+)_(\d+)", re.IGNORECASE)
LABEL = re.compile(r"(S\d+)_(\d+)_(\d+)_emotion\.txt", re.IGNORECASE)
DEFAULTS = {"layout": "auto", "frames": 3, "neutral": False, "fold_scheme": "rank_mod",
            "crop": "auto", "margin": 0.2, "no_face": "error"}


def _names(neutral: bool = False, **_protocol) -> tuple[str, ...]:
    return CODES if neutral else CODES[1:]


def read_label(path: Path) -> int:
    """The emotion code in a CK+ ``*_emotion.txt`` (one float such as ``3.0000000e+00``)."""
    text = path.read_text().strip()
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(f"{path}: expected one number, got {text[:40]!r}") from None
    if not value.is_integer() or not 1 <= value <= 7:
        raise DataFormatError(f"{path}: unknown emotion code {text!r} (valid 1..7)")
    return int(value)


def find_frames(root: Path) -> dict[tuple[str, str], list[tuple[int, Path]]]:
    """(subject, sequence) -> [(frame number, path)] sorted, from every image under ``root``."""
    frames: dict[tuple[str, str], list[tuple[int, Path]]] = defaultdict(list)
    seen: dict[str, Path] = {}
    for p in root.rglob("*"):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
            continue
        m = FRAME.fullmatch(p.stem)
        if not m:
            continue
        if p.stem in seen:
            raise DataFormatError(f"{root}: frame {p.stem} found twice ({seen[p.stem]} and {p}); "
                                  "point data.root at one copy")
        seen[p.stem] = p
        frames[(m.group(1).upper(), m.group(2))].append((int(m.group(3)), p))
    return {k: sorted(v) for k, v in frames.items()}


def read_original(root: Path, frames: int, neutral: bool) -> list[dict]:
    labels = sorted(p for p in root.rglob("*_emotion.txt") if not p.name.startswith("."))
    sequences = find_frames(root)
    rows = []
    for lp in labels:
        m = LABEL.fullmatch(lp.name)
        if not m:
            raise DataFormatError(f"{lp}: file name is not S<subject>_<sequence>_<frame>_emotion.txt")
        key = (m.group(1).upper(), m.group(2))
        code = read_label(lp)
        seq = sequences.get(key)
        if not seq:
            raise DataFormatError(f"{lp}: no images of sequence {key[0]}_{key[1]} under {root}")
        if len(seq) < frames + neutral:
            raise DataFormatError(f"{lp}: sequence {key[0]}_{key[1]} has {len(seq)} frames, "
                                  f"fewer than the {frames + neutral} needed")
        chosen = [(p, code) for _, p in seq[-frames:]] + ([(seq[0][1], 0)] if neutral else [])
        for p, c in chosen:
            rows.append({"path": str(p), "id": p.stem, "label": c if neutral else c - 1, "subject": key[0],
                         "sequence": f"{key[0]}_{key[1]}"})
    return rows


def read_folders(root: Path, neutral: bool) -> list[dict]:
    rows = []
    for name, folder in match_class_folders(root, _names(neutral), "the class folders").items():
        for p in image_files(folder):
            m = FRAME.match(p.stem)
            if not m:
                raise DataFormatError(f"{p}: file name does not start with S<subject>_<sequence>_<frame>")
            rows.append({"path": str(p), "id": p.stem, "label": _names(neutral).index(name),
                         "subject": m.group(1).upper(), "sequence": f"{m.group(1).upper()}_{m.group(2)}"})
    return rows


def build(root: Path, layout: str = "auto", frames: int = 3, neutral: bool = False,
          fold_scheme: str = "rank_mod", num_folds: int = 10):
    """Index of CK+ under ``root`` with a subject-independent ``fold`` column."""
    import pandas as pd

    check_choice("ckplus layout", layout, ("auto", "original", "folders"))
    if frames < 1:
        raise ValueError(f"ckplus frames must be >= 1, got {frames}")
    if layout == "auto":
        layout = "original" if next(root.rglob("*_emotion.txt"), None) is not None else "folders"
    if layout == "original":
        rows = read_original(root, frames, bool(neutral))
        if not rows:
            raise DataFormatError(f"{root}: no *_emotion.txt label files found")
    else:
        rows = read_folders(root, bool(neutral))
    df = assign_folds(pd.DataFrame(rows), num_folds, fold_scheme)
    df.attrs["info"] = {"layout": layout, "fold_scheme": fold_scheme, "num_folds": num_folds,
                        "n_subjects": int(df["subject"].nunique()),
                        "frames_per_sequence": frames if layout == "original" else None}
    df.attrs["default_crop"] = "mtcnn" if layout == "original" else "none"
    return df


SPEC = DatasetSpec(
    name="ckplus", names=_names, build=build, defaults=DEFAULTS, default_dir="CK+", channels=1, kfold=True,
    description="CK+ original release (last 3 frames of the 327 labelled sequences) or CK+48 folders; "
                "10-fold subject-independent")

SPEC48 = DatasetSpec(
    name="ckplus48", names=_names, build=build, defaults={**DEFAULTS, "layout": "folders"},
    default_dir="CK+48", channels=1, kfold=True,
    description="CK+48 class folders (981 48x48 faces, 118 subjects); 10-fold subject-independent")
