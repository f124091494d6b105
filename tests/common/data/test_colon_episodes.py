"""Episodes: support slice + mask, next slice + MRF mask, colon-free slices with superpixel pseudo-masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.data import ColonEpisodeDataset, DatasetError, dominant_superpixel_mask, random_lightness_sharpness


def _volume(item: dict) -> dict:
    """A toy (3, 16, 16, 8) input: colon in slices 0-4, a bright organ in the colon-free slices 5-7."""
    image = np.zeros((3, 16, 16, 8), np.float32)
    image[0, 2:14, 2:14] = 0.5
    image[0, 4:9, 4:9, 5:] = 0.8
    label = np.zeros((1, 16, 16, 8), np.float32)
    label[0, 6:10, 6:10, :5] = 1.0
    image[0][label[0] > 0] = 0.0  # air lumen
    image[1] = np.roll(label[0], 1, axis=0)  # an MRF mask a voxel off
    image[2, 7, 7, 0] = 1.0
    return {"image": image, "label": label}


def test_episodes_pair_consecutive_colon_slices_in_both_directions():
    dataset = ColonEpisodeDataset([{"image": "a.nii.gz", "label": "a_seg.nii.gz"}], _volume, augment=False)
    pairs = {(e["support"], e["query"]) for e in dataset.data}
    assert pairs == {(z, z + 1) for z in range(4)} | {(z, z - 1) for z in range(1, 5)}
    assert len(dataset) == 8 and dataset.data[0]["image"] == "a.nii.gz"
    torch.manual_seed(0)
    episode = dataset[0]
    support, query = dataset.data[0]["support"], dataset.data[0]["query"]
    x, volume = episode["x"], _volume({})
    assert x.shape == (4, 16, 16) and episode["unrelated"].shape == (6, 16, 16)
    np.testing.assert_array_equal(x[1].numpy(), volume["label"][0, ..., support])  # support: ground truth
    np.testing.assert_array_equal(x[3].numpy(), volume["image"][1, ..., query])  # query guidance: the MRF mask
    np.testing.assert_array_equal(episode["label"][0].numpy(), volume["label"][0, ..., query])
    masks = episode["unrelated"][3:]
    assert masks.sum() > 0 and set(torch.unique(masks).tolist()) <= {0.0, 1.0}
    assert float(masks[:, 0, 0].sum()) == 0  # the pseudo-mask is an inner region, not the air around the body


def test_slice_step_and_errors():
    dataset = ColonEpisodeDataset([{"image": "a"}], _volume, slice_step=2, augment=False)
    assert {e["support"] for e in dataset.data} == {0, 2, 4}
    with pytest.raises(DatasetError, match="no volume"):
        ColonEpisodeDataset([], _volume)
    with pytest.raises(DatasetError, match="no episode"):
        ColonEpisodeDataset([{"image": "a"}], _volume, min_foreground=100)


def test_lightness_and_sharpness_stay_in_range_and_vary():
    image = torch.rand(1, 8, 8)
    torch.manual_seed(1)
    a = random_lightness_sharpness(image)
    b = random_lightness_sharpness(image)
    assert a.shape == image.shape and float(a.min()) >= 0 and float(a.max()) <= 1 and not torch.equal(a, b)
    torch.testing.assert_close(random_lightness_sharpness(image, lightness=0.0, sharpness=0.0), image)


def test_dominant_superpixel_is_an_inner_region():
    image = np.zeros((32, 32))
    image[4:28, 4:28] = 0.5  # the body
    image[8:16, 8:16] = 0.8  # a smaller organ
    mask = dominant_superpixel_mask(image, scale=50, min_size=10)
    assert mask[20, 20] and not mask[0, 0] and not mask[10, 10]
