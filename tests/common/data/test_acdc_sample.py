from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

import common.data.acdc_sample as acdc_sample
from common.data import acdc_cases, read_info_cfg, write_acdc_sample

SIZE, SLICES, PATIENTS = 64, 6, 3


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_acdc_sample(
        tmp_path_factory.mktemp("acdc") / "ACDC", num_patients=PATIENTS, image_size=SIZE, num_slices=SLICES
    )


def _load(path: str | Path) -> tuple[np.ndarray, nib.Nifti1Image]:
    image = nib.load(str(path))
    return np.asarray(image.dataobj), image


def _voxel_hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(np.ascontiguousarray(_load(path)[0]).tobytes()).hexdigest()
        for path in sorted(root.rglob("*.nii.gz"))
    }


def test_layout_and_file_names_are_acdc(sample: Path):
    assert sorted(p.name for p in sample.iterdir()) == ["training"]
    assert sorted(p.name for p in (sample / "training").iterdir()) == ["patient001", "patient002", "patient003"]
    for number in range(1, PATIENTS + 1):
        name = f"patient{number:03d}"
        folder = sample / "training" / name
        info = read_info_cfg(folder / "Info.cfg")
        es = int(info["ES"])
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["Info.cfg", f"{name}_frame01.nii.gz", f"{name}_frame01_gt.nii.gz",
             f"{name}_frame{es:02d}.nii.gz", f"{name}_frame{es:02d}_gt.nii.gz"]
        )  # fmt: skip
    assert len(acdc_cases(sample)) == 2 * PATIENTS  # the collection's reader accepts it
    assert not list(sample.parent.glob(".ACDC*")), "no temporary folder is left behind"


def test_info_cfg_parses_like_acdc(sample: Path):
    groups = []
    for folder in sorted((sample / "training").iterdir()):
        lines = (folder / "Info.cfg").read_text().splitlines()
        assert [line.split(":")[0] for line in lines] == ["ED", "ES", "Group", "Height", "NbFrame", "Weight"]
        info = read_info_cfg(folder / "Info.cfg")
        assert info["ED"] == "1" and 1 < int(info["ES"]) < int(info["NbFrame"])
        assert 140 < float(info["Height"]) < 200 and 40 < float(info["Weight"]) < 120
        groups.append(info["Group"])
    assert groups == ["DCM", "HCM", "MINF"]


def test_shapes_dtypes_spacing_and_labels(sample: Path):
    nominal = 1.5 * 256 / SIZE
    for case in acdc_cases(sample):
        img, image = _load(case["image"])
        lab, label = _load(case["label"])
        assert img.dtype == np.int16 and lab.dtype == np.uint8
        assert img.shape == lab.shape and img.shape[:2] == (SIZE, SIZE) and SLICES - 1 <= img.shape[2] <= SLICES + 1
        assert 0 <= img.min() and img.max() < 1500 and np.percentile(img, 99) > 300  # MR magnitude range
        sx, sy, sz = image.header.get_zooms()
        assert sx == pytest.approx(sy) and abs(sx / nominal - 1) < 0.07 and sz == pytest.approx(10.0)
        assert np.allclose(image.affine, np.diag([sx, sy, 10.0, 1.0]), atol=1e-5)
        assert np.allclose(label.affine, image.affine)
        assert set(np.unique(lab).tolist()) == {0, 1, 2, 3}


def test_heart_anatomy(sample: Path):
    for case in acdc_cases(sample):
        lab = _load(case["label"])[0]
        depth = lab.shape[2]
        rv_slices = [(lab[..., z] == 1).any() for z in range(depth)]
        assert rv_slices[0] and not rv_slices[-1], "RV at the base, absent on the most apical slice"
        assert 1 <= rv_slices.count(False) <= 2 and rv_slices == sorted(rv_slices, reverse=True)
        for z in range(depth):
            for cls in (1, 2, 3):
                area = int((lab[..., z] == cls).sum())
                assert area == 0 or area >= 5, f"class {cls} has a token area {area} on slice {z}"
            assert (lab[..., z] == 2).any() and (lab[..., z] == 3).any(), "LV and myocardium on every slice"
        lv_area = [(lab[..., z] == 3).sum() for z in range(depth)]
        assert lv_area[0] > lv_area[-1], "the LV shrinks from base to apex"
    cases = acdc_cases(sample)
    for ed, es in zip(cases[::2], cases[1::2]):
        assert (ed["phase"], es["phase"]) == ("ED", "ES")
        lab_ed, lab_es = _load(ed["label"])[0], _load(es["label"])[0]
        assert (lab_es == 3).sum() < 0.95 * (lab_ed == 3).sum(), "smaller cavity at end systole"


