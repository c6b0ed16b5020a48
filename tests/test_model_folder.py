"""Model folders (`python -m fer_utils export`): safetensors weights that evaluate, predict and
model.pretrained read like the run they came from, without unpickling anything."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_runs import forbid_unpickling, tiny_overrides
from fer_utils import model_folder
from fer_utils.__main__ import main
from fer_utils.config import load_config
from fer_utils.data.synthetic import make_synthetic_faces
from fer_utils.training import train_run
from fer_utils.training.evaluate import evaluate_run, load_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = load_config(None, tiny_overrides(tmp_path_factory.mktemp("m") / "runs",
                                           **{"stages.0.epochs": 1, "tta": "hflip"}))
    return train_run(cfg, progress=False)


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("shipped") / "model"
    assert main(["export", str(run), str(out), "--title", "Tiny test model", "--recipe", "`pytest`"]) == 0
    return out


def test_the_folder_evaluates_like_the_run_without_unpickling(run, folder, monkeypatch):
    before = evaluate_run(run, bootstrap=0)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [model_folder.WEIGHTS, model_folder.CARD, *model_folder.RUN_FILES])
    assert not (folder / "checkpoints").exists()
    forbid_unpickling(monkeypatch)
    after = evaluate_run(folder, bootstrap=0)
    for m in ("accuracy", "f1", "balanced_accuracy"):
        assert after[m] == before[m]
    assert after["confusion_matrix"] == before["confusion_matrix"]


def test_fp16_weights_are_half_the_size_and_predict_nearly_the_same(run, folder, tmp_path):
    half = tmp_path / "half"
    model_folder.export_model(run, half, fp16=True)
    size = (half / model_folder.WEIGHTS).stat().st_size
    assert size < 0.55 * (folder / model_folder.WEIGHTS).stat().st_size
    assert model_folder._dtypes(half / model_folder.WEIGHTS) <= {"F16", "I64"}
    _, full_model = load_run(folder)
    _, half_model = load_run(half)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = full_model(x)[0].softmax(1), half_model(x)[0].softmax(1)
    torch.testing.assert_close(a, b, atol=5e-3, rtol=0)
    assert "float16" in (half / model_folder.CARD).read_text()


def test_the_card_reports_test_metrics_with_intervals_and_limits(run, folder):
    card = (folder / model_folder.CARD).read_text()
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert card.startswith("# Tiny test model")
    assert f"Accuracy {100 * test['accuracy']:.2f} [" in card
    assert "`pytest`" in card and "never on the test split" in card
    for name in test["class_names"]:
        assert f"| {name} | " in card
    assert "## Known limits" in card


def test_predict_uses_a_named_folder_or_the_shipped_model(folder, tmp_path, monkeypatch, capsys):
    faces = make_synthetic_faces(2, size=64, seed=3)
    paths = []
    for i, img in enumerate(faces.images):
        paths.append(str(tmp_path / f"face{i}.png"))
        Image.fromarray(img.transpose(1, 2, 0)).save(paths[-1])
    assert main(["predict", str(folder), *paths, "--no-detect"]) == 0
    named = capsys.readouterr().out
    assert len(named.splitlines()) == 2
    # no model named: the shipped one
    monkeypatch.setattr(model_folder, "SHIPPED", folder)
    assert main(["predict", *paths, "--no-detect"]) == 0
    assert capsys.readouterr().out == named
    # none shipped: one line, exit 2
    monkeypatch.setattr(model_folder, "SHIPPED", tmp_path / "absent")
    assert main(["predict", *paths, "--no-detect"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no shipped model" in err[0]
    assert main(["predict", str(folder)]) == 2
    assert "name the images" in capsys.readouterr().err


def test_a_model_folder_initialises_a_new_model(run, folder, monkeypatch):
    """model.pretrained: <model folder> transfers the backbone as a run directory does."""
    from fer_utils.models import create_model
    _, trained = load_run(run)
    forbid_unpickling(monkeypatch)
    fresh = create_model("resnet18", 5, head="f", pretrained=str(folder))
    assert fresh.pretrained_report.format == "run"
    for k, v in trained.backbone.state_dict().items():
        torch.testing.assert_close(fresh.backbone.state_dict()[k], v, rtol=0, atol=0)
    assert fresh.classifier.weight.shape[0] == 5


def test_export_refuses_an_unfinished_run(tmp_path, capsys):
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "only a finished run can be exported" in capsys.readouterr().err


def test_a_channels_last_bf16_run_evaluates_to_its_own_probabilities(tmp_path):
    """Evaluation runs the model in the memory format it trained in: under bf16 autocast a
    contiguous model fed channels_last batches rounds differently (the FER2013 candidate folder
    scored 67.15% instead of its run's 67.09%: 4 predictions changed)."""
    cfg = load_config(None, tiny_overrides(tmp_path / "runs", **{
        "stages.0.epochs": 1, "precision": "bf16", "channels_last": "true"}))
    run = train_run(cfg, progress=False)
    _, model = load_run(run)
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in model.parameters() if p.dim() == 4)
    evaluate_run(run, bootstrap=0, save_predictions=tmp_path / "again.npz")
    published = np.load(run / "predictions.npz")
    again = np.load(tmp_path / "again.npz")
    np.testing.assert_array_equal(again["y_prob"], published["y_prob"])
