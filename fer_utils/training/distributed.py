"""Multi-process training: one process per device, launched by ``torchrun``.

``torchrun --nproc_per_node N -m fer_utils train ...`` (or ``--nnodes``/``--rdzv-*`` for
several machines) sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`init_from_env`
joins the process group they describe. Every helper below takes the resulting
:class:`DistInfo`; with a world of one process each is an identity or a no-op, so the
single-process path is unchanged and pays nothing for it.
"""
from __future__ import annotations

import atexit
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the world of training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes the run directory."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE = DistInfo()


def init_from_env(device: torch.device | str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    Idempotent: a group that is already initialised (by an earlier call, or by the
    caller itself, e.g. under ``torch.multiprocessing.spawn``) is used as it is. The
    backend is NCCL for CUDA devices and gloo otherwise. Without ``WORLD_SIZE > 1``
    nothing is initialised and :data:`SINGLE` is returned.
    """
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return DistInfo(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_device(local_rank)  # before NCCL starts: one GPU per process
        dist.init_process_group("nccl", init_method="env://",
                                device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group("gloo", init_method="env://")
    atexit.register(_destroy_process_group)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def _destroy_process_group() -> None:
    # NCCL warns (and may hang at exit) when a process ends with its group still alive.
    if dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` when several processes share a
    machine's GPUs, ``device`` otherwise."""
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


# --------------------------------------------------------------------------- batches

def shard_slice(n: int, info: DistInfo) -> slice:
    """This rank's contiguous part of ``n`` items, as ``torch.tensor_split`` cuts them
    (the first ``n % world_size`` ranks get one item more)."""
    size, extra = divmod(n, info.world_size)
    start = info.rank * size + min(info.rank, extra)
    return slice(start, start + size + (info.rank < extra))


def shard(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous slice (along the first dimension) of a global batch."""
    return tensor[shard_slice(len(tensor), info)]


# --------------------------------------------------------------------------- collectives

def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over ranks, in place; returns it."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_cat(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along the first dimension, in rank order.

    The first dimension may differ between ranks: the lengths are exchanged first and
    every tensor is padded to the longest (``all_gather`` needs equal shapes on gloo
    and NCCL), then trimmed. No gradient flows through the result.
    """
    if not info.enabled:
        return tensor
    length = torch.tensor([tensor.shape[0]], device=tensor.device)
    lengths = [torch.empty_like(length) for _ in range(info.world_size)]
    dist.all_gather(lengths, length)
    sizes = [int(n) for n in lengths]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[:tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def average_gradients(params: Iterable[nn.Parameter], info: DistInfo) -> None:
    """Average the gradients of parameters that DistributedDataParallel does not own
    (e.g. autograd-learned class centers), as DDP does for the model's."""
    if not info.enabled:
        return
    for p in params:
        if p.grad is not None:
            all_reduce_sum(p.grad, info).div_(info.world_size)


@torch.no_grad()
def average_buffers(module: nn.Module, info: DistInfo, trained_as: nn.Module | None = None) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) of the modules
    that trained, so every rank holds the same model; each rank's statistics saw only its
    own shards. Modules in eval mode (frozen stages) never changed theirs: left as they are.
    ``trained_as``: the model whose modules' training flags decide, for a copy that is kept
    in eval mode but follows it (a weight average: ``training.averaging``).
    """
    if not info.enabled:
        return
    for m, flags in zip(module.modules(), (trained_as or module).modules()):
        if not flags.training:
            continue
        for buffer in m.buffers(recurse=False):
            if buffer.is_floating_point():
                all_reduce_sum(buffer, info).div_(info.world_size)


def barrier(info: DistInfo) -> None:
    """Wait for every rank, e.g. until rank 0's checkpoint files are complete."""
    if info.enabled:
        dist.barrier()


def broadcast_object(obj: T, info: DistInfo, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (pickled; other ranks may pass ``None``)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(fn: Callable[[], T], info: DistInfo) -> T:
    """Run ``fn`` on rank 0 alone and give every rank its result, or raise its exception
    on every rank: the other ranks neither race rank 0's file writes nor hang waiting for
    a rank that failed."""
    if not info.enabled:
        return fn()
    result: Any = None
    error: BaseException | None = None
    if info.is_main:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
            error = exc
    result, error = broadcast_object((result, error), info)
    if error is not None:
        raise error
    return result


def wrap_ddp(model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """``model`` in DistributedDataParallel for training (``model`` itself in one process).

    Buffers are not broadcast before every forward pass: BatchNorm uses batch statistics
    while training, and :func:`average_buffers` reconciles the running statistics once
    per epoch instead.
    """
    if not info.enabled:
        return model
    ddp = nn.parallel.DistributedDataParallel
    # Newer torch renames broadcast_buffers (deprecated) to forward_sync_buffers.
    params = inspect.signature(ddp.__init__).parameters
    no_sync = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    device_ids = [device.index] if device.type == "cuda" else None
    return ddp(model, device_ids=device_ids, **{no_sync: False})


__all__ = ["DistInfo", "SINGLE", "init_from_env", "local_device", "shard_slice", "shard",
           "all_reduce_sum", "all_gather_cat", "average_gradients", "average_buffers",
           "barrier", "broadcast_object", "on_main", "wrap_ddp"]
