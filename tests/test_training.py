import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tiny_runs import tiny_overrides
from fer_utils.__main__ import main
from fer_utils.config import load_config
from fer_utils.training import NonFiniteLossError, Trainer, train_run
from fer_utils.training.evaluate import evaluate_run

pytestmark = pytest.mark.slow


def _train(tmp_path, **extra):
    cfg = load_config(None, tiny_overrides(tmp_path / "runs", **extra))
    return train_run(cfg, progress=False)


@pytest.fixture(scope="module")
def wc_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wc")
    return _train(tmp, **{"stages.0.loss": "weighted_cluster+weighted_softmax", "stages.0.lr": 0.05})


def test_run_directory_is_complete(wc_run):
    for name in ("config.yaml", "run_info.json", "metrics.csv", "metrics.json", "predictions.npz",
                 "checkpoints/best.pt"):
        assert (wc_run / name).exists(), name
    assert not (wc_run / "checkpoints" / "last.pt").exists()
    info = json.loads((wc_run / "run_info.json").read_text())
    assert info["seed"] == 0 and "torch" in info["versions"] and "sha" in info["git"]
    assert info["loss_reductions"] == ["mean"]
    cfg = yaml.safe_load((wc_run / "config.yaml").read_text())
    assert cfg["stages"][0]["loss"] == "weighted_cluster+weighted_softmax"


def test_training_loss_decreases_and_metrics_are_recorded(wc_run):
    rows = pd.read_csv(wc_run / "metrics.csv")
    assert list(rows["epoch"]) == [0, 1]
    assert rows["train_loss"].iloc[1] < rows["train_loss"].iloc[0]
    for col in ("val_loss", "val_accuracy", "val_f1", "train_weighted_softmax", "train_weighted_cluster", "lr"):
        assert col in rows
    m = json.loads((wc_run / "metrics.json").read_text())
    test = m["test"]
    for key in ("accuracy", "f1", "kappa", "alpha", "auc", "auc_pr"):
        lo, hi = test["ci"][key]
        assert lo <= test[key] <= hi
    assert m["loss_settings"][0]["center_update"] == "corrected"
    assert m["loss_settings"][0]["reduction"] == "mean"
    pred = np.load(wc_run / "predictions.npz")
    assert pred["y_prob"].shape == (96, 8) and pred["embedding"].shape == (96, 512)
    assert np.allclose(pred["y_prob"].sum(1), 1, atol=1e-4)
    # Which image, sequence and subject each row is (synthetic: each face its own sequence).
    assert len(set(pred["image_id"])) == 96 and np.array_equal(pred["sequence"], pred["image_id"])
    assert pred["subject"].dtype == np.int64 and len(pred["subject"]) == 96


