"""``--whole_slide true`` of both super-resolution bundles' inference: a TIFF in, a tiled pyramidal TIFF out, and
bad input stopped before anything is written.
"""  # noqa: D205

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from bundle_helpers import ROOT, assert_nothing_written, top_level_names, untrained_checkpoint

from common.data import ImageFileError
from common.workflows import run_workflow

#: bundle -> (extra overrides, magnification)
SR_BUNDLES = {
    "microscopy_super_resolution": ({}, 4),
    "pathology_arbitrary_scale_super_resolution": ({"scale": 3.5}, 3.5),
}


@pytest.mark.parametrize("name", list(SR_BUNDLES))
def test_whole_slide_inference_writes_a_pyramidal_tiff(tmp_path, name):
    bundle, (overrides, scale) = ROOT / "bundles" / name, SR_BUNDLES[name]
    untrained_checkpoint(bundle, tmp_path, **overrides)
    slide = tmp_path / "slide.tiff"
    rng = np.random.default_rng(0)
    tifffile.imwrite(slide, rng.integers(0, 256, (70, 64, 3), dtype=np.uint8), photometric="rgb", tile=(32, 32))
    out = tmp_path / "out"
    run_workflow(bundle, "inference", quiet=True, bundle_root=str(tmp_path), whole_slide="true", image=str(slide),
                 output_dir=str(out), tile_size=64, tile_overlap=16, **overrides)  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["slide_sr.tiff"]
    with tifffile.TiffFile(out / "slide_sr.tiff") as tif:
        levels = [lvl.shape for lvl in tif.series[0].levels]
        assert tif.pages.first.is_tiled
    expected = (int(70 * scale + 0.5), int(64 * scale + 0.5), 3)
    assert levels[0] == expected and len(levels) > 1
    assert levels[1] == (expected[0] // 2, expected[1] // 2, 3)


@pytest.mark.parametrize("name", list(SR_BUNDLES))
@pytest.mark.parametrize("problem", ["grey", "png"])
def test_whole_slide_bad_input_is_named_and_nothing_is_written(tmp_path, name, problem):
    bundle, (overrides, _) = ROOT / "bundles" / name, SR_BUNDLES[name]
    untrained_checkpoint(bundle, tmp_path, **overrides)
    good, bad = tmp_path / "good.tiff", tmp_path / "bad.tiff"
    tifffile.imwrite(good, np.zeros((40, 40, 3), np.uint8), photometric="rgb")
    if problem == "grey":
        tifffile.imwrite(bad, np.zeros((40, 40), np.uint8))
    else:
        bad.write_bytes(b"\x89PNG\r\n\x1a\n not a TIFF")
    before = top_level_names(tmp_path)
    with pytest.raises(ImageFileError, match="channel" if problem == "grey" else "TIFF") as info:
        run_workflow(bundle, "inference", quiet=True, bundle_root=str(tmp_path), whole_slide=True,
                     datalist=[{"image": str(good)}, {"image": str(bad)}], **overrides)  # fmt: skip
    assert str(bad) in str(info.value)
    assert_nothing_written(tmp_path, before)  # the good first file was not written either
