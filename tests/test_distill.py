"""Knowledge distillation (``data.soft_targets``, ``training.distill``): the soft term against
independent formulations, the file's look-up and refusals, and runs that use it."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from tiny_runs import tiny_overrides
from fer_utils.config import load_config
from fer_utils.data import Split
from fer_utils.training import train_run
from fer_utils.training.distill import (save_targets, soft_cross_entropy, targets_for,
                                        teacher_targets, with_distillation)


def _probs(n, c=7, seed=0):
    return torch.softmax(torch.randn(n, c, generator=torch.Generator().manual_seed(seed)), 1)


def test_soft_cross_entropy_is_kl_plus_the_teachers_entropy():
    torch.manual_seed(0)
    logits, p = torch.randn(9, 7), _probs(9)
    kl = F.kl_div(F.log_softmax(logits, 1), p, reduction="batchmean")
    entropy = -(p * p.log()).sum(1).mean()
    torch.testing.assert_close(soft_cross_entropy(logits, p), kl + entropy)
    torch.testing.assert_close(soft_cross_entropy(logits, p), F.cross_entropy(logits, p))


def test_one_hot_targets_give_the_plain_cross_entropy_and_its_gradient():
    logits = torch.randn(6, 7, requires_grad=True)
    y = torch.randint(0, 7, (6,))
    loss, parts = with_distillation(F.cross_entropy(logits, y), {"ce": torch.tensor(1.0)},
                                    logits, F.one_hot(y, 7).float(), 0.3)
    expected = F.cross_entropy(logits, y)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(torch.autograd.grad(loss, logits)[0],
                               torch.autograd.grad(expected, logits)[0])
    assert set(parts) == {"ce", "distill"}


def test_the_blend_weights_the_two_terms():
    logits, p, y = torch.randn(5, 7), _probs(5), torch.randint(0, 7, (5,))
    hard = F.cross_entropy(logits, y)
    for w in (0.25, 1.0):
        loss, _ = with_distillation(hard, {}, logits, p, w)
        manual = sum((1 - w) * -F.log_softmax(logits[i], 0)[y[i]]
                     - w * (p[i] * F.log_softmax(logits[i], 0)).sum() for i in range(5)) / 5
        torch.testing.assert_close(loss, manual)


def _file(tmp_path, ids, labels, prob, name="t.npz"):
    return save_targets(tmp_path / name, {"image_id": np.asarray(ids), "y_true": np.asarray(labels),
                                          "prob": np.asarray(prob, dtype=np.float32)})


def _split(ids, labels):
    return Split(np.zeros((len(ids), 1, 4, 4), np.uint8), np.asarray(labels, np.int64), ids=np.asarray(ids))


def test_targets_follow_the_splits_order_whatever_the_files(tmp_path):
    ids = np.array([f"img{i}" for i in range(6)])
    labels, prob = np.arange(6) % 3, _probs(6, 3).numpy()
    shuffled = np.array([4, 0, 5, 2, 1, 3])
    path = _file(tmp_path, ids[shuffled], labels[shuffled], prob[shuffled])
    want = [3, 1, 5]
    np.testing.assert_array_equal(targets_for(path, _split(ids[want], labels[want]), 3), prob[want])


def test_bad_target_files_are_refused_in_one_line(tmp_path):
    ids, labels, prob = np.array(["a", "b"]), np.array([0, 1]), _probs(2, 3).numpy()
    good = _split(ids, labels)
    with pytest.raises(FileNotFoundError, match="no such file"):
        targets_for(tmp_path / "none.npz", good, 3)
    np.savez(tmp_path / "keys.npz", image_id=ids, prob=prob)
    with pytest.raises(ValueError, match="not a soft-target file .no y_true"):
        targets_for(tmp_path / "keys.npz", good, 3)
    with pytest.raises(ValueError, match="holds 3 classes, the dataset has 7"):
        targets_for(_file(tmp_path, ids, labels, prob), good, 7)
    with pytest.raises(ValueError, match="needs one id, one label and one row .* got 2 ids, 2 labels, prob of shape .3, 3"):
        targets_for(_file(tmp_path, ids, labels, _probs(3, 3).numpy(), "rows.npz"), good, 3)
    with pytest.raises(ValueError, match="got 2 ids, 1 labels"):
        targets_for(_file(tmp_path, ids, labels[:1], prob, "labels.npz"), good, 3)
    with pytest.raises(ValueError, match="appears twice"):
        targets_for(_file(tmp_path, ["a", "a"], [0, 0], prob, "twice.npz"), good, 3)
    with pytest.raises(ValueError, match="not probabilities"):
        targets_for(_file(tmp_path, ids, labels, prob * 2, "p.npz"), good, 3)
    with pytest.raises(ValueError, match="no targets for 1 of 2 training images .first: c labelled 1"):
        targets_for(_file(tmp_path, ids, labels, prob), _split(np.array(["a", "c"]), labels), 3)
    with pytest.raises(ValueError, match="no targets for 2 of 2 .* or other labels"):
        targets_for(_file(tmp_path, ids, labels, prob), _split(ids, labels[::-1]), 3)
    with pytest.raises(ValueError, match="no ids"):
        targets_for(_file(tmp_path, ids, labels, prob), Split(good.images, good.labels), 3)


def test_an_id_under_two_labels_is_two_images(tmp_path):
    """FER2013's folder layout holds two file names under two class folders each."""
    ids, labels, prob = np.array(["x", "x", "y"]), np.array([2, 0, 1]), _probs(3, 3).numpy()
    path = _file(tmp_path, ids, labels, prob)
    got = targets_for(path, _split(np.array(["x", "y", "x"]), np.array([0, 1, 2])), 3)
    np.testing.assert_array_equal(got, prob[[1, 2, 0]])


