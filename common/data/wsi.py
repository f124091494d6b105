"""Large TIFFs region by region: MONAI's ``WSIReader`` (tifffile backend) reading only the segments a region
touches, and a tiled pyramidal TIFF writer that never holds the image whole.

MONAI's ``TiffFileWSIReader`` decodes the whole level for every patch (``wsi.asarray(level=...)``), so a 16k² slide
costs its full size per read. :class:`RegionTiffWSIReader` keeps MONAI's API (``read`` / ``get_data`` with
``location``, ``size``, ``level``, channel-first RGB) and replaces the patch extraction with
:func:`~common.data.read_tiff_region` (the one the mitosis bundle's whole-slide path uses).

:func:`write_pyramid_tiff` writes level 0 from an iterator of tiles (row-major, as TIFF stores them) and builds
every lower level (each half the previous, rounded down, until one tile holds it) on the way: each level-0 tile is
reduced 2x2 into one quadrant of a level-1 tile, kept in a temporary file, and so on down. Memory is a few tiles
whatever the image's size; the file appears under its name only when complete.
"""  # noqa: D205

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data.wsi_reader import TiffFileWSIReader

from .errors import DatasetError, ImageFileError
from .midog import check_tiff, read_tiff_region
from .validation import items_to_check

__all__ = [
    "RegionTiffWSIReader",
    "check_rgb_page",
    "check_whole_slide_datalist",
    "pyramid_level_shapes",
    "write_pyramid_tiff",
]


class RegionTiffWSIReader(TiffFileWSIReader):
    """MONAI's tifffile ``WSIReader`` that decodes only the TIFF tiles or strips a patch overlaps.

    Same arguments as ``monai.data.TiffFileWSIReader``. ``read`` checks the file (a TIFF, 8-bit, RGB or RGBA, not
    planar) and raises an :class:`~common.data.ImageFileError` naming it otherwise.

    Example::

        reader = RegionTiffWSIReader()
        wsi = reader.read("slide.tiff")
        patch, meta = reader.get_data(wsi, location=(y, x), size=(h, w), level=0)  # (3, h, w) uint8
    """

    def read(self, data: Any, **kwargs: Any) -> Any:
        """Open one TIFF (or a list) after checking that its first page is 8-bit RGB(A), chunky.

        Raises:
            ImageFileError: a missing file, not a TIFF, or a page that is not 8-bit RGB(A).
        """
        paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        opened = []
        for path in paths:
            if not Path(path).is_file():
                raise ImageFileError(path, "file does not exist")
            try:
                wsi = super().read(path, **kwargs)
            except Exception as e:
                raise ImageFileError(path, f"cannot read as a TIFF ({type(e).__name__}: {e})") from e
            try:
                check_rgb_page(wsi.pages.first, path)
            except ImageFileError:
                wsi.close()
                raise
            opened.append(wsi)
        return opened[0] if len(opened) == 1 else opened

    def _get_patch(
        self, wsi: Any, location: tuple[int, int], size: tuple[int, int], level: int, dtype: Any, mode: str
    ) -> np.ndarray:
        page = wsi.pages[level]
        ratio = self.get_downsample_ratio(wsi=wsi, level=level)
        y, x = (round(v / ratio) for v in location)  # location is in level-0 pixels, as in MONAI
        patch = read_tiff_region(page, self.get_file_path(wsi), y, x, int(size[0]), int(size[1]))
        if mode == "RGBA":  # read_tiff_region keeps RGB; an opaque alpha keeps MONAI's RGBA contract
            patch = np.concatenate([patch, np.full(patch.shape[:2] + (1,), 255, np.uint8)], axis=-1)
        return np.moveaxis(patch.astype(dtype, copy=False), -1, self.channel_dim)


