"""RSNA Pneumonia Detection and CheXpert readers: layouts, splits and clear errors naming the file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from common.data import (
    CHEXPERT_LAYOUT,
    CHEXPERT_OBSERVATIONS,
    RSNA_LAYOUT,
    RSNA_SPLIT_FRACTIONS,
    DatasetLayoutError,
    ImageFileError,
    check_chest_xray_datalist,
    chexpert_datalist,
    read_chest_xray,
    read_chexpert_csv,
    read_rsna_labels,
    rsna_datalist,
    write_chest_xray_sample,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_chest_xray_sample(
        tmp_path_factory.mktemp("cxr") / "s", num_patients=12, num_chexpert=10, image_size=64
    )


def _write_rows(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_rsna_rows_group_by_patient(sample, tmp_path):
    image_dir = sample / "stage_2_train_images"
    pids = sorted(p.stem for p in image_dir.glob("*.dcm"))[:2]
    header = ["patientId", "x", "y", "width", "height", "Target"]
    rows = [[pids[0], 1, 2, 10, 20, 1], [pids[1], "", "", "", "", 0], [pids[0], 30, 5, 8, 8, 1]]
    items = read_rsna_labels(_write_rows(tmp_path / "labels.csv", header, rows), image_dir)
    assert [i["patient"] for i in items] == pids
    assert np.allclose(items[0]["box"], [[1, 2, 11, 22], [30, 5, 38, 13]])
    assert items[0]["label"].tolist() == [0, 0] and items[0]["cawe_label"].tolist() == [1.0]
    assert items[1]["box"].shape == (0, 4) and items[1]["cawe_label"].tolist() == [0.0]
    assert "stage_2_train_labels.csv" in RSNA_LAYOUT


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["nobody", "", "", "", "", 0], "has no image"),
        (["FIRST", 50, 50, 40, 40, 1], "outside the image"),
        (["FIRST", "", "", "", "", 1], "needs x, y, width and height"),
        (["FIRST", 1, 1, 2, 2, 2], "Target must be 0 or 1"),
    ],
)
def test_rsna_errors_name_the_csv_and_line(sample, tmp_path, row, message):
    image_dir = sample / "stage_2_train_images"
    first = sorted(p.stem for p in image_dir.glob("*.dcm"))[0]
    row = [first if v == "FIRST" else v for v in row]
    path = _write_rows(tmp_path / "labels.csv", ["patientId", "x", "y", "width", "height", "Target"], [row])
    with pytest.raises(DatasetLayoutError, match=message) as info:
        read_rsna_labels(path, image_dir)
    assert str(path) in str(info.value) and "line 2" in str(info.value)


def test_rsna_split_is_patient_level_and_complete(sample):
    splits = {s: rsna_datalist(sample, s) for s in ("train", "val", "test")}
    patients = [set(i["patient"] for i in items) for items in splits.values()]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert sum(map(len, patients)) == len(rsna_datalist(sample, "all")) == 12
    assert sum(RSNA_SPLIT_FRACTIONS) == pytest.approx(1.0)
    with pytest.raises(DatasetLayoutError, match="unknown split"):
        rsna_datalist(sample, "dev")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        rsna_datalist(sample / "missing", "train")


def test_chexpert_uncertain_policy_and_frontal_filter(sample):
    csv_path = sample / "CheXpert-v1.0-small" / "train.csv"
    ones = read_chexpert_csv(csv_path, uncertain="ones")
    zeros = read_chexpert_csv(csv_path, uncertain="zeros")
    assert len(ones) == 10 and ones[0]["cawe_label"].shape == (len(CHEXPERT_OBSERVATIONS),)
    raw = list(csv.DictReader(open(csv_path)))
    uncertain = [k for k, r in enumerate(raw) if "-1.0" in r.values()]
    assert uncertain, "the sample carries uncertain labels"
    assert ones[uncertain[0]]["cawe_label"].sum() > zeros[uncertain[0]]["cawe_label"].sum()
    assert "CheXpert-v1.0-small" in CHEXPERT_LAYOUT
    with pytest.raises(ValueError, match="U-Ones"):
        read_chexpert_csv(csv_path, uncertain="ignore")
    train, val = chexpert_datalist(sample, "train"), chexpert_datalist(sample, "val")
    assert len(train) + len(val) == 10 and not {i["patient"] for i in train} & {i["patient"] for i in val}


def test_chexpert_missing_columns_name_the_csv(sample, tmp_path):
    path = _write_rows(tmp_path / "train.csv", ["Path", "Sex", "Age"], [["a.jpg", "Male", 40]])
    with pytest.raises(DatasetLayoutError, match="lacks the column") as info:
        read_chexpert_csv(path)
    assert str(path) in str(info.value) and "Frontal/Lateral" in str(info.value)


def test_reading_and_checking_images(sample, tmp_path):
    items = rsna_datalist(sample, "all")
    assert check_chest_xray_datalist(items) is items
    image = read_chest_xray(items[0]["image"])
    assert image.shape == (64, 64) and image.dtype == np.float32
    jpeg = next((sample / "CheXpert-v1.0-small").rglob("*.jpg"))
    assert 0 <= read_chest_xray(jpeg).min() and read_chest_xray(jpeg).max() <= 1
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    assert read_chest_xray(tmp_path / "rgb.png").shape == (4, 4)
    # a DICOM without pixels
    ds = pydicom.dcmread(items[0]["image"])
    del ds.PixelData
    broken = tmp_path / "nopixels.dcm"
    ds.save_as(broken)
    with pytest.raises(ImageFileError, match="PixelData") as info:
        check_chest_xray_datalist([{"image": str(broken), "box": np.zeros((0, 4))}])
    assert str(broken) in str(info.value)
    with pytest.raises(ImageFileError, match="outside the image"):
        check_chest_xray_datalist([{"image": items[0]["image"], "box": np.array([[0, 0, 100, 10]])}])
    with pytest.raises(ImageFileError, match="does not exist"):
        read_chest_xray(tmp_path / "none.dcm")
