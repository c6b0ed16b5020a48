"""Evaluation metrics as paper W reports them, with stratified bootstrap intervals.

Paper W (Sensors 2020, Table 5) reports accuracy in the multi-class sense and
F1, Cohen's kappa, Krippendorff's alpha, AUC and AUC-PR "in a binary-class
manner": one-vs-rest for each class, then the plain (macro) mean over classes.
:func:`evaluate` computes those six, plus balanced accuracy, per-class numbers,
the confusion matrix and percentile intervals from a bootstrap that resamples
within each true class (class sizes fixed, as in a test set with a fixed number
of images per class such as AffectNet's 500 per class).

Conventions:
    * Values are fractions, not percentages. Kappa and alpha lie in [-1, 1]
      and are not clipped: a model worse than chance gets a negative value.
    * A per-class value that is 0/0 (AUC or AUC-PR for a class absent from
      ``y_true``; F1, kappa, alpha for a class neither present nor predicted;
      precision for a class never predicted) is undefined: it is ``None`` in
      the output, left out of the macro mean and listed in
      ``undefined_classes``.
    * Everything returned is made of Python ``float``/``int``/``str``/``list``/
      ``dict``/``None``, so ``json.dumps`` works on it.

All bootstrap replicates are computed at once from a (replicates x samples)
matrix of draw counts: confusion matrices by one matrix product, AUC and AUC-PR
by weighted cumulative sums over the samples sorted once per class.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

HEADLINE_METRICS = ("accuracy", "f1", "kappa", "alpha", "auc", "auc_pr", "balanced_accuracy")
_OVR_METRICS = ("f1", "kappa", "alpha", "auc", "auc_pr")
# Replicates per chunk: bounds the (chunk x n) float arrays to a few tens of MB.
_CHUNK = 200


# ----------------------------------------------------------------------------- inputs
def _as_numpy(x: Any) -> np.ndarray:
    """Array from a numpy array, list or torch tensor (torch is not imported here)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _labels(y: Any, name: str, n_classes: int | None = None) -> np.ndarray:
    """1-D int64 labels, checked for NaN, non-integer values and range."""
    y = _as_numpy(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or inf")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class indices")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n_classes is not None and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} has labels outside [0, {n_classes}): "
                         f"min {y.min()}, max {y.max()}")
    return y


def _scores(p: Any, name: str, n_rows: int, n_classes: int | None) -> np.ndarray:
    """2-D float64 score matrix (probabilities, or any scores: only ranks and argmax matter)."""
    p = _as_numpy(p)
    if p.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x classes), got shape {p.shape}")
    if p.shape[0] != n_rows:
        raise ValueError(f"{name} has {p.shape[0]} rows but y_true has {n_rows} labels")
    if n_classes is not None and p.shape[1] != n_classes:
        raise ValueError(f"{name} has {p.shape[1]} columns but {n_classes} class names")
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or inf")
    return p


