import numpy as np
import pytest

from fer_utils.data.splits import assert_disjoint, stratified_holdout, subject_folds


def test_stratified_holdout_fraction_per_class_and_disjoint():
    labels = np.repeat(np.arange(4), [100, 50, 10, 2])
    keep, held = stratified_holdout(labels, fraction=0.2, seed=0)
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(labels)
    assert np.bincount(labels[held], minlength=4).tolist() == [20, 10, 2, 0]
    assert (np.bincount(labels[keep], minlength=4) >= 1).all()
    keep2, held2 = stratified_holdout(labels, fraction=0.2, seed=0)
    assert np.array_equal(held, held2)
    assert not np.array_equal(held, stratified_holdout(labels, fraction=0.2, seed=1)[1])


def test_stratified_holdout_per_class_count():
    labels = np.repeat(np.arange(3), [600, 700, 800])
    _, held = stratified_holdout(labels, per_class=500, seed=0)
    assert np.bincount(labels[held]).tolist() == [500, 500, 500]


def test_subject_folds_rank_mod_and_blocks_are_subject_disjoint():
    subjects = np.array([5, 3, 3, 9, 1, 1, 7, 2, 8, 4, 6, 10, 11, 12])
    folds = subject_folds(subjects, num_folds=3)
    unique = np.unique(subjects)
    assert {s: folds[subjects == s][0] for s in unique} == {s: i % 3 for i, s in enumerate(unique)}
    for scheme in ("rank_mod", "blocks"):
        f = subject_folds(subjects, 3, scheme)
        for s in unique:
            assert len(set(f[subjects == s])) == 1
    with pytest.raises(ValueError, match="cannot fill"):
        subject_folds(np.array([1, 2]), 10)


def test_assert_disjoint_reports_leak():
    with pytest.raises(ValueError, match="leakage: 1 subjects shared by train and test"):
        assert_disjoint({"train": np.array([1, 2]), "test": np.array([2, 3])}, "subjects")
    assert_disjoint({"a": np.array([1]), "b": np.array([2])}, "ids")


def test_subject_holdout_keeps_subjects_whole():
    from fer_utils.data.splits import subject_holdout
    subjects = np.repeat(np.arange(20), 5)
    keep, held = subject_holdout(subjects, fraction=0.2, seed=0)
    assert len(np.intersect1d(subjects[keep], subjects[held])) == 0
    assert 15 <= len(held) <= 25 and len(keep) + len(held) == 100
    again = subject_holdout(subjects, fraction=0.2, seed=0)[1]
    assert np.array_equal(held, again)
