"""Oulu-CASIA NIR&VIS: ``<...>/<VL>/<Strong>/P001/<Emotion>/*.jpeg`` sequences.

Finds the ``modality``/``illumination`` folder anywhere under the root
(``OriginalImg/VL/Strong``, ``PreProcess_Img/VL_Acropped/Strong``,
``Oulu_CASIA_NIR_VIS/VL/Strong``); when both an original and a cropped copy are
present, ``source`` chooses. The last ``frames`` frames (sorted file names) of each
sequence are kept; missing sequences are counted in the info, not assumed.
Folds are subject-independent: ``rank_mod`` (strided, ``subjects[i::10]``) or
``blocks`` (contiguous blocks of 8 subjects for 80 subjects).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..choices import check_choice
from .formats import DataFormatError, DatasetSpec, assign_folds, image_files

CLASS_NAMES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
SUBJECT = re.compile(r"P\d+", re.IGNORECASE)
DEFAULTS = {"modality": "VL", "illumination": "Strong", "frames": 3, "source": "auto",
            "fold_scheme": "rank_mod", "crop": "auto", "margin": 0.2, "no_face": "error"}


def _names(**_protocol) -> tuple[str, ...]:
    return CLASS_NAMES


def find_sequence_roots(root: Path, modality: str, illumination: str) -> list[Path]:
    """Folders ``<modality...>/<illumination>`` under ``root`` that hold ``P###`` subject folders."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        d = Path(dirpath)
        if (d.name.lower() == illumination.lower() and d.parent.name.upper().startswith(modality.upper())
                and any(SUBJECT.fullmatch(n) for n in dirnames)):
            found.append(d)
            dirnames.clear()  # do not descend into subjects
        elif SUBJECT.fullmatch(d.name):
            dirnames.clear()
    return sorted(found)


def is_cropped(seq_root: Path, root: Path) -> bool:
    """A pre-cropped copy (``PreProcess_Img/VL_Acropped``), judged below ``root``."""
    return "crop" in f"{seq_root.parent.name}/{seq_root.relative_to(root)}".lower()


def pick_root(candidates: list[Path], source: str, root: Path, modality: str, illumination: str) -> Path:
    check_choice("oulu_casia source", source, ("auto", "original", "cropped"))
    if source != "auto":
        candidates = [c for c in candidates if is_cropped(c, root) == (source == "cropped")]
    if not candidates:
        raise DataFormatError(f"{root}: no {modality}/{illumination}/P###/ folders found"
                              + (f" for source={source!r}" if source != "auto" else ""))
    if len(candidates) > 1:
        raise DataFormatError(f"{root}: several {modality}/{illumination} copies {[str(c) for c in candidates]}: "
                              "set data.params.source to 'original' or 'cropped', or data.root to one")
    return candidates[0]


def build(root: Path, modality: str = "VL", illumination: str = "Strong", frames: int = 3,
          source: str = "auto", fold_scheme: str = "rank_mod", num_folds: int = 10):
    """Index of Oulu-CASIA (one modality and illumination) with a subject-independent ``fold``."""
    import pandas as pd

    if frames < 1:
        raise ValueError(f"oulu_casia frames must be >= 1, got {frames}")
    seq_root = pick_root(find_sequence_roots(root, modality, illumination), source, root, modality,
                         illumination)
    rows, missing = [], []
    subjects = sorted(p for p in seq_root.iterdir() if p.is_dir() and SUBJECT.fullmatch(p.name))
    for subject in subjects:
        folders = {p.name.lower(): p for p in subject.iterdir() if p.is_dir()}
        unknown = sorted(set(folders) - set(CLASS_NAMES))
        if unknown:
            raise DataFormatError(f"{subject}: unknown expression folder(s) {unknown}; expected {CLASS_NAMES}")
        for label, name in enumerate(CLASS_NAMES):
            files = image_files(folders[name]) if name in folders else []
            if not files:
                missing.append(f"{subject.name}/{name}")
                continue
            if len(files) < frames:
                raise DataFormatError(f"{folders[name]}: {len(files)} frames, fewer than the {frames} needed")
            for p in files[-frames:]:
                rows.append({"path": str(p), "id": f"{subject.name}/{name}/{p.stem}", "label": label,
                             "subject": subject.name.upper(), "sequence": f"{subject.name}/{name}"})
    df = pd.DataFrame(rows)
    if len(df) == 0:
        raise DataFormatError(f"{seq_root}: no image sequences")
    empty = [n for i, n in enumerate(CLASS_NAMES) if not (df["label"] == i).any()]
    if empty:
        raise DataFormatError(f"{seq_root}: no images for class(es) {empty}")
    df = assign_folds(df, num_folds, fold_scheme)
    cropped = is_cropped(seq_root, root)
    df.attrs["info"] = {"sequence_root": str(seq_root), "source": "cropped" if cropped else "original",
                        "n_subjects": len(subjects), "missing_sequences": len(missing),
                        "missing_examples": missing[:10], "fold_scheme": fold_scheme, "num_folds": num_folds}
    df.attrs["default_crop"] = "none" if cropped else "mtcnn"
    return df


SPEC = DatasetSpec(
    name="oulu_casia", names=_names, build=build, defaults=DEFAULTS, default_dir="Oulu-CASIA", channels=3,
    kfold=True, description="Oulu-CASIA VL/Strong, last 3 frames, 6 classes; 10-fold subject-independent")
