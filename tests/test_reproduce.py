"""Reproduction checks: comparison of retrained with published runs, the verdict and its
tolerance, the reproducible pick of --verify, and --verify end to end on a tiny profile."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fer_utils import pipeline, reproduce
from fer_utils.training.loop import RUNTIME_KEYS

ROOT = Path(__file__).resolve().parents[1]


def _fake_run(folder: Path, name: str, y_prob: np.ndarray, y_true: np.ndarray) -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score
    pred = y_prob.argmax(1)
    test = {"accuracy": float((pred == y_true).mean()), "f1": float(f1_score(y_true, pred, average="macro")),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, pred))}
    (folder / name).mkdir(parents=True)
    (folder / name / "metrics.json").write_text(json.dumps({"test": test}))
    np.savez(folder / name / "predictions.npz", y_prob=y_prob, y_true=y_true)


@pytest.fixture
def published(tmp_path):
    rng = np.random.default_rng(0)
    y_true = np.repeat(np.arange(4), 25)
    probs = {f"W-r-{loss}-seed{s}": rng.dirichlet(np.ones(4), size=100)
             for loss in ("softmax", "focal") for s in (0, 1)}
    for name, p in probs.items():
        _fake_run(tmp_path / "published", name, p, y_true)
    return tmp_path, probs, y_true


def _reproduce(tmp_path, probs, y_true, flip: dict[str, int]):
    """Copy of the published runs with ``flip[name]`` predictions moved to the true class."""
    out = tmp_path / "reproduced"
    for name, p in probs.items():
        p = p.copy()
        wrong = np.flatnonzero(p.argmax(1) != y_true)[:flip.get(name, 0)]
        p[wrong, y_true[wrong]] = 2.0
        _fake_run(out, name, p, y_true)
    return reproduce.compare(reproduce.published_runs(tmp_path / "published"), out)


def test_identical_runs_are_called_identical(published):
    table = _reproduce(*published, flip={})
    assert table["identical"].all() and (table["changed_predictions"] == 0).all()
    assert reproduce.verdict(table, None).status == "identical"


def test_differences_are_measured_in_points_and_judged_against_the_tolerance(published):
    table = _reproduce(*published, flip={"W-r-softmax-seed0": 3})
    row = table.set_index("run").loc["W-r-softmax-seed0"]
    assert row["changed_predictions"] == 3 and not row["identical"]
    assert row["accuracy_delta"] == pytest.approx(3.0)  # 3 of 100 images: 3 points
    assert table.set_index("run").drop("W-r-softmax-seed0")["identical"].all()
    # the setting mean (2 seeds) moves by half of it
    assert reproduce.setting_means(table).loc["W-r-softmax", "accuracy_delta"] == pytest.approx(1.5)
    def tol(per_run, per_mean, study="W"):
        configs = [f"{study}-r-{loss}" for loss in ("softmax", "focal")]  # configuration = setting here
        return reproduce.Tolerance({c: {m: per_run for m in reproduce.COMPARED} for c in configs},
                                   {c: {m: per_mean for m in reproduce.COMPARED} for c in configs})
    wide, narrow_run, narrow_mean = tol(5.0, 5.0), tol(2.0, 5.0), tol(5.0, 1.0)
    assert reproduce.verdict(table, wide).status == "within tolerance"
    # a tolerance measured for other configurations does not cover these runs
    assert reproduce.verdict(table, tol(5.0, 5.0, study="F")).status == "different"
    v = reproduce.verdict(table, narrow_run)
    assert v.status == "different" and not v.ok
    assert any("run W-r-softmax-seed0: accuracy +3.00" in line for line in v.lines)
    v = reproduce.verdict(table, narrow_mean)
    assert v.status == "different" and any("setting W-r-softmax: mean accuracy +1.50" in l for l in v.lines)
    # without a measured tolerance only bit-identical counts
    assert reproduce.verdict(table, None).status == "different"


def test_measured_tolerance_is_the_largest_difference_seen(published):
    a = _reproduce(*published, flip={"W-r-softmax-seed0": 2})
    tmp_path, probs, y_true = published
    import shutil
    shutil.rmtree(tmp_path / "reproduced")
    b = _reproduce(tmp_path, probs, y_true, flip={"W-r-focal-seed1": 4, "W-r-focal-seed0": 4})
    tol = reproduce.measured_tolerance([a, b], "test")
    assert tol["per_run_points"]["W"]["accuracy"] == pytest.approx(4.0)
    assert tol["per_setting_mean_points"]["W"]["accuracy"] == pytest.approx(4.0)  # both focal seeds +4
    assert set(tol["per_run_points"]) == {"W"}


def test_pick_is_reproducible_and_refuses_impossible_counts():
    names = [f"run{i}" for i in range(20)]
    assert reproduce.pick(names, 3, seed=0) == reproduce.pick(list(reversed(names)), 3, seed=0)
    assert len(set(reproduce.pick(names, 5, seed=1))) == 5
    assert reproduce.pick(names, 3, seed=0) != reproduce.pick(names, 3, seed=1)
    with pytest.raises(ValueError, match="between 1 and 20"):
        reproduce.pick(names, 21)


def test_the_synthetic_grid_is_what_was_published():
    """--verify retrains the configurations the grid builds today: for the synthetic demo they
    are the published runs, setting for setting (runtime keys aside). Published files are read
    as training reads them (``config_from_dict``), so a field added later with its default
    (e.g. ``stages.N.warmup``, 0.3) is the same setting; any value that differs still fails."""
    from fer_utils.config import config_from_dict
    configs = {c.name: c.to_dict() for c in pipeline.grid_configs("synthetic")}
    published = {p.parent.name: config_from_dict(yaml.safe_load(p.read_text())).to_dict()
                 for p in (ROOT / "results" / "synthetic" / "runs").glob("*/config.yaml")}
    assert set(configs) == set(published)
    for name, cfg in configs.items():
        for key in RUNTIME_KEYS:
            cfg.pop(key, None)
            published[name].pop(key, None)
        assert cfg == published[name], name


def test_verify_retrains_and_finds_a_published_run_identical_then_a_changed_one_different(tmp_path, monkeypatch,
                                                                                          capsys):
    """End to end on a one-run profile: publish, verify (same host: identical, exit 0), then
    alter the published predictions and verify again (different, exit 1)."""
    profile = tmp_path / "configs" / "tiny"
    profile.mkdir(parents=True)
    params = {"DATASET": "synthetic", "DATA_PARAMS": {"n_train": 200, "cv": True, "difficulty": 0.1},
              "IMAGE_SIZE": 32, "BACKBONES": ["resnet18"], "STRATEGIES": ["ce_only"], "NUM_FOLDS": 5,
              "FOLDS": [0], "STAGE_EPOCHS": [1, 1], "BATCH_SIZE": 32, "BOOTSTRAP": 10,
              "RUNS_DIR": str(tmp_path / "results" / "runs"), "RESULTS_DIR": str(tmp_path / "results")}
    (profile / "20_two_stage_focal.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(pipeline, "CONFIGS", tmp_path / "configs")
    from fer_utils.training import train_run
    (cfg,) = pipeline.grid_configs("tiny")
    train_run(cfg, progress=False)  # "published": trained straight into RESULTS_DIR/runs
    assert pipeline.main(["tiny", "--verify", "1", "--verify-into", str(tmp_path / "v1")]) == 0
    table = (tmp_path / "v1" / "reproduction.csv").read_text()
    assert "True" in table.splitlines()[1]
    preds = tmp_path / "results" / "runs" / cfg.name / "predictions.npz"
    arrays = dict(np.load(preds))
    arrays["y_prob"] = np.roll(arrays["y_prob"], 1, axis=1)
    np.savez(preds, **arrays)
    assert pipeline.main(["tiny", "--verify", "--verify-into", str(tmp_path / "v2")]) == 1
    # --verify-runs picks by name (and implies --verify); a glob that matches nothing is one line
    assert pipeline.main(["tiny", "--verify-runs", "W-*", "--verify-into", str(tmp_path / "v3")]) == 2
    assert "matching 'W-*'" in capsys.readouterr().err


def test_verify_refuses_a_count_that_is_not_a_number(capsys):
    assert pipeline.main(["synthetic", "--verify", "three"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--verify expects a number" in err[0]


def test_a_mistyped_set_name_is_one_line_and_trains_nothing(capsys, tmp_path):
    for argv in (["synthetic", "--set", "EPOCH=3", "--force"], ["synthetic", "--set", "EPOCH=3", "--verify", "1"]):
        assert pipeline.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--set EPOCH: not a parameter" in err[0] and "EPOCHS" in err[0]


def test_the_pipeline_kernels_are_not_interrupted_when_shut_down():
    """No SIGINT at shutdown (it made idle kernels log an ERROR line); interrupts otherwise
    still reach jupyter_client (which refuses here: no kernel was started)."""
    import asyncio
    manager = pipeline._local_kernel_manager()()
    manager.shutting_down = True
    assert asyncio.run(manager._async_interrupt_kernel()) is None
    manager.shutting_down = False
    with pytest.raises(RuntimeError, match="No kernel is running"):
        asyncio.run(manager._async_interrupt_kernel())


def _spread_script():
    import importlib.util
    spec = importlib.util.spec_from_file_location("spread", ROOT / "scripts" / "measure_reproduction_spread.py")
    spread = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(spread)
    return spread


def test_environment_spread_is_recorded_beside_the_seed_tolerance_and_judged_by_it():
    """--environments --study F: paper F's environment spread and its provenance are the new
    measurement's; the tolerances (seed spread) and paper W's entries stay as they were, and
    each environment's comparison gets the seed tolerance's verdict."""
    import pandas as pd
    spread = _spread_script()
    def each(v):
        return {m: v for m in reproduce.COMPARED}
    existing = {"per_run_points": {"W-r-softmax": each(1.0), "F-resnet18-ce_only-fold0": each(9.0),
                                   "F-resnet18-ce_only-fold1": each(9.0)},
                "per_setting_mean_points": {"W-r-softmax": each(0.5), "F-resnet18-ce_only": each(1.0)},
                "provenance": {"W": {"measured": "old W", "commit": "aaa"}}}
    runs = ["F-resnet18-ce_only-fold0-seed0", "F-resnet18-ce_only-fold1-seed0"]
    def table(deltas):
        t = pd.DataFrame({"run": runs, "setting": ["F-resnet18-ce_only"] * 2, "identical": False,
                          "changed_predictions": [3, 4]})
        for m in reproduce.COMPARED:
            t[f"{m}_delta"] = deltas
            t[f"{m}_published"], t[f"{m}_reproduced"] = 50.0, 50.0 + np.array(deltas)
        return t
    info = {"git": {"sha": "b" * 40}, "machine": {"cpu_model": "X", "cpu_capability": "AVX512", "cpu_count": 2}}
    tables = {"avx2": table([1.5, -0.5]), "1thread": table([0.0, 2.5])}
    out = spread.merged_tolerance(existing, tables, info)
    assert out["per_run_points"] == existing["per_run_points"] and out["provenance"] == existing["provenance"]
    env = out["environment_spread"]["F"]
    assert env["per_run_points"]["accuracy"] == 2.5 and env["per_setting_mean_points"]["accuracy"] == 1.25
    assert env["commit"] == "b" * 40 and env["changed_predictions"] == {"avx2": 7, "1thread": 7}
    assert "largest difference over avx2 (2 runs)" in env["measured"]
    # every run within its 9.0; avx2's setting mean moves 0.5 (inside 1.0), 1thread's 1.25 (beyond)
    verdicts = spread.environment_verdicts(out, tables)
    assert verdicts["avx2"].status == "within tolerance" and verdicts["1thread"].status == "different"
    assert any("setting F-resnet18-ce_only: mean accuracy +1.25" in line for line in verdicts["1thread"].lines)


def test_measuring_seeds_of_one_study_replaces_only_its_tolerances(tmp_path):
    """The default mode's merge: paper F's configurations get their seed tolerances and
    provenance, paper W's entries (and an older per-study layout's keys) are dropped or kept
    as they should be."""
    spread = _spread_script()
    def run(folder, name, acc):
        d = tmp_path / folder / name
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"test": {m: acc for m in reproduce.COMPARED}}))
        (d / "run_info.json").write_text(json.dumps({"git": {"sha": "c" * 40},
                                                     "machine": {"cpu_model": "Y", "cpu_count": 2}}))
        return d
    accs = {0: 0.70, 1: 0.72, 2: 0.69, 3: 0.75}
    published = [run("pub", f"F-r-ce_only-fold{f}-seed0", accs[f]) for f in (0, 1)]
    new = [run("new", f"F-r-ce_only-fold{f}-seed{s}", accs[(s + f) % 4]) for f in (0, 1) for s in (1, 2, 3)]
    existing = {"per_run_points": {"W-r-softmax": {"accuracy": 1.0}, "F": {"accuracy": 3.0},
                                   "F-r-old-fold0": {"accuracy": 2.0}},
                "per_setting_mean_points": {"W-r-softmax": {"accuracy": 0.5}},
                "provenance": {"W": {"measured": "old W"}}}
    out = spread.seed_entries(existing, published, new)
    assert set(out["per_run_points"]) == {"W-r-softmax", "F-r-ce_only-fold0", "F-r-ce_only-fold1"}
    assert set(out["per_setting_mean_points"]) == {"W-r-softmax", "F-r-ce_only"}
    assert out["provenance"]["W"] == {"measured": "old W"}
    f = out["provenance"]["F"]
    assert f["commit"] == "c" * 40 and f["seeds_per_configuration"] == {"F-r-ce_only-fold0": 4, "F-r-ce_only-fold1": 4}
    assert "seeds 0-3" in f["measured"]


def _seed_table(rng, sds: dict[str, float], seeds=range(6)):
    """Runs of configurations whose metric is normal with the given SD (same for all three),
    and the configurations' true means."""
    import pandas as pd
    rows, centres = [], {}
    for config, sd in sds.items():
        centres[config] = rng.uniform(30, 70)
        for s in seeds:
            v = centres[config] + sd * rng.standard_normal()
            rows.append({"run": f"{config}-seed{s}", **{m: v for m in reproduce.COMPARED}})
    return pd.DataFrame(rows), centres


