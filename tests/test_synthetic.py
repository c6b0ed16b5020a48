"""Invariants of the procedurally drawn default dataset (fer_utils.data.synthetic)."""
import numpy as np
import pytest

from fer_utils.data.synthetic import (CLASS_NAMES, TABLE3_COUNTS, TABLE3_PROPORTIONS, SyntheticFaces,
                                      class_counts, make_synthetic_faces, save_preview)


@pytest.fixture(scope="module")
def faces() -> SyntheticFaces:
    return make_synthetic_faces(400, size=32, seed=0, n_subjects=20)


def test_shapes_and_dtypes(faces):
    assert faces.images.shape == (400, 3, 32, 32)
    assert faces.images.dtype == np.uint8 and faces.images.flags.c_contiguous
    assert faces.labels.shape == faces.subjects.shape == (400,)
    assert faces.labels.dtype == faces.subjects.dtype == np.int64
    assert faces.class_names == CLASS_NAMES and len(faces) == 400


def test_table3_proportions():
    assert len(CLASS_NAMES) == len(TABLE3_PROPORTIONS) == 8
    assert sum(TABLE3_COUNTS) == 283_651  # paper W Table 3 training total
    assert np.isclose(sum(TABLE3_PROPORTIONS), 1.0)
    assert CLASS_NAMES[int(np.argmin(TABLE3_COUNTS))] == "contempt"


def test_same_seed_same_bytes_other_seed_differs(faces):
    again = make_synthetic_faces(400, size=32, seed=0, n_subjects=20)
    assert faces.images.tobytes() == again.images.tobytes()
    assert np.array_equal(faces.labels, again.labels) and np.array_equal(faces.subjects, again.subjects)
    other = make_synthetic_faces(400, size=32, seed=1, n_subjects=20)
    assert not np.array_equal(faces.images, other.images)
    assert not np.array_equal(faces.labels, other.labels)


def test_counts_follow_table3_at_scale():
    counts = class_counts(20_000)
    assert counts.sum() == 20_000
    assert np.all(np.abs(counts - 20_000 * np.array(TABLE3_PROPORTIONS)) < 1)  # largest remainder
    assert 38 < counts.max() / counts.min() < 44  # about 41:1 like Table 3


def test_rendered_counts_match_helper_and_order_is_shuffled(faces):
    assert np.bincount(faces.labels, minlength=8).tolist() == class_counts(400).tolist()
    assert not np.all(np.diff(faces.labels) >= 0)


def test_every_class_present_for_small_n():
    for n in (8, 9, 13, 30):
        counts = class_counts(n)
        assert counts.sum() == n and counts.min() >= 1


def test_balanced_and_custom_proportions():
    assert class_counts(800, "balanced").tolist() == [100] * 8
    faces = make_synthetic_faces(80, size=32, proportions="balanced")
    assert np.bincount(faces.labels, minlength=8).tolist() == [10] * 8
    counts = class_counts(100, [1, 1, 0, 0, 0, 0, 0, 2])
    assert counts.tolist() == [25, 25, 0, 0, 0, 0, 0, 50]


def test_subjects_in_range_and_show_several_expressions(faces):
    assert faces.subjects.min() >= 0 and faces.subjects.max() < 20
    for s in range(20):
        assert len(np.unique(faces.labels[faces.subjects == s])) > 1


def test_images_are_not_constant(faces):
    per_image_std = faces.images.reshape(len(faces), -1).std(axis=1)
    assert per_image_std.min() > 5


def test_classes_are_distinguishable():
    # One identity, no nuisance: what is left is expression (plus background colour and gaze),
    # so a nearest-class-mean rule on the face centre must beat chance (1/8) by far.
    f = make_synthetic_faces(480, size=32, seed=3, proportions="balanced", n_subjects=1, difficulty=0)
    x = f.images[:, :, 6:28, 6:26].reshape(len(f), -1).astype(np.float64)
    train, test = np.arange(len(f)) % 2 == 0, np.arange(len(f)) % 2 == 1
    means = np.stack([x[train & (f.labels == k)].mean(0) for k in range(8)])
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert gaps[~np.eye(8, dtype=bool)].min() > 0
    pred = np.argmin(((x[test][:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == f.labels[test]).mean() > 0.6


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must be a positive integer"),
    (dict(n=-3), "n must be a positive integer"),
    (dict(n=2.5), "n must be a positive integer"),
    (dict(n=10, proportions=[1] * 7), "needs 8 weights"),
    (dict(n=10, proportions=[1, 1, 1, 1, 1, 1, 1, -1]), "non-negative"),
    (dict(n=10, proportions=[0] * 8), "not all zero"),
    (dict(n=10, proportions="uniform"), "'balanced'"),
    (dict(n=10, size=16), "size must be an integer >= 32"),
    (dict(n=10, n_subjects=0), "n_subjects must be a positive integer"),
    (dict(n=10, difficulty=-0.5), "difficulty must be"),
])
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_faces(**kwargs)


def test_save_preview_writes_png(tmp_path, faces):
    path = save_preview(tmp_path / "preview.png", faces, per_class=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
