"""Tables built from run directories: aggregation, paired tests, the papers' numbers."""
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from fer_utils import results
from fer_utils.metrics import evaluate


def _fake_run(root, name, y_true, y_prob, seed=0, fold=None, losses=("softmax",), backbone="resnet18",
              groups=None):
    run = root / name
    run.mkdir(parents=True)
    names = [f"c{i}" for i in range(y_prob.shape[1])]
    m = {"dataset": "synthetic", "backbone": backbone, "head": "w", "losses": list(losses),
         "seed": seed, "fold": fold, "best_epoch": 0, "train_time_s": 1.0,
         "loss_settings": [{"reduction": "mean"}],
         "test": evaluate(y_true, y_prob, names, n_bootstrap=50, seed=seed),
         "split_info": {"train_class_counts": [50, 30, 5]}}
    (run / "metrics.json").write_text(json.dumps(m))
    np.savez(run / "predictions.npz", y_true=y_true, y_prob=y_prob, **(groups or {}))
    return run


def _probs(y, correct, k=3):
    prob = np.full((len(y), k), 0.1)
    pred = np.where(correct, y, (y + 1) % k)
    prob[np.arange(len(y)), pred] = 0.8
    return prob


def test_paper_w_table_aggregates_seeds_and_tests_against_softmax(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    for seed in (0, 1):
        _fake_run(tmp_path, f"W-resnet18-scratch-softmax-seed{seed}", y, _probs(y, rng.random(120) < 0.5), seed)
        _fake_run(tmp_path, f"W-resnet18-scratch-weighted_softmax-seed{seed}", y,
                  _probs(y, rng.random(120) < 0.9), seed, losses=("weighted_softmax",))
    runs = results.collect_runs(tmp_path)
    assert len(runs) == 4 and set(runs.study) == {"paper_w"}
    table = results.paper_w_table(runs).set_index("loss")
    assert table.loc["softmax", "seeds"] == 2
    acc = runs[runs.losses == "softmax"].accuracy * 100
    assert table.loc["softmax", "accuracy"] == f"{acc.mean():.2f} ± {acc.std(ddof=1):.2f}"
    assert float(table.loc["weighted_softmax", "Δacc vs baseline"]) > 20
    p = float(table.loc["weighted_softmax", "p acc vs baseline"].split()[0])
    assert p < 1e-6 and table.loc["weighted_softmax", "Holm p acc vs baseline"] == f"{p:.3f}"  # a family of one
    assert table.loc["softmax", "p acc vs baseline"] == "" and table.loc["softmax", "Holm p acc vs baseline"] == ""
    assert table.loc["softmax", "unit"] == "image (120)"  # no subjects recorded
    assert "minority recall (c2)" in table.columns


def test_paper_w_table_tests_pretrained_rows_against_the_same_loss_from_scratch(tmp_path):
    """Paper W's Table 5 axis: a pre-trained row is also tested against the same loss from
    scratch, on the seeds both have (here seed 0 only: exact McNemar at the image), and Holm
    runs over every test of the table (vs baseline and vs scratch together)."""
    y = np.repeat(np.arange(3), 40)
    idx = np.arange(120)
    # discordant images by construction: 14 / 4 vs scratch (p ~0.03), 12 / 5 vs softmax (p ~0.14),
    # so that Holm over the table (not per column) visibly changes the smaller p
    pre = {0: idx < 60, 1: np.random.default_rng(1).random(120) < 0.8}
    scratch = ((idx >= 14) & (idx < 60)) | ((idx >= 60) & (idx < 64))
    ws = ((idx >= 5) & (idx < 60)) | ((idx >= 64) & (idx < 76))
    _fake_run(tmp_path, "W-resnet18-scratch-softmax-seed0", y, _probs(y, scratch), 0)
    for seed, c in pre.items():
        _fake_run(tmp_path, f"W-resnet18-pretrained-softmax-seed{seed}", y, _probs(y, c), seed)
    _fake_run(tmp_path, "W-resnet18-pretrained-weighted_softmax-seed0", y, _probs(y, ws), 0,
              losses=("weighted_softmax",))
    table = results.paper_w_table(results.collect_runs(tmp_path))
    get = lambda key, col: table.loc[(table.pretrained.astype(bool) == key[0]) & (table.loss == key[1]), col].item()

    only_scratch, only_pre = int(np.sum(scratch & ~pre[0])), int(np.sum(~scratch & pre[0]))
    p_scratch = binomtest(only_pre, only_scratch + only_pre).pvalue
    assert get((True, "softmax"), "p acc vs scratch") == f"{p_scratch:.3f} ({only_scratch}/{only_pre})"
    acc = lambda c: c.mean() * 100
    assert get((True, "softmax"), "Δacc vs scratch") == f"{acc(pre[0]) - acc(scratch):+.2f}"  # seed 0 only
    only_soft, only_ws = int(np.sum(pre[0] & ~ws)), int(np.sum(~pre[0] & ws))
    p_base = binomtest(only_ws, only_soft + only_ws).pvalue
    assert get((True, "weighted_softmax"), "p acc vs baseline") == f"{p_base:.3f} ({only_soft}/{only_ws})"
    # no scratch twin, and scratch rows are never tested against scratch
    assert get((True, "weighted_softmax"), "p acc vs scratch") == ""
    assert get((False, "softmax"), "p acc vs scratch") == ""
    assert (only_scratch, only_pre, only_soft, only_ws) == (4, 14, 5, 12)
    # Holm over the two tests of the table, by hand: the smaller p doubles, the larger stays
    assert p_scratch < p_base and 2 * p_scratch < p_base
    assert get((True, "softmax"), "Holm p acc vs scratch") == f"{2 * p_scratch:.3f}" != f"{p_scratch:.3f}"
    assert get((True, "weighted_softmax"), "Holm p acc vs baseline") == f"{p_base:.3f}"
    assert len(table) == 3


def test_paper_w_table_counts_seeds_on_the_same_images_once(tmp_path):
    y = np.repeat(np.arange(3), 40)
    correct = np.random.default_rng(0).random(120) < 0.7
    for seed in (0, 1, 2):  # three seeds that happen to agree on every image
        _fake_run(tmp_path, f"W-resnet18-scratch-softmax-seed{seed}", y, _probs(y, correct), seed)
    row = results.paper_w_table(results.collect_runs(tmp_path)).iloc[0]
    c2 = correct[y == 2]
    lo, hi = results.wilson_interval(int(c2.sum()), len(c2))
    text = row["minority recall (c2)"]
    got = [float(v) for v in text.split("[")[1].rstrip("]").split(", ")]
    # as wide as one seed's interval (a bootstrap of 40 images), not sqrt(3) narrower
    assert got[1] - got[0] == pytest.approx(100 * (hi - lo), abs=6)
    pooled_lo, pooled_hi = results.wilson_interval(3 * int(c2.sum()), 3 * len(c2))
    assert got[1] - got[0] > 1.4 * 100 * (pooled_hi - pooled_lo)


def test_paper_w_table_of_runs_published_without_predictions(tmp_path):
    y = np.repeat(np.arange(3), 40)
    rng = np.random.default_rng(3)
    for seed in (0, 1):
        for loss in ("softmax", "focal"):
            run = _fake_run(tmp_path, f"W-resnet18-scratch-{loss}-seed{seed}", y,
                            _probs(y, rng.random(120) < 0.6), seed, losses=(loss,))
            (run / "predictions.npz").unlink()
    table = results.paper_w_table(results.collect_runs(tmp_path)).set_index("loss")
    assert table.loc["focal", "p acc vs baseline"] == "n/a (no predictions)"
    assert table.loc["focal", "Holm p acc vs baseline"] == ""
    assert table.loc["focal", "accuracy 95% CI"].endswith("(per seed)")
    assert table.loc["focal", "accuracy 95% CI"].count("[") == 2


def test_paper_f_table_pools_folds_for_mcnemar(tmp_path):
    y = np.repeat(np.arange(3), 10)
    for fold in range(3):
        _fake_run(tmp_path, f"F-resnet18-ce_only-fold{fold}-seed0", y, _probs(y, np.arange(30) % 2 == 0), fold=fold)
        _fake_run(tmp_path, f"F-resnet18-ce_then_focal-fold{fold}-seed0", y, _probs(y, np.arange(30) % 2 == 0),
                  fold=fold, losses=("softmax", "focal"))
    table = results.paper_f_table(results.collect_runs(tmp_path)).set_index("strategy")
    assert table.loc["ce_only", "folds"] == 3
    assert table.loc["ce_then_focal", "p vs CE only"] == "1.000 (0/0)"
    assert table.loc["ce_then_focal", "Holm p vs CE only"] == "1.000"
    assert table.loc["ce_then_focal", "pooled accuracy"] == "50.00"


def test_paper_f_table_tests_ce_then_focal_against_its_scaled_lr_control(tmp_path):
    y = np.repeat(np.arange(3), 10)
    for strategy, correct in (("ce_only", np.arange(30) < 10), ("ce_then_focal", np.arange(30) < 20),
                              ("ce_then_ce_scaled_lr", np.arange(30) < 25)):
        _fake_run(tmp_path, f"F-resnet18-{strategy}-fold0-seed0", y, _probs(y, correct), fold=0)
    table = results.paper_f_table(results.collect_runs(tmp_path)).set_index("strategy")
    col = "p vs CE->CE control"
    # control right on images 20-24 where CE -> focal is wrong, never the other way round
    assert table.loc["ce_then_focal", col] == "0.062 (5/0)"
    assert table.loc["ce_only", col] == "" and table.loc["ce_then_ce_scaled_lr", col] == ""
    # Holm over the table's four tests: vs CE only (p 0.002, 0.00006) and vs the control (0.062)
    raw = [float(table.loc[s, c].split()[0]) for s, c in (("ce_then_focal", "p vs CE only"),
                                                           ("ce_then_ce_scaled_lr", "p vs CE only"),
                                                           ("ce_then_focal", col))]
    assert [table.loc[s, f"Holm {c}"] for s, c in (("ce_then_focal", "p vs CE only"),
                                                   ("ce_then_ce_scaled_lr", "p vs CE only"),
                                                   ("ce_then_focal", col))] == \
        [f"{q:.3f}" for q in results.holm(raw)]


def test_paper_f_table_tests_subjects_not_frames(tmp_path):
    """Three identical frames per sequence, one sequence per subject: the table's test and
    interval must be those of the 30 subjects, not of 90 frames."""
    y = np.repeat(np.arange(3), 10)
    groups = {"image_id": np.array([f"S{i}_{k}" for i in range(30) for k in range(3)]),
              "subject": np.repeat(np.arange(30), 3), "sequence": np.repeat(np.arange(30), 3).astype(str)}
    base, better = np.arange(30) % 2 == 0, np.arange(30) % 3 != 2
    for strategy, c in (("ce_only", base), ("joint", better)):
        _fake_run(tmp_path, f"F-resnet18-{strategy}-fold0-seed0", np.repeat(y, 3),
                  _probs(np.repeat(y, 3), np.repeat(c, 3)), fold=0, groups=groups)
    table = results.paper_f_table(results.collect_runs(tmp_path)).set_index("strategy")
    only_a, only_b = int(np.sum(base & ~better)), int(np.sum(~base & better))
    assert table.loc["joint", "p vs CE only"] == f"{binomtest(only_b, only_a + only_b).pvalue:.3f} ({only_a}/{only_b})"
    assert table.loc["joint", "unit"] == "subject (30)"
    frames = results.paper_f_table(results.collect_runs(tmp_path), unit="image").set_index("strategy")
    assert frames.loc["joint", "unit"] == "image (90)"
    assert float(frames.loc["joint", "p vs CE only"].split()[0]) < float(table.loc["joint", "p vs CE only"].split()[0])


def test_compare_runs_refuses_runs_that_tested_different_images(tmp_path):
    y = np.repeat(np.arange(3), 10)
    _fake_run(tmp_path, "F-resnet18-ce_only-fold0-seed0", y, _probs(y, np.ones(30, bool)), fold=0)
    _fake_run(tmp_path, "F-resnet18-joint-fold1-seed0", y, _probs(y, np.ones(30, bool)), fold=1)
    runs = results.collect_runs(tmp_path)
    a, b = runs[runs.strategy == "ce_only"], runs[runs.strategy == "joint"]
    assert results.compare_runs(a, b) == "unpaired (different folds/seeds)"
    assert results.compare_runs(a, a) == {"p": 1.0, "a_better": 0, "b_better": 0, "unit": "image"}


def test_wilson_interval_matches_known_values():
    lo, hi = results.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert all(np.isnan(results.wilson_interval(0, 0)))


def test_reported_numbers_are_attached():
    assert results._paper_w_reported("seresnet50", True, "weighted_cluster+weighted_softmax")["paper acc"] == 60.70
    assert results._paper_f_reported("ckplus", "inception_v3", "ce_then_focal") == 98.8
    assert results._paper_f_reported("ckplus", "vgg16", "ce_only") == 94.6


def test_write_table_writes_csv_and_markdown(tmp_path):
    import pandas as pd
    csv, md = results.write_table(pd.DataFrame({"a": [1]}), tmp_path, "t", "Title", "note")
    assert csv.read_text().startswith("a\n1") and "# Title" in md.read_text() and "note" in md.read_text()


def test_paper_w_table_reports_embedding_compactness(tmp_path):
    y = np.repeat(np.arange(3), 20)
    rng = np.random.default_rng(1)
    tight = np.eye(3)[y] * 10 + rng.normal(0, 0.1, (60, 3))
    loose = np.eye(3)[y] * 10 + rng.normal(0, 3.0, (60, 3))
    for name, emb, losses in (("softmax", loose, ("softmax",)), ("center_softmax", tight, ("center+softmax",))):
        run = _fake_run(tmp_path, f"W-resnet18-scratch-{name}-seed0", y, _probs(y, np.ones(60, bool)), losses=losses)
        np.savez(run / "predictions.npz", y_true=y, y_prob=_probs(y, np.ones(60, bool)), embedding=emb)
    table = results.paper_w_table(results.collect_runs(tmp_path)).set_index("loss")
    col = "intra/inter (test emb.)"
    assert float(table.loc["center+softmax", col]) < 0.01 < float(table.loc["softmax", col])


def test_test_embeddings_keys_by_label_and_skips_runs_without_embeddings(tmp_path):
    y = np.arange(3)
    with_emb = _fake_run(tmp_path, "W-resnet18-scratch-softmax-seed0", y, np.eye(3))
    np.savez(with_emb / "predictions.npz", y_true=y, y_prob=np.eye(3), embedding=np.ones((3, 4)))
    _fake_run(tmp_path, "W-resnet18-scratch-center_softmax-seed0", y, np.eye(3), losses=("center+softmax",))
    out = results.test_embeddings(results.collect_runs(tmp_path))
    assert list(out) == ["softmax"]
    assert out["softmax"][0].shape == (3, 4) and np.array_equal(out["softmax"][1], y)

    assert results.missing_embeddings(results.collect_runs(tmp_path)) == ["center+softmax"]


def test_setting_labels_name_the_initialisation_and_backbone_only_when_runs_mix_them(tmp_path):
    y = np.arange(3)
    _fake_run(tmp_path, "W-resnet18-scratch-softmax-seed0", y, np.eye(3))
    _fake_run(tmp_path, "W-resnet18-scratch-center_softmax-seed0", y, np.eye(3), losses=("center+softmax",))
    assert results.setting_labels(results.collect_runs(tmp_path)) == ["center+softmax", "softmax"]
    _fake_run(tmp_path, "W-resnet18-pretrained-softmax-seed0", y, np.eye(3))
    runs = results.collect_runs(tmp_path)
    labels = dict(zip(runs.run, results.setting_labels(runs)))
    assert labels["W-resnet18-pretrained-softmax-seed0"] == "softmax (pre-trained)"
    assert labels["W-resnet18-scratch-softmax-seed0"] == "softmax (scratch)"
    _fake_run(tmp_path, "W-vgg16-scratch-softmax-seed0", y, np.eye(3), backbone="vgg16")
    runs = results.collect_runs(tmp_path)
    labels = results.setting_labels(runs)
    assert len(set(labels)) == len(runs) and "vgg16: softmax (scratch)" in labels


def test_paper_f_table_keeps_scratch_and_pretrained_apart(tmp_path):
    y = np.repeat(np.arange(3), 10)
    for tag, correct in (("", np.arange(30) % 2 == 0), ("pretrained-", np.ones(30, bool))):
        for strategy in ("ce_only", "ce_then_focal"):
            _fake_run(tmp_path, f"F-resnet18-{tag}{strategy}-fold0-seed0", y, _probs(y, correct), fold=0)
    table = results.paper_f_table(results.collect_runs(tmp_path))
    assert len(table) == 4
    by = table.set_index(["pretrained", "strategy"])
    assert by.loc[(True, "ce_only"), "pooled accuracy"] == "100.00"
    assert by.loc[(False, "ce_only"), "pooled accuracy"] == "50.00"
    assert np.isnan(by.loc[(False, "ce_then_focal"), "paper acc"])  # the paper never trains from scratch
    # pre-trained right on all 30, scratch on 15: 15 discordant pairs all one way
    assert by.loc[(True, "ce_only"), "p vs scratch"] == "0.000 (0/15)"
    assert by.loc[(False, "ce_only"), "p vs scratch"] == ""
    assert by.loc[(True, "ce_only"), "pooled 95% CI"] == "[88.6, 100.0]"


def test_export_runs_copies_configs_metrics_and_predictions_without_embeddings(tmp_path):
    run = _fake_run(tmp_path / "runs", "W-resnet18-scratch-softmax-seed0", np.arange(3), np.eye(3))
    np.savez(run / "predictions.npz", y_true=np.arange(3), y_prob=np.eye(3), embedding=np.eye(3, 512))
    np.savez(run / "predictions_stage0.npz", y_true=np.arange(3), y_prob=np.eye(3))
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "best.pt").write_bytes(b"x")
    out = results.export_runs(results.collect_runs(tmp_path / "runs"), tmp_path / "out")
    files = sorted(p.name for p in (out / run.name).iterdir())
    assert files == ["config.yaml", results.COMPACTNESS_FILE, "metrics.json", "predictions.npz",
                     "predictions_stage0.npz"]
    p = results.load_predictions(out / run.name)
    assert sorted(p) == ["y_prob", "y_true"] and np.array_equal(p["y_prob"], np.eye(3))


