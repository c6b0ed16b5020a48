"""The fast training path (uint8 images resident on the device, batch augmentation there,
bf16 autocast, channels_last) follows the plain path's loss trajectory (PNG bytes decoded by
PIL per sample, torchvision transforms, DataLoader, fp32 eager NCHW) on a tiny run.

Tolerances: fp32 fast vs plain run the same arithmetic on the same inputs in the same order,
so the per-epoch mean losses agree to 1e-4 relative and the weights to 1e-4; channels_last
changes the convolution kernels' summation order (1e-3); bf16 autocast rounds activations to
8 mantissa bits, so its epoch losses stay within 3% of fp32 over three epochs.
"""
import numpy as np
import pytest
import torch

from fer_utils.config import RunConfig, load_config
from fer_utils.data import Split
from fer_utils.data.augment import augment_batch, get_recipe, to_float
from fer_utils.losses import build_loss
from fer_utils.models import create_model
from fer_utils.training.loop import DeviceData, train_batches, train_one_epoch
from fer_utils.training.naive import (PILImageDataset, encode_png, plain_loader,
                                      plain_train_steps, plain_transform)

N, SIZE, CLASSES, BATCH, EPOCHS = 48, 32, 4, 16, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 1, SIZE, SIZE), dtype=np.uint8)
    labels = np.arange(N) % CLASSES
    return images, labels


def _fresh(seed=0):
    torch.manual_seed(seed)
    model = create_model("resnet18", CLASSES, head="w", in_chans=1, embedding_dim=32)
    criterion = build_loss("center+softmax", class_counts=[N // CLASSES] * CLASSES,
                           num_classes=CLASSES, embedding_dim=32)
    optimizer = torch.optim.SGD(list(model.parameters()) + list(criterion.parameters()),
                                lr=0.01, momentum=0.9)
    return model, criterion, optimizer


def _cfg(**kw) -> RunConfig:
    return load_config(None, [f"batch_size={BATCH}", "data.augmentation=none",
                              "data.in_chans=1", f"data.image_size={SIZE}"]
                       + [f"{k}={v}" for k, v in kw.items()])


def _fast(data, **kw):
    images, labels = data
    cfg = _cfg(**kw)
    model, criterion, optimizer = _fresh()
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    dev = DeviceData(Split(images, labels), torch.device("cpu"))
    losses = []
    for epoch in range(EPOCHS):
        g = torch.Generator().manual_seed(epoch)
        losses.append(train_one_epoch(model, criterion, optimizer, sched, dev, cfg, torch.device("cpu"), g,
                                      "fast", False)["train_loss"])
    return np.array(losses), model, criterion


def _plain(data):
    images, labels = data
    dataset = PILImageDataset(encode_png(images), labels, plain_transform(SIZE, 1))
    model, criterion, optimizer = _fresh()
    losses = []
    for epoch in range(EPOCHS):
        batches = train_batches(N, BATCH, torch.Generator().manual_seed(epoch))
        steps = plain_train_steps(model, criterion, optimizer, plain_loader(dataset, batches), "cpu")
        sizes = [len(b) for b in batches]
        losses.append(float(np.average(steps, weights=sizes)))
    return np.array(losses), model, criterion


@pytest.fixture(scope="module")
def plain(data):
    return _plain(data)


def test_plain_pipeline_feeds_the_same_tensors_as_the_fast_one(data):
    images, labels = data
    dataset = PILImageDataset(encode_png(images), labels, plain_transform(SIZE, 1))
    from fer_utils.training.loop import prepare
    fast = prepare(torch.from_numpy(images[:4]), _cfg(), None)
    plain = torch.stack([dataset[i][0] for i in range(4)])
    assert torch.allclose(fast, plain, atol=1e-6)


def test_fp32_fast_path_matches_plain_loss_trajectory(data, plain):
    losses, model, criterion = _fast(data)
    assert np.allclose(losses, plain[0], rtol=1e-4), (losses, plain[0])
    for a, b in zip(model.state_dict().values(), plain[1].state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4)
    assert torch.allclose(criterion.state_dict()["centers"], plain[2].state_dict()["centers"], atol=1e-4)
    assert losses[-1] < losses[0]  # it trains


def test_channels_last_fast_path_matches_plain(data, plain):
    losses, _, _ = _fast(data, channels_last="true")
    assert np.allclose(losses, plain[0], rtol=1e-3), (losses, plain[0])


def test_bf16_fast_path_stays_close_to_fp32_plain(data, plain):
    losses, _, _ = _fast(data, precision="bf16")
    assert np.allclose(losses, plain[0], rtol=0.03), (losses, plain[0])


def test_device_side_flip_equals_torchvision_flip_on_cpu_tensors():
    """The batch augmentation that runs on the GPU is the same code on CPU tensors:
    a certain horizontal flip through the affine warp is an exact mirror image."""
    from dataclasses import replace
    x = torch.randint(0, 256, (3, 1, 12, 12), dtype=torch.uint8)
    recipe = replace(get_recipe("none"), hflip=1.0)
    out = augment_batch(x, recipe, torch.Generator().manual_seed(0))
    assert torch.allclose(out, torch.flip(to_float(x), dims=[3]), atol=1e-6)
