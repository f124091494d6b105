"""EnhancedRetinaNet: Table 1's rows as one switch, the enhancement inside the network, frozen stage networks."""

from __future__ import annotations

import pytest
import torch

from common.networks import (
    ENHANCEMENTS,
    EnhancedRetinaNet,
    make_anchor_generator,
    retinanet_detector,
    scaled_anchor_sizes,
)
from common.transforms import cawe_fusion


def _net(enhancement: str) -> EnhancedRetinaNet:
    torch.manual_seed(0)
    anchors = scaled_anchor_sizes(64)
    return EnhancedRetinaNet(enhancement, "resnet18", classifier="resnet18", cawe_classes=2,
                             colorizer_depth=18, anchor_sizes=anchors, fpn_channels=16)  # fmt: skip


@pytest.mark.parametrize("enhancement", list(ENHANCEMENTS))
def test_every_row_builds_and_returns_head_maps(enhancement):
    net = _net(enhancement).eval()
    with torch.no_grad():
        maps = net(torch.rand(2, 1, 64, 64))
    assert len(maps) == 8 and maps[0].shape == (2, 6, 8, 8)
    assert (net.classifier is not None) == ("cawe" in enhancement)
    assert (net.colorizer is not None) == ("color" in enhancement)


def test_enhancement_is_eq7_of_the_colorization():
    net = _net("color_cawe").eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        expected = cawe_fusion(net.colorizer(x), net.cawe_map(x), net.alpha)
        assert torch.allclose(net.enhance(x), expected)
    baseline = _net("baseline")
    assert torch.equal(baseline.enhance(x), x.repeat(1, 3, 1, 1))
    assert baseline.cawe_map(x).abs().max() == 0


def test_stage_networks_stay_frozen_in_train_mode():
    net = _net("color_cawe").train()
    assert net.detector.training and not net.classifier.training and not net.colorizer.training
    assert not any(p.requires_grad for p in net.classifier.parameters())
    assert any(p.requires_grad for p in net.detector.parameters())


def test_runs_inside_monai_retinanet_detector():
    net = _net("cawe")
    detector = retinanet_detector(net, make_anchor_generator(scaled_anchor_sizes(64)))
    detector.train()
    target = {"box": torch.tensor([[8.0, 8.0, 30.0, 40.0]]), "label": torch.tensor([0])}
    losses = detector([torch.rand(1, 64, 64)], [target])
    assert set(losses) == {detector.cls_key, detector.box_reg_key}


def test_traced_network_matches_eager():
    net = _net("color_cawe").eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(net, x)
        y = torch.rand(2, 1, 64, 64)
        for a, b in zip(net(y), traced(y)):
            assert torch.allclose(a, b, atol=1e-4)


def test_scaled_anchors_and_unknown_row():
    assert scaled_anchor_sizes(512)[0] == [32, 48]
    assert scaled_anchor_sizes(128)[-1] == [64, 96]
    with pytest.raises(ValueError, match="unknown enhancement"):
        EnhancedRetinaNet("medga")
