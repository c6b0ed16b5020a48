"""`python -m fer_utils predict`: expressions and probabilities per face."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_overrides
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


def test_missing_image_is_a_clear_error(run, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image or folder"):
        main(["predict", str(run), str(tmp_path / "nope.jpg")])
