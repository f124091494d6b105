"""Tests of common.transforms.abcde.

The ABCDE debasing transforms (Bolelli et al., ICPR 2024) on synthetic ellipse lesions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from scipy import ndimage

from common.transforms import (
    ABCDE_VARIANTS,
    ConcealBorders,
    ConcealBordersd,
    DebaseABCDEd,
    FixForegroundRatio,
    FixForegroundRatiod,
    MaskAsImage,
    MaskAsImaged,
    RemoveAsymmetry,
    RemoveAsymmetryd,
    ToGrayscale,
    ToGrayscaled,
)

SIZE = 96


def ellipse(centre=(30.0, 58.0), axes=(10.0, 18.0), size=SIZE, angle=0.0) -> np.ndarray:
    """(1, H, W) float32 {0, 1} mask of a (rotated) ellipse."""
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    t = np.deg2rad(angle)
    dr, dc = rows - centre[0], cols - centre[1]
    u, v = dr * np.cos(t) + dc * np.sin(t), -dr * np.sin(t) + dc * np.cos(t)
    return (((u / axes[0]) ** 2 + (v / axes[1]) ** 2) <= 1.0).astype(np.float32)[None]


def lesion_image(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """(3, H, W) skin-like texture with a darker, two-tone lesion where ``mask`` is set."""
    rng = np.random.default_rng(seed)
    size = mask.shape[-1]
    rows, cols = np.mgrid[:size, :size]
    skin = np.stack([0.85 + 0.05 * np.sin(cols / 5.0), 0.65 + 0.05 * np.cos(rows / 7.0), np.full((size, size), 0.55)])
    lesion = np.stack([0.35 + 0.2 * (cols > size / 2), np.full((size, size), 0.2), 0.15 + 0.1 * (rows > size / 3)])
    image = skin * (1 - mask) + lesion * mask + 0.02 * rng.standard_normal((3, size, size))
    return image.astype(np.float32)


def centroid(mask) -> np.ndarray:
    return np.argwhere(np.asarray(mask)[0] > 0.5).mean(0)


def iou(a, b) -> float:
    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    return float((a & b).sum() / (a | b).sum())


# --------------------------------------------------------------------------------------------- asymmetry


def test_remove_asymmetry_mirror_symmetric_and_centred():
    mask = ellipse(angle=25.0)
    image = lesion_image(mask)
    op = RemoveAsymmetry()
    op.set_random_state(3)
    out, out_mask = op(image, mask)
    assert out.dtype == np.float32 and out.shape == image.shape and out_mask.shape == mask.shape
    assert np.abs(out - out[:, ::-1, :]).max() < 1e-6 and np.abs(out - out[:, :, ::-1]).max() < 1e-6
    assert np.array_equal(out_mask, out_mask[:, ::-1, :]) and np.array_equal(out_mask, out_mask[:, :, ::-1])
    assert set(np.unique(out_mask)) == {0.0, 1.0}
    np.testing.assert_allclose(centroid(out_mask), [(SIZE - 1) / 2] * 2, atol=0.5)
    # the image stays aligned with the mask: the dark lesion is where the output mask is
    inside, outside = out_mask[0] > 0.5, out_mask[0] < 0.5
    assert out[1][inside].mean() < 0.3 < 0.55 < out[1][outside].mean()
    # symmetric about the centre: the lesion is no longer where it was (top-right, off centre)
    assert iou(out_mask, mask) < 0.3


def test_remove_asymmetry_centres_the_lesion_before_mirroring():
    # a fixed angle of 0 and an axis-aligned off-centre ellipse: mirroring its top-right quarter about the centre
    # gives back the same ellipse, centred (far enough from the edges that the reflection holds no lesion copy)
    mask = ellipse(centre=(35.0, 58.0), axes=(12.0, 20.0))
    _, out_mask = RemoveAsymmetry(angle_range=(0.0, 0.0))(lesion_image(mask), mask)
    centred = ellipse(centre=((SIZE - 1) / 2, (SIZE - 1) / 2), axes=(12.0, 20.0))
    assert iou(out_mask, centred) > 0.9
    # rotated by 90 degrees the long axis becomes vertical
    _, turned = RemoveAsymmetry(angle_range=(90.0, 90.0))(lesion_image(mask), mask)
    assert iou(turned, ellipse(centre=((SIZE - 1) / 2,) * 2, axes=(20.0, 12.0))) > 0.85  # half-pixel rounding
    rows, cols = np.nonzero(turned[0])
    assert abs((rows.max() - rows.min() + 1) - 41) <= 4 and abs((cols.max() - cols.min() + 1) - 25) <= 4


def test_remove_asymmetry_seed_determinism_and_randomness():
    mask, image = ellipse(angle=10.0), lesion_image(ellipse(angle=10.0))
    a = RemoveAsymmetry().set_random_state(11)(image, mask)
    b = RemoveAsymmetry().set_random_state(11)(image, mask)
    c = RemoveAsymmetry().set_random_state(12)(image, mask)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])
    op = RemoveAsymmetry(angle_range=(30.0, 60.0)).set_random_state(0)
    angles = []
    for _ in range(20):
        op(image, mask)
        angles.append(op.angle)
    assert 30.0 <= min(angles) < max(angles) <= 60.0


def test_remove_asymmetry_types_and_dict_twin():
    mask = ellipse(angle=40.0)
    image = lesion_image(mask)
    expected = RemoveAsymmetry().set_random_state(5)(image, mask)
    meta_image = MetaTensor(torch.from_numpy(image).double(), meta={"filename_or_obj": "ISIC_0000001.jpg"})
    out, out_mask = RemoveAsymmetry().set_random_state(5)(meta_image, torch.from_numpy(mask * 255))
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "ISIC_0000001.jpg"
    assert out.dtype == torch.float32 and type(out_mask) is torch.Tensor and out_mask.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected[0], atol=1e-5)
    np.testing.assert_array_equal(out_mask.numpy(), expected[1])
    twin = RemoveAsymmetryd(keys=["image", "other"], mask_key="seg").set_random_state(5)
    d = twin({"image": image, "other": image.copy(), "seg": mask, "label": 1})
    np.testing.assert_allclose(d["image"], expected[0], atol=1e-6)
    np.testing.assert_allclose(d["other"], expected[0], atol=1e-6)  # one angle for every key of a sample
    np.testing.assert_array_equal(d["seg"], expected[1])
    assert d["label"] == 1


# --------------------------------------------------------------------------------------------- borders


def test_conceal_borders_darkens_contour_only():
    mask = ellipse(centre=(47.5, 47.5), axes=(25.0, 32.0), angle=20.0)
    image = lesion_image(mask)
    out = ConcealBorders(width_factor=0.1, sigma_factor=0.5)(image, mask)
    assert out.dtype == np.float32 and out.shape == image.shape
    binary = mask[0] > 0.5
    contour = binary & ~ndimage.binary_erosion(binary)
    assert np.all(out[:, contour] <= 0.05 * image[:, contour] + 1e-6)
    radius = 0.1 * np.sqrt(binary.sum())
    distance = ndimage.distance_transform_edt(~contour)
    far = distance > radius + 4 * 0.5 * radius + 2  # beyond the dilation plus the Gaussian's support
    assert (far & binary).any() and (far & ~binary).any()  # far inside and far outside both exist
    np.testing.assert_allclose(out[:, far], image[:, far], atol=1e-5)
    # the band grows with the lesion (radius ~ sqrt(lesion area))
    small = ellipse(centre=(47.5, 47.5), axes=(8.0, 10.0))
    band_small, band_large = ConcealBorders().band(small), ConcealBorders().band(mask)
    assert (band_large > 0.5).sum() > 2 * (band_small > 0.5).sum()
    assert band_large.max() == pytest.approx(1.0)


def test_conceal_borders_fill_types_and_dict_twin():
    mask = ellipse()
    image = lesion_image(mask)
    white = ConcealBorders(fill_value=1.0)(image, mask)
    contour = (mask[0] > 0.5) & ~ndimage.binary_erosion(mask[0] > 0.5)
    np.testing.assert_allclose(white[:, contour], 1.0, atol=0.05)
    expected = ConcealBorders()(image, mask)
    out = ConcealBorders()(torch.from_numpy(image), mask)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    d = ConcealBordersd(keys="image", mask_key="mask")({"image": image, "mask": mask})
    np.testing.assert_allclose(d["image"], expected, atol=1e-6)
    assert d["mask"] is mask
    full = np.ones((1, 16, 16), np.float32)  # a lesion filling the image has no contour to hide
    np.testing.assert_array_equal(ConcealBorders()(np.full((3, 16, 16), 0.5, np.float32), full), 0.5)


# --------------------------------------------------------------------------------------------- colour


def test_to_grayscale_luma_and_channels():
    image = np.zeros((3, 4, 4), np.float32)
    image[0, 0, 0], image[1, 0, 1], image[2, 0, 2] = 1.0, 1.0, 1.0
    image[:, 1, :] = 0.5
    out = ToGrayscale()(image)
    assert out.shape == (3, 4, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_allclose(out[0, 0, :3], [0.299, 0.587, 0.114], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], 0.5, atol=1e-6)
    rgb = lesion_image(ellipse())
    manual = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    out_t = ToGrayscale()(torch.from_numpy(rgb))
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), np.stack([manual] * 3), atol=1e-5)
    single = np.random.default_rng(0).random((1, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(ToGrayscale()(single), single)
    with pytest.raises(ValueError, match="4 channels"):
        ToGrayscale()(np.zeros((4, 5, 5), np.float32))
    d = ToGrayscaled(keys="image")({"image": rgb})  # needs no mask
    np.testing.assert_allclose(d["image"], ToGrayscale()(rgb))


def test_mask_as_image():
    mask = ellipse()
    image = lesion_image(mask)
    out = MaskAsImage()(image, mask * 255)
    assert out.shape == image.shape and out.dtype == np.float32
    for channel in out:
        np.testing.assert_array_equal(channel, mask[0])
    np.testing.assert_array_equal(MaskAsImage(foreground_value=255.0)(image * 255, mask)[1], mask[0] * 255)
    np.testing.assert_allclose(MaskAsImage(foreground_value=None)(image, mask)[2], mask[0] * image.max())
    out_t = MaskAsImage()(MetaTensor(torch.from_numpy(image)), torch.from_numpy(mask))
    assert isinstance(out_t, MetaTensor) and out_t.dtype == torch.float32
    d = MaskAsImaged(keys="image", mask_key="mask")({"image": image, "mask": mask})
    np.testing.assert_array_equal(d["image"], out)


# --------------------------------------------------------------------------------------------- diameter


@pytest.mark.parametrize(
    ("centre", "axes", "mode"),
    [((30.0, 60.0), (9.0, 9.5), "crop"), ((82.0, 12.0), (6.0, 6.0), "crop"), ((47.5, 47.5), (58.0, 60.0), "pad")],
)
def test_fix_foreground_ratio_reaches_target(centre, axes, mode):
    mask = ellipse(centre=centre, axes=axes)
    ratio_in = mask.mean()
    assert (ratio_in < 0.5) if mode == "crop" else (ratio_in > 0.9)
    image = lesion_image(mask)
    for target in (0.8, 0.5):
        out, out_mask = FixForegroundRatio(target=target)(image, mask)
        assert out.shape == image.shape and out.dtype == np.float32 and out_mask.shape == mask.shape
        assert abs(float(out_mask.mean()) - target) <= 0.05
        inside, outside = out_mask[0] > 0.5, out_mask[0] < 0.5
        if mode == "crop":  # image and mask stay aligned (with padding the reflected lesion is unlabelled)
            assert out[1][inside].mean() < 0.3 < 0.55 < out[1][outside].mean()


def test_fix_foreground_ratio_crop_is_centred_and_reflect_option():
    mask = ellipse(centre=(40.0, 50.0), axes=(8.0, 8.0))
    _, out_mask = FixForegroundRatio()(lesion_image(mask), mask)
    np.testing.assert_allclose(centroid(out_mask), [(SIZE - 1) / 2] * 2, atol=2.0)
    big = ellipse(centre=(47.5, 47.5), axes=(58.0, 60.0))
    _, reflected = FixForegroundRatio(mask_padding="reflect")(lesion_image(big), big)
    assert reflected.mean() > 0.85  # a lesion touching the edge reflects into the padding
    with pytest.raises(ValueError, match="mask_padding"):
        FixForegroundRatio(mask_padding="edge")
    with pytest.raises(ValueError, match="target"):
        FixForegroundRatio(target=1.5)


def test_fix_foreground_ratio_types_and_dict_twin():
    mask = ellipse()
    image = lesion_image(mask)
    expected = FixForegroundRatio()(image, mask)
    out, out_mask = FixForegroundRatio()(MetaTensor(torch.from_numpy(image)), MetaTensor(torch.from_numpy(mask)))
    assert isinstance(out, MetaTensor) and isinstance(out_mask, MetaTensor)
    np.testing.assert_allclose(out.numpy(), expected[0], atol=1e-6)
    d = FixForegroundRatiod(keys="image", mask_key="mask")({"image": image, "mask": mask})
    np.testing.assert_allclose(d["image"], expected[0], atol=1e-6)
    np.testing.assert_array_equal(d["mask"], expected[1])


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("op", [RemoveAsymmetry(), ConcealBorders(), MaskAsImage(), FixForegroundRatio()])
def test_errors_name_the_problem(op):
    image = lesion_image(ellipse())
    with pytest.raises(ValueError, match=r"spatial shape \(64, 64\).*\(96, 96\)"):
        op(image, np.ones((1, 64, 64), np.float32))
    with pytest.raises(ValueError, match="empty lesion mask.*lesion_17.png"):
        op(image, MetaTensor(torch.zeros(1, SIZE, SIZE), meta={"filename_or_obj": "lesion_17.png"}))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        op(image[0], ellipse())
    with pytest.raises(ValueError, match="mask"):
        op(image, np.ones((3, SIZE, SIZE), np.float32))


# --------------------------------------------------------------------------------------------- dispatcher


def test_debase_dispatches_to_each_variant():
    mask = ellipse(angle=30.0)
    image = lesion_image(mask)
    data = {"image": image, "mask": mask}
    expected = {
        "original": image,
        "asymmetry": RemoveAsymmetryd().set_random_state(9)(data)["image"],
        "borders": ConcealBordersd()(data)["image"],
        "grayscale": ToGrayscaled()(data)["image"],
        "mask": MaskAsImaged()(data)["image"],
        "diameter": FixForegroundRatiod()(data)["image"],
    }
    assert tuple(expected) == ABCDE_VARIANTS
    outputs = []
    for variant in ABCDE_VARIANTS:
        out = DebaseABCDEd(keys="image", mask_key="mask", variant=variant).set_random_state(9)(data)
        np.testing.assert_allclose(out["image"], expected[variant], atol=1e-6)
        assert out["image"].shape == image.shape and out["image"].dtype == np.float32
        outputs.append(out["image"])
    for i in range(len(outputs)):  # each variant changes the image differently
        for j in range(i + 1, len(outputs)):
            assert not np.allclose(outputs[i], outputs[j])


def test_debase_mask_optional_for_original_and_grayscale_and_errors():
    image = lesion_image(ellipse())
    assert DebaseABCDEd(variant="original")({"image": image})["image"] is image
    np.testing.assert_allclose(DebaseABCDEd(variant="grayscale")({"image": image})["image"], ToGrayscale()(image))
    for variant in ("asymmetry", "borders", "mask", "diameter"):
        with pytest.raises(KeyError, match="mask key 'mask' is missing"):
            DebaseABCDEd(variant=variant)({"image": image})
    with pytest.raises(ValueError, match="original.*asymmetry.*borders.*grayscale.*mask.*diameter"):
        DebaseABCDEd(variant="colour")


def test_debase_random_state_through_compose():
    mask = ellipse(angle=-20.0)
    data = {"image": lesion_image(mask), "mask": mask}

    def run(seed):
        pipeline = Compose([DebaseABCDEd(keys="image", mask_key="mask", variant="asymmetry")])
        pipeline.set_random_state(seed)
        return pipeline(dict(data))

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
    assert not np.allclose(a["image"], c["image"])
