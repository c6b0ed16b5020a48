"""The real-dataset registry: names, protocol options, config validation, data root."""
from pathlib import Path

import pytest

from fer_utils.config import load_config
from fer_utils.data import DATASETS, build_index, class_names, default_data_root
from fer_utils.data.index import SPECS

REAL = ("affectnet", "ckplus", "ckplus48", "fer2013", "oulu_casia", "rafdb")


def test_every_real_dataset_registered_with_class_names():
    assert set(REAL) <= set(DATASETS) and set(SPECS) == set(REAL)
    sizes = {name: len(class_names(name)) for name in REAL}
    assert sizes == {"affectnet": 8, "ckplus": 7, "ckplus48": 7, "fer2013": 7, "oulu_casia": 6, "rafdb": 7}
    for name in REAL:
        assert len(set(class_names(name))) == sizes[name] and DATASETS[name].description


@pytest.mark.parametrize("name", REAL)
def test_configs_validate_and_reject_unknown_params(name):
    cfg = load_config(overrides=[f"data.dataset={name}", "data.fold=0"])
    assert cfg.data.dataset == name
    with pytest.raises(ValueError, match=f"unknown {name} params \\['colour'\\]"):
        load_config(overrides=[f"data.dataset={name}", "data.params.colour=1"])


def test_affectnet_7_classes_through_config():
    cfg = load_config(overrides=["data.dataset=affectnet", "data.params.num_classes=7"])
    assert len(class_names(cfg.data.dataset, **cfg.data.params)) == 7


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_DATA_ROOT", str(tmp_path))
    assert default_data_root() == tmp_path
    with pytest.raises(FileNotFoundError, match=r"dataset root not found: .*RAF-DB"):
        build_index("rafdb")
    monkeypatch.delenv("FER_DATA_ROOT")
    assert default_data_root() == Path(__file__).resolve().parents[2] / "shared" / "data"
