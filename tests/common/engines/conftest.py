"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest
import torch


def _squares(n: int, size: int, bright: bool, seed: int = 0) -> torch.Tensor:
    """Toy class: bright squares on a dark background (or the reverse), ``(n, 3, size, size)`` in [0, 1]."""
    rng = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, size, size), 0.15 if bright else 0.85)
    for i in range(n):
        side = int(torch.randint(size // 4, size // 2, (1,), generator=rng))
        r, c = torch.randint(0, size - side, (2,), generator=rng).tolist()
        x[i, :, r : r + side, c : c + side] = 0.95 if bright else 0.05
    return x


@pytest.fixture
def squares():
    """The toy-class image maker ``squares(n, size, bright, seed=0)`` of the augmentation and generator tests."""
    return _squares
