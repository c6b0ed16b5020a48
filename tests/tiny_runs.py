"""A run small enough for unit tests. Imported as ``from tiny_runs import tiny_overrides``
(a module of its own: the root conftest.py would shadow a ``from conftest import``)."""


def tiny_overrides(runs_dir, **extra) -> list[str]:
    """A run small enough for unit tests: 32 px synthetic faces, ResNet-18, 2 epochs."""
    base = {"runs_dir": str(runs_dir), "data.image_size": 32, "data.params.n_train": 320,
            "data.params.n_test_per_class": 12, "batch_size": 32, "bootstrap": 50,
            "stages.0.epochs": 2, "num_threads": 2}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def forbid_unpickling(monkeypatch) -> None:
    """From here on, any unpickling (torch.load included) fails the test: model folders must be
    read without it."""
    import pickle

    import torch

    def refuse(*a, **k):
        raise AssertionError("a model folder was unpickled")
    for owner, name in ((pickle, "Unpickler"), (pickle, "load"), (torch, "load")):
        monkeypatch.setattr(owner, name, refuse)