def _validate(y_true: Any, y_prob: Any,
              class_names: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """Checked (labels, scores); the class count comes from class_names or the columns."""
    if class_names is not None and len(class_names) < 2:
        raise ValueError(f"need at least 2 classes, got {len(class_names)}")
    y_prob_np = _as_numpy(y_prob)
    n_classes = len(class_names) if class_names is not None else (
        y_prob_np.shape[1] if y_prob_np.ndim == 2 else None)
    y = _labels(y_true, "y_true", n_classes)
    return y, _scores(y_prob_np, "y_prob", len(y), n_classes)


# ------------------------------------------------------------ 2x2-table agreement stats
def binary_kappa(tp: Any, fp: Any, fn: Any, tn: Any) -> np.ndarray:
    """Cohen's kappa of two binary raters (truth, prediction) from their 2x2 table.

    kappa = (p_o - p_e) / (1 - p_e) with observed agreement p_o = (tp + tn) / n
    and chance agreement p_e = ((tp+fp)(tp+fn) + (fn+tn)(fp+tn)) / n^2.
    Both are multiplied through by n^2 so that the undefined case (both raters
    constant and equal, p_e = 1) is an exact zero test. Works elementwise.

    Args:
        tp: Both raters say 1. fp: truth 0, prediction 1. fn: truth 1,
            prediction 0. tn: both say 0. Counts (or bootstrap-weighted counts).

    Returns:
        Kappa in [-1, 1]; NaN where undefined.
    """
    tp, fp, fn, tn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    expected = (tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)  # n^2 * p_e
    num, den = n * (tp + tn) - expected, n * n - expected
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def binary_alpha(tp: Any, fp: Any, fn: Any, tn: Any) -> np.ndarray:
    """Krippendorff's alpha (nominal) of two binary coders with no missing values.

    Each unit contributes its ordered value pairs to the coincidence matrix:
    o_11 = 2 tp, o_00 = 2 tn, o_01 = o_10 = fp + fn, over N = 2n pairable
    values with marginals n_1 = 2 tp + fp + fn and n_0 = 2 tn + fp + fn. Then
    alpha = 1 - D_o / D_e = 1 - (N - 1) (o_01 + o_10) / (2 n_0 n_1)
          = 1 - (2n - 1)(fp + fn) / (n_0 n_1).
    Undefined (NaN) when every value is the same (n_0 n_1 = 0). Works elementwise.

    Args:
        tp: Both coders say 1. fp: truth 0, prediction 1. fn: truth 1,
            prediction 0. tn: both say 0.

    Returns:
        Alpha in [-1, 1]; NaN where undefined.
    """
    tp, fp, fn, tn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    n1, n0 = 2 * tp + fp + fn, 2 * tn + fp + fn
    den = n0 * n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 1.0 - (2 * n - 1) * (fp + fn) / np.where(den > 0, den, 1.0),
                        np.nan)


