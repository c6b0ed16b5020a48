"""Integration tests on the real copies in ../shared/data (FER_DATA_ROOT overrides); skipped without them."""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_utils.config import DataConfig
from fer_utils.data import build_index, class_names, load_dataset
from fer_utils.data.decode import decode_rows

DATA = Path(os.environ.get("FER_DATA_ROOT", Path(__file__).resolve().parents[2] / "shared" / "data"))
FER = DATA / "fer2013"
CK48 = DATA / "CK+48"
FER_TRAIN = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "sad": 4830, "surprise": 3171,
             "neutral": 4965}
CK48_COUNTS = {"anger": 135, "contempt": 54, "disgust": 177, "fear": 75, "happy": 207, "sadness": 84,
               "surprise": 249}


def _counts(df, name):
    names = class_names(name)
    return dict(zip(names, np.bincount(df["label"], minlength=len(names)).tolist()))


@pytest.mark.shared_data
@pytest.mark.skipif(not FER.is_dir(), reason=f"{FER} not present")
def test_fer2013_folders_counts_and_public_test_only():
    with pytest.warns(UserWarning, match="no PrivateTest images"):
        df = build_index("fer2013", FER)
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    assert len(train) == 28_709 and _counts(train, "fer2013") == FER_TRAIN
    assert len(test) == 3_589 and set(test["usage"]) == {"PublicTest"} and "val" not in set(df["split"])
    assert df.attrs["info"]["test_split"] == "PublicTest"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(build_index("fer2013", FER, test_split="PublicTest")) == 32_298


@pytest.mark.shared_data
@pytest.mark.skipif(not FER.is_dir(), reason=f"{FER} not present")
def test_fer2013_decode_subset_matches_pil():
    df = build_index("fer2013", FER, test_split="PublicTest")
    sample = df.groupby(["split", "label"], group_keys=False).head(5)
    out = decode_rows(sample, 48, 1, progress=False)
    assert out["images"].shape == (70, 1, 48, 48)
    first = np.asarray(Image.open(sample["path"].iloc[0]).convert("L"))
    assert np.array_equal(out["images"][0, 0], first)
    assert len(np.unique(out["hashes"])) > 60


@pytest.mark.shared_data
@pytest.mark.skipif(not CK48.is_dir(), reason=f"{CK48} not present")
def test_ck48_index_counts_subjects_and_folds():
    df = build_index("ckplus48", CK48)
    assert len(df) == 981 and df["subject"].nunique() == 118 and _counts(df, "ckplus48") == CK48_COUNTS
    assert sorted(df["fold"].unique()) == list(range(10))
    assert df.groupby("subject")["fold"].nunique().max() == 1
    subjects = sorted(df["subject"].unique())
    assert all(df.loc[df["subject"] == s, "fold"].iloc[0] == i % 10 for i, s in enumerate(subjects))


@pytest.mark.shared_data
@pytest.mark.skipif(not CK48.is_dir(), reason=f"{CK48} not present")
def test_ck48_load_dataset_subject_disjoint():
    cfg = DataConfig(dataset="ckplus48", root=str(CK48), fold=0, image_size=48, in_chans=1)
    d = load_dataset(cfg)
    assert len(d.train) + len(d.val) + len(d.test) == 981
    assert d.test.images.shape[1:] == (1, 48, 48) and d.test.images.dtype == np.uint8
    assert not set(d.test.subjects) & (set(d.train.subjects) | set(d.val.subjects))
    assert d.info["n_subjects"] == 118 and d.info["fold"] == 0
    assert d.class_names == tuple(CK48_COUNTS)
    # the inner validation split holds out whole subjects too
    assert not set(d.val.subjects) & set(d.train.subjects)
    assert d.info["val_holdout"] == "subjects"
