"""The benchmark scripts run and compute what they print (tiny settings; no timings asserted)."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name, folder="benchmarks"):
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
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
    with pytest.raises(ValueError, match="MONITOR_TEST"):
        tta.time_to_targets(tmp_path / "m.csv", [0.65])


def _monitored_run(folder, backbone, best_epoch, test_acc):
    folder.mkdir()
    pd.DataFrame({"epoch": [0, 1, 2], "elapsed_s": [60.0, 120.0, 180.0], "val_accuracy": [0.5, 0.6, 0.55],
                  "monitor_test_accuracy": test_acc, "best_epoch": [0, 1, best_epoch]}
                 ).to_csv(folder / "metrics.csv", index=False)
    (folder / "config.yaml").write_text(f"model: {{backbone: {backbone}}}\nstages: [{{epochs: 3}}]\n")
    return folder


def test_the_figure_circles_the_epoch_chosen_on_validation_and_refuses_unmonitored_runs(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    tta = _load("time_to_accuracy")
    ours = _monitored_run(tmp_path / "a", "resnet18_half_s1", 1, [0.4, 0.62, 0.71])
    old = _monitored_run(tmp_path / "b", "resnet18", 1, [0.3, 0.5, 0.52])
    tta.save_curves([ours, old], tmp_path / "f.png", target=0.70)
    assert (tmp_path / "f.png").stat().st_size > 0
    from fer_utils.plots import time_to_accuracy
    fig = time_to_accuracy({tta.recipe_label(ours): pd.read_csv(ours / "metrics.csv")})
    circled = fig.axes[0].collections[0].get_offsets()
    # epoch 2 (index 1) was chosen, not the last epoch with the best test accuracy
    assert circled.tolist() == [[2.0, 62.0]]
    assert fig.axes[0].get_legend_handles_labels()[1][0] == "resnet18_half_s1, 3 epochs: PublicTest"
    pd.DataFrame({"epoch": [0], "elapsed_s": [1.0], "val_accuracy": [0.5]}).to_csv(tmp_path / "a" / "metrics.csv")
    with pytest.raises(ValueError, match="MONITOR_TEST"):
        tta.save_curves([ours], tmp_path / "g.png", target=0.70)
    with pytest.raises(FileNotFoundError, match="no metrics.csv"):
        tta.save_curves([tmp_path / "absent"], tmp_path / "h.png", target=0.70)
    plt.close("all")


@pytest.mark.slow
def test_recipe_label_names_a_non_default_warmup_and_the_figure_refuses_twin_labels(tmp_path):
    tta = _load("time_to_accuracy")
    a = _monitored_run(tmp_path / "a", "resnet18_half_s1", 1, [0.4, 0.62, 0.71])
    (a / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\n"
                                   "stages: [{epochs: 3, schedule: onecycle, warmup: 0.1}]\n")
    b = _monitored_run(tmp_path / "b", "resnet18_half_s1", 1, [0.4, 0.6, 0.7])
    assert tta.recipe_label(a) == "resnet18_half_s1, 3 epochs, warm-up 0.1"
    assert tta.recipe_label(b) == "resnet18_half_s1, 3 epochs"  # default warm-up: no suffix
    (b / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\n"
                                   "stages: [{epochs: 3, schedule: onecycle, train_sizes: [32, 48]}]\n")
    assert tta.recipe_label(b) == "resnet18_half_s1, 3 epochs, 32/48 px"
    (b / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\nstages: [{epochs: 3, ema: 0.999, "
                                   "loss_params: {label_smoothing: 0.1}}]\n")
    assert tta.recipe_label(b) == "resnet18_half_s1, 3 epochs, label smoothing 0.1, EMA 0.999"
    (b / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\nstages: [{epochs: 3}]\n"
                                   "data: {augmentation: w_erase, mixup: 0.2}\n")
    assert tta.recipe_label(b) == "resnet18_half_s1, 3 epochs, augmentation w_erase, mixup 0.2"
    (b / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\nstages: [{epochs: 3}]\n"
                                   "data: {soft_targets: /x/t.npz, soft_target_weight: 0.5}\n")
    assert tta.recipe_label(b) == "resnet18_half_s1, 3 epochs, distilled (weight 0.5)"
    (b / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\nstages: [{epochs: 3}]\nseed: 1\n")
    assert tta.recipe_label(b) == "resnet18_half_s1, 3 epochs, seed 1"
    (b / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\nstages: [{epochs: 3}]\nseed: 0\n")
    assert tta.recipe_label(b) == "resnet18_half_s1, 3 epochs"  # seed 0: no suffix
    tta.save_curves([a, b], tmp_path / "f.png", target=0.70)
    with pytest.raises(ValueError, match="same recipe label"):
        tta.save_curves([b, b], tmp_path / "g.png", target=0.70)


def test_the_record_figure_draws_each_candidates_chosen_model_and_refuses_other_tables(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    tta = _load("time_to_accuracy")
    record = pd.DataFrame({"config": ["configs/a/10.yaml", "configs/b/10.yaml"], "epochs": [60, 99],
                           "train_min": [49.2, 80.0], "val_acc_selected": [68.8, 70.1],
                           "test_acc_selected": [67.7, 69.0], "cpu": ["X", "X"]})
    record.to_csv(tmp_path / "r.csv", index=False)
    tta.save_record_figure(tmp_path / "r.csv", tmp_path / "r.png", target=0.70)
    assert (tmp_path / "r.png").stat().st_size > 0
    from fer_utils.plots import candidate_record
    ax, key_ax = candidate_record(record).axes
    test_points, val_points = (c.get_offsets().tolist() for c in ax.collections)
    assert test_points == [[49.2, 67.7], [80.0, 69.0]] and val_points == [[49.2, 68.8], [80.0, 70.1]]
    assert [t.get_text() for t in ax.texts] == ["1", "2"]  # in minutes order
    (key,) = [t.get_text() for t in key_ax.texts]
    assert key.splitlines() == [" 1  a (60 ep., 49.2 min)", " 2  b (99 ep., 80.0 min)"]
    with pytest.raises(ValueError, match="missing column.*test_acc_selected"):
        candidate_record(record.drop(columns="test_acc_selected"))
    # a distilled candidate stands at its own minutes plus its teachers'
    ax, key_ax = candidate_record(record.assign(teacher_min=[0.0, 145.2])).axes
    assert ax.collections[0].get_offsets().tolist() == [[49.2, 67.7], [225.2, 69.0]]
    assert key_ax.texts[0].get_text().splitlines()[1] == " 2  b (99 ep., 80.0 + 145.2 teacher min)"
    with pytest.raises(ValueError, match="give --record too"):
        tta.main(["--config", str(ROOT / "configs" / "fer2013_progressive_ls_val" / "10_finetune_per_loss.yaml"),
                  "--no-train", "--record-figure", str(tmp_path / "x.png")])
    plt.close("all")


def test_throughput_benchmark_runs_naive_and_ours(tmp_path):
    bench = _load("throughput")
    out = tmp_path / "t.json"
    assert bench.main(["--recipes", "fer2013", "--steps", "1", "--warmup", "0", "--device", "cpu",
                       "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    row = res["results"][0]
    assert row["recipe"] == "fer2013" and row["naive_img_s"] > 0 and row["ours_img_s"] > 0
    assert res["machine"]["cpus"] >= 1 and res["device"] == "cpu"


def test_wheelhouse_without_torch_keeps_everything_but_the_torch_stack():
    mod = _load("make_wheelhouse", "scripts")
    report = {"install": [{"metadata": {"name": n, "version": "1.0"}} for n in
                          ("torch", "torchvision", "nvidia-cudnn-cu13", "triton", "timm", "numpy",
                           "fer_utils", "cuda-bindings")]}
    assert mod.to_download(report, without_torch=True) == ["numpy==1.0", "timm==1.0"]
    assert "torch==1.0" in mod.to_download(report, without_torch=False)


def test_wheelhouse_leaves_out_what_the_box_has_but_keeps_the_build_requirements(tmp_path):
    mod = _load("make_wheelhouse", "scripts")
    have = tmp_path / "box.txt"
    have.write_text("# the box\nNumPy==2.5.2\ntyping_extensions\npython-dateutil >= 2\n")
    assert mod.read_have(have) == {"numpy", "typing-extensions", "python-dateutil"}
    report = {"install": [{"metadata": {"name": n, "version": "1.0"}} for n in
                          ("numpy", "typing-extensions", "python_dateutil", "papermill", "torch")]}
    assert mod.to_download(report, without_torch=True, have=mod.read_have(have)) == ["papermill==1.0"]
    assert any(r.startswith("setuptools") for r in mod.build_requirements())


def test_gpu_smoke_reports_a_missing_gpu_in_one_line_and_measures_on_cpu(tmp_path):
    import subprocess
    import sys
    import torch
    script = ROOT / "scripts" / "gpu_smoke.py"
    if not torch.cuda.is_available():
        res = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "a")],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and "CUDA is not available" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    res = subprocess.run([sys.executable, str(script), "--device", "cpu", "--steps", "throughput",
                          "--recipes", "fer2013", "--bench-steps", "1", "--out", str(tmp_path / "b")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "b" / "gpu_smoke.json").read_text())
    rows = report["steps"]["throughput"]["results"]["results"]
    assert report["environment"]["torch"] == torch.__version__
    assert rows[0]["recipe"] == "fer2013" and rows[0]["ours_img_s"] > 0


@pytest.mark.slow
def test_gpu_smoke_grids_step_trains_both_synthetic_grids_without_papermill(tmp_path):
    import subprocess
    import sys
    script = ROOT / "scripts" / "gpu_smoke.py"
    shrink = ["EPOCHS=1", "STAGE_EPOCHS=[1, 1]", "SEEDS=[0]", "FOLDS=[0]", "LOSSES=[softmax]",
              "STRATEGIES=[ce_then_focal]", "IMAGE_SIZE=32", "BOOTSTRAP=0", "PRECISION=fp32",
              "paper_w.DATA_PARAMS={n_train: 160, n_test_per_class: 8}",
              "paper_f.DATA_PARAMS={n_train: 160, cv: true}"]
    res = subprocess.run([sys.executable, str(script), "--device", "cpu", "--steps", "grids",
                          "--timeout", "580", "--out", str(tmp_path)]
                         + [a for s in shrink for a in ("--grid-set", s)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    grids = json.loads((tmp_path / "gpu_smoke.json").read_text())["steps"]["grids"]["results"]
    assert set(grids) == {"paper_w", "paper_f"}
    assert list(grids["paper_w"]["runs"]) == ["W-resnet18-scratch-softmax-seed0"]
    assert len(grids["paper_f"]["runs"]) == 1
    assert all(0 <= acc <= 1 for g in grids.values() for acc in g["runs"].values())
    typo = subprocess.run([sys.executable, str(script), "--steps", "grids", "--grid-set", "EPOCH=1",
                           "--out", str(tmp_path / "typo")], capture_output=True, text=True, timeout=120)
    assert typo.returncode != 0 and "--grid-set EPOCH: not a parameter" in typo.stderr
    wrong_grid = subprocess.run([sys.executable, str(script), "--steps", "grids", "--grid-set",
                                 "paper_f.LOSSES=[softmax]", "--out", str(tmp_path / "typo")],
                                capture_output=True, text=True, timeout=120)
    assert wrong_grid.returncode != 0 and "--grid-set LOSSES: not a parameter of notebook 20_" in wrong_grid.stderr
    no_grid = subprocess.run([sys.executable, str(script), "--steps", "grids", "--grid-set",
                              "paper_x.EPOCHS=1", "--out", str(tmp_path / "typo")],
                             capture_output=True, text=True, timeout=120)
    assert no_grid.returncode != 0 and "GRID one of paper_w, paper_f" in no_grid.stderr


def test_readme_gpu_rows_are_the_recorded_h200_figures():
    """The README's GPU rows are read off results/benchmarks/throughput_cuda_h200.json, not typed."""
    rec = json.loads((ROOT / "results" / "benchmarks" / "throughput_cuda_h200.json").read_text())
    rows = rec["call_1"]["results"] + rec["call_2"]["results"]
    readme = (ROOT / "README.md").read_text()
    assert len(rows) == 7
    for r in rows:
        assert f"| {r['naive_img_s']:,.1f} | {r['ours_img_s']:,.1f} | {r['speedup']:.2f}x |" in readme, r["recipe"]
    # call 1's rows were read off the printed table: they must be the printed figures
    for r in rec["call_1"]["results"]:
        assert f"{r['naive_img_s']:.1f}" in rec["call_1"]["printed"] and f"{r['ours_img_s']:.1f}" in rec["call_1"]["printed"]


