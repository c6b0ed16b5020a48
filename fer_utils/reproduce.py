"""Does the code reproduce the published numbers? Retrained runs against published ones.

Training is deterministic on one host, so a run retrained on the kind of machine that made it
gives the published predictions bit for bit (*identical*). On another instruction set (AVX2 vs
AVX-512) or thread count, float rounding differs and the run drifts; how far it may drift is
not a guess but the spread measured between such environments on the same commit
(``scripts/measure_reproduction_spread.py`` writes ``<results>/reproduction_tolerance.json``).
``verdict`` says which of the three a comparison is: identical, within that tolerance (naming
what moved and by how much), or different beyond it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: Test metrics compared run by run (fractions in the files, points in reports).
COMPARED = ("accuracy", "f1", "balanced_accuracy")
TOLERANCE_FILE = "reproduction_tolerance.json"


def published_runs(exported_dir: str | Path) -> dict[str, dict]:
    """``{run name: {"test": test metrics, "y_prob": predictions or None, "machine": ...}}``
    for every run published under ``exported_dir`` (read into memory, so that a pipeline
    rewriting that folder afterwards cannot change the reference)."""
    out = {}
    for path in sorted(Path(exported_dir).glob("*/metrics.json")):
        run = path.parent
        preds = run / "predictions.npz"
        info = run / "run_info.json"
        out[run.name] = {
            "test": json.loads(path.read_text())["test"],
            "y_prob": np.load(preds)["y_prob"] if preds.exists() else None,
            "machine": json.loads(info.read_text()).get("machine", {}) if info.exists() else {}}
    return out


def study_of(run: str) -> str:
    """The study a run belongs to, from its name: ``W`` (paper W) or ``F`` (paper F). Each has
    its own tolerance: their runs are trained so differently that their spreads differ."""
    return run.split("-", 1)[0]


def setting_of(run: str) -> str:
    """The grid cell a run belongs to: its name without seed and fold (seeds and folds of one
    setting are averaged in the tables)."""
    return re.sub(r"-(fold\d+|seed\d+)", "", run)


def compare(published: dict[str, dict], runs_dir: str | Path,
            names: list[str] | None = None) -> pd.DataFrame:
    """One row per run: published and reproduced test metrics (points), their difference,
    whether the test probabilities are bit-identical and how many predicted classes changed.
    Runs of ``names`` (default: every published run) missing from ``runs_dir`` are an error."""
    runs_dir = Path(runs_dir)
    rows = []
    for name in names if names is not None else sorted(published):
        metrics = runs_dir / name / "metrics.json"
        if not metrics.exists():
            raise FileNotFoundError(f"run {name} did not finish in {runs_dir}: nothing to compare")
        test = json.loads(metrics.read_text())["test"]
        ref = published[name]
        row = {"run": name, "setting": setting_of(name)}
        prob = np.load(runs_dir / name / "predictions.npz")["y_prob"]
        if ref["y_prob"] is not None:
            row["identical"] = bool(np.array_equal(prob, ref["y_prob"]))
            row["changed_predictions"] = int((prob.argmax(1) != ref["y_prob"].argmax(1)).sum())
        else:
            row["identical"] = all(test[m] == ref["test"][m] for m in COMPARED)
            row["changed_predictions"] = np.nan
        for m in COMPARED:
            row[f"{m}_published"] = 100 * ref["test"][m]
            row[f"{m}_reproduced"] = 100 * test[m]
            row[f"{m}_delta"] = 100 * (test[m] - ref["test"][m])
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Tolerance:
    """How far, in points, a retrained run may move and still count as the published one: per
    configuration (a run's name without its seed, ``config_of``) and metric for single runs,
    per setting (``setting_of``) for a setting's mean over its seeds / folds (what a table
    prints). Written by ``seed_tolerance`` from the spread between seeds."""
    per_run: dict[str, dict[str, float]]
    per_setting_mean: dict[str, dict[str, float]]
    measured: str = ""

    @classmethod
    def load(cls, results_dir: str | Path) -> "Tolerance | None":
        path = Path(results_dir) / TOLERANCE_FILE
        if not path.exists():
            return None
        d = json.loads(path.read_text())
        return cls(d["per_run_points"], d["per_setting_mean_points"], d.get("measured", ""))

    def of(self, kind: str, name: str, metric: str) -> float:
        """The tolerance for ``metric`` of run ``name`` (kind "run") or of setting ``name``'s
        mean (kind "mean"); 0 where none was measured, so that only identical passes."""
        if kind == "run":
            return self.per_run.get(config_of(name), {}).get(metric, 0.0)
        return self.per_setting_mean.get(name, {}).get(metric, 0.0)

    def text(self) -> str:
        """Per study and metric, the range of the tolerances over its configurations."""
        parts = []
        for study in sorted({study_of(c) for c in self.per_run}):
            def span(table, m):
                v = [d[m] for c, d in table.items() if study_of(c) == study and m in d]
                return f"±{min(v):.2f}-{max(v):.2f}" if v else "none"
            parts.append(f"{study} runs " + ", ".join(f"{m} {span(self.per_run, m)}" for m in COMPARED)
                         + " (setting means " + ", ".join(span(self.per_setting_mean, m) for m in COMPARED) + ")")
        return "; ".join(parts)


@dataclass
class Verdict:
    status: str  # "identical", "within tolerance" or "different"
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "different"


def setting_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean published / reproduced metric of each setting and their difference (points)."""
    cols = [f"{m}_{k}" for m in COMPARED for k in ("published", "reproduced")]
    means = table.groupby("setting")[cols].mean()
    for m in COMPARED:
        means[f"{m}_delta"] = means[f"{m}_reproduced"] - means[f"{m}_published"]
    return means


