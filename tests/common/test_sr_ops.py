"""Tests of common.sr_ops: the scale check, the coordinate grid, interpolation baselines, the comparison figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.sr_ops import UPSAMPLE_MODES, make_coord, upsample, validate_scale, write_sr_comparison


def test_make_coord_is_pixel_centres():
    coord = make_coord(2, 4)
    assert coord.shape == (8, 2)
    torch.testing.assert_close(coord[0], torch.tensor([-0.5, -0.75]))
    torch.testing.assert_close(coord[-1], torch.tensor([0.5, 0.75]))


@pytest.mark.parametrize("value", [1, 0.5, "abc", None, float("nan"), True])
def test_validate_scale_rejects(value):
    with pytest.raises(ValueError, match="scale must be a number > 1"):
        validate_scale(value)


def test_validate_scale_accepts_strings_and_floats():
    assert validate_scale("3.5") == 3.5 and validate_scale(2) == 2.0


def test_upsample_modes_and_clamping():
    lr = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    nearest = upsample(lr, (4, 4), "nearest")
    assert torch.equal(nearest[0, 0, :2, :2], torch.zeros(2, 2))
    bicubic = upsample(lr, (8, 8), "bicubic")
    assert bicubic.shape == (1, 1, 8, 8) and bicubic.min() >= 0 and bicubic.max() <= 1
    assert upsample(lr[0], (6, 6), "bicubic").shape == (1, 6, 6)
    assert all(upsample(lr, (3, 3), mode).shape == (1, 1, 3, 3) for mode in UPSAMPLE_MODES)
    with pytest.raises(ValueError, match="mode"):
        upsample(lr, (4, 4), "lanczos")
    with pytest.raises(ValueError, match="shape"):
        upsample(lr[0, 0], (4, 4), "nearest")


def test_write_sr_comparison(tmp_path: Path):
    path = tmp_path / "figs" / "cmp.png"
    lr = np.random.default_rng(0).random((8, 8, 3))
    hr = np.zeros((32, 32, 3), np.uint8)
    write_sr_comparison(str(path), {"LR": lr, "bicubic": np.zeros((3, 32, 32)), "SR": np.ones((32, 32)), "HR": hr})
    figure = np.asarray(Image.open(path))
    assert figure.shape[0] > 32 and figure.shape[1] >= 4 * 32 and figure.shape[2] == 3
    assert not list(path.parent.glob(".*tmp"))
    with pytest.raises(ValueError, match="at least one"):
        write_sr_comparison(str(path), {})
    with pytest.raises(ValueError, match="panel"):
        write_sr_comparison(str(path), {"bad": np.zeros((2, 2, 2, 2))})


def test_the_kinds_reach_the_same_objects():
    # the old import paths that code outside configs still uses resolve to these objects, not to copies
    from common.engines import rvtt
    from common.metrics import super_resolution
    from common.networks import iste
    from common.transforms import arbitrary_scale

    assert super_resolution.upsample is upsample and rvtt.write_sr_comparison is write_sr_comparison  # used, not copied
    assert iste.make_coord is make_coord and arbitrary_scale.validate_scale is validate_scale