def test_restored_runs_rebuild_the_same_tables_and_count_as_finished(tmp_path):
    from fer_utils.training import is_finished
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 30)
    for fold in range(2):
        for strategy, p_ok in (("ce_only", 0.6), ("ce_then_focal", 0.8)):
            _fake_run(tmp_path / "runs", f"F-resnet18-{strategy}-fold{fold}-seed0", y,
                      _probs(y, rng.random(90) < p_ok), fold=fold)
    before = results.paper_f_table(results.collect_runs(tmp_path / "runs"))
    results.export_runs(results.collect_runs(tmp_path / "runs"), tmp_path / "published")
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "F-resnet18-ce_only-fold0-seed0").mkdir()  # a run started here: kept
    restored = results.restore_runs(tmp_path / "published", tmp_path / "fresh")
    assert len(restored) == 3 and "F-resnet18-ce_only-fold0-seed0" not in restored
    assert all(is_finished(tmp_path / "fresh" / r) for r in restored)
    assert (tmp_path / "fresh" / restored[0] / results.RESTORED_MARK).exists()
    assert results.restore_runs(tmp_path / "published", tmp_path / "fresh") == []  # idempotent
    # with the started run restored too, the tables match the originals exactly
    import shutil
    shutil.rmtree(tmp_path / "fresh" / "F-resnet18-ce_only-fold0-seed0")
    results.restore_runs(tmp_path / "published", tmp_path / "fresh")
    after = results.paper_f_table(results.collect_runs(tmp_path / "fresh"))
    assert before.equals(after)


