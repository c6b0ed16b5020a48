"""Invariants of fer_utils.losses (not snapshots): equivalences, naive loops, gradcheck."""
from __future__ import annotations

import doctest
import importlib
import json
import pkgutil
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fer_utils.losses as L

K, M, D = 4, 6, 3
COUNTS = [40, 10, 5, 20]


def _batch(seed: int = 0, dtype=torch.float32, scale: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(M, K, generator=g)).to(dtype)
    feats = torch.randn(M, D, generator=g).to(dtype)
    centers = torch.randn(K, D, generator=g).to(dtype)
    targets = torch.tensor([0, 1, 2, 3, 0, 2])
    return logits, feats, centers, targets


def _grad(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x)
    (g,) = torch.autograd.grad(loss, x)
    return loss.detach(), g


# --- class weights --------------------------------------------------------------------------

def test_class_weights_from_counts():
    assert L.class_weights_from_counts([10, 5, 20]).tolist() == [0.5, 1.0, 0.25]
    for bad in ([10, 0, 3], [10, -2, 3]):
        with pytest.raises(ValueError, match="> 0"):
            L.class_weights_from_counts(bad)


def test_class_balanced_weights():
    w = L.class_balanced_weights(COUNTS, beta=0.99)
    assert w.sum().item() == pytest.approx(K)
    assert w.argmax().item() == 2 and w.argmin().item() == 0  # rarest / commonest class
    assert torch.allclose(L.class_balanced_weights(COUNTS, beta=0.0), torch.ones(K))
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        L.class_balanced_weights(COUNTS, beta=1.0)


# --- equivalences ---------------------------------------------------------------------------

def test_focal_gamma0_is_ce_values_and_gradients():
    logits, _, _, y = _batch()
    for x in (logits, 1e4 * torch.sign(logits)):
        l_f, g_f = _grad(lambda z: L.focal_loss(z, y, gamma=0.0), x)
        l_c, g_c = _grad(lambda z: F.cross_entropy(z, y), x)
        assert torch.allclose(l_f, l_c) and torch.allclose(g_f, g_c)
        assert torch.isfinite(g_f).all()


def test_focal_matches_naive_formula_and_alpha_indexing():
    logits, _, _, y = _batch()
    p = logits.softmax(1)[torch.arange(M), y]
    alpha = torch.tensor([0.1, 0.2, 0.3, 0.4])
    naive = -(alpha[y] * (1 - p) ** 2 * p.log())
    assert torch.allclose(L.focal_loss(logits, y, 2.0, alpha, "sum"), naive.sum())
    assert torch.allclose(L.focal_loss(logits, y, 2.0, alpha.tolist()), naive.mean())
    scalar = L.focal_loss(logits, y, 0.0, 0.25)
    assert torch.allclose(scalar, 0.25 * F.cross_entropy(logits, y))
    with pytest.raises(ValueError, match="alpha"):
        L.focal_loss(logits, y, 2.0, torch.ones(K + 1))
    with pytest.raises(ValueError, match="gamma"):
        L.FocalLoss(gamma=-1.0)


def test_focal_alpha_zero_warns_and_is_zero():
    with pytest.warns(UserWarning, match="identically zero"):
        setting = L.build_loss("focal", COUNTS, K, alpha=0.0, gamma=0.5)
    logits, _, _, y = _batch()
    assert setting(logits, None, y)[0].item() == 0.0


def test_weighted_softmax_equal_weights_is_ce_and_weighted_mean_is_torch():
    logits, _, _, y = _batch()
    ones = torch.ones(K)
    for red in ("sum", "mean"):
        assert torch.allclose(L.weighted_softmax_loss(logits, y, ones, red),
                              F.cross_entropy(logits, y, reduction=red))
    w = L.class_weights_from_counts(COUNTS)
    assert torch.allclose(L.weighted_softmax_loss(logits, y, w, "weighted_mean"),
                          nn.CrossEntropyLoss(weight=w)(logits, y))
    assert torch.allclose(L.weighted_softmax_loss(logits, y, w, "sum"),
                          nn.CrossEntropyLoss(weight=w, reduction="sum")(logits, y))


