"""The benchmark scripts run and compute what they print (tiny settings; no timings asserted)."""
import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_time_to_targets_reads_the_first_epoch_reaching_each_target(tmp_path):
    tta = _load("time_to_accuracy")
    pd.DataFrame({"epoch": [0, 1, 2, 3], "elapsed_s": [10.0, 20.0, 30.0, 40.0],
                  "monitor_test_accuracy": [0.50, 0.66, 0.64, 0.69]}).to_csv(tmp_path / "m.csv", index=False)
    out = {r["target"]: r for r in tta.time_to_targets(tmp_path / "m.csv", [0.65, 0.68, 0.70])}
    assert (out[0.65]["epoch"], out[0.65]["seconds"]) == (2, 20.0)
    assert (out[0.68]["epoch"], out[0.68]["seconds"]) == (4, 40.0)
    assert out[0.70]["seconds"] is None and out[0.70]["best_seen"] == 0.69


def test_time_to_targets_refuses_a_run_without_monitoring(tmp_path):
    tta = _load("time_to_accuracy")
    pd.DataFrame({"epoch": [0], "elapsed_s": [1.0]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(SystemExit, match="MONITOR_TEST"):
        tta.time_to_targets(tmp_path / "m.csv", [0.65])


@pytest.mark.slow
def test_throughput_benchmark_runs_naive_and_ours(tmp_path):
    bench = _load("throughput")
    out = tmp_path / "t.json"
    assert bench.main(["--recipes", "fer2013", "--steps", "1", "--warmup", "0", "--device", "cpu",
                       "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    row = res["results"][0]
    assert row["recipe"] == "fer2013" and row["naive_img_s"] > 0 and row["ours_img_s"] > 0
    assert res["machine"]["cpus"] >= 1 and res["device"] == "cpu"
