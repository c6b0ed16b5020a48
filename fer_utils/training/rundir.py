"""What a run directory records about where its numbers came from."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

from ..paths import PROJECT_ROOT

PACKAGES = ("torch", "torchvision", "timm", "numpy", "scikit-learn", "krippendorff", "pandas",
            "fer_utils")


# Outputs the pipeline itself rewrites while it trains (figures, tables, exported runs): a
# change there says nothing about the code that made a run, so it does not make the tree dirty.
OUTPUT_PATHS = ("results",)


def git_state(root: Path = PROJECT_ROOT) -> dict:
    """Commit SHA and whether tracked files outside ``OUTPUT_PATHS`` had uncommitted changes
    ('unknown' outside git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10)
    try:
        sha = git("rev-parse", "HEAD")
        if sha.returncode != 0:
            return {"sha": "unknown", "dirty": None}
        excluded = [f":(exclude){path}" for path in OUTPUT_PATHS]
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded).stdout.strip() != ""
        return {"sha": sha.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"sha": "unknown", "dirty": None}


def library_versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# Environment variables that cap the instruction set the kernels use (oneDNN, ATen, MKL).
ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def machine_info(device: torch.device) -> dict:
    info = {"hostname": socket.gethostname(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": str(device), "cpu_model": _cpu_model(),
            # Float rounding (and so short runs) differs between instruction sets: record it.
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "isa_limits": {k: os.environ[k] for k in ISA_LIMITS if k in os.environ}}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run_info(device: torch.device, seed: int, argv: list[str] | None = None) -> dict:
    return {"seed": seed, "git": git_state(), "versions": library_versions(),
            "machine": machine_info(device), "argv": argv if argv is not None else sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
