"""Figures: what a rerun of the pipeline must reproduce."""
import numpy as np
import pandas as pd
import pytest

from fer_utils import plots


def _paper_f_runs():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"study": "paper_f", "backbone": "resnet18",
                         "strategy": np.repeat(["ce_only", "ce_then_focal"], 10),
                         "accuracy": rng.uniform(0.7, 0.9, 20)})


def _point_offsets(fig):
    return np.concatenate([c.get_offsets() for c in fig.axes[0].collections if len(c.get_offsets())])


def test_strategy_accuracy_redraws_the_same_points_and_leaves_numpy_state_alone():
    plt = pytest.importorskip("matplotlib.pyplot")
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    first = plots.strategy_accuracy(pd.DataFrame(), _paper_f_runs())
    assert np.random.random() == expected_next  # the caller's generator is untouched
    second = plots.strategy_accuracy(pd.DataFrame(), _paper_f_runs())
    a, b = _point_offsets(first), _point_offsets(second)
    assert len(a) == 20 and np.array_equal(a, b)
    assert len(np.unique(a[:, 0])) > 2  # the points are still jittered
    plt.close("all")
