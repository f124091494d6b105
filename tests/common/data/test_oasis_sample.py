from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np
import torch

from common.data import SAMPLE_LABELS, SEG4_OF_LABEL, template_labels, write_oasis_sample
from common.metrics import label_dice


def _digest(root) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.nii.gz")):
        h.update(np.asarray(nib.load(str(f)).dataobj).tobytes())
    return h.hexdigest()


def test_template_has_every_label_in_3d_and_most_in_2d():
    axes = np.linspace(-1, 1, 48)
    labels_3d = template_labels(np.stack(np.meshgrid(axes, axes, axes, indexing="ij")))
    assert set(np.unique(labels_3d)) == {0, *SAMPLE_LABELS}
    labels_2d = template_labels(np.stack(np.meshgrid(axes, axes, indexing="ij")))
    assert len(set(np.unique(labels_2d)) - {0}) >= 10
    assert set(SEG4_OF_LABEL) == set(SAMPLE_LABELS) and set(SEG4_OF_LABEL.values()) == {1, 2, 3, 4}


def test_sample_layout_determinism_and_moving_labels(tmp_path):
    kwargs = dict(num_subjects=4, size_2d=(40, 48), size_3d=(16, 20, 24))
    root = write_oasis_sample(tmp_path / "a", seed=3, **kwargs)
    again = write_oasis_sample(tmp_path / "b", seed=3, **kwargs)
    assert _digest(root) == _digest(again)
    subjects = (root / "subjects.txt").read_text().split()
    assert subjects == [f"OASIS_OAS1_{i:04d}_MR1" for i in range(1, 5)]
    first = root / subjects[0]
    names = {p.name for p in first.iterdir()}
    assert names == {"slice_norm.nii.gz", "slice_seg4.nii.gz", "slice_seg24.nii.gz",
                     "aligned_norm.nii.gz", "aligned_seg4.nii.gz", "aligned_seg35.nii.gz"}  # fmt: skip
    image = np.asarray(nib.load(str(first / "slice_norm.nii.gz")).dataobj)
    assert image.shape == (40, 48, 1) and image.dtype == np.float32 and 0 <= image.min() < image.max() <= 1
    assert np.asarray(nib.load(str(first / "aligned_norm.nii.gz")).dataobj).shape == (16, 20, 24)
    # intensity follows the labels: white matter brighter than cortex brighter than ventricles
    labels = np.asarray(nib.load(str(first / "slice_seg24.nii.gz")).dataobj)
    wm, gm, csf = (image[np.isin(labels, v)].mean() for v in ((1, 8), (2, 9), (3, 10)))
    assert wm > gm > csf
    # subjects differ by a deformation: labels do not overlap perfectly
    other = np.asarray(nib.load(str(root / subjects[1] / "slice_seg24.nii.gz")).dataobj)
    dice = label_dice(torch.as_tensor(labels)[None, None, ..., 0], torch.as_tensor(other)[None, None, ..., 0]).item()
    assert 0.2 < dice < 0.9
