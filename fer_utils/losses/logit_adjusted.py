"""Logit-adjusted cross-entropy and balanced softmax (comparators, not in papers W/F)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import as_positive_vector, check_class_vector
from .base import REDUCTIONS, check_reduction
from .softmax import cross_entropy_loss


def _adjusted_ce(logits: torch.Tensor, targets: torch.Tensor, log_prior: torch.Tensor,
                 tau: float, reduction: str) -> torch.Tensor:
    check_class_vector(log_prior, logits.shape[-1], "class priors")
    return cross_entropy_loss(logits + tau * log_prior.to(logits), targets, reduction)


def _log_prior(counts_or_priors: Sequence[float] | torch.Tensor, what: str) -> torch.Tensor:
    """Log of the normalised vector; normalising makes counts and priors interchangeable."""
    vec = as_positive_vector(counts_or_priors, what)
    return torch.log(vec / vec.sum()).to(torch.get_default_dtype())


def logit_adjusted_loss(logits: torch.Tensor, targets: torch.Tensor,
                        class_priors: Sequence[float] | torch.Tensor, tau: float = 1.0,
                        reduction: str = "mean") -> torch.Tensor:
    r"""Logit-adjusted softmax cross-entropy.

    .. math:: L = -\sum_i \log \frac{e^{z_{i,y_i} + \tau \log \pi_{y_i}}}
                                   {\sum_k e^{z_{i,k} + \tau \log \pi_k}}

    Menon et al., "Long-Tail Learning via Logit Adjustment", ICLR 2021. The adjustment
    applies during training only; predict with the raw logits.

    Args:
        logits: unnormalised scores, shape ``(m, K)``.
        targets: class indices, shape ``(m,)``.
        class_priors: training label frequencies :math:`\pi`, shape ``(K,)``; counts
            work too (they are normalised).
        tau: temperature of the adjustment; ``tau = 0`` is plain cross-entropy.
        reduction: ``"sum"`` or ``"mean"``.

    Returns:
        Scalar loss.

    Example:
        >>> logits, y = torch.zeros(1, 2), torch.tensor([1])
        >>> round(logit_adjusted_loss(logits, y, [0.8, 0.2]).item(), 4)  # -log 0.2
        1.6094
    """
    check_reduction(reduction)
    return _adjusted_ce(logits, targets, _log_prior(class_priors, "class_priors"), tau, reduction)


def balanced_softmax_loss(logits: torch.Tensor, targets: torch.Tensor,
                          class_counts: Sequence[int] | torch.Tensor,
                          reduction: str = "mean") -> torch.Tensor:
    r"""Balanced softmax: cross-entropy on :math:`z + \log n_y` (logit adjustment, tau = 1).

    Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020;
    Menon et al. 2021 with :math:`\tau = 1`.

    Args:
        logits: unnormalised scores, shape ``(m, K)``.
        targets: class indices, shape ``(m,)``.
        class_counts: training-set class sizes, shape ``(K,)``.
        reduction: ``"sum"`` or ``"mean"``.

    Returns:
        Scalar loss.

    Example:
        >>> logits, y = torch.zeros(1, 2), torch.tensor([1])
        >>> round(balanced_softmax_loss(logits, y, [80, 20]).item(), 4)
        1.6094
    """
    return logit_adjusted_loss(logits, targets, class_counts, 1.0, reduction)


class LogitAdjustedLoss(nn.Module):
    """Module twin of :func:`logit_adjusted_loss`; ``log_prior`` is a buffer."""

    def __init__(self, class_priors: Sequence[float] | torch.Tensor, tau: float = 1.0,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.tau = float(tau)
        self.reduction = check_reduction(reduction, REDUCTIONS)
        self.register_buffer("log_prior", _log_prior(class_priors, "class_priors"))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return _adjusted_ce(logits, targets, self.log_prior, self.tau, self.reduction)


class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """Module twin of :func:`balanced_softmax_loss` (a :class:`LogitAdjustedLoss` with tau = 1)."""

    def __init__(self, class_counts: Sequence[int] | torch.Tensor,
                 reduction: str = "mean") -> None:
        super().__init__(class_counts, tau=1.0, reduction=reduction)
