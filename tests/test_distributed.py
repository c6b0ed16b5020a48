"""Training under ``torchrun`` with DistributedDataParallel, on CPU with the gloo backend.

Three levels:

* the helpers of ``fer_utils.training.distributed`` in one process (identities) and in
  two gloo processes (gathering unequal lengths, errors raised on every rank);
* ``train_one_epoch`` in two processes against one process, on a model without
  BatchNorm: the global batch's gradient, the logged loss and the center update are the
  1-process ones up to float summation order, with unequal shards (a batch of 7 splits
  4/3) and with ``reduction="sum"`` and autograd-learned centers; with BatchNorm both
  ranks still hold the same model;
* (slow) a tiny synthetic run trained by 2 torchrun processes against the same run in 1
  process. See :func:`test_two_process_metrics_match_one_process_run` for the tolerances.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from tiny_runs import tiny_overrides
from fer_utils.config import load_config
from fer_utils.data import Split
from fer_utils.losses import build_loss
from fer_utils.training import Trainer
from fer_utils.training.distributed import (SINGLE, DistInfo, all_gather_cat, all_reduce_sum,
                                            barrier, broadcast_object, init_from_env, on_main,
                                            shard, wrap_ddp)
from fer_utils.training.averaging import WeightAverage
from fer_utils.training.loop import DeviceData, train_one_epoch

ROOT = Path(__file__).resolve().parents[1]
WORLD = 2
CPU = torch.device("cpu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- one process

def test_helpers_are_identities_in_one_process():
    x = torch.arange(12.0).view(6, 2)
    assert torch.equal(shard(x, SINGLE), x)
    assert all_gather_cat(x, SINGLE) is x
    assert all_reduce_sum(x, SINGLE) is x and torch.equal(x, torch.arange(12.0).view(6, 2))
    assert broadcast_object({"a": 1}, SINGLE) == {"a": 1}
    assert on_main(lambda: 5, SINGLE) == 5
    barrier(SINGLE)
    assert wrap_ddp(nn.Linear(2, 2), CPU, SINGLE).__class__ is nn.Linear
    assert init_from_env(CPU) == SINGLE  # no WORLD_SIZE: no process group


@pytest.mark.parametrize("n", [0, 1, 5, 7, 32, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_tensor_split_in_rank_order(n, world):
    batch = torch.arange(n)
    shards = [shard(batch, DistInfo(rank, world)) for rank in range(world)]
    for got, expected in zip(shards, batch.tensor_split(world)):
        assert torch.equal(got, expected)
    assert torch.equal(torch.cat(shards), batch)


# --------------------------------------------------------------------------- two gloo processes

def _join(rank: int, port: int) -> DistInfo:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    torch.set_num_threads(1)
    return init_from_env(CPU)  # picks up the group initialised here


def _collectives(info: DistInfo) -> dict:
    rank = info.rank
    out = {"info": info}
    # unequal lengths, both ways round, an empty shard, and integer labels
    for name, lengths in {"long_first": (3, 1), "empty_first": (0, 2)}.items():
        mine = torch.arange(lengths[rank] * 2, dtype=torch.float32).view(-1, 2) + 100 * rank
        out[name] = all_gather_cat(mine, info)
    out["labels"] = all_gather_cat(torch.full((rank + 1,), rank), info)
    out["sum"] = all_reduce_sum(torch.tensor([rank + 1.0]), info)
    out["broadcast"] = broadcast_object({"rank": rank}, info)

    def fail_on_main():
        raise ValueError(f"raised on rank {rank}")
    try:
        on_main(fail_on_main, info)
    except ValueError as exc:
        out["error"] = str(exc)
    return out


class TinyNet(nn.Module):
    """Returns ``(logits, embedding)`` like FERModel; BatchNorm optional."""

    def __init__(self, batchnorm: bool, classes: int = 4, dim: int = 8):
        super().__init__()
        layers = [nn.Flatten(), nn.Linear(64, dim)] + ([nn.BatchNorm1d(dim)] if batchnorm else [])
        self.embed = nn.Sequential(*layers)
        self.classifier = nn.Linear(dim, classes)

    def forward(self, x):
        embedding = self.embed(x)
        return self.classifier(embedding), embedding


#: (loss, reduction, loss params, BatchNorm in the model)
SETTINGS = {
    "wc_mean": ("weighted_cluster+weighted_softmax", "mean", {}, False),
    "wc_sum_autograd": ("weighted_cluster+weighted_softmax", "sum", {"center_update": "autograd"},
                        False),
    "center_batchnorm": ("center+softmax", "mean", {}, True),
    # weighted_mean divides by the batch's class-weight sum, which the shards split unevenly
    "ws_weighted_mean": ("weighted_softmax", "weighted_mean", {}, False),
    "wc_weighted_mean": ("weighted_cluster+weighted_softmax", "weighted_mean", {}, False),
    "center_ws_weighted_mean": ("center+weighted_softmax", "weighted_mean", {}, False),
    # mixup blends the global batch before the ranks take their shards
    "ws_weighted_mean_mixup": ("weighted_softmax", "weighted_mean", {}, False),
    # distillation: each rank takes its shard's teacher probabilities
    "softmax_mean_distill": ("softmax", "mean", {}, False),
}
#: data.mixup of the settings that use it
MIXUP = {"ws_weighted_mean_mixup": 0.4}


def _tiny_training(setting: str, info: DistInfo, epochs: int = 2) -> dict:
    """Two epochs of ``train_one_epoch`` on 32 random 8x8 images in batches of 7
    (batches 7, 7, 7, 7, 4: shards 4/3 and 2/2 on two ranks), augmentation on."""
    loss, reduction, params, batchnorm = SETTINGS[setting]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(32, 1, 8, 8), dtype=np.uint8)
    labels = np.array([0] * 14 + [1] * 10 + [2] * 5 + [3] * 3)
    torch.manual_seed(0)
    model = TinyNet(batchnorm)
    criterion = build_loss(loss, class_counts=np.bincount(labels).tolist(), num_classes=4,
                           embedding_dim=8, reduction=reduction, **params)
    optimizer = torch.optim.SGD([*model.parameters(), *criterion.parameters()], lr=0.05,
                                momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    cfg = load_config(None, ["batch_size=7", "data.in_chans=1", f"data.mixup={MIXUP.get(setting, 0.0)}"])
    soft = None
    if setting == "softmax_mean_distill":  # fixed teacher probabilities (weight 0.5, the default)
        soft = torch.softmax(torch.as_tensor(rng.normal(size=(32, 4)), dtype=torch.float32), 1).numpy()
    data = DeviceData(Split(images, labels), CPU, soft)
    train_model = wrap_ddp(model, CPU, info)
    ema = WeightAverage(model, 0.9)  # follows the model; changes nothing of its training
    logs = [train_one_epoch(train_model, criterion, optimizer, scheduler, data, cfg, CPU,
                            torch.Generator().manual_seed(epoch), "tiny", False, info, ema=ema)
            for epoch in range(epochs)]
    return {"logs": logs, "model": model.state_dict(), "criterion": criterion.state_dict(),
            "ema": ema.model.state_dict()}


def _worker(rank: int, port: int, out_dir: Path) -> None:
    info = _join(rank, port)
    result = {"collectives": _collectives(info),
              **{name: _tiny_training(name, info) for name in SETTINGS}}
    torch.save(result, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """What each of two spawned gloo processes computed, by rank."""
    out = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.slow  # spawning two processes that import torch takes ~10 s
def test_all_gather_cat_concatenates_unequal_lengths_in_rank_order(two_ranks):
    for rank, result in enumerate(two_ranks):
        got = result["collectives"]
        assert got["info"] == DistInfo(rank, WORLD, rank)
        assert torch.equal(got["long_first"], torch.tensor(
            [[0.0, 1], [2, 3], [4, 5], [100, 101]]))
        assert torch.equal(got["empty_first"], torch.tensor([[100.0, 101], [102, 103]]))
        assert torch.equal(got["labels"], torch.tensor([0, 1, 1]))
        assert got["sum"].item() == 3.0
        assert got["broadcast"] == {"rank": 0}


@pytest.mark.slow
def test_an_error_on_rank_0_is_raised_on_every_rank(two_ranks):
    assert [r["collectives"].get("error") for r in two_ranks] == ["raised on rank 0"] * WORLD


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["wc_mean", "wc_sum_autograd", "ws_weighted_mean",
                                     "wc_weighted_mean", "center_ws_weighted_mean",
                                     "ws_weighted_mean_mixup", "softmax_mean_distill"])
def test_two_process_epochs_equal_one_process_epochs_without_batchnorm(two_ranks, setting):
    """Same global batches, same augmentation, gradient of the global batch's loss, center
    update on the gathered batch: equal to one process up to summation order (1e-5)."""
    reference = _tiny_training(setting, SINGLE)
    for result in two_ranks:
        got = result[setting]
        for a, b in zip(got["logs"], reference["logs"]):
            assert a.keys() == b.keys()
            for key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
        for part in ("model", "criterion"):
            for name, tensor in reference[part].items():
                torch.testing.assert_close(got[part][name], tensor, rtol=1e-5, atol=1e-5)
    first = reference["logs"][0]["train_loss"]
    assert first != pytest.approx(reference["logs"][1]["train_loss"])  # it did train


@pytest.mark.slow
def test_ranks_hold_the_same_model_and_centers_with_batchnorm(two_ranks):
    """BatchNorm normalises each rank's shard by its own statistics; the running statistics
    are averaged once per epoch, so both ranks end with identical state."""
    rank0, rank1 = (r["center_batchnorm"] for r in two_ranks)
    for part in ("model", "criterion", "ema"):  # the weight average's statistics too
        for name, tensor in rank0[part].items():
            assert torch.equal(rank1[part][name], tensor), name
    assert rank0["criterion"]["centers"].abs().sum() > 0
    assert rank0["model"]["embed.2.running_mean"].abs().sum() > 0


# --------------------------------------------------------------------------- torchrun (slow)

WC_RUN = {"stages.0.loss": "weighted_cluster+weighted_softmax", "stages.0.lr": 0.05,
          "num_threads": 1}


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args]
    proc = subprocess.run(command, env=_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _sets(overrides: list[str]) -> list[str]:
    return [arg for s in overrides for arg in ("--set", s)]


@pytest.fixture(scope="module")
def wc_runs(tmp_path_factory):
    """The weighted-cluster tiny run trained by 1 process (the CLI) and by 2 torchrun
    processes running this file as their script, each rank with a run directory of its own."""
    tmp = tmp_path_factory.mktemp("ddp")
    one = subprocess.run([sys.executable, "-m", "fer_utils", "train", "--no-progress",
                          *_sets(tiny_overrides(tmp / "one", **WC_RUN))],
                         env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    _torchrun(__file__, str(tmp / "two"), *tiny_overrides(tmp / "unused", **WC_RUN))
    return {"one": next((tmp / "one").glob("*/metrics.json")).parent, "two": tmp / "two"}



@pytest.mark.slow
def test_only_rank_0_writes_the_run_directory(wc_runs):
    two = wc_runs["two"]
    for name in ("config.yaml", "run_info.json", "metrics.csv", "metrics.json", "predictions.npz",
                 "checkpoints/best.pt"):
        assert (two / "run-rank0" / name).exists(), name
    assert not (two / "run-rank1").exists()  # rank 1 reads its checkpoints through rank 0
    assert json.loads((two / "run-rank0" / "run_info.json").read_text())["world_size"] == WORLD


@pytest.mark.slow
def test_both_ranks_hold_the_same_centers_and_validate_the_same_model(wc_runs):
    rank0, rank1 = (torch.load(wc_runs["two"] / f"rank{r}.pt", weights_only=False)
                    for r in range(WORLD))
    assert rank0["centers"].abs().sum() > 0
    assert torch.equal(rank0["centers"], rank1["centers"])
    # validation metrics are computed by each rank's own model: equal only if the models are
    assert rank0["rows"] == rank1["rows"]


@pytest.mark.slow
def test_two_process_metrics_match_one_process_run(wc_runs):
    """2 processes vs 1 on the tiny run (320 synthetic 32 px faces, ResNet-18, 2 epochs).

    Not bit-equal: under DDP BatchNorm normalises each 16-image shard by its own
    statistics instead of the 32-image batch's, and dropout masks differ. Measured
    (seed 0): train loss 0.6262 / 0.3287 (1 process) vs 0.6124 / 0.3274 (2 processes),
    i.e. 2.2% and 0.4% apart; val loss 0.2673 vs 0.2672 at the last epoch; test accuracy
    0.135 vs 0.125 (one image of 96). The tiny run stays near chance accuracy (1/8), where
    an accuracy tolerance would pass almost anything, so the check is on the losses: train
    and val loss within 5% relative (the exact equality without BatchNorm is checked above).
    """
    one = pd.read_csv(wc_runs["one"] / "metrics.csv")
    two = pd.read_csv(wc_runs["two"] / "run-rank0" / "metrics.csv")
    assert list(one["epoch"]) == list(two["epoch"]) == [0, 1]
    for column in ("train_loss", "train_weighted_softmax", "val_loss"):
        np.testing.assert_allclose(two[column], one[column], rtol=0.05, err_msg=column)
    m_one, m_two = (json.loads((d / "metrics.json").read_text())
                    for d in (wc_runs["one"], wc_runs["two"] / "run-rank0"))
    assert m_two["test"]["n"] == m_one["test"]["n"]  # rank 0 tested the whole split


@pytest.mark.slow
def test_torchrun_cli_trains_once_and_reruns_as_a_no_op(tmp_path):
    """``torchrun -m fer_utils train`` (center+softmax, 1 epoch): one run directory,
    written by rank 0; a second launch finds it finished on every rank."""
    sets = _sets(tiny_overrides(tmp_path / "runs", **{"stages.0.loss": "center+softmax",
                                                      "stages.0.epochs": 1, "num_threads": 1}))
    _torchrun("-m", "fer_utils", "train", "--no-progress", *sets)
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.json").exists()
    assert json.loads((runs[0] / "run_info.json").read_text())["world_size"] == WORLD
    again = _torchrun("-m", "fer_utils", "train", "--no-progress", *sets)
    assert again.stdout.count("already finished") == 1  # rank 0 decides and says it once
    assert again.stdout.count(str(runs[0])) >= WORLD  # every rank returns the same directory


# --------------------------------------------------------------------------- torchrun worker

def _train_this_rank(out_dir: Path, overrides: list[str]) -> None:
    """A torchrun worker: train the tiny run in a run directory of this rank's own, then
    record this rank's centers and per-epoch rows (validation included)."""
    cfg = load_config(None, overrides)
    rank = int(os.environ["RANK"])
    trainer = Trainer(cfg, out_dir / f"run-rank{rank}", progress=False)
    trainer.run()
    rows = [{k: v for k, v in row.items() if k not in ("epoch_time_s", "elapsed_s")}
            for row in trainer.rows]
    torch.save({"centers": trainer.criterion.centers, "rows": rows}, out_dir / f"rank{rank}.pt")


if __name__ == "__main__":
    _train_this_rank(Path(sys.argv[1]), sys.argv[2:])
