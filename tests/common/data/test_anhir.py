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


def _table(tmp_path, text):
    (tmp_path / "dataset.csv").write_text(text)


def test_datalist_reads_columns_by_name_and_rejects_shifted_rows(tmp_path):
    _pair(tmp_path)
    with_index = anhir_datalist(tmp_path)
    _table(tmp_path, "Source image,Source landmarks,Target image,Target landmarks,status\n"
                     "s.png,s.csv,t.png,t.csv,training\ns.png,s.csv,t.png,missing.csv,evaluation\n")  # fmt: skip
    assert anhir_datalist(tmp_path) == with_index  # ANHIR's leading index column is optional
    _table(
        tmp_path,
        "Source image,Source landmarks,Target image,Target landmarks,status\n0,s.png,s.csv,t.png,t.csv,training\n",
    )
    with pytest.raises(DatasetLayoutError, match=r"dataset.csv: line 2 has 6 values for the 5 columns"):
        anhir_datalist(tmp_path)
    _table(tmp_path, "")
    with pytest.raises(DatasetLayoutError, match="empty"):
        anhir_datalist(tmp_path)


def test_datalist_names_the_missing_column(tmp_path):
    _pair(tmp_path)
    _table(tmp_path, ",Source image,Source landmarks,Target image,status\n0,s.png,s.csv,t.png,training\n")
    assert len(anhir_datalist(tmp_path, "training")) == 1  # landmark columns are needed only to score
    with pytest.raises(DatasetLayoutError, match=r"lacks column\(s\) \['Target landmarks'\]"):
        anhir_datalist(tmp_path, "training", require_landmarks=True)
    _table(tmp_path, ",Source image,Target image\n0,s.png,t.png\n")
    assert len(anhir_datalist(tmp_path)) == 1
    with pytest.raises(DatasetLayoutError, match=r"lacks column\(s\) \['status'\]"):
        anhir_datalist(tmp_path, "evaluation")


def test_datalist_to_score_names_the_status_to_pass_and_every_missing_file(tmp_path):
    _pair(tmp_path)
    # the only evaluation pair has no target landmarks (the real challenge): say which status can be scored
    with pytest.raises(DatasetLayoutError, match=r"missing.csv does not exist.*pass `--status training`"):
        anhir_datalist(tmp_path, "evaluation", require_landmarks=True)
    _table(tmp_path, ",Source image,Source landmarks,Target image,Target landmarks,status\n"
                     "0,s.png,s.csv,t.png,t.csv,training\n1,s.png,s.csv,t.png,t.csv,training\n")  # fmt: skip
    with pytest.raises(
        DatasetLayoutError, match=r"no image pair with status \['evaluation'\].*training: 2.*--status training"
    ):
        anhir_datalist(tmp_path, "evaluation", require_landmarks=True)
    # one listed pair of two cannot be scored: an error naming its file, not one case fewer
    _table(tmp_path, ",Source image,Source landmarks,Target image,Target landmarks,status\n"
                     "0,s.png,s.csv,t.png,t.csv,training\n1,s.png,s.csv,t.png,gone.csv,training\n")  # fmt: skip
    with pytest.raises(ImageFileError, match=r"gone.csv: landmark file listed in .*dataset.csv \(line 3"):
        anhir_datalist(tmp_path, "training", require_landmarks=True)
    assert len(anhir_datalist(tmp_path, "training")) == 2  # inference and training need no target landmarks
    _table(tmp_path, ",Source image,Source landmarks,Target image,Target landmarks,status\n"
                     "0,s.png,s.csv,t.png,t.csv,training\n1,s.png,,t.png,t.csv,training\n")  # fmt: skip
    with pytest.raises(DatasetLayoutError, match=r"line 3: the 'Source landmarks' cell is empty"):
        anhir_datalist(tmp_path, "training", require_landmarks=True)