def verdict(table: pd.DataFrame, tolerance: Tolerance | None) -> Verdict:
    """Identical when every run's test probabilities are bit-identical; within tolerance when
    every run's and every setting mean's difference is inside the measured spread; else
    different. Without a measured tolerance, anything but identical is different."""
    n = len(table)
    if table["identical"].all():
        return Verdict("identical", [f"all {n} runs reproduce bit for bit (test probabilities identical)"])
    moved = table[~table["identical"]]
    lines = [f"{len(moved)} of {n} runs differ from the published ones; largest differences (points):"]
    means = setting_means(table)
    beyond = []
    for m in COMPARED:
        worst = moved.loc[moved[f"{m}_delta"].abs().idxmax()]
        worst_mean = means[f"{m}_delta"].abs()
        lines.append(f"  {m}: run {worst['run']} {worst[f'{m}_published']:.2f} -> "
                     f"{worst[f'{m}_reproduced']:.2f} ({worst[f'{m}_delta']:+.2f}); "
                     f"setting mean {worst_mean.idxmax()} {means.loc[worst_mean.idxmax(), f'{m}_delta']:+.2f}")
        if tolerance is not None:
            for r in table.itertuples():
                d, tol = getattr(r, f"{m}_delta"), tolerance.of("run", r.run, m)
                if abs(d) > tol:
                    beyond.append(f"run {r.run}: {m} {d:+.2f} (tolerance ±{tol:.2f})")
            for setting, d in means[f"{m}_delta"].items():
                tol = tolerance.of("mean", setting, m)
                if abs(d) > tol:
                    beyond.append(f"setting {setting}: mean {m} {d:+.2f} (tolerance ±{tol:.2f})")
    if tolerance is None:
        lines.append("no cross-machine tolerance has been measured for these runs: only identical "
                     "counts as reproduced")
        return Verdict("different", lines)
    lines.append(f"measured tolerance, points: {tolerance.text()}")
    if beyond:
        return Verdict("different", lines + ["beyond the tolerance:"] + [f"  {b}" for b in beyond])
    return Verdict("within tolerance", lines)


def measured_tolerance(tables: list[pd.DataFrame], description: str) -> dict:
    """The tolerance file's content from comparisons of one commit's runs made in different
    environments: per study and metric, the largest absolute difference of a run and of a
    setting mean over all the tables."""
    per_run: dict[str, dict[str, float]] = {}
    per_mean: dict[str, dict[str, float]] = {}
    for t in tables:
        t = t.assign(study=t["run"].map(study_of))
        means = setting_means(t)
        for study, rows in t.groupby("study"):
            study_means = means[[study_of(s) == study for s in means.index]]
            for m in COMPARED:
                run_d = float(rows[f"{m}_delta"].abs().max())
                mean_d = float(study_means[f"{m}_delta"].abs().max())
                per_run.setdefault(study, {})[m] = max(per_run.get(study, {}).get(m, 0.0), run_d)
                per_mean.setdefault(study, {})[m] = max(per_mean.get(study, {}).get(m, 0.0), mean_d)
    return {"measured": description, "per_run_points": per_run, "per_setting_mean_points": per_mean}


