"""Exceptions raised for bad datasets and files. Each message names the path and the problem."""

from __future__ import annotations

__all__ = ["DatasetError", "DatasetLayoutError", "ImageFileError"]


class DatasetError(ValueError):
    """Base class for every dataset problem found by :mod:`common.data`."""


class DatasetLayoutError(DatasetError):
    """A dataset folder is missing or does not follow the layout a reader expects."""

    def __init__(self, path: object, problem: str, expected_layout: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        message = f"{path}: {problem}"
        if expected_layout:
            message += "\nexpected layout:\n" + expected_layout.rstrip()
        super().__init__(message)


class ImageFileError(DatasetError):
    """One image or label file cannot be used (unreadable, wrong shape, wrong channels, non-finite values)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
