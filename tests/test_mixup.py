"""Mixup (``data.mixup``): the blend and its draws, the blended loss against an independent
formulation (cross-entropy on blended soft targets), refusals, and a run that uses it."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from tiny_runs import tiny_overrides
from fer_utils.config import load_config
from fer_utils.data.augment import mixup_batch
from fer_utils.losses import build_loss
from fer_utils.training import train_run
from fer_utils.training.loop import batch_loss, mix_batch


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 5, 5, generator=g), torch.randint(0, 7, (n,), generator=g)


def test_each_image_is_blended_with_its_drawn_partner():
    x, _ = _batch()
    mixed, perm, lam = mixup_batch(x, 0.4, torch.Generator().manual_seed(3))
    assert sorted(perm.tolist()) == list(range(len(x)))
    assert 0 <= lam <= 1
    for i, j in enumerate(perm.tolist()):  # written out image by image
        torch.testing.assert_close(mixed[i], lam * x[i] + (1 - lam) * x[j])
    again = mixup_batch(x, 0.4, torch.Generator().manual_seed(3))
    assert torch.equal(again[0], mixed) and torch.equal(again[1], perm) and again[2] == lam


def test_the_weight_follows_beta_alpha_alpha():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 1, 1, 1)
    for alpha in (0.2, 1.0):
        lams = [mixup_batch(x, alpha, g)[2] for _ in range(2000)]
        assert stats.kstest(lams, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_no_mixup_returns_the_batch_and_draws_nothing():
    x, y = _batch()
    cfg = load_config(None, [])
    g = torch.Generator().manual_seed(5)
    out, partner, lam = mix_batch(x, y, cfg, g)
    assert out is x and partner is None and lam == 1.0
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())


def test_the_blend_keeps_channels_last_and_partners_carry_their_labels():
    x, y = _batch()
    x = x.contiguous(memory_format=torch.channels_last)
    cfg = load_config(None, ["data.mixup=0.4"])
    out, partner, lam = mix_batch(x, y, cfg, torch.Generator().manual_seed(1))
    reference, perm, reference_lam = mixup_batch(x, 0.4, torch.Generator().manual_seed(1))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(partner, y[perm]) and lam == reference_lam and torch.equal(out, reference)
    assert not torch.equal(out, x)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_blended_loss_is_cross_entropy_on_blended_targets(smoothing):
    """lam * CE(y) + (1 - lam) * CE(y_partner) against PyTorch's cross-entropy with the
    blended one-hot targets as probabilities (label smoothing is linear in the target)."""
    torch.manual_seed(0)
    logits = torch.randn(8, 7, requires_grad=True)
    y, y_b, lam = torch.randint(0, 7, (8,)), torch.randint(0, 7, (8,)), 0.3
    criterion = build_loss("softmax", class_counts=[1] * 7, num_classes=7,
                           label_smoothing=smoothing)
    loss, parts = batch_loss(criterion, logits, None, y, y_b, lam)
    targets = lam * F.one_hot(y, 7).float() + (1 - lam) * F.one_hot(y_b, 7).float()
    expected = F.cross_entropy(logits, targets, label_smoothing=smoothing)
    torch.testing.assert_close(loss, expected)
    grad, = torch.autograd.grad(loss, logits)
    grad_expected, = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad, grad_expected)
    assert set(parts) == set(criterion(logits, None, y)[1])


def test_mixup_is_refused_with_a_feature_loss_and_outside_its_range():
    with pytest.raises(ValueError, match="logit-only losses"):
        load_config(None, ["data.mixup=0.2", "stages.0.loss=center+softmax"])
    for bad in ("-0.1", ".nan", ".inf"):
        with pytest.raises(ValueError, match="data.mixup must be a finite alpha >= 0"):
            load_config(None, [f"data.mixup={bad}"])
    with pytest.raises(ValueError, match="data.mixup: expected a number"):
        load_config(None, ["data.mixup=strong"])
    load_config(None, ["data.mixup=0.2", "stages.0.loss=focal"])


@pytest.mark.slow
def test_a_run_with_mixup_trains_differently_and_records_it(tmp_path):
    common = {"stages.0.epochs": 1}
    plain = train_run(load_config(None, tiny_overrides(tmp_path / "plain", **common)), progress=False)
    mixed = train_run(load_config(None, tiny_overrides(tmp_path / "mixed", **common,
                                                       **{"data.mixup": 0.4})), progress=False)
    a, b = pd.read_csv(plain / "metrics.csv"), pd.read_csv(mixed / "metrics.csv")
    assert np.isfinite(b["train_loss"]).all()
    assert b["train_loss"].tolist() != a["train_loss"].tolist()
    assert "mixup: 0.4" in (mixed / "config.yaml").read_text()
