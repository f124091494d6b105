from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import IMAGE_MASK_LAYOUT, DatasetLayoutError, image_mask_datalist, image_mask_pairs


def _dataset(root: Path, n: int, masks: bool = True) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / f"case_{i:02d}.png")
        if masks:
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / f"case_{i:02d}.png")
    return root


def test_pairs_and_default_split(tmp_path: Path):
    root = _dataset(tmp_path, 49)
    pairs = image_mask_pairs(root)
    assert len(pairs) == 49 and pairs[0]["label"].endswith("masks/case_00.png")
    parts = {s: {p["case"] for p in image_mask_datalist(root, s)} for s in ("train", "val", "test")}
    assert [len(v) for v in parts.values()] == [31, 8, 10]  # 39 train+val (4:1) / 10 test, as the paper
    assert not parts["train"] & parts["test"]


def test_splits_json_overrides(tmp_path: Path):
    root = _dataset(tmp_path, 4)
    (root / "splits.json").write_text(
        json.dumps({"train": ["case_00", "case_01"], "val": ["case_02"], "test": ["case_03"]})
    )
    assert [p["case"] for p in image_mask_datalist(root, "test")] == ["case_03"]
    (root / "splits.json").write_text(json.dumps({"train": ["case_00"], "test": ["case_03", "case_09"]}))
    with pytest.raises(DatasetLayoutError, match=r"'test' names 1 image\(s\) not in the folder: \['case_09'\]"):
        image_mask_datalist(root, "test")  # a listed case that is gone is not dropped silently
    (root / "splits.json").write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="splits.json: cannot read"):
        image_mask_datalist(root, "train")


def test_layout_errors(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="does not exist") as info:
        image_mask_pairs(tmp_path / "none")
    assert IMAGE_MASK_LAYOUT.strip() in str(info.value)
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetLayoutError, match="has no 'images/' folder"):
        image_mask_pairs(tmp_path / "a")
    (tmp_path / "a" / "images").mkdir()
    with pytest.raises(DatasetLayoutError, match="holds no image files"):
        image_mask_pairs(tmp_path / "a")
    root = _dataset(tmp_path / "b", 2, masks=False)
    with pytest.raises(DatasetLayoutError, match="has no mask 'masks/case_00"):
        image_mask_pairs(root)
    assert "label" not in image_mask_datalist(root, "all", require_masks=False)[0]