def test_logit_adjusted_and_balanced_softmax():
    logits, _, _, y = _batch()
    prior = torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS)
    expected = F.cross_entropy(logits + 0.5 * prior.log(), y)
    assert torch.allclose(L.logit_adjusted_loss(logits, y, prior, tau=0.5), expected)
    assert torch.allclose(L.balanced_softmax_loss(logits, y, COUNTS),
                          L.logit_adjusted_loss(logits, y, COUNTS, tau=1.0))
    assert torch.allclose(L.logit_adjusted_loss(logits, y, prior, tau=0.0),
                          F.cross_entropy(logits, y))


def test_ldam_margins_and_loss():
    m = L.ldam_margins(COUNTS, max_margin=0.4)
    assert m.max().item() == pytest.approx(0.4)
    order = sorted(range(K), key=lambda k: COUNTS[k])
    assert all(m[a] > m[b] for a, b in zip(order, order[1:]))  # smaller class, larger margin
    logits, _, _, y = _batch()
    adj = logits.clone()
    adj[torch.arange(M), y] -= m[y]
    w = torch.rand(K) + 0.5
    expected = nn.CrossEntropyLoss(weight=w)(10.0 * adj, y)
    got = L.ldam_loss(logits, y, COUNTS, 0.4, 10.0, w, "weighted_mean")
    assert torch.allclose(got, expected)


def test_island_loss_pair_term():
    c = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    # cos: (0,1) = -1, (0,2) = 0, (1,2) = 0 -> ordered sum of (cos + 1) = 2 * (0 + 1 + 1)
    assert L.island_pair_term(c).item() == pytest.approx(4.0)
    x, y = torch.zeros(1, 2), torch.tensor([2])
    assert L.island_loss(x, y, c, lambda1=2.0, reduction="sum").item() == pytest.approx(0.5 + 8.0)
    z = torch.zeros(3, 2, requires_grad=True)  # zero centers: no direction, finite gradient
    L.island_pair_term(z).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() == 0


# --- weighted-cluster loss and center updates ----------------------------------------------------

def _naive_denominator(centers, k, alpha):
    others = [j for j in range(len(centers)) if j != k]
    return sum(((centers[j] - centers[k]) ** 2).sum() for j in others) + alpha


def test_weighted_cluster_matches_naive_loop():
    _, x, c, y = _batch()
    w = L.class_weights_from_counts(COUNTS)
    for weights in (torch.ones(K), w):
        per = [0.5 * weights[y[i]] * ((x[i] - c[y[i]]) ** 2).sum()
               / _naive_denominator(c, y[i], 0.7) for i in range(M)]
        got = L.weighted_cluster_loss(x, y, c, weights, alpha=0.7, reduction="sum")
        assert torch.allclose(got, torch.stack(per).sum())
    # W = 1: per-sample center loss divided by the denominator
    center_per = [L.center_loss(x[i:i + 1], y[i:i + 1], c, "sum") / _naive_denominator(c, y[i], 1.0)
                  for i in range(M)]
    assert torch.allclose(L.weighted_cluster_loss(x, y, c, torch.ones(K), 1.0, "mean"),
                          torch.stack(center_per).mean())


def test_eq7_gradient_wrt_features():
    _, x, c, y = _batch(dtype=torch.float64)
    w = L.class_weights_from_counts(COUNTS).double()
    _, g = _grad(lambda z: L.weighted_cluster_loss(z, y, c, w, 1.0, "sum"), x)
    denom = L.weighted_cluster_denominators(c, 1.0)[y]
    assert torch.allclose(g, w[y, None] * (x - c[y]) / denom[:, None])


def _class_mean_distance(centers, x, y):
    return torch.stack([(centers[k] - x[y == k].mean(0)).norm() for k in range(K)])


def test_weighted_cluster_update_direction():
    _, x, c, y = _batch()
    w = L.class_weights_from_counts(COUNTS)
    before = _class_mean_distance(c, x, y)
    corrected = L.weighted_cluster_center_update(c, x, y, w, center_lr=0.1, rule="corrected")
    printed = L.weighted_cluster_center_update(c, x, y, w, center_lr=0.1, rule="printed")
    assert (_class_mean_distance(corrected, x, y) < before).all()
    assert (_class_mean_distance(printed, x, y) > before).all()
    with pytest.raises(ValueError, match="rule"):
        L.weighted_cluster_center_update(c, x, y, w, rule="other")


