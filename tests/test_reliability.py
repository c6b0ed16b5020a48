"""Bad input never costs finished work: unusual paths load, corrupt files get a clear error
naming them, and a failing run leaves earlier run directories and tables untouched."""
import json

import numpy as np
import pytest
from PIL import Image

from tiny_runs import tiny_overrides
from fer_utils.config import DataConfig, load_config
from fer_utils.data import load_dataset
from fer_utils.results import write_table
from fer_utils.training import train_run

EMOTIONS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def _ck48_copy(root, subjects=12):
    """A CK+48-format folder: <emotion>/S<subject>_<seq>_<frame>.png, 48x48 grayscale."""
    rng = np.random.default_rng(0)
    for e, emotion in enumerate(EMOTIONS):
        (root / emotion).mkdir(parents=True)
        for s in range(subjects):
            for frame in range(3):
                pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                Image.fromarray(pixels).save(root / emotion / f"S{100 + s:03d}_{e + 1:03d}_{frame + 10:08d}.png")
    return root


@pytest.fixture
def unusual_root(tmp_path):
    return _ck48_copy(tmp_path / "data sets" / "CK+ données (copie)" / "CK+48")


def test_paths_with_spaces_and_non_ascii_load(unusual_root):
    data = load_dataset(DataConfig(dataset="ckplus48", root=str(unusual_root), fold=0, image_size=32,
                                   in_chans=1, num_folds=4))
    assert len(data.train) + len(data.val) + len(data.test) == 7 * 12 * 3
    assert not set(data.test.subjects) & set(data.train.subjects)


def test_truncated_image_gets_an_error_naming_it(unusual_root):
    victim = unusual_root / "fear" / "S105_004_00000011.png"
    victim.write_bytes(victim.read_bytes()[:60])
    with pytest.raises(Exception) as err:
        load_dataset(DataConfig(dataset="ckplus48", root=str(unusual_root), fold=0, image_size=32,
                                in_chans=1, num_folds=4))
    assert "S105_004_00000011.png" in str(err.value)


def test_a_failing_run_loses_nothing_already_written(tmp_path, unusual_root):
    runs = tmp_path / "runs"
    common = {"data.dataset": "ckplus48", "data.root": f"'{unusual_root}'", "data.fold": 0,
              "data.num_folds": 4, "data.in_chans": 1, "data.params": "{}", "stages.0.epochs": 1,
              "model.head": "f"}
    finished = train_run(load_config(None, tiny_overrides(runs, **common)), progress=False)
    metrics_before = (finished / "metrics.json").read_text()
    table_md, _ = write_table(__import__("pandas").DataFrame({"a": [1]}), tmp_path / "tables", "t")
    table_before = table_md.read_text()

    (unusual_root / "happy" / "S103_005_00000010.png").write_bytes(b"not a png")
    with pytest.raises(Exception, match="S103_005_00000010.png"):
        train_run(load_config(None, tiny_overrides(runs, **{**common, "seed": 1})), progress=False)
    assert (finished / "metrics.json").read_text() == metrics_before
    assert json.loads(metrics_before)["test"]["n"] > 0
    assert table_md.read_text() == table_before
    assert not list(runs.glob("*seed1*/metrics.json"))


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    import os
    from fer_utils import io as fio
    (tmp_path / "plain.txt").write_text("x")
    written = fio.write_text(tmp_path / "atomic.txt", "x")
    assert os.stat(written).st_mode & 0o777 == os.stat(tmp_path / "plain.txt").st_mode & 0o777


def test_a_write_interrupted_before_its_rename_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """A kill between writing the temporary file and renaming it (simulated: the rename
    raises KeyboardInterrupt) leaves the previous content and nothing else in the folder."""
    import os
    from pathlib import Path
    from fer_utils import io as fio
    target = tmp_path / "metrics.json"
    fio.write_json(target, {"epoch": 1})

    def interrupted_replace(src, dst):
        assert Path(src).read_text().strip().startswith("{")  # the new file was fully written
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        fio.write_json(target, {"epoch": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
