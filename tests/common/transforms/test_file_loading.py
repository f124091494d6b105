"""LoadPathsd (common/transforms/file_loading.py): the loader the bundles' own file readers share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.transforms import LoadChestXrayd, LoadCTVolumed, LoadMammogramd, LoadPathsd, LoadRGBTiffd


def test_paths_are_loaded_and_loaded_values_pass_through(tmp_path):
    seen = []

    def loader(path):
        seen.append(Path(path))
        return np.full((1, 2, 2), len(seen))

    already = np.zeros((1, 2, 2))
    out = LoadPathsd(["a", "b", "c"], loader=loader)({"a": "x.png", "b": tmp_path / "y.png", "c": already, "d": "z"})
    assert seen == [Path("x.png"), tmp_path / "y.png"]
    assert out["a"].max() == 1 and out["b"].max() == 2 and out["c"] is already and out["d"] == "z"


def test_missing_keys_and_a_missing_loader():
    with pytest.raises(KeyError):
        LoadPathsd("image", loader=str)({"label": "x"})
    assert LoadPathsd("image", loader=str, allow_missing_keys=True)({"label": "x"}) == {"label": "x"}
    with pytest.raises(TypeError, match="LoadPathsd needs a loader"):
        LoadPathsd("image")


@pytest.mark.parametrize("cls", [LoadChestXrayd, LoadCTVolumed, LoadMammogramd, LoadRGBTiffd])
def test_the_bundle_loaders_are_load_pathsd_with_their_reader(cls):
    transform = cls("image")
    assert isinstance(transform, LoadPathsd) and callable(transform.loader)
    loaded = np.ones((1, 3, 3))
    assert transform({"image": loaded})["image"] is loaded