def test_restored_runs_keep_the_embedding_compactness_their_embeddings_gave(tmp_path):
    y = np.repeat(np.arange(3), 20)
    rng = np.random.default_rng(2)
    for seed in (0, 1):
        run = _fake_run(tmp_path / "runs", f"W-resnet18-scratch-softmax-seed{seed}", y,
                        _probs(y, np.ones(60, bool)), seed=seed)
        emb = np.eye(3)[y] * 10 + rng.normal(0, 1.0 + seed, (60, 3))
        np.savez(run / "predictions.npz", y_true=y, y_prob=_probs(y, np.ones(60, bool)), embedding=emb)
    col = "intra/inter (test emb.)"
    before = results.paper_w_table(results.collect_runs(tmp_path / "runs"))[col].iloc[0]
    assert "±" in before
    results.export_runs(results.collect_runs(tmp_path / "runs"), tmp_path / "published")
    results.restore_runs(tmp_path / "published", tmp_path / "fresh")
    fresh = results.collect_runs(tmp_path / "fresh")
    assert results.test_embeddings(fresh) == {}  # the embeddings themselves stay behind
    assert results.paper_w_table(fresh)[col].iloc[0] == before
    # a restored run published before the ratio was: no value, and the table says so
    for seed in (0, 1):
        (tmp_path / "fresh" / f"W-resnet18-scratch-softmax-seed{seed}" / results.COMPACTNESS_FILE).unlink()
    assert results.paper_w_table(results.collect_runs(tmp_path / "fresh"))[col].iloc[0] == "n/a"


