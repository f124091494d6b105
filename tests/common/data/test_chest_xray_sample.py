"""The chest radiograph phantom sample: deterministic, boxes inside the image, both layouts."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from common.data import chest_xray_phantom, read_rsna_labels, write_chest_xray_sample


def test_phantom_boxes_and_range():
    image, boxes = chest_xray_phantom(np.random.default_rng(1), size=96, num_opacities=2)
    assert image.shape == (96, 96) and 0 <= image.min() and image.max() <= 1
    assert boxes.shape == (2, 4) and (boxes[:, 2] > boxes[:, 0]).all() and (boxes <= 96).all()
    assert chest_xray_phantom(np.random.default_rng(1), size=96)[1].shape == (0, 4)


def test_sample_is_deterministic(tmp_path):
    def digest(root):
        h = hashlib.sha256()
        for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".dcm"):
            h.update(f.read_bytes())
        for f in sorted(root.rglob("*.dcm")):
            import pydicom

            h.update(pydicom.dcmread(f).pixel_array.tobytes())
        return h.hexdigest()

    a = write_chest_xray_sample(tmp_path / "a", seed=3, num_patients=4, num_chexpert=3, image_size=64)
    b = write_chest_xray_sample(tmp_path / "b", seed=3, num_patients=4, num_chexpert=3, image_size=64)
    assert digest(a) == digest(b)
    items = read_rsna_labels(a / "stage_2_train_labels.csv", a / "stage_2_train_images")
    assert len(items) == 4
    with pytest.raises(FileExistsError):  # an existing sample is replaced only with overwrite=True
        write_chest_xray_sample(a, seed=3)
