"""Measure how far a profile's published runs may move when someone retrains them, and write
it as the profile's reproduction tolerance (``results/<PROFILE>/reproduction_tolerance.json``,
read by ``fer_utils.reproduce.verdict``).

    python scripts/measure_reproduction_spread.py [PROFILE] [--study W|F] [--seeds 2 3 4 5]
    python scripts/measure_reproduction_spread.py [PROFILE] [--study W|F] --environments [--reuse]

Seed spread (the default; the tolerance): every published configuration is trained again with
further seeds (``--seeds``, default 2-5: with the published seeds 0-1, six of each) into
``runs/spread/<PROFILE>/seeds/``; a retrain on another machine starts from the published seed,
so it is at most as different as an independent seed, and ``reproduce.seed_tolerance`` turns
the spread between seeds into the tolerance. Why not the spread between machines alone: every
retrain on another host is in effect one more draw, and the largest difference over two
environments did not bound a third (closing note of issue 19). Interrupted training resumes.

Environment spread (``--environments``; a check of that assumption, not the tolerance): the
published runs are retrained (``python -m fer_utils.pipeline PROFILE --verify``) on this host,
changed in one way a user's machine may differ from the publishing one:
- ``avx2``: oneDNN, ATen and MKL capped at AVX2 kernels (what an AVX2-only host computes);
- ``1thread``: one OpenMP thread instead of the host's cores (reductions add in another order).
The largest differences go to the file's ``environment_spread`` entry, and each environment's
comparison is judged by the seed tolerance (its verdict is recorded there too). ``--reuse`` recomputes from the comparisons a
previous call left in ``runs/spread/<PROFILE>/[<STUDY>/]<environment>/``.

``--study`` measures only that study's runs (``W-*`` or ``F-*``) and replaces only its
entries, so one half of a profile can be republished and re-measured while the other keeps its
measurement; each study records the commit and host it was measured on.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENVIRONMENTS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "1thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}
STUDIES = ("W", "F")
DEFAULT_SEEDS = (2, 3, 4, 5)


def _where(info: dict) -> dict:
    """Commit and host of a run (its run_info.json), as the tolerance file records them."""
    return {"commit": info["git"]["sha"],
            "host": {k: info["machine"].get(k) for k in ("cpu_model", "cpu_capability", "cpu_count")}}


def _metrics_table(run_dirs: list[Path]):
    """One row per finished run: its name and test metrics in points."""
    import pandas as pd
    from fer_utils import reproduce
    rows = []
    for d in run_dirs:
        test = json.loads((d / "metrics.json").read_text())["test"]
        rows.append({"run": d.name, **{m: 100 * test[m] for m in reproduce.COMPARED}})
    return pd.DataFrame(rows)


def seed_runs(profile: str, study: str | None, seeds: list[int]) -> tuple[list[Path], list[Path]]:
    """Train ``seeds`` of every published configuration (resuming); (published, new) run dirs."""
    from fer_utils import reproduce, study as grids
    from fer_utils.config import config_from_dict
    from fer_utils.pipeline import _published_dir, grid_configs

    results_dir, published_dir = _published_dir(profile, {})
    published = sorted(p.parent for p in published_dir.glob("*/metrics.json")
                       if fnmatchcase(p.parent.name, f"{study or '*'}-*"))
    configs_of = {reproduce.config_of(p.name) for p in published}
    target = ROOT / "runs" / "spread" / profile / "seeds"
    configs = [config_from_dict({**c.to_dict(), "runs_dir": str(target)})
               for c in grid_configs(profile, {"SEEDS": list(seeds)})
               if reproduce.config_of(c.name) in configs_of]
    missing = configs_of - {reproduce.config_of(c.name) for c in configs}
    if missing:
        raise ValueError(f"published runs the profile's grid no longer builds: {', '.join(sorted(missing))}")
    print(f"[spread] seeds {seeds} of {len(configs_of)} published configurations "
          f"({len(configs)} runs) into {target.relative_to(ROOT)}", flush=True)
    grids.run_grid(configs)
    return published, [target / c.name for c in configs]


def _ranges(numbers: list[int]) -> str:
    """[0, 2, 3, 4, 5] -> '0, 2-5'."""
    runs, out = [], []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    for a, b in runs:
        out.append(str(a) if a == b else f"{a}-{b}")
    return ", ".join(out)


def seed_entries(existing: dict, published: list[Path], new: list[Path], alpha: float = 0.05) -> dict:
    """``existing`` tolerance file content with the measured studies' tolerances replaced by
    their seed spread (``reproduce.seed_tolerance``), with provenance; other studies unchanged."""
    import pandas as pd
    from fer_utils import reproduce
    table = _metrics_table(published + new)
    tol = reproduce.seed_tolerance(table, [p.name for p in published], alpha)
    out = {k: v for k, v in existing.items()
           if k not in ("commit", "host", "changed_predictions")}  # pre-2026-12-02 layout
    for s, spread in tol["seed_spread"].items():
        for key in ("per_run_points", "per_setting_mean_points"):
            kept = {k: v for k, v in out.get(key, {}).items()
                    if k not in STUDIES and reproduce.study_of(k) != s}  # k in STUDIES: older layout
            out[key] = {**kept, **{k: v for k, v in tol[key].items() if reproduce.study_of(k) == s}}
        made = [json.loads((d / "run_info.json").read_text()) for d in new if reproduce.study_of(d.name) == s]
        where = _where(made[0])
        seeds = sorted({int(d.name.rsplit("seed", 1)[1]) for d in published + new
                        if reproduce.study_of(d.name) == s})
        out.setdefault("provenance", {})[s] = {
            "measured": f"seed spread: seeds {_ranges(seeds)} of the {len(spread['seeds_per_configuration'])} "
                        f"published configurations (new seeds trained at commit {where['commit'][:7]} on "
                        f"{where['host']['cpu_model']}); Bonferroni over {spread['published_runs']} runs, "
                        f"alpha {alpha}",
            **where, **spread}
    out["measured"] = "; ".join(f"{s}: {p['measured']}" for s, p in sorted(out["provenance"].items()))
    return out


def environment_tables(profile: str, study: str | None, reuse: bool):
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
    """``existing`` tolerance file content with the ``environment_spread`` of the studies
    measured in ``tables`` (environment name -> comparison table) replaced, each with its
    provenance (``info``: a spread run's run_info.json); the tolerances themselves (seed
    spread) and other studies are kept."""
    from fer_utils import reproduce
    new = reproduce.measured_tolerance(list(tables.values()), "")
    out = dict(existing)
    where = _where(info)
    for s in new["per_run_points"]:
        rows = {name: t[t["run"].map(reproduce.study_of) == s] for name, t in tables.items()}
        out.setdefault("environment_spread", {})[s] = {
            "per_run_points": new["per_run_points"][s],
            "per_setting_mean_points": new["per_setting_mean_points"][s],
            "measured": f"largest difference over {', '.join(f'{n} ({len(r)} runs)' for n, r in rows.items())} "
                        f"against the published runs, commit {where['commit'][:7]}, "
                        f"{where['host']['cpu_model']} host",
            **where,
            "changed_predictions": {n: int(r["changed_predictions"].sum()) for n, r in rows.items()}}
    return out


def environment_verdicts(out: dict, tables: dict) -> dict[str, "reproduce.Verdict"]:
    """Each environment's comparison judged by the seed tolerance in ``out``: is a retrain in
    that environment as different as a new seed at most (the assumption), or more?"""
    from fer_utils import reproduce
    tolerance = reproduce.Tolerance(out.get("per_run_points", {}), out.get("per_setting_mean_points", {}))
    return {name: reproduce.verdict(t, tolerance) for name, t in tables.items()}


def main(argv: list[str] | None = None) -> int:
    from fer_utils import reproduce
    from fer_utils.io import write_json
    from fer_utils.pipeline import _published_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", nargs="?", default="synthetic")
    p.add_argument("--study", choices=STUDIES, help="measure only this study's runs")
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                   help="further seeds of each published configuration (default 2 3 4 5)")
    p.add_argument("--environments", action="store_true",
                   help="retrain the published runs in the ENVIRONMENTS instead (a check, not the tolerance)")
    p.add_argument("--reuse", action="store_true", help="--environments: reuse the previous comparisons")
    args = p.parse_args(argv)
    results_dir, _ = _published_dir(args.profile, {})
    path = ROOT / results_dir / reproduce.TOLERANCE_FILE
    existing = json.loads(path.read_text()) if path.exists() else {}
    if args.environments:
        tables, info = environment_tables(args.profile, args.study, args.reuse)
        out = merged_tolerance(existing, tables, info)
        for name, v in environment_verdicts(out, tables).items():
            print(f"[spread] {name} against the seed tolerance: {v.status.upper()}")
            print("\n".join(f"[spread]   {line}" for line in v.lines))
            for s in {reproduce.study_of(r) for r in tables[name]["run"]}:
                out["environment_spread"][s].setdefault("verdict", {})[name] = v.status
    else:
        published, new = seed_runs(args.profile, args.study, args.seeds)
        out = seed_entries(existing, published, new)
    path = write_json(path, out)
    print(json.dumps({k: out.get(k) for k in ("per_run_points", "per_setting_mean_points")}, indent=1))
    print(f"[spread] wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
