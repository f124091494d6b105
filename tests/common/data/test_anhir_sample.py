from __future__ import annotations

import numpy as np

from common.data import (
    anhir_datalist,
    check_anhir_datalist,
    random_histology_affine,
    read_landmarks,
    write_anhir_sample,
)


def test_random_affine_is_invertible_and_seeded():
    a = random_histology_affine(np.random.default_rng(1), 256)
    b = random_histology_affine(np.random.default_rng(1), 256)
    assert np.array_equal(a, b) and abs(np.linalg.det(a[:2, :2])) > 0.5


def test_sample_layout_and_exact_landmarks(tmp_path):
    root = write_anhir_sample(tmp_path / "s", seed=3, num_pairs=3, num_evaluation=1, size=96, num_landmarks=5)
    train, evaluation = anhir_datalist(root, "training"), anhir_datalist(root, "evaluation", require_landmarks=True)
    assert len(train) == 2 and len(evaluation) == 1
    check_anhir_datalist(train + evaluation)
    src, tgt = read_landmarks(train[0]["moving_landmarks"]), read_landmarks(train[0]["fixed_landmarks"])
    assert src.shape == tgt.shape == (5, 2)
    # the landmarks are related by one affine exactly
    design = np.hstack([src, np.ones((5, 1))])
    sol, *_ = np.linalg.lstsq(design, tgt, rcond=None)
    assert np.allclose(design @ sol, tgt, atol=1e-3)


def test_random_affine_ranges_are_arguments():
    a = random_histology_affine(np.random.default_rng(2), 100, max_angle=0.0, scale=(1.0, 1.0), shear=0.0)
    lin = a[:2, :2]
    # a pure multiple of 90 degrees: orthonormal with integer entries
    assert np.allclose(lin @ lin.T, np.eye(2)) and np.allclose(np.abs(lin), np.round(np.abs(lin)))


def test_sample_from_other_images_names_its_folders(tmp_path):
    root = write_anhir_sample(tmp_path / "s", seed=1, num_pairs=2, num_evaluation=2, size=96, num_landmarks=4,
                              images=("camera", "coffee"), max_angle=20.0, scale=(0.85, 1.15), shear=0.1)  # fmt: skip
    items = anhir_datalist(root, "evaluation", require_landmarks=True)
    check_anhir_datalist(items)
    assert [i["image"].split("/")[-3] for i in items] == ["camera_1", "coffee_2"]