def test_weighted_cluster_update_iterated_printed_diverges_corrected_converges():
    g = torch.Generator().manual_seed(1)
    y = torch.tensor([0, 0, 1, 1])
    x = torch.randn(4, 2, generator=g) + 3 * torch.tensor([[1.0, 0], [1, 0], [-1, 0], [-1, 0]])
    w = torch.tensor([0.5, 0.25])  # n_j W_j <= 1 and D >= 1: a gamma = 1 step never overshoots
    means = torch.stack([x[:2].mean(0), x[2:].mean(0)])
    c_good = c_bad = torch.zeros(2, 2)
    spread = []  # printed rule: sum_j ||c_j - mean_j||^2 after each step
    for _ in range(1000):
        c_good = L.weighted_cluster_center_update(c_good, x, y, w, rule="corrected")
        c_bad = L.weighted_cluster_center_update(c_bad, x, y, w, rule="printed")
        spread.append(((c_bad - means) ** 2).sum().item())
    # Corrected converges, slowly at the end: once centers are apart D_i is large.
    assert (c_good - means).norm(dim=1).max() < 1e-2
    # Printed: every step moves away, and the squared distance grows linearly (distance
    # ~ sqrt(t), no limit): the second 500 steps add at least half of what the first did.
    assert all(b > a for a, b in zip(spread, spread[1:]))
    assert spread[-1] - spread[499] > 0.5 * (spread[499] - spread[0])
    assert spread[-1] > 30 * ((means ** 2).sum().item())


def test_weighted_cluster_update_matches_loop_and_count_normalisation():
    _, x, c, y = _batch()
    w = L.class_weights_from_counts(COUNTS)
    new = L.weighted_cluster_center_update(c, x, y, w, 0.5, 0.3, normalize_by_count=True)
    expected = c.clone()
    for j in range(K):
        idx = [i for i in range(M) if y[i] == j]
        delta = sum(w[j] * (c[j] - x[i]) / _naive_denominator(c, j, 0.5) for i in idx)
        expected[j] = c[j] - 0.3 * delta / (1 + len(idx))
    assert torch.allclose(new, expected)


def test_wen_center_update_matches_naive_loop():
    _, x, c, _ = _batch()
    y = torch.tensor([0, 1, 1, 3, 0, 0])  # class 2 absent: its center must not move
    new = L.wen_center_update(c, x, y, center_lr=0.5)
    expected = c.clone()
    for j in range(K):
        idx = [i for i in range(M) if y[i] == j]
        delta = sum((c[j] - x[i] for i in idx), torch.zeros(D)) / (1 + len(idx))
        expected[j] = c[j] - 0.5 * delta
    assert torch.allclose(new, expected)
    assert torch.equal(new[2], c[2])


def test_island_center_update():
    _, x, c, y = _batch()
    assert torch.allclose(L.island_center_update(c, x, y, lambda1=0.0, center_lr=0.5),
                          L.wen_center_update(c, x, y, 0.5))
    # the push half, alone (center_lr tiny relative to lambda1), lowers the pair term
    pushed = L.island_center_update(c, x, y, lambda1=1e3, center_lr=1e-5)
    assert L.island_pair_term(pushed) < L.island_pair_term(c)


# --- gradcheck, modules, reductions, extreme logits -----------------------------------------

def _gradcheck_cases():
    logits, x, c, y = _batch(dtype=torch.float64, scale=1.0)
    w = L.class_weights_from_counts(COUNTS).double()
    return [
        ("cross_entropy", lambda z: L.cross_entropy_loss(z, y), (logits,)),
        ("weighted_softmax", lambda z: L.weighted_softmax_loss(z, y, w, "weighted_mean"),
         (logits,)),
        ("focal_g2_alpha", lambda z: L.focal_loss(z, y, 2.0, w), (logits,)),
        ("focal_g0.5", lambda z: L.focal_loss(z, y, 0.5), (logits,)),
        ("balanced_softmax", lambda z: L.balanced_softmax_loss(z, y, COUNTS), (logits,)),
        ("logit_adjusted", lambda z: L.logit_adjusted_loss(z, y, COUNTS, 0.7), (logits,)),
        ("ldam", lambda z: L.ldam_loss(z, y, COUNTS, 0.5, 2.0, w), (logits,)),
        ("center", lambda a, b: L.center_loss(a, y, b), (x, c)),
        ("weighted_cluster", lambda a, b: L.weighted_cluster_loss(a, y, b, w, 1.0), (x, c)),
        ("island", lambda a, b: L.island_loss(a, y, b, 10.0), (x, c)),
    ]


