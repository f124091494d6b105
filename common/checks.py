"""Argument checks shared by transforms and losses."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["check_foreground_classes"]


def check_foreground_classes(classes: Sequence[int]) -> tuple[int, ...]:
    """Return ``classes`` as a tuple of ints: non-empty, positive (0 is background / not annotated), distinct.

    Raises:
        ValueError: saying which of those conditions fails.
    """
    classes = tuple(int(c) for c in classes)
    if not classes:
        raise ValueError("classes must name at least one foreground class")
    if any(c <= 0 for c in classes):
        raise ValueError(
            f"classes must be positive foreground indices (0 is background, never annotated), got {classes}"
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must not repeat, got {classes}")
    return classes
