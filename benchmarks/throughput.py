"""Training throughput, naive vs ours, for each recipe of the study, in one run.

    python benchmarks/throughput.py                      # every recipe that fits the device
    python benchmarks/throughput.py --recipes fer2013 --steps 20

Images per second end to end, input pipeline included, over ``--steps`` timed optimizer
steps after ``--warmup`` untimed ones:

* naive: what a plain script does — images held as PNG bytes, decoded by PIL and
  transformed by torchvision per sample in a ``DataLoader`` (``--workers`` processes),
  fp32, eager, NCHW, the recipe's batch (``fer_utils.training.naive``);
* ours: the study's loop (``fer_utils.training.loop.train_one_epoch``) — decoded uint8
  images resident on the device, batch augmentation on the device, bf16 autocast, and
  channels_last on GPUs.

The images are random uint8 at the recipe's input size (throughput does not depend on
content). Results are printed as a table and written as JSON (``--out``) with the machine,
torch version and command.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_utils.config import load_config  # noqa: E402
from fer_utils.data import Split  # noqa: E402
from fer_utils.losses import build_loss  # noqa: E402
from fer_utils.models import create_model  # noqa: E402
from fer_utils.training.loop import DeviceData, epoch_generator, train_one_epoch  # noqa: E402
from fer_utils.training.naive import (PILImageDataset, encode_png, plain_loader,  # noqa: E402
                                      plain_train_steps, plain_transform)


@dataclass(frozen=True)
class Recipe:
    backbone: str
    image_size: int
    in_chans: int
    batch_size: int
    loss: str
    head: str
    freeze_stages: bool
    augmentation: str
    num_classes: int
    gpu_only: bool = False


RECIPES = {
    # The study's CPU recipe on FER2013 (configs/fer2013*).
    "fer2013": Recipe("resnet18", 48, 1, 64, "softmax", "w", False, "w", 7),
    # The shipped model's recipe (configs/fer2013_fast): full resolution in the first stage.
    "fer2013_fast": Recipe("resnet18_half_s1", 48, 1, 64, "softmax", "w", False, "w", 7),
    "fer2013_fast_large_batch": Recipe("resnet18_half_s1", 48, 1, 256, "softmax", "w", False, "w", 7,
                                       gpu_only=True),
    # Paper W: SE-ResNet-50, 224 px, batch 36, stages 1-3 frozen, weighted-cluster + weighted
    # softmax with center updates after every step.
    "paper_w": Recipe("seresnet50", 224, 3, 36, "weighted_cluster+weighted_softmax", "w", True, "w", 8),
    "paper_w_large_batch": Recipe("seresnet50", 224, 3, 256, "weighted_cluster+weighted_softmax",
                                  "w", True, "w", 8, gpu_only=True),
    # Paper F: Inception-v3, 299 px, batch 32, cross-entropy stage.
    "paper_f": Recipe("inception_v3", 299, 3, 32, "softmax", "f", False, "f", 7),
    "paper_f_large_batch": Recipe("inception_v3", 299, 3, 256, "softmax", "f", False, "f", 7,
                                  gpu_only=True),
}


def _images(recipe: Recipe, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, recipe.in_chans, recipe.image_size, recipe.image_size), dtype=np.uint8)
    return x, np.arange(n) % recipe.num_classes


def _model_and_loss(recipe: Recipe, device):
    torch.manual_seed(0)
    model = create_model(recipe.backbone, recipe.num_classes, head=recipe.head,
                         in_chans=recipe.in_chans, freeze_stages=recipe.freeze_stages).to(device)
    counts = [100 * (k + 1) for k in range(recipe.num_classes)]  # imbalanced weights
    criterion = build_loss(recipe.loss, class_counts=counts, num_classes=recipe.num_classes,
                           embedding_dim=model.embedding_dim).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=5e-4)
    return model, criterion, optimizer


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_naive(recipe: Recipe, device, steps: int, warmup: int, workers: int) -> float:
    n = (steps + warmup) * recipe.batch_size
    images, labels = _images(recipe, n)
    dataset = PILImageDataset(encode_png(images), labels,
                              plain_transform(recipe.image_size, recipe.in_chans, train_augment=True))
    loader = plain_loader(dataset, batch_size=recipe.batch_size, num_workers=workers)
    model, criterion, optimizer = _model_and_loss(recipe, device)
    it = iter(loader)  # one pass over the data: warmup steps, then the timed ones
    plain_train_steps(model, criterion, optimizer, _take(it, warmup), device)
    _sync(device)
    t0 = time.perf_counter()
    plain_train_steps(model, criterion, optimizer, _take(it, steps), device)
    _sync(device)
    return steps * recipe.batch_size / (time.perf_counter() - t0)


def _take(iterator, k: int):
    for _ in range(k):
        yield next(iterator)


def time_ours(recipe: Recipe, device, steps: int, warmup: int, precision: str = "bf16",
              channels_last: bool | None = None) -> float:
    """Images per second of the study's loop; channels_last defaults to on for GPUs."""
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    cfg = load_config(None, [f"batch_size={recipe.batch_size}", f"precision={precision}",
                             f"channels_last={'true' if channels_last else 'false'}",
                             f"data.augmentation={recipe.augmentation}",
                             f"data.in_chans={recipe.in_chans}", f"data.image_size={recipe.image_size}"])
    model, criterion, optimizer = _model_and_loss(recipe, device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)

    def resident(n_steps: int, seed: int) -> DeviceData:
        images, labels = _images(recipe, n_steps * recipe.batch_size, seed)
        return DeviceData(Split(images, labels), device)  # the resident uint8 cache

    def epoch(data: DeviceData, seed: int) -> None:
        g = epoch_generator(seed)  # CPU draws, as the loop makes them on every device
        train_one_epoch(model, criterion, optimizer, sched, data, cfg, device, g, "bench", False)

    # Both caches are built before the clock starts: a run builds its cache once, not per
    # epoch. (The first GPU figures, results/benchmarks/throughput_cuda_h200.json, were taken
    # with the random images, 770 MB for paper W at batch 256 x 20 steps, drawn in the clock.)
    warm_data = resident(warmup, 1) if warmup else None
    timed_data = resident(steps, 2)
    if warm_data is not None:
        epoch(warm_data, 1)
    _sync(device)
    t0 = time.perf_counter()
    epoch(timed_data, 2)
    _sync(device)
    return steps * recipe.batch_size / (time.perf_counter() - t0)


