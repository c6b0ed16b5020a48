"""Oulu-CASIA reader on tiny fixtures: VL/Strong discovery, last frames, both fold conventions."""
import shutil

import numpy as np
import pytest
from PIL import Image

from fer_utils.config import DataConfig
from fer_utils.data import build_index, class_names, load_dataset
from fer_utils.data.formats import DataFormatError

EXPRESSIONS = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")


def _oulu(root, base="OriginalImg/VL/Strong", n_subjects=4, n_frames=4, size=(20, 16)):
    for s in range(1, n_subjects + 1):
        for e, name in enumerate(EXPRESSIONS):
            folder = root / base / f"P{s:03d}" / name
            folder.mkdir(parents=True)
            for f in range(n_frames):
                a = np.random.default_rng(s * 100 + e * 10 + f).integers(0, 256, (size[1], size[0], 3), np.uint8)
                Image.fromarray(a).save(folder / f"{f:03d}.jpeg")
    return root


def test_vl_strong_last_frames_and_other_copies_ignored(tmp_path):
    root = _oulu(tmp_path)
    _oulu(tmp_path, base="OriginalImg/NI/Strong", n_subjects=1)  # other modality
    _oulu(tmp_path, base="OriginalImg/VL/Dark", n_subjects=1)  # other illumination
    shutil.rmtree(root / "OriginalImg/VL/Strong/P002/Fear")  # copies miss sequences: counted
    df = build_index("oulu_casia", root, num_folds=2)
    assert class_names("oulu_casia") == ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
    assert len(df) == (4 * 6 - 1) * 3 and set(df["id"].str[-3:]) == {"001", "002", "003"}
    assert df.attrs["info"]["missing_sequences"] == 1 and df.attrs["info"]["source"] == "original"
    assert df.attrs["default_crop"] == "mtcnn"
    assert (df["label"] == df["sequence"].str.split("/").str[1].str.lower().map(class_names("oulu_casia").index)).all()


@pytest.mark.parametrize("scheme, expected", [("rank_mod", [0, 1, 0, 1, 0, 1]), ("blocks", [0, 0, 0, 1, 1, 1])])
def test_fold_conventions_subject_independent(tmp_path, scheme, expected):
    df = build_index("oulu_casia", _oulu(tmp_path, n_subjects=6, n_frames=3), num_folds=2, fold_scheme=scheme)
    assert df.groupby("subject")["fold"].nunique().max() == 1
    assert df.groupby("subject")["fold"].first().tolist() == expected


def test_original_and_cropped_copies_need_a_choice(tmp_path):
    _oulu(tmp_path)
    _oulu(tmp_path, base="PreProcess_Img/VL_Acropped/Strong", size=(12, 14))
    with pytest.raises(DataFormatError, match="several VL/Strong copies"):
        build_index("oulu_casia", tmp_path, num_folds=2)
    df = build_index("oulu_casia", tmp_path, num_folds=2, source="cropped")
    assert df.attrs["info"]["source"] == "cropped" and df.attrs["default_crop"] == "none"
    cfg = DataConfig(dataset="oulu_casia", root=str(tmp_path), fold=0, num_folds=2, image_size=16,
                     params={"source": "cropped"})
    d = load_dataset(cfg)
    assert d.test.images.shape == (36, 3, 16, 16) and not set(d.test.subjects) & set(d.train.subjects)
    assert set(d.test.subjects) == {1, 3}


def test_errors(tmp_path):
    with pytest.raises(DataFormatError, match="no VL/Strong/P###/ folders"):
        build_index("oulu_casia", tmp_path, num_folds=2)
    root = _oulu(tmp_path / "a")
    (root / "OriginalImg/VL/Strong/P001/Contempt").mkdir()
    with pytest.raises(DataFormatError, match=r"P001: unknown expression folder\(s\) \['contempt'\]"):
        build_index("oulu_casia", root, num_folds=2)
    with pytest.raises(DataFormatError, match="fewer than the 5 needed"):
        build_index("oulu_casia", _oulu(tmp_path / "b"), frames=5, num_folds=2)
