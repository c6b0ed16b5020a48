"""`python -m fer_utils predict`: expressions and probabilities per face."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_runs import tiny_overrides
from fer_utils.__main__ import main
from fer_utils.config import load_config
from fer_utils.data.synthetic import make_synthetic_faces
from fer_utils.training import train_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = load_config(None, tiny_overrides(tmp_path_factory.mktemp("p") / "runs", **{"stages.0.epochs": 1}))
    return train_run(cfg, progress=False)


def test_predict_cropped_faces_prints_probabilities(run, tmp_path, capsys):
    faces = make_synthetic_faces(3, size=64, seed=5)
    folder = tmp_path / "my faces"
    folder.mkdir()
    for i, img in enumerate(faces.images):
        Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"face {i}.png")
    assert main(["predict", str(run), str(folder), "--no-detect"]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    for record in lines:
        (face,) = record["faces"]
        probs = face["probabilities"]
        assert set(probs) == set(faces.class_names)
        assert sum(probs.values()) == pytest.approx(1, abs=1e-3)
        assert face["expression"] == max(probs, key=probs.get)


def test_predict_reports_images_without_a_face(run, tmp_path, capsys):
    pytest.importorskip("facenet_pytorch")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 120, 3), 128, dtype=np.uint8)).save(blank)
    main(["predict", str(run), str(blank)])
    record = json.loads(capsys.readouterr().out)
    assert record["faces"] == [] and record["note"] == "no face detected"


def test_missing_image_is_a_clear_error(run, tmp_path, capsys):
    assert main(["predict", str(run), str(tmp_path / "nope.jpg")]) == 2
    assert "no such image or folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ck_folder_run(tmp_path_factory):
    """A tiny CK+48-layout folder (7 classes, 8 subjects) and a one-epoch run on it with
    mirror test-time augmentation and a resize (48 -> 32 px) in its input path."""
    from fer_utils.data.ckplus import CODES
    root = tmp_path_factory.mktemp("ck") / "CK+48"
    rng = np.random.default_rng(0)
    for c, name in enumerate(CODES[1:]):
        (root / name).mkdir(parents=True)
        for subject in range(8):
            base = rng.integers(0, 256, size=(48, 48)).astype(np.float64)
            img = np.clip(0.6 * base + 12 * c, 0, 255).astype(np.uint8)
            Image.fromarray(img, "L").save(root / name / f"S{100 + subject:03d}_{c + 1:03d}_00000010.png")
    cfg = load_config(None, tiny_overrides(tmp_path_factory.mktemp("ckr") / "runs", **{
        "data.dataset": "ckplus48", "data.root": str(root), "data.fold": 0, "data.num_folds": 4,
        "data.in_chans": 1, "data.image_size": 32, "data.params": "{}", "tta": "hflip",
        "stages.0.epochs": 1, "batch_size": 8}))
    return root, train_run(cfg, progress=False)


def test_predict_gives_the_probabilities_evaluate_gives(ck_folder_run, tmp_path, capsys):
    """The same test images through `evaluate --save-predictions` and `predict --no-detect`:
    one preprocessing path (bilinear resize, normalisation, mirror TTA), the same numbers."""
    root, run = ck_folder_run
    saved = tmp_path / "eval.npz"
    assert main(["evaluate", str(run), "--split", "test", "--bootstrap", "0",
                 "--save-predictions", str(saved)]) == 0
    capsys.readouterr()
    ev = np.load(saved)
    files = {p.stem: p for p in root.rglob("*.png")}
    paths = [str(files[i]) for i in ev["image_id"]]
    assert main(["predict", str(run), *paths, "--no-detect"]) == 0
    records = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    names = json.loads((run / "metrics.json").read_text())["test"]["class_names"]
    got = np.array([[r["faces"][0]["probabilities"][n] for n in names] for r in records])
    assert got.shape == ev["y_prob"].shape and len(got) >= 7
    np.testing.assert_allclose(got, ev["y_prob"], atol=6e-5)  # predict rounds to 4 decimals


class _RunsCodeWhenUnpickled:
    """A checkpoint payload that would create ``path`` if the loader executed pickled code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_run_checkpoint_that_would_execute_code_is_refused(run, tmp_path):
    """Run checkpoints load with torch.load(weights_only=True): a run directory someone hands
    you cannot execute code (an ordinary one loads, as the tests above show)."""
    import pickle
    import shutil

    import torch

    from fer_utils.training.evaluate import load_run
    hostile = tmp_path / "run"
    shutil.copytree(run, hostile)
    marker = tmp_path / "executed"
    torch.save({"model": _RunsCodeWhenUnpickled(marker)}, hostile / "checkpoints" / "best.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_run(hostile)
    assert not marker.exists()


def test_evaluate_tta_option_replaces_the_runs_own(ck_folder_run, tmp_path, capsys):
    """`evaluate --tta tencrop` on a run trained with mirror TTA: the probabilities are the
    forward pass's over the ten views (fer_utils.training.predict with tta tencrop, itself
    checked against views written out in test_augment), not the run's mirror average; the
    output says which TTA it used, and an unknown one is refused in one line."""
    from fer_utils.data import load_dataset
    from fer_utils.training.evaluate import load_run
    from fer_utils.training.loop import DeviceData, predict

    _, run = ck_folder_run
    probs = {}
    for tta in ("hflip", "tencrop"):
        saved = tmp_path / f"{tta}.npz"
        assert main(["evaluate", str(run), "--split", "test", "--bootstrap", "0", "--tta", tta,
                     "--save-predictions", str(saved)]) == 0
        assert json.loads(capsys.readouterr().out)["tta"] == tta
        probs[tta] = np.load(saved)["y_prob"]
    assert np.abs(probs["hflip"] - probs["tencrop"]).max() > 1e-3
    cfg, model = load_run(run)
    cfg.tta = "tencrop"
    data = load_dataset(cfg.data, split_seed=cfg.seed)
    want = predict(model, DeviceData(data.test, torch.device("cpu")), cfg, torch.device("cpu"))["prob"]
    np.testing.assert_allclose(probs["tencrop"], want.numpy(), atol=1e-6)
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(run), "--tta", "fivecrop"])
    assert exit_.value.code == 2
    assert "invalid choice: 'fivecrop'" in capsys.readouterr().err
