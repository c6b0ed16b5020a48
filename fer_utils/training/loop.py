"""One training loop for every setting of both papers.

SGD with momentum; per-stage loss, learning rate and schedule; class-center updates
after each optimizer step; model selection on the validation split; a checkpoint
after every epoch holding everything needed to resume exactly (the data order and
augmentation of an epoch are a pure function of seed, stage and epoch).

Under ``torchrun`` the same loop trains with DistributedDataParallel (see
``distributed.py``): ``batch_size`` stays the global batch, every rank draws the same
order and augmentation and trains on its own slice of each batch, class centers are
updated from the whole gathered batch so that every rank holds the same ones, and
rank 0 alone writes the run directory.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import io as fio
from ..config import RunConfig, StageConfig, validate_config
from ..data import DatasetSplits, Split, load_dataset
from ..data.augment import (augment_batch, get_recipe, mixup_batch, normalize, test_time_views,
                            to_float)
from ..losses import LossSetting, build_loss
from ..losses.base import shard_of_global_batch
from ..metrics import evaluate
from ..models import FERModel, create_model
from .distributed import (SINGLE, DistInfo, all_gather_cat, all_reduce_sum, average_buffers,
                          average_gradients, barrier, init_from_env, local_device, on_main,
                          shard_slice, wrap_ddp)
from .averaging import WeightAverage
from .distill import check_same_targets, targets_for, with_distillation
from .rundir import run_info

LOWER_IS_BETTER = {"loss"}


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def default_run_name(cfg: RunConfig) -> str:
    losses = "->".join(s.loss for s in cfg.stages).replace("+", "_")
    fold = "" if cfg.data.fold is None else f"-fold{cfg.data.fold}"
    return f"{cfg.data.dataset}-{cfg.model.backbone}-{cfg.model.head}-{losses}{fold}-seed{cfg.seed}"


def run_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.runs_dir) / (cfg.name or default_run_name(cfg))


def epoch_generator(seed: int) -> torch.Generator:
    """The generator of one epoch's data order and augmentation: always on the CPU (a CUDA
    generator would draw other numbers, and ``randperm`` refuses one), so a run draws the
    same batches and augmentations on any device; only the arithmetic differs."""
    return torch.Generator(device="cpu").manual_seed(seed)


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    """Seed of one epoch's data order, augmentation and dropout."""
    return (seed * 1_000_003 + stage * 10_007 + epoch) % (2 ** 63)


def seed_epoch(run_seed: int, stage: int, epoch: int, rank: int = 0) -> torch.Generator:
    """Seed this rank's dropout for one epoch and return the epoch's data generator."""
    seed = epoch_seed(run_seed, stage, epoch)
    torch.manual_seed(dropout_seed(seed, rank))
    return epoch_generator(seed)  # the same on every rank and every device


# --------------------------------------------------------------------------- building

def build_model(cfg: RunConfig, num_classes: int) -> FERModel:
    m = cfg.model
    return create_model(m.backbone, num_classes, head=m.head, in_chans=cfg.data.in_chans,
                        embedding_dim=m.embedding_dim, dropout=m.dropout,
                        freeze_stages=m.freeze_stages, pretrained=m.pretrained,
                        pretrained_format=m.pretrained_format, strict=m.pretrained_strict)


def to_run_format(model: FERModel, cfg: RunConfig) -> FERModel:
    """``model`` in the run's memory format. Evaluation must use the same one as training:
    under bf16 autocast a contiguous model fed channels_last batches runs other kernels and
    rounds differently (4 of 3,589 FER2013 PublicTest predictions changed)."""
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def build_stage_loss(stage: StageConfig, data: DatasetSplits, model: FERModel) -> LossSetting:
    return build_loss(stage.loss, class_counts=data.class_counts("train"),
                      num_classes=len(data.class_names), embedding_dim=model.embedding_dim,
                      reduction=stage.reduction, **stage.loss_params)


