"""Exponential moving average of a model's weights (EMA; in neither paper): with
``StageConfig.ema`` > 0 the averaged model is what a stage validates, selects, tests and
saves as its best checkpoint, while the live model goes on training unchanged."""
from __future__ import annotations

import copy

import torch


class WeightAverage:
    """An exponential moving average of ``model``'s state (parameters and buffers: the
    batch-norm statistics are averaged too), updated after every optimizer step.

    The decay ramps up as ``min(decay, (1 + t) / (10 + t))`` (``t``: updates so far), as
    TensorFlow's ExponentialMovingAverage with ``num_updates``, so the first epochs' average is
    not mostly the random initialisation; the ramp is long: 0.999 is reached after about 9,000
    updates, and it starts again with each stage. Integer buffers (batch norm's step counter)
    are copied. The batch-norm statistics are averaged like the weights, so after a change of
    input side (progressive resizing) they lag the live model's by about 1 / (1 - decay) steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.live = model  # the model that trains (never DDP-wrapped)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
            p.grad = None  # deepcopy copies the live model's last gradients too
        # state_dict tensors share storage with the modules: updating them updates the models
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))
        self._floats = [(a, b) for a, b in pairs if a.is_floating_point()]
        self._others = [(a, b) for a, b in pairs if not a.is_floating_point()]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """average <- decay * average + (1 - decay) * live, for every floating tensor."""
        weight = 1.0 - self.current_decay()
        if self._floats:
            torch._foreach_lerp_([a for a, _ in self._floats], [b for _, b in self._floats], weight)
        for a, b in self._others:
            a.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
