"""The weight average (EMA, ``StageConfig.ema``): the recursion against one written out by
hand, and a run that validates, selects and saves the average while the live model trains."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from tiny_runs import tiny_overrides
from fer_utils.config import load_config
from fer_utils.training import loop, train_run
from fer_utils.training.averaging import WeightAverage
from fer_utils.training.evaluate import evaluate_run


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))


def test_the_average_follows_the_recursion_written_out_in_float64():
    net = _net()
    ema = WeightAverage(net, decay=0.9)
    expected = {k: v.double().clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for t in range(25):  # inside the decay's ramp ((1 + t) / (10 + t) < 0.9 until t = 80)
        net.train()
        opt.zero_grad()
        net(torch.randn(8, 5)).square().mean().backward()  # also moves the batch-norm statistics
        opt.step()
        ema.update()
        d = min(0.9, (1 + t) / (10 + t))
        for k, v in net.state_dict().items():
            expected[k] = v.double().clone() if not v.is_floating_point() else d * expected[k] + (1 - d) * v.double()
    got = ema.model.state_dict()
    for k, v in expected.items():
        if got[k].is_floating_point():
            torch.testing.assert_close(got[k].double(), v, atol=1e-6, rtol=0, msg=k)
        else:  # batch norm's step counter is copied
            assert int(got[k]) == int(v) == 25
    # the live model is untouched by averaging, and differs from its average
    assert not torch.equal(got["0.weight"], net.state_dict()["0.weight"])
    assert all(not p.requires_grad for p in ema.model.parameters())


def test_the_decay_reaches_its_ceiling_and_a_state_round_trips():
    ema = WeightAverage(_net(), decay=0.5)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    for _ in range(20):
        ema.update()
    assert ema.current_decay() == 0.5
    ema.model[0].weight.data.add_(1.0)  # an average that differs from a fresh copy
    other = WeightAverage(_net(), decay=0.5)
    other.load_state_dict(copy.deepcopy(ema.state_dict()))
    assert other.updates == 20
    for k, v in ema.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="ema decay"):
        WeightAverage(_net(), decay=1.0)


@pytest.mark.parametrize("bad", ["1.0", "-0.1"])
def test_a_decay_outside_0_1_is_refused_before_any_data_is_read(bad):
    with pytest.raises(ValueError, match="ema must be a decay"):
        load_config(None, [f"stages.0.ema={bad}"])


@pytest.mark.slow
def test_an_ema_run_validates_tests_and_saves_the_average_not_the_live_model(tmp_path, monkeypatch):
    saved = []
    real_save = loop.Trainer._save_epoch

    def record(self, s, epoch, criterion, optimizer, scheduler, best, improved, ema=None):
        saved.append({"live": copy.deepcopy(self.model.state_dict()),
                      "average": copy.deepcopy(ema.model.state_dict()), "epoch": epoch})
        return real_save(self, s, epoch, criterion, optimizer, scheduler, best, improved, ema)
    monkeypatch.setattr(loop.Trainer, "_save_epoch", record)
    cfg = load_config(None, tiny_overrides(tmp_path / "runs", **{"stages.0.ema": 0.9,
                                                                 "stages.0.epochs": 2}))
    run = train_run(cfg, progress=False)
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    at_best = next(r for r in saved if r["epoch"] == best["epoch"])
    for k, v in best["model"].items():
        assert torch.equal(v, at_best["average"][k]), k
    assert any(not torch.equal(best["model"][k], at_best["live"][k]) for k in best["model"])
    # the validation accuracy that selected it is the saved model's
    import pandas as pd
    rows = pd.read_csv(run / "metrics.csv")
    val = evaluate_run(run, split="val", bootstrap=0)
    assert val["accuracy"] == pytest.approx(rows.loc[best["epoch"], "val_accuracy"], abs=1e-9)
    published = np.load(run / "predictions.npz")["y_prob"]
    evaluate_run(run, bootstrap=0, save_predictions=tmp_path / "again.npz")
    np.testing.assert_array_equal(np.load(tmp_path / "again.npz")["y_prob"], published)


@pytest.mark.slow
def test_averaging_only_reads_the_weights_the_live_model_trains_as_without_it(tmp_path):
    import pandas as pd
    plain = train_run(load_config(None, tiny_overrides(tmp_path / "plain")), progress=False)
    averaged = train_run(load_config(None, tiny_overrides(tmp_path / "ema", **{"stages.0.ema": 0.9})),
                         progress=False)
    a, b = pd.read_csv(plain / "metrics.csv"), pd.read_csv(averaged / "metrics.csv")
    assert a["train_loss"].tolist() == b["train_loss"].tolist()
    assert a["val_loss"].tolist() != b["val_loss"].tolist()  # what was validated did change
