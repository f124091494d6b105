"""MRF initial labelling: EM thresholds, rectum detection, region growing with erosion, graph cut, pseudo-masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.data import colon_phantom
from common.transforms import (
    EM_INITIAL_MEANS,
    EM_MEAN_RANGES,
    HU_WINDOW,
    ColonInitialLabelling,
    ColonInitialLabellingd,
    HUMixture,
    MRFLabelling,
    RectumNotFoundError,
    body_mask,
    detect_rectum,
    dominant_superpixel_mask,
    em_thresholds,
    fit_hu_mixture,
    graph_cut_refine,
    grow_from_rectum,
    mrf_initial_labels,
    window_hu,
)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_em_thresholds_fall_between_the_air_fat_and_muscle_fluid_modes():
    rng = np.random.default_rng(0)
    hu = np.concatenate(
        [rng.normal(-1000, 20, 5000), rng.normal(-100, 20, 3000), rng.normal(40, 20, 3000), rng.normal(500, 40, 500)]
    )
    mixture = fit_hu_mixture(hu)
    assert isinstance(mixture, HUMixture) and len(EM_INITIAL_MEANS) == len(EM_MEAN_RANGES) == 4
    np.testing.assert_allclose(mixture.means, [-1000, -100, 40, 500], atol=15)
    t1, t2 = em_thresholds(mixture)
    assert -1000 < t1 < -100 and 40 < t2 < 500
    posterior = mixture.lumen_posterior(np.array([-1000.0, -100.0, 40.0, 500.0]))
    assert posterior[0] > 0.99 and posterior[3] > 0.99 and posterior[1] < 0.01 and posterior[2] < 0.01


def test_rectum_is_the_disk_of_air_in_the_lowest_slice():
    hu = np.full((40, 40, 10), 40.0)
    hu[:2], hu[-2:] = -1000.0, -1000.0  # air outside the body
    yy, xx = np.mgrid[:40, :40]
    hu[(xx - 20) ** 2 + (yy - 20) ** 2 <= 16, 0] = -1000.0  # the rectum, slice 0
    hu[5:7, 5:30, 0] = -1000.0  # a thin air streak: not disk-like
    z, disk = detect_rectum(hu, -500.0)
    assert z == 0 and disk[20, 20] and not disk[6, 10] and 40 <= disk.sum() <= 52
    assert body_mask(hu, -500.0)[20, 20, 5]
    hu[..., 0][disk] = 40.0
    with pytest.raises(RectumNotFoundError, match="rectum not found") as info:
        detect_rectum(hu, -500.0, source="ct.nii.gz")
    assert "ct.nii.gz" in str(info.value)


def test_region_growing_erosion_keeps_a_loop_joined_by_a_thin_bridge_out():
    candidates = np.zeros((30, 30, 12), bool)
    candidates[5:11, 5:11, :] = True  # the colon, a 6x6 tube
    candidates[18:24, 5:11, 4:8] = True  # a small-bowel loop
    candidates[11:18, 7, 6] = True  # joined to the colon by a one-voxel bridge
    seed = np.zeros_like(candidates)
    seed[7, 7, 0] = True
    assert grow_from_rectum(candidates, seed, erosion=0)[20, 7, 6]  # without erosion the loop leaks in
    grown = grow_from_rectum(candidates, seed, erosion=1)
    assert grown[7, 7, 11] and grown[5, 7, 5]  # the whole tube, its faces restored by the dilation
    assert not grown[20, 7, 6]


def test_graph_cut_fills_the_lumen_next_to_the_grown_region():
    hu = np.full((24, 24, 6), 40.0)
    hu[6:18, 6:18] = -1000.0
    hu[6:18, 6:9] = 500.0  # opacified fluid on one side
    mixture = HUMixture(np.array([0.3, 0.2, 0.4, 0.1]), np.array([-1000.0, -100.0, 40.0, 500.0]), np.full(4, 30.0))
    grown = np.zeros(hu.shape, bool)
    grown[6:18, 9:18] = True  # region growing reached the air only
    cut = graph_cut_refine(hu, mixture, grown, band=3)
    assert cut[10, 7, 3] and cut[10, 12, 3]  # the fluid pool joins the air
    assert not cut[2, 2, 3] and not cut[10, 20, 3]


def test_full_labelling_of_a_phantom_beats_its_candidates():
    hu, mask = colon_phantom([0, 3], "prone")
    labels = mrf_initial_labels(hu)
    assert isinstance(labels, MRFLabelling) and labels.rectum_slice == 0 and labels.rectum.sum() > 20
    truth = mask > 0
    assert _dice(labels.grown, truth) > 0.9 and _dice(labels.mask, truth) > 0.8
    assert _dice(labels.candidates, truth) < _dice(labels.mask, truth)  # O_EM also holds bone, bowel, edges


def test_transform_adds_the_mrf_and_seed_channels():
    hu, _ = colon_phantom([0, 4], "supine")
    image = MetaTensor(torch.as_tensor(hu)[None], meta={"filename_or_obj": "ct.nii.gz"})
    out = ColonInitialLabellingd(keys="image")({"image": image})["image"]
    assert out.shape == (3, *hu.shape) and out.meta["filename_or_obj"] == "ct.nii.gz"
    assert float(out[0].min()) >= 0 and float(out[0].max()) <= 1
    assert set(torch.unique(out[1]).tolist()) == {0.0, 1.0} and float(out[2][..., 0].sum()) > 0
    plain = ColonInitialLabelling()(hu[None])
    np.testing.assert_allclose(plain[0], window_hu(hu, HU_WINDOW))
    with pytest.raises(ValueError, match="HU volume"):
        ColonInitialLabelling()(hu)


def test_dominant_superpixel_is_an_inner_region():
    image = np.zeros((32, 32))
    image[4:28, 4:28] = 0.5  # the body
    image[8:16, 8:16] = 0.8  # a smaller organ
    mask = dominant_superpixel_mask(image, scale=50, min_size=10)
    assert mask[20, 20] and not mask[0, 0] and not mask[10, 10]
