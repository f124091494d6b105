"""Tests of common.data.errors: every dataset problem is a ValueError whose message names the path and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.data import DatasetError, DatasetLayoutError, ImageFileError


def test_layout_error_names_the_path_and_prints_the_expected_layout():
    error = DatasetLayoutError(Path("/data/acdc"), "no patient folders", "<dataset_dir>/\n  patient001/\n\n")
    assert error.path == "/data/acdc" and error.problem == "no patient folders"
    assert str(error) == "/data/acdc: no patient folders\nexpected layout:\n<dataset_dir>/\n  patient001/"
    assert str(DatasetLayoutError("/data/acdc", "no patient folders")) == "/data/acdc: no patient folders"


def test_image_file_error_names_the_file():
    error = ImageFileError(Path("images/a.png"), "2 channels, expected 3")
    assert (error.path, error.problem, str(error)) == ("images/a.png", "2 channels, expected 3",
                                                       "images/a.png: 2 channels, expected 3")  # fmt: skip


@pytest.mark.parametrize("error", [DatasetLayoutError("d", "p"), ImageFileError("f", "p"), DatasetError("d: p")])
def test_every_dataset_problem_is_caught_as_a_dataset_error_and_a_value_error(error: Exception):
    # configs and callers catch DatasetError (or ValueError) without knowing which reader raised
    with pytest.raises(DatasetError):
        raise error
    assert isinstance(error, ValueError)
