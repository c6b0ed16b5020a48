"""Grids of run configs (no images are read)."""
from fer_utils import study


def test_paper_w_grid_is_seed_major_with_per_loss_seeds_and_schedule():
    base = study.base_config(dataset="synthetic", image_size=32)
    configs = study.paper_w_grid(base, backbones=["resnet18"], losses=["softmax", "focal"], seeds=[0],
                                 seeds_per_loss={"softmax": [0, 1, 2]}, schedule="onecycle")
    assert [c.name for c in configs] == ["W-resnet18-scratch-softmax-seed0", "W-resnet18-scratch-focal-seed0",
                                         "W-resnet18-scratch-softmax-seed1", "W-resnet18-scratch-softmax-seed2"]
    assert {c.stages[0].schedule for c in configs} == {"onecycle"}
    assert [c.seed for c in configs] == [0, 0, 1, 2]
