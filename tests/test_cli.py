"""Every command-line entry point turns input and configuration errors into one line on
stderr and exit status 2; --debug (or FER_DEBUG=1) shows the traceback."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, env=None):
    full_env = {**os.environ, "FER_DEBUG": "0", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=full_env)


def _assert_one_line(res, *words):
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("override, words", [
    ("stages.0.epoch=3", ["epoch"]),                      # a typo of stages.0.epochs
    ("stages.0.loss=no_such_loss", ["no_such_loss"]),
    ("stages.0.lr=-1", ["lr"]),
    ("model.pretrained=/no/such/weights.pth", ["/no/such/weights.pth"]),
    ("device=cuda:7", ["cuda"]),
])
def test_train_configuration_errors_are_one_line(override, words, tmp_path):
    import torch
    if override.startswith("device") and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = _cli("-m", "fer_utils", "train", "--set", override, "--set", f"runs_dir={tmp_path}")
    _assert_one_line(res, "python -m fer_utils: error:", *words)


def test_debug_shows_the_traceback(tmp_path):
    res = _cli("-m", "fer_utils", "train", "--set", "stages.0.epoch=3", "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr
    res = _cli("-m", "fer_utils", "train", "--set", "stages.0.epoch=3", env={"FER_DEBUG": "1"})
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_evaluate_and_predict_of_a_missing_run_are_one_line(tmp_path):
    _assert_one_line(_cli("-m", "fer_utils", "evaluate", str(tmp_path / "nope")), "nope")
    _assert_one_line(_cli("-m", "fer_utils", "predict", str(tmp_path / "nope"), str(tmp_path)), "nope")


def test_pipeline_input_errors_are_one_line():
    _assert_one_line(_cli("-m", "fer_utils.pipeline", "no_such_dataset"), "no_such_dataset")
    _assert_one_line(_cli("-m", "fer_utils.pipeline", "synthetic", "--set", "DEVICE"), "NAME=VALUE")


def test_benchmark_input_errors_are_one_line(tmp_path):
    bad = tmp_path / "10.yaml"
    bad.write_text((ROOT / "configs" / "fer2013_tta60" / "10_finetune_per_loss.yaml").read_text()
                   .replace("MONITOR_TEST: true", "MONITOR_TEST: false"))
    _assert_one_line(_cli("benchmarks/time_to_accuracy.py", "--config", str(bad), "--no-train"),
                     "MONITOR_TEST")
    missing = _cli("benchmarks/time_to_accuracy.py", "--config", str(tmp_path / "none.yaml"))
    _assert_one_line(missing, "none.yaml")


def test_a_bug_keeps_its_traceback():
    from fer_utils import cli

    def buggy(_argv):
        raise KeyError("a bug, not an input error")
    with pytest.raises(KeyError):
        cli.run(buggy, [])
    assert cli.run(lambda _argv: (_ for _ in ()).throw(ValueError("bad\ninput")), []) == 2
