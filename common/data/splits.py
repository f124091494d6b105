"""Deterministic, group-aware train/validation/test splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["split_groups"]

SPLIT_NAMES = ("train", "val", "test")


def split_groups(groups: Sequence[str], fractions: Sequence[float], seed: int = 0) -> dict[str, list[str]]:
    """Split unique group names (patients, sections) into train/val/test by a seeded shuffle.

    Counts are rounded from ``fractions`` (train, val, test); every part gets at least one group when there
    are at least three groups, and train takes what rounding leaves over.

    Raises:
        ValueError: for fractions that are not three non-negative numbers summing to 1, or no groups.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    unique = sorted(set(groups))
    n = len(unique)
    if n == 0:
        raise ValueError("cannot split an empty list of groups")
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [unique[i] for i in order]
    n_val, n_test = (round(fractions[1] * n), round(fractions[2] * n))
    if n >= 3:
        n_val = max(n_val, 1) if fractions[1] > 0 else 0
        n_test = max(n_test, 1) if fractions[2] > 0 else 0
    n_train = n - n_val - n_test
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }
