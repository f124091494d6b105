"""RegionTiffWSIReader (MONAI's tifffile WSIReader, region by region), the whole-slide datalist check and the
pyramidal TIFF writer.
"""  # noqa: D205

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from common.data import (
    DatasetError,
    ImageFileError,
    RegionTiffWSIReader,
    check_rgb_page,
    check_whole_slide_datalist,
    pyramid_level_shapes,
    read_tiff_region,
    write_pyramid_tiff,
)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _tiles(image: np.ndarray, tile: int):
    for y in range(0, image.shape[0], tile):
        for x in range(0, image.shape[1], tile):
            out = np.zeros((tile, tile, 3), np.uint8)
            part = image[y : y + tile, x : x + tile]
            out[: part.shape[0], : part.shape[1]] = part
            yield out


@pytest.mark.parametrize("layout", [{"tile": (32, 32)}, {"rowsperstrip": 7}])
def test_region_reader_returns_the_region_and_decodes_only_its_segments(tmp_path, layout, monkeypatch):
    image = _image(100, 90)
    path = tmp_path / "slide.tiff"
    tifffile.imwrite(path, image, photometric="rgb", compression="zlib", **layout)
    reader = RegionTiffWSIReader()
    wsi = reader.read(str(path))
    read_bytes = []
    original = tifffile.FileHandle.read
    monkeypatch.setattr(tifffile.FileHandle, "read", lambda self, n=-1: read_bytes.append(n) or original(self, n))
    for owner in (tifffile.TiffFile, tifffile.TiffPage):  # MONAI's patch extraction decodes the whole level
        monkeypatch.setattr(owner, "asarray", lambda *a, **k: pytest.fail("the whole image was decoded"))
    try:
        assert reader.get_size(wsi, 0) == (100, 90)
        patch, meta = reader.get_data(wsi, location=(40, 33), size=(20, 25), level=0)
        assert patch.shape == (3, 20, 25) and patch.dtype == np.uint8
        assert np.array_equal(np.moveaxis(patch, 0, -1), image[40:60, 33:58])
        assert str(path) in str(meta)
        segments = wsi.pages.first.databytecounts
        assert 0 < len(read_bytes) < len(segments) and sum(read_bytes) < sum(segments)  # only the touched segments
        edge = read_tiff_region(wsi.pages.first, path, 90, 80, 50, 50)  # cut at the image
        assert np.array_equal(edge, image[90:, 80:])
    finally:
        wsi.close()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: tifffile.imwrite(p, _image(20, 20)[..., 0]), "1 channel"),
        (lambda p: tifffile.imwrite(p, np.zeros((20, 20, 3), np.uint16), photometric="rgb"), "8-bit"),
        (lambda p: Image.fromarray(_image(20, 20)).save(p, format="PNG"), "cannot read as a TIFF"),
        (lambda p: None, "does not exist"),
    ],
)
def test_reader_rejects_bad_files_naming_them(tmp_path, make, words):
    path = tmp_path / "bad.tiff"
    make(path)
    with pytest.raises(ImageFileError, match=words) as info:
        RegionTiffWSIReader().read(str(path))
    assert str(path) in str(info.value)


def test_check_rgb_page_returns_the_size(tmp_path):
    path = tmp_path / "ok.tiff"
    tifffile.imwrite(path, _image(21, 17), photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        assert check_rgb_page(tif.pages.first, path) == (21, 17)
    tifffile.imwrite(path, np.zeros((3, 21, 17), np.uint8), photometric="rgb", planarconfig="separate")
    with tifffile.TiffFile(path) as tif, pytest.raises(ImageFileError, match="planar"):
        check_rgb_page(tif.pages.first, path)


def test_whole_slide_datalist_check(tmp_path):
    good, small, truncated = tmp_path / "good.tiff", tmp_path / "small.tiff", tmp_path / "truncated.tiff"
    tifffile.imwrite(good, _image(64, 64), photometric="rgb", tile=(32, 32), compression="zlib")
    tifffile.imwrite(small, _image(6, 64), photometric="rgb")
    truncated.write_bytes(good.read_bytes()[:-200])
    datalist = [{"image": str(good)}]
    assert check_whole_slide_datalist(datalist) is datalist
    with pytest.raises(ImageFileError, match="smaller than 8") as info:
        check_whole_slide_datalist([{"image": str(good)}, {"image": str(small)}])
    assert str(small) in str(info.value)
    with pytest.raises(ImageFileError) as info:
        check_whole_slide_datalist([{"image": str(truncated)}])
    assert str(truncated) in str(info.value)
    with pytest.raises(DatasetError, match="empty"):
        check_whole_slide_datalist([])
    with pytest.raises(DatasetError, match="path"):
        check_whole_slide_datalist([{"image": np.zeros((3, 8, 8))}])


def test_pyramid_level_shapes_halve_until_one_tile():
    assert pyramid_level_shapes((1000, 300), 256) == [(1000, 300), (500, 150), (250, 75)]
    assert pyramid_level_shapes((100, 100), 256) == [(100, 100)]
    assert pyramid_level_shapes((4096, 3), 16) == [(4096, 3), (2048, 1)]


def test_pyramid_writer_levels_have_their_sizes_and_the_2x2_means(tmp_path):
    image = _image(150, 97)
    path = tmp_path / "out.tiff"
    levels = write_pyramid_tiff(path, _tiles(image, 32), (150, 97), 32)
    assert levels == [(150, 97), (75, 48), (37, 24), (18, 12)]  # the last is the first to fit one 32 px tile
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        assert [lvl.shape for lvl in series.levels] == [(150, 97, 3), (75, 48, 3), (37, 24, 3), (18, 12, 3)]
        assert tif.pages.first.is_tiled and tif.pages.first.tilewidth == 32
        level0, level1, level2, level3 = (lvl.asarray() for lvl in series.levels)
    assert np.array_equal(level0, image)

    def halve(a):
        h, w = a.shape[0] // 2, a.shape[1] // 2
        s = a[: 2 * h, : 2 * w].reshape(h, 2, w, 2, 3).astype(np.uint16).sum(axis=(1, 3))
        return ((s + 2) // 4).astype(np.uint8)

    assert np.array_equal(level1, halve(level0))
    assert np.array_equal(level2, halve(level1))
    assert np.array_equal(level3, halve(level2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tiff"]  # no temporaries left


def test_pyramid_writer_leaves_nothing_when_the_tiles_fail(tmp_path):
    def failing():
        yield np.zeros((32, 32, 3), np.uint8)
        raise RuntimeError("network failed")

    with pytest.raises(RuntimeError, match="network failed"):
        write_pyramid_tiff(tmp_path / "out.tiff", failing(), (64, 64), 32)
    with pytest.raises(ValueError, match="expected 4"):
        write_pyramid_tiff(tmp_path / "out.tiff", iter([np.zeros((32, 32, 3), np.uint8)]), (64, 64), 32)
    with pytest.raises(ValueError, match="multiple of 16"):
        write_pyramid_tiff(tmp_path / "out.tiff", iter([]), (64, 64), 40)
    assert list(Path(tmp_path).iterdir()) == []
