"""MTCNN face crops (optional facenet-pytorch): faces found, no-face images listed, opt-in fallback."""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer_utils.data.decode import decode_rows
from fer_utils.data.formats import DataFormatError

pytest.importorskip("facenet_pytorch")
DATA = Path(os.environ.get("FER_DATA_ROOT", Path(__file__).resolve().parents[2] / "shared" / "data"))
FACE = next(iter(sorted((DATA / "CK+48" / "happy").glob("*.png"))), None) if DATA.is_dir() else None


def _index(paths):
    return pd.DataFrame({"path": [str(p) for p in paths], "id": [Path(p).stem for p in paths],
                         "label": [0] * len(paths)})


def test_no_face_listed_then_centre_crop_on_request(tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((60, 80), 128, np.uint8)).save(blank)
    with pytest.raises(DataFormatError, match=r"(?s)MTCNN found no face in 1 of 1 images.*no_face='center'.*blank.png"):
        decode_rows(_index([blank]), 16, 1, crop="mtcnn", progress=False)
    out = decode_rows(_index([blank]), 16, 1, crop="mtcnn", no_face="center", progress=False)
    assert out["no_face"].tolist() == [0] and out["images"].shape == (1, 1, 16, 16)


@pytest.mark.shared_data
@pytest.mark.skipif(FACE is None, reason="../shared/data/CK+48 not present")
def test_face_found_in_a_padded_ck_face(tmp_path):
    canvas = np.zeros((240, 320), np.uint8)
    canvas[40:200, 80:240] = np.asarray(Image.open(FACE).convert("L").resize((160, 160)))
    Image.fromarray(canvas).save(tmp_path / "frame.png")
    out = decode_rows(_index([tmp_path / "frame.png"]), 32, 1, crop="mtcnn", margin=0.0, progress=False)
    assert out["no_face"].tolist() == []
    assert out["images"][0, 0, 8:24, 8:24].mean() > 20  # the crop is the face, not the black border
