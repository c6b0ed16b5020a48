"""Focal loss (paper F, Eq. 3; Lin et al. 2017)."""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_class_vector
from .base import REDUCTIONS, check_reduction, reduce_loss
from .softmax import true_class_log_prob

Alpha = float | Sequence[float] | torch.Tensor | None


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not (gamma >= 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma}")
    return gamma


def _modulating_factor(log_pt: torch.Tensor, gamma: float) -> torch.Tensor:
    """:math:`(1 - p_t)^\\gamma` with finite values and gradients everywhere.

    ``1 - p_t`` as ``-expm1(log p_t)`` keeps digits when p_t ~ 1. Where it is exactly 0
    (saturated logits) ``pow`` would give a 0 * inf = NaN gradient for gamma < 1, so
    those entries take the value 0 through a ``where`` whose other branch is safe.
    gamma = 0 returns ones so that the loss is exactly cross-entropy (0 ** 0 = 1).
    """
    if gamma == 0:
        return torch.ones_like(log_pt)
    one_minus = -torch.expm1(log_pt)
    positive = one_minus > 0
    safe = torch.where(positive, one_minus, torch.ones_like(one_minus))
    return torch.where(positive, safe.pow(gamma), torch.zeros_like(safe))


def _alpha_t(alpha: Alpha, targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
    """alpha None -> None (no factor); scalar -> itself; vector of length K -> alpha[y]."""
    if alpha is None:
        return None
    alpha = torch.as_tensor(alpha, dtype=logits.dtype, device=logits.device)
    if alpha.dim() == 0:
        return alpha
    check_class_vector(alpha, logits.shape[1], "alpha")
    return alpha[targets.long()]


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
               alpha: Alpha = None, reduction: str = "mean") -> torch.Tensor:
    r"""Multi-class focal loss.

    .. math:: L = -\sum_{i=1}^m \alpha_{t,i} (1 - p_{i,t})^\gamma \log p_{i,t}

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017; paper F, Eq. 3.
    ``alpha`` is ``None`` (1), a scalar (as printed in paper F) or a per-class vector
    (:math:`\alpha_t = \alpha[y]`, the usual imbalance reading; class 0 is not treated
    as background). ``gamma = 0`` gives exactly ``alpha`` times cross-entropy, so paper
    F's CK+ setting (alpha = 0.25, gamma = 0) is 0.25 * CE, and alpha = 0 is identically 0.
    ``mean`` divides by m (not by m * K as kornia does).

    Args:
        logits: unnormalised scores, shape ``(m, K)``.
        targets: class indices, shape ``(m,)``.
        gamma: focusing parameter, >= 0.
        alpha: ``None``, a scalar, or a tensor/sequence of shape ``(K,)``.
        reduction: ``"sum"`` or ``"mean"``.

    Returns:
        Scalar loss.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> y = torch.tensor([0, 2])
        >>> round(focal_loss(logits, y, gamma=2.0).item(), 4)
        0.4838
        >>> from fer_utils.losses.softmax import cross_entropy_loss
        >>> bool(focal_loss(logits, y, gamma=0.0) == cross_entropy_loss(logits, y))
        True
    """
    gamma = _check_gamma(gamma)
    check_reduction(reduction)
    log_pt = true_class_log_prob(logits, targets)
    per_sample = -_modulating_factor(log_pt, gamma) * log_pt
    alpha_t = _alpha_t(alpha, targets, logits)
    if alpha_t is not None:
        per_sample = alpha_t * per_sample
    return reduce_loss(per_sample, reduction)


def check_focal_alpha(alpha: Alpha) -> torch.Tensor | None:
    """Validate alpha (>= 0, scalar or 1-D); warn when it makes the loss identically zero."""
    if alpha is None:
        return None
    alpha = torch.as_tensor(alpha, dtype=torch.get_default_dtype()).detach().clone()
    if alpha.dim() > 1 or not torch.all(torch.isfinite(alpha) & (alpha >= 0)):
        raise ValueError("alpha must be None, a scalar or a (K,) vector of values >= 0, "
                         f"got {alpha}")
    if torch.all(alpha == 0):
        warnings.warn("focal alpha = 0 makes the loss identically zero (no gradient): paper F's "
                      "printed Oulu-CASIA setting trains nothing if taken literally",
                      stacklevel=3)
    return alpha


class FocalLoss(nn.Module):
    """Module twin of :func:`focal_loss`; a tensor ``alpha`` is stored as a buffer.

    Example:
        >>> from fer_utils.losses.softmax import cross_entropy_loss
        >>> loss = FocalLoss(gamma=0.0, alpha=0.25)
        >>> logits, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
        >>> torch.allclose(loss(logits, y), 0.25 * cross_entropy_loss(logits, y))
        True
    """

    def __init__(self, gamma: float = 2.0, alpha: Alpha = None, reduction: str = "mean") -> None:
        super().__init__()
        self.gamma = _check_gamma(gamma)
        self.reduction = check_reduction(reduction, REDUCTIONS)
        self.register_buffer("alpha", check_focal_alpha(alpha))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, targets, self.gamma, self.alpha, self.reduction)