def test_intensities_blood_myocardium_and_distractors(sample: Path):
    for case in acdc_cases(sample):
        img, lab = _load(case["image"])[0].astype(float), _load(case["label"])[0]
        assert img[lab == 3].mean() > 1.5 * img[lab == 2].mean(), "blood pool brighter than myocardium"
        assert img[lab == 1].mean() > 1.3 * img[lab == 2].mean(), "RV blood brighter than myocardium"
        # distractors: pixels of blood-pool-like intensity (far above any other soft tissue) well away from the
        # heart, in blobs not touching it
        near_heart = ndimage.binary_dilation(lab > 0, iterations=2)
        bright = img > 0.75 * np.median(img[lab == 3])
        far_bright = bright & ~near_heart
        assert far_bright.sum() > 50
        components, n = ndimage.label(bright, structure=np.ones((3, 3, 3)))
        touching_heart = set(np.unique(components[lab == 3]).tolist())
        assert any(k not in touching_heart for k in range(1, n + 1)), "bright blobs disconnected from the LV"


def test_deterministic_and_seed_dependent(sample: Path, tmp_path: Path):
    again = write_acdc_sample(tmp_path / "again", num_patients=PATIENTS, image_size=SIZE, num_slices=SLICES)
    assert _voxel_hashes(again) == _voxel_hashes(sample)
    assert [(again / "training" / p / "Info.cfg").read_text() for p in ("patient001", "patient003")] == [
        (sample / "training" / p / "Info.cfg").read_text() for p in ("patient001", "patient003")
    ]
    other = write_acdc_sample(tmp_path / "other", num_patients=1, image_size=SIZE, num_slices=SLICES, seed=1)
    assert _voxel_hashes(other)["training/patient001/patient001_frame01.nii.gz"] != _voxel_hashes(sample).get(
        "training/patient001/patient001_frame01.nii.gz"
    )


def test_overwrite_refusal_and_argument_errors(tmp_path: Path):
    root = write_acdc_sample(tmp_path / "ACDC", num_patients=2, image_size=32, num_slices=4)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_acdc_sample(root, num_patients=1, image_size=32, num_slices=4)
    assert len(list((root / "training").iterdir())) == 2
    write_acdc_sample(root, num_patients=1, image_size=32, num_slices=4, overwrite=True)
    assert [p.name for p in (root / "training").iterdir()] == ["patient001"]
    (tmp_path / "empty").mkdir()
    assert write_acdc_sample(tmp_path / "empty", num_patients=1, image_size=32, num_slices=4).is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        write_acdc_sample(tmp_path / "file", num_patients=1, image_size=32, num_slices=4, overwrite=True)
    for kwargs, match in (
        ({"num_patients": 0}, "num_patients"),
        ({"image_size": 16}, "image_size"),
        ({"num_slices": 2}, "num_slices"),
        ({"seed": -1}, "seed"),
    ):
        with pytest.raises(ValueError, match=match):
            write_acdc_sample(tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls, real_save = [], nib.save

    def failing_save(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(acdc_sample.nib, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        write_acdc_sample(tmp_path / "ACDC", num_patients=2, image_size=32, num_slices=4)
    assert list(tmp_path.iterdir()) == []


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "cli"
    assert acdc_sample.main([str(out), "--num-patients", "1", "--image-size", "32", "--num-slices", "4"]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    assert len(acdc_cases(out)) == 2
    with pytest.raises(SystemExit):
        acdc_sample.main([str(out), "--num-patients", "1", "--image-size", "32"])
    assert "--overwrite" in capsys.readouterr().err
