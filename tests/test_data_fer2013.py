"""FER2013 reader on tiny fixtures: CSV (with/without header) and image folders."""
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from fer_utils.config import DataConfig
from fer_utils.data import build_index, class_names, load_dataset
from fer_utils.data.fer2013 import CLASS_NAMES
from fer_utils.data.formats import DataFormatError

FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # alphabetical


def _pixels(seed):
    return " ".join(map(str, np.random.default_rng(seed).integers(0, 256, 48 * 48)))


def _csv(path, usages=("Training",) * 14 + ("PublicTest",) * 7 + ("PrivateTest",) * 7, header=True):
    lines = ["emotion,pixels,Usage"] if header else []
    lines += [f"{i % 7},{_pixels(i)},{u}" for i, u in enumerate(usages)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _folders(root, halves=("PublicTest",), per_class=3):
    seed = 0
    for top, prefixes in (("train", ("Training",)), ("test", halves)):
        for name in FOLDERS:
            (root / top / name).mkdir(parents=True)
            for prefix in prefixes:
                for _ in range(per_class):
                    seed += 1
                    img = np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)
                    Image.fromarray(img).save(root / top / name / f"{prefix}_{1000 + seed}.png")
    return root


def test_class_order_is_the_csv_order():
    assert class_names("fer2013") == CLASS_NAMES == ("angry", "disgust", "fear", "happy", "sad", "surprise",
                                                     "neutral")


@pytest.mark.parametrize("header", [True, False])
def test_csv_usages_map_to_train_val_test(tmp_path, header):
    df = build_index("fer2013", _csv(tmp_path / "fer2013.csv", header=header))
    assert df.groupby("split").size().to_dict() == {"train": 14, "val": 7, "test": 7}
    assert df["label"].tolist()[:7] == list(range(7))
    assert df.attrs["info"]["test_split"] == "PrivateTest" and df.attrs["info"]["validation"] == "PublicTest"
    assert build_index("fer2013", tmp_path).shape == df.shape  # the folder holding the CSV


def test_csv_through_load_dataset_uses_public_as_val(tmp_path):
    _csv(tmp_path / "fer2013.csv")
    d = load_dataset(DataConfig(dataset="fer2013", root=str(tmp_path), image_size=24, in_chans=1))
    assert (len(d.train), len(d.val), len(d.test)) == (14, 7, 7)
    assert d.train.images.shape == (14, 1, 24, 24) and d.train.images.dtype == np.uint8
    assert d.info["validation"] == "PublicTest" and "val_fraction" not in d.info
    raw = np.array(_pixels(0).split(), dtype=np.uint8).reshape(48, 48)
    full = load_dataset(DataConfig(dataset="fer2013", root=str(tmp_path), image_size=48, in_chans=1))
    assert np.array_equal(full.train.images[0, 0], raw)


@pytest.mark.parametrize("line, reason", [
    ("3,1 2 3", r"line 3 has 2 fields, expected 3"),
    ("9,{px},Training", r"line 3: unknown emotion label 9"),
    ("x,{px},Training", r"line 3: emotion 'x' is not an integer"),
    ("3,{px},Validation", r"line 3: unknown Usage 'Validation'"),
])
def test_csv_bad_rows_name_file_and_line(tmp_path, line, reason):
    path = _csv(tmp_path / "fer2013.csv", usages=("Training",))
    path.write_text(path.read_text() + line.format(px=_pixels(5)) + "\n")
    with pytest.raises(DataFormatError, match="fer2013.csv: " + reason):
        build_index("fer2013", path)


def test_csv_wrong_pixel_count_named_at_decode(tmp_path):
    path = _csv(tmp_path / "fer2013.csv", usages=("Training",) * 7 + ("PublicTest",) * 7)
    path.write_text(path.read_text() + "1,1 2 3,Training\n")
    with pytest.raises(DataFormatError, match=r"fer2013.csv#16: 3 pixel values, expected 2304"):
        load_dataset(DataConfig(dataset="fer2013", root=str(path), image_size=24,
                                params={"test_split": "PublicTest"}))


