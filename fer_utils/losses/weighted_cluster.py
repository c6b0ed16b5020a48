"""Weighted-cluster loss of paper W (Eqs. 4, 7-9) and its center-update rules."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import as_positive_vector, check_class_vector, check_features_centers
from .base import WEIGHTED_REDUCTIONS, check_reduction, reduce_weighted_loss

#: ``corrected``: Eq. 8-9 with the sign that moves centers toward their features;
#: ``printed``: the sign as printed (moves them away; kept to show that it diverges).
CENTER_RULES = ("corrected", "printed")


def _check_alpha(alpha: float) -> float:
    # alpha > 0 keeps D_i > 0 when centers coincide, e.g. all zeros at initialisation.
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (it keeps the denominator positive), got {alpha}")
    return float(alpha)


def weighted_cluster_denominators(centers: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    r"""Per-class denominators of Eq. 4, shape ``(K,)``.

    .. math:: D_k = \sum_{j \ne k} \lVert c_j - c_k \rVert_2^2 + \alpha

    Explicit differences rather than ``cdist``: its gradient is NaN at zero distance
    (the diagonal), and coincident centers are the usual initial state.
    """
    diff = centers[:, None, :] - centers[None, :, :]
    return diff.pow(2).sum(dim=(1, 2)) + _check_alpha(alpha)


def weighted_cluster_loss(features: torch.Tensor, targets: torch.Tensor, centers: torch.Tensor,
                          class_weights: torch.Tensor, alpha: float = 1.0,
                          reduction: str = "mean") -> torch.Tensor:
    r"""Weighted-cluster loss (paper W, Eq. 4).

    .. math::
        L_{wc} = \frac12 \sum_{i=1}^m \frac{W_{y_i} \lVert x_i - c_{y_i} \rVert_2^2}
                 {\sum_{j \ne y_i} \lVert c_j - c_{y_i} \rVert_2^2 + \alpha}

    (the paper prints the inner sum as "j = 1, j != i"; it runs over the other classes).
    Gradients reach ``centers`` through numerator and denominator when they require
    grad; pass ``centers.detach()`` for the manual update of Eqs. 8-9, which gives
    the features exactly Eq. 7, :math:`W_{y_i}(x_i - c_{y_i}) / D_i`.

    Args:
        features: deep features :math:`x_i`, shape ``(m, d)``.
        targets: class indices, shape ``(m,)``.
        centers: class centers, shape ``(K, d)``.
        class_weights: :math:`W`, shape ``(K,)``.
        alpha: :math:`\alpha > 0` (1 in the paper).
        reduction: ``"sum"`` (as printed), ``"mean"`` (sum / m) or ``"weighted_mean"``
            (sum / :math:`\sum_i W_{y_i}`).

    Returns:
        Scalar loss.

    Example:
        >>> x = torch.tensor([[2.0, 0.0]]); c = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
        >>> weighted_cluster_loss(x, torch.tensor([0]), c, torch.tensor([1.0, 1.0]))
        tensor(1.)
    """
    check_reduction(reduction, WEIGHTED_REDUCTIONS)
    targets = check_features_centers(features, targets, centers)
    check_class_vector(class_weights, centers.shape[0], "class_weights")
    w = class_weights.to(features)[targets]
    numerator = w * (features - centers[targets]).pow(2).sum(dim=1)
    per_sample = 0.5 * numerator / weighted_cluster_denominators(centers, alpha)[targets]
    return reduce_weighted_loss(per_sample, w, reduction)


def weighted_cluster_center_update(centers: torch.Tensor, features: torch.Tensor,
                                   targets: torch.Tensor, class_weights: torch.Tensor,
                                   alpha: float = 1.0, center_lr: float = 1.0,
                                   rule: str = "corrected",
                                   normalize_by_count: bool = False) -> torch.Tensor:
    r"""Paper W's mini-batch center update (Eqs. 8-9); returns the new centers.

    .. math::
        \Delta c_j = \sum_i \frac{W_{y_i}\, \delta(y_i = j)\, (c_j - x_i)}{D_i}, \qquad
        c_j \leftarrow c_j - \gamma \Delta c_j

    with :math:`D_i` evaluated at the current centers and treated as a constant (as in
    Eq. 7). ``rule="corrected"`` is the above; ``rule="printed"`` uses the paper's
    :math:`(x_i - c_j)`, which moves centers *away* from their features and diverges.
    Either way the denominator only rescales the step: nothing here pushes centers
    apart. ``normalize_by_count=True`` divides :math:`\Delta c_j` by :math:`1 + n_j` as
    Wen et al. do; this is not in paper W. Call under ``torch.no_grad()``.

    Args:
        centers: shape ``(K, d)``.
        features: shape ``(m, d)``.
        targets: shape ``(m,)``.
        class_weights: :math:`W`, shape ``(K,)``.
        alpha: the :math:`\alpha` of the denominator.
        center_lr: :math:`\gamma` (1 in the paper).
        rule: ``"corrected"`` or ``"printed"``.
        normalize_by_count: divide by :math:`1 + n_j` (non-paper option).

    Returns:
        Updated centers, shape ``(K, d)``.

    Example:
        >>> c = torch.zeros(2, 1); x = torch.tensor([[1.0]]); y = torch.tensor([0])
        >>> weighted_cluster_center_update(c, x, y, torch.ones(2)).flatten()
        tensor([1., 0.])
        >>> weighted_cluster_center_update(c, x, y, torch.ones(2), rule="printed").flatten()
        tensor([-1.,  0.])
    """
    if rule not in CENTER_RULES:
        raise ValueError(f"rule must be one of {CENTER_RULES}, got {rule!r}")
    targets = check_features_centers(features, targets, centers)
    check_class_vector(class_weights, centers.shape[0], "class_weights")
    denominators = weighted_cluster_denominators(centers, alpha)
    coef = class_weights.to(centers)[targets] / denominators[targets]
    delta = torch.zeros_like(centers).index_add_(
        0, targets, coef[:, None] * (centers[targets] - features))
    if normalize_by_count:
        counts = torch.bincount(targets, minlength=centers.shape[0]).to(centers)
        delta = delta / (1.0 + counts)[:, None]
    if rule == "printed":
        delta = -delta
    return centers - center_lr * delta


class WeightedClusterLoss(nn.Module):
    """Module twin of :func:`weighted_cluster_loss`; ``class_weights`` is a buffer and
    the centers are passed to ``forward`` (the loss setting owns them).
    """

    def __init__(self, class_weights: Sequence[float] | torch.Tensor, alpha: float = 1.0,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.alpha = _check_alpha(alpha)
        self.reduction = check_reduction(reduction, WEIGHTED_REDUCTIONS)
        weights = as_positive_vector(class_weights, "class_weights")
        self.register_buffer("class_weights", weights.to(torch.get_default_dtype()))

    def forward(self, features: torch.Tensor, targets: torch.Tensor,
                centers: torch.Tensor) -> torch.Tensor:
        return weighted_cluster_loss(features, targets, centers, self.class_weights,
                                     self.alpha, self.reduction)
