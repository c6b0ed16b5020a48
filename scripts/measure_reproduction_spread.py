"""Measure how far a profile's published runs move when the same commit trains them on a
different kind of machine, and write that spread as the profile's reproduction tolerance.

Usage: python scripts/measure_reproduction_spread.py [PROFILE] [--study W|F] [--reuse]
(default: synthetic, both studies). ``--study`` retrains only that study's runs (``W-*`` or
``F-*``) and replaces only its entries in the tolerance file, so one half of a profile can be
republished and re-measured while the other half keeps its measurement (each study records
the commit and host it was measured on). ``--reuse`` recomputes the tolerance from the
comparisons a previous call left in ``runs/spread/<PROFILE>/`` instead of retraining.

Each environment retrains the published runs (``python -m fer_utils.pipeline PROFILE
--verify``) on this host, changed in one way a user's machine may differ from the publishing one:
- ``avx2``: oneDNN, ATen and MKL capped at AVX2 kernels (what an AVX2-only host computes);
- ``1thread``: one OpenMP thread instead of the host's cores (reductions add in another order).
The largest difference per run and per setting mean, per metric, over both environments, goes
to ``results/<PROFILE>/reproduction_tolerance.json``, which ``fer_utils.reproduce.verdict``
reads. Run it on the host type and commit that published the runs (run_info.json records
both); the runs it trains stay in ``runs/spread/<PROFILE>/[<STUDY>/]<environment>/``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENVIRONMENTS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "1thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}
STUDIES = ("W", "F")


def spread_tables(profile: str, study: str | None, reuse: bool):
    """Retrain the published runs once per environment (or reuse them); their comparisons."""
    import pandas as pd
    base = ROOT / "runs" / "spread" / profile / (study or "")
    tables = {}
    for name, env in ENVIRONMENTS.items():
        into = base / name
        if not (reuse and (into / "reproduction.csv").exists()):
            print(f"[spread] {name}: {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
            cmd = [sys.executable, "-m", "fer_utils.pipeline", profile, "--verify", "--verify-into", str(into)]
            # exit status 1 only says the runs are not identical, which is what is measured
            subprocess.run(cmd + (["--verify-runs", f"{study}-*"] if study else []), cwd=ROOT,
                           env={**os.environ, **env}, check=False)
        tables[name] = pd.read_csv(into / "reproduction.csv")
    info = json.loads(next(base.glob("*/*/run_info.json")).read_text())
    return tables, info


def merged_tolerance(existing: dict, tables: dict, info: dict) -> dict:
    """``existing`` tolerance file content with the studies measured in ``tables`` (environment
    name -> comparison table) replaced, each with its provenance (``info``: a spread run's
    run_info.json); studies not in ``tables`` keep their entries."""
    from fer_utils import reproduce
    new = reproduce.measured_tolerance(list(tables.values()), "")
    out = {k: v for k, v in existing.items()
           if k not in ("commit", "host", "changed_predictions")}  # pre-2026-12-02 layout
    where = f"commit {info['git']['sha'][:7]}, {info['machine'].get('cpu_model')} host"
    for s in new["per_run_points"]:
        for key in ("per_run_points", "per_setting_mean_points"):
            out.setdefault(key, {})[s] = new[key][s]
        rows = {name: t[t["run"].map(reproduce.study_of) == s] for name, t in tables.items()}
        out.setdefault("provenance", {})[s] = {
            "measured": f"largest difference over {', '.join(f'{n} ({len(r)} runs)' for n, r in rows.items())} "
                        f"against the published runs, {where}",
            "commit": info["git"]["sha"],
            "host": {k: info["machine"].get(k) for k in ("cpu_model", "cpu_capability", "cpu_count")},
            "changed_predictions": {n: int(r["changed_predictions"].sum()) for n, r in rows.items()}}
    out["measured"] = "; ".join(f"{s}: {p['measured']}" for s, p in sorted(out["provenance"].items()))
    return out


def main(profile: str = "synthetic", study: str | None = None, reuse: bool = False) -> int:
    from fer_utils import reproduce
    from fer_utils.io import write_json
    from fer_utils.pipeline import _published_dir

    if study is not None and study not in STUDIES:
        raise SystemExit(f"--study must be one of {', '.join(STUDIES)}, got {study!r}")
    results_dir, _ = _published_dir(profile, {})
    path = ROOT / results_dir / reproduce.TOLERANCE_FILE
    tables, info = spread_tables(profile, study, reuse)
    existing = json.loads(path.read_text()) if study and path.exists() else {}
    out = merged_tolerance(existing, tables, info)
    path = write_json(path, out)
    print(json.dumps({k: out[k] for k in ("per_run_points", "per_setting_mean_points")}, indent=1))
    print(f"[spread] wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    study = args[args.index("--study") + 1] if "--study" in args else None
    rest = [a for i, a in enumerate(args) if a not in ("--reuse", "--study")
            and not (i > 0 and args[i - 1] == "--study")]
    sys.exit(main(*rest, study=study, reuse="--reuse" in args))
