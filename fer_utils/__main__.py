"""Command line: ``python -m fer_utils train|evaluate ...``."""
from __future__ import annotations

import argparse
import json
import sys

from .config import TTAS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fer_utils",
                                description="Imbalance-aware FER losses: train and evaluate runs. "
                                            "--debug (anywhere) shows tracebacks of input errors.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one run from a YAML config")
    t.add_argument("config", nargs="?", help="YAML file of deltas over the defaults")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set stages.0.epochs=3 (repeatable)")
    t.add_argument("--new-run-id", action="store_true",
                   help="train a fresh copy when the run directory already holds a finished run")
    t.add_argument("--no-progress", action="store_true", help="hide progress bars")
    e = sub.add_parser("evaluate", help="evaluate a finished run's best checkpoint")
    e.add_argument("run_dir")
    e.add_argument("--dataset", help="dataset name (default: the run's own)")
    e.add_argument("--root", help="dataset root folder")
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--device", default="cpu")
    e.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0 = none)")
    e.add_argument("--save-predictions", metavar="NPZ",
                   help="also write each image's class probabilities and ids to this .npz")
    e.add_argument("--tta", choices=TTAS,
                   help="test-time augmentation (default: the run's own)")
    r = sub.add_parser("predict", help="expressions of the faces in images, from a finished run or "
                                       "model folder (default: the shipped FER2013 model)")
    r.add_argument("paths", nargs="+", metavar="[MODEL] IMAGE",
                   help="optionally a run directory or model folder (a folder with config.yaml), "
                        "then image files or folders")
    r.add_argument("--no-detect", action="store_true",
                   help="take the centred square of each image as the face (already-cropped faces)")
    r.add_argument("--margin", type=float, default=0.2, help="margin around a detected face box")
    r.add_argument("--min-prob", type=float, default=0.9, help="MTCNN face confidence threshold")
    r.add_argument("--device", default="cpu")
    x = sub.add_parser("export", help="write a finished run's best model as a model folder "
                                      "(safetensors weights, config, metrics, model card)")
    x.add_argument("run_dir")
    x.add_argument("out_dir")
    x.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size)")
    x.add_argument("--title", help="the model card's title")
    x.add_argument("--recipe", default="", help="the card's line on how the model was trained (a command)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: configuration and input errors are one line and exit status 2
    (``--debug`` / ``FER_DEBUG=1`` for the traceback; see ``fer_utils.cli``)."""
    from .cli import run
    return run(_main, argv, prog="python -m fer_utils")


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        from .config import load_config
        from .training import train_run
        cfg = load_config(args.config, args.overrides)
        run_dir = train_run(cfg, new_run_id=args.new_run_id, progress=not args.no_progress)
        print(run_dir)
    elif args.command == "evaluate":
        from .training.evaluate import evaluate_run
        result = evaluate_run(args.run_dir, dataset=args.dataset, root=args.root, split=args.split,
                              device=args.device, bootstrap=args.bootstrap,
                              save_predictions=args.save_predictions, tta=args.tta)
        json.dump(result, sys.stdout, indent=2)
        print()
    elif args.command == "predict":
        from .training.predict import model_and_images, predict_files
        model, images = model_and_images(args.paths)
        for record in predict_files(model, images, detect=not args.no_detect,
                                    margin=args.margin, min_prob=args.min_prob, device=args.device):
            print(json.dumps(record))
    elif args.command == "export":
        from .model_folder import export_model
        print(export_model(args.run_dir, args.out_dir, fp16=args.fp16, title=args.title, recipe=args.recipe))
    return 0


if __name__ == "__main__":
    sys.exit(main())
