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
