"""The real datasets: ``build_index(name, root, **protocol)`` and their ``load(data_config)``.

``SPECS`` maps each registered name to its ``DatasetSpec``; ``fer_utils.data``
registers a ``DatasetEntry`` for each, whose ``load`` builds the (checked) index,
decodes it once through the cache and returns the Splits with what was done in
``"info"``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import affectnet, ckplus, fer2013, oulu_casia, rafdb
from .decode import decode_index, duplicate_report
from .formats import DatasetSpec, finalize_index, resolve_root, subject_codes

SPECS: dict[str, DatasetSpec] = {s.name: s for s in (
    affectnet.SPEC, ckplus.SPEC, ckplus.SPEC48, fer2013.SPEC, oulu_casia.SPEC, rafdb.SPEC)}


def get_spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise ValueError(f"unknown real dataset {name!r}; valid: {', '.join(sorted(SPECS))}")
    return SPECS[name]


def build_index(name: str, root: str | Path | None = None, **protocol):
    """Checked index of dataset ``name``: one row per image, columns ``path``, ``id``, ``label``
    (in ``class_names(name)`` order), ``split`` or ``fold``, and ``subject``/``bbox`` where known.

    ``protocol`` holds the dataset's ``data.params`` options (and ``num_folds`` for K-fold
    datasets); ``root`` defaults to ``default_data_root()/<dataset folder>``. What the
    reader decided (layout, skipped rows, protocol notes) is in ``df.attrs["info"]``.
    """
    spec = get_spec(name)
    num_folds = protocol.pop("num_folds", 10) if spec.kfold else None
    p = spec.protocol(protocol)
    index_options = {k: v for k, v in p.items() if k not in spec.decode_options}
    if spec.kfold:
        index_options["num_folds"] = num_folds
    df = spec.build(resolve_root(root, spec.default_dir), **index_options)
    attrs = dict(df.attrs)
    df = finalize_index(df, spec.class_names(**protocol), name)
    df.attrs.update(attrs)
    return df


def _crop(p: dict, df) -> str:
    """The crop asked for, or for ``"auto"`` the reader's default (``none`` for pre-cropped faces)."""
    return df.attrs.get("default_crop", "none") if p.get("crop", "auto") == "auto" else p["crop"]


def load(name: str, cfg) -> dict:
    """``DatasetEntry.load`` of a real dataset: decoded Splits and the reader's info."""
    from . import Split

    spec = get_spec(name)
    p = spec.protocol(cfg.params)
    protocol = {**p, "num_folds": cfg.num_folds} if spec.kfold else dict(p)
    df = build_index(name, cfg.root, **protocol)
    crop = _crop(p, df)
    arrays = decode_index(name, df, cfg.image_size, spec.channels, crop=crop, margin=float(p.get("margin", 0.0)),
                          no_face=p.get("no_face", "error"), protocol=protocol)
    images, labels = arrays["images"], df["label"].to_numpy(np.int64)
    subjects = subject_codes(df["subject"]) if "subject" in df else None
    ids = df["id"].astype(str).to_numpy()
    sequences = df["sequence"].astype(str).to_numpy() if "sequence" in df else None
    part = df["fold"].to_numpy() if "fold" in df else df["split"].to_numpy()
    parts = np.array([f"fold{f}" for f in part]) if "fold" in df else part
    info = {**df.attrs.get("info", {}), "root": str(resolve_root(cfg.root, spec.default_dir)),
            "protocol": protocol, "crop": crop, "n_images": len(df),
            "duplicates": duplicate_report(arrays["hashes"], parts)}
    if "no_face" in arrays and len(arrays["no_face"]):
        info["no_face_centre_cropped"] = [df["path"].iloc[i] for i in arrays["no_face"]]
        print(f"{name}: MTCNN found no face in {len(arrays['no_face'])} images; centre-cropped (no_face='center')",
              file=sys.stderr)
    if info["duplicates"]:
        print(f"{name}: exact duplicate images (content hash) {info['duplicates']}; kept, as the protocol does",
              file=sys.stderr)
    if "fold" in df:
        return {"all": Split(images, labels, subjects, ids, sequences), "folds": df["fold"].to_numpy(np.int64),
                "info": info}
    out = {"info": info}
    for s in ("train", "val", "test"):
        idx = np.flatnonzero(part == s)
        if len(idx):  # rows are ordered train, val, test: a slice keeps the memory map
            sl = slice(idx[0], idx[-1] + 1)
            out[s] = Split(images[sl], labels[sl], None if subjects is None else subjects[sl], ids[sl],
                           None if sequences is None else sequences[sl])
    return out


def loader(name: str):
    """``cfg -> load(name, cfg)`` for the registry."""
    def load_named(cfg) -> dict:
        return load(name, cfg)
    load_named.__name__ = f"load_{name}"
    return load_named
