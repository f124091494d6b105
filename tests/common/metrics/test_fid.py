"""Tests of common.metrics.fid: the Fréchet distance (paper Eq. 9) and its feature extractors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from common.metrics import (
    fid_between_folders,
    frechet_distance,
    image_features,
    inception_feature_extractor,
    random_feature_extractor,
)


def _eq9_with_sqrtm(a: np.ndarray, b: np.ndarray) -> float:
    """Eq. 9 written literally with scipy's matrix square root (reference for well-conditioned inputs)."""
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root))


def test_frechet_distance_matches_eq9_and_monai():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) * 0.5 + 1.0
    value = frechet_distance(a, b)
    assert value == pytest.approx(_eq9_with_sqrtm(a, b), rel=1e-6)
    from monai.metrics import FIDMetric

    monai_value = float(FIDMetric()(torch.from_numpy(a).double(), torch.from_numpy(b).double()))
    assert value == pytest.approx(monai_value, rel=1e-3)
    # closed form for Gaussians with equal covariance: the squared mean difference
    assert frechet_distance(a, a + 2.0) == pytest.approx(4.0 * 6, rel=1e-9)


def test_identical_sets_score_zero_and_shift_increases_fid():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 64))  # fewer samples than dimensions: rank-deficient covariances stay stable
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    values = [frechet_distance(a, a + shift) for shift in (0.1, 0.5, 1.0)]
    assert values[0] < values[1] < values[2]
    assert frechet_distance(torch.from_numpy(a), a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="dimensions"):
        frechet_distance(a, a[:, :10])
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(a[:1], a)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((3, 2), np.nan), a[:, :2])


def test_random_extractor_fid_tracks_image_shift():
    torch.manual_seed(0)
    images = torch.rand(24, 3, 32, 32) * 0.5 + 0.25
    features = image_features(images)
    assert features.shape == (24, 128) and features.dtype == np.float64
    # fixed and seeded: the same features on a second call, different with another seed
    assert np.array_equal(features, image_features(images, extractor=random_feature_extractor(seed=0)))
    assert not np.allclose(features, image_features(images, extractor=random_feature_extractor(seed=1)))
    assert frechet_distance(features, image_features(images)) == pytest.approx(0.0, abs=1e-9)
    shifted = [frechet_distance(features, image_features((images + s).clamp(0, 1))) for s in (0.05, 0.15, 0.25)]
    assert 0 < shifted[0] < shifted[1] < shifted[2]
    assert image_features(images[:, :1]).shape == (24, 128)  # grey images are repeated to RGB
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_features(images * 3)
    with pytest.raises(ValueError, match="multiple of 8"):
        random_feature_extractor(dim=6)


def test_inception_extractor_loads_local_weights_only(tmp_path):
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    reference = inception_v3(weights=None, aux_logits=True, init_weights=False).eval()
    path = tmp_path / "inception.pt"
    torch.save(reference.state_dict(), path)  # includes AuxLogits.* and fc.*, which are dropped
    extractor = inception_feature_extractor(path)
    images = torch.rand(2, 3, 40, 40)
    features = image_features(images, weights_path=path)
    assert features.shape == (2, 2048)
    with torch.no_grad():
        x = torch.nn.functional.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        reference.fc = torch.nn.Identity()
        expected = reference(x)
    assert np.allclose(features, expected.numpy(), atol=1e-4)
    assert np.allclose(image_features(images, extractor=extractor), features, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        inception_feature_extractor(tmp_path / "missing.pt")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt"):
        inception_feature_extractor(tmp_path / "other.pt")


def test_fid_between_folders(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(60, 180, (12, 40, 40, 3)).astype(np.uint8)
    for name, arrays in (("a", base), ("b", base), ("c", np.clip(base.astype(int) + 60, 0, 255).astype(np.uint8))):
        (tmp_path / name / "sub").mkdir(parents=True)
        for i, array in enumerate(arrays):
            Image.fromarray(array).save(tmp_path / name / "sub" / f"{i}.png")
    same = fid_between_folders(tmp_path / "a", tmp_path / "b", image_size=32)
    assert same == pytest.approx(0.0, abs=1e-8)
    assert fid_between_folders(tmp_path / "a", tmp_path / "c", image_size=32) > 1e-3
    paths = sorted((tmp_path / "a" / "sub").glob("*.png"))
    assert image_features(paths, image_size=32).shape == (12, 128)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="at least two images"):
        fid_between_folders(tmp_path / "a", tmp_path / "empty")
