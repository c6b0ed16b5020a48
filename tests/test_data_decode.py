"""Decode-once pipeline: mode conversion, crops, bad files, content hashes, cache invalidation."""
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer_utils.data import decode
from fer_utils.data.decode import (decode_index, decode_rows, duplicate_report, pixels_image, square_box,
                                   to_mode)
from fer_utils.data.formats import DataFormatError, finalize_index, subject_codes


def _png(path, seed, size=(12, 10), mode="L"):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], len(mode))
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return str(path)


def _index(paths, labels=None):
    return pd.DataFrame({"path": [str(p) for p in paths], "id": [os.path.basename(p) for p in paths],
                         "label": labels if labels is not None else [0] * len(paths)})


def test_to_mode_rescales_16_bit_and_drops_alpha():
    a16 = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    im16 = Image.fromarray(a16)
    assert im16.mode.startswith("I;16") or im16.mode == "I"
    assert np.asarray(to_mode(im16, "L")).tolist() == [[0, 100, 255]]
    rgba = Image.fromarray(np.dstack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30, 0)]), "RGBA")
    assert np.asarray(to_mode(rgba, "RGB"))[0, 0].tolist() == [10, 20, 30]
    assert to_mode(Image.new("LA", (2, 2)), "L").mode == "L"
    gray = Image.fromarray(np.full((2, 2), 77, np.uint8), "L")
    assert np.asarray(to_mode(gray, "RGB"))[0, 0].tolist() == [77, 77, 77]
    assert to_mode(gray.convert("P"), "L").mode == "L"


def test_square_box_grows_by_margin_about_the_centre():
    assert square_box((10, 20, 40, 20), 0.0) == (10, 10, 50, 50)
    assert square_box((10, 10, 20, 20), 0.5) == (0, 0, 40, 40)


def test_box_crop_pads_outside_the_image(tmp_path):
    p = tmp_path / "a.png"
    Image.fromarray(np.full((20, 20), 200, np.uint8), "L").save(p)
    df = _index([p]).assign(bbox=[(10, 10, 20, 20)])  # right/bottom half lies outside
    out = decode_rows(df, 20, 1, crop="box", progress=False)["images"][0, 0]
    assert (out[:10, :10] == 200).all() and (out[10:, 10:] == 0).all()


def test_bad_files_are_listed_together(tmp_path):
    good = _png(tmp_path / "good.png", 0)
    (tmp_path / "text.png").write_text("not an image")
    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    (tmp_path / "cut.jpg").write_bytes(full.read_bytes()[:400])
    df = _index([good, tmp_path / "text.png", tmp_path / "cut.jpg", tmp_path / "gone.png"])
    with pytest.raises(DataFormatError) as err:
        decode_rows(df, 8, 1, progress=False)
    msg = str(err.value)
    assert msg.startswith("3 of 4 images could not be decoded")
    assert "text.png: not a readable image" in msg and "cut.jpg: cannot decode" in msg
    assert "gone.png: file not found" in msg


def test_pixels_rows_checked():
    assert pixels_image(" ".join(["7"] * 4), "x", side=2).size == (2, 2)
    with pytest.raises(DataFormatError, match="f.csv#3: 3 pixel values, expected 4"):
        pixels_image("1 2 3", "f.csv#3", side=2)


def test_duplicate_report_counts_across_and_within_parts():
    hashes = np.array([1, 2, 2, 3, 1, 9, 3], dtype=np.uint64)
    parts = np.array(["train", "train", "train", "val", "test", "test", "test"])
    assert duplicate_report(hashes, parts) == {"train~test": 1, "val~test": 1, "within": 1}


def test_content_hash_equal_for_equal_pixels_across_formats(tmp_path):
    a = _png(tmp_path / "a.png", 3)
    Image.open(a).save(tmp_path / "b.bmp")
    out = decode_rows(_index([a, tmp_path / "b.bmp", _png(tmp_path / "c.png", 4)]), 8, 1, progress=False)
    assert out["hashes"][0] == out["hashes"][1] != out["hashes"][2]


def test_decode_once_then_cached_and_invalidated_by_a_changed_file(tmp_path, monkeypatch):
    paths = [_png(tmp_path / f"{i}.png", i) for i in range(3)]
    calls = []
    real = decode.decode_rows
    monkeypatch.setattr(decode, "decode_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = decode_index("unit", _index(paths), 8, 1, progress=False)
    again = decode_index("unit", _index(paths), 8, 1, progress=False)
    assert len(calls) == 1 and isinstance(again["images"], np.memmap)
    assert np.array_equal(first["images"], again["images"]) and first["images"].shape == (3, 1, 8, 8)
    _png(paths[1], 99, size=(14, 10))  # same path, new content and size
    changed = decode_index("unit", _index(paths), 8, 1, progress=False)
    assert len(calls) == 2 and not np.array_equal(changed["images"][1], first["images"][1])
    decode_index("unit", _index(paths), 16, 1, progress=False)  # another size: another entry
    assert len(calls) == 3


def test_finalize_index_rejects_leaks_and_bad_labels():
    df = pd.DataFrame({"path": list("abcd"), "id": ["x", "y", "x", "z"], "label": [0, 1, 0, 1],
                       "split": ["train", "train", "test", "test"]})
    with pytest.raises(ValueError, match="leakage: 1 image ids shared by test and train|by train and test"):
        finalize_index(df, ("a", "b"), "unit")
    ok = finalize_index(df.assign(id=list("pqrs"), split=["test", "train", "val", "train"]), ("a", "b"), "unit")
    assert ok["split"].tolist() == ["train", "train", "val", "test"]
    with pytest.raises(DataFormatError, match=r"no images for class\(es\) \['c'\]"):
        finalize_index(df.assign(id=list("pqrs")), ("a", "b", "c"), "unit")
    with pytest.raises(DataFormatError, match="outside"):
        finalize_index(df.assign(id=list("pqrs"), label=[0, 1, 2, 0]), ("a", "b"), "unit")
    folds = df.assign(id=list("pqrs"), subject=["S1", "S1", "S2", "S3"], fold=[0, 1, 1, 0]).drop(columns="split")
    with pytest.raises(ValueError, match="leakage: 1 subjects"):
        finalize_index(folds, ("a", "b"), "unit")


def test_subject_codes():
    assert subject_codes(["S005", "S010", "S005"]).tolist() == [5, 10, 5]
    assert subject_codes(["b", "a", "b"]).tolist() == [1, 0, 1]


def test_empty_location_variables_mean_the_defaults(monkeypatch):
    """FER_CACHE_DIR= or FER_DATA_ROOT= (set but empty) must not put the cache or the data
    root in whatever folder the command runs from."""
    from fer_utils.data.cache import cache_dir
    from fer_utils.paths import PROJECT_ROOT, shared_data_root
    monkeypatch.setenv("FER_CACHE_DIR", "")
    monkeypatch.setenv("FER_DATA_ROOT", "")
    assert cache_dir() == PROJECT_ROOT / ".cache"
    assert shared_data_root() == PROJECT_ROOT.parent / "shared" / "data"
