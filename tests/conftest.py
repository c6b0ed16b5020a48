import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FER_DATA_ROOT", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests build their decode-once cache entries in a temporary folder."""
    if "FER_CACHE_DIR" not in os.environ:
        os.environ["FER_CACHE_DIR"] = str(tmp_path_factory.mktemp("fer-cache"))
    yield


def tiny_overrides(runs_dir, **extra) -> list[str]:
    """A run small enough for unit tests: 32 px synthetic faces, ResNet-18, 2 epochs."""
    base = {"runs_dir": str(runs_dir), "data.image_size": 32, "data.params.n_train": 320,
            "data.params.n_test_per_class": 12, "batch_size": 32, "bootstrap": 50,
            "stages.0.epochs": 2, "num_threads": 2}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
