"""Cluster-aware statistics (fer_utils.metrics): paired_test, accuracy_interval, holm,
checked against independent formulations and by simulation."""
import itertools

import numpy as np
import pytest
from scipy.stats import binomtest

from fer_utils import metrics


def _pairs(seed, n=80, pa=0.7, pb=0.75):
    rng = np.random.default_rng(seed)
    return rng.random(n) < pa, rng.random(n) < pb


@pytest.mark.parametrize("seed", range(5))
def test_paired_test_without_groups_is_the_exact_mcnemar_test(seed):
    a, b = _pairs(seed)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    expected = binomtest(only_b, only_a + only_b, 0.5).pvalue
    assert metrics.paired_test(a, b) == pytest.approx(expected, rel=1e-9)
    y = np.zeros(len(a), dtype=int)  # the labelled McNemar of the same flags agrees
    assert metrics.mcnemar(y, np.where(a, 0, 1), np.where(b, 0, 1))["p_value"] == pytest.approx(expected, rel=1e-9)


def test_paired_test_with_groups_equals_brute_force_sign_flips():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(10), rng.integers(1, 5, size=10))
    a, b = rng.random(len(groups)) < 0.6, rng.random(len(groups)) < 0.6
    d = np.bincount(groups, weights=b.astype(int) - a.astype(int))
    stats = [abs(np.dot(signs, d)) for signs in itertools.product((-1, 1), repeat=len(d))]
    brute = np.mean(np.array(stats) >= abs(d.sum()) - 1e-9)
    assert metrics.paired_test(a, b, groups) == pytest.approx(brute, rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_k_identical_copies_in_their_own_group_count_as_one_pair(k):
    a, b = _pairs(1)
    groups = np.repeat(np.arange(len(a)), k)
    a_k, b_k = np.repeat(a, k), np.repeat(b, k)
    assert metrics.paired_test(a_k, b_k, groups) == pytest.approx(metrics.paired_test(a, b), rel=1e-12)
    # Ignoring the groups, the copies look like k times the evidence.
    assert metrics.paired_test(a_k, b_k) < metrics.paired_test(a, b)
    assert metrics.discordant_groups(a_k, b_k, groups) == metrics.discordant_groups(a, b)


def test_accuracy_interval_of_copies_in_their_own_group_matches_the_singles():
    rng = np.random.default_rng(0)
    c = rng.random(300) < 0.8
    wilson = metrics.accuracy_interval(c)
    assert wilson == pytest.approx(metrics.wilson_interval(int(c.sum()), len(c)))
    singles = metrics.accuracy_interval(c, np.arange(300))
    copies = metrics.accuracy_interval(np.repeat(c, 3), np.repeat(np.arange(300), 3))
    assert copies == pytest.approx(singles, abs=1e-12)  # same groups, same resamples
    assert copies == pytest.approx(wilson, abs=0.01)    # and the bootstrap agrees with Wilson
    # Counting the copies as images makes the interval about sqrt(3) too narrow.
    lo, hi = metrics.accuracy_interval(np.repeat(c, 3))
    assert (hi - lo) < 0.65 * (copies[1] - copies[0])


def test_seeds_on_the_same_images_do_not_narrow_the_interval():
    rng = np.random.default_rng(1)
    c = rng.random(200) < 0.6
    three_identical_seeds = np.stack([c, c, c])
    one = metrics.accuracy_interval(c[None, :])
    assert metrics.accuracy_interval(three_identical_seeds) == pytest.approx(one, abs=1e-12)
    # Pooling the seeds as 600 images (what the old minority-recall column did) is narrower.
    pooled = metrics.accuracy_interval(three_identical_seeds.ravel())
    assert pooled[1] - pooled[0] < 0.65 * (one[1] - one[0])


def test_paired_test_with_seeds_sums_the_seeds_per_group():
    a, b = _pairs(2)
    # Two seeds whose d are the same per image: every |d| doubles, so the p-value is unchanged.
    assert metrics.paired_test(np.stack([a, a]), np.stack([b, b])) == pytest.approx(metrics.paired_test(a, b))
    # Seeds that disagree: per image d = sum over seeds; the brute-force sign flip agrees.
    a2, b2 = _pairs(7, n=12)
    d = (b.astype(int)[:12] - a.astype(int)[:12]) + (b2.astype(int) - a2.astype(int))
    stats = [abs(np.dot(s, d)) for s in itertools.product((-1, 1), repeat=12)]
    brute = np.mean(np.array(stats) >= abs(d.sum()))
    got = metrics.paired_test(np.stack([a[:12], a2]), np.stack([b[:12], b2]))
    assert got == pytest.approx(brute, rel=1e-12)


def _clustered_null(rng, n_groups=60, size=3, flip=0.05):
    """Equal accuracies, strongly correlated frames: each model is right or wrong on a
    whole group, each frame copies its group's outcome except with probability ``flip``."""
    groups = np.repeat(np.arange(n_groups), size)
    out = []
    for _ in range(2):
        per_group = np.repeat(rng.random(n_groups) < 0.75, size)
        out.append(np.where(rng.random(n_groups * size) < flip, ~per_group, per_group))
    return out[0], out[1], groups


def test_grouped_test_keeps_its_false_positive_rate_on_clustered_null_data():
    rng = np.random.default_rng(2024)
    sims = 2000
    grouped = ungrouped = 0
    for _ in range(sims):
        a, b, g = _clustered_null(rng)
        grouped += metrics.paired_test(a, b, g) < 0.05
        ungrouped += metrics.paired_test(a, b) < 0.05
    assert grouped / sims <= 0.07
    # Treating the frames as independent rejects a true null far more often than 5%.
    assert ungrouped / sims > 0.15, ungrouped / sims


def test_holm_matches_the_step_down_procedure():
    rng = np.random.default_rng(5)
    for _ in range(50):
        p = list(rng.random(6) ** 3)
        adjusted = metrics.holm(p)
        for alpha in (0.01, 0.05, 0.1, 0.2):
            rejected, m = set(), len(p)
            for rank, i in enumerate(np.argsort(p)):  # Holm (1979): stop at the first failure
                if p[i] > alpha / (m - rank):
                    break
                rejected.add(int(i))
            assert {i for i, q in enumerate(adjusted) if q <= alpha} == rejected
    assert metrics.holm([0.01, None, 0.04, float("nan")]) == [0.02, None, 0.04, None]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.paired_test([True, False], [True])
    with pytest.raises(ValueError, match="one entry per image"):
        metrics.accuracy_interval([True, False, True], groups=[0, 1])
    with pytest.raises(ValueError, match="right/wrong flags"):
        metrics.paired_test([0.5, 1.0], [1, 0])