# ---------------------------------------------------------------------------- bootstrap
def stratified_bootstrap_indices(y_true: Any, n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """Bootstrap sample indices drawn with replacement within each true class.

    Every replicate keeps each class's size, so class priors (and the set of
    classes present) are those of the test set; only which images are drawn varies.

    Args:
        y_true: Integer labels, shape (n,).
        n_bootstrap: Number of replicates B.
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        int64 array of shape (B, n): row b lists the drawn sample indices,
        grouped by class in increasing class order.
    """
    y = _labels(y_true, "y_true")
    rng = np.random.default_rng(seed)
    blocks = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        blocks.append(members[rng.integers(0, len(members), size=(n_bootstrap, len(members)))])
    return np.concatenate(blocks, axis=1)


def _draw_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """(B, n) float matrix: how often each sample is drawn in each replicate."""
    b = indices.shape[0]
    flat = (indices + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _percentile_ci(values: np.ndarray, ci: float) -> list[float | None]:
    """Percentile interval over replicates, ignoring replicates where the metric is undefined."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [None, None]
    lo, hi = np.percentile(values, [50 * (1 - ci), 50 * (1 + ci)])
    return [float(lo), float(hi)]


# ----------------------------------------------------------- weighted (batched) metrics
def _nan_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _confusion(y: np.ndarray, pred: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """(B, k, k) confusion matrices (rows true, columns predicted) of B weighted samples."""
    cell = np.zeros((len(y), k * k))
    cell[np.arange(len(y)), y * k + pred] = 1.0
    return (weights @ cell).reshape(-1, k, k)


def _confusion_metrics(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class one-vs-rest metrics (B, k) and accuracy (B,) from confusion matrices."""
    tp = np.diagonal(conf, axis1=1, axis2=2)
    support, predicted = conf.sum(axis=2), conf.sum(axis=1)
    fp, fn = predicted - tp, support - tp
    n = conf.sum(axis=(1, 2))
    tn = n[:, None] - tp - fp - fn
    return {
        "accuracy": tp.sum(axis=1) / n,
        "precision": _nan_divide(tp, predicted),
        "recall": _nan_divide(tp, support),
        "f1": _nan_divide(2 * tp, 2 * tp + fp + fn),
        "kappa": binary_kappa(tp, fp, fn, tn),
        "alpha": binary_alpha(tp, fp, fn, tn),
    }


def _rank_metrics(score: np.ndarray, positive: np.ndarray,
                  weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision of one score column for B weightings of the samples.

    Samples are sorted once by score; tied scores form groups. For weights w:
    AUC = sum_g pos_g (neg_below_g + neg_in_g / 2) / (P N)  (ties count one half,
    as the trapezoidal ROC area does), and
    AP  = sum_g pos_g * precision(score >= s_g) / P  (sklearn's step-wise AP).

    Returns:
        (auc, ap), each of shape (B,); NaN where there are no positives (or, for
        AUC, no negatives).
    """
    order = np.argsort(score, kind="stable")
    s = score[order]
    group_end = np.append(np.flatnonzero(s[1:] != s[:-1]), len(s) - 1)
    w = weights[:, order]
    pos_w = w * positive[order]
    cum_pos = np.cumsum(pos_w, axis=1)[:, group_end]
    cum_all = np.cumsum(w, axis=1)[:, group_end]
    cum_neg = cum_all - cum_pos
    pos_g, neg_g = np.diff(cum_pos, axis=1, prepend=0.0), np.diff(cum_neg, axis=1, prepend=0.0)
    total_pos, total_neg, total = cum_pos[:, -1], cum_neg[:, -1], cum_all[:, -1]
    neg_below = cum_neg - neg_g
    auc = _nan_divide((pos_g * (neg_below + 0.5 * neg_g)).sum(axis=1), total_pos * total_neg)
    # Counts at score >= s_g: everything minus what lies strictly below group g.
    pos_at_or_above = total_pos[:, None] - (cum_pos - pos_g)
    all_at_or_above = total[:, None] - (cum_all - (pos_g + neg_g))
    precision = _nan_divide(pos_at_or_above, all_at_or_above)
    ap = _nan_divide(np.where(pos_g > 0, pos_g * precision, 0.0).sum(axis=1), total_pos)
    return auc, ap


def _per_class_metrics(y: np.ndarray, prob: np.ndarray,
                       weights: np.ndarray) -> dict[str, np.ndarray]:
    """All per-class metrics, shape (B, k), and accuracy, shape (B,), for B weightings."""
    k = prob.shape[1]
    out = _confusion_metrics(_confusion(y, prob.argmax(axis=1), weights, k))
    rank = [_rank_metrics(prob[:, c], (y == c).astype(np.float64), weights) for c in range(k)]
    out["auc"] = np.stack([r[0] for r in rank], axis=1)
    out["auc_pr"] = np.stack([r[1] for r in rank], axis=1)
    return out


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over classes of the defined values; NaN if none is defined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=1)


def _headline(per_class: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Macro (one-vs-rest, then mean) headline metrics, each of shape (B,)."""
    out = {m: _nanmean_rows(per_class[m]) for m in _OVR_METRICS}
    out["accuracy"] = per_class["accuracy"]
    out["balanced_accuracy"] = _nanmean_rows(per_class["recall"])
    return out


def _bootstrap_headline(y: np.ndarray, prob: np.ndarray, n_bootstrap: int,
                        seed: int) -> dict[str, np.ndarray]:
    """Headline metrics for every stratified bootstrap replicate, each of shape (B,)."""
    indices = stratified_bootstrap_indices(y, n_bootstrap, seed)
    chunks = []
    for start in range(0, n_bootstrap, _CHUNK):
        weights = _draw_counts(indices[start:start + _CHUNK], len(y))
        chunks.append(_headline(_per_class_metrics(y, prob, weights)))
    return {m: np.concatenate([c[m] for c in chunks]) for m in HEADLINE_METRICS}


# ----------------------------------------------------------------------------- public
def _py(x: Any) -> float | None:
    """Python float, or None for an undefined (NaN) value."""
    x = float(x)
    return None if math.isnan(x) else x


def _undefined(per_class: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, list[str]]:
    return {m: [names[c] for c in np.flatnonzero(np.isnan(per_class[m][0]))]
            for m in (*_OVR_METRICS, "precision", "recall")}


def _per_class_table(per_class: dict[str, np.ndarray], support: np.ndarray,
                     names: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
    keys = ("precision", "recall", "f1", "auc", "auc_pr")
    return {name: {**{m: _py(per_class[m][0, c]) for m in keys}, "support": int(support[c])}
            for c, name in enumerate(names)}


def _macro_f1_multiclass(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """sklearn's macro F1; zero_division=nan drops 0/0 classes as the OvR mean does."""
    from sklearn.metrics import f1_score
    return float(f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=np.nan))


def evaluate(y_true: Any, y_prob: Any, class_names: Sequence[str], *,
             n_bootstrap: int = 1000, seed: int = 0, ci: float = 0.95) -> dict[str, Any]:
    """Paper W's six metrics plus balanced accuracy, per-class table and bootstrap CIs.

    ``f1``, ``kappa``, ``alpha``, ``auc`` and ``auc_pr`` are one-vs-rest per class
    (indicator ``y_true == c`` against ``argmax == c``, or against the score
    column ``y_prob[:, c]`` for the two areas), then the unweighted mean over the
    classes where the value is defined (see the module docstring). Because the
    OvR binary F1 of class c is the multi-class per-class F1, ``f1`` equals
    ``macro_f1_multiclass``.

    Args:
        y_true: Integer labels in [0, k), shape (n,); numpy array or torch tensor.
        y_prob: Scores, shape (n, k): probabilities, or logits (only argmax and
            per-column ranks are used).
        class_names: k names, in column order.
        n_bootstrap: Stratified bootstrap replicates for ``ci``; 0 disables.
        seed: Bootstrap seed.
        ci: Interval level, in (0, 1).

    Returns:
        JSON-serialisable dict with keys ``accuracy``, ``f1``, ``kappa``,
        ``alpha``, ``auc``, ``auc_pr``, ``balanced_accuracy``,
        ``macro_f1_multiclass``, ``per_class`` (name -> precision, recall, f1,
        support, auc, auc_pr), ``confusion_matrix`` (rows true, columns
        predicted), ``undefined_classes`` (metric -> class names left out of
        its mean), ``class_names``, ``n``, ``ci`` (headline metric -> [low,
        high], empty if disabled), ``ci_level``, ``n_bootstrap``, ``bootstrap_seed``.

    Raises:
        ValueError: On malformed inputs or settings.
    """
    y, prob = _validate(y_true, y_prob, class_names)
    if n_bootstrap < 0 or not 0 < ci < 1:
        raise ValueError(f"need n_bootstrap >= 0 and 0 < ci < 1, got {n_bootstrap}, {ci}")
    names, k = [str(c) for c in class_names], len(class_names)
    pred = prob.argmax(axis=1)
    per_class = _per_class_metrics(y, prob, np.ones((1, len(y))))
    result: dict[str, Any] = {m: _py(v[0]) for m, v in _headline(per_class).items()}
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    result.update(
        macro_f1_multiclass=_macro_f1_multiclass(y, pred, k),
        per_class=_per_class_table(per_class, confusion.sum(axis=1), names),
        confusion_matrix=confusion.tolist(), undefined_classes=_undefined(per_class, names),
        class_names=names, n=int(len(y)), ci={}, ci_level=float(ci),
        n_bootstrap=int(n_bootstrap), bootstrap_seed=int(seed))
    if n_bootstrap > 0:
        reps = _bootstrap_headline(y, prob, n_bootstrap, seed)
        result["ci"] = {m: _percentile_ci(reps[m], ci) for m in HEADLINE_METRICS}
    return result


def paired_bootstrap(y_true: Any, prob_a: Any, prob_b: Any, metric: str = "accuracy", *,
                     n_bootstrap: int = 2000, seed: int = 0, ci: float = 0.95) -> dict[str, Any]:
    """Difference ``metric(b) - metric(a)`` of two models scored on the same images.

    Both models are evaluated on the same stratified resamples, so the interval
    reflects only the images' sampling noise of the *difference* (the two
    models' errors are correlated, which unpaired intervals ignore).
    The two-sided p-value is 2 x the smaller share of replicates on either side
    of zero, with a +1 correction so it is never exactly 0, capped at 1.

    Args:
        y_true: Integer labels, shape (n,).
        prob_a: Scores of model a, shape (n, k).
        prob_b: Scores of model b, shape (n, k).
        metric: One of ``HEADLINE_METRICS``.
        n_bootstrap: Replicates (>= 1).
        seed: Bootstrap seed.
        ci: Interval level, in (0, 1).

    Returns:
        Dict with ``metric``, ``a``, ``b``, ``difference`` (b - a), ``ci``
        ([low, high] of the difference), ``p_value``, ``ci_level``,
        ``n_bootstrap``, ``bootstrap_seed``.

    Raises:
        ValueError: On malformed inputs, unknown metric or bad settings.
    """
    if metric not in HEADLINE_METRICS:
        raise ValueError(f"metric must be one of {HEADLINE_METRICS}, got {metric!r}")
    if n_bootstrap < 1 or not 0 < ci < 1:
        raise ValueError(f"need n_bootstrap >= 1 and 0 < ci < 1, got {n_bootstrap}, {ci}")
    y, pa = _validate(y_true, prob_a, None)
    _, pb = _validate(y, prob_b, [""] * pa.shape[1])
    ones = np.ones((1, len(y)))
    point = [_headline(_per_class_metrics(y, p, ones))[metric][0] for p in (pa, pb)]
    diffs = (_bootstrap_headline(y, pb, n_bootstrap, seed)[metric]
             - _bootstrap_headline(y, pa, n_bootstrap, seed)[metric])
    diffs = diffs[np.isfinite(diffs)]
    tail = min(np.sum(diffs <= 0), np.sum(diffs >= 0))
    return {"metric": metric, "a": _py(point[0]), "b": _py(point[1]),
            "difference": _py(point[1] - point[0]), "ci": _percentile_ci(diffs, ci),
            "p_value": float(min(1.0, 2 * (tail + 1) / (len(diffs) + 1))),
            "ci_level": float(ci), "n_bootstrap": int(n_bootstrap), "bootstrap_seed": int(seed)}


def _binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p-value for p = 1/2 (scipy's binomtest when present)."""
    if n == 0:
        return 1.0
    try:
        from scipy.stats import binomtest
    except ImportError:  # the distribution is symmetric: double the smaller tail
        tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2.0 ** n
        return min(1.0, 2.0 * tail)
    return float(binomtest(k, n, 0.5).pvalue)


def mcnemar(y_true: Any, pred_a: Any, pred_b: Any) -> dict[str, Any]:
    """Exact McNemar test of two classifiers' accuracy on the same samples.

    Only discordant samples carry information: under H0 (equal accuracy) the
    number where only b is right is Binomial(discordant, 1/2).

    Args:
        y_true: Integer labels, shape (n,).
        pred_a: Predicted labels of model a, shape (n,), or scores (n, k) (argmax taken).
        pred_b: Same for model b.

    Returns:
        Dict with ``both_correct``, ``a_only_correct`` (b01: a right, b wrong),
        ``b_only_correct`` (b10), ``both_wrong``, ``n_discordant``, ``p_value``,
        ``test``.

    Raises:
        ValueError: On malformed or mismatched inputs.
    """
    y = _labels(y_true, "y_true")
    preds = []
    for name, p in (("pred_a", pred_a), ("pred_b", pred_b)):
        p = _as_numpy(p)
        p = _scores(p, name, len(y), None).argmax(axis=1) if p.ndim == 2 else _labels(p, name)
        if len(p) != len(y):
            raise ValueError(f"{name} has {len(p)} entries but y_true has {len(y)}")
        preds.append(p == y)
    a, b = preds
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return {"both_correct": int(np.sum(a & b)), "a_only_correct": a_only,
            "b_only_correct": b_only, "both_wrong": int(np.sum(~a & ~b)),
            "n_discordant": a_only + b_only,
            "p_value": _binom_two_sided(b_only, a_only + b_only),
            "test": "exact two-sided binomial on discordant pairs (McNemar)"}


def embedding_compactness(embeddings: Any, labels: Any,
                          class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Intra-class spread versus inter-center distance of deep features.

    Measures what the center and weighted-cluster losses claim to do: pull
    features to their class center (small intra) and, for weighted-cluster,
    push centers apart (large inter). Centers here are the empirical class means.

    Args:
        embeddings: Features, shape (n, d).
        labels: Integer labels, shape (n,).
        class_names: Optional names for the label indices (keys of ``per_class``);
            labels must then lie in [0, len(class_names)).

    Returns:
        Dict with ``intra_class`` (unweighted mean over present classes of the
        mean squared distance to the class mean), ``inter_center`` (mean over
        pairs of present classes of the squared distance between means; None
        with fewer than 2 classes), ``ratio`` (intra / inter, lower = more
        compact and separated; None if undefined), ``per_class`` (key ->
        {``intra``, ``n``}) and ``n_classes`` (present classes).

    Raises:
        ValueError: On malformed inputs.
    """
    y = _labels(labels, "labels", len(class_names) if class_names is not None else None)
    x = _scores(embeddings, "embeddings", len(y), None)
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    intra = np.array([np.mean(np.sum((x[y == c] - m) ** 2, axis=1)) for c, m in zip(classes, means)])
    sq = np.sum((means[:, None, :] - means[None, :, :]) ** 2, axis=2)
    iu = np.triu_indices(len(classes), k=1)
    inter = float(sq[iu].mean()) if len(classes) > 1 else None
    keys = [class_names[c] if class_names is not None else int(c) for c in classes]
    return {"intra_class": float(intra.mean()), "inter_center": inter,
            "ratio": float(intra.mean() / inter) if inter else None,
            "per_class": {key: {"intra": float(v), "n": int(np.sum(y == c))}
                          for key, v, c in zip(keys, intra, classes)},
            "n_classes": int(len(classes))}


# -------------------------------------------------- cluster-aware inference (the unit)
# Frames of one CK+ / Oulu-CASIA sequence (and the sequences of one subject) are near
# copies: counting them as independent images makes tests and intervals far too sure.
# ``groups`` names the independent unit of each image (subject, sequence, or the image
# itself); every function below treats a group as one observation, and a 2-D ``correct``
# (seeds x images) as several models scored on the *same* images, never as more images.

def _correct_matrix(correct: Any, name: str) -> np.ndarray:
    """(seeds, n) bool from a 1-D (n,) or 2-D (seeds, n) array of right/wrong flags."""
    c = _as_numpy(correct)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.size == 0:
        raise ValueError(f"{name} must be a non-empty (n,) or (seeds, n) array, got shape {c.shape}")
    if c.dtype.kind not in "biu" or np.any((c != 0) & (c != 1)):
        raise ValueError(f"{name} must hold right/wrong flags (bool or 0/1)")
    return c.astype(bool)


def _group_codes(groups: Any, n: int) -> np.ndarray:
    """Integer codes 0..G-1 of each image's group; every image its own group when None."""
    if groups is None:
        return np.arange(n)
    g = _as_numpy(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"groups must be 1-D with one entry per image ({n}), got shape {g.shape}")
    return np.unique(g, return_inverse=True)[1].ravel()


def _group_differences(correct_a: Any, correct_b: Any, groups: Any) -> np.ndarray:
    """Per group: images b gets right minus images a gets right, summed over seeds (int)."""
    a = _correct_matrix(correct_a, "correct_a")
    b = _correct_matrix(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b differ in shape: {a.shape} vs {b.shape}")
    per_image = (b.astype(np.int64) - a.astype(np.int64)).sum(axis=0)
    return np.bincount(_group_codes(groups, a.shape[1]), weights=per_image).astype(np.int64)


def _sign_flip_distribution(d: np.ndarray) -> tuple[np.ndarray, int]:
    """Exact null distribution of S = sum(+-|d_g|) under independent fair signs:
    (probabilities of S = -total..total, total). Built by convolution, one group at a
    time, over the integer range: no Monte-Carlo error, O(groups x range)."""
    d = np.abs(d[d != 0]).astype(np.int64)
    total = int(d.sum())
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0
    for v in d:
        dist = 0.5 * (np.concatenate([dist[v:], np.zeros(v)]) + np.concatenate([np.zeros(v), dist[:-v]]))
    return dist, total


def paired_test(correct_a: Any, correct_b: Any, groups: Any = None) -> float:
    """Two-sided p that two models are equally accurate on the same images.

    The per-group difference d_g = (images of group g that b gets right) - (that a gets
    right), summed over seeds when ``correct_*`` are (seeds, n), is symmetric about 0 under
    the null that a and b are exchangeable within each group; the test is the exact
    sign-flip permutation test of sum(d_g) (every assignment of signs to the groups equally
    likely). Without groups each image is a group and d in {-1, 0, 1}: this is exactly the
    two-sided exact McNemar test. A group made of k identical copies of one pair has d
    multiplied by k; when every group is so, the p-value is that of the single pairs.

    Args:
        correct_a: Right/wrong flags of model a, (n,) or (seeds, n).
        correct_b: Same for model b (same images, same seed order).
        groups: Optional (n,) labels of the independent unit of each image
            (subject, sequence...).

    Returns:
        The p-value in [0, 1].
    """
    d = _group_differences(correct_a, correct_b, groups)
    dist, total = _sign_flip_distribution(d)
    if total == 0:
        return 1.0
    observed = abs(int(d.sum()))
    s = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(s) >= observed].sum()))


def discordant_groups(correct_a: Any, correct_b: Any, groups: Any = None) -> tuple[int, int]:
    """(groups where a is right more often, groups where b is) — McNemar's discordant
    counts in units of groups (of images when ``groups`` is None)."""
    d = _group_differences(correct_a, correct_b, groups)
    return int(np.sum(d < 0)), int(np.sum(d > 0))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of a binomial proportion (independent trials)."""
    if n == 0:
        return (np.nan, np.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))  # no -0.0 from rounding


def accuracy_interval(correct: Any, groups: Any = None, level: float = 0.95, *,
                      n_bootstrap: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Interval of an accuracy (or of a recall: pass one class's images) whose unit is
    the group, averaged over seeds without counting seeds as images.

    * ``correct`` of shape (n,) and no groups: Wilson's score interval (independent images).
    * Otherwise a percentile bootstrap that resamples whole groups (each image its own
      group when ``groups`` is None) and applies the *same* resample to every seed row of a
      (seeds, n) ``correct``: the statistic is the mean over seeds of the resampled
      accuracy, so seed-to-seed spread narrows nothing; it is reported elsewhere.

    Returns:
        (low, high) as fractions.
    """
    if not 0 < level < 1 or n_bootstrap < 1:
        raise ValueError(f"need 0 < level < 1 and n_bootstrap >= 1, got {level}, {n_bootstrap}")
    raw = _as_numpy(correct)
    c = _correct_matrix(correct, "correct")
    if raw.ndim == 1 and groups is None:
        z = float(_normal_quantile(0.5 + level / 2))
        return wilson_interval(int(c.sum()), c.shape[1], z)
    codes = _group_codes(groups, c.shape[1])
    hits = np.bincount(codes, weights=c.sum(axis=0).astype(np.float64))
    sizes = np.bincount(codes).astype(np.float64) * c.shape[0]
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, n_bootstrap, _CHUNK):
        draws = rng.integers(0, len(hits), size=(min(_CHUNK, n_bootstrap - start), len(hits)))
        counts = _draw_counts(draws, len(hits))
        stats.append((counts @ hits) / (counts @ sizes))
    lo, hi = _percentile_ci(np.concatenate(stats), level)
    return (float(lo), float(hi))


def run_prediction_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Where one more independent run of a recipe should land, from ``values``: one metric
    over n >= 2 earlier runs of it (its seeds). The unit is the run: mean +- t s sqrt(1 + 1/n),
    with s the standard deviation over the runs (n - 1 degrees of freedom) and t the two-sided
    ``level`` quantile of Student's t, assuming runs scatter normally around the recipe's mean.
    A single run of another recipe outside the interval differs from this recipe by more than
    its seeds do; inside it, the two are not told apart. With n = 3 the interval is wide
    (t = 4.30): it says how little three seeds pin down, not that recipes are equal.
    """
    from scipy.stats import t as student
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"need a 1-d list of at least 2 runs' values, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("run values must be finite")
    if not 0 < level < 1:
        raise ValueError(f"need 0 < level < 1, got {level}")
    n = len(x)
    half = float(student.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) * np.sqrt(1 + 1 / n))
    return (float(x.mean() - half), float(x.mean() + half))


def _normal_quantile(q: float) -> float:
    from statistics import NormalDist
    return NormalDist().inv_cdf(q)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None / NaN entries are not
    tests: they stay None and do not count in the family size).

    The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)):
    rejecting where the adjusted p <= alpha controls the family-wise error rate at alpha.
    """
    values = [None if p is None or (isinstance(p, float) and math.isnan(p)) else float(p)
              for p in p_values]
    tested = [i for i, p in enumerate(values) if p is not None]
    m = len(tested)
    out: list[float | None] = [None] * len(values)
    running = 0.0
    for rank, i in enumerate(sorted(tested, key=lambda i: values[i])):
        running = max(running, min(1.0, (m - rank) * values[i]))
        out[i] = running
    return out
