"""RAF-DB basic reader on a tiny fixture."""
import numpy as np
import pytest
from PIL import Image

from fer_utils.config import DataConfig
from fer_utils.data import build_index, class_names, load_dataset
from fer_utils.data.formats import DataFormatError


def _rafdb(root, n_train=3, n_test=1):
    base = root / "basic"
    (base / "EmoLabel").mkdir(parents=True)
    (base / "Image" / "aligned").mkdir(parents=True)
    lines, i = [], 0
    for split, n in (("train", n_train), ("test", n_test)):
        for code in range(1, 8):
            for _ in range(n):
                i += 1
                name = f"{split}_{i:05d}"
                a = np.random.default_rng(i).integers(0, 256, (100, 100, 3), dtype=np.uint8)
                Image.fromarray(a).save(base / "Image" / "aligned" / f"{name}_aligned.jpg")
                lines.append(f"{name}.jpg {code}")
    (base / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def test_labels_and_splits(tmp_path):
    root = _rafdb(tmp_path)
    assert class_names("rafdb") == ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
    for r in (root, root / "basic"):
        df = build_index("rafdb", r)
        assert df.groupby("split").size().to_dict() == {"train": 21, "test": 7}
        assert np.bincount(df.loc[df["split"] == "train", "label"]).tolist() == [3] * 7
        assert df["path"].iloc[0].endswith("train_00001_aligned.jpg") and df["label"].iloc[0] == 0


def test_load_dataset_holds_val_out_of_train(tmp_path):
    d = load_dataset(DataConfig(dataset="rafdb", root=str(_rafdb(tmp_path)), image_size=32, val_fraction=0.34))
    assert (len(d.train), len(d.val), len(d.test)) == (14, 7, 7)
    assert d.test.images.shape == (7, 3, 32, 32) and d.info["crop"] == "none"


@pytest.mark.parametrize("line, reason", [("train_09999.jpg", "line 29 has 1 fields, expected 2"),
                                          ("train_09999.jpg 8", "line 29: unknown label '8'"),
                                          ("val_00001.jpg 1", "does not start with train_ or test_")])
def test_bad_list_lines(tmp_path, line, reason):
    root = _rafdb(tmp_path)
    lst = root / "basic" / "EmoLabel" / "list_patition_label.txt"
    lst.write_text(lst.read_text() + line + "\n")
    with pytest.raises(DataFormatError, match=reason):
        build_index("rafdb", root)


def test_missing_images_listed(tmp_path):
    root = _rafdb(tmp_path)
    (root / "basic" / "Image" / "aligned" / "test_00022_aligned.jpg").unlink()
    with pytest.raises(DataFormatError, match="1 images listed in .* are missing, e.g. .*test_00022_aligned"):
        build_index("rafdb", root)
    with pytest.raises(DataFormatError, match="no EmoLabel/ folder"):
        build_index("rafdb", root / "basic" / "Image")
