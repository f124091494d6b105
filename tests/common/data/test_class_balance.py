"""common/data/class_balance.py."""

from __future__ import annotations

import pytest

from common.data import DatasetError, class_weights


def test_class_weights_give_equal_influence():
    items = [{"label": 0}] * 6 + [{"label": 1}] * 3 + [{"label": 2}] * 1
    weights = class_weights(items)
    counts = [6, 3, 1]
    assert [w * c for w, c in zip(weights, counts)] == pytest.approx([10 / 3] * 3)
    with pytest.raises(DatasetError, match="no training images"):
        class_weights([{"label": 0}, {"label": 1}])
