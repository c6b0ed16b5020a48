"""Teacher probabilities for knowledge distillation (``data.soft_targets``,
``fer_utils.training.distill``): the mean class probabilities of finished runs (one teacher,
or an ensemble) on every training image, keyed by image id.

    python scripts/make_soft_targets.py results/models/fer2013 runs/A/RUN runs/B/RUN \\
        --root ../shared/data/fer2013 --out results/distill/fer2013_targets.npz

Each teacher scores its train split and, when its validation was held out of train, that
split too (so the file covers every training image whatever holdout a student of the same
dataset draws), with its own test-time augmentation. Test images are never scored; K-fold
teachers (CK+, Oulu-CASIA folds) are refused: one file serves one fixed training set.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_utils.training.distill import save_targets, teacher_targets  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("teachers", nargs="+", help="finished run directories or model folders")
    p.add_argument("--root", help="data root to use instead of the one in each teacher's config")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="the .npz to write")
    args = p.parse_args(argv)
    targets = teacher_targets(args.teachers, root=args.root, device=args.device)
    save_targets(args.out, targets)
    agree = float((targets["prob"].argmax(1) == targets["y_true"]).mean())
    print(f"{args.out}: {len(targets['image_id'])} training images, {len(args.teachers)} teacher(s); "
          f"the teachers' mean agrees with the label on {agree:.2%} of them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
