"""FCOS network, target assignment, losses and detector (common/networks/fcos.py)."""

from __future__ import annotations

import math

import pytest
import torch

from common.networks import (
    FCOS_SCALE_RANGES,
    FCOS_STRIDES,
    FCOSDetector,
    FCOSHead,
    FCOSNetwork,
    TileMerger,
    fcos_losses,
    fcos_points,
    fcos_targets,
)


def test_points_are_cell_centres_x_first():
    (points,) = fcos_points([(2, 3)], [8])
    assert points.shape == (6, 2)
    assert points[0].tolist() == [4.0, 4.0] and points[1].tolist() == [4.0, 12.0] and points[3].tolist() == [12.0, 4.0]


def test_targets_inside_box_centre_sampling_and_scale_range():
    points = fcos_points([(16, 16), (8, 8)], [8, 16])
    boxes = torch.tensor([[40.0, 40.0, 64.0, 64.0]])
    labels, assigned = fcos_targets(points, [8, 16], boxes, torch.tensor([0]), FCOS_SCALE_RANGES[:2], radius=1.5)
    positive = torch.nonzero(labels >= 0).reshape(-1)
    all_points = torch.cat(points)
    assert len(positive) > 0 and (positive < 256).all(), "a 24 px box belongs to P3 only"
    centre = all_points[positive]
    assert ((centre - 52).abs() <= 12).all(), "centre sampling keeps points within 1.5 strides of the centre"
    assert torch.equal(assigned[positive[0]], boxes[0])
    none, _ = fcos_targets(points, [8, 16], torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long))
    assert (none == -1).all()


def test_targets_take_the_smallest_box():
    points = fcos_points([(8, 8)], [8])
    boxes = torch.tensor([[0.0, 0.0, 64.0, 64.0], [24.0, 24.0, 40.0, 40.0]])
    labels, assigned = fcos_targets(points, [8], boxes, torch.tensor([0, 0]), [(0, math.inf)], radius=0)
    inside_small = (torch.cat(points) > 24).all(1) & (torch.cat(points) < 40).all(1)
    assert torch.equal(assigned[inside_small], boxes[1].expand(int(inside_small.sum()), 4))


def test_losses_fall_when_the_prediction_matches():
    points = fcos_points([(4, 4)], [8])
    box = torch.tensor([[8.0, 8.0, 24.0, 24.0]])
    targets = [fcos_targets(points, [8], box, torch.tensor([0]), [(0, math.inf)], radius=0)]
    positive = targets[0][0] >= 0
    p = torch.cat(points)
    good_reg = torch.zeros(1, 5, 4, 4)
    good_reg[0, 0].view(-1)[positive] = (p[positive, 0] - 8) / 8
    good_reg[0, 1].view(-1)[positive] = (p[positive, 1] - 8) / 8
    good_reg[0, 2].view(-1)[positive] = (24 - p[positive, 0]) / 8
    good_reg[0, 3].view(-1)[positive] = (24 - p[positive, 1]) / 8
    good_cls = torch.full((1, 1, 4, 4), -6.0)
    good_cls.view(-1)[positive] = 6.0
    good = fcos_losses([good_cls], [good_reg], targets, points, [8])
    bad = fcos_losses([-good_cls], [torch.zeros(1, 5, 4, 4) + 0.1], targets, points, [8])
    assert good["classification"] < bad["classification"]
    assert good["box_regression"] < 1e-4 < bad["box_regression"]


def test_network_outputs_classification_then_box_maps_and_features():
    net = FCOSNetwork(depth=18, fpn_channels=16, soren=True, head_convs=1).eval()
    assert isinstance(net.head, FCOSHead)
    with torch.no_grad():
        maps = net(torch.randn(2, 3, 128, 96))
        assert len(maps) == 2 * len(FCOS_STRIDES)
        assert [m.shape[1] for m in maps] == [1] * 5 + [5] * 5
        assert maps[0].shape[2:] == (16, 12)
        net.return_features = True
        assert len(net(torch.randn(1, 3, 128, 128))) == 15
    with pytest.raises(ValueError, match="multiple of 8"):
        FCOSNetwork(fpn_channels=12)


def test_detector_trains_detects_and_tiles():
    torch.manual_seed(0)
    detector = FCOSDetector(FCOSNetwork(depth=18, fpn_channels=16, head_convs=1), score_thresh=0.0)
    images = [torch.randn(3, 128, 128), torch.randn(3, 128, 128)]
    targets = [{"box": torch.tensor([[30.0, 40.0, 50.0, 62.0]]), "label": torch.tensor([0])}]
    losses = detector.train()(images, targets, return_features=True)
    total = losses["classification"] + losses["box_regression"] + losses["centerness"]
    total.backward()
    assert len(losses["features"]) == 5 and losses["features"][0].shape[0] == 2, "unlabelled images keep features"
    with pytest.raises(ValueError, match="targets"):
        detector(images)
    detector.eval()
    with torch.no_grad():
        (found,) = detector([torch.randn(3, 100, 90)])
        assert found["box"].shape[1] == 4 and len(found["label_scores"]) == len(found["box"]) <= 100
        assert (found["box"][:, 2] <= 100).all() and (found["box"][:, 3] <= 90).all()
        detector.set_tiling(64, 0.25)
        assert detector.tile_origins((150, 64)) == [(0, 0), (48, 0), (86, 0)]
        (tiled,) = detector([torch.randn(3, 150, 64)], use_inferer=True)
        assert (tiled["box"][:, 2] <= 150).all()
    with pytest.raises(ValueError, match="overlap"):
        detector.set_tiling(64, 1.0)


def test_tile_merger_shifts_and_suppresses_duplicates():
    detector = FCOSDetector(FCOSNetwork(depth=18, fpn_channels=16, head_convs=1), nms_thresh=0.5)
    merger = TileMerger(detector)
    one = {
        "box": torch.tensor([[10.0, 10.0, 30.0, 30.0]]),
        "label": torch.tensor([0]),
        "label_scores": torch.tensor([0.9]),
    }
    merger.add(one, (100, 0))
    two = {
        "box": torch.tensor([[2.0, 10.0, 22.0, 30.0]]),
        "label": torch.tensor([0]),
        "label_scores": torch.tensor([0.8]),
    }
    merger.add(two, (108, 0))  # the same object seen from the next tile
    result = merger.result()
    assert result["box"].tolist() == [[110.0, 10.0, 130.0, 30.0]]
