from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import skimage.data

from common.data import (
    CALCIFICATION_LAYOUT,
    CALCIFICATION_SAMPLE_SOURCES,
    DatasetLayoutError,
    breast_region_box,
    calcification_datalist,
    calcification_phantom,
    read_csv_boxes,
    read_image_size,
    read_mammogram_dicom,
    write_calcification_sample,
)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("calc") / "sample"
    start = time.perf_counter()
    write_calcification_sample(root, seed=0, progress=False)
    print(f"default calcification sample written in {time.perf_counter() - start:.2f} s")
    return root


def _spots(root: Path) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    with open(root / "spots.csv", newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["image"], []).append({k: float(v) for k, v in row.items() if k != "image"})
    return out


def test_layout_is_read_by_read_csv_boxes(sample: Path):
    assert sorted(p.name for p in sample.iterdir()) == ["boxes.csv", "images", "splits.json", "spots.csv"]
    header = (sample / "boxes.csv").read_text().splitlines()[0]
    assert header == "image,x1,y1,x2,y2,label,patient"
    items = read_csv_boxes(sample / "boxes.csv", sample / "images", read_sizes=True)
    assert len(items) == 48 == len(list((sample / "images").glob("*.dcm")))
    normal = [item for item in items if len(item["box"]) == 0]
    assert 0.5 <= len(normal) / len(items) <= 0.75  # mostly normal, as the paper's data
    assert any(len(item["box"]) == 2 for item in items)  # some images hold two clusters
    for item in items:
        name = Path(item["image"]).name
        patient, laterality, view = name[:-4].split("_")
        assert item["patient"] == patient and laterality in ("L", "R") and view in ("CC", "MLO")
        height, width = read_image_size(item["image"])
        assert (height, width) == (320, 200)
        for x1, y1, x2, y2 in item["box"]:
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            assert 12 <= x2 - x1 <= 50 and 12 <= y2 - y1 <= 50
        assert set(item["label"].tolist()) <= {0}
    by_patient: dict[str, set[str]] = {}
    for item in items:
        by_patient.setdefault(item["patient"], set()).add(Path(item["image"]).name.split("_", 1)[1][2:])
    assert len(by_patient) == 24 and all(views == {"CC.dcm", "MLO.dcm"} for views in by_patient.values())


def _contrast(padded: np.ndarray, x: float, y: float) -> float:
    """Peak of the 3x3 pixels at (x, y) minus the median of the 11x11 window (``padded`` by 5 px)."""
    window = padded[int(y) : int(y) + 11, int(x) : int(x) + 11]
    return float(window[4:7, 4:7].max() - np.median(window))


def test_every_box_holds_at_least_four_bright_spots_and_no_distractor(sample: Path):
    spots = _spots(sample)
    items = read_csv_boxes(sample / "boxes.csv", sample / "images")
    visible, total, checked = 0, 0, 0
    for item in items:
        image, meta = read_mammogram_dicom(item["image"])
        padded = np.pad(image / meta["range"][1], 5, mode="reflect")  # display units, high = bright
        listed = spots.get(Path(item["image"]).name, [])
        assert any(s["cluster"] == -1 for s in listed)  # distractor specks on every image, normal or not
        # a speck is bright in the file where spots.csv says: its local contrast reaches 40 % of its amplitude
        # (a faint speck in a dip of the texture may not: a few per cent of them)
        bright = [_contrast(padded, s["x"], s["y"]) > 0.4 * s["amplitude"] for s in listed]
        visible, total = visible + sum(bright), total + len(bright)
        for k, (x1, y1, x2, y2) in enumerate(item["box"]):
            members = [i for i, s in enumerate(listed) if s["cluster"] == k]
            assert 4 <= len(members) <= 12
            assert sum(bright[i] for i in members) >= 4, (item["image"], k)
            for s in (listed[i] for i in members):
                assert x1 <= s["x"] - s["radius"] and s["x"] + s["radius"] <= x2
                assert y1 <= s["y"] - s["radius"] and s["y"] + s["radius"] <= y2
            for s in listed:
                if s["cluster"] == -1:
                    assert not (x1 <= s["x"] <= x2 and y1 <= s["y"] <= y2)
            checked += 1
    assert checked >= 15 and visible / total > 0.97


