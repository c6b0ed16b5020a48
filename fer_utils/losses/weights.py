"""Per-class weights computed from training-set class counts."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import as_positive_vector


def class_weights_from_counts(counts: Sequence[int] | torch.Tensor) -> torch.Tensor:
    r"""Inverse-frequency weights of the weighted-softmax / weighted-cluster losses.

    .. math:: W_y = N_{min} / N_y

    (paper W, Eq. 6). ``N_min`` is the actual smallest count: the paper's text names
    disgust, but contempt is the smallest class of its Table 3.

    Args:
        counts: training-set size of each class, shape ``(K,)``; all > 0.

    Returns:
        Weights of shape ``(K,)`` in the default float dtype; the smallest class gets 1.

    Raises:
        ValueError: if a count is zero, negative or not finite.

    Example:
        >>> class_weights_from_counts([10, 5, 20])
        tensor([0.5000, 1.0000, 0.2500])
    """
    n = as_positive_vector(counts, "class counts")
    return (n.min() / n).to(torch.get_default_dtype())


def class_balanced_weights(counts: Sequence[int] | torch.Tensor,
                           beta: float = 0.9999) -> torch.Tensor:
    r"""Class-balanced weights from the effective number of samples.

    .. math:: w_y = \frac{1 - \beta}{1 - \beta^{n_y}}, \quad \text{rescaled so } \sum_y w_y = K

    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019.
    ``beta = 0`` gives all-ones weights; ``beta -> 1`` tends to inverse frequency.

    Args:
        counts: training-set size of each class, shape ``(K,)``; all > 0.
        beta: in ``[0, 1)``.

    Returns:
        Weights of shape ``(K,)`` in the default float dtype, summing to ``K``.

    Example:
        >>> w = class_balanced_weights([100, 10], beta=0.9)
        >>> [round(v, 4) for v in w.tolist()], round(w.sum().item(), 4)
        ([0.7889, 1.2111], 2.0)
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    n = as_positive_vector(counts, "class counts")
    # 1 - beta**n as -expm1(n log beta): exact digits when beta is 0.9999 and n small.
    effective = -torch.expm1(n * torch.log(torch.tensor(beta, dtype=torch.float64))) \
        if beta > 0 else torch.ones_like(n)
    w = (1.0 - beta) / effective
    return (w * (len(n) / w.sum())).to(torch.get_default_dtype())
