"""Step-by-step traces of a run's first optimizer steps, for diagnosing how training fails.

``trace_first_steps`` trains the first steps of a run's first stage through the training loop
itself (``loop.train_one_epoch``: the run's own batches, augmentation, dropout seeds and
schedule), in a temporary folder, calling back after every step. Used by
``scripts/diagnose_weighted_cluster.py`` and ``scripts/diagnose_feature_collapse.py``.
"""
from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable

from ..config import RunConfig
from .loop import Trainer, seed_epoch, train_one_epoch


def trace_first_steps(cfg: RunConfig, steps: int, on_step: Callable[[int, dict], None],
                      features: bool = False) -> None:
    """Train the first ``steps`` optimizer steps of ``cfg``'s first stage on one process and
    call ``on_step(step, record)`` after each (``record``: see ``train_one_epoch``; with
    ``features`` it also holds the pooled backbone ``features`` that head ``w``'s embedding
    layer received). Nothing is written outside a temporary folder."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = copy.deepcopy(cfg)
        cfg.runs_dir, cfg.bootstrap = tmp, 0
        trainer = Trainer(cfg, f"{tmp}/trace", progress=False)
        trainer.setup()
        criterion, optimizer, scheduler = trainer.start_stage(0)
        model, seen = trainer.model, {}
        if features:
            if cfg.model.head != "w":
                raise ValueError(f"head {cfg.model.head!r} has no embedding layer to read features at")
            hook = model.embed.register_forward_hook(
                lambda _module, inputs, _out: seen.__setitem__("features", inputs[0].detach()))

        def record(step: int, rec: dict) -> None:
            on_step(step, {**rec, **seen})

        g = seed_epoch(cfg.seed, 0, 0)
        criterion.on_epoch_start(0)
        try:
            train_one_epoch(model, criterion, optimizer, scheduler, trainer.train_data, cfg,
                            trainer.device, g, "trace", False, on_step=record, max_steps=steps,
                            size=cfg.stages[0].train_size(0))
        finally:
            if features:
                hook.remove()
