import pytest
import torch

from fer_utils.models import BACKBONES, create_model


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "seresnet50", "vgg16", "inception_v3",
                                  "efficientnet_lite0", "resnet18_s1", "resnet18_half_s1",
                                  "resnet18_mid_s1"])
def test_heads_shapes_on_48px_grayscale(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, head="w", in_chans=1).eval()
    with torch.no_grad():
        logits, emb = model(torch.randn(2, 1, 48, 48))
        feats = model.forward_features(torch.randn(2, 1, 48, 48))
    assert logits.shape == (2, 7) and emb.shape == (2, 512)
    assert feats.shape == (2, model.num_features)


def test_head_f_has_no_embedding_and_tiny_init():
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=7, head="f")
    _, emb = model(torch.randn(2, 3, 64, 64))
    assert emb is None and model.embedding_dim is None
    w = model.classifier.weight
    # N(0, 0.001^2): std close to 1e-3 over 7 x 512 draws
    assert 0.8e-3 < w.std().item() < 1.2e-3 and model.classifier.bias.abs().max() == 0


def test_head_w_is_two_linear_layers():
    model = create_model("resnet50", num_classes=8)
    assert model.embed.in_features == 2048 and model.embed.out_features == 512
    assert model.classifier.in_features == 512 and model.classifier.out_features == 8


def test_forward_features_is_pooled_backbone_before_head():
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=8).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        manual = model.backbone.global_pool(model.backbone.forward_features(x))
        assert torch.allclose(model.forward_features(x), manual)
        logits, emb = model(x)
        assert torch.allclose(emb, model.embed(manual), atol=1e-6)
        assert torch.allclose(logits, model.classifier(emb), atol=1e-6)


@pytest.mark.parametrize("name", ["resnet18", "seresnet50"])
def test_freeze_stages_freezes_params_and_batchnorm_stats(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=8, freeze_stages=True)
    model.train()
    modules = dict(model.backbone.named_modules())
    frozen = [modules[n] for n in BACKBONES[name].early_stages]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.backbone.layer3.parameters())
    bns = [m for f in frozen for m in f.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.randn(4, 3, 64, 64))
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))
    # the trainable stages do update their statistics
    assert model.backbone.layer3.training


def test_reset_classifier_reinitialises_last_fc():
    model = create_model("resnet18", num_classes=7, head="f")
    with torch.no_grad():
        model.classifier.weight.fill_(1.0)
    model.reset_classifier()
    assert model.classifier.weight.abs().max() < 0.01


def test_seresnet50_uses_stride_on_first_1x1_conv_layout():
    # The VGGFace2 port puts the stride on conv1 of block 0 and uses a ceil-mode max-pool.
    model = create_model("seresnet50", num_classes=8)
    block = model.backbone.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert model.backbone.pool0.ceil_mode


def test_unknown_names_are_rejected_with_the_valid_list():
    with pytest.raises(ValueError, match="valid: efficientnet_lite0, inception_v3, resnet18"):
        create_model("resnet101", num_classes=8)
    with pytest.raises(ValueError, match="unknown head"):
        create_model("resnet18", num_classes=8, head="x")


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("head", ["w", "f"])
def test_efficientnet_lite0_heads_channels_and_frozen_stages(in_chans, head):
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", num_classes=7, head=head, in_chans=in_chans,
                         freeze_stages=True).eval()
    with torch.no_grad():
        logits, emb = model(torch.randn(2, in_chans, 64, 64))
        feats = model.forward_features(torch.randn(2, in_chans, 64, 64))
    assert logits.shape == (2, 7) and feats.shape == (2, 1280) == (2, model.num_features)
    assert (emb is None) == (head == "f") and (emb is None or emb.shape == (2, 512))
    frozen = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("blocks.") else "")
              for n, p in model.backbone.named_parameters() if not p.requires_grad}
    assert frozen == {"conv_stem", "bn1", "blocks.0", "blocks.1", "blocks.2"}


@pytest.mark.parametrize("name, width", [("resnet18_s1", 512), ("resnet18_half_s1", 256),
                                         ("resnet18_mid_s1", 320)])
@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("head", ["w", "f"])
def test_full_resolution_stem_keeps_a_48px_face_at_24x24_into_layer1(name, width, in_chans, head):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, head=head, in_chans=in_chans).eval()
    conv1 = model.backbone.conv1
    assert conv1.stride == (1, 1) and conv1.kernel_size == (3, 3) and conv1.in_channels == in_chans
    seen = {}
    model.backbone.layer1.register_forward_hook(lambda m, i, o: seen.update(layer1=o.shape))
    with torch.no_grad():
        logits, emb = model(torch.randn(2, in_chans, 48, 48))
    assert tuple(seen["layer1"][-2:]) == (24, 24)  # the ImageNet stem gives 12x12
    assert logits.shape == (2, 7) and model.num_features == width
    assert (emb is None) == (head == "f")
    # He-normal (fan-out) initialisation: std sqrt(2 / (out_channels * 9))
    expected = (2 / (conv1.out_channels * 9)) ** 0.5
    assert abs(conv1.weight.std().item() / expected - 1) < 0.1


def test_mid_s1_widths_and_parameter_count():
    """resnet18_mid_s1 is the ResNet-18 layout with its 64-channel stem and 32-64-160-320 stages."""
    model = create_model("resnet18_mid_s1", num_classes=7, in_chans=1)
    b = model.backbone
    assert b.conv1.out_channels == 64
    widths = [getattr(b, f"layer{i}")[-1].conv2.out_channels for i in range(1, 5)]
    assert widths == [32, 64, 160, 320]
    assert [len(getattr(b, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    half = create_model("resnet18_half_s1", num_classes=7, in_chans=1)
    n = lambda m: sum(p.numel() for p in m.parameters())
    # the totals the docstring and the config quote (head w, 7 classes, 1 channel)
    assert (n(model), n(half)) == (4_424_007, 2_941_319)