def config_of(run: str) -> str:
    """A run's configuration without its seed: the runs that differ only in their draw."""
    return re.sub(r"-seed\d+", "", run)


def seed_tolerance(runs: pd.DataFrame, published: list[str], alpha: float = 0.05) -> dict:
    """Tolerances from the spread between seeds: how far a retrain may move and still count as
    the published run.

    ``runs`` holds one row per trained run (column ``run`` and the ``COMPARED`` metrics in
    points): the ``published`` runs and further seeds of the same configurations. A retrain on
    another machine starts from the same seed, so it is at most as different from the published
    run as an independent seed is (float rounding perturbs one trajectory; a new seed replaces
    it). Two independent runs of a configuration differ by N(0, 2 sigma^2); with sigma estimated
    by the standard deviation s over its seeds (n - 1 degrees of freedom), the difference over
    sqrt(2) s is t-distributed, so the tolerance is sqrt(2) s times the two-sided 1 - alpha / N
    quantile of t, Bonferroni over the study's N published runs. A setting's mean over k runs
    (its seeds, or its folds) moves by N(0, 2 sigma^2 / k): s pooled over the setting's
    configurations, Bonferroni over the study's settings. When the assumption holds, a retrain
    of a whole study on any host passes with probability at least 1 - alpha per metric and
    kind; each configuration is judged by its own spread (stable ones tightly).
    """
    from scipy.stats import t as student
    runs = runs.assign(config=runs["run"].map(config_of), setting=runs["run"].map(setting_of),
                       study=runs["run"].map(study_of))
    per_run, per_mean, spread = {}, {}, {}
    for study, rows in runs.groupby("study"):
        pub = [r for r in published if study_of(r) == study]
        if not pub:
            continue
        counts = rows.groupby("config").size()
        if counts.min() < 3:
            raise ValueError(f"study {study}: configuration {counts.idxmin()} has {counts.min()} seeds; "
                             f"the seed spread needs at least 3 of each")
        var = rows.groupby("config")[list(COMPARED)].var(ddof=1)
        q_run = student.ppf(1 - alpha / (2 * len(pub)), counts - 1)  # one quantile per configuration
        for config, q in zip(counts.index, q_run):
            per_run[config] = {m: float(q * np.sqrt(2 * var.loc[config, m])) for m in COMPARED}
        k = pd.Series([setting_of(r) for r in pub]).value_counts()  # published runs per mean
        for setting, members in rows.groupby("setting")["config"]:
            configs = sorted(set(members))
            dof = int((counts[configs] - 1).sum())
            pooled = ((counts[configs] - 1).to_numpy()[:, None] * var.loc[configs].to_numpy()).sum(0) / dof
            q = student.ppf(1 - alpha / (2 * len(k)), dof)
            per_mean[setting] = {m: float(q * np.sqrt(2 * v / k[setting])) for m, v in zip(COMPARED, pooled)}
        spread[study] = {"seeds_per_configuration": {c: int(n) for c, n in counts.items()},
                         "seed_sd_points": np.sqrt(var).round(3).to_dict(orient="index"),
                         "alpha": alpha, "published_runs": len(pub)}
    return {"per_run_points": per_run, "per_setting_mean_points": per_mean, "seed_spread": spread}


def pick(names: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` of ``names`` chosen at random but reproducibly (the same ``seed``, the same runs)."""
    names = sorted(names)
    if not 0 < n <= len(names):
        raise ValueError(f"--verify needs between 1 and {len(names)} runs, got {n}")
    idx = np.random.default_rng(seed).choice(len(names), size=n, replace=False)
    return [names[i] for i in sorted(idx)]


def host_note(published: dict[str, dict], names: list[str]) -> str:
    """Where the published runs were made against this host, when the instruction sets differ."""
    import torch
    here = torch.backends.cpu.get_cpu_capability()
    there = sorted({published[n]["machine"].get("cpu_capability", "unrecorded") for n in names})
    return f"published on {'/'.join(there)} hosts, reproduced on {here}"
