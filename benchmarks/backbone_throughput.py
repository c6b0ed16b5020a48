"""Training throughput of one backbone across input sizes, frozen stages and numeric modes,
to size a CPU profile from measurements (the pre-trained issue: EfficientNet-Lite0).

    python benchmarks/backbone_throughput.py --backbone efficientnet_lite0 --sizes 48 64 96 112 \\
        --out results/benchmarks/efficientnet_lite0_cpu.json

Each cell is ``benchmarks/throughput.py``'s "ours" path (the study's training loop, resident
uint8 images, batch augmentation) for ``--steps`` timed optimizer steps after ``--warmup``;
modes: fp32, bf16 autocast, bf16 + channels_last; "frozen" freezes paper W's stages 1-3
(``model.freeze_stages``). Run it on an otherwise quiet machine.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from throughput import Recipe, machine, time_ours  # noqa: E402

MODES = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+channels_last": ("bf16", True)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 96, 112])
    p.add_argument("--in-chans", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--frozen", choices=["both", "no", "yes"], default="both",
                   help="time with stages 1-3 frozen, trained, or both (a from-scratch backbone: no)")
    p.add_argument("--out", default=None, help="JSON file for the results")
    args = p.parse_args(argv)
    device = torch.device("cpu")
    base = Recipe(args.backbone, 48, args.in_chans, args.batch, "softmax", "w", False, "w", 7)
    rows = []
    print(f"machine: {machine()}")
    print(f"{'size':>4s} {'frozen':>6s} " + " ".join(f"{m:>19s}" for m in args.modes) + "   (img/s, train step)")
    for size in args.sizes:
        for frozen in {"both": (False, True), "no": (False,), "yes": (True,)}[args.frozen]:
            recipe = replace(base, image_size=size, freeze_stages=frozen)
            cells = {}
            for mode in args.modes:
                precision, channels_last = MODES[mode]
                cells[mode] = time_ours(recipe, device, args.steps, args.warmup, precision, channels_last)
                rows.append({"backbone": args.backbone, "image_size": size, "frozen_stages_1_3": frozen,
                             "mode": mode, "batch": args.batch, "in_chans": args.in_chans,
                             "img_per_s": cells[mode]})
            print(f"{size:4d} {str(frozen):>6s} " + " ".join(f"{cells[m]:19.1f}" for m in args.modes), flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"command": " ".join(["python", "benchmarks/backbone_throughput.py"]
                                                       + (argv or sys.argv[1:])),
                                   "machine": machine(), "steps": args.steps, "warmup": args.warmup,
                                   "results": rows}, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from fer_utils.cli import run
    sys.exit(run(main, prog=f"benchmarks/{Path(__file__).name}"))
