"""INbreast layout reader, the layout switch, the mammogram reader and the up-front mammogram check."""

from __future__ import annotations

import plistlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import (
    INBREAST_LAYOUT,
    MAMMOGRAPHY_LAYOUTS,
    DatasetError,
    DatasetLayoutError,
    ImageFileError,
    check_mammogram_datalist,
    inbreast_datalist,
    mammography_datalist,
    read_mammogram,
    write_calcification_sample,
    write_mammogram_dicom,
)


def _breast(height: int = 120, width: int = 80, left: bool = True) -> np.ndarray:
    image = np.zeros((height, width), np.uint16)
    cols = slice(0, width * 3 // 4) if left else slice(width // 4, width)
    image[10 : height - 10, cols] = 1500
    return image


def _release(root: Path, n_patients: int = 5) -> Path:
    """An INbreast-like release: per patient two views; the first patient's CC has a 3-calcification cluster."""
    (root / "AllDICOMs").mkdir(parents=True)
    (root / "AllXML").mkdir()
    for k in range(n_patients):
        patient = f"{k:016x}"
        for v, view in enumerate(("CC", "ML")):
            file_id = f"5{k:02d}{v}"
            write_mammogram_dicom(root / "AllDICOMs" / f"{file_id}_{patient}_MG_L_{view}_ANON.dcm", _breast(),
                                  patient, "L", view)  # fmt: skip
    rois = [{"Name": "Calcification", "NumberOfPoints": 1, "Point_px": [f"({x}, {y})"]}
            for x, y in ((30, 40), (36, 44), (32, 52))]  # fmt: skip
    rois.append({"Name": "Mass", "NumberOfPoints": 2, "Point_px": ["(10, 10)", "(20, 20)"]})
    with open(root / "AllXML" / "5000.xml", "wb") as f:
        plistlib.dump({"Images": [{"ROIs": rois}]}, f, fmt=plistlib.FMT_XML)
    return root


def test_inbreast_datalist_boxes_patients_and_splits(tmp_path: Path):
    root = _release(tmp_path / "INbreast")
    items = inbreast_datalist(root)
    assert len(items) == 10 and items[0]["patient"] == f"{0:016x}"
    np.testing.assert_allclose(items[0]["box"], [[23.0, 33.0, 43.0, 59.0]])  # the group's extent +- 7 px
    assert items[0]["label"].tolist() == [0] and all(len(i["box"]) == 0 for i in items[1:])
    parts = {s: {i["patient"] for i in inbreast_datalist(root, s, seed=3)} for s in ("train", "val", "test")}
    assert sum(map(len, parts.values())) == 5 and not parts["train"] & (parts["val"] | parts["test"])
    assert mammography_datalist(root, "all", "inbreast")[0]["image"] == items[0]["image"]
    assert "AllXML" in INBREAST_LAYOUT and MAMMOGRAPHY_LAYOUTS == ("csv", "inbreast")


def test_inbreast_layout_errors_name_the_path(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match=r"AllDICOMs: folder does not exist"):
        inbreast_datalist(tmp_path)
    root = _release(tmp_path / "INbreast", n_patients=1)
    with pytest.raises(DatasetLayoutError, match="unknown split 'dev'"):
        inbreast_datalist(root, "dev")
    (root / "AllXML" / "5000.xml").write_text("<plist><dict><key>Images</key><string>x</string></dict></plist>")
    with pytest.raises(DatasetLayoutError, match=r"5000\.xml: has no 'Images' array"):
        inbreast_datalist(root)
    (root / "AllXML" / "5000.xml").unlink()
    write_mammogram_dicom(root / "AllDICOMs" / "scan.dcm", _breast(), "P", "L", "CC")
    with pytest.raises(DatasetLayoutError, match=r"scan\.dcm: file name is not"):
        inbreast_datalist(root)


def test_mammography_datalist_reads_the_csv_layout_and_rejects_unknown_layouts(tmp_path: Path):
    root = write_calcification_sample(tmp_path / "sample", num_patients=4, image_size=(128, 80), progress=False)
    items = mammography_datalist(root, "train")
    assert items and all(Path(i["image"]).suffix == ".dcm" and "patient" in i for i in items)
    with pytest.raises(ValueError, match="layout must be one of"):
        mammography_datalist(root, "train", "ddsm")
    with pytest.raises(DatasetLayoutError, match="dataset folder does not exist"):
        mammography_datalist(tmp_path / "missing", "train")
    check_mammogram_datalist(items, progress=False)  # the generated sample passes


def test_read_mammogram_dicom_png_and_errors(tmp_path: Path):
    dicom = write_mammogram_dicom(tmp_path / "a.dcm", _breast(), "P", "L", "CC")
    png = tmp_path / "a.png"
    Image.fromarray(_breast()).save(png)
    np.testing.assert_array_equal(read_mammogram(dicom), read_mammogram(png))
    truncated = tmp_path / "t.dcm"
    truncated.write_bytes(dicom.read_bytes()[: dicom.stat().st_size // 2])
    with pytest.raises(ImageFileError, match=r"t\.dcm: cannot read image"):
        read_mammogram(truncated)
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(ImageFileError, match="unsupported mammogram file type '.jpg'"):
        read_mammogram(tmp_path / "a.jpg")
    with pytest.raises(ImageFileError, match="file does not exist"):
        read_mammogram(tmp_path / "none.dcm")


def test_check_mammogram_datalist_names_the_bad_file(tmp_path: Path):
    good = str(write_mammogram_dicom(tmp_path / "good.dcm", _breast(), "P", "L", "CC"))
    blank = str(write_mammogram_dicom(tmp_path / "blank.dcm", np.zeros((120, 80), np.uint16), "P", "L", "CC"))
    with pytest.raises(DatasetError, match="datalist is empty"):
        check_mammogram_datalist([], progress=False)
    with pytest.raises(ImageFileError, match=r"blank\.dcm: constant image"):
        check_mammogram_datalist([{"image": good}, {"image": blank}], progress=False)
    # the breast is in columns 0..60 (+ margin): a box at the far right would be cut away by the crop
    outside = {"image": good, "box": np.array([[75.0, 50.0, 80.0, 60.0]])}
    with pytest.raises(ImageFileError, match=r"good\.dcm: box 0 .* lies outside the breast region"):
        check_mammogram_datalist([outside], progress=False)
    beyond = {"image": good, "box": np.array([[10.0, 50.0, 95.0, 60.0]])}
    with pytest.raises(DatasetLayoutError, match="lies outside the image"):
        check_mammogram_datalist([beyond], progress=False)
    arrays = [{"image": np.zeros((1, 8, 8)), "box": np.zeros((0, 4))}]
    assert check_mammogram_datalist(arrays, progress=False) is arrays  # MONAI Label's arrays are skipped
