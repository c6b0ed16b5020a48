"""A run killed mid-epoch and restarted with the same command ends exactly where an
uninterrupted run ends (CPU, fixed seed)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tiny_runs import tiny_overrides

pytestmark = pytest.mark.slow


def _command(runs_dir, **extra):
    sets = tiny_overrides(runs_dir, **(extra or {"stages.0.epochs": 3,
                                                 "stages.0.loss": "center+weighted_softmax"}))
    return [sys.executable, "-m", "fer_utils", "train", "--no-progress",
            *[arg for s in sets for arg in ("--set", s)]]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    env = {**os.environ}
    ref = subprocess.run(_command(tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]

    runs = tmp_path / "killed"
    proc = subprocess.Popen(_command(runs), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    csv = None
    while time.time() < deadline:
        found = list(runs.glob("*/checkpoints/last.pt"))
        if found:  # epoch 0 checkpointed; the run is now inside epoch 1
            csv = found[0].parents[1] / "metrics.csv"
            break
        time.sleep(0.05)
    assert csv is not None, "the run never finished its first epoch"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_dir = csv.parent
    assert not (run_dir / "metrics.json").exists(), "killed too late: the run had finished"
    assert (run_dir / "checkpoints" / "last.pt").exists()

    resumed = subprocess.run(_command(runs), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout

    ref_dir = next((tmp_path / "ref").glob("*/metrics.json")).parent
    a = json.loads((ref_dir / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert b["test"] == a["test"]
    assert b["best_epoch"] == a["best_epoch"]
    assert (run_dir / "metrics.csv").read_text().count("\n") == (ref_dir / "metrics.csv").read_text().count("\n")


TWO_STAGE_ONECYCLE = {
    "model.head": "f",
    "stages": "[{loss: softmax, epochs: 2, schedule: onecycle, lr: 0.05}, "
              "{loss: focal, epochs: 3, schedule: onecycle, lr: 0.02, reinit_head: true, ema: 0.9}]"}


def test_onecycle_two_stage_run_killed_in_stage_two_resumes_identically(tmp_path):
    """Killed after the first epoch of stage 2 (its one-cycle schedule part-way, its weight
    average part-built), the resumed run logs the same per-epoch values as an uninterrupted
    one and tests the same model."""
    ref = subprocess.run(_command(tmp_path / "ref", **TWO_STAGE_ONECYCLE), capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    runs = tmp_path / "killed"
    proc = subprocess.Popen(_command(runs, **TWO_STAGE_ONECYCLE), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline, csv = time.time() + 300, None
    while time.time() < deadline:
        found = list(runs.glob("*/metrics.csv"))
        if found and found[0].read_text().count("\n") >= 4:  # header + 2 + stage 2's first epoch
            csv = found[0]
            break
        time.sleep(0.05)
    assert csv is not None, "the run never reached stage 2"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (csv.parent / "metrics.json").exists(), "killed too late: the run had finished"
    resumed = subprocess.run(_command(runs, **TWO_STAGE_ONECYCLE), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # from stage 2's first epoch, or (killed between metrics.csv and last.pt) the end of stage 1
    assert "resuming" in resumed.stdout
    if "at stage 0" in resumed.stdout:  # the kill missed stage 2's checkpoint: not the case tested
        pytest.skip("killed before stage 2's first checkpoint; the average's restore was not exercised")

    import pandas as pd
    ref_dir = next((tmp_path / "ref").glob("*/metrics.json")).parent
    timing = ["epoch_time_s", "elapsed_s"]
    a = pd.read_csv(ref_dir / "metrics.csv").drop(columns=timing)
    b = pd.read_csv(csv).drop(columns=timing)
    assert list(b["stage"]) == [0, 0, 1, 1, 1]
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert json.loads((csv.parent / "metrics.json").read_text())["test"] == \
        json.loads((ref_dir / "metrics.json").read_text())["test"]