def test_attach_test_groups_rederives_the_ids_a_run_saved(tmp_path, wc_run):
    from fer_utils.results import attach_test_groups
    import shutil
    run = tmp_path / wc_run.name
    shutil.copytree(wc_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    saved = dict(np.load(run / "predictions.npz"))
    np.savez(run / "predictions.npz", y_true=saved["y_true"], y_prob=saved["y_prob"])  # as published before
    assert attach_test_groups(run) == 1
    again = np.load(run / "predictions.npz")
    for key in ("image_id", "sequence", "subject"):
        assert np.array_equal(again[key], saved[key]), key
    assert attach_test_groups(run) == 0  # nothing left to add
    np.savez(run / "predictions.npz", y_true=np.roll(saved["y_true"], 1), y_prob=saved["y_prob"])
    with pytest.raises(ValueError, match="do not match the test split"):
        attach_test_groups(run)


def test_centers_moved_during_training(wc_run):
    state = torch.load(wc_run / "checkpoints" / "best_stage0.pt", weights_only=False)
    assert state["criterion"]["centers"].abs().sum() > 0


def test_same_seed_gives_same_metrics(tmp_path, wc_run):
    again = _train(tmp_path, **{"stages.0.loss": "weighted_cluster+weighted_softmax", "stages.0.lr": 0.05})
    a = json.loads((wc_run / "metrics.json").read_text())
    b = json.loads((again / "metrics.json").read_text())
    assert a["test"] == b["test"]
    assert pd.read_csv(wc_run / "metrics.csv")["train_loss"].tolist() == \
        pd.read_csv(again / "metrics.csv")["train_loss"].tolist()


def test_finished_run_is_not_overwritten(wc_run, capsys):
    before = (wc_run / "metrics.json").read_text()
    cfg = load_config(wc_run / "config.yaml")
    assert train_run(cfg, progress=False) == wc_run
    assert "already finished" in capsys.readouterr().out
    assert (wc_run / "metrics.json").read_text() == before


def test_two_stage_run_starts_from_best_stage1_and_reinitialises_head(tmp_path):
    run = _train(tmp_path, **{"model.head": "f", "stages.0.epochs": 1,
                              "stages": "[{loss: softmax, epochs: 1}, {loss: focal, epochs: 1, "
                                        "reinit_head: true, loss_params: {gamma: 0.5}}]"})
    rows = pd.read_csv(run / "metrics.csv")
    assert rows["stage"].tolist() == [0, 1]
    m = json.loads((run / "metrics.json").read_text())
    assert m["losses"] == ["softmax", "focal"] and m["best_stage"] == 1
    assert m["loss_settings"][1]["gamma"] == 0.5
    assert m["stages"][0]["loss"] == "softmax" and "accuracy" in m["stages"][0]["test"]
    assert (run / "predictions_stage0.npz").exists() and (run / "predictions.npz").exists()
    # Rebuild stage 2's start: backbone = best stage-1 weights, last FC re-initialised.
    trainer = Trainer(load_config(run / "config.yaml"), run, progress=False)
    trainer.setup()
    trainer.start_stage(1)
    stage1 = torch.load(run / "checkpoints" / "best_stage0.pt", weights_only=False)["model"]
    now = trainer.model.state_dict()
    assert torch.equal(now["backbone.conv1.weight"], stage1["backbone.conv1.weight"])
    assert not torch.equal(now["classifier.weight"], stage1["classifier.weight"])
    assert now["classifier.weight"].std() < 2e-3  # N(0, 0.001^2) again


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    with pytest.raises(NonFiniteLossError, match="non-finite training loss"):
        _train(tmp_path, **{"stages.0.lr": 1e30})


def test_a_loss_turning_non_finite_in_a_later_epoch_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """Epoch 0 trains normally; the loss turns NaN in epoch 1: the run stops with the message,
    and epoch 0's checkpoint, best model and metrics row are what is left."""
    import fer_utils.training.loop as loop
    real = loop.global_batch_values
    calls = {"n": 0}
    steps = 320 * 9 // 10 // 32  # training images (10% held out for validation) / batch

    def nan_in_epoch_one(loss, parts, share, dist):
        calls["n"] += 1
        values = real(loss, parts, share, dist)
        return {**values, "loss": float("nan")} if calls["n"] > steps else values
    monkeypatch.setattr(loop, "global_batch_values", nan_in_epoch_one)
    with pytest.raises(NonFiniteLossError, match="epoch 2/3: non-finite training loss nan; the last good checkpoint is kept"):
        _train(tmp_path, **{"stages.0.epochs": 3})
    run = next((tmp_path / "runs").iterdir())
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert (last["stage"], last["epoch"]) == (0, 0)
    assert torch.load(run / "checkpoints" / "best_stage0.pt", weights_only=False)["epoch"] == 0
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [0]
    assert not (run / "metrics.json").exists()


def test_cli_train_and_evaluate(tmp_path, capsys, wc_run):
    assert main(["evaluate", str(wc_run), "--bootstrap", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = json.loads((wc_run / "metrics.json").read_text())["test"]
    assert out["split"] == "test" and out["accuracy"] == pytest.approx(expected["accuracy"])
    direct = evaluate_run(wc_run, split="val", bootstrap=0)
    assert direct["n"] > 0


def test_transfer_from_a_finished_run(tmp_path, wc_run):
    run = _train(tmp_path, **{"model.pretrained": str(wc_run), "stages.0.epochs": 1})
    info = json.loads((run / "run_info.json").read_text())
    assert info["pretrained"]["format"] == "run"
    source = torch.load(wc_run / "checkpoints" / "best.pt", weights_only=False)["model"]
    # The model a transfer run starts from holds the source's weights exactly, every tensor
    # (a silent no-load would leave the random init, whatever the learning rate).
    trainer = Trainer(load_config(run / "config.yaml"), run, progress=False)
    trainer.setup()
    start = trainer.model.state_dict()
    backbone = [k for k in source if k.startswith("backbone.")]
    assert len(backbone) > 50
    for key in backbone:
        assert torch.equal(start[key], source[key]), key
    fresh = Trainer(load_config(None, tiny_overrides(tmp_path / "fresh")), tmp_path / "fresh", progress=False)
    fresh.setup()
    assert not torch.equal(fresh.model.state_dict()["backbone.conv1.weight"], source["backbone.conv1.weight"])


def test_a_run_directory_of_a_different_config_is_refused(wc_run):
    cfg = load_config(wc_run / "config.yaml", ["stages.0.epochs=5"])
    with pytest.raises(ValueError, match="different configuration \\(differs in: stages\\)"):
        train_run(cfg, progress=False)
    same_but_other_device = load_config(wc_run / "config.yaml", ["device=cpu", "num_threads=1"])
    assert train_run(same_but_other_device, progress=False) == wc_run


def test_hflip_tta_averages_an_image_and_its_mirror():
    from fer_utils.config import RunConfig
    from fer_utils.training.loop import _forward_eval
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    wrapped = lambda x: (model(x), None)  # noqa: E731 - FERModel returns (logits, embedding)
    x = torch.randn(5, 2, 4, 4)
    plain, _ = _forward_eval(wrapped, x, RunConfig(), "cpu")
    tta, _ = _forward_eval(wrapped, x, RunConfig(tta="hflip"), "cpu")
    assert torch.allclose(plain, model(x))
    assert torch.allclose(tta, (model(x) + model(x.flip(3))) / 2, atol=1e-6)


def test_monitor_test_logs_test_accuracy_without_changing_training(tmp_path):
    plain = _train(tmp_path / "a")
    monitored = _train(tmp_path / "b", monitor_test="true")
    a, b = pd.read_csv(plain / "metrics.csv"), pd.read_csv(monitored / "metrics.csv")
    assert "monitor_test_accuracy" not in a and b["monitor_test_accuracy"].between(0, 1).all()
    assert np.allclose(a["train_loss"], b["train_loss"]) and np.allclose(a["val_loss"], b["val_loss"])
    assert (b["elapsed_s"].diff().dropna() > 0).all()
    # the last epoch's monitored accuracy is the test accuracy of that epoch's model
    m = json.loads((monitored / "metrics.json").read_text())
    if m["best_epoch"] == 1:
        assert b["monitor_test_accuracy"].iloc[-1] == pytest.approx(m["test"]["accuracy"], abs=1e-6)


def test_progressive_resizing_trains_each_epoch_at_its_side_and_evaluates_at_full_size(tmp_path, monkeypatch):
    from fer_utils.training import loop
    seen = {"train": [], "eval": []}
    real_augment, real_forward = loop.augment_batch, loop._forward_eval

    def augment(images, recipe, g, size=None):
        out = real_augment(images, recipe, g, size)
        seen["train"].append(out.shape[-1])
        return out

    def forward_eval(model, x, cfg, device):
        seen["eval"].append(x.shape[-1])
        return real_forward(model, x, cfg, device)
    real_build = loop.build_model

    def build_model(cfg, num_classes):  # what the backbone itself is given, in every forward
        model = real_build(cfg, num_classes)
        features = model.backbone.forward_features

        def recorded(x):
            seen["backbone"].append(x.shape[-1])
            return features(x)
        model.backbone.forward_features = recorded
        return model
    seen["backbone"] = []
    monkeypatch.setattr(loop, "augment_batch", augment)
    monkeypatch.setattr(loop, "_forward_eval", forward_eval)
    monkeypatch.setattr(loop, "build_model", build_model)
    run = _train(tmp_path, **{"data.image_size": 40, "stages.0.train_sizes": "[32, 36]"})
    steps = len(seen["train"]) // 2
    assert seen["train"] == [32] * steps + [36] * steps
    assert set(seen["eval"]) == {40}  # the stored side: data.image_size
    # the network itself gets each side as it is (not scaled again by the model)
    assert [n for n in seen["backbone"] if n != 40] == seen["train"] and 40 in seen["backbone"]
    assert json.loads((run / "metrics.json").read_text())["test"]["accuracy"] >= 0


def test_every_random_draw_of_training_comes_from_a_cpu_generator(tmp_path, monkeypatch):
    """Data order, augmentation and head re-initialisation draw on the CPU, so a run on a
    GPU sees the batches and augmentations a CPU run sees. Every generator the loop builds,
    and every generator passed to a random draw, is recorded while a two-stage run trains."""
    import fer_utils.training.loop as loop
    seen = []
    real_randperm, real_rand = torch.randperm, torch.rand

    def randperm(*args, generator=None, **kwargs):
        seen.append(("randperm", generator.device.type if generator is not None else None))
        return real_randperm(*args, generator=generator, **kwargs)

    def rand(*args, generator=None, **kwargs):
        seen.append(("rand", generator.device.type if generator is not None else None))
        return real_rand(*args, generator=generator, **kwargs)

    monkeypatch.setattr(torch, "randperm", randperm)
    monkeypatch.setattr(torch, "rand", rand)
    assert loop.epoch_generator(5).device.type == "cpu"
    _train(tmp_path, **{"model.head": "f", "stages": "[{loss: softmax, epochs: 1}, "
                        "{loss: softmax, epochs: 1, reinit_head: true}]"})
    assert ("randperm", "cpu") in seen and ("rand", "cpu") in seen
    assert {device for _, device in seen} == {"cpu"}, seen


def test_head_reinitialisation_draws_on_the_cpu():
    from fer_utils.models import create_model
    model = create_model("resnet18", 4, head="f", in_chans=1)
    torch.manual_seed(7)
    model.reset_classifier()
    torch.manual_seed(7)
    expected = torch.empty_like(model.classifier.weight).normal_(0.0, 1e-3)
    assert torch.equal(model.classifier.weight, expected)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "balanced_accuracy", "loss"])
def test_best_epoch_is_the_arg_best_of_its_validation_column(tmp_path, metric):
    """The selected epoch is the first epoch with the best value of val_<metric> (lowest for
    loss), and the model tested is that epoch's: its validation numbers are the row's."""
    run = _train(tmp_path, **{"select_metric": metric, "stages.0.epochs": 4, "stages.0.lr": 0.05})
    rows = pd.read_csv(run / "metrics.csv")
    column = rows[f"val_{metric}"]
    best = int(column.idxmin() if metric == "loss" else column.idxmax())  # first of ties
    m = json.loads((run / "metrics.json").read_text())
    assert m["best_epoch"] == int(rows["epoch"][best]) and m["select_metric"] == metric
    assert rows["best_epoch"].iloc[-1] == m["best_epoch"]
    for key, value in m["val"].items():
        assert value == pytest.approx(rows[f"val_{key}"][best]), key
    # and the checkpoint that was tested reproduces that epoch's validation accuracy
    trainer = Trainer(load_config(run / "config.yaml"), run, progress=False)
    trainer.setup()
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=False)
    assert state["epoch"] == m["best_epoch"]
    trainer.model.load_state_dict(state["model"])
    from fer_utils.training.loop import DeviceData, predict
    out = predict(trainer.model, DeviceData(trainer.data.val, trainer.device), trainer.cfg, trainer.device)
    acc = float((out["prob"].argmax(1).numpy() == trainer.data.val.labels).mean())
    assert acc == pytest.approx(rows["val_accuracy"][best], abs=1e-9)


