"""CAWE (Eqs. 1-2): MONAI-hook implementation, closed form, and how it differs from Grad-CAM."""

from __future__ import annotations

import pytest
import torch
from monai.visualize import GradCAM

from common.networks import (
    CAWE,
    CAWE_CLASSIFIERS,
    ActivatedClassSum,
    CAWEClassifier,
    cawe_closed_form,
    normalise_by_max,
)


@pytest.fixture(scope="module")
def classifier() -> CAWEClassifier:
    torch.manual_seed(0)
    model = CAWEClassifier("resnet18", num_classes=3).eval()
    with torch.no_grad():
        model.resnet.fc.bias.copy_(torch.tensor([2.0, 1.0, -6.0]))  # classes 0, 1 activated, 2 not
    return model


def test_closed_form_equals_monai_hooks(classifier):
    x = torch.rand(2, 1, 64, 64)
    hooked = CAWE(classifier, "resnet.layer4", threshold=0.5)(x)
    closed = cawe_closed_form(classifier, x, threshold=0.5)
    assert hooked.shape == closed.shape == (2, 1, 64, 64)
    assert torch.allclose(hooked, closed, atol=1e-5)
    assert closed.min() >= 0 and torch.allclose(closed.flatten(1).amax(1), torch.ones(2))


def test_no_activated_class_gives_a_zero_map(classifier):
    x = torch.rand(1, 1, 64, 64)
    assert cawe_closed_form(classifier, x, threshold=0.9999).abs().max() == 0
    assert CAWE(classifier, "resnet.layer4", threshold=0.9999)(x).abs().max() == 0


def test_activated_class_sum_is_the_hooked_score(classifier):
    x = torch.rand(2, 1, 64, 64)
    probs = torch.sigmoid(classifier(x))
    expected = (probs * (probs > 0.5)).sum(1, keepdim=True)
    assert torch.allclose(ActivatedClassSum(classifier, 0.5)(x), expected)


def test_relu_on_gradients_differs_from_grad_cam(classifier):
    # Grad-CAM averages signed gradients of one logit; CAWE keeps only the positive gradients of the activated
    # probabilities' sum: on the same classifier the maps differ
    x = torch.rand(1, 1, 64, 64)
    cawe = CAWE(classifier, "resnet.layer4", threshold=0.5)(x)
    gradcam = GradCAM(classifier, "resnet.layer4", postprocessing=normalise_by_max)(x, class_idx=0)
    assert not torch.allclose(cawe, gradcam, atol=1e-3)


def test_classifier_layouts_and_errors():
    assert set(CAWE_CLASSIFIERS) >= {"resnet18", "resnet50"}
    model = CAWEClassifier("resnet50", num_classes=14)
    assert model(torch.rand(1, 1, 64, 64)).shape == (1, 14)
    assert model.features(torch.rand(1, 1, 64, 64)).shape == (1, 2048, 2, 2)
    with pytest.raises(ValueError, match="unknown CAWE classifier"):
        CAWEClassifier("vgg", 1)


def test_normalise_by_max_keeps_zero_maps():
    maps = torch.stack([torch.zeros(1, 4, 4), torch.full((1, 4, 4), 2.0)])
    out = normalise_by_max(maps)
    assert out[0].abs().max() == 0 and torch.allclose(out[1], torch.ones(1, 4, 4))
