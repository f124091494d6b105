from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from common.transforms import SelectSlice, SelectSliced


def test_select_slice_keeps_values_and_moves_affine():
    affine = torch.diag(torch.tensor([1.5, 1.5, 10.0, 1.0]))
    vol = MetaTensor(torch.arange(2 * 4 * 3 * 5, dtype=torch.float32).reshape(2, 4, 3, 5), affine=affine)
    out = SelectSlice()(vol, 3)
    assert out.shape == (2, 4, 3)
    assert torch.equal(out.as_tensor(), vol.as_tensor()[..., 3])
    assert out.affine.shape == (3, 3) and float(out.affine[0, 0]) == pytest.approx(1.5)  # a 2D image now
    assert torch.equal(SelectSlice(axis=0)(vol, 1).as_tensor(), vol.as_tensor()[:, 1])


def test_select_slice_errors():
    with pytest.raises(ValueError, match="outside 0..4"):
        SelectSlice()(torch.zeros(1, 2, 2, 5), 5)
    with pytest.raises(ValueError, match="channel-first 3D volume"):
        SelectSlice()(torch.zeros(1, 2, 2), 0)


def test_select_sliced_reads_index_key():
    data = {"image": torch.rand(1, 3, 3, 4), "label": torch.rand(1, 3, 3, 4), "slice": 2}
    out = SelectSliced(["image", "label"])(data)
    assert torch.equal(out["label"], data["label"][..., 2])
    with pytest.raises(KeyError, match="slice index under 'z'"):
        SelectSliced("image", index_key="z")(data)
