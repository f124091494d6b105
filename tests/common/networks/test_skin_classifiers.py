"""Skin classifiers: every family builds, returns the class logits, names an existing Grad-CAM layer; local weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.networks import SKIN_CLASSIFIERS, gradcam_target_layer, load_pretrained_weights, skin_classifier

# one member per family at CPU size (the large variants share the code path)
FAMILIES = ["efficientnet-mini", "resnet-mini", "resnet18", "mobilenet_v2", "efficientnet_v2_s", "vgg16"]


@pytest.mark.parametrize("arch", FAMILIES)
def test_builds_predicts_and_names_its_gradcam_layer(arch: str):
    torch.manual_seed(0)
    network = skin_classifier(arch, num_classes=4, image_size=64).eval()
    size = 64 if arch != "vgg16" else 32
    with torch.no_grad():
        assert network(torch.rand(2, 3, size, size)).shape == (2, 4)
    assert gradcam_target_layer(arch) in dict(network.named_modules())


def test_the_papers_networks_are_listed():
    for arch in ("efficientnet-b3", "resnet152", "resnet50", "vgg16", "resnet18", "mobilenet_v2", "efficientnet_v2_s"):
        assert arch in SKIN_CLASSIFIERS
    with pytest.raises(ValueError, match="unknown classifier"):
        skin_classifier("inception", 9)
    with pytest.raises(ValueError, match="unknown classifier"):
        gradcam_target_layer("inception")
    with pytest.raises(ValueError, match="takes RGB input"):
        skin_classifier("vgg16", 4, in_channels=1)


def test_local_weights_are_copied_where_names_and_shapes_match(tmp_path: Path):
    torch.manual_seed(0)
    source = skin_classifier("resnet-mini", num_classes=9)
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    target = skin_classifier("resnet-mini", num_classes=4, weights_path=str(path))
    assert torch.equal(target.conv1.weight, source.conv1.weight)
    assert target.fc.weight.shape == (4, 128)  # class count differs: kept initialised
    copied = load_pretrained_weights(skin_classifier("resnet-mini", num_classes=4), path)
    assert "conv1.weight" in copied and "fc.weight" not in copied
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_pretrained_weights(target, tmp_path / "missing.pt")
    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no tensor matches"):
        load_pretrained_weights(target, tmp_path / "other.pt")
