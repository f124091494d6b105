"""Tests of common.data.sr_tiles: the SR tile layout reader, the file checks and the deterministic sample."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import (
    SR_TILE_LAYOUT,
    DatasetError,
    DatasetLayoutError,
    ImageFileError,
    check_sr_datalist,
    sr_tile_datalist,
    write_sr_tile_sample,
)


def _digest(root: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        sha.update(str(path.relative_to(root)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sr") / "sample"
    write_sr_tile_sample(str(root), tile_size=64, counts=(3, 2, 2), seed=1)
    return root


def test_sample_layout_and_content(sample: Path):
    for split, count in zip(("train", "val", "test"), (3, 2, 2)):
        items = sr_tile_datalist(str(sample), split, require_roi=True)
        assert len(items) == count
        for item in items:
            image = np.asarray(Image.open(item["image"]))
            roi = np.asarray(Image.open(item["roi"]))
            assert image.shape == (64, 64, 3) and image.dtype == np.uint8
            assert roi.shape == (64, 64) and set(np.unique(roi)) <= {0, 255}
            assert image.std() > 5  # real texture, not a flat tile
        check_sr_datalist(items, min_size=64)
    # the immunohistochemistry tiles have nuclei in their ROI
    roi = np.asarray(Image.open(sr_tile_datalist(str(sample), "train")[0]["roi"]))
    assert 0.01 < (roi > 0).mean() < 0.9


def test_sample_is_deterministic_and_seeded(sample: Path, tmp_path: Path):
    again = tmp_path / "again"
    write_sr_tile_sample(str(again), tile_size=64, counts=(3, 2, 2), seed=1)
    assert _digest(again) == _digest(sample)
    other = tmp_path / "other"
    write_sr_tile_sample(str(other), tile_size=64, counts=(3, 2, 2), seed=2)
    assert _digest(other) != _digest(sample)


def test_sample_rejects_bad_arguments(tmp_path: Path):
    with pytest.raises(ValueError, match="tile_size"):
        write_sr_tile_sample(str(tmp_path / "x"), tile_size=16)
    with pytest.raises(ValueError, match="counts"):
        write_sr_tile_sample(str(tmp_path / "x"), counts=(1, 0, 1))
    assert not (tmp_path / "x").exists()


def test_datalist_layout_errors(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="does not exist") as err:
        sr_tile_datalist(str(tmp_path), "train")
    assert "train_roi" in str(err.value) and SR_TILE_LAYOUT.splitlines()[0] in str(err.value)
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "notes.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match="holds no image"):
        sr_tile_datalist(str(tmp_path), "val")
    with pytest.raises(ValueError, match="split"):
        sr_tile_datalist(str(tmp_path), "training")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "val" / "a.tif")
    assert sr_tile_datalist(str(tmp_path), "val") == [{"image": str(tmp_path / "val" / "a.tif")}]
    with pytest.raises(DatasetLayoutError, match="ROI mask of a.tif is missing"):
        sr_tile_datalist(str(tmp_path), "val", require_roi=True)


def test_check_sr_datalist_errors(tmp_path: Path):
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(rgb)
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 40), 100, np.uint8)).save(grey)
    small_roi = tmp_path / "roi.png"
    Image.fromarray(np.zeros((20, 40), np.uint8)).save(small_roi)
    broken = tmp_path / "broken.png"
    broken.write_bytes(rgb.read_bytes()[:50])
    check_sr_datalist([{"image": str(rgb)}, {"image": np.zeros(3)}], min_size=40)
    with pytest.raises(DatasetError, match="empty"):
        check_sr_datalist([], min_size=8)
    with pytest.raises(ImageFileError, match="grey.png: has 1 channel"):
        check_sr_datalist([{"image": str(grey)}], min_size=8)
    with pytest.raises(ImageFileError, match="smaller than the required 64x64"):
        check_sr_datalist([{"image": str(rgb)}], min_size=64)
    with pytest.raises(ImageFileError, match="roi.png: ROI mask is 20x40"):
        check_sr_datalist([{"image": str(rgb), "roi": str(small_roi)}], min_size=8)
    check_sr_datalist([{"image": str(rgb), "roi": str(small_roi)}], min_size=8, roi_key=None)
    with pytest.raises(ImageFileError, match="broken.png: cannot read"):
        check_sr_datalist([{"image": str(broken)}], min_size=8)


def test_sample_comes_from_training_sources_only_and_holds_out_its_test_area(tmp_path: Path, monkeypatch):
    import common.data.sr_tiles as sr_tiles
    from common.data import SR_HELD_OUT_SOURCES, SR_TRAINING_SOURCES, real_sr_source

    names, cuts = [], []

    def recording_source(name):
        names.append(name)
        return real_sr_source(name)

    def recording_cut(rng, image, box, size, *args):
        cuts.append((image.shape[:2], box))
        return real_cut(rng, image, box, size, *args)

    real_cut = sr_tiles._cut
    monkeypatch.setattr(sr_tiles, "real_sr_source", recording_source)
    monkeypatch.setattr(sr_tiles, "_cut", recording_cut)
    write_sr_tile_sample(str(tmp_path / "s"), tile_size=192, counts=(24, 12, 12), seed=0)
    assert names == list(SR_TRAINING_SOURCES) and not set(names) & set(SR_HELD_OUT_SOURCES)
    assert len(cuts) == 48
    for shape, box in cuts:  # every cut lies inside its image, and the three areas of a source are disjoint
        top, left, bottom, right = box
        assert 0 <= top and bottom <= shape[0] and 0 <= left and right <= shape[1] and bottom - top >= 192
        areas = sr_tiles._split_boxes(*shape, 192)
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            (t1, l1, b1, r1), (t2, l2, b2, r2) = areas[a], areas[b]
            assert min(b1, b2) <= max(t1, t2) or min(r1, r2) <= max(l1, l2), (shape, a, b)
