"""Island loss (Cai et al. 2018), a comparator: center loss plus pairwise center cosines."""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_features_centers
from .base import REDUCTIONS, check_reduction
from .center import center_loss, wen_center_update

#: Centers shorter than this have no direction: their cosines count as 0, with no gradient.
_NORM_EPS = 1e-8


def _check_lambda1(lambda1: float) -> float:
    if not lambda1 >= 0:
        raise ValueError(f"lambda1 must be >= 0, got {lambda1}")
    return float(lambda1)


def island_pair_term(centers: torch.Tensor) -> torch.Tensor:
    r""":math:`I = \sum_{j} \sum_{k \ne j} (\cos(c_j, c_k) + 1)` over ordered pairs, a scalar.

    A zero center (the usual initial state) has no direction; its cosines are taken
    as 0 with zero gradient instead of the 1/eps blow-up of a clamped norm.
    """
    norms = centers.norm(dim=1, keepdim=True)
    has_dir = norms > _NORM_EPS
    units = torch.where(has_dir, centers / torch.where(has_dir, norms, torch.ones_like(norms)),
                        torch.zeros_like(centers))
    cos = units @ units.T
    off_diag = ~torch.eye(len(centers), dtype=torch.bool, device=centers.device)
    return (cos + 1.0)[off_diag].sum()


def island_loss(features: torch.Tensor, targets: torch.Tensor, centers: torch.Tensor,
                lambda1: float = 10.0, reduction: str = "mean") -> torch.Tensor:
    r"""Island loss: center loss plus a penalty on similar center directions.

    .. math::
        L_{IL} = \frac12 \sum_i \lVert x_i - c_{y_i} \rVert_2^2
                 + \lambda_1 \sum_j \sum_{k \ne j} \left(\frac{c_k \cdot c_j}
                   {\lVert c_k \rVert_2 \lVert c_j \rVert_2} + 1\right)

    Cai et al., "Island Loss for Learning Discriminative Features in Facial Expression
    Recognition", FG 2018. ``reduction`` applies to the per-sample center term only;
    the pair term is one per batch, so ``sum`` is not m times ``mean`` here.

    Args:
        features: deep features, shape ``(m, d)``.
        targets: class indices, shape ``(m,)``.
        centers: class centers, shape ``(K, d)``.
        lambda1: weight of the pair term (10 in Cai et al.).
        reduction: ``"sum"`` or ``"mean"`` of the center term.

    Returns:
        Scalar loss.

    Example:
        >>> c = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # opposite: pair term 0
        >>> island_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), c)
        tensor(0.5000)
    """
    check_features_centers(features, targets, centers)
    lambda1 = _check_lambda1(lambda1)
    return center_loss(features, targets, centers, reduction) + lambda1 * island_pair_term(centers)


def island_center_update(centers: torch.Tensor, features: torch.Tensor, targets: torch.Tensor,
                         lambda1: float = 10.0, center_lr: float = 0.5) -> torch.Tensor:
    r"""Manual center step of the island loss; returns the new centers.

    .. math::
        \Delta c_j = \frac{\sum_i \delta(y_i=j)(c_j - x_i)}{1 + n_j}
            + \frac{\lambda_1}{K - 1} \sum_{k \ne j} \frac{\partial \cos(c_j, c_k)}{\partial c_j},
        \qquad c_j \leftarrow c_j - \text{center\_lr}\, \Delta c_j

    Wen et al.'s count-normalised pull plus the cosine gradient scaled by
    :math:`\lambda_1/(K-1)`, the form of Cai et al.'s center update as we read it
    (it equals :math:`\lambda_1 / (2(K-1))` times the gradient of :func:`island_pair_term`).
    Unlike the pull, the push moves every center, seen in the batch or not.

    Args:
        centers: shape ``(K, d)``, K >= 2.
        features: shape ``(m, d)``.
        targets: shape ``(m,)``.
        lambda1: weight of the pair term.
        center_lr: step size (Wen et al.'s alpha).

    Returns:
        Updated centers, shape ``(K, d)``.
    """
    lambda1 = _check_lambda1(lambda1)
    if len(centers) < 2:
        raise ValueError("the island term needs at least 2 classes")
    pulled = wen_center_update(centers, features, targets, center_lr)
    with torch.enable_grad():  # after_step runs under no_grad
        c = centers.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(island_pair_term(c), c)
    # grad counts each unordered pair twice (ordered sum, symmetric cosine).
    return pulled - center_lr * lambda1 / (2 * (len(centers) - 1)) * grad


class IslandLoss(nn.Module):
    """Module twin of :func:`island_loss`; the centers are passed to ``forward``."""

    def __init__(self, lambda1: float = 10.0, reduction: str = "mean") -> None:
        super().__init__()
        self.lambda1 = _check_lambda1(lambda1)
        self.reduction = check_reduction(reduction, REDUCTIONS)

    def forward(self, features: torch.Tensor, targets: torch.Tensor,
                centers: torch.Tensor) -> torch.Tensor:
        return island_loss(features, targets, centers, self.lambda1, self.reduction)
