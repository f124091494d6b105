"""Tests of common.metrics.lesion_geometry: the paper's Table 6 no-network scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.metrics import LESION_GEOMETRY_SCORES, lesion_geometry_baselines, lesion_geometry_scores


def box_mask(rows: tuple[int, int], cols: tuple[int, int], size: int = 10, value: float = 1.0) -> np.ndarray:
    mask = np.zeros((1, size, size), np.float32)
    mask[0, rows[0] : rows[1], cols[0] : cols[1]] = value
    return mask


def test_scores_of_known_masks():
    scores = lesion_geometry_scores(box_mask((2, 6), (1, 6)))  # 4 x 5 rectangle in 10 x 10
    assert set(scores) == set(LESION_GEOMETRY_SCORES)
    assert scores == {"foreground_ratio": 0.2, "bbox_ratio": 0.2, "bbox_70": 0.0}
    diagonal = np.eye(10, dtype=np.float32) * 255  # 10 pixels but a full-image bounding box
    assert lesion_geometry_scores(diagonal) == {"foreground_ratio": 0.1, "bbox_ratio": 1.0, "bbox_70": 1.0}
    edge = box_mask((0, 7), (0, 10))  # exactly 70% coverage counts
    assert lesion_geometry_scores(torch.from_numpy(edge))["bbox_70"] == 1.0
    assert lesion_geometry_scores(box_mask((0, 6), (0, 10)))["bbox_70"] == 0.0
    soft = box_mask((2, 6), (1, 6), value=0.9) + 0.1  # probability map: binarised at half its maximum
    assert lesion_geometry_scores(soft)["foreground_ratio"] == pytest.approx(0.2)
    assert lesion_geometry_scores(np.zeros((1, 8, 8))) == dict.fromkeys(LESION_GEOMETRY_SCORES, 0.0)
    with pytest.raises(ValueError, match="shape"):
        lesion_geometry_scores(np.zeros((2, 8, 8)))


def test_baselines_auc():
    # melanomas (1) are the larger lesions: foreground and bbox ratios rank them perfectly
    masks = [box_mask((0, 2), (0, 2)), box_mask((0, 3), (0, 3)), box_mask((0, 9), (0, 9)), box_mask((1, 9), (0, 10))]
    labels = [0, 0, 1, 1]
    auc = lesion_geometry_baselines(masks, labels)
    assert auc == {"foreground_ratio": 1.0, "bbox_ratio": 1.0, "bbox_70": 1.0}
    # a thin diagonal lesion: small area, full bounding box -> the scores disagree
    masks.append(np.eye(10, dtype=np.float32)[None])
    labels.append(0)
    auc = lesion_geometry_baselines(np.stack(masks), labels)
    assert auc["foreground_ratio"] == pytest.approx(1.0)
    assert auc["bbox_ratio"] == pytest.approx(4 / 6)  # the diagonal outranks both melanomas
    assert auc["bbox_70"] == pytest.approx(5 / 6)  # ties with both count one half
    with pytest.raises(ValueError, match="2 masks but 3 labels"):
        lesion_geometry_baselines(masks[:2], [0, 1, 1])
