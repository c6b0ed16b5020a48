"""Dataset summaries for the exploration notebook: class balance, splits, folds, sizes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import DataConfig
from .data import DATASETS, class_names, load_dataset


def class_table(splits: dict[str, np.ndarray], names) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with each class's share of train."""
    table = pd.DataFrame({s: np.bincount(y, minlength=len(names)) for s, y in splits.items()},
                         index=list(names))
    first = next(iter(splits))
    table[f"% of {first}"] = (100 * table[first] / table[first].sum()).round(2)
    return table


def imbalance_ratio(counts) -> float:
    """Largest class size over smallest (paper W's AffectNet training set: about 41)."""
    counts = np.asarray(counts)
    return float(counts.max() / max(counts.min(), 1))


def summarize(cfg: DataConfig) -> dict:
    """Class counts per split, image size, and for K-fold datasets the fold sizes and
    subjects per fold (subject-disjointness is checked when the folds are built)."""
    names = class_names(cfg.dataset, **cfg.params)
    parts = DATASETS[cfg.dataset].load(cfg)
    out: dict = {"class_names": names}
    if "all" in parts:
        pool, folds = parts["all"], np.asarray(parts["folds"])
        out["classes"] = class_table({"all": pool.labels}, names)
        rows = []
        for k in np.unique(folds):
            sel = folds == k
            subj = pool.subjects[sel] if pool.subjects is not None else None
            rows.append({"fold": int(k), "images": int(sel.sum()),
                         "subjects": None if subj is None else int(len(np.unique(subj)))})
        out["folds"] = pd.DataFrame(rows)
        sample = pool
    else:
        split_cfg = DataConfig(**{**cfg.__dict__})
        data = load_dataset(split_cfg)
        out["classes"] = class_table({s: getattr(data, s).labels for s in ("train", "val", "test")}, names)
        out["split_info"] = data.info
        sample = data.train
    out["image_shape"] = tuple(int(v) for v in sample.images.shape[1:])
    first = out["classes"].columns[0]
    out["imbalance_ratio"] = imbalance_ratio(out["classes"][first].to_numpy())
    out["sample"] = sample
    return out
