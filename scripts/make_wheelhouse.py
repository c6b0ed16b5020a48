"""Download the wheels a GPU box without network needs, to carry over with the project.

Run where pip reaches an index:

    python scripts/make_wheelhouse.py wheelhouse              # everything, torch at constraints.txt
    python scripts/make_wheelhouse.py wheelhouse --no-torch   # the box has its own torch: the rest
    python scripts/make_wheelhouse.py wheelhouse --smoke --no-torch --python-version 3.12 \\
        --have box_packages.txt                               # only what gpu_smoke.sh installs,
                                                              # minus what the box already has

pip resolves the project's dependencies once (``pip install --dry-run --report``, with this
interpreter), then every resolved distribution is downloaded without its dependencies, so that
``--no-torch`` leaves out torch, torchvision and the CUDA libraries they pull (gigabytes) while
keeping everything else, timm included. ``--python-version`` / ``--platform`` fetch binary wheels
for a box whose Python differs from this one; ``--have`` skips the distributions named in a file
(one per line, ``name`` or ``name==version`` as ``pip list --format=freeze`` prints them), for a
box whose image already holds them and a carry limit that is tight. On the box:
``bash scripts/gpu_smoke.sh wheelhouse``.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a box with its own CUDA torch already has (and must keep).
TORCH_STACK = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")
EXTRA = ["facenet-pytorch==2.6.0"]  # installed --no-deps by the set-up (outdated pins)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_have(path: Path) -> set[str]:
    """Canonical names of the distributions listed in ``path`` (``name`` or ``name==version``)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(canonical(re.split(r"[=<>!~ @]", line, maxsplit=1)[0]))
    return names


def build_requirements() -> list[str]:
    """pyproject's [build-system] requires: ``pip install -e .`` builds the project in an
    isolated environment that takes them from the wheelhouse even when the box has them."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]


def to_download(report: dict, without_torch: bool, have: set[str] = frozenset()) -> list[str]:
    """``name==version`` of every distribution pip would install, minus the project itself,
    those in ``have`` and, with ``without_torch``, the torch stack."""
    out = []
    for item in report["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        c = canonical(name)
        if c == "fer-utils" or c in have or (without_torch and TORCH_STACK.match(c)):
            continue
        out.append(f"{name}=={version}")
    return sorted(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dest", help="folder for the wheels")
    p.add_argument("--no-torch", action="store_true", help="leave out torch, torchvision and CUDA libraries")
    p.add_argument("--smoke", action="store_true",
                   help="only what scripts/gpu_smoke.sh installs (package, papermill, ipykernel), "
                        "not the notebooks/test extras nor facenet-pytorch")
    p.add_argument("--have", type=Path, default=None, help="file of distributions the box already has")
    p.add_argument("--python-version", default=None, help="the box's Python, e.g. 3.12 (binary wheels)")
    p.add_argument("--platform", nargs="+", default=["manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                                                     "manylinux2014_x86_64", "manylinux1_x86_64"],
                   help="platform tags with --python-version (pure-Python wheels always match)")
    args = p.parse_args(argv)
    if args.have is not None and not args.have.is_file():
        p.error(f"--have: no such file {args.have}")
    project = f"{ROOT}[smoke]" if args.smoke else f"{ROOT}[notebooks,test]"  # smoke: gpu_smoke.sh's set
    have = read_have(args.have) if args.have else set()
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report_path), "-c", str(ROOT / "constraints.txt"), project],
                       check=True)
        wanted = to_download(json.loads(report_path.read_text()), args.no_torch, have)
    if not args.smoke and "facenet-pytorch" not in have:
        wanted += EXTRA
    wanted += build_requirements()
    target = []
    if args.python_version:
        target = ["--only-binary=:all:", "--implementation", "cp", "--python-version", args.python_version]
        for tag in args.platform + ["any"]:
            target += ["--platform", tag]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *target, "-d", args.dest, *wanted],
                   check=True)
    print(f"{len(wanted)} distributions in {args.dest}" + (" (no torch stack)" if args.no_torch else "")
          + (f", {len(have)} names the box has left out" if have else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
