"""Paper F grids train a shared first stage once: CE -> focal adopts CE only's finished stage
(same fold, seed and stage settings) instead of training it again, with bit-identical results."""
import json

import numpy as np
import pytest

from fer_utils import study
from fer_utils.config import config_from_dict
from fer_utils.training import loop, stage1_donor, stage1_twins, train_run

pytestmark = pytest.mark.slow


def _grid(runs_dir, schedule="multistep"):
    base = study.base_config(dataset="synthetic", image_size=32, batch_size=32, bootstrap=20,
                             data_params={"n_train": 300, "cv": True}, runs_dir=str(runs_dir))
    return study.paper_f_grid(base, strategies=["ce_then_focal", "ce_only", "focal_only",
                                                "ce_then_ce_scaled_lr"],
                              backbones=["resnet18"], folds=[0], num_folds=3, stage_epochs=(2, 2),
                              lr=0.02, lr_drop_epoch=1, schedule=schedule)


def test_twins_are_the_runs_with_the_same_first_stage_one_stage_runs_first(tmp_path):
    then_focal, ce_only, focal_only, control = _grid(tmp_path)
    assert stage1_twins(then_focal, [focal_only, control, then_focal, ce_only]) == [ce_only, control]
    assert stage1_twins(ce_only, [ce_only, then_focal]) == []  # one-stage runs adopt nothing
    other_fold = config_from_dict({**ce_only.to_dict(), "data": {**ce_only.to_dict()["data"], "fold": 1}})
    assert stage1_twins(then_focal, [other_fold, focal_only]) == []
    longer = config_from_dict({**ce_only.to_dict(), "stages": [{**ce_only.to_dict()["stages"][0], "epochs": 3}]})
    assert stage1_twins(then_focal, [longer]) == []
    assert stage1_donor(then_focal, [ce_only, control]) is None  # none has trained yet


@pytest.mark.parametrize("schedule", ["multistep", "onecycle"])
def test_adopting_stage_one_gives_the_run_trained_from_scratch_bit_for_bit(tmp_path, monkeypatch, schedule):
    epochs = []
    real = loop.train_one_epoch
    monkeypatch.setattr(loop, "train_one_epoch", lambda *a, **k: epochs.append(a[-3]) or real(*a, **k))
    shared = _grid(tmp_path / "shared", schedule)
    dirs = study.run_grid(shared, progress=False)  # CE -> focal first: its donor is trained first
    # CE only's 2 epochs, the stage 2 of CE -> focal and of the control (2 + 2), focal only's 2:
    # 8 epochs, not 12
    assert len(epochs) == 8
    alone = train_run(_grid(tmp_path / "alone", schedule)[0], progress=False)
    info = json.loads((dirs[0] / "run_info.json").read_text())
    assert info["stage1_from"] == shared[1].name
    assert json.loads((dirs[1] / "run_info.json").read_text())["stage1_from"] is None
    a, b = np.load(dirs[0] / "predictions.npz"), np.load(alone / "predictions.npz")
    assert np.array_equal(a["y_prob"], b["y_prob"])
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (dirs[0], alone))
    assert ma["test"] == mb["test"] and ma["best_epoch"] == mb["best_epoch"]
    rows = [(d / "metrics.csv").read_text().splitlines() for d in (dirs[0], alone)]
    strip = lambda lines: [l.split(",")[:8] for l in lines]  # timing columns come later
    assert strip(rows[0]) == strip(rows[1]) and len(rows[0]) == 5


def test_a_finished_two_stage_run_donates_its_first_stage(tmp_path):
    """The control adopts CE -> focal's stage 1 when CE only is not in the grid (or was
    restored without checkpoints), and ends as if it had trained it."""
    then_focal, _, _, control = _grid(tmp_path / "a")
    dirs = study.run_grid([then_focal, control], progress=False)
    assert json.loads((dirs[1] / "run_info.json").read_text())["stage1_from"] == then_focal.name
    alone = train_run(_grid(tmp_path / "b")[3], progress=False)
    a, b = np.load(dirs[1] / "predictions.npz"), np.load(alone / "predictions.npz")
    assert np.array_equal(a["y_prob"], b["y_prob"])
