from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import (
    BUSI_CLASSES,
    BUSI_LAYOUT,
    OOD_LAYOUT,
    DatasetLayoutError,
    busi_cases,
    busi_datalist,
    ood_datalists,
)


def _image(path: Path, value: int | None = None, size=(64, 48), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    array = (
        rng.integers(0, 255, size=(size[1], size[0]), dtype=np.uint8)
        if value is None
        else np.full(size[::-1], value, np.uint8)
    )
    Image.fromarray(array).convert(mode).save(path)


@pytest.fixture
def busi(tmp_path: Path) -> Path:
    root = tmp_path / "Dataset_BUSI_with_GT"
    for name in BUSI_CLASSES:
        for k in range(1, 11):
            _image(root / name / f"{name} ({k}).png")
            _image(root / name / f"{name} ({k})_mask.png", 0)
    _image(root / "benign" / "benign (3)_mask_1.png", 255)  # BUSI's second-lesion masks
    return root


def test_busi_cases_ignore_masks_and_label_by_folder(busi: Path):
    items = busi_cases(busi)
    assert len(items) == 30
    assert not any("_mask" in Path(str(i["image"])).name for i in items)
    assert {i["label"] for i in items if i["case"].startswith("malignant/")} == {2}
    assert "normal/" in BUSI_LAYOUT and "<set_name>" in OOD_LAYOUT


def test_stratified_split_without_splits_json(busi: Path):
    parts = {s: busi_datalist(busi, s, seed=3) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 30
    assert len({i["case"] for p in parts.values() for i in p}) == 30
    for part in parts.values():  # every class in every split
        assert {i["label"] for i in part} == {0, 1, 2}
    assert busi_datalist(busi, "calibration", seed=3) == parts["train"]
    assert len(busi_datalist(busi, "trainval", seed=3)) == len(parts["train"]) + len(parts["val"])
    assert busi_datalist(busi, "train", seed=3) == parts["train"]  # deterministic
    with pytest.raises(ValueError, match="split"):
        busi_datalist(busi, "holdout")


def test_splits_json(busi: Path):
    splits = {"train": ["normal/normal (1).png"], "val": ["benign/benign (1).png"],
              "test": ["malignant/malignant (1).png"], "calibration": ["benign/benign (2).png"]}  # fmt: skip
    (busi / "splits.json").write_text(json.dumps(splits))
    assert [i["case"] for i in busi_datalist(busi, "calibration")] == ["benign/benign (2).png"]
    splits["test"].append("malignant/missing.png")
    (busi / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(DatasetLayoutError, match="missing.png"):
        busi_datalist(busi, "test")
    (busi / "splits.json").write_text("{")
    with pytest.raises(DatasetLayoutError, match="splits.json"):
        busi_datalist(busi, "test")


def test_layout_errors_name_the_folder(busi: Path, tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        busi_cases(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match=str(empty)):
        busi_cases(empty)
    (busi / "Benign_typo").mkdir()
    with pytest.raises(DatasetLayoutError, match="Benign_typo"):
        busi_cases(busi)
    (busi / "Benign_typo").rmdir()
    for p in (busi / "normal").iterdir():
        p.unlink()
    with pytest.raises(DatasetLayoutError, match="holds no images") as info:
        busi_cases(busi)
    assert str(busi / "normal") in str(info.value)
    (busi / "normal").rmdir()
    with pytest.raises(DatasetLayoutError, match="missing"):
        busi_cases(busi)


def test_ood_datalists(tmp_path: Path):
    for name in ("mnist", "cca"):
        _image(tmp_path / "ood" / name / "a.png")
    sets = ood_datalists(tmp_path / "ood")
    assert list(sets) == ["cca", "mnist"] and sets["cca"][0]["ood_set"] == "cca"
    with pytest.raises(DatasetLayoutError, match="corrupt"):
        ood_datalists(tmp_path / "ood", sets=["corrupt"])
    (tmp_path / "ood" / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="holds no images"):
        ood_datalists(tmp_path / "ood")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        ood_datalists(tmp_path / "none")
    (tmp_path / "bare").mkdir()
    with pytest.raises(DatasetLayoutError, match="no OOD set"):
        ood_datalists(tmp_path / "bare")


def test_other_class_sets_get_their_own_layout_in_errors(tmp_path):
    from common.data import busi_cases

    with pytest.raises(DatasetLayoutError, match=r"herpes_zoster/<name>\.png") as info:
        busi_cases(tmp_path / "missing", classes=("herpes_zoster", "non_viral"), ignore_dirs=())
    assert "malignant" not in str(info.value)
