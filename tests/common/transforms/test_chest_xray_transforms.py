"""Loading chest radiographs in MONAI's detection layout."""

from __future__ import annotations

import numpy as np
import pytest

from common.data import ImageFileError, read_chest_xray, write_chest_xray_sample
from common.transforms import LoadChestXrayd, load_chest_xray


def test_load_dicom_and_jpeg(tmp_path):
    root = write_chest_xray_sample(tmp_path / "s", num_patients=2, num_chexpert=1, image_size=64)
    dicom = next((root / "stage_2_train_images").glob("*.dcm"))
    image = load_chest_xray(dicom)
    assert image.shape == (1, 64, 64)
    assert np.allclose(image[0].numpy().T, read_chest_xray(dicom))  # (W, H): x along the first axis
    assert image.meta["patient_id"] == dicom.stem and image.meta["original_shape"] == [64, 64]
    jpeg = next(root.rglob("*.jpg"))
    out = LoadChestXrayd("image")({"image": str(jpeg)})
    assert out["image"].shape == (1, 64, 64)
    assert LoadChestXrayd("image")({"image": out["image"]})["image"] is out["image"]
    with pytest.raises(ImageFileError, match="does not exist"):
        load_chest_xray(tmp_path / "none.dcm")
