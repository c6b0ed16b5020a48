"""The interface every loss *setting* offers to the training loop.

A loss setting bundles what one row of the papers' tables trains with: a
classification loss on the logits, optionally a feature loss on the embedding
(center, weighted-cluster, island) with its class centers, and the hooks the
loop calls around optimizer steps.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import nn

Reduction = Literal["sum", "mean"]
REDUCTIONS = ("sum", "mean")
#: Reductions of class-weighted losses: ``weighted_mean`` divides by ``sum_i W_{y_i}``,
#: the convention of ``nn.CrossEntropyLoss(weight=W)``.
WEIGHTED_REDUCTIONS = ("sum", "mean", "weighted_mean")


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    """Fail early (in ``__init__``) rather than at the first forward pass."""
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def reduce_loss(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Sum (as the papers print) or mean over the batch (sum / m)."""
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


#: Set by the training loop while a rank computes the loss of its shard of a global batch
#: (DistributedDataParallel): (shard size, global batch size, sum over ranks).
_SHARD: contextvars.ContextVar = contextvars.ContextVar("loss_shard", default=None)


@contextlib.contextmanager
def shard_of_global_batch(n_shard: int, n_batch: int,
                          global_sum: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Losses computed inside are one rank's part of a global batch of ``n_batch`` samples.

    The loop weights each rank's loss by ``n_shard / n_batch`` (exact for ``sum`` and
    ``mean``). A ``weighted_mean`` divides by the sum of the weights, which the shards
    split unevenly, so inside this context it divides by the *global* sum (``global_sum``
    of the shard's, an all-reduce) and undoes the shard-size weight: summed over ranks it
    is then exactly the one-process loss of the whole batch.
    """
    token = _SHARD.set((n_shard, n_batch, global_sum))
    try:
        yield
    finally:
        _SHARD.reset(token)


def reduce_weighted_loss(per_sample: torch.Tensor, weights: torch.Tensor,
                         reduction: str) -> torch.Tensor:
    """Like :func:`reduce_loss`, plus ``weighted_mean`` = sum / sum of the per-sample weights
    (of the global batch under :func:`shard_of_global_batch`)."""
    if reduction == "weighted_mean":
        shard = _SHARD.get()
        if shard is None:
            return per_sample.sum() / weights.sum()
        n_shard, n_batch, global_sum = shard
        total_weight = global_sum(weights.sum().detach().reshape(1)).reshape(())
        return per_sample.sum() / total_weight * (n_batch / n_shard)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {WEIGHTED_REDUCTIONS}, got {reduction!r}")
    return reduce_loss(per_sample, reduction)


class LossSetting(nn.Module):
    """Base class of the registry entries in ``fer_utils.losses.LOSSES``.

    Subclasses implement ``forward(logits, embedding, targets)`` returning
    ``(total_loss, parts)`` where ``parts`` maps component names (e.g.
    ``"softmax"``, ``"center"``) to detached scalar tensors for logging.
    """

    #: True when the setting needs the model's embedding (head ``w``).
    needs_embedding: bool = False

    def forward(self, logits: torch.Tensor, embedding: torch.Tensor | None,
                targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    @torch.no_grad()
    def after_step(self, embedding: torch.Tensor | None, targets: torch.Tensor) -> None:
        """Manual (non-autograd) updates after each optimizer step, e.g. class centers."""

    def on_epoch_start(self, epoch: int) -> None:
        """Epoch-dependent schedules, e.g. LDAM's deferred re-weighting (0-based epoch)."""

    def describe(self) -> dict:
        """Hyper-parameters to record in the run directory."""
        return {}
