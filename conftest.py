"""Root pytest hooks. nbval re-executes the notebooks, which train their smoke grid into
``runs/smoke``; finished runs there would be reused instead of retrained, and nbval would then
compare old results with the committed outputs. So whenever notebooks are collected, the smoke
runs folder is emptied first (however pytest was called, not only by run_tests.sh)."""
import shutil
from pathlib import Path

SMOKE_RUNS = Path(__file__).resolve().parent / "runs" / "smoke"


def pytest_collection_finish(session):
    if any(item.path.suffix == ".ipynb" for item in session.items):
        shutil.rmtree(SMOKE_RUNS, ignore_errors=True)
