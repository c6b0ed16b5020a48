"""AffectNet reader on tiny fixtures: CSV release (header sniffed, boxes) and the .npy release."""
import zlib

import numpy as np
import pytest
from PIL import Image

from fer_utils.config import DataConfig
from fer_utils.data import build_index, class_names, load_dataset
from fer_utils.data.formats import DataFormatError

LANDMARKS = ";".join(["1.0"] * 136)
HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
          "valence,arousal")


def _image(path, seed):
    """40x40 dark noise with a white 20x20 face at (10, 10)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 50, (40, 40, 3), dtype=np.uint8)
    a[10:30, 10:30] = 255
    Image.fromarray(a).save(path)


def _row(rel, code, box=(10, 10, 20, 20)):
    return f"{rel},{','.join(map(str, box))},{LANDMARKS},{code},0.1,-0.2"


def _csv_release(root, train_header=False, val_header=True, per_class=3, extra_train=()):
    images = root / "Manually_Annotated" / "Manually_Annotated_Images"
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    for name, header, n, extra in (("training", train_header, per_class, extra_train),
                                   ("validation", val_header, 1, ())):
        rows = [HEADER] if header else []
        for code in range(8):
            for k in range(n):
                rel = f"{name[:3]}{code}/{k}.jpg"
                # crc32, not hash(): hash() of a str changes with PYTHONHASHSEED
                _image(images / rel, zlib.crc32(f"{name}/{code}/{k}".encode()) % 1000)
                rows.append(_row(rel, code))
        for code in (8, 9, 10):  # None, Uncertain, No-Face: skipped by the protocol
            rows.append(_row(f"{name[:3]}0/0.jpg", code))
        rows.extend(extra)
        (lists / f"{name}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_class_names_8_or_7():
    assert class_names("affectnet") == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger",
                                        "contempt")
    assert class_names("affectnet", num_classes=7)[-1] == "anger"
    with pytest.raises(ValueError, match="num_classes"):
        class_names("affectnet", num_classes=6)


@pytest.mark.parametrize("train_header, val_header", [(False, True), (True, False)])
def test_csv_release_protocol(tmp_path, train_header, val_header):
    extra = [_row("tra1/0.jpg", 1, box=(10, 10, -5, 20))]  # invalid box: skipped
    df = build_index("affectnet", _csv_release(tmp_path, train_header, val_header, extra_train=extra),
                     val_per_class=1)
    assert df.groupby("split").size().to_dict() == {"train": 16, "val": 8, "test": 8}
    assert np.bincount(df.loc[df["split"] == "val", "label"]).tolist() == [1] * 8
    assert df["bbox"].iloc[0] == (10.0, 10.0, 20.0, 20.0)
    info = df.attrs["info"]
    assert info["skipped_train"] == {"none_uncertain_noface": 3, "invalid_box": 1, "contempt": 0}
    assert info["skipped_test"]["none_uncertain_noface"] == 3 and info["layout"] == "csv"
    seven = build_index("affectnet", tmp_path, val_per_class=1, num_classes=7, val_seed=1)
    assert seven["label"].max() == 6 and seven.attrs["info"]["skipped_train"]["contempt"] == 3
    assert len(seven) == 28


def test_csv_release_crops_by_box(tmp_path):
    root = _csv_release(tmp_path)
    cfg = DataConfig(dataset="affectnet", root=str(root), image_size=16, params={"val_per_class": 1, "margin": 0.0})
    d = load_dataset(cfg)
    assert d.train.images.shape == (16, 3, 16, 16) and (d.train.images > 200).all()  # all face (JPEG: ~255)
    cfg.params["margin"] = 0.25  # grown box includes dark background
    assert (load_dataset(cfg).train.images < 100).any()
    assert d.info["crop"] == "box" and d.info["test"] == "official validation set"


@pytest.mark.parametrize("line, reason", [
    (f"tra0/0.jpg,1,2,3,4,{LANDMARKS},1,0.1", "line 28 has 8 fields, expected 9"),
    (f"tra0/0.jpg,1,2,3,4,{LANDMARKS},11,0.1,0.1", "line 28: unknown expression code 11"),
    (f"tra0/0.jpg,1,2,x,4,{LANDMARKS},1,0.1,0.1", "line 28: expression or box is not a number"),
])
def test_csv_bad_rows_name_file_and_line(tmp_path, line, reason):
    root = _csv_release(tmp_path, per_class=3, extra_train=[line])
    with pytest.raises(DataFormatError, match=f"training.csv: {reason}"):
        build_index("affectnet", root, val_per_class=1)


def _npy_release(root, encode):
    for set_name, n in (("train_set", 3), ("val_set", 1)):
        for code in range(8):
            for k in range(n):
                stem = f"{code * 10 + k}"
                _image(root / set_name / "images" / f"{stem}.jpg", code * 10 + k)
                (root / set_name / "annotations").mkdir(exist_ok=True)
                np.save(root / set_name / "annotations" / f"{stem}_exp.npy", encode(code))
                np.save(root / set_name / "annotations" / f"{stem}_val.npy", np.array("0.5"))
    return root


@pytest.mark.parametrize("encode", [lambda c: np.array(str(c)), lambda c: np.array(f"{c}.0"),
                                    lambda c: np.array(c, dtype=np.int64), lambda c: np.array(float(c))])
def test_npy_release_labels_stored_any_way(tmp_path, encode):
    df = build_index("affectnet", _npy_release(tmp_path, encode), val_per_class=1)
    assert df.attrs["info"]["layout"] == "npy" and "bbox" not in df
    assert df.groupby("split").size().to_dict() == {"train": 16, "val": 8, "test": 8}
    assert (df["label"] == df["id"].str.split("/").str[1].astype(int) // 10).all()


def test_npy_release_load_and_missing_annotation(tmp_path):
    root = _npy_release(tmp_path, lambda c: np.array(str(c)))
    d = load_dataset(DataConfig(dataset="affectnet", root=str(root), image_size=20, params={"val_per_class": 1}))
    assert d.test.images.shape == (8, 3, 20, 20) and d.info["crop"] == "none"
    (root / "val_set" / "annotations" / "30_exp.npy").unlink()
    with pytest.raises(DataFormatError, match="have no annotation, e.g. .*30_exp.npy"):
        build_index("affectnet", root)


def test_missing_layout_and_empty_class(tmp_path):
    with pytest.raises(DataFormatError, match="neither the CSV release"):
        build_index("affectnet", tmp_path)
    root = _csv_release(tmp_path / "r")
    lines = (root / "Manually_Annotated_file_lists" / "validation.csv").read_text().splitlines()
    kept = [ln for ln in lines if ",7,0.1" not in ln]  # no contempt in validation
    (root / "Manually_Annotated_file_lists" / "validation.csv").write_text("\n".join(kept) + "\n")
    with pytest.raises(DataFormatError, match=r"no validation images for class\(es\) \['contempt'\]"):
        build_index("affectnet", root, val_per_class=1)
