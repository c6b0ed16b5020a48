"""RAF-DB basic: ``basic/EmoLabel/list_patition_label.txt`` and ``basic/Image/aligned/``.

Labels 1..7 (Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral) become 0..6;
the split is the file-name prefix (``train_``/``test_``). The release has no
validation split: ``load_dataset`` holds one out of train.
"""
from __future__ import annotations

from pathlib import Path

from .formats import DataFormatError, DatasetSpec

CLASS_NAMES: tuple[str, ...] = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
LIST_NAMES = ("list_patition_label.txt", "list_partition_label.txt")
DEFAULTS = {"aligned": True, "crop": "auto", "margin": 0.2, "no_face": "error"}


def _names(**_protocol) -> tuple[str, ...]:
    return CLASS_NAMES


def find_basic(root: Path) -> Path:
    for base in (root, root / "basic"):
        if (base / "EmoLabel").is_dir():
            return base
    raise DataFormatError(f"{root}: no EmoLabel/ folder (expected <root>/basic/EmoLabel/{LIST_NAMES[0]})")


def read_list(path: Path) -> list[tuple[str, int]]:
    """(image name, code 1..7) per line; a malformed line is an error naming it."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataFormatError(f"{path}: line {n} has {len(fields)} fields, expected 2 (name label)")
        name, code = fields
        if not code.isdigit() or not 1 <= int(code) <= 7:
            raise DataFormatError(f"{path}: line {n}: unknown label {code!r} (valid 1..7)")
        if not name.startswith(("train_", "test_")):
            raise DataFormatError(f"{path}: line {n}: {name!r} does not start with train_ or test_")
        out.append((name, int(code)))
    return out


def build(root: Path, aligned: bool = True):
    """Index of RAF-DB basic under ``root`` (the folder holding ``basic/`` or ``basic/`` itself)."""
    import pandas as pd

    base = find_basic(root)
    lst = next((base / "EmoLabel" / n for n in LIST_NAMES if (base / "EmoLabel" / n).is_file()), None)
    if lst is None:
        raise DataFormatError(f"{base / 'EmoLabel'}: no {LIST_NAMES[0]}")
    rows, missing = [], []
    for name, code in read_list(lst):
        stem = Path(name).stem
        p = base / "Image" / ("aligned" if aligned else "original") / (f"{stem}_aligned.jpg" if aligned else name)
        if not p.is_file():
            missing.append(str(p))
        rows.append({"path": str(p), "id": stem, "label": code - 1, "split": stem.split("_", 1)[0]})
    if missing:
        raise DataFormatError(f"{len(missing)} images listed in {lst} are missing, e.g. {missing[:5]}")
    df = pd.DataFrame(rows)
    df.attrs["info"] = {"layout": "aligned" if aligned else "original", "list_file": str(lst)}
    df.attrs["default_crop"] = "none" if aligned else "mtcnn"
    return df


SPEC = DatasetSpec(
    name="rafdb", names=_names, build=build, defaults=DEFAULTS, default_dir="RAF-DB", channels=3,
    description="RAF-DB basic, 7 classes, official train/test (aligned 100x100 faces)")
