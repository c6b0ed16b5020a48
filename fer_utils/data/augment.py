"""Batch augmentation on uint8 tensors, on whatever device holds them.

One affine warp per batch (``affine_grid`` + ``grid_sample``) composes crop, scale,
rotation and flips, so no per-image PIL work sits on the training path and the same
code runs on CPU and GPU. Randomness comes from an explicit CPU ``torch.Generator`` so a
run's augmentation is a function of its seed, stage and epoch (exact resume), and the same
on every device: the parameters are drawn on the CPU and only the warp runs on the device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentRecipe:
    """Random affine augmentation; ranges are inclusive, probabilities in [0, 1]."""

    #: Area fraction of the random crop (1, 1 disables cropping).
    crop_area: tuple[float, float] = (1.0, 1.0)
    #: Aspect-ratio range of the crop (log-uniform).
    crop_ratio: tuple[float, float] = (1.0, 1.0)
    rotation_deg: float = 0.0
    hflip: float = 0.0
    vflip: float = 0.0
    #: Random erasing (Zhong et al., 2020): probability that an image gets one rectangle
    #: filled with ``ERASE_VALUE``, its area fraction and aspect-ratio ranges. Applied after
    #: the warp; 0 draws nothing, so recipes without it keep their random streams.
    erase: float = 0.0
    erase_area: tuple[float, float] = (0.02, 0.2)
    erase_ratio: tuple[float, float] = (0.3, 3.3)

    @property
    def warps(self) -> bool:
        return not (self.crop_area == (1.0, 1.0) and self.rotation_deg == 0
                    and self.hflip == 0 and self.vflip == 0)

    @property
    def is_identity(self) -> bool:
        return not self.warps and self.erase == 0


AUGMENTATIONS: dict[str, AugmentRecipe] = {
    "none": AugmentRecipe(),
    # Paper W: random crop then resize to the input size, random horizontal flip.
    "w": AugmentRecipe(crop_area=(0.64, 1.0), crop_ratio=(3 / 4, 4 / 3), hflip=0.5),
    # Paper F: horizontal and (as printed) vertical flips at p=0.5, rotation +-10 deg.
    "f": AugmentRecipe(rotation_deg=10.0, hflip=0.5, vflip=0.5),
    # Paper F without the vertical flip (upside-down faces rarely help FER).
    "f_novflip": AugmentRecipe(rotation_deg=10.0, hflip=0.5),
    # Not from either paper (FER2013 at speed, issue 17): paper W's crop and mirror, rotation
    # +-10 deg, and random erasing of one rectangle in half the images.
    "w_erase": AugmentRecipe(crop_area=(0.64, 1.0), crop_ratio=(3 / 4, 4 / 3), rotation_deg=10.0,
                             hflip=0.5, erase=0.5),
}

#: What an erased rectangle is filled with (images in [0, 1]): mid-grey, about the mean of
#: every normalisation above, so an erased patch carries no signal after normalising.
ERASE_VALUE = 0.5

NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # ImageNet statistics (what paper W printed for its pipeline).
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # VGGFace2 weights: RGB mean subtraction in 0-255 units, no std.
    "vggface2": ((131.0912 / 255, 103.8827 / 255, 91.4953 / 255), (1 / 255,) * 3),
    # VGG-Face (Parkhi et al. 2015): RGB mean subtraction in 0-255 units, no std.
    "vggface": ((129.186279296875 / 255, 104.76238250732422 / 255, 93.59396362304688 / 255),
                (1 / 255,) * 3),
    # torchvision's Inception-v3 ImageNet weights expect inputs scaled to [-1, 1].
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "none": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


def get_recipe(name: str) -> AugmentRecipe:
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; valid: {', '.join(AUGMENTATIONS)}")
    return AUGMENTATIONS[name]


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _flip_signs(n: int, p: float, g: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(n, generator=g) < p, -1.0, 1.0)


def _check_cpu(g: torch.Generator) -> None:
    if g.device.type != "cpu":
        raise ValueError(f"augmentation draws from a CPU generator (the same draws on every "
                         f"device), got one on {g.device}")


def random_affine_params(n: int, recipe: AugmentRecipe, g: torch.Generator) -> torch.Tensor:
    """Draw ``n`` affine matrices (n, 2, 3), on the CPU from the CPU generator ``g``, mapping
    output to input normalised coordinates."""
    _check_cpu(g)
    area = _uniform(n, *recipe.crop_area, g)
    log_r = _uniform(n, math.log(recipe.crop_ratio[0]), math.log(recipe.crop_ratio[1]), g)
    ratio = torch.exp(log_r)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    # Crop centre anywhere that keeps the crop inside the image.
    tx = (1 - sx) * _uniform(n, -1.0, 1.0, g)
    ty = (1 - sy) * _uniform(n, -1.0, 1.0, g)
    angle = torch.deg2rad(_uniform(n, -recipe.rotation_deg, recipe.rotation_deg, g))
    fx = _flip_signs(n, recipe.hflip, g)
    fy = _flip_signs(n, recipe.vflip, g)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([
        torch.stack([cos * sx * fx, -sin * sy * fy, tx], dim=1),
        torch.stack([sin * sx * fx, cos * sy * fy, ty], dim=1),
    ], dim=1)
    return theta


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return images.float().div_(255.0)


def augment_batch(images: torch.Tensor, recipe: AugmentRecipe, g: torch.Generator,
                  size: int | None = None) -> torch.Tensor:
    """Augment a uint8 batch; returns float32 in [0, 1] on the same device, ``size`` pixels
    square when given (the warp samples its output grid at that side: progressive resizing
    costs one resampling, not two)."""
    x = to_float(images)
    # Bilinear sampling without anti-aliasing: fine for the mild reductions of progressive
    # resizing (48 -> 32 px), where neighbouring samples still overlap.
    out_shape = (list(x.shape[:2]) + [size, size]) if size is not None else list(x.shape)
    if recipe.warps or out_shape != list(x.shape):
        theta = random_affine_params(x.shape[0], recipe, g).to(x.device)
        grid = F.affine_grid(theta, out_shape, align_corners=False)
        # Reflection padding avoids black corners after rotation.
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if recipe.erase > 0:
        x = x.masked_fill(random_erase_masks(x.shape, recipe, g).to(x.device), ERASE_VALUE)
    return x


def random_erase_masks(shape, recipe: AugmentRecipe, g: torch.Generator) -> torch.Tensor:
    """Boolean masks (n, 1, h, w), drawn on the CPU from ``g``: with probability
    ``recipe.erase`` one rectangle per image, area a fraction of the image drawn uniformly
    from ``erase_area``, aspect ratio log-uniform in ``erase_ratio``, placed uniformly inside."""
    _check_cpu(g)
    n, _, h, w = shape
    erased = torch.rand(n, generator=g) < recipe.erase
    area = _uniform(n, *recipe.erase_area, g) * h * w
    ratio = torch.exp(_uniform(n, math.log(recipe.erase_ratio[0]), math.log(recipe.erase_ratio[1]), g))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (torch.rand(n, generator=g) * (h - eh + 1)).floor()
    left = (torch.rand(n, generator=g) * (w - ew + 1)).floor()
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)))
    return (inside & erased.view(n, 1, 1))[:, None]


def mixup_batch(x: torch.Tensor, alpha: float,
                g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al., 2018): each image blended with another of the same batch,
    ``lam * x + (1 - lam) * x[perm]``, one ``lam ~ Beta(alpha, alpha)`` per batch. Returns the
    mixed batch, ``perm`` (the partner of each image; its labels get weight ``1 - lam``) and
    ``lam``. Both are drawn on the CPU from ``g``, like every other augmentation draw; torch
    samples Beta without a generator, so ``lam`` comes from a NumPy generator seeded by ``g``."""
    _check_cpu(g)
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0, got {alpha}")
    perm = torch.randperm(x.shape[0], generator=g)
    seed = int(torch.randint(2 ** 62, (1,), generator=g))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    mixed = x.mul(lam).add_(x[perm.to(x.device)], alpha=1.0 - lam)
    return mixed, perm, lam


