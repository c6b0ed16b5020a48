"""Give published runs made before predictions carried image / sequence / subject ids
those ids, without retraining (``fer_utils.results.attach_test_groups``).

    python scripts/attach_test_groups.py results/ckplus48/runs results/fer2013/headline/runs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_utils.results import attach_test_groups


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="folders of run directories (each with config.yaml)")
    p.add_argument("--root", help="data root to use instead of the one in each run's config")
    args = p.parse_args(argv)
    for folder in args.folders:
        runs = sorted(d for d in Path(folder).iterdir() if (d / "predictions.npz").exists())
        changed = sum(attach_test_groups(d, args.root) > 0 for d in runs)
        print(f"{folder}: {changed} of {len(runs)} runs given test image / sequence / subject ids")
    return 0


if __name__ == "__main__":
    sys.exit(main())
