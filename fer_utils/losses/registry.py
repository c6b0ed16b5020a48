"""Registry of loss settings: ``build_loss("weighted_cluster+weighted_softmax", ...)``.

Every builder takes the keyword arguments ``class_counts`` (training-set count per
class), ``num_classes``, ``embedding_dim`` (None when the head has no embedding),
``reduction``, and its own hyper-parameters, and returns a :class:`LossSetting`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch

from .base import LossSetting
from .focal import FocalLoss
from .ldam import LDAMLoss
from .logit_adjusted import BalancedSoftmaxLoss, LogitAdjustedLoss
from .settings import (CenterSetting, IslandSetting, LDAMDRWSetting, LogitLossSetting,
                       WeightedClusterSetting)
from .softmax import CrossEntropyLoss, WeightedSoftmaxLoss
from .weights import class_balanced_weights, class_weights_from_counts

LOSSES: dict[str, Callable[..., LossSetting]] = {}
_COMMON = ("class_counts", "num_classes", "embedding_dim", "reduction")


def register(name: str) -> Callable:
    """Decorator adding a builder to :data:`LOSSES` under ``name``."""
    def add(builder: Callable[..., LossSetting]) -> Callable[..., LossSetting]:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        LOSSES[name] = builder
        return builder
    return add


def loss_params(name: str) -> dict[str, object]:
    """The own hyper-parameters of a registered loss with their defaults."""
    sig = inspect.signature(LOSSES[name])
    return {k: p.default for k, p in sig.parameters.items() if k not in _COMMON}


def build_loss(name: str, class_counts: Sequence[int], num_classes: int,
               embedding_dim: int | None = None, reduction: str = "mean",
               **params) -> LossSetting:
    """Build the loss setting registered as ``name``.

    Args:
        name: a key of :data:`LOSSES`.
        class_counts: training-set size of each class (class weights, priors, margins).
        num_classes: K; must equal ``len(class_counts)``.
        embedding_dim: feature size of the head's embedding, or None if it has none.
        reduction: ``"sum"``, ``"mean"``, or ``"weighted_mean"`` for weighted losses.
        **params: the loss's own hyper-parameters (see :func:`loss_params`).

    Returns:
        The setting; ``setting.describe()`` gives everything to record.

    Raises:
        ValueError: unknown name, or counts that do not match ``num_classes``.
        TypeError: parameters the loss does not take.

    Example:
        >>> loss = build_loss("focal", class_counts=[50, 10, 5], num_classes=3, gamma=1.0)
        >>> loss.describe()
        {'loss': 'focal', 'reduction': 'mean', 'gamma': 1.0, 'alpha': None}
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {sorted(LOSSES)}")
    unknown = sorted(set(params) - set(loss_params(name)))
    if unknown:
        raise TypeError(f"loss {name!r} got unknown parameter(s) {unknown}; "
                        f"it takes {sorted(loss_params(name))}")
    if len(class_counts) != num_classes:
        raise ValueError(f"class_counts has {len(class_counts)} entries for {num_classes} classes")
    counts = torch.as_tensor(class_counts).tolist()  # lists, tuples, tensors, arrays
    return LOSSES[name](class_counts=counts, num_classes=num_classes,
                        embedding_dim=embedding_dim, reduction=reduction, **params)


def _weighted_softmax(class_counts: Sequence[int], reduction: str) -> WeightedSoftmaxLoss:
    return WeightedSoftmaxLoss(class_weights_from_counts(class_counts), reduction)


@register("softmax")
def _softmax(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
             label_smoothing: float = 0.0):
    """Softmax cross-entropy; ``label_smoothing`` (not in either paper) is recorded only when
    set, so the papers' softmax runs describe themselves as before."""
    hparams = {"label_smoothing": float(label_smoothing)} if label_smoothing else {}
    return LogitLossSetting("softmax", {"softmax": CrossEntropyLoss(reduction, label_smoothing)},
                            reduction, hparams)


@register("weighted_softmax")
def _ws(*, class_counts, num_classes, embedding_dim=None, reduction="mean"):
    cls = _weighted_softmax(class_counts, reduction)
    return LogitLossSetting("weighted_softmax", {"weighted_softmax": cls}, reduction,
                            {"class_weights": cls.class_weights.tolist()})


