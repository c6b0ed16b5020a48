"""Atomic file writes: write to a temporary file in the same folder, then rename.

A run killed at any moment leaves either the old file or the new one, never a
truncated mix, so checkpoints, metrics and tables survive interruptions.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mkstemp creates files readable by their owner only; written files get the usual
#: permissions (0666 less the umask) like any file a plain open() creates.
_FILE_MODE = 0o666 & ~_umask()


def _atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return _atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return _atomic(path, lambda p: p.write_bytes(data))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml(path: str | Path, obj: Any) -> Path:
    return write_text(path, yaml.safe_dump(obj, sort_keys=False))


def torch_save(path: str | Path, obj: Any) -> Path:
    return _atomic(path, lambda p: torch.save(obj, p))


def link(source: str | Path, target: str | Path) -> Path:
    """Atomically make ``target`` a hard link to ``source`` (a copy where links fail)."""
    def write(p: Path) -> None:
        p.unlink()
        try:
            os.link(source, p)
        except OSError:
            shutil.copyfile(source, p)
    return _atomic(target, write)


def save_npz(path: str | Path, arrays: dict) -> Path:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez_compressed(f, **arrays)
    return _atomic(path, write)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_figure(path: str | Path, fig) -> Path:
    suffix = Path(path).suffix.lstrip(".") or "png"
    return _atomic(path, lambda p: fig.savefig(p, format=suffix, dpi=120, bbox_inches="tight"))