def test_folders_with_both_halves(tmp_path):
    df = build_index("fer2013", _folders(tmp_path, ("PublicTest", "PrivateTest"), per_class=1))
    assert df.groupby("split").size().to_dict() == {"train": 7, "val": 7, "test": 7}
    neutral = df[df["path"].str.contains("/neutral/")]
    assert (neutral["label"] == CLASS_NAMES.index("neutral")).all()  # folder order != label order


def test_public_only_folder_is_said_to_be_public_test(tmp_path):
    root = _folders(tmp_path)
    with pytest.warns(UserWarning, match="no PrivateTest images: PublicTest .21 images. is the TEST split"):
        df = build_index("fer2013", root)
    assert df.groupby("split").size().to_dict() == {"train": 21, "test": 21}
    assert df.attrs["info"]["test_split"] == "PublicTest"
    with pytest.raises(DataFormatError, match="holds no PrivateTest images.*test_split='PublicTest'"):
        build_index("fer2013", root, test_split="PrivateTest")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = build_index("fer2013", root, test_split="PublicTest")
    assert "protocol_note" not in explicit.attrs["info"]
    with pytest.warns(UserWarning):
        d = load_dataset(DataConfig(dataset="fer2013", root=str(root), image_size=16, val_fraction=0.3))
    assert d.info["test_split"] == "PublicTest" and "PublicTest" in d.info["protocol_note"]
    assert (len(d.train), len(d.val), len(d.test)) == (14, 7, 21)  # val held out of train, stratified
    assert d.class_counts("val") == [1] * 7


def test_private_only_folder_holds_val_out_of_train(tmp_path):
    with pytest.warns(UserWarning, match="no PublicTest images: validation is held out of train"):
        df = build_index("fer2013", _folders(tmp_path, ("PrivateTest",), per_class=1))
    assert df.groupby("split").size().to_dict() == {"train": 7, "test": 7}
    assert df.attrs["info"]["test_split"] == "PrivateTest"


def test_unnamed_test_half_read_as_test_with_warning(tmp_path):
    root = _folders(tmp_path, per_class=1)
    for p in (root / "test").rglob("*.png"):
        p.rename(p.with_name(p.name.replace("PublicTest_", "im")))
    with pytest.warns(UserWarning, match="do not say PublicTest or PrivateTest"):
        df = build_index("fer2013", root)
    assert (df["split"] == "test").sum() == 7 and (df["usage"] == "Test").sum() == 7
    with pytest.raises(DataFormatError, match="cannot select PrivateTest"):
        build_index("fer2013", root, test_split="PrivateTest")


def test_duplicates_across_splits_reported(tmp_path, capsys):
    root = _folders(tmp_path, ("PublicTest", "PrivateTest"), per_class=1)
    src = next((root / "train" / "happy").iterdir())
    shutil.copy(src, root / "test" / "happy" / "PrivateTest_99.png")
    d = load_dataset(DataConfig(dataset="fer2013", root=str(root), image_size=16))
    assert d.info["duplicates"] == {"train~test": 1}
    out, err = capsys.readouterr()  # a notice, not output: `evaluate` keeps stdout pure JSON
    assert "exact duplicate images" in err and "exact duplicate images" not in out


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset root not found"):
        build_index("fer2013", tmp_path / "nowhere")
    root = _folders(tmp_path / "a", per_class=1)
    (root / "train" / "contempt").mkdir()
    with pytest.raises(DataFormatError, match=r"unknown class folder\(s\) \['contempt'\] in train/"):
        build_index("fer2013", root)
    root = _folders(tmp_path / "b", per_class=1)
    shutil.rmtree(root / "train" / "disgust")
    with pytest.raises(DataFormatError, match=r"no images for class\(es\) \['disgust'\] in train/"):
        build_index("fer2013", root)
    with pytest.raises(DataFormatError, match="no train/ folder"):
        build_index("fer2013", tmp_path)
    with pytest.raises(ValueError, match=r"unknown fer2013 params \['test'\]"):
        build_index("fer2013", root, test="x")
