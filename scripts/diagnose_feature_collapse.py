"""Why center loss collapsed when fine-tuned from ImageNet EfficientNet-Lite0 on FER2013.

    python scripts/diagnose_feature_collapse.py trace                  # first steps, center + softmax
    python scripts/diagnose_feature_collapse.py trace --loss softmax   # the same steps without it
    python scripts/diagnose_feature_collapse.py trace --loss weighted_cluster+weighted_softmax
    python scripts/diagnose_feature_collapse.py trace --loss weighted_cluster+weighted_softmax --seed 1 --steps 450
    python scripts/diagnose_feature_collapse.py runs runs/fer2013/W-efficientnet_lite0-pretrained-*-seed0

``trace`` trains the first ``--steps`` optimizer steps of the published pre-trained grid's
run of ``--seed`` (default 0) of ``--loss`` (its config.yaml in results/fer2013/runs: ImageNet weights, frozen
early stages, lr / 10, the loss's own reduction) through the training loop itself
(``fer_utils.training.trace``: the run's own batches, augmentation and schedule), and prints,
per step, the loss parts, the mean norm of the pooled backbone features and of the 512-d
embedding, and the share of pooled channels that are zero on every image of the batch (ReLU6
units switched off). First stage only (these runs have one). ``runs`` measures finished runs' best checkpoints (local
``checkpoints/best.pt``: published runs carry none, train them first) and the untrained
model on a fixed random 1,024 validation images: feature and embedding norms, total variance,
the between-class share of it, and the channels zero on all 1,024 images.

What it showed (results/diagnostics/fer2013_imagenet_feature_collapse_*.txt, seed 0): at the
first training step (batch statistics in the trainable stages) the pooled ImageNet features of
a 48 px face have a mean norm of 21.8 and the fresh 512-d embedding 7.9, so with Wen et al.'s
centers at zero the first center term 0.5 ||x||^2 is 38.7 and, weighted by paper W's lambda 0.5,
ten times the softmax loss (1.92). In the first 60 steps, still at the warm-up's smallest rate,
center + softmax halves the feature norm (21.8 -> 10.6) where softmax alone keeps it (21.4), and
so does weighted-cluster + weighted softmax (21.2), whose term falls from 50.9 to 0.12 once the
first center update has moved the centers apart. The trained center-loss models ended with
features 29 and 506 times smaller than softmax's, 21% and 75% of the channels switched off and
almost no class structure left (between-class share 0.006 and 0.005 against 0.045): the term
was minimised by switching features off, and the classifier was left with the class prior.
The lambda 0.05 control (benchmarks/fer2013_imagenet_center_lambda.yaml) kept its features
(norm 2.9, 12% off, share 0.22). Needs the FER2013 data (../shared/data/fer2013 or FER_DATA_ROOT).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fer_utils.config import load_config
from fer_utils.data import load_dataset
from fer_utils.paths import PROJECT_ROOT, shared_data_root
from fer_utils.training.evaluate import load_run
from fer_utils.training.loop import DeviceData, build_model, prepare, to_run_format
from fer_utils.training.trace import trace_first_steps

PUBLISHED = str(PROJECT_ROOT / "results/fer2013/runs/W-efficientnet_lite0-pretrained-{}-seed{}/config.yaml")


def dead_share(features: torch.Tensor) -> float:
    """Share of channels that are zero on every row (ReLU6 outputs switched off)."""
    return float((features.abs().amax(0) == 0).float().mean())


def variance_split(z: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """(mean row norm, total variance, between-class share of the total variance)."""
    mean = z.mean(0)
    total = ((z - mean) ** 2).sum(1).mean()
    between = sum(((z[y == k].mean(0) - mean) ** 2).sum() * (y == k).float().mean()
                  for k in y.unique())
    return float(z.norm(dim=1).mean()), float(total), float(between / total)


def spread(z: torch.Tensor, y: torch.Tensor) -> str:
    norm, total, share = variance_split(z, y)
    return f"norm {norm:8.3f}  total var {total:9.3e}  between-class share {share:.3f}"


def describe(name: str, model, cfg, val: DeviceData, n: int = 1024) -> None:
    idx = torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:n]
    x, y = prepare(val.images[idx], cfg, None), val.labels[idx]
    with torch.no_grad():
        model.eval()
        features = model.forward_features(x)
        embedding = model.embed(features)
    print(f"{name}\n  pooled features ({features.shape[1]}): {spread(features, y)}  "
          f"channels zero on all {n}: {dead_share(features):.1%}\n"
          f"  embedding ({embedding.shape[1]}):     {spread(embedding, y)}\n"
          f"  first center term with centers at zero, 0.5 mean ||e||^2: "
          f"{float(0.5 * embedding.pow(2).sum(1).mean()):.3f}", flush=True)


def runs(run_dirs: list[str]) -> None:
    data = val = None
    for run_dir in run_dirs:
        cfg, model = load_run(run_dir)
        if cfg.model.head != "w":
            raise SystemExit(f"{run_dir}: head {cfg.model.head!r} has no embedding to measure")
        if val is None:  # the first run's validation split (seeded: the same for runs of one seed)
            cfg.data.root = str(shared_data_root() / "fer2013")  # not the publishing host's path
            data = load_dataset(cfg.data, split_seed=cfg.seed)
            val = DeviceData(data.val, "cpu")
        describe(f"{run_dir} (best checkpoint)", model, cfg, val)
    cfg.model.pretrained = load_config(PUBLISHED.format("softmax")).model.pretrained
    torch.manual_seed(cfg.seed)
    describe("untrained: ImageNet backbone, fresh head",
             to_run_format(build_model(cfg, len(data.class_names)), cfg), cfg, val)


def trace(loss: str, steps: int, seed: int = 0) -> None:
    published = Path(PUBLISHED.format(loss.replace("+", "_"), seed))
    if not published.exists():
        raise SystemExit(f"no published seed-{seed} run of {loss!r} to trace: {published} is missing")
    cfg = load_config(published)
    cfg.data.root = str(shared_data_root() / "fer2013")  # not the publishing host's path

    def show(step: int, r: dict) -> None:
        print(f"step {step:3d} lr {r['lr']:.5f} "
              + " ".join(f"{k} {v:9.3f}" for k, v in r["values"].items() if k != "loss")
              + f"  |features| {float(r['features'].norm(dim=1).mean()):7.3f}"
              + f"  |emb| {float(r['embedding'].norm(dim=1).mean()):7.3f}"
              + f"  channels off {dead_share(r['features']):6.1%}", flush=True)

    trace_first_steps(cfg, steps, show, features=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("trace", help="first optimizer steps from ImageNet")
    t.add_argument("--loss", default="center+softmax")
    t.add_argument("--steps", type=int, default=60)
    t.add_argument("--seed", type=int, default=0, help="which published seed's run to replay")
    r = sub.add_parser("runs", help="finished runs' best checkpoints vs the untrained model")
    r.add_argument("run_dirs", nargs="+")
    args = p.parse_args(argv)
    if args.command == "trace":
        trace(args.loss, args.steps, args.seed)
    else:
        runs(args.run_dirs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
