from __future__ import annotations

import pytest

from common.checks import check_foreground_classes


def test_check_foreground_classes():
    assert check_foreground_classes([1, 2.0, 3]) == (1, 2, 3)
    for bad, words in (([], "at least one"), ([0, 1], "positive"), ([1, 1], "repeat")):
        with pytest.raises(ValueError, match=words):
            check_foreground_classes(bad)
