"""Invariants and cross-checks of fer_utils.metrics against sklearn, krippendorff and scipy."""
from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pytest
import torch
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score,
                             cohen_kappa_score, f1_score, roc_auc_score)

from fer_utils import metrics as M

K = 5
NAMES = [f"class{i}" for i in range(K)]


def make_data(n: int = 300, k: int = K, seed: int = 0, absent: int | None = None):
    """Imbalanced labels and noisy, informative probabilities (with some tied scores)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=np.linspace(1, 3, k) / np.linspace(1, 3, k).sum())
    if absent is not None:
        y[y == absent] = (absent + 1) % k
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.2
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, np.round(prob, 2)  # rounding creates ties, which AUC/AP must handle as sklearn does


def sklearn_ovr(y, prob, k=K):
    """Reference: loop over classes on binary indicators, mean over defined classes."""
    pred = prob.argmax(axis=1)
    per = {"f1": [], "kappa": [], "alpha": [], "auc": [], "auc_pr": []}
    for c in range(k):
        t, p = (y == c).astype(int), (pred == c).astype(int)
        per["f1"].append(f1_score(t, p, zero_division=np.nan) if (t | p).any() else np.nan)
        per["kappa"].append(cohen_kappa_score(t, p, labels=[0, 1]) if (t | p).any() else np.nan)
        both = np.stack([t, p])
        per["alpha"].append(krippendorff.alpha(both, level_of_measurement="nominal")
                            if len(np.unique(both)) > 1 else np.nan)
        defined = 0 < t.sum() < len(t)
        per["auc"].append(roc_auc_score(t, prob[:, c]) if defined else np.nan)
        per["auc_pr"].append(average_precision_score(t, prob[:, c]) if defined else np.nan)
    return {m: float(np.nanmean(v)) for m, v in per.items()}, per


# ------------------------------------------------------------------ point estimates
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ovr_metrics_match_sklearn_loop(seed):
    y, prob = make_data(seed=seed)
    r = M.evaluate(y, prob, NAMES, n_bootstrap=0)
    ref, per = sklearn_ovr(y, prob)
    for m, v in ref.items():
        assert r[m] == pytest.approx(v, abs=1e-12), m
    for c, name in enumerate(NAMES):
        assert r["per_class"][name]["auc"] == pytest.approx(per["auc"][c], abs=1e-12)
        assert r["per_class"][name]["auc_pr"] == pytest.approx(per["auc_pr"][c], abs=1e-12)


def test_accuracy_balanced_accuracy_and_macro_f1_match_sklearn():
    y, prob = make_data()
    pred = prob.argmax(axis=1)
    r = M.evaluate(y, prob, NAMES, n_bootstrap=0)
    assert r["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert r["macro_f1_multiclass"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
    # Per-class OvR F1 is the multi-class per-class F1, so their means agree.
    assert r["f1"] == pytest.approx(r["macro_f1_multiclass"], abs=1e-12)


def test_per_class_table_and_confusion_matrix():
    y, prob = make_data()
    pred = prob.argmax(axis=1)
    r = M.evaluate(y, prob, NAMES, n_bootstrap=0)
    cm = np.array(r["confusion_matrix"])
    assert cm.sum() == r["n"] == len(y)
    assert cm[1, 2] == np.sum((y == 1) & (pred == 2))  # rows true, columns predicted
    f1s = f1_score(y, pred, average=None, labels=list(range(K)))
    for c, name in enumerate(NAMES):
        row = r["per_class"][name]
        assert row["support"] == np.sum(y == c)
        assert row["f1"] == pytest.approx(f1s[c], abs=1e-12)
        assert row["recall"] == pytest.approx(np.mean(pred[y == c] == c), abs=1e-12)


def test_binary_kappa_alpha_match_references():
    rng = np.random.default_rng(3)
    for _ in range(20):
        t = rng.integers(0, 2, 50)
        p = np.where(rng.random(50) < 0.7, t, 1 - t)
        tp, fp = np.sum(t & p), np.sum((1 - t) & p)
        fn, tn = np.sum(t & (1 - p)), np.sum((1 - t) & (1 - p))
        assert M.binary_kappa(tp, fp, fn, tn) == pytest.approx(cohen_kappa_score(t, p), abs=1e-12)
        ref = krippendorff.alpha(np.stack([t, p]), level_of_measurement="nominal")
        assert M.binary_alpha(tp, fp, fn, tn) == pytest.approx(ref, abs=1e-12)
    assert np.isnan(M.binary_kappa(0, 0, 0, 10)) and np.isnan(M.binary_alpha(0, 0, 0, 10))
    assert M.binary_kappa(0, 0, 10, 0) == 0.0  # raters constant but opposite: defined


def test_perfect_predictions_give_one_everywhere():
    y = np.repeat(np.arange(K), 20)
    prob = np.eye(K)[y] * 0.9 + 0.02
    r = M.evaluate(y, prob, NAMES, n_bootstrap=50)
    for m in M.HEADLINE_METRICS:
        assert r[m] == pytest.approx(1.0), m
        assert r["ci"][m] == pytest.approx([1.0, 1.0]), m


def test_worse_than_chance_kappa_is_negative_not_clipped():
    y = np.repeat(np.arange(2), 50)
    prob = np.eye(2)[1 - y]  # always wrong
    r = M.evaluate(y, prob, ["a", "b"], n_bootstrap=0)
    assert r["kappa"] == pytest.approx(-1.0) and r["alpha"] < 0 and r["auc"] == 0.0


def test_torch_inputs_accepted():
    y, prob = make_data()
    a = M.evaluate(y, prob, NAMES, n_bootstrap=20)
    b = M.evaluate(torch.from_numpy(y), torch.from_numpy(prob).float().double(), NAMES,
                   n_bootstrap=20)
    assert a == b


# --------------------------------------------------------------------- absent class
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # sklearn reference
def test_absent_class_is_excluded_and_recorded():
    y, prob = make_data(absent=2)
    r = M.evaluate(y, prob, NAMES, n_bootstrap=30)
    ref, _ = sklearn_ovr(y, prob)
    assert "class2" in r["undefined_classes"]["auc"]
    assert "class2" in r["undefined_classes"]["auc_pr"]
    assert r["per_class"]["class2"]["auc"] is None and r["per_class"]["class2"]["support"] == 0
    for m, v in ref.items():
        assert r[m] == pytest.approx(v, abs=1e-12), m
    assert r["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y, prob.argmax(axis=1)), abs=1e-12)
    assert all(lo is not None for lo, _ in r["ci"].values())


def test_class_absent_and_never_predicted():
    y = np.array([0, 0, 1, 1, 1, 0])
    prob = np.eye(3)[[0, 1, 1, 1, 0, 0]]
    r = M.evaluate(y, prob, ["a", "b", "c"], n_bootstrap=10)
    assert set(r["undefined_classes"]["f1"]) == {"c"}
    assert set(r["undefined_classes"]["kappa"]) == {"c"}
    assert r["f1"] == pytest.approx(r["macro_f1_multiclass"])
    json.dumps(r, allow_nan=False)


# -------------------------------------------------------------------------- bootstrap
def test_stratified_indices_preserve_class_counts():
    y, _ = make_data()
    idx = M.stratified_bootstrap_indices(y, 40, seed=5)
    assert idx.shape == (40, len(y))
    counts = np.bincount(y, minlength=K)
    for row in idx:
        assert np.array_equal(np.bincount(y[row], minlength=K), counts)
    assert len(np.unique(idx[0])) < len(y)  # with replacement


def test_bootstrap_seeded():
    y, prob = make_data()
    a = M.evaluate(y, prob, NAMES, n_bootstrap=100, seed=1)
    b = M.evaluate(y, prob, NAMES, n_bootstrap=100, seed=1)
    c = M.evaluate(y, prob, NAMES, n_bootstrap=100, seed=2)
    assert a["ci"] == b["ci"] and a["ci"] != c["ci"]
    assert a["bootstrap_seed"] == 1 and a["n_bootstrap"] == 100 and a["ci_level"] == 0.95


def test_ci_contains_point_estimate():
    y, prob = make_data(n=500)
    r = M.evaluate(y, prob, NAMES, n_bootstrap=300)
    for m in M.HEADLINE_METRICS:
        lo, hi = r["ci"][m]
        assert lo <= r[m] <= hi, m
        assert hi - lo > 0, m


def test_vectorised_replicates_equal_naive_recomputation():
    y, prob = make_data(n=200)
    idx = M.stratified_bootstrap_indices(y, 3, seed=0)
    batch = M._headline(M._per_class_metrics(y, prob, M._draw_counts(idx, len(y))))
    for b, row in enumerate(idx):
        yb, pb = y[row], prob[row]
        ref, _ = sklearn_ovr(yb, pb)
        ref["accuracy"] = accuracy_score(yb, pb.argmax(axis=1))
        ref["balanced_accuracy"] = balanced_accuracy_score(yb, pb.argmax(axis=1))
        for m, v in ref.items():
            assert batch[m][b] == pytest.approx(v, abs=1e-12), m


def test_bootstrap_disabled():
    y, prob = make_data()
    r = M.evaluate(y, prob, NAMES, n_bootstrap=0)
    assert r["ci"] == {} and r["n_bootstrap"] == 0


# ----------------------------------------------------------------- model comparison
def test_paired_bootstrap_self_is_zero():
    y, prob = make_data()
    r = M.paired_bootstrap(y, prob, prob, "f1", n_bootstrap=100)
    assert r["difference"] == 0.0 and r["ci"] == [0.0, 0.0] and r["p_value"] == 1.0


def test_paired_bootstrap_detects_better_model():
    y, prob = make_data(n=400)
    better = prob + 0.5 * np.eye(K)[y]
    r = M.paired_bootstrap(y, prob, better, "accuracy", n_bootstrap=200, seed=3)
    assert r["difference"] > 0 and r["ci"][0] > 0 and r["p_value"] < 0.05
    assert r["a"] == pytest.approx(accuracy_score(y, prob.argmax(axis=1)))
    json.dumps(r)


def test_mcnemar_hand_example():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    a = np.array([0, 1, 2, 1, 1, 0, 0, 2])  # right on 0,1,2,4,6
    b = np.array([0, 1, 0, 0, 2, 2, 1, 2])  # right on 0,1,3,5
    r = M.mcnemar(y, a, b)
    assert (r["both_correct"], r["a_only_correct"], r["b_only_correct"], r["both_wrong"]) == (2, 3, 2, 1)
    assert r["n_discordant"] == 5
    # Exact two-sided: 2 * P(X <= 2), X ~ Bin(5, 1/2) = 2 * 16/32 -> capped at 1.
    assert r["p_value"] == pytest.approx(1.0)
    assert M._binom_two_sided(0, 6) == pytest.approx(2 / 64)
    assert M.mcnemar(y, a, a)["p_value"] == 1.0
    assert M.mcnemar(y, np.eye(3)[a], b) == r  # scores are argmax-ed


# ---------------------------------------------------------------- embeddings
def test_embedding_compactness_hand_clusters():
    # Class 0 at (+-1, 0) around (0, 0); class 1 at (10, +-2) around (10, 0).
    x = np.array([[-1, 0], [1, 0], [10, 2], [10, -2]], dtype=float)
    labels = np.array([0, 0, 1, 1])
    r = M.embedding_compactness(torch.tensor(x), labels, ["a", "b"])
    assert r["per_class"]["a"] == {"intra": 1.0, "n": 2}
    assert r["per_class"]["b"] == {"intra": 4.0, "n": 2}
    assert r["intra_class"] == 2.5 and r["inter_center"] == 100.0
    assert r["ratio"] == pytest.approx(0.025)
    json.dumps(r)
    one = M.embedding_compactness(x[:2], labels[:2])
    assert one["inter_center"] is None and one["ratio"] is None


# ------------------------------------------------------------------ validation / JSON
@pytest.mark.parametrize("bad, message", [
    (lambda y, p: (y[:-1], p, NAMES), "50 rows but y_true has 49"),         # length mismatch
    (lambda y, p: (y, p[:, 0], NAMES), "must be 2-D"),                      # y_prob not 2-D
    (lambda y, p: (y, p, NAMES[:-1]), r"outside \[0, 4\)"),                # columns != class names
    (lambda y, p: (np.where(y == 0, K, y), p, NAMES), "outside"),           # label out of range
    (lambda y, p: (np.where(y == 0, -1, y), p, NAMES), "min -1"),           # negative label
    (lambda y, p: (y, np.where(p > 0.5, np.nan, p), NAMES), "NaN or inf"),  # NaN scores
    (lambda y, p: (y.astype(float) + 0.5, p, NAMES), "integer class"),      # non-integer labels
    (lambda y, p: (y[:0], p[:0], NAMES), "is empty"),                       # empty
])
def test_invalid_inputs_raise(bad, message):
    y, prob = make_data(n=50)
    with pytest.raises(ValueError, match=message):
        M.evaluate(*bad(y, prob), n_bootstrap=0)


def test_invalid_settings_and_other_functions_raise():
    y, prob = make_data(n=50)
    with pytest.raises(ValueError, match="0 < ci < 1"):
        M.evaluate(y, prob, NAMES, ci=1.5)
    with pytest.raises(ValueError, match="metric must be one of"):
        M.paired_bootstrap(y, prob, prob, "nonsense")
    with pytest.raises(ValueError, match="columns but"):
        M.paired_bootstrap(y, prob, prob[:, :-1])
    with pytest.raises(ValueError, match="pred_a has 49 entries"):
        M.mcnemar(y, y[:-1], y)
    with pytest.raises(ValueError, match="3 rows but y_true has 2"):
        M.embedding_compactness(np.zeros((3, 2)), np.array([0, 1]))


def test_json_serialisable_python_types_only():
    y, prob = make_data(absent=1)
    r = M.evaluate(y, prob, NAMES, n_bootstrap=20)
    json.dumps(r, allow_nan=False)

    def walk(v):
        if isinstance(v, dict):
            assert all(isinstance(k, str) for k in v)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        else:
            assert v is None or type(v) in (float, int, str), type(v)
            assert not (type(v) is float and math.isnan(v))
    walk(r)


def test_run_prediction_interval_matches_the_t_formula_and_covers_a_new_run_at_its_level():
    stats = pytest.importorskip("scipy.stats")
    runs = [67.71, 67.40, 66.9]
    lo, hi = M.run_prediction_interval(runs)
    x = np.array(runs)
    half = stats.t.ppf(0.975, 2) * np.sqrt(((x - x.mean()) ** 2).sum() / 2) * np.sqrt(1 + 1 / 3)
    assert lo == pytest.approx(x.mean() - half) and hi == pytest.approx(x.mean() + half)
    # simulation: three earlier runs and a fourth from the same normal recipe; the fourth lands
    # inside the interval of the first three in `level` of the repetitions
    rng = np.random.default_rng(0)
    draws = rng.normal(60.0, 1.5, size=(20000, 4))
    inside = [lo <= d[3] <= hi for d in draws for lo, hi in [M.run_prediction_interval(d[:3], 0.9)]]
    assert np.mean(inside) == pytest.approx(0.9, abs=0.007)
    with pytest.raises(ValueError, match="at least 2 runs"):
        M.run_prediction_interval([67.7])
    with pytest.raises(ValueError, match="finite"):
        M.run_prediction_interval([67.7, float("nan")])
    with pytest.raises(ValueError, match="0 < level < 1"):
        M.run_prediction_interval(runs, level=95)