@pytest.mark.parametrize("fn,inputs", [pytest.param(f, i, id=n) for n, f, i in _gradcheck_cases()])
def test_gradcheck(fn, inputs):
    inputs = tuple(t.detach().clone().requires_grad_(True) for t in inputs)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_weighted_cluster_centers_get_denominator_gradient():
    _, x, c, _ = _batch(dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 3, 0, 0])  # class 2 absent from the batch
    c = c.requires_grad_(True)
    L.weighted_cluster_loss(x, y, c, torch.ones(K, dtype=torch.float64), 1.0, "sum").backward()
    # its center moves only through the other classes' denominators (the repulsive term)
    assert c.grad[2].abs().sum() > 0


def test_modules_equal_functions():
    logits, x, c, y = _batch()
    w = L.class_weights_from_counts(COUNTS)
    alpha = [0.1, 0.2, 0.3, 0.4]
    pairs = [
        (L.CrossEntropyLoss("sum")(logits, y), L.cross_entropy_loss(logits, y, "sum")),
        (L.WeightedSoftmaxLoss(w, "weighted_mean")(logits, y),
         L.weighted_softmax_loss(logits, y, w, "weighted_mean")),
        (L.FocalLoss(1.5, alpha)(logits, y), L.focal_loss(logits, y, 1.5, alpha)),
        (L.FocalLoss(1.5, 0.3, "sum")(logits, y), L.focal_loss(logits, y, 1.5, 0.3, "sum")),
        (L.BalancedSoftmaxLoss(COUNTS)(logits, y), L.balanced_softmax_loss(logits, y, COUNTS)),
        (L.LogitAdjustedLoss(COUNTS, 0.3)(logits, y),
         L.logit_adjusted_loss(logits, y, COUNTS, 0.3)),
        (L.LDAMLoss(COUNTS, 0.3, 5.0, w, "sum")(logits, y),
         L.ldam_loss(logits, y, COUNTS, 0.3, 5.0, w, "sum")),
        (L.CenterLoss("sum")(x, y, c), L.center_loss(x, y, c, "sum")),
        (L.WeightedClusterLoss(w, 0.5)(x, y, c), L.weighted_cluster_loss(x, y, c, w, 0.5)),
        (L.IslandLoss(3.0)(x, y, c), L.island_loss(x, y, c, 3.0)),
    ]
    for module_value, function_value in pairs:
        assert torch.equal(module_value, function_value)
    assert "class_weights" in dict(L.WeightedSoftmaxLoss(w).named_buffers())
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.WeightedSoftmaxLoss(w, reduction="avg")
    with pytest.raises(ValueError, match="alpha must be > 0"):
        L.WeightedClusterLoss(w, alpha=0.0)


def test_reduction_sum_is_m_times_mean():
    logits, x, c, y = _batch()
    w = L.class_weights_from_counts(COUNTS)
    fns = [
        lambda r: L.cross_entropy_loss(logits, y, r),
        lambda r: L.weighted_softmax_loss(logits, y, w, r),
        lambda r: L.focal_loss(logits, y, 2.0, w, r),
        lambda r: L.balanced_softmax_loss(logits, y, COUNTS, r),
        lambda r: L.logit_adjusted_loss(logits, y, COUNTS, 0.5, r),
        lambda r: L.ldam_loss(logits, y, COUNTS, 0.5, 5.0, w, r),
        lambda r: L.center_loss(x, y, c, r),
        lambda r: L.weighted_cluster_loss(x, y, c, w, 1.0, r),
    ]
    for fn in fns:
        assert torch.allclose(fn("sum"), M * fn("mean"))
    with pytest.raises(ValueError, match="reduction"):
        L.cross_entropy_loss(logits, y, "weighted_mean")


