from __future__ import annotations

import numpy as np

from common.data import (
    T1_TEST_SLICES,
    deform_slice,
    intensity_change,
    oasis_pair_datalist,
    smooth_displacement,
    t1_axial_slices,
    t1_tissue_labels,
    t1_training_slices,
    write_t1_slice_sample,
)


def test_training_slices_keep_away_from_test_slices():
    train = t1_training_slices()
    assert train and all(abs(z - t) >= 2 for z in train for t in T1_TEST_SLICES)


def test_slices_labels_and_deformation():
    image = t1_axial_slices((48, 60), [T1_TEST_SLICES[0]])[T1_TEST_SLICES[0]]
    assert image.shape == (48, 60) and 0.0 <= image.min() and image.max() <= 1.0
    labels = t1_tissue_labels(image)
    assert set(np.unique(labels)) == {1, 2, 3}
    rng = np.random.default_rng(0)
    same, same_labels = deform_slice(image, labels, np.zeros((2, 48, 60)))
    assert np.allclose(same, image, atol=1e-6) and np.array_equal(same_labels, labels)
    field = smooth_displacement(rng, (48, 60), 0.03)
    assert field.shape == (2, 48, 60) and 0 < np.abs(field).max() < 20
    moved, moved_labels = deform_slice(image, labels, field)
    assert not np.array_equal(moved_labels, labels)
    changed = intensity_change(rng, moved, 1.0)
    assert changed.shape == moved.shape and changed.dtype == np.float32 and not np.allclose(changed, moved)
    assert intensity_change(rng, moved, 0.0) is moved


def test_sample_holds_training_slices_in_oasis_layout(tmp_path):
    root = write_t1_slice_sample(tmp_path / "t1", seed=1, num_subjects=8, size=(32, 40))
    items = oasis_pair_datalist(root, "train", 2, "seg24")
    assert items and all(i["image"].endswith("slice_norm.nii.gz") for i in items)
    assert str(list(t1_training_slices())) in (root / "README.txt").read_text()
