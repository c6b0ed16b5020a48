"""The feature-collapse diagnostic's statistics against independent formulations."""
import importlib.util

import numpy as np
import torch

from fer_utils.paths import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location(
    "diagnose_feature_collapse", PROJECT_ROOT / "scripts" / "diagnose_feature_collapse.py")
diag = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diag)


def test_between_class_share_is_one_minus_the_pooled_within_class_share():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (300,), generator=g)
    z = torch.randn(300, 5, generator=g, dtype=torch.float64) + 2.0 * y[:, None].double()
    norm, total, share = diag.variance_split(z, y)
    zn, yn = z.numpy(), y.numpy()
    within = sum(((zn[yn == k] - zn[yn == k].mean(0)) ** 2).sum() for k in range(4)) / len(zn)
    assert np.isclose(total, zn.var(0).sum())
    assert np.isclose(share, 1 - within / total)
    assert np.isclose(norm, np.linalg.norm(zn, axis=1).mean())
    assert 0.5 < share < 1  # the classes were shifted apart: most variance is between them


def test_dead_share_counts_channels_zero_on_every_row_only():
    f = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 6.0]])
    assert diag.dead_share(f) == 0.5


def test_trace_names_the_published_run_of_the_seed_asked_for():
    """--seed picks the published run it replays; a seed never published is refused in one line
    before any data is read."""
    import pytest
    assert diag.PUBLISHED.format("weighted_cluster_weighted_softmax", 1).endswith(
        "W-efficientnet_lite0-pretrained-weighted_cluster_weighted_softmax-seed1/config.yaml")
    with pytest.raises(SystemExit, match="no published seed-99 run of 'softmax'"):
        diag.trace("softmax", 1, seed=99)
