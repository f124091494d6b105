"""MRF initial labelling: region growing with erosion, graph cut, the whole labelling and its transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.colon_ct_ops import HUMixture
from common.data import colon_phantom
from common.transforms import (
    HU_WINDOW,
    ColonInitialLabelling,
    ColonInitialLabellingd,
    MRFLabelling,
    graph_cut_refine,
    grow_from_rectum,
    mrf_initial_labels,
    window_hu,
)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


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
