"""Tests for synthetic point annotations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from common.transforms.points import PointAnnotationd, sample_point_annotations


def make_label() -> np.ndarray:
    label = np.zeros((32, 40), dtype=np.int64)
    rows, cols = np.indices(label.shape)
    label[(rows - 16) ** 2 + (cols - 14) ** 2 <= 64] = 2  # ring (myocardium-like)
    label[(rows - 16) ** 2 + (cols - 14) ** 2 <= 25] = 3  # disc inside it
    label[4:12, 26:38] = 1  # a rectangle; class 4 is absent
    return label


def test_one_disc_per_present_class_inside_its_mask():
    label = make_label()
    rng = np.random.default_rng(0)
    for _ in range(20):
        points = sample_point_annotations(label, (1, 2, 3, 4), radius=2, rng=rng)
        assert points.dtype == np.int32 and points.shape == label.shape
        assert set(np.unique(points)) == {0, 1, 2, 3}  # absent class 4 and background never annotated
        annotated = points > 0
        np.testing.assert_array_equal(points[annotated], label[annotated])  # clipped to the class masks
        for c in (1, 2, 3):
            _, n_components = ndimage.label(points == c, structure=np.ones((3, 3)))
            assert n_components == 1
            assert 1 <= (points == c).sum() <= 13  # radius-2 disc has 13 pixels


def test_disc_shape_and_radius():
    label = np.ones((9, 9), dtype=np.int64)
    label[0, :] = 0
    centre_only = np.zeros_like(label)
    centre_only[4, 4] = 1  # a one-pixel class mask pins the random centre
    points = sample_point_annotations(centre_only, (1,), radius=3, rng=np.random.default_rng(1))
    assert points.sum() == 1 and points[4, 4] == 1
    points = sample_point_annotations(label, (1,), radius=0, rng=np.random.default_rng(1))
    assert (points > 0).sum() == 1
    big = np.ones((21, 21), dtype=np.int64)
    for seed in range(5):
        points = sample_point_annotations(big, (1,), radius=2, rng=np.random.default_rng(seed))
        r, c = np.argwhere(points == 1).mean(axis=0).round().astype(int)
        if 2 <= r <= 18 and 2 <= c <= 18:  # not clipped by the image border
            assert (points == 1).sum() == 13


def test_float_labels_and_bad_arguments():
    label = make_label().astype(np.float32)
    points = sample_point_annotations(label, (1, 2, 3), rng=np.random.default_rng(0))
    assert set(np.unique(points)) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="positive"):
        sample_point_annotations(label, (0, 1))
    with pytest.raises(ValueError, match="radius"):
        sample_point_annotations(label, (1,), radius=-1)
    with pytest.raises(ValueError, match="2D"):
        sample_point_annotations(label[None], (1,))
    with pytest.raises(ValueError, match="repeat"):
        sample_point_annotations(label, (1, 1))


def test_dictionary_transform_is_deterministic_per_slice():
    label = MetaTensor(torch.as_tensor(make_label()[None], dtype=torch.float32), meta={"filename_or_obj": "p1.nii"})
    transform = PointAnnotationd(keys="label", classes=(1, 2, 3))
    first = transform({"label": label})["points"]
    again = PointAnnotationd(keys="label", classes=(1, 2, 3))({"label": label.clone()})["points"]
    assert isinstance(first, MetaTensor) and first.meta["filename_or_obj"] == "p1.nii"
    assert first.shape == label.shape and first.dtype == label.dtype
    assert torch.equal(first.as_tensor(), first.as_tensor().round())
    assert torch.equal(first.as_tensor(), again.as_tensor())  # same slice -> same points, every epoch and run

    others = [PointAnnotationd(keys="label", seed=s)({"label": label})["points"] for s in (1, 2, 3)]
    assert any(not torch.equal(first.as_tensor(), o.as_tensor()) for o in others)

    shifted = torch.roll(label.as_tensor(), shifts=1, dims=2)  # a different slice gets its own draw
    moved = transform({"label": shifted})["points"]
    assert not torch.equal(torch.roll(first.as_tensor(), 1, dims=2), moved)

    as_numpy = transform({"label": make_label()[None].astype(np.int16)})["points"]
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.int16
    np.testing.assert_array_equal(as_numpy, first.numpy().astype(np.int16))


def test_dictionary_transform_errors():
    with pytest.raises(ValueError, match="exactly one"):
        PointAnnotationd(keys=("label", "seg"))
    with pytest.raises(ValueError, match="seed"):
        PointAnnotationd(seed=-1)
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        PointAnnotationd()({"label": torch.zeros(1, 4, 4, 4)})
    with pytest.raises(KeyError):
        PointAnnotationd()({"image": torch.zeros(1, 4, 4)})
    assert "points" not in PointAnnotationd(allow_missing_keys=True)({"image": torch.zeros(1, 4, 4)})
