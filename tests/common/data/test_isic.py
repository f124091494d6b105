"""ISIC reader: the 2019 one-hot CSV, the 2020 diagnosis mapping, masks, patient-grouped splits and clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import (
    ISIC_2020_DIAGNOSIS_TO_CLASS,
    ISIC_CLASSES,
    ISIC_LAYOUT,
    MELANOMA_INDEX,
    DatasetError,
    DatasetLayoutError,
    ImageFileError,
    check_isic_datalist,
    isic_cases,
    isic_datalist,
)


def _image(path: Path, size: int = 48, channels: int = 3, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    shape = (size, size, channels) if channels > 1 else (size, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path)


def _mask(path: Path, size: int = 48) -> None:
    mask = np.zeros((size, size), np.uint8)
    mask[10:30, 12:34] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)


def _dataset(root: Path, n2019: int = 12, with_2020: bool = True, masks: bool = True) -> Path:
    classes = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "ISIC_2019_Training_GroundTruth.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", *classes])
        for k in range(n2019):
            name = f"ISIC_{k:07d}"
            label = ("MEL", "NV", "BKL")[k % 3]
            w.writerow([name, *(f"{float(c == label):.1f}" for c in classes)])
            _image(root / "ISIC_2019_Training_Input" / f"{name}.jpg", seed=k)
            if masks:
                _mask(root / "masks" / f"{name}_segmentation.png")
    if with_2020:
        with open(root / "ISIC_2020_Training_GroundTruth.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image_name", "patient_id", "sex", "age_approx", "anatom_site_general_challenge",
                        "diagnosis", "benign_malignant", "target"])  # fmt: skip
            for k, diagnosis in enumerate(["melanoma", "nevus", "unknown", "solar lentigo", "unknown", "nevus"]):
                name = f"ISIC_{100 + k:07d}"
                w.writerow([name, f"IP_{k // 2}", "male", 50, "torso", diagnosis, "benign", 0])
                _image(root / "ISIC_2020_Training_JPEG" / "train" / f"{name}.jpg", seed=100 + k)
                if masks:
                    _mask(root / "masks" / f"{name}_segmentation.png")
    return root


def test_reads_2019_and_maps_2020(tmp_path: Path):
    items = isic_cases(_dataset(tmp_path))
    assert len(items) == 18 and all("mask" in i for i in items)
    by_case = {i["case"]: i for i in items}
    assert by_case["ISIC_0000000"]["label"] == MELANOMA_INDEX == ISIC_CLASSES.index("MEL")
    assert by_case["ISIC_0000100"]["label"] == ISIC_CLASSES.index("MEL")
    assert by_case["ISIC_0000102"]["label"] == ISIC_CLASSES.index("UNK")
    assert by_case["ISIC_0000103"]["label"] == ISIC_CLASSES.index("BKL")
    assert by_case["ISIC_0000100"]["group"] == by_case["ISIC_0000101"]["group"] == "IP_0"
    assert ISIC_2020_DIAGNOSIS_TO_CLASS["melanoma"] == "MEL" and "ISIC_2019_Training_Input" in ISIC_LAYOUT


def test_splits_are_disjoint_cover_everything_and_keep_patients_together(tmp_path: Path):
    root = _dataset(tmp_path)
    parts = {s: isic_datalist(root, s, seed=3) for s in ("train", "val", "test")}
    names = [{i["case"] for i in p} for p in parts.values()]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert set().union(*names) == {i["case"] for i in isic_datalist(root, "all")}
    for part in parts.values():
        patients = {i["group"] for i in part if str(i["group"]).startswith("IP_")}
        for other in parts.values():
            if other is not part:
                assert not patients & {i["group"] for i in other}
    assert [i["case"] for i in isic_datalist(root, "train", seed=3)] == [i["case"] for i in parts["train"]]


def test_splits_json_is_honoured_and_checked(tmp_path: Path):
    root = _dataset(tmp_path)
    (root / "splits.json").write_text(json.dumps({"train": ["ISIC_0000000"], "val": [], "test": ["ISIC_0000001"]}))
    assert [i["case"] for i in isic_datalist(root, "test")] == ["ISIC_0000001"]
    (root / "splits.json").write_text(json.dumps({"train": ["ISIC_9999999"], "val": [], "test": []}))
    with pytest.raises(DatasetLayoutError, match="ISIC_9999999"):
        isic_datalist(root, "train")


def test_unknown_class_column_is_named(tmp_path: Path):
    root = _dataset(tmp_path, with_2020=False)
    table = root / "ISIC_2019_Training_GroundTruth.csv"
    table.write_text(table.read_text().replace("VASC", "VASCULAR", 1))
    with pytest.raises(DatasetLayoutError, match=r"unknown class column\(s\) \['VASCULAR'\]") as info:
        isic_cases(root)
    assert str(table) in str(info.value)


def test_row_without_image_is_named_with_its_line(tmp_path: Path):
    root = _dataset(tmp_path, with_2020=False)
    (root / "ISIC_2019_Training_Input" / "ISIC_0000004.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match="line 6: image 'ISIC_0000004' not found"):
        isic_cases(root)


def test_rows_that_are_not_one_hot_and_unknown_diagnoses_are_refused(tmp_path: Path):
    root = _dataset(tmp_path)
    table = root / "ISIC_2020_Training_GroundTruth.csv"
    table.write_text(table.read_text().replace("solar lentigo", "wart"))
    with pytest.raises(DatasetLayoutError, match="diagnosis 'wart' has no class"):
        isic_cases(root)
    table.unlink()
    table = root / "ISIC_2019_Training_GroundTruth.csv"
    lines = table.read_text().splitlines()
    lines[1] = lines[1].replace("0.0", "1.0", 1)
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetLayoutError, match="not one-hot"):
        isic_cases(root)


def test_missing_layout_and_missing_masks(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="holds neither"):
        isic_cases(tmp_path)
    root = _dataset(tmp_path / "d", masks=False)
    assert isic_datalist(root, "all")
    with pytest.raises(DatasetLayoutError, match="have no lesion mask"):
        isic_datalist(root, "all", require_masks=True)
    with pytest.raises(ValueError, match="split must be one of"):
        isic_datalist(root, "holdout")


def test_check_names_bad_images_and_masks(tmp_path: Path):
    root = _dataset(tmp_path, with_2020=False)
    items = isic_datalist(root, "all")
    assert check_isic_datalist(items, progress=False) is items
    with pytest.raises(DatasetError, match="empty"):
        check_isic_datalist([], progress=False)
    first = Path(items[0]["image"])
    _image(first, channels=1)
    with pytest.raises(ImageFileError, match="channel") as info:
        check_isic_datalist(items, progress=False)
    assert str(first) in str(info.value)
    Image.fromarray(np.full((48, 48, 3), 9, np.uint8)).save(first)
    with pytest.raises(ImageFileError, match="constant"):
        check_isic_datalist(items, progress=False)
    _image(first)
    _mask(Path(items[0]["mask"]), size=40)
    with pytest.raises(ImageFileError, match="mask size"):
        check_isic_datalist(items, progress=False)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(items[0]["mask"])
    with pytest.raises(ImageFileError, match="mask is empty"):
        check_isic_datalist(items, progress=False)
