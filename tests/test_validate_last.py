"""Validating only a stage's last epochs (``StageConfig.validate_last``): which epochs, that the
best epoch is chosen among them, and that skipping validation leaves training untouched."""
import json

import pandas as pd
import pytest
import torch

from tiny_runs import tiny_overrides
from fer_utils.config import StageConfig, first_validated_epoch, load_config, stage_extras
from fer_utils.training import train_run


@pytest.mark.parametrize("epochs, fraction, validated", [
    (10, 1.0, list(range(10))),
    (10, 0.3, [7, 8, 9]),
    (30, 0.1, [27, 28, 29]),      # 0.1 * 30 is 3.0000000000000004 in floats: still 3 epochs
    (57, 0.34, list(range(37, 57))),  # ceil(19.38) = 20
    (10, 0.01, [9]),              # at least the last epoch
    (1, 0.5, [0]),
])
def test_the_last_fraction_of_the_epochs_is_validated(epochs, fraction, validated):
    stage = StageConfig(epochs=epochs, validate_last=fraction)
    assert [e for e in range(epochs) if stage.validates(e)] == validated
    # the same count written as a loop over the epochs from the end
    count = 0
    while count < epochs and (count < 1 or count < fraction * epochs - 1e-9):
        count += 1
    assert first_validated_epoch(epochs, fraction) == epochs - count == validated[0]


@pytest.mark.parametrize("bad", ["0", "-0.5", "1.5"])
def test_a_fraction_outside_0_1_is_refused_before_any_data_is_read(bad):
    with pytest.raises(ValueError, match="validate_last must be a fraction"):
        load_config(None, [f"stages.0.validate_last={bad}"])


def test_model_cards_and_legends_name_where_validation_began():
    assert "validated from epoch 8" in stage_extras({"epochs": 10, "validate_last": 0.3})
    assert not any("validated" in x for x in stage_extras({"epochs": 10, "validate_last": 1.0}))
    assert not any("validated" in x for x in stage_extras({"epochs": 10}))  # runs saved before it


@pytest.mark.slow
def test_skipping_validation_selects_among_the_last_epochs_and_trains_the_same_model(tmp_path):
    common = {"stages.0.epochs": 4, "stages.0.schedule": "onecycle", "stages.0.lr": 0.05}
    every = train_run(load_config(None, tiny_overrides(tmp_path / "every", **common)), progress=False)
    last = train_run(load_config(None, tiny_overrides(tmp_path / "last", **common,
                                                      **{"stages.0.validate_last": 0.5})),
                     progress=False)
    a, b = pd.read_csv(every / "metrics.csv"), pd.read_csv(last / "metrics.csv")
    # validation reads the model and draws no random numbers: the same training, step for step
    assert a["train_loss"].tolist() == b["train_loss"].tolist()
    assert b["val_accuracy"].isna().tolist() == [True, True, False, False]
    assert b.loc[2:, "val_accuracy"].tolist() == a.loc[2:, "val_accuracy"].tolist()
    # the best epoch is the best validated one, and its checkpoint is the model of that epoch
    best = torch.load(last / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 2 + int(a.loc[2:, "val_accuracy"].to_numpy().argmax())
    assert b["best_epoch"].tolist()[:2] == [-1, -1]
    # the run's summary reports the selected epoch's validation
    summary = json.loads((last / "metrics.json").read_text())
    assert summary["best_epoch"] == best["epoch"]
    assert summary["val"]["accuracy"] == pytest.approx(float(b["val_accuracy"].max()), abs=1e-12)