def test_distillation_settings_are_checked_before_training(tmp_path):
    path = _file(tmp_path, ["a"], [0], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="data.soft_targets: no such file"):
        load_config(None, [f"data.soft_targets={tmp_path / 'none.npz'}"])
    for bad in ("0", "1.5", ".nan"):
        with pytest.raises(ValueError, match="soft_target_weight must be in"):
            load_config(None, [f"data.soft_targets={path}", f"data.soft_target_weight={bad}"])
    with pytest.raises(ValueError, match="cannot be combined with data.mixup"):
        load_config(None, [f"data.soft_targets={path}", "data.mixup=0.2"])
    with pytest.raises(ValueError, match="mean-reduced loss only"):
        load_config(None, [f"data.soft_targets={path}", "stages.0.reduction=sum"])
    with pytest.raises(ValueError, match="K-fold run"):
        load_config(None, [f"data.soft_targets={path}", "data.dataset=ckplus48", "data.fold=0"])
    with pytest.raises(ValueError, match="soft_target_weight must be in"):  # even with no targets
        load_config(None, ["data.soft_target_weight=2"])
    load_config(None, [f"data.soft_targets={path}", "data.soft_target_weight=1"])


@pytest.mark.slow
def test_a_teachers_targets_train_a_student(tmp_path):
    """A tiny teacher scores the training images (train and held-out validation alike); a
    student with those targets trains differently from one without, and logs the soft term;
    targets equal to the labels reproduce plain training."""
    common = {"stages.0.epochs": 1}
    teacher = train_run(load_config(None, tiny_overrides(tmp_path / "teacher", **common)), progress=False)
    targets = teacher_targets([teacher])
    n_train = 320
    assert len(targets["image_id"]) == n_train and len(set(targets["image_id"])) == n_train
    np.testing.assert_allclose(targets["prob"].sum(1), 1.0, atol=1e-5)
    import json
    seconds = json.loads((teacher / "metrics.json").read_text())["train_time_s"]
    assert targets["teacher_train_s"].tolist() == [seconds]
    path = save_targets(tmp_path / "targets.npz", targets)
    student = train_run(load_config(None, tiny_overrides(
        tmp_path / "student", **common, **{"data.soft_targets": path})), progress=False)
    import hashlib
    info = json.loads((student / "run_info.json").read_text())
    assert info["soft_targets_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads((teacher / "run_info.json").read_text())["soft_targets_sha256"] is None
    from fer_utils.training.distill import check_same_targets
    check_same_targets(student, str(path))  # the same file: resumable
    changed = save_targets(tmp_path / "other.npz", {**targets, "prob": targets["prob"][::-1].copy()})
    with pytest.raises(ValueError, match="started on another version"):
        check_same_targets(student, str(changed))
    plain = pd.read_csv(teacher / "metrics.csv")
    distilled = pd.read_csv(student / "metrics.csv")
    assert np.isfinite(distilled["train_distill"]).all()
    assert distilled["train_loss"].tolist() != plain["train_loss"].tolist()
    assert distilled["val_loss"].tolist() != plain["val_loss"].tolist()  # it trained differently
    # the file covers every training image, whatever holdout another seed draws
    from fer_utils.data import load_dataset
    seed1 = load_config(None, tiny_overrides(tmp_path / "x", **common, seed=1))
    other_train = load_dataset(seed1.data, split_seed=1).train
    assert len(other_train) < n_train and targets_for(path, other_train, 8).shape == (len(other_train), 8)
    # the labels as targets: (1 - w) CE + w CE is the plain run up to rounding
    labels_only = save_targets(tmp_path / "labels.npz", {**targets, "prob": np.eye(targets["prob"].shape[1], dtype=np.float32)[targets["y_true"]]})
    same = train_run(load_config(None, tiny_overrides(
        tmp_path / "same", **common, **{"data.soft_targets": labels_only})), progress=False)
    np.testing.assert_allclose(pd.read_csv(same / "metrics.csv")["train_loss"], plain["train_loss"], rtol=1e-4)
    # a teacher averaged with itself is itself
    twice = teacher_targets([teacher, teacher])
    np.testing.assert_allclose(twice["prob"], targets["prob"], rtol=1e-6)
    from fer_utils.training.distill import targets_cost_minutes
    assert targets_cost_minutes(save_targets(tmp_path / "twice.npz", twice)) == pytest.approx(2 * seconds / 60)


def test_notebook_parameters_reach_the_run_config_and_default_off():
    from fer_utils import study
    from fer_utils.paths import PROJECT_ROOT
    from fer_utils.pipeline import load_parameters, notebook_defaults
    defaults = notebook_defaults(PROJECT_ROOT / "notebooks/10_finetune_per_loss.ipynb")
    assert (defaults["SOFT_TARGETS"], defaults["SOFT_TARGET_WEIGHT"]) == ("", 0.5)
    # paper F's runs are folds: distillation is refused there, so notebook 20 does not offer it
    assert "SOFT_TARGETS" not in notebook_defaults(PROJECT_ROOT / "notebooks/20_two_stage_focal.ipynb")
    p = load_parameters(PROJECT_ROOT / "configs/fer2013_progressive_ls_distill/10_finetune_per_loss.yaml", {})
    (distilled,) = study.paper_w_configs_from_parameters(p)
    assert distilled.data.soft_targets == str(PROJECT_ROOT / "results/distill/fer2013_seed_ensemble_targets.npz")
    assert distilled.data.soft_target_weight == 0.5
    p["SOFT_TARGETS"] = ""
    (plain,) = study.paper_w_configs_from_parameters(p)
    assert plain.data.soft_targets is None
