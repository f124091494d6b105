from __future__ import annotations

import pytest

from common.data import split_groups


def test_split_is_deterministic_disjoint_and_complete():
    groups = [f"patient{i:03d}" for i in range(1, 101)] * 2  # two frames per patient
    parts = split_groups(groups, (0.65, 0.10, 0.25), seed=0)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [65, 10, 25]
    assert set(parts["train"]) | set(parts["val"]) | set(parts["test"]) == set(groups)
    assert not set(parts["train"]) & set(parts["test"])
    assert parts == split_groups(groups, (0.65, 0.10, 0.25), seed=0)
    assert parts != split_groups(groups, (0.65, 0.10, 0.25), seed=1)


def test_small_sets_keep_every_part_non_empty():
    parts = split_groups(["a", "b", "c"], (0.8, 0.1, 0.1))
    assert all(len(v) == 1 for v in parts.values())


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1)])
def test_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_groups(["a", "b"], fractions)


def test_no_groups():
    with pytest.raises(ValueError, match="empty"):
        split_groups([], (0.6, 0.2, 0.2))