def test_seed_tolerance_is_the_bonferroni_t_quantile_of_a_two_run_difference():
    """Independent formulation by simulation: for X, Y, S_1..S_n-1 normal with one SD, the
    probability that |X - Y| exceeds the tolerance computed from s (the SD of the S) is
    alpha / N for a study of N published runs; a setting mean's tolerance likewise."""
    from scipy import stats
    rng = np.random.default_rng(1)
    sds = {"W-r-scratch-softmax": 1.0, "W-r-scratch-focal": 3.0}
    table, _ = _seed_table(rng, sds)
    published = [f"{c}-seed{s}" for c in sds for s in (0, 1)]
    tol = reproduce.seed_tolerance(table, published, alpha=0.05)
    for config in sds:
        s = table[table.run.str.startswith(config)]["accuracy"].std()
        t = tol["per_run_points"][config]["accuracy"]
        assert 2 * stats.t.sf(t / (np.sqrt(2) * s), 5) == pytest.approx(0.05 / 4, rel=1e-6)
        # a mean of 2 seeds against another: difference ~ N(0, sigma^2); 2 settings
        tm = tol["per_setting_mean_points"][config]["accuracy"]
        assert 2 * stats.t.sf(tm / s, 5) == pytest.approx(0.05 / 2, rel=1e-6)
    # the t statistic's calibration itself, by simulation: 6 seeds -> s, two further runs
    draws = rng.standard_normal((200_000, 8))
    s_sim = draws[:, :6].std(axis=1, ddof=1)
    q = stats.t.ppf(1 - 0.05 / 8, 5)
    assert np.mean(np.abs(draws[:, 6] - draws[:, 7]) > q * np.sqrt(2) * s_sim) == pytest.approx(0.05 / 4, abs=0.002)
    assert tol["seed_spread"]["W"]["seeds_per_configuration"] == {c: 6 for c in sds}
    with pytest.raises(ValueError, match="at least 3"):
        reproduce.seed_tolerance(_seed_table(rng, sds, seeds=range(2))[0], published)


