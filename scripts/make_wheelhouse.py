"""Download the wheels a GPU box without network needs, to carry over with the project.

Run where pip reaches an index, with the same Python version and platform as the box:

    python scripts/make_wheelhouse.py wheelhouse              # everything, torch at constraints.txt
    python scripts/make_wheelhouse.py wheelhouse --no-torch   # the box has its own torch: the rest

pip resolves the project's dependencies once (``pip install --dry-run --report``), then every
resolved distribution is downloaded without its dependencies, so that ``--no-torch`` leaves out
torch, torchvision and the CUDA libraries they pull (gigabytes) while keeping everything else,
timm included. On the box: ``bash scripts/gpu_smoke.sh wheelhouse``.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a box with its own CUDA torch already has (and must keep).
TORCH_STACK = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")
EXTRA = ["facenet-pytorch==2.6.0"]  # installed --no-deps by the set-up (outdated pins)


def to_download(report: dict, without_torch: bool) -> list[str]:
    """``name==version`` of every distribution pip would install, minus the project itself
    and, with ``without_torch``, the torch stack."""
    out = []
    for item in report["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        canonical = re.sub(r"[-_.]+", "-", name).lower()
        if canonical == "fer-utils" or (without_torch and TORCH_STACK.match(canonical)):
            continue
        out.append(f"{name}=={version}")
    return sorted(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dest", help="folder for the wheels")
    p.add_argument("--no-torch", action="store_true", help="leave out torch, torchvision and CUDA libraries")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report_path), "-c", str(ROOT / "constraints.txt"),
                        f"{ROOT}[notebooks,test]"], check=True)
        wanted = to_download(json.loads(report_path.read_text()), args.no_torch) + EXTRA
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", args.dest, *wanted], check=True)
    print(f"{len(wanted)} distributions in {args.dest}" + (" (no torch stack)" if args.no_torch else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
