"""Super-resolution of images of any size by overlapping tiles, blended seamlessly, with bounded memory.

Geometry (per axis, in LR pixels): tile ``i`` covers ``[i s, (i + 1) s + o)`` (cut at the image), ``s`` the stride
and ``o`` the overlap, so output cell ``i`` (``[i S, (i + 1) S)`` with ``S = s * scale``) is covered by tiles
``i - 1`` and ``i`` only: a tile's output is final once the tile before it in each direction is done, so cells come
out in row-major order (the order TIFF stores tiles) and each cell is one output TIFF tile. In the ``O = o * scale``
overlapping output pixels the later tile's weight rises as ``sin^2`` while the earlier one's falls as ``cos^2``
(the weights of a pixel sum to one), so no seam shows and no normalisation is needed. What one tile row passes to
the next (its bottom overlap, ``O`` rows by the image width) goes to a temporary file, one block per tile column,
and what a tile passes to its right neighbour stays in memory: memory is that of a few tiles, whatever the size.

A tile that the image cuts short (the last row or column) is read as a full tile ending at the image edge and its
prediction cropped, so it keeps the context of a full tile. ``s`` is snapped so that ``S`` is a multiple of 16
(a TIFF tile) and tile origins stay on the output pixel grid (for a scale such as 3.5, origins are even).

Inputs are read region by region through :class:`~common.data.RegionTiffWSIReader` (MONAI's ``WSIReader`` with
the tifffile backend, decoding only the TIFF segments a tile touches); outputs are written by
:func:`~common.data.write_pyramid_tiff`. Any network mapping ``(1, C, h, w)`` in [0, 1] to
``(1, C, round(h * scale), round(w * scale))`` works: the RRDB generator (fixed factor) and ISTE (its ``scale``).
"""  # noqa: D205

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.wsi import RegionTiffWSIReader, write_pyramid_tiff

__all__ = [
    "TileSpan",
    "TiledSuperResolver",
    "blend_ramp",
    "super_resolve_whole_slide",
    "super_resolve_whole_slides",
    "tile_spans",
]


def _is_integer(value: float) -> bool:
    return abs(value - round(value)) < 1e-6


def _out_len(length: int, scale: float) -> int:
    return int(math.floor(length * scale + 0.5))  # the rounding of ISTE's forward (exact for integer factors)


@dataclass(frozen=True)
class TileSpan:
    """One tile along one axis, in LR pixels.

    Attributes:
        start: first pixel the tile contributes to the output.
        stop: one past its last pixel.
        read_start: first pixel read (``< start`` for a tile the image cuts short: it is read at full size).
    """

    start: int
    stop: int
    read_start: int


