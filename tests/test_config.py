import pytest

from fer_utils.config import RunConfig, apply_overrides, load_config


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_validate():
    cfg = load_config()
    assert isinstance(cfg, RunConfig) and cfg.stages[0].loss == "softmax"


def test_yaml_deltas_and_overrides(tmp_path):
    path = _write(tmp_path, "seed: 3\nmodel: {backbone: resnet50}\nstages:\n  - {loss: focal, epochs: 2}\n"
                            "  - {loss: softmax, reinit_head: true}\n")
    cfg = load_config(path, ["stages.1.epochs=7", "data.params.n_train=100", "batch_size=8"])
    assert cfg.seed == 3 and cfg.model.backbone == "resnet50" and cfg.model.head == "w"
    assert [s.loss for s in cfg.stages] == ["focal", "softmax"]
    assert cfg.stages[0].epochs == 2 and cfg.stages[1].epochs == 7 and cfg.stages[1].reinit_head
    assert cfg.stages[1].lr == 0.01  # default filled in for a partial stage
    assert cfg.data.params == {"n_train": 100} and cfg.batch_size == 8


def test_apply_overrides_parses_yaml_values():
    out = apply_overrides({"a": {"b": 1}, "l": [1, 2]}, ["a.b=0.5", "a.c=[1, 2]", "l.1=x"])
    assert out == {"a": {"b": 0.5, "c": [1, 2]}, "l": [1, "x"]}
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["novalue"])


@pytest.mark.parametrize("override, message", [
    (["data.dataset=affectnetx"], "unknown dataset 'affectnetx'; valid: .*synthetic"),
    (["model.backbone=resnet101"], "unknown backbone 'resnet101'; valid: .*seresnet50"),
    (["stages.0.loss=nope"], "unknown stages.0.loss 'nope'; valid: .*weighted_softmax"),
    (["stages.0.loss=center+softmax", "model.head=f"], "stages.0: loss 'center\\+softmax' cannot be built"),
    (["stages.0.loss=focal", "stages.0.loss_params={alpha: [0.5, 0.5]}"], "stages.0: loss 'focal' cannot be built"),
    (["stages.0.epochs=0"], "epochs must be >= 1"),
    (["select_metric=speed"], "unknown select_metric"),
    (["bogus_key=1"], "unknown config key\\(s\\) bogus_key"),
    (["model.backbon=resnet18"], "unknown config key\\(s\\) model.backbon"),
    (["data.fold=10"], "data.fold must be in"),
    (["stages.0.train_sizes=[24, 32]"], "integer sides >= 32 \\(the backbone's smallest input\\)"),
    (["stages.0.epochs=2", "stages.0.train_sizes=[24, 32, 40]"], "at most epochs \\(2\\)"),
    (["stages.0.train_sizes=32"], "train_sizes must be a list"),
    (["stages.0.train_sizes=[32.5]"], "integer sides >= 32"),
])
def test_bad_configurations_fail_before_data_is_read(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, override)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_scientific_notation_is_coerced_and_bad_types_rejected():
    cfg = load_config(None, ["stages.0.lr=1e-3", "seed=2"])
    assert cfg.stages[0].lr == pytest.approx(1e-3) and isinstance(cfg.stages[0].lr, float)
    with pytest.raises(ValueError, match="stages.0.lr: expected a number"):
        load_config(None, ["stages.0.lr=fast"])
    with pytest.raises(ValueError, match="model.freeze_stages: expected true/false"):
        load_config(None, ["model.freeze_stages=3"])


def test_two_stage_run_without_a_second_loss_is_rejected(tmp_path):
    path = _write(tmp_path, "stages:\n  - {loss: softmax, epochs: 2}\n  - {epochs: 2}\n")
    with pytest.raises(ValueError, match="stages.1: a later stage must name its loss"):
        load_config(path)


def test_missing_weight_file_is_rejected_before_training(tmp_path):
    with pytest.raises(ValueError, match="weight file or run directory not found"):
        load_config(None, [f"model.pretrained={tmp_path / 'senet50_ft_weight.pkl'}"])
    with pytest.raises(ValueError, match="stages.1: a later stage must name its loss"):
        load_config(None, ["stages=[{loss: softmax}, {epochs: 3}]"])



@pytest.mark.parametrize("epochs, sizes, expected", [
    (6, [32, 40, 48], [32, 32, 40, 40, 48, 48]),
    (10, [32, 40, 48], [32] * 4 + [40] * 3 + [48] * 3),
    (51, [32, 40, 48], [32] * 17 + [40] * 17 + [48] * 17),
    (3, [], [None] * 3),
])
def test_train_sizes_split_the_epochs_into_consecutive_equal_parts(epochs, sizes, expected):
    stage = load_config(None, [f"stages.0.epochs={epochs}", f"stages.0.train_sizes={sizes}"]).stages[0]
    got = [stage.train_size(e) for e in range(epochs)]
    assert got == expected
    # every size gets its part, in order, each part within one epoch of the others' length
    if sizes:
        counts = [got.count(n) for n in sizes]
        assert max(counts) - min(counts) <= 1 and got == sorted(got, key=sizes.index)
