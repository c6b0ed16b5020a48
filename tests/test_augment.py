import numpy as np
import pytest
import torch

from fer_utils.data.augment import (AUGMENTATIONS, AugmentRecipe, augment_batch, normalize,
                                    random_affine_params)


def _images(n=4, c=3, size=32):
    return torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


def test_identity_recipe_returns_the_scaled_input():
    x = _images()
    out = augment_batch(x, AUGMENTATIONS["none"], torch.Generator().manual_seed(0))
    assert torch.equal(out, x.float() / 255)


def test_hflip_only_recipe_flips_exactly():
    x = _images()
    out = augment_batch(x, AugmentRecipe(hflip=1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(out, x.flip(-1).float() / 255, atol=1e-5)
    out = augment_batch(x, AugmentRecipe(vflip=1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(out, x.flip(-2).float() / 255, atol=1e-5)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_recipes_are_seeded_and_keep_shape_and_range(name):
    x = _images()
    a = augment_batch(x, AUGMENTATIONS[name], torch.Generator().manual_seed(1))
    b = augment_batch(x, AUGMENTATIONS[name], torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1


def test_crop_scales_stay_inside_the_image():
    theta = random_affine_params(1000, AUGMENTATIONS["w"], torch.Generator().manual_seed(0))
    sx, tx = theta[:, 0, 0].abs(), theta[:, 0, 2]
    assert (sx <= 1).all() and (sx >= 0.5).all()
    assert ((sx + tx.abs()) <= 1 + 1e-6).all()


def test_rotation_bound_of_paper_f_recipe():
    theta = random_affine_params(1000, AugmentRecipe(rotation_deg=10), torch.Generator().manual_seed(0))
    angle = torch.rad2deg(torch.atan2(theta[:, 1, 0], theta[:, 0, 0]))
    assert angle.abs().max() <= 10 + 1e-4 and angle.abs().max() > 9


def test_normalize_grayscale_and_rgb():
    x = torch.full((2, 3, 4, 4), 0.5)
    out = normalize(x, "imagenet")
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(out[0, :, 0, 0], expected)
    assert normalize(torch.full((1, 1, 2, 2), 0.5), "none").abs().max() == 0
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize(x, "bogus")


def test_vggface2_normalization_is_mean_subtraction_in_255_units():
    x = torch.full((1, 3, 1, 1), 1.0)  # white pixel = 255
    out = normalize(x, "vggface2")[0, :, 0, 0]
    assert np.allclose(out.numpy(), [255 - 131.0912, 255 - 103.8827, 255 - 91.4953], atol=1e-3)


def test_augmentation_draws_on_the_cpu_whatever_device_holds_the_images():
    """The same generator state gives the same parameters for a batch on any device: the
    draws happen on the CPU and only the warp runs where the images are ("meta" stands in
    for a GPU: nothing can be drawn there)."""
    recipe = AUGMENTATIONS["w"]
    g_cpu, g_meta = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x = torch.zeros(5, 1, 8, 8, dtype=torch.uint8)
    augment_batch(x, recipe, g_cpu)
    out = augment_batch(x.to("meta"), recipe, g_meta)
    assert out.device.type == "meta" and out.shape == (5, 1, 8, 8)
    assert torch.equal(g_cpu.get_state(), g_meta.get_state())  # the same draws were made
    assert torch.equal(random_affine_params(5, recipe, g_cpu), random_affine_params(5, recipe, g_meta))


def test_augmentation_refuses_a_device_generator():
    import pytest
    class CudaGenerator:  # a CUDA generator cannot be built here; only its device is read
        device = torch.device("cuda")
    g = CudaGenerator()
    with pytest.raises(ValueError, match="CPU generator"):
        random_affine_params(2, AUGMENTATIONS["w"], g)


def test_tencrop_views_are_the_five_crops_and_their_mirrors_written_out():
    """Against a naive formulation: crops cut by explicit index ranges, resized one by one."""
    from torch.nn import functional as F

    from fer_utils.data.augment import TENCROP_SIDE, test_time_views
    x = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    views = test_time_views(x, "tencrop")
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    h, w = round(TENCROP_SIDE * 48), round(TENCROP_SIDE * 40)
    assert (h, w) == (43, 36)
    naive = []
    for top, left in [(0, 0), (0, 4), (5, 0), (5, 4), (2, 2)]:
        crop = x[:, :, top:top + h, left:left + w]
        naive.append(F.interpolate(crop, size=(48, 40), mode="bilinear", align_corners=False))
    for got, want in zip(views, naive + [torch.flip(v, dims=[3]) for v in naive]):
        torch.testing.assert_close(got, want)
    # a constant image looks the same in every view
    flat = torch.full((1, 1, 48, 48), 0.3)
    assert all(torch.allclose(v, flat) for v in test_time_views(flat, "tencrop"))
    assert len(test_time_views(x, "hflip")) == 2 and test_time_views(x, "none")[0] is x
    with pytest.raises(ValueError, match="unknown tta"):
        test_time_views(x, "twelvecrop")


def test_validation_and_test_average_the_logits_over_the_ten_views():
    """tta: tencrop is a run option like hflip: the evaluation forward pass (validation and
    test share it) returns the mean of the model's logits over the ten views."""
    from fer_utils.config import load_config
    from fer_utils.data.augment import test_time_views
    from fer_utils.models import create_model
    from fer_utils.training.loop import _forward_eval
    cfg = load_config(None, ["tta=tencrop", "model.backbone=resnet18", "data.image_size=32"])
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=8, head="f").eval()
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, _ = _forward_eval(model, x, cfg, torch.device("cpu"))
        want = torch.stack([model(v)[0] for v in test_time_views(x, "tencrop")]).mean(0)
        plain = model(x)[0]
    torch.testing.assert_close(logits, want)
    assert not torch.allclose(logits, plain)


def test_random_erasing_fills_one_rectangle_of_the_drawn_size_per_chosen_image():
    from fer_utils.data.augment import ERASE_VALUE, random_erase_masks
    recipe = AugmentRecipe(erase=0.5, erase_area=(0.05, 0.2))
    masks = random_erase_masks((2000, 1, 48, 48), recipe, torch.Generator().manual_seed(0))[:, 0]
    chosen = masks.flatten(1).any(1)
    assert 0.45 < chosen.float().mean() < 0.55
    for m in masks[chosen][:200]:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        # a filled rectangle: its bounding box is all True
        assert m[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        area = m.sum().item() / 48 ** 2
        assert 0.03 < area < 0.23  # the drawn fraction, up to rounding of the sides
    x = _images(n=64, c=1, size=48)
    out = augment_batch(x, AugmentRecipe(erase=1.0), torch.Generator().manual_seed(3))
    again = random_erase_masks(out.shape, AugmentRecipe(erase=1.0), torch.Generator().manual_seed(3))
    assert torch.equal(out[again], torch.full_like(out[again], ERASE_VALUE))
    assert torch.equal(out[~again], (x.float() / 255)[~again])


@pytest.mark.parametrize("name", ["none", "w", "f", "f_novflip"])
def test_recipes_without_erasing_draw_what_they_drew_before(name):
    # the published runs' augmentation streams must not change: no draws for erase = 0
    g = torch.Generator().manual_seed(0)
    augment_batch(_images(), AUGMENTATIONS[name], g)
    h = torch.Generator().manual_seed(0)
    if AUGMENTATIONS[name].warps:
        random_affine_params(4, AUGMENTATIONS[name], h)
    assert torch.equal(g.get_state(), h.get_state())


def test_a_smaller_output_side_without_warp_is_plain_bilinear_resizing():
    """Progressive resizing: the batch warp sampled at a smaller side, with no random warp,
    is what F.interpolate's bilinear resize (align_corners=False) computes."""
    x = _images(size=48)
    out = augment_batch(x, AUGMENTATIONS["none"], torch.Generator().manual_seed(0), size=32)
    expected = torch.nn.functional.interpolate(x.float() / 255, size=(32, 32), mode="bilinear",
                                               align_corners=False)
    assert out.shape == (4, 3, 32, 32) and torch.allclose(out, expected, atol=1e-5)
    mirrored = augment_batch(x, AugmentRecipe(hflip=1.0), torch.Generator().manual_seed(0), size=32)
    assert torch.allclose(mirrored, expected.flip(-1), atol=1e-5)


def test_output_side_changes_the_size_not_the_random_draws():
    """The same generator state draws the same crop at any output side: sampling the 48 px
    warp at 24 px is (up to resampling) the 48 px warp resized to 24 px. Smooth images, so
    that resampling differences stay small beside a different crop's."""
    x = torch.nn.functional.interpolate(_images(size=6).float(), size=(48, 48), mode="bicubic",
                                        align_corners=False).clamp(0, 255).round().to(torch.uint8)
    full = augment_batch(x, AUGMENTATIONS["w"], torch.Generator().manual_seed(3))
    small = augment_batch(x, AUGMENTATIONS["w"], torch.Generator().manual_seed(3), size=24)
    assert small.shape == (4, 3, 24, 24)
    pooled = torch.nn.functional.avg_pool2d(full, 2)
    assert (small - pooled).abs().mean() < 0.05
    other = augment_batch(x, AUGMENTATIONS["w"], torch.Generator().manual_seed(4), size=24)
    assert (other - pooled).abs().mean() > 2 * (small - pooled).abs().mean()
