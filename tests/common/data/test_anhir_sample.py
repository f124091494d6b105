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
