"""Evaluate a finished run's best checkpoint on any split of any registered dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from ..choices import check_choice
from ..config import TTAS, config_from_dict
from ..data import Split, load_dataset
from ..metrics import evaluate
from .loop import DeviceData, build_model, predict, resolve_device, to_run_format

SPLITS = ("train", "val", "test")


def load_run(run_dir: str | Path, device: str = "cpu"):
    """(config, model with the best weights) of a finished run directory or a model folder
    (``fer_utils.model_folder``: safetensors weights, read without pickle)."""
    from ..model_folder import WEIGHTS, is_model_folder, read_weights
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoints" / "best.pt"
    if is_model_folder(run_dir):
        state = read_weights(run_dir, resolve_device(device))
    elif ckpt.exists():
        state = torch.load(ckpt, map_location=resolve_device(device), weights_only=True)["model"]
    else:
        raise FileNotFoundError(f"{run_dir} is neither a finished run (checkpoints/best.pt) nor a model "
                                f"folder ({WEIGHTS} + config.yaml)")
    cfg = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    cfg.device = device
    # a model folder's config names the pre-trained weights it started from: not needed to load
    cfg.model.pretrained = None
    model = build_model(cfg, state["classifier.weight"].shape[0])
    model.load_state_dict(state)
    return cfg, to_run_format(model.to(resolve_device(device)), cfg).eval()


def load_run_data(run_dir: str | Path, *, dataset: str | None = None, root: str | None = None,
                  device: str = "cpu", tta: str | None = None):
    """(config, model, data) of a finished run: its best model and the splits its config loads
    (``dataset`` / ``root`` replace the config's, ``tta`` its test-time augmentation)."""
    if tta is not None:
        check_choice("tta", tta, TTAS)
    cfg, model = load_run(run_dir, device)
    cfg.tta = tta or cfg.tta
    if dataset is not None and dataset != cfg.data.dataset:
        cfg.data.dataset, cfg.data.params = dataset, {}
    if root is not None:
        cfg.data.root = root
    data = load_dataset(cfg.data, split_seed=cfg.seed)
    if len(data.class_names) != model.num_classes:
        raise ValueError(f"run predicts {model.num_classes} classes but {cfg.data.dataset} has "
                         f"{len(data.class_names)}")
    return cfg, model, data


def split_probabilities(cfg, model, split: Split, device: str = "cpu") -> np.ndarray:
    """The model's class probabilities for every image of ``split``, in order (with the
    config's test-time augmentation)."""
    dev = resolve_device(device)
    return predict(model, DeviceData(split, dev), cfg, dev)["prob"].cpu().numpy()


def evaluate_run(run_dir: str | Path, *, dataset: str | None = None, root: str | None = None,
                 split: str = "test", device: str = "cpu", bootstrap: int = 1000,
                 save_predictions: str | Path | None = None, tta: str | None = None) -> dict:
    """Metrics (with bootstrap intervals) of a run's best checkpoint on ``split``;
    ``save_predictions`` writes each image's probabilities (and ids) to an ``.npz``; ``tta``
    replaces the run's own test-time augmentation (e.g. ``tencrop`` for a run trained with
    ``hflip``: compare them on ``val`` before looking at ``test``)."""
    check_choice("split", split, SPLITS)
    cfg, model, data = load_run_data(run_dir, dataset=dataset, root=root, device=device, tta=tta)
    part = getattr(data, split)
    y_true = np.asarray(part.labels, dtype=np.int64)
    y_prob = split_probabilities(cfg, model, part, device)
    result = evaluate(y_true, y_prob, data.class_names, n_bootstrap=bootstrap, seed=cfg.seed)
    if save_predictions is not None:
        from .. import io as fio
        fio.save_npz(Path(save_predictions), {"y_true": y_true, "y_prob": y_prob, **part.groups()})
    return {"run": str(run_dir), "dataset": cfg.data.dataset, "split": split, "tta": cfg.tta, **result}