def machine() -> dict:
    info = {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=None, choices=sorted(RECIPES),
                   help="default: every recipe (paper_w_large_batch only on a GPU)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20 GPU, 4 CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 5 GPU, 1 CPU)")
    p.add_argument("--workers", type=int, default=None,
                   help="naive DataLoader workers (default: 8 on GPU, 0 on CPU, where training uses every core)")
    p.add_argument("--out", default=None, help="JSON file for the results")
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    steps = args.steps or (20 if gpu else 4)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    workers = args.workers if args.workers is not None else (8 if gpu else 0)
    names = args.recipes or [k for k, r in RECIPES.items() if gpu or not r.gpu_only]
    rows = []
    print(f"machine: {machine()}")
    print(f"device {device}, {steps} timed steps after {warmup} warm-up, naive workers {workers}")
    print(f"{'recipe':22s} {'batch':>5s} {'naive img/s':>12s} {'ours img/s':>11s} {'speed-up':>8s}")
    for name in names:
        r = RECIPES[name]
        naive = time_naive(r, device, steps, warmup, workers)
        ours = time_ours(r, device, steps, warmup)
        rows.append({"recipe": name, **asdict(r), "naive_img_s": naive, "ours_img_s": ours,
                     "speedup": ours / naive})
        print(f"{name:22s} {r.batch_size:5d} {naive:12.1f} {ours:11.1f} {ours / naive:7.2f}x", flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"command": " ".join(["python", "benchmarks/throughput.py"] + (argv or sys.argv[1:])),
                                   "machine": machine(), "device": str(device), "steps": steps,
                                   "warmup": warmup, "workers": workers, "results": rows}, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from fer_utils.cli import run
    sys.exit(run(main, prog=f"benchmarks/{Path(__file__).name}"))
