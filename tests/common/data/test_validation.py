from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from common.data import (
    DatasetError,
    ImageFileError,
    check_datalist,
    check_image,
    check_image_datalist,
    spatial_shape,
)


def _png(path: Path, shape=(16, 16), mode="RGB", value: int | None = None) -> Path:
    size = (*shape, 3) if mode == "RGB" else shape
    data = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8) if value is None else np.full(size, value)
    Image.fromarray(data.astype(np.uint8), mode).save(path)
    return path


def _nii(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def test_check_image_channels_ndim_nan_values(tmp_path: Path):
    rgb, grey = _png(tmp_path / "rgb.png"), _png(tmp_path / "grey.png", mode="L")
    assert check_image(rgb, channels=3, spatial_ndim=2).shape == (16, 16, 3)
    with pytest.raises(ImageFileError, match=r"has 1 channel\(s\), expected 3"):
        check_image(grey, channels=3)
    with pytest.raises(ImageFileError, match="expected a 3D image"):
        check_image(grey, spatial_ndim=3)
    vol = np.ones((4, 4, 4), np.float32)
    vol[0, 0, 0] = np.nan
    with pytest.raises(ImageFileError, match="1 NaN or infinite"):
        check_image(_nii(tmp_path / "nan.nii.gz", vol))
    with pytest.raises(ImageFileError, match=r"label values \[7\] are not allowed"):
        check_image(_nii(tmp_path / "lab.nii.gz", np.full((4, 4, 4), 7, np.uint8)), allowed_values=range(4))


def test_check_datalist_shape_mismatch_and_empty(tmp_path: Path):
    image = _png(tmp_path / "i.png", (16, 16))
    label = _png(tmp_path / "m.png", (16, 12), mode="L")
    with pytest.raises(ImageFileError, match=r"label shape \(16, 12\) differs from its image's shape \(16, 16\)"):
        check_datalist([{"image": str(image), "label": str(label)}], image_channels=3)
    with pytest.raises(DatasetError, match="empty"):
        check_datalist([])
    good = [{"image": str(image), "label": str(_png(tmp_path / "m2.png", (16, 16), mode="L"))}]
    assert check_datalist(good, image_channels=3) is good
    assert check_datalist([{"image": np.zeros((2, 2))}]) is not None  # in-memory arrays are not files: skipped


def test_items_to_check_rejects_an_empty_datalist_and_passes_items_through():
    from common.data.validation import items_to_check

    with pytest.raises(DatasetError, match="no usable regions"):
        items_to_check([], "regions", "checking")
    items = [{"image": f"{i}.png"} for i in range(3)]
    assert list(items_to_check(items, "cases", "checking")) == items
    assert list(items_to_check(items * 10, "cases", "checking", progress=True)) == items * 10


def test_items_to_check_shows_a_bar_only_on_a_terminal(monkeypatch):
    from common.data.validation import items_to_check

    items = [{"image": "a.png"}] * 30
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert items_to_check(items, "cases", "checking", progress=True) is items  # no bar written into a log file
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert items_to_check(items, "cases", "checking", progress=True) is not items


def test_check_image_datalist(tmp_path: Path):
    good = tmp_path / "good.png"
    _png(good, shape=(48, 64), mode="L")
    assert check_image_datalist([{"image": str(good)}, {"image": np.zeros((1, 4, 4))}]) is not None
    cases = {
        "rgb.png": ({"shape": (48, 64), "mode": "RGB"}, "channel"),
        "tiny.png": ({"shape": (40, 16), "mode": "L"}, "below the minimum"),
        "flat.png": ({"shape": (48, 64), "mode": "L", "value": 7}, "constant"),
    }
    for name, (kwargs, words) in cases.items():
        _png(tmp_path / name, **kwargs)
        with pytest.raises(ImageFileError, match=words) as info:
            check_image_datalist([{"image": str(good)}, {"image": str(tmp_path / name)}])
        assert str(tmp_path / name) in str(info.value)
    _png(tmp_path / "rgb_ok.png", shape=(48, 64), mode="RGB")
    check_image_datalist([{"image": str(tmp_path / "rgb_ok.png")}], image_channels=3)
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:50])
    with pytest.raises(ImageFileError, match="cannot read"):
        check_image_datalist([{"image": str(broken)}])
    with pytest.raises(DatasetError, match="empty"):
        check_image_datalist([])


def test_spatial_shape_drops_the_channels_of_raster_images_only():
    assert spatial_shape(np.zeros((5, 7, 3)), "a.png") == (5, 7)
    assert spatial_shape(np.zeros((5, 7, 3)), Path("v.nii.gz")) == (5, 7, 3)
    assert spatial_shape(np.zeros((5, 7)), "a.png") == (5, 7)