@pytest.mark.parametrize("schedule, extra", [
    ("onecycle", {}), ("multistep", {"milestones": [2], "gamma": 0.1}), ("cosine", {}),
    ("step", {"step_size": 1, "gamma": 0.5})])
def test_each_optimizer_step_uses_the_torch_schedulers_learning_rate(schedule, extra):
    """The loop steps onecycle after every batch and the others after every epoch: the lr
    of every optimizer step equals that of torch's scheduler stepped the same way."""
    from fer_utils.config import StageConfig
    from fer_utils.data import Split
    from fer_utils.losses import build_loss
    from fer_utils.training.loop import (DeviceData, build_optimizer, build_scheduler, epoch_generator,
                                         train_batches, train_one_epoch)
    epochs, n, batch = 3, 40, 8
    stage = StageConfig(loss="softmax", epochs=epochs, lr=0.1, schedule=schedule, **extra)
    cfg = load_config(None, [f"batch_size={batch}", "data.in_chans=1", "data.augmentation=none"])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            return self.m(x), None
    net = Net()
    criterion = build_loss("softmax", class_counts=[14, 13, 13], num_classes=3)
    optimizer = build_optimizer(stage, net, criterion)
    steps = len(train_batches(n, batch, epoch_generator(0)))
    scheduler = build_scheduler(stage, optimizer, steps)
    seen = []
    real_step = optimizer.step

    def recording_step(*a, **k):
        seen.append(optimizer.param_groups[0]["lr"])
        return real_step(*a, **k)
    optimizer.step = recording_step
    data = DeviceData(Split(np.random.default_rng(0).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8),
                            np.arange(n) % 3), torch.device("cpu"))
    for epoch in range(epochs):
        train_one_epoch(net, criterion, optimizer, scheduler, data, cfg, torch.device("cpu"),
                        epoch_generator(epoch), "t", False)
    # the reference: torch's own scheduler on a fresh optimizer, stepped per batch / per epoch
    ref_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    ref = {"onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=epochs * steps),
           "multistep": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2], 0.1),
           "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, epochs),
           "step": lambda o: torch.optim.lr_scheduler.StepLR(o, 1, 0.5)}[schedule](ref_opt)
    expected = []
    for _ in range(epochs):
        for _ in range(steps):
            expected.append(ref_opt.param_groups[0]["lr"])
            ref_opt.step()
            if schedule == "onecycle":
                ref.step()
        if schedule != "onecycle":
            ref.step()
    assert len(seen) == epochs * steps
    assert seen == pytest.approx(expected, rel=1e-12, abs=0)
    assert len(set(seen)) > 1  # the schedule did change the learning rate