def test_backbone_throughput_grid_runs_every_cell(tmp_path):
    bench = _load("backbone_throughput")
    out = tmp_path / "b.json"
    assert bench.main(["--backbone", "resnet18", "--sizes", "32", "--batch", "4", "--steps", "1",
                       "--warmup", "0", "--modes", "fp32", "bf16", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert {(r["frozen_stages_1_3"], r["mode"]) for r in rows} == {(False, "fp32"), (False, "bf16"),
                                                                   (True, "fp32"), (True, "bf16")}
    assert all(r["img_per_s"] > 0 for r in rows)


def test_recipe_search_trains_candidates_and_ranks_them_on_validation(tmp_path):
    import yaml
    search = _load("recipe_search")
    base = {"DATASET": "synthetic", "DATA_PARAMS": {"n_train": 80, "n_test_per_class": 4},
            "IMAGE_SIZE": 32, "IN_CHANS": 1, "BACKBONES": ["resnet18"], "LOSSES": ["softmax"],
            "EPOCHS": 1, "BATCH_SIZE": 16, "BOOTSTRAP": 0, "SCHEDULE": "onecycle"}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {"base": str(tmp_path / "base.yaml"), "runs_dir": str(tmp_path / "runs"),
            "candidates": {"plain": None,
                           "half_erase_ls": {"BACKBONES": ["resnet18_half_s1"], "AUGMENTATION": "w_erase",
                                             "LOSS_PARAMS": {"softmax": {"label_smoothing": 0.1}}}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "t.csv"
    assert search.main(["--file", str(tmp_path / "c.yaml"), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert sorted(table.candidate) == ["half_erase_ls", "plain"]
    assert list(table.best_val_accuracy) == sorted(table.best_val_accuracy, reverse=True)
    run = tmp_path / "runs" / "half_erase_ls"
    metrics = json.loads(next(run.glob("*/metrics.json")).read_text())
    assert metrics["backbone"] == "resnet18_half_s1"
    assert metrics["loss_settings"][0]["label_smoothing"] == 0.1
    # a typo in a candidate is refused before anything trains
    spec["candidates"]["typo"] = {"EPOCH": 3}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match="candidate typo: unknown parameter"):
        search.main(["--file", str(tmp_path / "c.yaml"), "--only", "plain", "--out", str(out)])


def test_accuracy_at_minutes_takes_the_last_epoch_finished_by_each_mark(tmp_path):
    tta = _load("time_to_accuracy")
    rows = pd.DataFrame({"epoch": [0, 1, 2], "elapsed_s": [700.0, 1300.0, 2500.0],
                         "monitor_test_accuracy": [0.40, 0.55, 0.60]})
    # 10 min: nothing finished; 20 min (1200 s): only epoch 0; 60 min: epoch 2
    assert tta.accuracy_at_minutes(rows, [10, 20, 22, 60]) == {10: None, 20: 0.40, 22: 0.55,
                                                                          60: 0.60}


def test_record_candidate_replaces_the_same_recipe_and_seed_on_the_same_cpu_only(tmp_path):
    tta = _load("time_to_accuracy")
    run = _monitored_run(tmp_path / "a", "resnet18_half_s1", 1, [0.4, 0.62, 0.71])
    pd.read_csv(run / "metrics.csv").assign(epoch_time_s=60.0).to_csv(run / "metrics.csv", index=False)
    (run / "run_info.json").write_text(json.dumps({"git": {"sha": "abcdef123"},
                                                   "machine": {"cpu_model": "X", "cpu_capability": "AVX2"}}))
    (run / "metrics.json").write_text(json.dumps({"best_epoch": 1, "val": {"accuracy": 0.6},
                                                  "test": {"accuracy": 0.62}, "train_time_s": 180.0}))
    row = tta.candidate_row("configs/x.yaml", run)
    assert (row["commit"], row["cpu"], row["epochs"], row["test_acc_at_20_min"]) == ("abcdef1", "X (AVX2)", 3, 71.0)
    assert (row["best_val_epoch"], row["test_acc_selected"], row["train_min"]) == (2, 62.0, 3.0)
    assert row["seed"] == 0  # config.yaml names no seed: the config default
    assert row["teacher_min"] == 0.0  # not distilled
    (run / "config.yaml").write_text("model: {backbone: resnet18_half_s1}\nstages: [{epochs: 3}]\nseed: 1\n")
    assert tta.candidate_row("configs/x.yaml", run)["seed"] == 1
    targets = tmp_path / "targets.npz"  # a distilled run: its teachers' minutes come with it
    np.savez(targets, teacher_train_s=np.array([600.0, 1200.0]))
    (run / "config.yaml").write_text(f"model: {{backbone: resnet18_half_s1}}\nstages: [{{epochs: 3}}]\n"
                                     f"data: {{soft_targets: {targets}}}\n")
    assert tta.candidate_row("configs/x.yaml", run)["teacher_min"] == 30.0
    np.savez(targets, prob=np.ones((1, 1)))
    with pytest.raises(ValueError, match="does not record its teachers' training time"):
        tta.candidate_row("configs/x.yaml", run)
    csv = tmp_path / "record.csv"
    tta.record_candidate(csv, row)
    tta.record_candidate(csv, {**row, "test_acc_selected": 63.0})  # rerun: replaces
    tta.record_candidate(csv, {**row, "cpu": "Y (AVX512)"})  # another host: a line of its own
    tta.record_candidate(csv, {**row, "seed": 1, "test_acc_selected": 61.0})  # another seed: its own line
    table = pd.read_csv(csv)
    assert len(table) == 3 and table.loc[(table.cpu == "X (AVX2)") & (table.seed == 0),
                                         "test_acc_selected"].tolist() == [63.0]
    table.assign(seed=[0, None, 1]).to_csv(csv, index=False)  # a blank cell would never match
    with pytest.raises(ValueError, match="blank seed"):
        tta.record_candidate(csv, row)
    table.drop(columns="seed").to_csv(csv, index=False)  # a record written before the seed column
    with pytest.raises(ValueError, match="no column.*seed"):
        tta.record_candidate(csv, row)


def _scored_run(folder, y_true, y_prob, image_id, seed=0, minutes=50.0):
    """A finished run as far as benchmarks/seed_ensemble.py reads it."""
    folder.mkdir()
    np.savez(folder / "predictions.npz", y_true=np.asarray(y_true), y_prob=np.asarray(y_prob),
             image_id=np.asarray(image_id))
    acc = float((np.asarray(y_prob).argmax(1) == np.asarray(y_true)).mean())
    (folder / "metrics.json").write_text(json.dumps({"seed": seed, "train_time_s": 60 * minutes, "test": {
        "accuracy": acc, "class_names": ["a", "b", "c"]}}))
    return folder


def test_seed_ensemble_averages_probabilities_image_by_image_and_refuses_mismatched_members(tmp_path):
    ens = _load("seed_ensemble")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    ids = np.array([f"img{i}" for i in range(40)])
    probs = [rng.dirichlet(np.ones(3), 40) for _ in range(3)]
    runs = [_scored_run(tmp_path / f"r{k}", y, p, ids, seed=k) for k, p in enumerate(probs)]
    out, members = ens.ensemble_predictions(runs)
    assert all(np.array_equal(m["y_prob"], p) for m, p in zip(members, probs))
    for i in range(40):  # naive: one image at a time
        expected = [sum(p[i, c] for p in probs) / 3 for c in range(3)]
        assert np.allclose(out["y_prob"][i], expected)
    assert (out["y_true"] == y).all() and (out["image_id"] == ids).all()
    # the CLI scores the argmax of that mean and adds the members' minutes
    assert ens.main([str(r) for r in runs[:2]] + ["--bootstrap", "0", "--out", str(tmp_path / "e.json")]) == 0
    res = json.loads((tmp_path / "e.json").read_text())
    mean2 = (probs[0] + probs[1]) / 2
    assert res["test_accuracy"] == round(100 * float((mean2.argmax(1) == y).mean()), 2)
    assert res["train_min_total"] == 100.0 and [m["seed"] for m in res["members"]] == [0, 1]
    right = mean2.argmax(1) == y
    only_ens = int((right & (probs[0].argmax(1) != y)).sum())
    assert res["members"][0]["vs_ensemble"]["only_ensemble_right"] == only_ens
    shuffled = _scored_run(tmp_path / "shuffled", y[::-1], probs[0][::-1], ids[::-1])
    with pytest.raises(ValueError, match="other test images"):
        ens.ensemble_predictions([runs[0], shuffled])
    relabelled = _scored_run(tmp_path / "relabelled", (y + 1) % 3, probs[1], ids)
    with pytest.raises(ValueError, match="other test labels"):
        ens.ensemble_predictions([runs[0], relabelled])
    logits = _scored_run(tmp_path / "logits", y, np.log(probs[1]), ids)
    with pytest.raises(ValueError, match="not probabilities"):
        ens.ensemble_predictions([runs[0], logits])
    with pytest.raises(ValueError, match="at least two"):
        ens.ensemble_predictions(runs[:1])
    four = _scored_run(tmp_path / "four", y, np.c_[probs[1] / 2, probs[1][:, :1] / 2], ids)
    with pytest.raises(ValueError, match="predicts 4 classes"):
        ens.ensemble_predictions([runs[0], four])
    (tmp_path / "old").mkdir()
    np.savez(tmp_path / "old" / "predictions.npz", y_true=y, y_prob=probs[1])
    with pytest.raises(ValueError, match="no image_id.*attach_test_groups"):
        ens.ensemble_predictions([runs[0], tmp_path / "old"])
    renamed = _scored_run(tmp_path / "renamed", y, probs[1], ids)
    info = json.loads((renamed / "metrics.json").read_text())
    info["test"]["class_names"] = ["a", "b", "x"]
    (renamed / "metrics.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="name their classes differently"):
        ens.main([str(runs[0]), str(renamed), "--bootstrap", "0"])
    del info["train_time_s"]
    (renamed / "metrics.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="no train_time_s: not a finished run"):
        ens.main([str(runs[0]), str(renamed), "--bootstrap", "0"])
