"""Tests for the point-supervision losses (partial cross-entropy + boundary loss)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from common.losses.point_supervision import BoundaryLoss, PartialCrossEntropyLoss, PointBoundaryLoss


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 8, 9, generator=gen)
    points = torch.zeros(2, 1, 8, 9, dtype=torch.long)
    points[0, 0, 1:3, 1:3] = 1
    points[0, 0, 5, 6] = 3
    points[1, 0, 4:6, 2:5] = 2
    distance = torch.randn(2, 3, 8, 9, generator=gen)
    return logits, points, distance


def test_partial_ce_equals_cross_entropy_on_annotated_pixels():
    logits, points, _ = make_batch()
    loss = PartialCrossEntropyLoss()(logits, points)
    target = points[:, 0]
    mask = target > 0
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[mask], target[mask])
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(F.cross_entropy(logits, target, ignore_index=0), expected)
    torch.testing.assert_close(PartialCrossEntropyLoss()(logits, points.float()), expected)  # float points
    torch.testing.assert_close(PartialCrossEntropyLoss()(logits, points[:, 0]), expected)  # (B, H, W)


def test_partial_ce_without_annotations_is_zero_with_grad():
    logits = torch.randn(2, 4, 5, 5, requires_grad=True)
    loss = PartialCrossEntropyLoss()(logits, torch.zeros(2, 1, 5, 5))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_partial_ce_errors():
    logits, points, _ = make_batch()
    with pytest.raises(ValueError, match="0..3"):
        PartialCrossEntropyLoss()(logits, points * 4)
    with pytest.raises(ValueError, match="does not match"):
        PartialCrossEntropyLoss()(logits, points[:, :, :-1])
    with pytest.raises(ValueError, match="one channel"):
        PartialCrossEntropyLoss()(logits, points.repeat(1, 2, 1, 1))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        PartialCrossEntropyLoss()(logits[0], points)


def test_boundary_loss_value():
    logits, _, distance = make_batch()
    loss = BoundaryLoss(classes=(1, 2, 3))(logits, distance)
    expected = (torch.softmax(logits, 1)[:, 1:] * distance).mean()
    torch.testing.assert_close(loss, expected)
    loss_13 = BoundaryLoss(classes=(3, 1))(logits, distance[:, :2])
    probs = torch.softmax(logits, 1)
    torch.testing.assert_close(loss_13, (torch.stack([probs[:, 3], probs[:, 1]], 1) * distance[:, :2]).mean())


def test_boundary_loss_rewards_mass_in_negative_region():
    distance = torch.ones(1, 1, 6, 6)
    distance[..., 2:4, 2:4] = -1.0  # inside the annotated object
    logits = torch.zeros(1, 2, 6, 6, requires_grad=True)
    loss_fn = BoundaryLoss(classes=(1,))
    loss = loss_fn(logits, distance)
    loss.backward()
    grad = logits.grad[0, 1]
    assert (grad[2:4, 2:4] < 0).all()  # raising class-1 logits inside lowers the loss
    assert (grad[distance[0, 0] > 0] > 0).all()  # raising them outside increases it
    inside = torch.zeros(1, 2, 6, 6)
    inside[0, 1, 2:4, 2:4] = 5.0
    assert loss_fn(inside, distance) < loss_fn(torch.zeros(1, 2, 6, 6), distance)
    outside = torch.zeros(1, 2, 6, 6)
    outside[0, 1, :2] = 5.0
    assert loss_fn(outside, distance) > loss_fn(torch.zeros(1, 2, 6, 6), distance)


def test_boundary_loss_errors():
    logits, _, distance = make_batch()
    with pytest.raises(ValueError, match="K = len"):
        BoundaryLoss(classes=(1, 2))(logits, distance)
    with pytest.raises(ValueError, match="do not fit"):
        BoundaryLoss(classes=(1, 2, 4))(logits, distance)
    with pytest.raises(ValueError, match="positive"):
        BoundaryLoss(classes=(0, 1, 2))
    with pytest.raises(ValueError, match="at least one"):
        BoundaryLoss(classes=())


def test_point_boundary_loss_combines_terms():
    logits, points, distance = make_batch()
    target = {"points": points, "distance": distance}
    ce = PartialCrossEntropyLoss()(logits, points)
    bl = BoundaryLoss((1, 2, 3))(logits, distance)
    torch.testing.assert_close(PointBoundaryLoss(alpha=0.7)(logits, target), ce + 0.7 * bl)
    torch.testing.assert_close(PointBoundaryLoss()(logits, target), ce + bl)
    torch.testing.assert_close(PointBoundaryLoss(alpha=0.0)(logits, {"points": points}), ce)  # points-only baseline
    logits.requires_grad_(True)
    PointBoundaryLoss()(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_point_boundary_loss_errors():
    logits, points, _ = make_batch()
    with pytest.raises(KeyError, match="distance"):
        PointBoundaryLoss(alpha=1.0)(logits, {"points": points})
    with pytest.raises(KeyError, match="points"):
        PointBoundaryLoss(alpha=0.0)(logits, {"distance": points})
    with pytest.raises(ValueError, match="alpha"):
        PointBoundaryLoss(alpha=-0.1)
    with pytest.raises(TypeError, match="mapping"):
        PointBoundaryLoss()(logits, points)
