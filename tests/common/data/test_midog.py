"""MIDOG layout reader, TIFF checks and region reader (common/data/midog.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from common.data import (
    MIDOG_CATEGORIES,
    MIDOG_LAYOUT,
    MIDOG_SCANNERS,
    DatasetLayoutError,
    ImageFileError,
    TiffRegionReader,
    check_midog_datalist,
    check_tiff,
    load_rgb_tiff,
    midog_datalist,
    midog_scanner,
)


def _write(root: Path, ids=(1, 2, 3, 4, 5, 101, 102), annotations=None, categories=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for i in ids:
        tifffile.imwrite(root / f"{i:03d}.tiff", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), photometric="rgb")
        images.append({"id": i, "file_name": f"{i:03d}.tiff", "width": 60, "height": 40})
    if annotations is None:
        annotations = [
            {"id": 1, "image_id": 1, "bbox": [10, 5, 20, 10], "category_id": 1},
            {"id": 2, "image_id": 1, "bbox": [30, 20, 10, 10], "category_id": 2},
            {"id": 3, "image_id": 101, "bbox": [0, 0, 5, 5], "category_id": 1},
        ]
    categories = categories or [{"id": 1, "name": "mitotic figure"}, {"id": 2, "name": "hard negative"}]
    (root / "MIDOG.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return root


def test_scanner_ranges():
    assert (
        midog_scanner(1) == "hamamatsu_xr"
        and midog_scanner(150) == "aperio_cs2"
        and midog_scanner(200) == "leica_gt450"
    )
    assert set(MIDOG_SCANNERS) == {"hamamatsu_xr", "hamamatsu_s360", "aperio_cs2", "leica_gt450"}
    with pytest.raises(ValueError, match="201"):
        midog_scanner(201)


def test_source_split_by_id_and_target_without_labels(tmp_path):
    root = _write(tmp_path / "midog")
    train = midog_datalist(root, "source", "train")
    val = midog_datalist(root, "source", "val")
    assert [i["image_id"] for i in train] == [1, 2, 3, 4] and [i["image_id"] for i in val] == [5]
    first = train[0]
    assert first["box"].tolist() == [[10, 5, 30, 15]] and first["label"].tolist() == [0]
    assert first["hard_negative_box"].tolist() == [[30, 20, 40, 30]], "hard negatives are kept apart, not a class"
    target = midog_datalist(root, "target", "train", labels=False)
    assert [i["image_id"] for i in target] == [101, 102] and "box" not in target[0]
    assert midog_datalist(root, "target", "test")[0]["box"].shape == (1, 4)
    assert MIDOG_CATEGORIES == ("mitotic figure", "hard negative")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("box_outside", "lies outside the image"),
        ("missing_image", "not found"),
        ("unknown_category", "unknown category"),
        ("no_json", "annotation file does not exist"),
        ("same_scanner", "both"),
    ],
)
def test_bad_layouts_name_the_file(tmp_path, damage, words):
    root = tmp_path / "midog"
    if damage == "box_outside":
        _write(root, annotations=[{"id": 1, "image_id": 1, "bbox": [50, 5, 20, 10], "category_id": 1}])
    elif damage == "unknown_category":
        _write(root, categories=[{"id": 1, "name": "mitotic figure"}, {"id": 2, "name": "tumour"}])
    else:
        _write(root)
    kwargs = {}
    if damage == "missing_image":
        (root / "002.tiff").unlink()
    if damage == "no_json":
        (root / "MIDOG.json").unlink()
    if damage == "same_scanner":
        kwargs = {"target_scanner": "hamamatsu_xr"}
    with pytest.raises(DatasetLayoutError, match=words) as info:
        midog_datalist(root, "source", "train", **kwargs)
    assert str(root) in str(info.value)
    assert "MIDOG.json" in MIDOG_LAYOUT


def test_tiff_checks_and_loading(tmp_path):
    root = _write(tmp_path / "midog")
    items = midog_datalist(root, "source", "all")
    assert check_midog_datalist(items, progress=False) is items
    assert check_tiff(root / "001.tiff") == (40, 60)
    image = load_rgb_tiff(root / "001.tiff")
    assert image.shape == (3, 60, 40) and image.meta["filename_or_obj"].endswith("001.tiff")
    data = (root / "002.tiff").read_bytes()
    (root / "002.tiff").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match="002.tiff: cannot read image"):
        check_midog_datalist(items, progress=False)
    tifffile.imwrite(root / "003.tiff", np.zeros((40, 60), np.uint8))
    with pytest.raises(ImageFileError, match="003.tiff: has 1 channel"):
        check_tiff(root / "003.tiff")
    with pytest.raises(ImageFileError, match="channel"):
        load_rgb_tiff(root / "003.tiff")


@pytest.mark.parametrize("tiled", [True, False])
def test_region_reader_matches_the_whole_image(tmp_path, tiled):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 255, (100, 130, 3), dtype=np.uint8)
    path = tmp_path / "slide.tiff"
    if tiled:
        tifffile.imwrite(path, array, photometric="rgb", tile=(32, 32))
    else:
        tifffile.imwrite(path, array, photometric="rgb", rowsperstrip=7)
    with TiffRegionReader(path) as reader:
        assert reader.shape == (100, 130)
        assert np.array_equal(reader.read(10, 20, 50, 70), array[10:60, 20:90])
        assert np.array_equal(reader.read(90, 120, 64, 64), array[90:, 120:]), "cut at the image border"
