from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from common.data import (
    ANHIR_LAYOUT,
    DatasetError,
    DatasetLayoutError,
    ImageFileError,
    anhir_datalist,
    check_anhir_datalist,
    read_landmarks,
    write_landmarks,
)


def test_landmarks_round_trip_and_errors(tmp_path):
    pts = np.array([[1.5, 2.25], [10.0, 20.0]])
    path = write_landmarks(tmp_path / "a.csv", pts)
    assert np.allclose(read_landmarks(path), pts)
    (tmp_path / "b.csv").write_text("X,Q\n1,2\n")
    with pytest.raises(ImageFileError, match="lacks column"):
        read_landmarks(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text(",X,Y\n0,1,x\n")
    with pytest.raises(ImageFileError, match="non-numeric"):
        read_landmarks(tmp_path / "c.csv")
    with pytest.raises(ImageFileError, match="does not exist"):
        read_landmarks(tmp_path / "none.csv")


def _pair(tmp_path, blank=False):
    rng = np.random.default_rng(0)
    img = np.full((32, 32, 3), 240, np.uint8)
    if not blank:
        img[8:24, 8:24] = rng.integers(0, 150, (16, 16, 3))
    for name in ("s.png", "t.png"):
        Image.fromarray(img).save(tmp_path / name)
    write_landmarks(tmp_path / "s.csv", [[10, 10]])
    write_landmarks(tmp_path / "t.csv", [[11, 11]])
    (tmp_path / "dataset.csv").write_text(
        ",Source image,Source landmarks,Target image,Target landmarks,status\n"
        "0,s.png,s.csv,t.png,t.csv,training\n1,s.png,s.csv,t.png,missing.csv,evaluation\n"
    )


def test_datalist_filters_status_and_landmarks(tmp_path):
    _pair(tmp_path)
    assert len(anhir_datalist(tmp_path)) == 2
    items = anhir_datalist(tmp_path, "evaluation")
    assert "fixed_landmarks" not in items[0] and items[0]["image"].endswith("s.png")
    with pytest.raises(DatasetLayoutError):
        anhir_datalist(tmp_path, "evaluation", require_landmarks=True)
    with pytest.raises(DatasetLayoutError, match="dataset CSV is missing"):
        anhir_datalist(tmp_path / "nowhere")
    assert "dataset.csv" in ANHIR_LAYOUT


def test_check_rejects_blank_grey_and_empty(tmp_path):
    _pair(tmp_path)
    items = anhir_datalist(tmp_path, "training")
    assert check_anhir_datalist(items) is items
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "t.png")
    with pytest.raises(ImageFileError, match="channel"):
        check_anhir_datalist(items)
    _pair(tmp_path, blank=True)
    with pytest.raises(ImageFileError, match="blank"):
        check_anhir_datalist(items)
    with pytest.raises(DatasetError):
        check_anhir_datalist([])
