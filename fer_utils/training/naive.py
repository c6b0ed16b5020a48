"""The plain training path the fast one is measured and checked against.

What a straightforward PyTorch FER script does: images kept as encoded PNG bytes and
decoded by PIL for every sample, torchvision transforms per image, a ``DataLoader`` that
collates float32 NCHW batches, fp32 eager forward and backward. ``fer_utils.training.loop``
instead keeps decoded uint8 images resident on the device, augments whole batches there
and can run under bf16 autocast and channels_last. ``benchmarks/throughput.py`` times
both; ``tests/test_fast_path.py`` checks that they follow the same loss trajectory.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from ..data.augment import NORMALIZATIONS

__all__ = ["encode_png", "PILImageDataset", "plain_transform", "plain_loader", "plain_train_steps"]


def encode_png(images: np.ndarray) -> list[bytes]:
    """uint8 (N, C, H, W) arrays -> PNG bytes, as image files on disk would hold them."""
    out = []
    for img in images:
        hwc = img.transpose(1, 2, 0)
        pil = Image.fromarray(hwc[..., 0] if hwc.shape[2] == 1 else hwc)
        buf = io.BytesIO()
        pil.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


class PILImageDataset(Dataset):
    """Encoded images decoded by PIL on every access, then a torchvision transform."""

    def __init__(self, encoded: list[bytes], labels: np.ndarray, transform):
        self.encoded, self.labels, self.transform = encoded, np.asarray(labels), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = Image.open(io.BytesIO(self.encoded[i]))
        image.load()
        return self.transform(image), int(self.labels[i])


def plain_transform(image_size: int, in_chans: int, normalization: str = "imagenet",
                    train_augment: bool = False):
    """torchvision per-image pipeline: (random resized crop + flip when ``train_augment``),
    resize to ``image_size``, ToTensor, Normalize with the study's statistics."""
    mean, std = NORMALIZATIONS[normalization]
    if in_chans == 1:  # single channel: channel means, as fer_utils.data.augment.normalize
        mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
    steps = ([T.RandomResizedCrop(image_size, scale=(0.64, 1.0)), T.RandomHorizontalFlip()]
             if train_augment else [T.Resize((image_size, image_size))])
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])


def plain_loader(dataset: Dataset, batches: list[torch.Tensor] | None = None, *,
                 batch_size: int = 32, num_workers: int = 0) -> DataLoader:
    """A DataLoader over ``dataset``; ``batches`` fixes the index batches (to replay the
    fast path's order exactly), otherwise it shuffles."""
    if batches is not None:
        return DataLoader(dataset, batch_sampler=[b.tolist() for b in batches],
                          num_workers=num_workers)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                      num_workers=num_workers, persistent_workers=num_workers > 0)


def plain_train_steps(model, criterion, optimizer, loader, device, max_steps: int | None = None
                      ) -> list[float]:
    """fp32, eager, NCHW training steps; returns the loss of every step."""
    model.train()
    losses = []
    for step, (x, y) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        x, y = x.to(device), y.to(device)
        logits, embedding = model(x)
        loss, _ = criterion(logits, embedding, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        criterion.after_step(None if embedding is None else embedding.detach(), y)
        losses.append(float(loss.detach()))
    return losses