def test_both_photometric_interpretations_read_high_is_bright(sample: Path):
    seen = {}
    for path in sorted((sample / "images").glob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        seen.setdefault(str(ds.PhotometricInterpretation), path)
        assert ds.Modality == "MG" and ds.ImageLaterality in ("L", "R") and ds.PatientID == path.name.split("_")[0]
    assert set(seen) == {"MONOCHROME1", "MONOCHROME2"}
    for path in seen.values():
        image, meta = read_mammogram_dicom(path)
        x1, y1, x2, y2 = breast_region_box(image)
        breast = image[y1:y2, x1:x2]
        assert np.median(breast) > 0.15 * meta["range"][1]
        assert np.percentile(image, 5) < 0.03 * meta["range"][1]  # background near 0 outside the breast


def test_writing_is_deterministic_and_overwrite_is_explicit(sample: Path, tmp_path: Path):
    again = write_calcification_sample(tmp_path / "again", seed=0, progress=False)
    assert _hashes(again) == _hashes(sample)
    with pytest.raises(FileExistsError):
        write_calcification_sample(again, seed=0, progress=False)
    write_calcification_sample(again, seed=0, overwrite=True, progress=False)
    assert _hashes(again) == _hashes(sample)
    other = write_calcification_sample(tmp_path / "other", seed=1, num_patients=4, progress=False)
    assert (other / "boxes.csv").read_text() != (sample / "boxes.csv").read_text()
    # patients are drawn independently: the first 4 of a 4-patient sample are those of the 24-patient one
    small = write_calcification_sample(tmp_path / "small", seed=0, num_patients=4, progress=False)
    assert len(list((small / "images").glob("*.dcm"))) == 8
    for path in (small / "images").glob("*.dcm"):
        assert path.read_bytes() == (sample / "images" / path.name).read_bytes()


def test_splits_are_patient_level_and_disjoint(sample: Path):
    splits = json.loads((sample / "splits.json").read_text())
    assert sorted(splits) == ["test", "train", "val"]
    sizes = [len(splits[k]) for k in ("train", "val", "test")]  # 70/10/20, rounded within positives and normals
    assert 16 <= sizes[0] <= 18 and 2 <= sizes[1] <= 3 and 4 <= sizes[2] <= 6, sizes
    everyone = [p for patients in splits.values() for p in patients]
    assert len(everyone) == len(set(everyone)) == 24
    images = set()
    for name, patients in splits.items():
        items = calcification_datalist(sample, name)
        assert {item["patient"] for item in items} == set(patients)
        assert len(items) == 2 * len(patients)
        assert any(len(item["box"]) for item in items)  # every split holds positive images
        images |= {item["image"] for item in items}
    assert len(images) == 48


def test_datalist_errors_name_the_file(sample: Path, tmp_path: Path):
    root = tmp_path / "copy"
    root.mkdir()
    (root / "images").symlink_to(sample / "images")
    (root / "boxes.csv").write_text((sample / "boxes.csv").read_text())
    with pytest.raises(DatasetLayoutError, match="splits.json: split file does not exist") as err:
        calcification_datalist(root, "train")
    assert CALCIFICATION_LAYOUT.splitlines()[1].strip() in str(err.value)
    splits = json.loads((sample / "splits.json").read_text())
    (root / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(DatasetLayoutError, match=r"splits.json: has no split 'validation' \(keys"):
        calcification_datalist(root, "validation")
    (root / "splits.json").write_text(json.dumps({**splits, "test": [*splits["test"], "P999"]}))
    with pytest.raises(DatasetLayoutError, match=r"splits.json: 1 patient\(s\) not in boxes.csv: \['P999'\]"):
        calcification_datalist(root, "train")
    (root / "splits.json").write_text(json.dumps({**splits, "val": [*splits["val"], splits["train"][0]]}))
    with pytest.raises(DatasetLayoutError, match="splits.json: patient 'P.*' is in both 'train' and 'val'"):
        calcification_datalist(root, "train")
    (root / "splits.json").write_text(json.dumps({"train": "P001"}))
    with pytest.raises(DatasetLayoutError, match="mapping split names to lists"):
        calcification_datalist(root, "train")
    (root / "splits.json").write_text(json.dumps(splits))
    lines = (sample / "boxes.csv").read_text().splitlines()
    (root / "boxes.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    with pytest.raises(DatasetLayoutError, match="boxes.csv: image 'P001_.*' has no patient"):
        calcification_datalist(root, "train")


def test_phantom_content_and_argument_checks():
    assert all(callable(getattr(skimage.data, name)) for name in CALCIFICATION_SAMPLE_SOURCES)
    rng = np.random.default_rng(3)
    image, boxes, info = calcification_phantom(rng, "R", "MLO", (320, 200), num_clusters=2, marker=True)
    assert image.shape == (320, 200) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    assert boxes.shape == (2, 4) and len(info["clusters"]) == 2 and info["marker"]
    mask = info["breast_mask"]
    assert mask[:, -1].any() and not mask[:, 0].any()  # right breast: chest wall at the right edge
    assert np.median(image[~mask]) < 0.03 and np.median(image[mask]) > 0.2
    x1, y1, x2, y2 = breast_region_box(image)  # the marker (top or bottom left corner) is not the breast
    assert x1 >= np.flatnonzero(mask.any(axis=0))[0] - 1
    for box, spots in zip(boxes, info["clusters"]):
        assert 4 <= len(spots) <= 12 and np.all((spots[:, 2] >= 1) & (spots[:, 2] <= 2))
        extent = [(spots[:, 0] - spots[:, 2]).min() - 3, (spots[:, 1] - spots[:, 2]).min() - 3,
                  (spots[:, 0] + spots[:, 2]).max() + 3, (spots[:, 1] + spots[:, 2]).max() + 3]  # fmt: skip
        np.testing.assert_allclose(box, np.clip(extent, 0, [200, 320, 200, 320]), atol=1e-4)
    every = np.concatenate([*info["clusters"], info["distractors"]])
    for x, y in info["distractors"][:, :2]:
        distances = np.hypot(every[:, 0] - x, every[:, 1] - y)
        assert np.sort(distances)[2] >= 20  # itself and at most one partner (a pair) nearby
    normal, none, _ = calcification_phantom(np.random.default_rng(3), "L", "CC", (160, 100), num_clusters=0)
    assert none.shape == (0, 4) and normal.shape == (160, 100)
    with pytest.raises(ValueError, match="laterality"):
        calcification_phantom(rng, "X")
    with pytest.raises(ValueError, match="view"):
        calcification_phantom(rng, "L", "ML")
    with pytest.raises(ValueError, match="image_size"):
        calcification_phantom(rng, "L", "CC", (64, 64))
    with pytest.raises(ValueError, match="num_patients"):
        write_calcification_sample("unused", num_patients=2)
