"""Loss settings: what one row of the papers' tables trains with (see ``base.LossSetting``).

Two families: losses on the logits only (:class:`LogitLossSetting`, :class:`LDAMDRWSetting`)
and a classification loss plus a feature loss on the embedding with class centers
(:class:`CenterSetting`, :class:`WeightedClusterSetting`, :class:`IslandSetting`).
Centers are buffers updated in ``after_step``, except with ``center_update="autograd"``
where they are an ``nn.Parameter``: add ``setting.parameters()`` to the optimizer.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import LossSetting
from .center import CenterLoss, wen_center_update
from .island import IslandLoss, island_center_update
from .ldam import LDAMLoss
from .weighted_cluster import CENTER_RULES, WeightedClusterLoss, weighted_cluster_center_update
from .weights import class_balanced_weights

Parts = dict[str, torch.Tensor]


def _check_nonneg(**values: float) -> None:
    for key, value in values.items():
        if not value >= 0:
            raise ValueError(f"{key} must be >= 0, got {value}")


class LogitLossSetting(LossSetting):
    """The sum of one or more losses on the logits; ``parts`` holds each of them.

    Args:
        name: registry name, recorded by :meth:`describe`.
        terms: part name -> loss module called as ``term(logits, targets)``.
        reduction: recorded; the terms were built with it.
        hparams: hyper-parameters recorded by :meth:`describe`.
    """

    def __init__(self, name: str, terms: dict[str, nn.Module], reduction: str,
                 hparams: dict | None = None) -> None:
        super().__init__()
        self.name, self.reduction = name, reduction
        self.terms = nn.ModuleDict(terms)
        self.hparams = dict(hparams or {})

    def forward(self, logits: torch.Tensor, embedding: torch.Tensor | None,
                targets: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        parts = {key: term(logits, targets) for key, term in self.terms.items()}
        total = torch.stack(list(parts.values())).sum()
        return total, {key: value.detach() for key, value in parts.items()}

    def describe(self) -> dict:
        return {"loss": self.name, "reduction": self.reduction, **self.hparams}


class LDAMDRWSetting(LogitLossSetting):
    """LDAM with deferred re-weighting (Cao et al. 2019).

    Unweighted LDAM before ``drw_epoch``, class-balanced weights (Cui et al., ``beta``)
    from then on; the switch happens in :meth:`on_epoch_start` (0-based epochs, as in
    Cao et al.'s code where the weights change at epoch 160 of 200).
    """

    def __init__(self, name: str, ldam: LDAMLoss, class_counts: Sequence[int], drw_epoch: int,
                 beta: float, hparams: dict) -> None:
        super().__init__(name, {"ldam": ldam}, ldam.reduction, hparams)
        if drw_epoch < 0:
            raise ValueError(f"drw_epoch must be >= 0, got {drw_epoch}")
        self.drw_epoch = int(drw_epoch)
        self.register_buffer("drw_weights", class_balanced_weights(class_counts, beta))

    def on_epoch_start(self, epoch: int) -> None:
        weights = self.drw_weights if epoch >= self.drw_epoch else torch.ones_like(self.drw_weights)
        self.terms["ldam"].class_weights.copy_(weights)


class _CenterBased(LossSetting):
    """Classification loss + ``lam`` * a feature loss against per-class centers."""

    needs_embedding = True

    def __init__(self, name: str, classifier: nn.Module, cls_part: str, num_classes: int,
                 embedding_dim: int | None, reduction: str, lam: float, center_lr: float,
                 learn_centers: bool = False) -> None:
        super().__init__()
        if embedding_dim is None or embedding_dim <= 0:
            raise ValueError(f"loss {name!r} needs the model's embedding: pass embedding_dim "
                             f"(the feature size of the head), got {embedding_dim}")
        _check_nonneg(lam=lam, center_lr=center_lr)
        self.name, self.reduction, self.cls_part = name, reduction, cls_part
        self.lam, self.center_lr = float(lam), float(center_lr)
        self.classifier = classifier
        centers = torch.zeros(num_classes, embedding_dim)  # zeros, as Wen et al.
        if learn_centers:
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)

    def _embedding(self, embedding: torch.Tensor | None) -> torch.Tensor:
        if embedding is None:
            raise ValueError(f"loss {self.name!r} needs the embedding; the model returned None")
        if embedding.dim() != 2 or embedding.shape[1] != self.centers.shape[1]:
            raise ValueError(f"embedding must have shape (m, {self.centers.shape[1]}), "
                             f"got {tuple(embedding.shape)}")
        return embedding

    def _combine(self, logits: torch.Tensor, targets: torch.Tensor, feat_part: str,
                 feat_loss: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        cls_loss = self.classifier(logits, targets)
        parts = {self.cls_part: cls_loss.detach(), feat_part: feat_loss.detach()}
        return cls_loss + self.lam * feat_loss, parts

    def _describe(self, **extra) -> dict:
        return {"loss": self.name, "reduction": self.reduction, "lam": self.lam,
                "center_lr": self.center_lr, **extra}


class CenterSetting(_CenterBased):
    """``L_cls + lam * L_center`` (paper W Eq. 3), centers updated by Wen et al.'s rule.

    With ``reduction="weighted_mean"`` (weighted classifier only) the center term is
    averaged over the batch.
    """

    def __init__(self, name: str, classifier: nn.Module, cls_part: str, num_classes: int,
                 embedding_dim: int | None, reduction: str, lam: float = 0.5,
                 center_lr: float = 0.5) -> None:
        super().__init__(name, classifier, cls_part, num_classes, embedding_dim, reduction,
                         lam, center_lr)
        self.center_loss = CenterLoss("sum" if reduction == "sum" else "mean")
        self.center_update = "wen"

    def forward(self, logits: torch.Tensor, embedding: torch.Tensor | None,
                targets: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        # Detached centers: they move only by the manual rule, never by the optimizer.
        feat = self.center_loss(self._embedding(embedding), targets, self.centers.detach())
        return self._combine(logits, targets, "center", feat)

    @torch.no_grad()
    def after_step(self, embedding: torch.Tensor | None, targets: torch.Tensor) -> None:
        x = self._embedding(embedding).detach().to(self.centers.dtype)
        self.centers.copy_(wen_center_update(self.centers, x, targets, self.center_lr))

    def describe(self) -> dict:
        return self._describe(center_update=self.center_update)


class WeightedClusterSetting(_CenterBased):
    """``L_ws + lam * L_wc`` (paper W Eq. 5) with a choice of center update.

    ``center_update``: ``"corrected"`` (Eqs. 8-9 with the sign that moves centers toward
    their features), ``"printed"`` (the paper's sign, diverges) or ``"autograd"``
    (centers are an ``nn.Parameter`` receiving the full gradient of Eq. 4, including
    the repulsive denominator, through the optimizer; ``after_step`` does nothing).
    ``reduction="weighted_mean"`` divides both W-weighted terms by :math:`\\sum_i W_{y_i}`.
    """

    def __init__(self, name: str, classifier: nn.Module, class_weights: torch.Tensor,
                 embedding_dim: int | None, reduction: str, lam: float = 1.0,
                 alpha: float = 1.0, center_lr: float = 1.0, center_update: str = "corrected",
                 normalize_by_count: bool = False) -> None:
        if center_update not in (*CENTER_RULES, "autograd"):
            raise ValueError(f"center_update must be one of {(*CENTER_RULES, 'autograd')}, "
                             f"got {center_update!r}")
        super().__init__(name, classifier, "weighted_softmax", len(class_weights), embedding_dim,
                         reduction, lam, center_lr, learn_centers=center_update == "autograd")
        self.center_update, self.normalize_by_count = center_update, bool(normalize_by_count)
        self.cluster_loss = WeightedClusterLoss(class_weights, alpha, reduction)

    def forward(self, logits: torch.Tensor, embedding: torch.Tensor | None,
                targets: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        learn = self.center_update == "autograd"
        centers = self.centers if learn else self.centers.detach()
        feat = self.cluster_loss(self._embedding(embedding), targets, centers)
        return self._combine(logits, targets, "weighted_cluster", feat)

    @torch.no_grad()
    def after_step(self, embedding: torch.Tensor | None, targets: torch.Tensor) -> None:
        if self.center_update == "autograd":
            return
        x = self._embedding(embedding).detach().to(self.centers.dtype)
        loss = self.cluster_loss
        self.centers.copy_(weighted_cluster_center_update(
            self.centers, x, targets, loss.class_weights, loss.alpha, self.center_lr,
            self.center_update, self.normalize_by_count))

    def describe(self) -> dict:
        return self._describe(alpha=self.cluster_loss.alpha, center_update=self.center_update,
                              normalize_by_count=self.normalize_by_count,
                              class_weights=self.cluster_loss.class_weights.tolist())


class IslandSetting(_CenterBased):
    """``L_softmax + lam * L_IL`` (Cai et al. 2018); centers get a manual step in
    ``after_step``: Wen et al.'s pull plus the island push (see ``island_center_update``).
    Both terms see detached centers, so the island term is logged but sends no gradient.
    """

    def __init__(self, name: str, classifier: nn.Module, num_classes: int,
                 embedding_dim: int | None, reduction: str, lam: float = 0.01,
                 lambda1: float = 10.0, center_lr: float = 0.5) -> None:
        if num_classes < 2:
            raise ValueError("island loss needs at least 2 classes")
        super().__init__(name, classifier, "softmax", num_classes, embedding_dim, reduction,
                         lam, center_lr)
        self.island_loss = IslandLoss(lambda1, reduction)
        self.center_update = "wen+island"

    def forward(self, logits: torch.Tensor, embedding: torch.Tensor | None,
                targets: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        feat = self.island_loss(self._embedding(embedding), targets, self.centers.detach())
        return self._combine(logits, targets, "island", feat)

    @torch.no_grad()
    def after_step(self, embedding: torch.Tensor | None, targets: torch.Tensor) -> None:
        x = self._embedding(embedding).detach().to(self.centers.dtype)
        self.centers.copy_(island_center_update(self.centers, x, targets,
                                                self.island_loss.lambda1, self.center_lr))

    def describe(self) -> dict:
        return self._describe(lambda1=self.island_loss.lambda1, center_update=self.center_update)