def test_a_retrain_as_different_as_a_new_seed_rarely_fails_and_a_broken_one_does():
    """Simulation of the verdict's false alarms: when a retrain on another host is an
    independent draw (the worst case the tolerance assumes), a whole study is called different
    in at most about alpha of the cases; a retrain that shifts every run by 5 seed SDs is
    caught nearly always."""
    import pandas as pd
    rng = np.random.default_rng(2)
    sds = {f"W-r-scratch-loss{i}": sd for i, sd in enumerate((0.5, 1.0, 2.0, 2.0, 3.0))}
    published = [f"{c}-seed{s}" for c in sds for s in (0, 1)]
    def retrain(table, centres, shift):
        base = table.set_index("run").loc[published, "accuracy"]
        rows = []
        for name, v in base.items():
            config = reproduce.config_of(name)
            new = v + shift * sds[config] if shift else \
                centres[config] + sds[config] * rng.standard_normal()
            rows.append({"run": name, "setting": reproduce.setting_of(name), "identical": False,
                         **{f"{m}_{k}": x for m in reproduce.COMPARED
                            for k, x in (("published", v), ("reproduced", new), ("delta", new - v))}})
        return pd.DataFrame(rows)
    alarms, caught = 0, 0
    for _ in range(300):
        table, centres = _seed_table(rng, sds)
        tol = reproduce.seed_tolerance(table, published, alpha=0.05)
        tolerance = reproduce.Tolerance(tol["per_run_points"], tol["per_setting_mean_points"])
        alarms += reproduce.verdict(retrain(table, centres, 0), tolerance).status == "different"
        caught += reproduce.verdict(retrain(table, centres, 5), tolerance).status == "different"
    assert alarms / 300 <= 0.06
    assert caught / 300 >= 0.9