def test_extreme_logits_finite():
    _, _, _, y = _batch()
    # +-1e4 logits: even rows have p_t == 1 exactly (saturated), odd rows p_t == 0;
    # the sign flip below makes every target hopeless.
    logits = torch.full((M, K), -1e4)
    hot = torch.where(torch.arange(M) % 2 == 0, y, (y + 1) % K)
    logits[torch.arange(M), hot] = 1e4
    w = L.class_weights_from_counts(COUNTS)
    fns = [
        lambda z: L.cross_entropy_loss(z, y),
        lambda z: L.weighted_softmax_loss(z, y, w, "weighted_mean"),
        lambda z: L.focal_loss(z, y, 2.0),
        lambda z: L.focal_loss(z, y, 0.5),
        lambda z: L.focal_loss(z, y, 0.0, 0.25),
        lambda z: L.ldam_loss(z, y, COUNTS),
        lambda z: L.balanced_softmax_loss(z, y, COUNTS),
        lambda z: L.logit_adjusted_loss(z, y, COUNTS, 2.0),
    ]
    for fn in fns:
        for x in (logits, -logits):
            loss, g = _grad(fn, x)
            assert torch.isfinite(loss) and torch.isfinite(g).all()


# --- settings and registry -----------------------------------------------------------------

def _build(name: str, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning with default params
        return L.build_loss(name, class_counts=COUNTS, num_classes=K, embedding_dim=D, **kw)


@pytest.mark.parametrize("name", sorted(L.LOSSES))
def test_every_setting_builds_runs_and_steps(name):
    setting = _build(name)
    logits, x, _, y = _batch()
    logits, x = logits.requires_grad_(True), x.requires_grad_(True)
    setting.on_epoch_start(0)
    total, parts = setting(logits, x, y)
    assert total.dim() == 0 and torch.isfinite(total)
    assert parts and all(p.dim() == 0 and not p.requires_grad for p in parts.values())
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    before = {k: v.clone() for k, v in setting.state_dict().items()}
    setting.after_step(x.detach(), y)
    desc = setting.describe()
    json.dumps(desc)
    assert desc["loss"] == name and desc["reduction"] == "mean" == setting.reduction
    if setting.needs_embedding:
        assert x.grad is not None and x.grad.abs().sum() > 0
        moved = not torch.equal(before["centers"], setting.centers)
        assert moved == (setting.center_update != "autograd")
        with pytest.raises(ValueError, match="embedding"):
            L.build_loss(name, class_counts=COUNTS, num_classes=K, embedding_dim=None)
        with pytest.raises(ValueError, match="embedding"):
            setting(logits, None, y)


def test_build_loss_errors_and_params():
    with pytest.raises(ValueError, match="weighted_softmax"):
        L.build_loss("nope", COUNTS, K)
    with pytest.raises(TypeError, match="gama"):
        L.build_loss("focal", COUNTS, K, gama=2.0)
    with pytest.raises(ValueError, match="classes"):
        L.build_loss("softmax", COUNTS, K + 1)
    with pytest.raises(ValueError, match="reduction"):
        L.build_loss("softmax", COUNTS, K, reduction="weighted_mean")
    with pytest.raises(ValueError, match="center_update"):
        _build("weighted_cluster+weighted_softmax", center_update="sideways")
    assert L.loss_params("weighted_cluster+weighted_softmax") == {
        "lam": 1.0, "alpha": 1.0, "center_lr": 1.0, "center_update": "corrected",
        "normalize_by_count": False}
    s = _build("weighted_softmax", reduction="weighted_mean")
    logits, _, _, y = _batch()
    w = L.class_weights_from_counts(COUNTS)
    assert torch.allclose(s(logits, None, y)[0], nn.CrossEntropyLoss(weight=w)(logits, y))


def test_setting_sum_reduction_is_m_times_mean():
    logits, x, _, y = _batch()
    for name in ("softmax", "weighted_softmax", "ce+focal", "center+weighted_softmax",
                 "weighted_cluster+weighted_softmax", "ldam_drw"):
        total_sum = _build(name, reduction="sum")(logits, x, y)[0]
        total_mean = _build(name, reduction="mean")(logits, x, y)[0]
        assert torch.allclose(total_sum, M * total_mean)


def test_center_setting_matches_parts_and_wen_update():
    logits, x, c, y = _batch()
    s = _build("center+softmax", lam=0.5, center_lr=0.5)
    s.centers.copy_(c)
    total, parts = s(logits, x, y)
    assert torch.allclose(total, F.cross_entropy(logits, y) + 0.5 * L.center_loss(x, y, c))
    assert set(parts) == {"softmax", "center"}
    assert list(s.parameters()) == []  # centers are a buffer, out of the optimizer
    s.after_step(x, y)
    assert torch.allclose(s.centers, L.wen_center_update(c, x, y, 0.5))


def test_weighted_cluster_setting_center_modes():
    logits, x, c, y = _batch()
    w = L.class_weights_from_counts(COUNTS)
    manual = _build("weighted_cluster+weighted_softmax")
    manual.centers.copy_(c)
    total, parts = manual(logits, x, y)
    expected = L.weighted_softmax_loss(logits, y, w) + L.weighted_cluster_loss(x, y, c, w)
    assert torch.allclose(total, expected)
    assert set(parts) == {"weighted_softmax", "weighted_cluster"}
    manual.after_step(x, y)
    assert torch.allclose(manual.centers, L.weighted_cluster_center_update(c, x, y, w))

    auto = _build("weighted_cluster+weighted_softmax", center_update="autograd")
    params = dict(auto.named_parameters())
    assert list(params) == ["centers"]
    with torch.no_grad():
        auto.centers.copy_(c)
    auto(logits, x, y)[0].backward()
    c_ref = c.clone().requires_grad_(True)
    L.weighted_cluster_loss(x, y, c_ref, w).backward()
    assert torch.allclose(auto.centers.grad, c_ref.grad)  # lam = 1: full Eq. 4 gradient
    assert auto.describe()["center_update"] == "autograd"


def test_ldam_drw_switches_weights_at_drw_epoch():
    s = _build("ldam_drw", drw_epoch=3, beta=0.99, scale=1.0)
    logits, _, _, y = _batch()
    s.on_epoch_start(2)
    before = s(logits, None, y)[0]
    assert torch.allclose(s.terms["ldam"].class_weights, torch.ones(K))
    s.on_epoch_start(3)
    assert torch.allclose(s.terms["ldam"].class_weights, L.class_balanced_weights(COUNTS, 0.99))
    assert not torch.allclose(s(logits, None, y)[0], before)
    s.on_epoch_start(0)  # resuming earlier restores the plain weights
    assert torch.allclose(s(logits, None, y)[0], before)


def test_focal_settings_printed_ck_plus_is_scaled_ce():
    logits, _, _, y = _batch()
    ck = _build("focal", alpha=0.25, gamma=0.0)
    assert torch.allclose(ck(logits, None, y)[0], 0.25 * F.cross_entropy(logits, y))
    joint = _build("ce+focal", gamma=2.0, alpha=[0.1, 0.2, 0.3, 0.4])
    total, parts = joint(logits, None, y)
    assert set(parts) == {"ce", "focal"} and torch.allclose(total, parts["ce"] + parts["focal"])
    with pytest.raises(ValueError, match="alpha"):
        _build("focal", alpha=[0.5, 0.5])


# --- doctests --------------------------------------------------------------------------------

def test_doctests():
    for info in pkgutil.iter_modules(L.__path__):
        module = importlib.import_module(f"fer_utils.losses.{info.name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, info.name


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_label_smoothing_matches_torch_and_a_naive_loop(eps, reduction):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 7, generator=g, dtype=torch.float64) * 3
    targets = torch.randint(0, 7, (16,), generator=g)
    ours = L.cross_entropy_loss(logits, targets, reduction, label_smoothing=eps)
    torch_ref = F.cross_entropy(logits, targets, reduction=reduction, label_smoothing=eps)
    naive = 0.0
    for row, y in zip(logits, targets):
        p = torch.softmax(row, 0)
        q = torch.full((7,), eps / 7, dtype=torch.float64)
        q[y] += 1 - eps
        naive += -(q * p.log()).sum()
    naive = naive / 16 if reduction == "mean" else naive
    assert torch.allclose(ours, torch_ref, atol=1e-12) and torch.allclose(ours, naive, atol=1e-12)


def test_softmax_setting_records_label_smoothing_only_when_set():
    plain = L.build_loss("softmax", class_counts=[5, 3], num_classes=2)
    assert plain.describe() == {"loss": "softmax", "reduction": "mean"}
    smooth = L.build_loss("softmax", class_counts=[5, 3], num_classes=2, label_smoothing=0.1)
    assert smooth.describe()["label_smoothing"] == 0.1
    logits, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    assert torch.allclose(smooth(logits, None, y)[0],
                          F.cross_entropy(logits, y, label_smoothing=0.1))
    with pytest.raises(ValueError, match="label_smoothing"):
        L.cross_entropy_loss(logits, y, label_smoothing=1.0)