def build_optimizer(stage: StageConfig, model: FERModel, criterion: LossSetting) -> torch.optim.SGD:
    groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    center_params = [p for p in criterion.parameters() if p.requires_grad]
    if center_params:  # autograd-updated centers: no weight decay pulls them to zero
        groups.append({"params": center_params, "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=stage.lr, momentum=stage.momentum,
                           weight_decay=stage.weight_decay)


def build_scheduler(stage: StageConfig, optimizer, steps_per_epoch: int):
    """Per-epoch schedulers except onecycle, which steps every batch."""
    s = stage.schedule
    if s == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, stage.step_size, stage.gamma)
    if s == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(stage.milestones), stage.gamma)
    if s == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, stage.epochs)
    if s == "onecycle":
        total = stage.epochs * steps_per_epoch
        if stage.warmup * total <= 1:  # torch would divide by zero, or warm up in no step at all
            raise ValueError(f"warmup {stage.warmup} of {total} one-cycle steps is not even one step; "
                             f"use a larger warmup or more epochs")
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=stage.lr, pct_start=stage.warmup,
                                                   total_steps=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


# --------------------------------------------------------------------------- batches

class DeviceData:
    """A split's uint8 images resident on the training device, and its teachers' class
    probabilities when the run distils (``soft``, ``training.distill``)."""

    def __init__(self, split: Split, device: torch.device, soft: np.ndarray | None = None):
        self.images = torch.from_numpy(np.array(split.images, copy=True)).to(device)
        self.labels = torch.as_tensor(np.array(split.labels, dtype=np.int64)).to(device)
        self.soft = None if soft is None else torch.as_tensor(soft, dtype=torch.float32).to(device)

    def __len__(self) -> int:
        return len(self.labels)


def train_batches(n: int, batch_size: int, g: torch.Generator,
                  min_size: int = 2) -> list[torch.Tensor]:
    """Shuffled index batches; a trailing batch smaller than ``min_size`` is dropped
    (BatchNorm needs two samples: two per rank when the batch is split over ranks)."""
    order = torch.randperm(n, generator=g)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < min_size:
        batches.pop()
    return batches


def prepare(x_uint8: torch.Tensor, cfg: RunConfig, g: torch.Generator | None,
            size: int | None = None) -> torch.Tensor:
    """Training batch (augmented with ``g``, at side ``size`` when given) or, without ``g``,
    an evaluation batch as stored; normalised, in the run's memory format."""
    if g is not None:
        x = augment_batch(x_uint8, get_recipe(cfg.data.augmentation), g, size)
    else:
        x = to_float(x_uint8)
    x = normalize(x, cfg.data.normalization)
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def mix_batch(x: torch.Tensor, y: torch.Tensor, cfg: RunConfig,
              g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """The training batch under ``cfg.data.mixup``: the blended images, each image's
    partner labels and the weight ``lam`` of its own labels; without mixup the batch as it
    is, no partners and weight 1. Applied to the whole global batch before a rank takes its
    shard, so every rank draws the same partners. ``x`` keeps its memory format (an in-place
    blend of a fresh tensor)."""
    if cfg.data.mixup == 0:
        return x, None, 1.0
    mixed, perm, lam = mixup_batch(x, cfg.data.mixup, g)
    return mixed, y[perm.to(y.device)], lam


def batch_loss(criterion: LossSetting, logits: torch.Tensor, embedding: torch.Tensor | None,
               y: torch.Tensor, y_partner: torch.Tensor | None, lam: float):
    """``criterion`` on a batch; under mixup the same blend of the two labels' losses,
    ``lam * L(y) + (1 - lam) * L(y_partner)`` (and of their logged parts), which for
    cross-entropy is the loss against the blended one-hot targets."""
    if y_partner is None:
        return criterion(logits, embedding, y)
    loss_a, parts_a = criterion(logits, embedding, y)
    loss_b, parts_b = criterion(logits, embedding, y_partner)
    parts = {k: lam * parts_a[k] + (1.0 - lam) * parts_b[k] for k in parts_a}
    return lam * loss_a + (1.0 - lam) * loss_b, parts


def effective_precision(cfg: RunConfig, device: torch.device) -> str:
    """``cfg.precision``, except bf16 on a GPU without bfloat16 (before Ampere), which runs
    in fp32 with a message (bf16 autocast there is emulated or refused)."""
    if cfg.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        _warn_once(f"precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16; "
                   "training in fp32 (recorded in run_info.json as precision_used)")
        return "fp32"
    return cfg.precision


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"note: {message}", file=sys.stderr, flush=True)  # a notice: stdout stays the output


#: Kappa (one-vs-rest mean, as paper W) below which a selected model is reported as at chance level: a collapse to
#: one or two classes (the ImageNet center-loss runs: 0.00 and -0.003) or nothing learnt.
CHANCE_KAPPA = 0.05