def test_runs_exported_without_predictions_are_restored_and_keep_their_table_row(tmp_path):
    # results/fer2013's situation: an older grid published without predictions beside a newer
    # one with them. Publishing the newer grid must not drop the older grid's rows, and what
    # notebook 10 draws (confusion matrices, embeddings) must work for both kinds of run.
    from sklearn.metrics import confusion_matrix
    y = np.repeat(np.arange(3), 10)
    for loss, backbone, keep in (("softmax", "resnet18", False), ("weighted_softmax", "resnet18", False),
                                 ("softmax", "efficientnet_lite0", True)):
        prob = _probs(y, np.arange(30) % (2 if loss == "softmax" else 3) > 0)
        run = _fake_run(tmp_path / "runs", f"W-{backbone}-scratch-{loss}-seed0", y, prob,
                        losses=(loss,), backbone=backbone)
        if not keep:
            (run / "predictions.npz").unlink()
    before = results.paper_w_table(results.collect_runs(tmp_path / "runs"))
    results.export_runs(results.collect_runs(tmp_path / "runs"), tmp_path / "published")
    restored = results.restore_runs(tmp_path / "published", tmp_path / "fresh")
    assert len(restored) == 3
    marks = {r: (tmp_path / "fresh" / r / results.RESTORED_MARK).read_text() for r in restored}
    assert "metrics only" in marks["W-resnet18-scratch-softmax-seed0"]
    assert "metrics only" not in marks["W-efficientnet_lite0-scratch-softmax-seed0"]
    fresh = results.collect_runs(tmp_path / "fresh")
    after = results.paper_w_table(fresh)
    assert before.equals(after) and len(after) == 3
    assert sorted(after["unit"]) == ["image (30)", "image (no predictions)", "image (no predictions)"]
    assert results.test_embeddings(fresh) == {}  # no error for the runs without predictions
    for d in fresh["run_dir"]:
        m = json.loads((Path(d) / "metrics.json").read_text())
        # the matrix of the run's own predictions, read from metrics.json
        assert np.array_equal(results.test_confusion_matrix(d), m["test"]["confusion_matrix"])
    p = results.load_predictions(tmp_path / "fresh" / "W-efficientnet_lite0-scratch-softmax-seed0")
    assert np.array_equal(results.test_confusion_matrix(tmp_path / "fresh" / "W-efficientnet_lite0-scratch-softmax-seed0"),
                          confusion_matrix(p["y_true"], p["y_prob"].argmax(1), labels=range(3)))