def check_rgb_page(page: Any, path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of a TIFF page that is 8-bit RGB(A) with interleaved samples.

    Raises:
        ImageFileError: naming the file and what is wrong (channels, bit depth, planar layout).
    """
    shape = tuple(int(n) for n in page.shape)
    samples = int(page.samplesperpixel)
    if samples not in (3, 4) or len(shape) != 3:
        raise ImageFileError(path, f"has {samples} channel(s), expected 3 (RGB) or 4 (RGBA)")
    if np.dtype(page.dtype) != np.uint8:
        raise ImageFileError(path, f"has {page.dtype} samples, expected 8-bit (uint8) RGB")
    if shape[-1] != samples:
        raise ImageFileError(path, "stores its colour planes separately (planar); expected interleaved RGB")
    return shape[0], shape[1]


def check_whole_slide_datalist(
    datalist: Sequence[Mapping[str, Any]], image_key: str = "image", min_size: int = 8, progress: bool = True
) -> Sequence[Mapping[str, Any]]:
    """Check every image of a whole-slide datalist before anything is written; return the datalist unchanged.

    Each image must be a TIFF file (8-bit RGB or RGBA, interleaved, :func:`check_rgb_page`) of at least
    ``min_size`` pixels a side, and every tile or strip must decode (:func:`~common.data.check_tiff`: memory of one
    segment).

    Raises:
        DatasetError: an empty datalist, or an item that is not a file path.
        ImageFileError: the first bad file, naming it and the problem.
    """
    for item in items_to_check(datalist, "TIFF images", "checking TIFF images", progress):
        image = item.get(image_key)
        if not isinstance(image, (str, os.PathLike)):
            raise DatasetError(f"whole-slide inference reads files: item {dict(item)!r} has no {image_key!r} path")
        reader = RegionTiffWSIReader()
        wsi = reader.read(str(image))
        try:
            height, width = reader.get_size(wsi, 0)
        finally:
            wsi.close()
        if min(height, width) < min_size:
            raise ImageFileError(image, f"is {height} x {width} pixels, smaller than {min_size} on a side")
        check_tiff(image)
    return datalist


def pyramid_level_shapes(shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    """``(height, width)`` of each level of the pyramid :func:`write_pyramid_tiff` writes.

    Level 0 is ``shape``; each next level halves the previous one, rounded down, and the last level is the first
    that fits in one ``tile`` x ``tile`` tile (or the last one at least a pixel on each side).

    Args:
        shape: level-0 ``(height, width)``.
        tile: TIFF tile side.

    Returns:
        One ``(height, width)`` per level, level 0 first.
    """
    levels = [(int(shape[0]), int(shape[1]))]
    while max(levels[-1]) > tile and min(levels[-1]) >= 2:
        levels.append((levels[-1][0] // 2, levels[-1][1] // 2))
    return levels


class _QuadrantStore:
    """Level ``k`` tiles assembled from the 2x2-reduced tiles of level ``k - 1``, kept in a temporary file.

    Quadrant ``(r, c)`` of the store is the reduction of level ``k - 1`` tile ``(r, c)``; level ``k`` tile
    ``(R, C)`` is quadrants ``(2R..2R+1, 2C..2C+1)``. Quadrants past the level's tile grid are dropped (they hold
    the pixels the floor of the halving discards).
    """

    def __init__(self, grid: tuple[int, int], tile: int, channels: int, folder: str | None) -> None:
        self.grid, self.half, self.channels = grid, tile // 2, channels
        self.nbytes = self.half * self.half * channels
        self._file = tempfile.TemporaryFile(dir=folder)
        self._file.truncate(grid[0] * 2 * grid[1] * 2 * self.nbytes)  # sparse: unwritten quadrants read as zeros

    def put(self, row: int, col: int, tile: np.ndarray) -> None:
        if row >= 2 * self.grid[0] or col >= 2 * self.grid[1]:
            return
        h = self.half
        summed = tile[: 2 * h, : 2 * h].reshape(h, 2, h, 2, -1).astype(np.uint16).sum(axis=(1, 3))
        reduced = ((summed + 2) // 4).astype(np.uint8)  # 2x2 mean, rounded
        os.pwrite(self._file.fileno(), reduced.tobytes(), (row * 2 * self.grid[1] + col) * self.nbytes)

    def tile(self, row: int, col: int) -> np.ndarray:
        h = self.half
        out = np.empty((2 * h, 2 * h, self.channels), np.uint8)
        for dy in (0, 1):
            for dx in (0, 1):
                offset = ((2 * row + dy) * 2 * self.grid[1] + 2 * col + dx) * self.nbytes
                data = os.pread(self._file.fileno(), self.nbytes, offset)
                out[dy * h : (dy + 1) * h, dx * h : (dx + 1) * h] = np.frombuffer(data, np.uint8).reshape(h, h, -1)
        return out

    def close(self) -> None:
        self._file.close()


def _grid(shape: tuple[int, int], tile: int) -> tuple[int, int]:
    return -(-shape[0] // tile), -(-shape[1] // tile)


def write_pyramid_tiff(
    path: str | Path,
    tiles: Iterable[np.ndarray],
    shape: tuple[int, int],
    tile: int,
    channels: int = 3,
    compression: str | None = "zlib",
    on_tile: Callable[[], None] | None = None,
) -> list[tuple[int, int]]:
    """Write a tiled pyramidal RGB TIFF (BigTIFF, lower levels as SubIFDs) from level-0 tiles, tile by tile.

    Args:
        path: the file to write; it is written as a temporary file beside it and renamed when complete, and the
            temporary file is removed if anything fails (nothing half-written is left under ``path``).
        tiles: level-0 tiles, ``(tile, tile, channels)`` uint8, row-major; edge tiles padded with anything (the
            padding is outside the image).
        shape: level-0 ``(height, width)``.
        tile: tile side, a multiple of 16 (TIFF).
        channels: 3 (RGB).
        compression: tifffile compression of every level.
        on_tile: called after each level-0 tile is consumed (a progress bar).

    Returns:
        The ``(height, width)`` of each level written (:func:`pyramid_level_shapes`).

    Raises:
        ValueError: a tile side that is not a positive multiple of 16, or a tile of the wrong shape.
    """
    import tifffile

    if tile <= 0 or tile % 16:
        raise ValueError(f"TIFF tiles must be a positive multiple of 16 pixels, got {tile}")
    path = Path(path)
    levels = pyramid_level_shapes(shape, tile)
    folder = str(path.parent)
    stores = [_QuadrantStore(_grid(levels[k], tile), tile, channels, folder) for k in range(1, len(levels))]

    def feed(source: Iterable[np.ndarray], level: int) -> Iterator[np.ndarray]:
        rows, cols = _grid(levels[level], tile)
        below = stores[level] if level < len(stores) else None
        count = 0
        for count, data in enumerate(source, start=1):
            if data.shape != (tile, tile, channels) or data.dtype != np.uint8:
                raise ValueError(f"level-{level} tile {count - 1} is {data.dtype}{data.shape}, "
                                 f"expected uint8{(tile, tile, channels)}")  # fmt: skip
            if below is not None:
                below.put(*divmod(count - 1, cols), data)
            if on_tile is not None and level == 0:
                on_tile()
            yield data
        if count != rows * cols:
            raise ValueError(f"level {level} got {count} tiles, expected {rows * cols} ({rows} x {cols})")

    def stored(level: int) -> Iterator[np.ndarray]:
        rows, cols = _grid(levels[level], tile)
        for r in range(rows):
            for c in range(cols):
                yield stores[level - 1].tile(r, c)

    options = {"dtype": np.uint8, "tile": (tile, tile), "photometric": "rgb", "compression": compression}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    os.close(fd)
    try:
        with tifffile.TiffWriter(tmp, bigtiff=True) as tif:
            tif.write(feed(tiles, 0), shape=(*levels[0], channels), subifds=len(levels) - 1, **options)
            for level in range(1, len(levels)):
                tif.write(feed(stored(level), level), shape=(*levels[level], channels), subfiletype=1, **options)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        for store in stores:
            store.close()
    return levels
