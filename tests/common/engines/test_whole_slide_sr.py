"""Tiled, blended super-resolution equals untiled super-resolution; whole-slide TIFF in, pyramidal TIFF out.

Stated tolerance (outputs in [0, 1], untrained networks: the RRDB generator with every weight drawn at random, ISTE
as initialised; LR overlap 16 px):
max |tiled - untiled| <= 0.01 (2.6 grey levels of 255) and mean <= 5e-4. Without the overlap (tiles side by
side) the same networks miss it, so the blending is what makes the tiles agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from common.data import ImageFileError
from common.engines import (
    TiledSuperResolver,
    TileSpan,
    blend_ramp,
    super_resolve_whole_slide,
    super_resolve_whole_slides,
    tile_spans,
)
from common.networks import ISTE, RRDBGenerator

MAX_ERROR, MEAN_ERROR = 0.01, 5e-4


def _rrdb() -> torch.nn.Module:
    torch.manual_seed(0)
    net = RRDBGenerator(in_channels=3, out_channels=3, scale=4, channels=32, growth=16, num_blocks=2, bicubic_skip=True)
    for p in net.parameters():  # its last conv starts at zero (bicubic output): draw every weight instead
        if p.ndim > 1:
            torch.nn.init.normal_(p, std=0.05)
    return net.eval()


def _iste(scale: float) -> torch.nn.Module:
    torch.manual_seed(0)  # the bundle's default architecture, as initialised
    return ISTE(scale=scale, dim=32, depths=[2, 2], heads=[2, 2], window=8, texture_dim=64, similarity_dim=16).eval()


def _assemble(resolver: TiledSuperResolver, image: np.ndarray) -> np.ndarray:
    _, height, width = image.shape
    rows, cols = resolver.grid((height, width))
    s = resolver.out_stride
    out = np.zeros((image.shape[0], len(rows) * s, len(cols) * s), np.float32)
    cells = resolver.cells(lambda y, x, h, w: image[:, y : y + h, x : x + w], (height, width))
    for k, cell in enumerate(cells):
        i, j = divmod(k, len(cols))
        out[:, i * s : (i + 1) * s, j * s : (j + 1) * s] = cell
    oh, ow = resolver.output_shape((height, width))
    return out[:, :oh, :ow]


def _untiled(network: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return network(torch.from_numpy(image)[None])[0].numpy()


def test_tile_spans_cover_the_axis_with_full_size_reads():
    spans = tile_spans(100, 40, 8)
    assert spans == [TileSpan(0, 48, 0), TileSpan(40, 88, 40), TileSpan(80, 100, 52)]  # the last read at 48 px
    assert all(s.stop - s.read_start == 48 for s in spans)
    assert tile_spans(30, 40, 8) == [TileSpan(0, 30, 0)]
    odd = tile_spans(70, 32, 8, granule=2)  # a scale like 3.5: read origins stay even
    assert all((s.start - s.read_start) % 2 == 0 for s in odd)
    with pytest.raises(ValueError, match="overlap"):
        tile_spans(100, 10, 11)


def test_blend_ramps_sum_to_one_in_the_overlap():
    stride, overlap = 20, 8
    first = blend_ramp(stride + overlap, stride, overlap, ramp_in=False, ramp_out=True)
    second = blend_ramp(stride + overlap, stride, overlap, ramp_in=True, ramp_out=False)
    assert np.allclose(first[stride:] + second[:overlap], 1.0)
    assert np.all(first[:stride] == 1) and np.all(np.diff(second[:overlap]) > 0)
    assert np.all(blend_ramp(15, stride, overlap, False, False) == 1)


@pytest.mark.parametrize(
    ("name", "scale", "tile", "shape"),
    [("rrdb", 4, 48, (70, 61)), ("iste", 2.0, 56, (90, 77)), ("iste", 3.5, 56, (64, 60))],
)
def test_tiled_equals_untiled_within_tolerance(name, scale, tile, shape):
    network = _rrdb() if name == "rrdb" else _iste(scale)
    image = np.random.default_rng(1).random((3, *shape)).astype(np.float32)
    reference = _untiled(network, image)
    resolver = TiledSuperResolver(network, scale, tile_size=tile, overlap=16)
    rows, cols = resolver.grid(shape)
    assert len(rows) > 1 and len(cols) > 1  # several tiles each way, so seams exist to be hidden
    tiled = _assemble(resolver, image)
    assert tiled.shape == reference.shape
    error = np.abs(tiled - reference)
    assert error.max() <= MAX_ERROR and error.mean() <= MEAN_ERROR, (error.max(), error.mean())
    # side by side, without overlap, the tile edges differ from the untiled output (measured: 0.30-0.45)
    seams = np.abs(_assemble(TiledSuperResolver(network, scale, tile, overlap=0), image) - reference)
    assert seams.max() > 10 * MAX_ERROR


def test_strides_snap_to_the_tiff_tile_grid():
    resolver = TiledSuperResolver(lambda x: x, 3.5, tile_size=100, overlap=15)
    assert (resolver.out_stride % 16, resolver.stride * 3.5) == (0, resolver.out_stride)
    assert resolver.overlap >= 15 and (resolver.overlap * 3.5).is_integer()
    with pytest.raises(ValueError, match="multiple of 16"):
        TiledSuperResolver(lambda x: x, 2.37, tile_size=64, overlap=8)


def test_wrong_network_output_size_is_named():
    resolver = TiledSuperResolver(lambda x: x, 2, tile_size=32, overlap=8)
    with pytest.raises(ValueError, match=r"expected \(64, 64\)"):
        next(resolver.cells(lambda y, x, h, w: np.zeros((3, h, w), np.uint8), (32, 32)))


def test_whole_slide_tiff_to_pyramid_matches_untiled(tmp_path):
    network = _rrdb()
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (100, 90, 3), dtype=np.uint8)
    slide = tmp_path / "slide.tiff"
    tifffile.imwrite(slide, image, photometric="rgb", tile=(32, 32), compression="zlib")
    out = tmp_path / "out" / "slide_sr.tiff"
    found = super_resolve_whole_slide(network, slide, out, 4, tile_size=48, overlap=16, progress=False)
    assert found["output_shape"] == (400, 360) and found["tiles"] == 12
    reference = np.clip(_untiled(network, image.transpose(2, 0, 1).astype(np.float32) / 255), 0, 1)
    with tifffile.TiffFile(out) as tif:
        levels = [lvl.shape for lvl in tif.series[0].levels]
        sr = tif.series[0].levels[0].asarray()
    assert levels == [(400, 360, 3), (200, 180, 3), (100, 90, 3)]  # halved until one 128 px tile holds it
    assert found["levels"] == [shape[:2] for shape in levels]
    error = np.abs(sr.astype(np.float32) / 255 - reference.transpose(1, 2, 0))
    assert error.max() <= MAX_ERROR + 0.5 / 255 and error.mean() <= MEAN_ERROR + 0.5 / 255  # + uint8 rounding
    written = super_resolve_whole_slides(network, [{"image": str(slide)}], tmp_path / "many", 4, 48, 16, progress=False)
    assert [p.name for p in written] == ["slide_sr.tiff"] and written[0].is_file()


@pytest.mark.parametrize("problem", ["not a tiff", "grey"])
def test_bad_slide_is_named_and_nothing_is_written(tmp_path, problem):
    slide = tmp_path / "bad.tiff"
    if problem == "grey":
        tifffile.imwrite(slide, np.zeros((64, 64), np.uint8))
    else:
        slide.write_bytes(b"\x89PNG not a tiff")
    out = tmp_path / "out"
    with pytest.raises(ImageFileError) as info:
        super_resolve_whole_slide(_rrdb(), slide, out / "bad_sr.tiff", 4, progress=False)
    assert str(slide) in str(info.value)
    assert not out.exists() or list(out.iterdir()) == []