def test_per_class_recall_pools_folds_and_equals_the_seed_mean(tmp_path):
    # Fold 0 holds 1 image of class 2 (missed), fold 1 holds 3 (all found): pooled recall is
    # 3/4 = 75%, where a mean over folds would say 50%.
    for fold, (y, correct) in enumerate(((np.array([0, 0, 1, 2]), np.array([1, 1, 1, 0], bool)),
                                         (np.array([0, 1, 2, 2, 2]), np.ones(5, bool)))):
        _fake_run(tmp_path / "f", f"F-resnet18-ce_only-fold{fold}-seed0", y, _probs(y, correct), fold=fold)
    table = results.per_class_recall_table(results.collect_runs(tmp_path / "f"), study="paper_f")
    assert table.loc[0, "strategy"] == "ce_only" and table.loc[0, "runs"] == 2
    assert table.loc[0, "c2"] == 75.0 and table.loc[0, "c0"] == 100.0
    # seeds share one test set, so pooling equals the mean of the per-seed recalls
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 20)
    for seed in (0, 1, 2):
        _fake_run(tmp_path / "w", f"W-resnet18-scratch-softmax-seed{seed}", y, _probs(y, rng.random(60) < 0.6), seed)
    runs = results.collect_runs(tmp_path / "w")
    table = results.per_class_recall_table(runs)
    for c in ("c0", "c1", "c2"):
        assert table.loc[0, c] == pytest.approx(runs[f"recall[{c}]"].mean() * 100, abs=0.051)


def test_pipeline_restores_published_runs_named_by_the_last_parameter_file(tmp_path, capsys):
    from fer_utils import pipeline
    run = _fake_run(tmp_path / "old_runs", "F-resnet18-ce_only-fold0-seed0", np.arange(3), np.eye(3), fold=0)
    results.export_runs(results.collect_runs(run.parent), tmp_path / "results" / "runs")
    first, last = tmp_path / "20.yaml", tmp_path / "30.yaml"
    first.write_text("RUNS_DIR: x\n")
    last.write_text(f"RESULTS_DIR: {tmp_path / 'results'}\n")
    pipeline._restore_published([(None, first), (None, last)], {}, tmp_path / "runs")
    assert (tmp_path / "runs" / run.name / "metrics.json").exists()
    assert "restored 1 finished runs" in capsys.readouterr().out