@register("center+softmax")
def _center_softmax(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
                    lam: float = 0.5, center_lr: float = 0.5):
    return CenterSetting("center+softmax", CrossEntropyLoss(reduction), "softmax", num_classes,
                         embedding_dim, reduction, lam, center_lr)


@register("center+weighted_softmax")
def _center_ws(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
               lam: float = 0.5, center_lr: float = 0.5):
    return CenterSetting("center+weighted_softmax", _weighted_softmax(class_counts, reduction),
                         "weighted_softmax", num_classes, embedding_dim, reduction, lam,
                         center_lr)


@register("weighted_cluster+weighted_softmax")
def _wc_ws(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
           lam: float = 1.0, alpha: float = 1.0, center_lr: float = 1.0,
           center_update: str = "corrected", normalize_by_count: bool = False):
    weights = class_weights_from_counts(class_counts)
    return WeightedClusterSetting("weighted_cluster+weighted_softmax",
                                  WeightedSoftmaxLoss(weights, reduction), weights, embedding_dim,
                                  reduction, lam, alpha, center_lr, center_update,
                                  normalize_by_count)


def _focal(gamma: float, alpha, num_classes: int, reduction: str) -> tuple[FocalLoss, dict]:
    # Plain floats / lists so that describe() stays YAML/JSON-serialisable.
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.tolist()
    if isinstance(alpha, (list, tuple)):
        alpha = [float(a) for a in alpha]
        if len(alpha) != num_classes:
            raise ValueError(f"focal alpha has {len(alpha)} entries for {num_classes} classes")
    elif alpha is not None:
        alpha = float(alpha)
    return FocalLoss(gamma, alpha, reduction), {"gamma": float(gamma), "alpha": alpha}


@register("focal")
def _focal_only(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
                gamma: float = 2.0, alpha=None):
    """Paper F's printed CK+ setting alpha=0.25, gamma=0 is 0.25 * CE; alpha=0 warns (zero loss)."""
    focal, hparams = _focal(gamma, alpha, num_classes, reduction)
    return LogitLossSetting("focal", {"focal": focal}, reduction, hparams)


@register("ce+focal")
def _ce_focal(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
              gamma: float = 2.0, alpha=None):
    """Joint CE + focal (paper F, Table 4 'joint'): the plain sum of the two."""
    focal, hparams = _focal(gamma, alpha, num_classes, reduction)
    return LogitLossSetting("ce+focal", {"ce": CrossEntropyLoss(reduction), "focal": focal},
                            reduction, hparams)


@register("class_balanced_softmax")
def _cb_softmax(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
                beta: float = 0.9999):
    cls = WeightedSoftmaxLoss(class_balanced_weights(class_counts, beta), reduction)
    return LogitLossSetting("class_balanced_softmax", {"class_balanced_softmax": cls}, reduction,
                            {"beta": float(beta), "class_weights": cls.class_weights.tolist()})


@register("balanced_softmax")
def _balanced_softmax(*, class_counts, num_classes, embedding_dim=None, reduction="mean"):
    return LogitLossSetting("balanced_softmax",
                            {"balanced_softmax": BalancedSoftmaxLoss(class_counts, reduction)},
                            reduction)


@register("logit_adjusted")
def _logit_adjusted(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
                    tau: float = 1.0):
    return LogitLossSetting("logit_adjusted",
                            {"logit_adjusted": LogitAdjustedLoss(class_counts, tau, reduction)},
                            reduction, {"tau": float(tau)})


@register("ldam_drw")
def _ldam_drw(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
              max_margin: float = 0.5, scale: float = 30.0, drw_epoch: int = 160,
              beta: float = 0.9999):
    """Cao et al.'s s = 30 assumes cosine logits; use scale=1 with a plain linear head."""
    ldam = LDAMLoss(class_counts, max_margin, scale, None, reduction)
    hparams = {"max_margin": float(max_margin), "scale": float(scale),
               "drw_epoch": int(drw_epoch), "beta": float(beta)}
    return LDAMDRWSetting("ldam_drw", ldam, class_counts, drw_epoch, beta, hparams)


@register("island+softmax")
def _island_softmax(*, class_counts, num_classes, embedding_dim=None, reduction="mean",
                    lam: float = 0.01, lambda1: float = 10.0, center_lr: float = 0.5):
    return IslandSetting("island+softmax", CrossEntropyLoss(reduction), num_classes,
                         embedding_dim, reduction, lam, lambda1, center_lr)
