"""Input validation shared by the losses: clear messages instead of broadcast or index errors."""
from __future__ import annotations

from collections.abc import Sequence

import torch


def check_logits_targets(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Check shapes ``(m, K)`` and ``(m,)``; return the targets as int64 for ``gather``."""
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (m, K), got {tuple(logits.shape)}")
    return _check_targets(targets, logits.shape[0])


def check_features_centers(features: torch.Tensor, targets: torch.Tensor,
                           centers: torch.Tensor) -> torch.Tensor:
    """Check shapes ``(m, d)``, ``(m,)`` and ``(K, d)``; return the targets as int64."""
    if features.dim() != 2 or centers.dim() != 2 or features.shape[1] != centers.shape[1]:
        raise ValueError("features must be (m, d) and centers (K, d) with the same d, got "
                         f"{tuple(features.shape)} and {tuple(centers.shape)}")
    return _check_targets(targets, features.shape[0])


def _check_targets(targets: torch.Tensor, m: int) -> torch.Tensor:
    if targets.shape != (m,):
        raise ValueError(f"targets must have shape ({m},), got {tuple(targets.shape)}")
    if targets.is_floating_point() or targets.is_complex():
        raise ValueError(f"targets must hold integer class indices, got {targets.dtype}")
    return targets.long()


def check_class_vector(values: torch.Tensor, num_classes: int, what: str) -> None:
    """A per-class vector (weights, priors, alpha) must have exactly K entries."""
    if values.shape != (num_classes,):
        raise ValueError(f"{what} must have shape ({num_classes},) to match the logits, "
                         f"got {tuple(values.shape)}")


def as_positive_vector(values: Sequence[float] | torch.Tensor, what: str) -> torch.Tensor:
    """Per-class counts, weights or priors as a float64 vector; all entries finite and > 0.

    Float64 because ``beta ** n`` (class-balanced weights) and ``n ** -1/4`` (LDAM)
    lose digits in float32 for counts in the hundreds of thousands.
    """
    vec = torch.as_tensor(values, dtype=torch.float64).detach().cpu()
    if vec.dim() != 1 or vec.numel() == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence, got shape {tuple(vec.shape)}")
    bad = [i for i, v in enumerate(vec.tolist()) if not (v > 0 and v < float("inf"))]
    if bad:
        raise ValueError(f"{what} must be finite and > 0 for every class; classes {bad} have "
                         f"{[vec[i].item() for i in bad]} (a class absent from the training "
                         "set cannot be weighted: drop it or fix the counts)")
    return vec