#: Ten-crop test-time augmentation: the side of each crop, as a fraction of the image side
#: (area 0.81, inside the training crops' 0.64-1 of recipe "w"), resized back to the input
#: size as the training crops are.
TENCROP_SIDE = 0.9


def test_time_views(x: torch.Tensor, tta: str) -> list[torch.Tensor]:
    """The views of a batch whose predictions are averaged at test time: ``none`` the batch;
    ``hflip`` it and its mirror; ``tencrop`` four corner crops and the centre crop (side
    ``TENCROP_SIDE``, resized to the input size) and their mirrors."""
    if tta == "none":
        return [x]
    if tta == "hflip":
        return [x, x.flip(3)]
    if tta != "tencrop":
        raise ValueError(f"unknown tta {tta!r}; valid: none, hflip, tencrop")
    size = x.shape[-2:]
    h, w = (round(TENCROP_SIDE * n) for n in size)
    H, W = size
    corners = [(0, 0), (0, W - w), (H - h, 0), (H - h, W - w), ((H - h) // 2, (W - w) // 2)]
    crops = [F.interpolate(x[..., t:t + h, l:l + w], size=tuple(size), mode="bilinear",
                           align_corners=False) for t, l in corners]
    return crops + [c.flip(3) for c in crops]


def normalize(x: torch.Tensor, name: str) -> torch.Tensor:
    """Channel-wise normalisation; single-channel inputs use the channel means."""
    if name not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {name!r}; valid: {', '.join(NORMALIZATIONS)}")
    mean, std = (torch.tensor(v, device=x.device, dtype=x.dtype) for v in NORMALIZATIONS[name])
    if x.shape[1] == 1:
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
