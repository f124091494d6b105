"""Tests of common.data.sr_real_images: the training / held-out split of packaged images and their tiles."""

from __future__ import annotations

import numpy as np
import pytest

from common.data import SR_HELD_OUT_SOURCES, SR_TRAINING_SOURCES, real_sr_source, real_sr_tiles


def test_training_and_held_out_sources_are_disjoint():
    assert not set(SR_TRAINING_SOURCES) & set(SR_HELD_OUT_SOURCES)


@pytest.mark.parametrize("name", ["coins", "retina", "motorcycle_left"])
def test_sources_are_rgb_uint8(name):
    image = real_sr_source(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    if name == "coins":  # grey replicated
        assert np.array_equal(image[..., 0], image[..., 2])


def test_unknown_source_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown real image 'lena'.*astronaut"):
        real_sr_source("lena")


def test_tiles_are_deterministic_textured_and_sized():
    tiles = real_sr_tiles(["cell", "microaneurysms"], tile_size=128, per_image=2, seed=3, min_std=8.0)
    again = real_sr_tiles(["cell", "microaneurysms"], tile_size=128, per_image=2, seed=3, min_std=8.0)
    assert [n for n, _ in tiles] == ["cell", "cell", "microaneurysms"]  # 102 px image: one 96 px tile
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(tiles, again))
    assert tiles[0][1].shape == (128, 128, 3) and tiles[2][1].shape == (96, 96, 3)
    assert all(t.mean(axis=2).std() >= 8.0 for _, t in tiles)
    other = real_sr_tiles(["cell"], tile_size=128, per_image=2, seed=4)
    assert not np.array_equal(other[0][1], tiles[0][1])
