"""Measure how far a profile's published runs move when the same commit trains them on a
different kind of machine, and write that spread as the profile's reproduction tolerance.

Usage: python scripts/measure_reproduction_spread.py [PROFILE] [--reuse]   (default: synthetic)
``--reuse`` recomputes the tolerance from the comparisons a previous call left in
``runs/spread/<PROFILE>/`` instead of retraining.

Each environment retrains every published run (``python -m fer_utils.pipeline PROFILE
--verify``) on this host, changed in one way a user's machine may differ from the publishing one:
- ``avx2``: oneDNN, ATen and MKL capped at AVX2 kernels (what an AVX2-only host computes);
- ``1thread``: one OpenMP thread instead of the host's cores (reductions add in another order).
The largest difference per run and per setting mean, per metric, over both environments, goes
to ``results/<PROFILE>/reproduction_tolerance.json``, which ``fer_utils.reproduce.verdict``
reads. Run it on the host type and commit that published the runs (run_info.json records
both); the runs it trains stay in ``runs/spread/<PROFILE>/<environment>/``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENVIRONMENTS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "1thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}


def main(profile: str = "synthetic", reuse: bool = False) -> int:
    import pandas as pd

    from fer_utils import reproduce
    from fer_utils.io import write_json
    from fer_utils.pipeline import _published_dir

    results_dir, _ = _published_dir(profile, {})
    tables, described = [], []
    for name, env in ENVIRONMENTS.items():
        into = ROOT / "runs" / "spread" / profile / name
        t0 = time.time()
        if not (reuse and (into / "reproduction.csv").exists()):
            print(f"[spread] {name}: {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
            # exit status 1 only says the runs are not identical, which is what is measured
            subprocess.run([sys.executable, "-m", "fer_utils.pipeline", profile, "--verify",
                            "--verify-into", str(into)], cwd=ROOT, env={**os.environ, **env}, check=False)
        tables.append(pd.read_csv(into / "reproduction.csv"))
        described.append(f"{name} ({len(tables[-1])} runs)")
    # where the spread runs were made: the commit and host of their own run_info.json
    info = json.loads(next((ROOT / "runs" / "spread" / profile).glob("*/*/run_info.json")).read_text())
    out = reproduce.measured_tolerance(
        tables, f"largest difference over {', '.join(described)} against the published runs, "
                f"commit {info['git']['sha'][:7]}, {info['machine'].get('cpu_model')} host")
    out["commit"] = info["git"]["sha"]
    out["host"] = {k: info["machine"].get(k) for k in ("cpu_model", "cpu_capability", "cpu_count")}
    out["changed_predictions"] = {name: int(t["changed_predictions"].sum())
                                  for name, t in zip(ENVIRONMENTS, tables)}
    path = write_json(ROOT / results_dir / reproduce.TOLERANCE_FILE, out)
    print(json.dumps({k: out[k] for k in ("per_run_points", "per_setting_mean_points",
                                          "changed_predictions")}, indent=1))
    print(f"[spread] wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(*[a for a in args if a != "--reuse"], reuse="--reuse" in args))
