"""CK+ reader on tiny fixtures: the original release (two nestings) and the CK+48 folders."""
import numpy as np
import pytest
from PIL import Image

from fer_utils.config import DataConfig
from fer_utils.data import build_index, class_names, load_dataset
from fer_utils.data.formats import DataFormatError

EMOTIONS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def _frame(path, seed, mode="L"):
    rng = np.random.default_rng(seed)
    shape = (30, 40) if mode == "L" else (30, 40, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def _original(root, images="cohn-kanade-images", labels="Emotion", n_subjects=7, n_frames=5):
    """Subjects S001.. with sequences 001 (labelled, code = subject % 7 + 1) and 002 (unlabelled)."""
    for s in range(1, n_subjects + 1):
        subj = f"S{s:03d}"
        for seq in ("001", "002"):
            for f in range(1, n_frames + 1):
                _frame(root / images / subj / seq / f"{subj}_{seq}_{f:08d}.png", s * 100 + f,
                       mode="RGB" if (s, f) == (1, n_frames) else "L")  # a few colour frames exist
        label = root / labels / subj / "001" / f"{subj}_001_{n_frames:08d}_emotion.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"   {s % 7 + 1:.7e}\n")
    return root


def _ck48(root, n_subjects=4):
    """One frame per subject and class (sequence = class index + 1)."""
    for s in range(1, n_subjects + 1):
        for c, name in enumerate(EMOTIONS):
            _frame(root / name / f"S{s:03d}_{c + 1:03d}_{s + 10:08d}.png", s * 10 + c)
    return root


@pytest.mark.parametrize("images, labels", [("cohn-kanade-images", "Emotion"),
                                            ("CK+/extended-cohn-kanade-images", "Emotion_labels/Emotion")])
def test_original_last_three_frames_of_labelled_sequences(tmp_path, images, labels):
    root = _original(tmp_path, images, labels)
    df = build_index("ckplus", root, num_folds=2)
    assert len(df) == 7 * 3 and df.attrs["info"]["layout"] == "original"
    assert sorted(df["id"].str[-2:].unique()) == ["03", "04", "05"]  # last 3 of 5 frames
    assert set(df["sequence"]) == {f"S00{s}_001" for s in range(1, 8)}  # 002 has no label
    by_subject = df.groupby("subject")["label"].first().to_dict()
    assert by_subject == {f"S00{s}": s % 7 for s in range(1, 8)}  # code - 1
    assert df.groupby("subject")["fold"].nunique().max() == 1
    assert df.groupby("subject")["fold"].first().tolist() == [0, 1, 0, 1, 0, 1, 0]


def test_neutral_first_frame_adds_class_zero(tmp_path):
    root = _original(tmp_path)
    assert class_names("ckplus", neutral=True) == ("neutral", *EMOTIONS)
    df = build_index("ckplus", root, neutral=True, num_folds=2)
    neutral = df[df["label"] == 0]
    assert len(df) == 28 and len(neutral) == 7 and (neutral["id"].str.endswith("00000001")).all()
    emotional = df[df["label"] > 0].groupby("subject")["label"]
    assert emotional.size().tolist() == [3] * 7
    assert emotional.first().to_dict() == {f"S00{s}": s % 7 + 1 for s in range(1, 8)}  # code


def test_original_through_load_dataset_with_centre_crop(tmp_path):
    root = _original(tmp_path)
    cfg = DataConfig(dataset="ckplus", root=str(root), fold=1, num_folds=3, image_size=20, in_chans=1,
                     params={"crop": "center"})
    d = load_dataset(cfg)
    assert d.test.images.shape == (6, 1, 20, 20)  # S002 and S005: rank 1 and 4 of 7, mod 3
    assert set(d.test.subjects) == {2, 5} and not set(d.test.subjects) & set(d.train.subjects)
    assert d.info["crop"] == "center" and d.info["layout"] == "original"


def test_original_errors_name_the_file(tmp_path):
    root = _original(tmp_path / "a")
    bad = next(root.rglob("S002_001_*_emotion.txt"))
    bad.write_text("   9.0000000e+00\n")
    with pytest.raises(DataFormatError, match=r"S002_001_00000005_emotion.txt: unknown emotion code"):
        build_index("ckplus", root, num_folds=2)
    bad.write_text("happy\n")
    with pytest.raises(DataFormatError, match="expected one number"):
        build_index("ckplus", root, num_folds=2)
    root = _original(tmp_path / "b")
    for p in root.rglob("S003_001_*.png"):
        p.unlink()
    with pytest.raises(DataFormatError, match="no images of sequence S003_001"):
        build_index("ckplus", root, num_folds=2)
    with pytest.raises(DataFormatError, match="fewer than the 9 needed"):
        build_index("ckplus", _original(tmp_path / "c"), frames=9, num_folds=2)
    with pytest.raises(ValueError, match=r"cannot fill 10 subject-disjoint folds"):
        build_index("ckplus", _original(tmp_path / "d"))


def test_ck48_folders_subjects_from_file_names(tmp_path):
    root = _ck48(tmp_path, n_subjects=6)
    for name in ("ckplus", "ckplus48"):
        df = build_index(name, root, num_folds=3)
        assert df.attrs["info"]["layout"] == "folders" and len(df) == 42
        assert df["subject"].nunique() == 6 and df.groupby("subject")["fold"].nunique().max() == 1
        assert (df["label"] == df["path"].str.split("/").str[-2].map(EMOTIONS.index)).all()
    blocks = build_index("ckplus48", root, num_folds=3, fold_scheme="blocks")
    assert blocks.groupby("subject")["fold"].first().tolist() == [0, 0, 1, 1, 2, 2]
    (root / "anger" / "face.png").write_bytes((root / "anger").glob("*.png").__next__().read_bytes())
    with pytest.raises(DataFormatError, match="face.png: file name does not start with S<subject>"):
        build_index("ckplus48", root, num_folds=3)


def test_ck48_load_dataset_subject_disjoint_and_num_folds_param_rejected(tmp_path):
    root = _ck48(tmp_path, n_subjects=10)
    d = load_dataset(DataConfig(dataset="ckplus48", root=str(root), fold=0, num_folds=5, image_size=16, in_chans=3))
    assert d.train.images.shape[1:] == (3, 16, 16) and len(d.test) == 14
    assert not set(d.test.subjects) & set(d.train.subjects) | set(d.val.subjects) & set(d.test.subjects)
    with pytest.raises(ValueError, match="set data.num_folds instead"):
        load_dataset(DataConfig(dataset="ckplus48", root=str(root), fold=0, params={"num_folds": 5}))
