"""Decode-once cache: arrays built once per set of inputs, memory-mapped afterwards.

A dataset + protocol + crop + size is turned into uint8 arrays a single time; the
arrays live in ``$FER_CACHE_DIR`` (default ``<project>/.cache``) under a hash of
everything that determines them, so later runs load them in seconds.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..paths import PROJECT_ROOT

CACHE_VERSION = 1


def cache_dir() -> Path:
    return Path(os.environ.get("FER_CACHE_DIR") or PROJECT_ROOT / ".cache")  # empty = unset


def cache_key(namespace: str, inputs: dict) -> str:
    """Stable short hash of the JSON form of ``inputs`` (sorted keys)."""
    blob = json.dumps({"v": CACHE_VERSION, "ns": namespace, **inputs}, sort_keys=True, default=str)
    return f"{namespace}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def cached_arrays(namespace: str, inputs: dict,
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Return the arrays for ``inputs``, building and storing them on the first call.

    The entry is written to a temporary folder and renamed into place, so an
    interrupted build never leaves a half-written entry behind.
    """
    target = cache_dir() / cache_key(namespace, inputs)
    if not (target / "inputs.json").exists():
        arrays = build()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / "inputs.json").write_text(json.dumps(inputs, sort_keys=True, default=str, indent=1))
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    return {p.stem: np.load(p, mmap_mode="r") for p in sorted(target.glob("*.npy"))}