def test_onecycle_warmup_fraction_against_the_hand_written_schedule():
    """stage.warmup is the share of a one-cycle stage spent rising from lr / 25 to lr: the
    rates equal the two cosine half-waves written out by hand (peak at step warmup * total - 1,
    then down to lr / 25 / 1e4 at the last step), and a fraction outside (0, 1) is refused."""
    import math
    from fer_utils.config import StageConfig
    from fer_utils.training.loop import build_scheduler
    lr, epochs, steps, warmup = 0.1, 2, 50, 0.1
    stage = StageConfig(loss="softmax", epochs=epochs, lr=lr, schedule="onecycle", warmup=warmup)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    scheduler = build_scheduler(stage, optimizer, steps)
    seen = []
    for _ in range(epochs * steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    total, start = epochs * steps, lr / 25
    peak = warmup * total - 1

    def cos_between(a, b, t):  # a at t = 0, b at t = 1, along half a cosine
        return b + (a - b) / 2 * (math.cos(math.pi * t) + 1)
    expected = [cos_between(start, lr, k / peak) if k <= peak else
                cos_between(lr, start / 1e4, (k - peak) / (total - 1 - peak)) for k in range(total)]
    assert seen == pytest.approx(expected, rel=1e-9)
    assert int(np.argmax(seen)) == 9  # the default 0.3 would peak at step 29
    with pytest.raises(ValueError, match="not even one step"):  # torch would divide by zero
        build_scheduler(StageConfig(epochs=1, lr=lr, schedule="onecycle", warmup=0.1), optimizer, 10)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"stages.0.warmup must be a fraction in \(0, 1\)"):
            load_config(None, ["stages.0.schedule=onecycle", f"stages.0.warmup={bad}"])