def chance_level_note(run: str, kappa: float | None, y_prob: np.ndarray, names) -> str | None:
    """A one-line warning when a run's selected model agrees with the test labels no better
    than chance (kappa, the study's one-vs-rest mean, below ``CHANCE_KAPPA``), naming the
    class it predicts most. A diagnostic printed after training: it selects nothing. No kappa
    (None: no class had one, e.g. a one-class test split) is no evidence either way."""
    if kappa is None or kappa >= CHANCE_KAPPA:
        return None
    counts = np.bincount(y_prob.argmax(1), minlength=len(names))
    top = int(counts.argmax())
    return (f"{run}: the selected model agrees with the test labels at chance level "
            f"(kappa {kappa:.2f}; {counts[top] / counts.sum():.0%} of the images predicted "
            f"{names[top]!r}): it collapsed or learnt nothing (see scripts/diagnose_feature_collapse.py)")


def autocast(cfg: RunConfig, device: torch.device):
    if effective_precision(cfg, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- epochs

def loss_share(reduction: str, n_shard: int, n_batch: int) -> float:
    """This rank's weight in the loss of the whole global batch.

    A mean over the batch is the shard-size-weighted sum of the shards' means; a sum is
    the plain sum of the shards' sums. A ``weighted_mean`` divides by the batch's class
    weights, which the shards split unevenly: inside ``shard_of_global_batch`` it divides
    by the global weight sum and compensates this share, so it is exact too.
    In one process the share is exactly 1.
    """
    return 1.0 if reduction == "sum" else n_shard / n_batch


def global_batch_values(loss: torch.Tensor, parts: dict, share: float,
                        dist: DistInfo) -> dict[str, float]:
    """The loss and its parts over the whole global batch, identical on every rank
    (so all ranks log the same numbers and stop together on a non-finite loss)."""
    values = {"loss": loss.detach(), **parts}
    summed = all_reduce_sum(torch.stack([v.float() for v in values.values()]) * share, dist)
    return dict(zip(values, summed.tolist()))


def center_update_embedding(embedding: torch.Tensor | None, criterion: LossSetting,
                            dist: DistInfo) -> torch.Tensor | None:
    """The whole global batch's embedding (rank order = batch order) for ``after_step``,
    so every rank applies the 1-process center update and holds the same centers.
    Ranks skip the exchange when the loss setting keeps no centers."""
    if embedding is None or (dist.enabled and not criterion.needs_embedding):
        return None
    return all_gather_cat(embedding.detach(), dist)


def _shard_context(n_shard: int, n_batch: int, dist: DistInfo):
    """Several ranks: losses know their shard of the global batch (``weighted_mean``)."""
    if not dist.enabled:
        return contextlib.nullcontext()
    return shard_of_global_batch(n_shard, n_batch, lambda t: all_reduce_sum(t, dist))


def train_one_epoch(model, criterion, optimizer, scheduler, data: DeviceData, cfg: RunConfig,
                    device, g: torch.Generator, desc: str, progress: bool,
                    dist: DistInfo = SINGLE, on_step=None, max_steps: int | None = None,
                    size: int | None = None, ema: WeightAverage | None = None) -> dict:
    """One epoch over the training split; ``model`` is DDP-wrapped when ``dist`` has
    several ranks. Returns the mean training loss (and its parts) per sample.

    ``on_step(step, record)``, if given, sees every optimizer step (``record``: the step's
    ``lr``, loss ``values``, detached ``logits`` and ``embedding``, and the ``criterion``);
    ``max_steps`` ends the epoch early. Both are for diagnostics (``training.trace``).
    ``size``: the side of the training inputs (progressive resizing; None = as stored).
    ``ema``: a weight average of the model, updated after every optimizer step."""
    model.train()
    sums: dict[str, float] = {}
    n_seen = 0
    reduction = criterion_reduction(criterion)
    batches = train_batches(len(data), cfg.batch_size, g, min_size=2 * dist.world_size)
    for step, idx in enumerate(tqdm(batches, desc=desc, leave=False, disable=not progress,
                                    mininterval=2.0)):
        if max_steps is not None and step >= max_steps:
            break
        idx = idx.to(device)
        mine = shard_slice(len(idx), dist)
        # Every rank augments the whole global batch: the same random draws as one
        # process, and the shared generator stays in step on every rank.
        y = data.labels[idx]
        x, y_partner, lam = mix_batch(prepare(data.images[idx], cfg, g, size), y, cfg, g)
        x = x[mine]
        with autocast(cfg, device):
            logits, embedding = model(x)
        embedding = None if embedding is None else embedding.float()
        with _shard_context(len(y[mine]), len(y), dist):
            loss, parts = batch_loss(criterion, logits.float(), embedding, y[mine],
                                     None if y_partner is None else y_partner[mine], lam)
        if data.soft is not None:
            loss, parts = with_distillation(loss, parts, logits.float(), data.soft[idx][mine],
                                            cfg.data.soft_target_weight)
        share = loss_share(reduction, len(y[mine]), len(y))
        values = global_batch_values(loss, parts, share, dist)
        if not math.isfinite(values["loss"]):
            raise NonFiniteLossError(f"{desc}: non-finite training loss {values['loss']}; "
                                     "the last good checkpoint is kept")
        optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks: scaling by world_size * share makes the
        # average the gradient of the global batch's loss (a no-op in one process).
        (loss * (dist.world_size * share)).backward()
        average_gradients(criterion.parameters(), dist)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        if ema is not None:
            ema.update()
        criterion.after_step(center_update_embedding(embedding, criterion, dist), y)
        if isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
            scheduler.step()
        if on_step is not None:
            on_step(step, {"lr": lr, "values": values, "logits": logits.detach(),
                           "embedding": None if embedding is None else embedding.detach(),
                           "criterion": criterion})
        n_seen += len(y)
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(y)
    if not isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
        scheduler.step()
    average_buffers(model, dist)  # every rank validates (and saves) the same model
    if ema is not None:  # its batch-norm statistics averaged each rank's own
        average_buffers(ema.model, dist, trained_as=ema.live)
    return {f"train_{k}": v / max(n_seen, 1) for k, v in sums.items()}


def _forward_eval(model: FERModel, x: torch.Tensor, cfg: RunConfig, device):
    """Logits and embedding of one batch: the mean over its test-time views
    (``augment.test_time_views``: a face's expression does not change under a mirror or a
    slightly tighter crop), for validation and test alike."""
    views = test_time_views(x, cfg.tta)
    outs = []
    for view in views:
        with autocast(cfg, device):
            out, emb = model(view)
        outs.append((out.float(), None if emb is None else emb.float()))
    logits = torch.stack([o for o, _ in outs]).mean(0)
    emb = None if outs[0][1] is None else torch.stack([e for _, e in outs]).mean(0)
    return logits, emb


@torch.no_grad()
def predict(model: FERModel, data: DeviceData, cfg: RunConfig, device) -> dict[str, torch.Tensor]:
    """Class probabilities, logits and embeddings (if any) for a whole split, in order."""
    model.eval()
    logits, embeddings = [], []
    for idx in torch.arange(len(data), device=device).split(cfg.eval_batch_size):
        out, emb = _forward_eval(model, prepare(data.images[idx], cfg, None), cfg, device)
        logits.append(out)
        if emb is not None:
            embeddings.append(emb)
    logits_t = torch.cat(logits)
    return {"logits": logits_t, "prob": logits_t.softmax(1),
            "embedding": torch.cat(embeddings) if embeddings else None}


def validate_epoch(model, criterion, data: DeviceData, cfg: RunConfig, device, class_names) -> dict:
    out = predict(model, data, cfg, device)
    loss, _ = criterion(out["logits"], out["embedding"], data.labels)
    m = evaluate(data.labels.cpu().numpy(), out["prob"].cpu().numpy(), class_names, n_bootstrap=0)
    return {"val_loss": float(loss) / (len(data) if criterion_reduction(criterion) == "sum" else 1),
            "val_ce": float(F.cross_entropy(out["logits"], data.labels)),
            **{f"val_{k}": m[k] for k in ("accuracy", "f1", "balanced_accuracy", "kappa", "alpha",
                                           "auc", "auc_pr")}}


def criterion_reduction(criterion: LossSetting) -> str:
    return criterion.describe().get("reduction", "mean")


def score_of(row: dict, metric: str) -> float:
    value = row["val_loss"] if metric == "loss" else row[f"val_{metric}"]
    return -value if metric in LOWER_IS_BETTER else value


# --------------------------------------------------------------------------- checkpoints

def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    fio.write_text(path, buf.getvalue())


def read_metrics_csv(path: Path) -> list[dict]:
    """The rows ``write_metrics_csv`` wrote, with their numbers (str() of a float reads back
    exactly) and without the empty cells of columns a row did not have."""
    def number(text: str):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    with open(path, newline="") as f:
        return [{k: number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def model_state(model, criterion) -> dict:
    return {"model": model.state_dict(), "criterion": criterion.state_dict()}


def dropout_seed(seed: int, rank: int) -> int:
    """Seed of the global RNG (dropout) on one rank: rank 0 keeps the 1-process seed, the
    others draw their own masks for their own shards."""
    return seed if rank == 0 else (seed + rank * 0x9E3779B97F4A7C15) % (2 ** 63)


class Trainer:
    """Runs (or resumes) one configured run in its own directory.

    Under ``torchrun`` one Trainer per rank runs the same run; rank 0 alone writes
    ``run_dir`` and reads its checkpoints for the others (no shared filesystem needed).
    """

    def __init__(self, cfg: RunConfig, run_dir: Path, progress: bool = True,
                 stage1_from: Path | None = None):
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        #: A finished run whose first stage is this run's stage 1 (``stage1_donor``).
        self.stage1_from = Path(stage1_from) if stage1_from is not None else None
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.device = resolve_device(cfg.device)
        self.dist = SINGLE
        #: The loss setting of the last stage trained (its centers, after ``run``).
        self.criterion: LossSetting | None = None

    # -- lifecycle
    def setup(self) -> None:
        """Join the process group when launched by ``torchrun``, load the data and build
        the model (random init, seeded: the same on every rank)."""
        cfg = self.cfg
        self.dist = init_from_env(self.device)
        self.device = local_device(self.device, self.dist)
        self.progress = self.progress and self.dist.is_main  # one progress display
        if cfg.batch_size < 2 * self.dist.world_size:
            raise ValueError(f"batch_size {cfg.batch_size} is the global batch: it must give "
                             f"each of the {self.dist.world_size} ranks at least 2 samples")
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(cfg.seed)
        self.data = load_dataset(cfg.data, split_seed=cfg.seed)
        self.names = self.data.class_names
        soft = None if cfg.data.soft_targets is None else \
            targets_for(cfg.data.soft_targets, self.data.train, len(self.names))
        self.train_data = DeviceData(self.data.train, self.device, soft)
        self.val_data = DeviceData(self.data.val, self.device)
        self.test_data = DeviceData(self.data.test, self.device) if cfg.monitor_test else None
        self.model = to_run_format(build_model(cfg, len(self.names)).to(self.device), cfg)

    def run(self) -> Path:
        cfg = self.cfg
        t0 = time.time()
        self.setup()
        state = self._load_last()
        if state is None and self.dist.is_main:
            self._write_header()
        adopted = self._adopt_stage1() if state is None and self.stage1_from is not None else None
        self.rows: list[dict] = (state or adopted or {}).get("rows", [])
        self.elapsed = (state or adopted or {}).get("elapsed", 0.0)
        start_stage = state["stage"] if state else 1 if adopted else 0
        for s in range(start_stage, len(cfg.stages)):
            self._run_stage(s, state if state and state["stage"] == s else None)
            state = None
        result = self._finish(time.time() - t0)
        return result

    def _write_header(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fio.write_yaml(self.run_dir / "config.yaml", self.cfg.to_dict())
        info = run_info(self.device, self.cfg.seed)
        info["data"] = self.data.info
        info["loss_reductions"] = [s.reduction for s in self.cfg.stages]
        report = getattr(self.model, "pretrained_report", None)
        info["pretrained"] = report.to_dict() if report is not None else None
        info["normalization"] = self.cfg.data.normalization
        info["world_size"] = self.dist.world_size  # the number of training processes
        info["precision_used"] = effective_precision(self.cfg, self.device)
        info["stage1_from"] = self.stage1_from.name if self.stage1_from is not None else None
        # the config names the teachers' file by path only: its hash says which file it was
        info["soft_targets_sha256"] = (None if self.cfg.data.soft_targets is None
                                       else fio.sha256_file(self.cfg.data.soft_targets))
        fio.write_json(self.run_dir / "run_info.json", info)

    def _adopt_stage1(self) -> dict:
        """Take the donor's finished stage 1 instead of training it again: its best model
        (all that stage 2 starts from) and its metrics rows. Stage 2 is then what it would
        have been, epochs being seeded by (seed, stage, epoch) (tests/test_stage_sharing.py
        checks bit-identical results)."""
        donor = self.stage1_from

        def adopt():
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(donor / "checkpoints" / "best_stage0.pt", self.ckpt_dir / "best_stage0.pt")
            rows = [r for r in read_metrics_csv(donor / "metrics.csv") if r["stage"] == 0]
            print(f"{self.run_dir.name}: stage 1 taken from {donor.name} (the same stage, finished)")
            return {"rows": rows, "elapsed": rows[-1]["elapsed_s"]}
        return on_main(adopt, self.dist)

    def _load_last(self) -> dict | None:
        def load():
            path = self.ckpt_dir / "last.pt"
            if not path.exists():
                return None
            state = self._read_checkpoint(path)
            print(f"resuming {self.run_dir} at stage {state['stage']} after epoch {state['epoch']}")
            return state
        return on_main(load, self.dist)

    def _read_checkpoint(self, path: Path) -> dict:
        # Several ranks: rank 0 reads to the CPU and sends the state to the others;
        # load_state_dict then copies it to each rank's device.
        where = "cpu" if self.dist.enabled else self.device
        return torch.load(path, map_location=where, weights_only=True)

    def _load_best(self, s: int) -> dict:
        return on_main(lambda: self._read_checkpoint(self.ckpt_dir / f"best_stage{s}.pt"),
                       self.dist)

    # -- stages
    def start_stage(self, s: int):
        """Criterion, optimizer and scheduler of stage ``s``; later stages first load the
        best model of the previous stage."""
        cfg, stage = self.cfg, self.cfg.stages[s]
        if s > 0:  # paper F: stage 2 starts from the best stage-1 model
            best = self._load_best(s - 1)
            self.model.load_state_dict(best["model"])
            if stage.reinit_head:
                torch.manual_seed(epoch_seed(cfg.seed, s, -1))
                self.model.reset_classifier()
        criterion = build_stage_loss(stage, self.data, self.model).to(self.device)
        optimizer = build_optimizer(stage, self.model, criterion)
        steps = len(train_batches(len(self.train_data), cfg.batch_size, torch.Generator().manual_seed(0),
                                  min_size=2 * self.dist.world_size))
        scheduler = build_scheduler(stage, optimizer, steps)
        return criterion, optimizer, scheduler

    def _run_stage(self, s: int, state: dict | None) -> None:
        cfg, stage = self.cfg, self.cfg.stages[s]
        criterion, optimizer, scheduler = self.start_stage(s)
        ema = WeightAverage(self.model, stage.ema) if stage.ema else None
        first_epoch, best = 0, {"score": -math.inf, "epoch": -1}
        if state is not None:
            self.model.load_state_dict(state["model"])
            criterion.load_state_dict(state["criterion"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            first_epoch, best = state["epoch"] + 1, state["best"]
        # What the stage validates, selects and saves as its best: the average, if any.
        eval_model = ema.model if ema is not None else self.model
        # DDP for the training forward only; self.model (the same module) for the rest.
        train_model = wrap_ddp(self.model, self.device, self.dist)
        for epoch in range(first_epoch, stage.epochs):
            t0 = time.time()
            g = seed_epoch(cfg.seed, s, epoch, self.dist.rank)
            criterion.on_epoch_start(epoch)
            lr = optimizer.param_groups[0]["lr"]
            desc = f"stage {s + 1}/{len(cfg.stages)} {stage.loss} epoch {epoch + 1}/{stage.epochs}"
            row = {"stage": s, "epoch": epoch, "lr": lr,
                   **train_one_epoch(train_model, criterion, optimizer, scheduler, self.train_data,
                                     cfg, self.device, g, desc, self.progress, self.dist,
                                     size=stage.train_size(epoch), ema=ema)}
            validated = stage.validates(epoch)  # else its val_* cells stay empty
            if validated:
                row.update(validate_epoch(eval_model, criterion, self.val_data, cfg, self.device, self.names))
            row["epoch_time_s"] = time.time() - t0
            self.elapsed += row["epoch_time_s"]
            row["elapsed_s"] = self.elapsed
            if self.test_data is not None:  # outside the timed epoch; never selects
                out = predict(eval_model, self.test_data, cfg, self.device)
                row["monitor_test_accuracy"] = float(
                    (out["prob"].argmax(1) == self.test_data.labels).float().mean())
            # Every rank validated the same model on the whole split: the same choice.
            score = score_of(row, cfg.select_metric) if validated else -math.inf
            improved = score > best["score"]
            if improved:
                best = {"score": score, "epoch": epoch}
            row["best_epoch"] = best["epoch"]
            self.rows.append(row)
            if self.dist.is_main:
                self._save_epoch(s, epoch, criterion, optimizer, scheduler, best, improved, ema)
            barrier(self.dist)  # the others may read these checkpoints next
            if self.progress:
                val = (f"val_loss {row['val_loss']:.4f} val_acc {row['val_accuracy']:.4f} "
                       f"val_f1 {row['val_f1']:.4f}" if validated else "not validated")
                print(f"{desc}: train_loss {row['train_loss']:.4f} {val} ({row['epoch_time_s']:.1f}s)",
                      flush=True)
        self.criterion = criterion

    def _save_epoch(self, s: int, epoch: int, criterion, optimizer, scheduler, best: dict,
                    improved: bool, ema: WeightAverage | None = None) -> None:
        """metrics.csv, last.pt and (when the epoch improved) best_stage{s}.pt: the weight
        average's model when there is one (it is what was validated)."""
        if improved:
            best_model = ema.model if ema is not None else self.model
            fio.torch_save(self.ckpt_dir / f"best_stage{s}.pt",
                           {**model_state(best_model, criterion), "stage": s, "epoch": epoch})
        write_metrics_csv(self.run_dir / "metrics.csv", self.rows)
        fio.torch_save(self.ckpt_dir / "last.pt", {
            **model_state(self.model, criterion), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "stage": s, "epoch": epoch, "best": best,
            "rows": self.rows, "elapsed": self.elapsed,
            **({"ema": ema.state_dict()} if ema is not None else {})})

    # -- final evaluation
    def _finish(self, wall: float) -> Path:
        """Rank 0 tests and writes the results; every rank returns once they are written."""
        if self.dist.is_main:
            self._test_and_summarise(wall)
        barrier(self.dist)
        return self.run_dir

    def _test_and_summarise(self, wall: float) -> None:
        """Test the best model of every stage; the last stage's is the run's result."""
        cfg = self.cfg
        test_data = DeviceData(self.data.test, self.device)
        y_true = test_data.labels.cpu().numpy()
        by_stage = []
        for s in range(len(cfg.stages)):
            best = self._read_checkpoint(self.ckpt_dir / f"best_stage{s}.pt")
            self.model.load_state_dict(best["model"])
            out = predict(self.model, test_data, cfg, self.device)
            y_prob = out["prob"].cpu().numpy()
            final = s == len(cfg.stages) - 1
            test = evaluate(y_true, y_prob, self.names, n_bootstrap=cfg.bootstrap if final else 0,
                            seed=cfg.seed)
            # Which image, sequence and subject each row is: the unit of the tables' tests.
            arrays = {"y_true": y_true, "y_prob": y_prob.astype(np.float32), **self.data.test.groups()}
            if out["embedding"] is not None:
                arrays["embedding"] = out["embedding"].cpu().numpy().astype(np.float16)
            fio.save_npz(self.run_dir / ("predictions.npz" if final else f"predictions_stage{s}.npz"),
                         arrays)
            note = chance_level_note(f"{self.run_dir.name} stage {s}", test["kappa"], y_prob, self.names)
            if note:
                print(f"warning: {note}", file=sys.stderr, flush=True)
            row = next(r for r in self.rows if r["stage"] == s and r["epoch"] == best["epoch"])
            by_stage.append({"stage": s, "loss": cfg.stages[s].loss, "best_epoch": best["epoch"],
                             "val": {k[4:]: v for k, v in row.items() if k.startswith("val_")},
                             "test": test})
        # best.pt = the final stage's best checkpoint (a hard link: no second copy on disk)
        fio.link(self.ckpt_dir / f"best_stage{s}.pt", self.ckpt_dir / "best.pt")
        summary = {
            "run": self.run_dir.name, "dataset": cfg.data.dataset, "backbone": cfg.model.backbone,
            "head": cfg.model.head, "losses": [st.loss for st in cfg.stages],
            "loss_settings": [self._describe_loss(i) for i in range(len(cfg.stages))],
            "seed": cfg.seed, "fold": cfg.data.fold, "select_metric": cfg.select_metric,
            "best_stage": s, "best_epoch": best["epoch"], "val": by_stage[-1]["val"],
            "test": by_stage[-1]["test"], "stages": by_stage[:-1],
            "train_time_s": self.elapsed, "wall_time_s_this_process": wall,
            "split_info": self.data.info,
        }
        fio.write_json(self.run_dir / "metrics.json", summary)
        (self.ckpt_dir / "last.pt").unlink(missing_ok=True)  # finished: best.pt is what stays

    def _describe_loss(self, s: int) -> dict:
        stage = self.cfg.stages[s]
        crit = build_stage_loss(stage, self.data, self.model)
        return {"stage": s, "loss": stage.loss, **crit.describe()}


#: Settings that may differ between a run and its resumption without changing its numbers.
RUNTIME_KEYS = ("device", "runs_dir", "num_threads", "eval_batch_size")


def _comparable(values: dict) -> dict:
    return {k: v for k, v in values.items() if k not in RUNTIME_KEYS}


def check_same_config(run_dir: Path, cfg: RunConfig) -> None:
    """Refuse to resume or skip a run directory that was made by a different config."""
    saved = Path(run_dir) / "config.yaml"
    if not saved.exists():
        return
    from ..config import config_from_dict
    import yaml
    old = _comparable(config_from_dict(yaml.safe_load(saved.read_text())).to_dict())
    new = _comparable(cfg.to_dict())
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(f"{run_dir} holds a run of a different configuration (differs in: "
                         f"{', '.join(diff)}); choose another run name or runs_dir, or pass "
                         f"new_run_id=True / --new-run-id")


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "metrics.json").exists()


def _choose_run_dir(cfg: RunConfig, new_run_id: bool) -> tuple[Path, bool]:
    """The run directory to train in, and whether there is nothing to train."""
    run_dir = run_dir_of(cfg)
    if not new_run_id:
        check_same_config(run_dir, cfg)
        check_same_targets(run_dir, cfg.data.soft_targets)
    if is_finished(run_dir):
        if not new_run_id:
            print(f"{run_dir} already finished; nothing to do (pass new_run_id=True for a fresh copy)")
            return run_dir, True
        k = 2
        while run_dir.with_name(f"{run_dir.name}-r{k}").exists():
            k += 1
        run_dir = run_dir.with_name(f"{run_dir.name}-r{k}")
    return run_dir, False


def stage1_twins(cfg: RunConfig, candidates) -> list[RunConfig]:
    """The configs among ``candidates`` whose first stage is exactly ``cfg``'s (everything else
    equal but the name and the later stages), one-stage ones first: paper F's CE only,
    CE -> focal and CE -> CE control share their first stage, as focal only and focal -> CE
    do, so a grid need train it once per fold and seed."""
    if len(cfg.stages) < 2:
        return []
    def first_stage_only(c):
        values = c.to_dict()
        return _comparable({**values, "name": None, "stages": values["stages"][:1]})
    want = first_stage_only(cfg)
    twins = [c for c in candidates if c.name != cfg.name and first_stage_only(c) == want]
    return sorted(twins, key=lambda c: len(c.stages))


def stage1_donor(cfg: RunConfig, candidates) -> Path | None:
    """The run directory of a finished twin (``stage1_twins``) that kept its best stage-1
    model, or None."""
    for twin in stage1_twins(cfg, candidates):
        d = run_dir_of(twin)
        if is_finished(d) and (d / "checkpoints" / "best_stage0.pt").exists():
            return d
    return None


def train_run(cfg: RunConfig, *, new_run_id: bool = False, progress: bool = True,
              stage1_from: Path | None = None) -> Path:
    """Train ``cfg`` in its run directory and return that directory.

    A finished run is never overwritten: rerunning it is a no-op that says so, or
    trains a fresh copy under a new id with ``new_run_id=True``. An interrupted run
    resumes from its last epoch checkpoint. Under ``torchrun`` every rank calls this
    and trains its part of the same run. ``stage1_from`` (see ``stage1_donor``) is a finished
    run directory whose first stage is this run's stage 1: it is adopted instead of trained.
    """
    validate_config(cfg)
    dist = init_from_env(resolve_device(cfg.device))
    # Rank 0 decides for all: a rank looking later could see rank 0's new directory.
    run_dir, finished = on_main(lambda: _choose_run_dir(cfg, new_run_id), dist)
    if finished:
        return run_dir
    return Trainer(cfg, run_dir, progress=progress, stage1_from=stage1_from).run()


__all__ = ["train_run", "stage1_donor", "stage1_twins", "Trainer", "predict", "is_finished", "run_dir_of", "NonFiniteLossError",
           "resolve_device", "DeviceData"]
