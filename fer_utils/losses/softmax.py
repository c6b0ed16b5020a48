"""Softmax cross-entropy and the weighted softmax loss of paper W (Eq. 1)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import as_positive_vector, check_class_vector, check_logits_targets
from .base import (REDUCTIONS, WEIGHTED_REDUCTIONS, check_reduction, reduce_loss,
                   reduce_weighted_loss)


def true_class_log_prob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p_{y_i}`` of shape ``(m,)``, via ``log_softmax`` so that extreme logits stay finite."""
    targets = check_logits_targets(logits, targets)
    return F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor,
                       reduction: str = "mean", label_smoothing: float = 0.0) -> torch.Tensor:
    r"""Softmax cross-entropy :math:`L = -\sum_i \log p_{i, y_i}` (``mean`` divides by m).

    With label smoothing :math:`\varepsilon` (Szegedy et al., 2016; not in either paper) the
    target is :math:`1 - \varepsilon` on the true class plus :math:`\varepsilon / K` on every
    class: :math:`-\sum_i [(1 - \varepsilon) \log p_{i, y_i} + \frac{\varepsilon}{K}
    \sum_k \log p_{i, k}]`.

    Args:
        logits: unnormalised scores, shape ``(m, K)``.
        targets: class indices, shape ``(m,)``.
        reduction: ``"sum"`` (as the papers print) or ``"mean"``.
        label_smoothing: :math:`\varepsilon` in [0, 1).

    Returns:
        Scalar loss.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(cross_entropy_loss(logits, torch.tensor([0, 2])).item(), 4)
        0.8606
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    nll = -true_class_log_prob(logits, targets)
    if label_smoothing:
        uniform = -F.log_softmax(logits, dim=1).mean(dim=1)
        nll = (1 - label_smoothing) * nll + label_smoothing * uniform
    return reduce_loss(nll, check_reduction(reduction))


def weighted_softmax_loss(logits: torch.Tensor, targets: torch.Tensor,
                          class_weights: torch.Tensor,
                          reduction: str = "mean") -> torch.Tensor:
    r"""Weighted softmax loss (paper W, Eq. 1; Mollahosseini et al., AffectNet, 2017).

    .. math:: L_{ws} = -\sum_{i=1}^{m} W_{y_i} \log p_{i, y_i}

    Reductions: ``"sum"`` is the equation as printed, ``"mean"`` divides it by the
    batch size m, ``"weighted_mean"`` divides by :math:`\sum_i W_{y_i}` (what
    ``nn.CrossEntropyLoss(weight=W)`` does). They differ by a batch-dependent factor,
    which changes the effective learning rate and the balance with other terms.

    Args:
        logits: unnormalised scores, shape ``(m, K)``.
        targets: class indices, shape ``(m,)``.
        class_weights: :math:`W`, shape ``(K,)`` (see :func:`class_weights_from_counts`).
        reduction: ``"sum"``, ``"mean"`` or ``"weighted_mean"``.

    Returns:
        Scalar loss.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> w = torch.tensor([0.5, 1.0, 0.25])
        >>> round(weighted_softmax_loss(logits, torch.tensor([0, 2]), w, "sum").item(), 4)
        0.4728
    """
    check_reduction(reduction, WEIGHTED_REDUCTIONS)
    check_class_vector(class_weights, logits.shape[-1], "class_weights")
    log_p = true_class_log_prob(logits, targets)
    w = class_weights.to(log_p)[targets.long()]
    return reduce_weighted_loss(-w * log_p, w, reduction)


class CrossEntropyLoss(nn.Module):
    """Module twin of :func:`cross_entropy_loss`."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, REDUCTIONS)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(logits, targets, self.reduction, self.label_smoothing)


class WeightedSoftmaxLoss(nn.Module):
    """Module twin of :func:`weighted_softmax_loss`; the weights are a buffer.

    Example:
        >>> loss = WeightedSoftmaxLoss([0.5, 1.0, 0.25], reduction="weighted_mean")
        >>> round(loss(torch.zeros(2, 3), torch.tensor([0, 1])).item(), 4)
        1.0986
    """

    def __init__(self, class_weights: Sequence[float] | torch.Tensor,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, WEIGHTED_REDUCTIONS)
        weights = as_positive_vector(class_weights, "class_weights")
        self.register_buffer("class_weights", weights.to(torch.get_default_dtype()))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return weighted_softmax_loss(logits, targets, self.class_weights, self.reduction)
