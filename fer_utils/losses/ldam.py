"""LDAM loss (Cao et al. 2019), a comparator; deferred re-weighting lives in the setting."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import as_positive_vector, check_class_vector, check_logits_targets
from .base import WEIGHTED_REDUCTIONS, check_reduction
from .softmax import weighted_softmax_loss


def ldam_margins(class_counts: Sequence[int] | torch.Tensor,
                 max_margin: float = 0.5) -> torch.Tensor:
    r"""Label-distribution-aware margins :math:`\Delta_y = C / n_y^{1/4}`, max = ``max_margin``.

    Smaller classes get larger margins; C is set so that the smallest class gets
    ``max_margin`` (Cao et al. 2019).


    Example:
        >>> ldam_margins([10000, 1], max_margin=0.5)
        tensor([0.0500, 0.5000])
    """
    if not max_margin > 0:
        raise ValueError(f"max_margin must be > 0, got {max_margin}")
    m = as_positive_vector(class_counts, "class_counts").pow(-0.25)
    return (m * (max_margin / m.max())).to(torch.get_default_dtype())


def _ldam_from_margins(logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor,
                       scale: float, class_weights: torch.Tensor | None,
                       reduction: str) -> torch.Tensor:
    targets = check_logits_targets(logits, targets)
    check_class_vector(margins, logits.shape[1], "margins")
    one_hot = F.one_hot(targets, logits.shape[1]).to(logits)
    adjusted = scale * (logits - one_hot * margins.to(logits)[targets, None])
    if class_weights is None:
        class_weights = torch.ones_like(margins)
    return weighted_softmax_loss(adjusted, targets, class_weights, reduction)


def ldam_loss(logits: torch.Tensor, targets: torch.Tensor,
              class_counts: Sequence[int] | torch.Tensor, max_margin: float = 0.5,
              scale: float = 30.0, class_weights: torch.Tensor | None = None,
              reduction: str = "mean") -> torch.Tensor:
    r"""Label-distribution-aware margin loss.

    .. math::
        L = -\sum_i W_{y_i} \log \frac{e^{s(z_{i,y_i} - \Delta_{y_i})}}
            {e^{s(z_{i,y_i} - \Delta_{y_i})} + \sum_{k \ne y_i} e^{s z_{i,k}}},
        \qquad \Delta_y \propto n_y^{-1/4}, \ \max_y \Delta_y = \text{max\_margin}

    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin
    Loss", NeurIPS 2019. Their scale s = 30 assumes cosine logits (normalised features
    and weights, in [-1, 1]); with a plain linear head, s = 1 is the sensible choice.

    Args:
        logits: scores :math:`z`, shape ``(m, K)``.
        targets: class indices, shape ``(m,)``.
        class_counts: training-set class sizes, shape ``(K,)``.
        max_margin: the largest margin (that of the smallest class).
        scale: :math:`s`.
        class_weights: optional :math:`W`, shape ``(K,)`` (DRW uses class-balanced ones).
        reduction: ``"sum"``, ``"mean"`` or ``"weighted_mean"`` (Cao et al.'s code, which
            calls ``F.cross_entropy(weight=W)``).

    Returns:
        Scalar loss.

    Example:
        >>> logits, y = torch.zeros(2, 2), torch.tensor([0, 1])
        >>> round(ldam_loss(logits, y, [10000, 1], scale=1.0).item(), 4)
        0.8463
    """
    check_reduction(reduction, WEIGHTED_REDUCTIONS)
    margins = ldam_margins(class_counts, max_margin)
    return _ldam_from_margins(logits, targets, margins, scale, class_weights, reduction)


class LDAMLoss(nn.Module):
    """Module twin of :func:`ldam_loss`; ``margins`` and ``class_weights`` are buffers.

    ``class_weights`` defaults to ones; deferred re-weighting overwrites it in place.
    """

    def __init__(self, class_counts: Sequence[int] | torch.Tensor, max_margin: float = 0.5,
                 scale: float = 30.0, class_weights: Sequence[float] | torch.Tensor | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.reduction = check_reduction(reduction, WEIGHTED_REDUCTIONS)
        margins = ldam_margins(class_counts, max_margin)
        weights = torch.ones_like(margins) if class_weights is None else \
            as_positive_vector(class_weights, "class_weights").to(margins)
        check_class_vector(weights, len(margins), "class_weights")
        self.register_buffer("margins", margins)
        self.register_buffer("class_weights", weights)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return _ldam_from_margins(logits, targets, self.margins, self.scale,
                                  self.class_weights, self.reduction)
