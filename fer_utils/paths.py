"""Project-anchored paths, so notebooks and scripts work from any working directory."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_path(path: str | Path | None) -> Path | None:
    """Absolute path; relative paths are taken from the project root."""
    if path is None:
        return None
    text = str(path).replace("${FER_DATA_ROOT}", str(shared_data_root())).replace(
        "$FER_DATA_ROOT", str(shared_data_root()))
    path = Path(os.path.expandvars(text)).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def shared_data_root() -> Path:
    """Where the shared datasets live: $FER_DATA_ROOT, else ../shared/data beside the project."""
    return Path(os.environ.get("FER_DATA_ROOT") or PROJECT_ROOT.parent / "shared" / "data")  # empty = unset
