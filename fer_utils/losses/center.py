"""Center loss and Wen et al.'s mini-batch center update (paper W, Eqs. 2-3)."""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_features_centers
from .base import REDUCTIONS, check_reduction, reduce_loss


def center_loss(features: torch.Tensor, targets: torch.Tensor, centers: torch.Tensor,
                reduction: str = "mean") -> torch.Tensor:
    r"""Center loss :math:`L_c = \frac12 \sum_{i=1}^m \lVert x_i - c_{y_i} \rVert_2^2`.

    Wen et al., "A Discriminative Feature Learning Approach for Deep Face Recognition",
    ECCV 2016; paper W, Eq. 2. Keeps the 1/2 (a popular port drops it). Pass
    ``centers.detach()`` when the centers are updated by :func:`wen_center_update`.

    Args:
        features: deep features :math:`x_i`, shape ``(m, d)``.
        targets: class indices, shape ``(m,)``.
        centers: class centers, shape ``(K, d)``.
        reduction: ``"sum"`` (as printed) or ``"mean"`` (sum / m).

    Returns:
        Scalar loss.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> center_loss(x, torch.tensor([0, 1]), torch.zeros(2, 2), reduction="sum")
        tensor(2.5000)
    """
    targets = check_features_centers(features, targets, centers)
    per_sample = 0.5 * (features - centers[targets]).pow(2).sum(dim=1)
    return reduce_loss(per_sample, check_reduction(reduction))


def wen_center_update(centers: torch.Tensor, features: torch.Tensor, targets: torch.Tensor,
                      center_lr: float = 0.5) -> torch.Tensor:
    r"""Wen et al.'s center update on one mini-batch; returns the new centers.

    .. math::
        \Delta c_j = \frac{\sum_i \delta(y_i = j)(c_j - x_i)}{1 + n_j}, \qquad
        c_j \leftarrow c_j - \text{center\_lr} \cdot \Delta c_j

    with :math:`n_j` the number of samples of class j in the batch; classes absent
    from the batch do not move. Call it under ``torch.no_grad()``.

    Args:
        centers: shape ``(K, d)``.
        features: shape ``(m, d)``.
        targets: shape ``(m,)``.
        center_lr: Wen et al.'s :math:`\alpha` (0.5 in paper W's center-loss rows).

    Returns:
        Updated centers, shape ``(K, d)``.

    Example:
        >>> wen_center_update(torch.zeros(2, 1), torch.tensor([[2.0], [4.0]]),
        ...                   torch.tensor([0, 0]), center_lr=1.0)
        tensor([[2.],
                [0.]])
    """
    targets = check_features_centers(features, targets, centers)
    counts = torch.bincount(targets, minlength=centers.shape[0]).to(centers)
    delta = torch.zeros_like(centers).index_add_(0, targets, centers[targets] - features)
    return centers - center_lr * delta / (1.0 + counts)[:, None]


class CenterLoss(nn.Module):
    """Module twin of :func:`center_loss`; the centers are passed to ``forward``
    because the loss setting owns (and updates) them.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, REDUCTIONS)

    def forward(self, features: torch.Tensor, targets: torch.Tensor,
                centers: torch.Tensor) -> torch.Tensor:
        return center_loss(features, targets, centers, self.reduction)
