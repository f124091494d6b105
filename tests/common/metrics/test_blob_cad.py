from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.data import calcification_datalist, read_mammogram_dicom, write_calcification_sample
from common.metrics import blob_cluster_cad


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _disc(image: np.ndarray, x: float, y: float, radius: float, amplitude: float) -> None:
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]] + 0.5
    image += amplitude * np.exp(-0.5 * (np.hypot(cols - x, rows - y) / (0.6 * radius)) ** 2)


def _synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A half-ellipse breast on black (with a marker): one 6-spot cluster and 3 isolated specks."""
    rng = np.random.default_rng(0)
    height, width = 240, 160
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    breast = np.hypot(cols / 130, (rows - 120) / 105) <= 1
    image = np.where(breast, 0.3, 0.01) + 0.01 * rng.standard_normal((height, width)) * np.where(breast, 1, 0.3)
    image[6:20, 130:154] = 0.9  # a burnt-in marker label, outside the breast
    cluster = np.array([[60, 100], [66, 96], [71, 103], [63, 108], [57, 93], [69, 111]], float)
    specks = np.array([[40, 40], [95, 150], [30, 180]], float)
    for x, y in np.concatenate([cluster, specks]):
        _disc(image, x, y, 1.5, 0.2)
    box = np.r_[cluster.min(0) - 1.5 - 3, cluster.max(0) + 1.5 + 3]
    return image.astype(np.float32), box, specks


def test_one_cluster_found_and_isolated_specks_ignored():
    image, cluster_box, specks = _synthetic()
    for breast_box in (None, (0, 15, 140, 225)):
        boxes, scores = blob_cluster_cad(image, breast_box=breast_box)
        assert boxes.dtype == np.float32 and scores.dtype == np.float32 and boxes.shape == (len(scores), 4)
        assert len(boxes) == 1, (breast_box, boxes)
        assert _iou(boxes, cluster_box)[0, 0] > 0.3
        for x, y in specks:
            assert not ((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])).any()
        assert scores[0] > 8
    # the value range does not matter (thresholds are in noise units): a 16-bit version gives the same box
    boxes16, _ = blob_cluster_cad(image * 65535.0)
    np.testing.assert_allclose(boxes16, blob_cluster_cad(image)[0], atol=1e-3)
    # with min_spots above the cluster size nothing is left; with 1 every speck is a "cluster"
    assert len(blob_cluster_cad(image, min_spots=7)[0]) == 0
    assert len(blob_cluster_cad(image, min_spots=1)[0]) == 4


def test_empty_and_invalid_inputs():
    boxes, scores = blob_cluster_cad(np.zeros((64, 64), np.float32))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(ValueError, match="2-D"):
        blob_cluster_cad(np.zeros((4, 64, 64)))
    with pytest.raises(ValueError, match="non-finite"):
        blob_cluster_cad(np.full((64, 64), np.nan))
    with pytest.raises(ValueError, match="min_spots"):
        blob_cluster_cad(np.zeros((64, 64)), min_spots=0)
    with pytest.raises(ValueError, match="breast_box"):
        blob_cluster_cad(np.zeros((64, 64)), breast_box=(0, 0, 10))


def test_recall_on_the_calcification_sample(tmp_path: Path, capsys):
    root = write_calcification_sample(tmp_path / "sample", seed=0, progress=False)
    items = [item for split in ("train", "val", "test") for item in calcification_datalist(root, split)]
    found = clusters = false_positives = 0
    for item in items:
        image, _ = read_mammogram_dicom(item["image"])
        boxes, scores = blob_cluster_cad(image)
        assert np.all(np.diff(scores) <= 0)
        clusters += len(item["box"])
        if not len(boxes):
            continue
        if not len(item["box"]):
            false_positives += len(boxes)  # every box on a normal image is a false positive
            continue
        hit = _iou(boxes, item["box"]) >= 0.1  # the paper's cluster criterion
        found += int(hit.any(axis=0).sum())
        false_positives += int((~hit.any(axis=1)).sum())
    recall, fppi = found / clusters, false_positives / len(items)
    with capsys.disabled():
        print(f"\nblob_cluster_cad on the calcification sample (seed 0, {len(items)} images, {clusters} clusters): "
              f"recall {recall:.3f}, {fppi:.3f} false positives per image")  # fmt: skip
    assert recall > 0.5
    assert fppi < 3
