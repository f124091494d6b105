"""Eq. 7 fusion transform and its dictionary twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.transforms import CAWEFusion, CAWEFusiond, cawe_fusion


def test_fusion_formula_on_colour_and_grey():
    image = torch.rand(3, 4, 5)
    weights = torch.rand(1, 4, 5)
    out = CAWEFusion(alpha=0.3)(image, weights)
    assert torch.allclose(out, 0.3 * image + 0.7 * weights * image)
    grey = np.random.default_rng(0).random((1, 4, 5))
    assert np.allclose(cawe_fusion(grey, np.ones((1, 4, 5))), grey)  # L = 1 everywhere keeps the image
    assert np.allclose(cawe_fusion(grey, np.zeros((1, 4, 5)), 0.5), 0.5 * grey)


def test_alpha_and_shape_checks():
    with pytest.raises(ValueError, match="alpha"):
        CAWEFusion(alpha=1.5)
    with pytest.raises(ValueError, match="does not match"):
        cawe_fusion(torch.rand(1, 4, 5), torch.rand(1, 4, 4))


def test_dictionary_twin():
    data = {"image": torch.rand(3, 4, 4), "cawe": torch.rand(1, 4, 4)}
    out = CAWEFusiond("image", weight_key="cawe", alpha=0.5)(data)
    assert torch.allclose(out["image"], cawe_fusion(data["image"], data["cawe"], 0.5))
    with pytest.raises(KeyError, match="no CAWE map"):
        CAWEFusiond("image")({"image": torch.rand(1, 2, 2)})