def test_git_state_ignores_the_outputs_the_pipeline_rewrites(tmp_path):
    """A run trained while the pipeline redraws results/ records a clean tree; a changed source
    file still makes it dirty."""
    import subprocess
    from fer_utils.training.rundir import git_state

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "results" / "table.md").write_text("new\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path)["dirty"] is True


def test_a_model_predicting_one_class_is_reported_at_chance_level_and_a_good_one_is_not():
    from fer_utils.metrics import evaluate
    from fer_utils.training.loop import chance_level_note
    names = ("angry", "happy", "sad")
    y = np.repeat(np.arange(3), [20, 50, 30])
    one_class = np.tile([0.1, 0.8, 0.1], (100, 1))  # "happy" for every image
    kappa = evaluate(y, one_class, names, n_bootstrap=0)["kappa"]
    note = chance_level_note("run-x stage 0", kappa, one_class, names)
    assert note is not None and "100% of the images predicted 'happy'" in note
    good = np.eye(3)[np.where(np.arange(100) % 5 == 0, (y + 1) % 3, y)]  # 80% right
    assert chance_level_note("run-y stage 0", evaluate(y, good, names, n_bootstrap=0)["kappa"],
                             good, names) is None
    assert chance_level_note("run-z stage 0", None, one_class, names) is None  # no kappa defined


def test_a_trace_replays_the_runs_own_first_epoch(tmp_path):
    # trace_first_steps must follow the run's own batches, augmentation, dropout and schedule:
    # the batch-size-weighted mean of its per-step losses over a whole epoch is the epoch's
    # train_loss that training recorded, with a class-weighted loss and center updates in play.
    import pandas as pd
    from fer_utils.config import load_config
    from fer_utils.training import train_run
    from fer_utils.training.trace import trace_first_steps
    cfg = load_config(None, tiny_overrides(tmp_path / "runs", **{
        "stages.0.epochs": 1, "stages.0.loss": "center+weighted_softmax",
        "stages.0.schedule": "onecycle", "stages.0.reduction": "weighted_mean"}))
    recorded = pd.read_csv(train_run(cfg, progress=False) / "metrics.csv")
    seen = []
    trace_first_steps(cfg, 10_000, lambda step, r: seen.append((step, len(r["logits"]), r["values"])),
                      features=True)
    steps, sizes = [s for s, _, _ in seen], np.array([n for _, n, _ in seen])
    assert steps == list(range(len(seen))) and sizes.sum() == 320 - 320 // 10  # validation held out
    for key in ("loss", "weighted_softmax", "center"):
        mean = sum(n * v[key] for _, n, v in seen) / sizes.sum()
        assert mean == pytest.approx(recorded[f"train_{key}"].iloc[0], rel=1e-5)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        trace_first_steps(cfg, 0, lambda *a: None)