def tile_spans(length: int, stride: int, overlap: int, granule: int = 1) -> list[TileSpan]:
    """The tiles along an axis of ``length`` LR pixels (see the module docstring).

    Args:
        length: image side.
        stride: ``s``; tile ``i`` starts at ``i * s``.
        overlap: ``o``; tile ``i`` ends at ``(i + 1) * s + o`` (cut at the image).
        granule: read origins move back from ``start`` by multiples of this (keeps them on the output grid).

    Returns:
        ``ceil(length / stride)`` spans.

    Raises:
        ValueError: a non-positive length or stride, or an overlap outside ``[0, stride]``.
    """
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be positive, got {length} and {stride}")
    if not 0 <= overlap <= stride:
        raise ValueError(f"overlap must be in [0, stride={stride}], got {overlap}")
    spans = []
    for i in range(-(-length // stride)):
        start, stop = i * stride, min((i + 1) * stride + overlap, length)
        short = stride + overlap - (stop - start)
        # a tile cut short by the image is read at full size, back from its start by whole granules
        read = max(0, start - (-(-short // granule)) * granule) if short > 0 else start
        spans.append(TileSpan(start, stop, read))
    return spans


def blend_ramp(length: int, stride: int, overlap: int, ramp_in: bool, ramp_out: bool) -> np.ndarray:
    """Per-pixel weights of one tile along one axis, in output pixels.

    Args:
        length: the tile's output length (``<= stride + overlap``).
        stride: ``S``, where the next tile starts.
        overlap: ``O``, the output pixels two tiles share.
        ramp_in: a tile before this one shares its first ``O`` pixels (weights rise as ``sin^2``).
        ramp_out: a tile after this one shares pixels ``S .. S + O`` (weights fall as ``cos^2``).

    Returns:
        ``(length,)`` float32 weights in [0, 1]; at each shared pixel the two tiles' weights sum to 1.
    """
    weights = np.ones(length, np.float32)
    if overlap > 0:
        rise = np.sin(np.pi * (np.arange(overlap) + 0.5) / (2 * overlap)) ** 2
        if ramp_in:
            n = min(overlap, length)
            weights[:n] *= rise[:n]
        if ramp_out and length > stride:
            weights[stride:] *= (1.0 - rise)[: length - stride]
    return weights


class _BandStore:
    """The bottom overlap of one tile row, one block per tile column, in a temporary file (bounded memory)."""

    def __init__(self, shape: tuple[int, int, int], columns: int, folder: str | None) -> None:
        self.shape = shape
        self.nbytes = int(np.prod(shape)) * 4
        self._file = tempfile.TemporaryFile(dir=folder)
        self._file.truncate(self.nbytes * columns)

    def put(self, column: int, block: np.ndarray) -> None:
        self._file.seek(column * self.nbytes)
        self._file.write(np.ascontiguousarray(block, np.float32).tobytes())

    def get(self, column: int) -> np.ndarray:
        self._file.seek(column * self.nbytes)
        return np.frombuffer(self._file.read(self.nbytes), np.float32).reshape(self.shape).copy()

    def close(self) -> None:
        self._file.close()


class TiledSuperResolver:
    """Super-resolve an image region by region, yielding the output as blended, final ``S x S`` cells.

    Args:
        predict: ``(1, C, h, w)`` float32 in [0, 1] -> ``(1, C, round(h * scale), round(w * scale))``; called
            under ``torch.no_grad``.
        scale: the magnification.
        tile_size: LR tile side including the overlap (the stride is snapped down, see the module docstring).
        overlap: LR pixels two neighbouring tiles share (snapped up to the output grid).
        channels: image channels.
        device: where tiles go before ``predict``.

    Attributes:
        stride, overlap: the snapped LR stride and overlap.
        out_stride, out_overlap: the same in output pixels; ``out_stride`` is the output TIFF tile side.

    Raises:
        ValueError: a scale for which no stride near ``tile_size`` puts the cells on a 16-pixel grid, or an
            overlap too large for the tile.
    """

    def __init__(
        self,
        predict: Callable[[torch.Tensor], torch.Tensor],
        scale: float,
        tile_size: int = 256,
        overlap: int = 16,
        channels: int = 3,
        device: str | torch.device = "cpu",
    ) -> None:
        self.predict, self.scale, self.channels, self.device = predict, float(scale), int(channels), device
        if not self.scale > 1:
            raise ValueError(f"scale must be > 1, got {scale}")
        self.granule = next((g for g in range(1, 1001) if _is_integer(g * self.scale)), 0)
        stride = next((s for s in range(int(tile_size) - int(overlap), 0, -1) if _is_integer(s * self.scale / 16)), 0)
        if self.granule == 0 or stride < max(1, (int(tile_size) - int(overlap)) // 2):
            raise ValueError(
                f"scale {scale} with tile_size {tile_size} and overlap {overlap}: no LR stride in "
                f"[{(int(tile_size) - int(overlap)) // 2}, {int(tile_size) - int(overlap)}] makes stride * scale a "
                "multiple of 16 (the output TIFF tile); use a larger tile_size or a scale such as 2, 2.5, 3, 3.5, 4"
            )
        over = next((o for o in range(max(0, int(overlap)), stride + 1) if _is_integer(o * self.scale)), None)
        if over is None:
            raise ValueError(f"overlap {overlap} must be smaller than the tile stride {stride}")
        self.stride, self.overlap = stride, over
        self.out_stride, self.out_overlap = round(stride * self.scale), round(over * self.scale)

    def output_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """Output ``(height, width)`` of an LR image of ``shape``."""
        return _out_len(shape[0], self.scale), _out_len(shape[1], self.scale)

    def grid(self, shape: tuple[int, int]) -> tuple[list[TileSpan], list[TileSpan]]:
        """Row and column tile spans of an LR image of ``shape``."""
        return (
            tile_spans(shape[0], self.stride, self.overlap, self.granule),
            tile_spans(shape[1], self.stride, self.overlap, self.granule),
        )

    def _tile(self, read: Callable[..., np.ndarray], ys: TileSpan, xs: TileSpan) -> np.ndarray:
        region = read(ys.read_start, xs.read_start, ys.stop - ys.read_start, xs.stop - xs.read_start)
        x = torch.as_tensor(np.ascontiguousarray(region), dtype=torch.float32)
        if region.dtype == np.uint8:
            x = x / 255.0
        expect = (_out_len(ys.stop - ys.read_start, self.scale), _out_len(xs.stop - xs.read_start, self.scale))
        with torch.no_grad():
            pred = self.predict(x.unsqueeze(0).to(self.device))
        if tuple(pred.shape[-2:]) != expect:
            raise ValueError(
                f"the network turned a {tuple(x.shape[-2:])} tile into {tuple(pred.shape[-2:])}, expected {expect} "
                f"(scale {self.scale})"
            )
        top = round((ys.start - ys.read_start) * self.scale)
        left = round((xs.start - xs.read_start) * self.scale)
        height = _out_len(ys.stop, self.scale) - round(ys.start * self.scale)
        width = _out_len(xs.stop, self.scale) - round(xs.start * self.scale)
        return pred[0, :, top : top + height, left : left + width].float().cpu().numpy()

    def cells(
        self, read: Callable[[int, int, int, int], np.ndarray], shape: tuple[int, int], folder: str | None = None
    ) -> Iterator[np.ndarray]:
        """Yield the output's ``(C, S, S)`` float32 cells in row-major order (zeros past the image edge).

        Args:
            read: ``read(y, x, height, width)`` -> ``(C, height, width)`` LR pixels (uint8 0..255, or float in
                [0, 1]) of the image.
            shape: LR ``(height, width)``.
            folder: where the temporary band file goes (default: the system's).
        """
        rows, cols = self.grid(shape)
        big_s, big_o, c = self.out_stride, self.out_overlap, self.channels
        band = _BandStore((c, big_o, big_s), len(cols), folder) if big_o and len(rows) > 1 else None
        try:
            for i, ys in enumerate(rows):
                right = None
                wy = blend_ramp(_out_len(ys.stop, self.scale) - i * big_s, big_s, big_o, i > 0, i < len(rows) - 1)
                for j, xs in enumerate(cols):
                    pred = self._tile(read, ys, xs)
                    wx = blend_ramp(pred.shape[2], big_s, big_o, j > 0, j < len(cols) - 1)
                    acc = np.zeros((c, big_s + big_o, big_s + big_o), np.float32)
                    acc[:, : pred.shape[1], : pred.shape[2]] = pred * wy[: pred.shape[1], None] * wx[None, :]
                    if right is not None:
                        acc[:, :, :big_o] += right
                    if band is not None and i > 0:
                        acc[:, :big_o, :big_s] += band.get(j)
                    if band is not None and i < len(rows) - 1:
                        band.put(j, acc[:, big_s:, :big_s])
                    right = acc[:, :, big_s:].copy() if big_o else None
                    yield acc[:, :big_s, :big_s]
        finally:
            if band is not None:
                band.close()


def _stem(path: str | Path) -> str:
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".svs"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def super_resolve_whole_slide(
    network: Callable[[torch.Tensor], torch.Tensor],
    path: str | Path,
    output_path: str | Path,
    scale: float,
    tile_size: int = 256,
    overlap: int = 16,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
    region: Sequence[int] | None = None,
    compression: str | None = "zlib",
) -> dict[str, Any]:
    """Super-resolve a TIFF of any size into a tiled pyramidal TIFF, tile by tile.

    Args:
        network: the SR network (eval mode is set here when it is a ``torch.nn.Module``).
        path: the LR TIFF (8-bit RGB), read with :class:`~common.data.RegionTiffWSIReader`.
        output_path: the pyramidal TIFF to write (atomically: nothing is left under this name on failure).
        scale: the network's magnification.
        tile_size: LR tile side, overlap included.
        overlap: LR pixels shared by neighbouring tiles (blended).
        device: network device.
        progress: a progress bar (default: only when stderr is a terminal).
        region: ``(y, x, height, width)`` LR pixels to super-resolve instead of the whole image (cut at it).
        compression: tifffile compression of the output.

    Returns:
        ``{"image", "output", "input_shape", "output_shape", "levels", "tiles", "seconds", "input_megapixels",
        "output_megapixels"}``.

    Raises:
        ImageFileError: an input that is not an 8-bit RGB TIFF or cannot be decoded, naming it.
    """
    start = time.perf_counter()
    if isinstance(network, torch.nn.Module):
        network.eval()
    progress = sys.stderr.isatty() if progress is None else bool(progress)
    resolver = TiledSuperResolver(network, scale, tile_size, overlap, device=device)
    reader = RegionTiffWSIReader(mode="RGB")
    wsi = reader.read(str(path))
    try:
        height, width = reader.get_size(wsi, 0)
        y0, x0 = 0, 0
        if region is not None:
            y0, x0 = max(0, int(region[0])), max(0, int(region[1]))
            height, width = min(int(region[2]), height - y0), min(int(region[3]), width - x0)
            if height < 1 or width < 1:
                raise ValueError(f"{path}: region {tuple(region)} is outside the image")

        def read(y: int, x: int, h: int, w: int) -> np.ndarray:
            return reader.get_data(wsi, location=(y0 + y, x0 + x), size=(h, w), level=0)[0]

        out_shape = resolver.output_shape((height, width))
        rows, cols = resolver.grid((height, width))
        bar: Any = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(rows) * len(cols), desc=f"{Path(path).name} tiles", leave=False)
        output_path = Path(output_path)
        output_path.parent.mkdir(parents=True, exist_ok=True)

        def tiles() -> Iterator[np.ndarray]:
            for cell in resolver.cells(read, (height, width), folder=str(output_path.parent)):
                yield np.rint(np.clip(cell, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0)

        try:
            levels = write_pyramid_tiff(
                output_path, tiles(), out_shape, resolver.out_stride, compression=compression,
                on_tile=bar.update if bar is not None else None,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
    finally:
        wsi.close()
    return {
        "image": str(path), "output": str(output_path), "input_shape": (height, width), "output_shape": out_shape,
        "levels": levels, "tiles": len(rows) * len(cols), "seconds": time.perf_counter() - start,
        "input_megapixels": height * width / 1e6, "output_megapixels": out_shape[0] * out_shape[1] / 1e6,
    }  # fmt: skip


def super_resolve_whole_slides(
    network: Callable[[torch.Tensor], torch.Tensor],
    datalist: Sequence[Mapping[str, Any]],
    output_dir: str | Path,
    scale: float,
    tile_size: int = 256,
    overlap: int = 16,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
    postfix: str = "_sr",
    image_key: str = "image",
) -> list[Path]:
    """:func:`super_resolve_whole_slide` over a datalist: ``<output_dir>/<stem><postfix>.tiff`` per image.

    Returns:
        The written files.
    """
    written = []
    for item in datalist:
        image = item[image_key]
        out = Path(output_dir) / f"{_stem(image)}{postfix}.tiff"
        super_resolve_whole_slide(network, image, out, scale, tile_size, overlap, device=device, progress=progress)
        written.append(out)
    return written
