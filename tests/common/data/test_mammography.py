"""Mammogram files: DICOM reading (Modality LUT, VOI window, MONOCHROME1), 16-bit PNG, breast box, DICOM writer."""

from __future__ import annotations

import numpy as np
import pydicom
import pydicom.data
import pytest
from PIL import Image

from common.data import (
    MONOCHROME,
    ImageFileError,
    breast_region_box,
    read_mammogram_dicom,
    read_mammogram_png,
    write_mammogram_dicom,
)


def _ramp(height: int = 6, width: int = 5, step: int = 100) -> np.ndarray:
    return (np.arange(height * width).reshape(height, width) * step).astype(np.uint16)


# ---------------------------------------------------------------- writer + reader round trip


def test_write_then_read_round_trip_keeps_pixels_and_metadata(tmp_path):
    array = _ramp()
    path = write_mammogram_dicom(tmp_path / "sub" / "P7_L_CC.dcm", array, "P7", "L", "CC", pixel_spacing=(0.07, 0.07))
    image, meta = read_mammogram_dicom(path)
    assert image.dtype == np.float32 and image.shape == (6, 5)
    np.testing.assert_array_equal(image, array.astype(np.float32))
    assert meta["patient_id"] == "P7" and meta["laterality"] == "L" and meta["view"] == "CC"
    assert meta["pixel_spacing"] == pytest.approx((0.07, 0.07))
    assert meta["photometric_interpretation"] in MONOCHROME and meta["voi"] is None
    assert meta["range"] == (0.0, 65535.0)

    ds = pydicom.dcmread(path)  # a standard Part 10 file
    assert ds.preamble == b"\0" * 128
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.Modality == "MG" and ds.ImageLaterality == "L" and ds.ViewPosition == "CC"
    assert ds.BitsAllocated == 16 and ds.PixelRepresentation == 0 and ds.SamplesPerPixel == 1
    np.testing.assert_array_equal(ds.pixel_array, array)
    assert [p.name for p in path.parent.iterdir()] == ["P7_L_CC.dcm"]  # no temporary left behind

    # same inputs, same UIDs (reproducible samples); a second view is a new series of the same study
    again = pydicom.dcmread(write_mammogram_dicom(tmp_path / "sub" / "P7_L_CC.dcm", array, "P7", "L", "CC"))
    assert again.SOPInstanceUID == ds.SOPInstanceUID
    mlo = pydicom.dcmread(write_mammogram_dicom(tmp_path / "P7_L_MLO.dcm", array, "P7", "L", "MLO"))
    assert mlo.StudyInstanceUID == ds.StudyInstanceUID and mlo.SeriesInstanceUID != ds.SeriesInstanceUID


def test_write_is_atomic_when_saving_fails(tmp_path, monkeypatch):
    path = write_mammogram_dicom(tmp_path / "a.dcm", _ramp(), "P1", "R", "MLO")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pydicom, "dcmwrite", fail)
    with pytest.raises(OSError, match="disk full"):
        write_mammogram_dicom(path, _ramp(step=7), "P1", "R", "MLO")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.dcm"]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"array_uint16": np.zeros((4, 4), np.float32)}, "2-D uint16"),
        ({"array_uint16": np.zeros((2, 4, 4), np.uint16)}, "2-D uint16"),
        ({"laterality": "B"}, "laterality must be 'L' or 'R'"),
        ({"view": "cc"}, "code string"),
        ({"photometric": "RGB"}, "photometric must be one of"),
        ({"window": (100, 0.5)}, "window width must be >= 1"),
        ({"array_uint16": np.full((4, 4), 4096, np.uint16), "bits_stored": 12}, "does not fit in 12 bits"),
    ],
)
def test_write_mammogram_dicom_rejects_bad_arguments(tmp_path, kwargs, problem):
    args = {"array_uint16": np.zeros((4, 4), np.uint16), "patient_id": "P", "laterality": "L", "view": "CC"}
    with pytest.raises(ValueError, match=problem):
        write_mammogram_dicom(tmp_path / "x.dcm", **{**args, **kwargs})
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- LUT stages


def test_monochrome1_is_inverted_within_the_stored_range(tmp_path):
    array = _ramp(step=50)  # 0 .. 1450, fits 12 bits
    path = write_mammogram_dicom(tmp_path / "m1.dcm", array, "P1", "L", "CC", "MONOCHROME1", bits_stored=12)
    image, meta = read_mammogram_dicom(path)
    assert meta["photometric_interpretation"] == "MONOCHROME1" and meta["range"] == (0.0, 4095.0)
    np.testing.assert_array_equal(image, 4095.0 - array)


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    array = _ramp()
    path = write_mammogram_dicom(tmp_path / "r.dcm", array, "P1", "L", "CC", rescale=(2.0, -100.0))
    image, meta = read_mammogram_dicom(path)
    np.testing.assert_allclose(image, array * 2.0 - 100.0)
    assert meta["range"] == (-100.0, 65535 * 2.0 - 100.0)
    # MONOCHROME1 with a rescale: inverted within the rescaled range
    path = write_mammogram_dicom(tmp_path / "r1.dcm", array, "P1", "L", "CC", "MONOCHROME1", rescale=(2.0, -100.0))
    np.testing.assert_allclose(read_mammogram_dicom(path)[0], (-100.0 + 65535 * 2.0 - 100.0) - (array * 2.0 - 100.0))


def test_voi_window_is_applied_when_present_and_can_be_skipped(tmp_path):
    array = np.array([[0, 1000, 2000, 3000, 4000]], np.uint16)
    path = write_mammogram_dicom(tmp_path / "w.dcm", array, "P1", "R", "CC", window=(2000.5, 2001))
    image, meta = read_mammogram_dicom(path)
    # LINEAR window (PS3.3 C.11.2.1.2.1): c - 0.5 = 2000, w - 1 = 2000, so <= 1000 -> 0, > 3000 -> 65535 and
    # 2000 -> ((2000 - 2000) / 2000 + 0.5) * 65535; 3000 is the top of the ramp -> 65535
    assert meta["voi"] == "window"
    np.testing.assert_allclose(image, [[0, 0, 32767.5, 65535, 65535]])
    raw, meta = read_mammogram_dicom(path, apply_window=False)
    assert meta["voi"] is None
    np.testing.assert_array_equal(raw, array)
    # MONOCHROME1 + window: the windowed values are inverted
    path = write_mammogram_dicom(tmp_path / "w1.dcm", array, "P1", "R", "CC", "MONOCHROME1", window=(2000.5, 2001))
    np.testing.assert_allclose(read_mammogram_dicom(path)[0], [[65535, 65535, 32767.5, 0, 0]])


def test_voi_lut_sequence_wins_over_the_window(tmp_path):
    array = _ramp()  # 0 .. 2900
    path = write_mammogram_dicom(tmp_path / "v.dcm", array, "P1", "L", "CC", "MONOCHROME1", window=(100, 10))
    ds = pydicom.dcmread(path)
    item = pydicom.Dataset()
    item.LUTDescriptor = [4096, 0, 12]  # 4096 entries from stored value 0, 12-bit output
    item.add_new(0x00283006, "US", (np.arange(4096) // 2).tolist())  # LUTData (ambiguous VR: set US)
    ds.VOILUTSequence = [item]
    ds.save_as(tmp_path / "lut.dcm")
    image, meta = read_mammogram_dicom(tmp_path / "lut.dcm")
    assert meta["voi"] == "lut" and meta["range"] == (0.0, 4095.0)
    np.testing.assert_array_equal(image, 4095.0 - array // 2)  # LUT, then MONOCHROME1 inverted in its 12 bits


def test_reads_an_existing_dicom_with_rescale_intercept():
    path = pydicom.data.get_testdata_file("CT_small.dcm", download=False)
    image, meta = read_mammogram_dicom(path)
    stored = pydicom.dcmread(path).pixel_array
    assert image.shape == (128, 128) and image.dtype == np.float32
    np.testing.assert_allclose(image, stored.astype(np.float64) - 1024.0)  # slope 1, intercept -1024
    assert meta["patient_id"] == "1CT1" and meta["pixel_spacing"] is not None


# ---------------------------------------------------------------- DICOM errors


def test_dicom_without_pixel_data_names_file():
    path = pydicom.data.get_testdata_file("rtplan.dcm", download=False)
    with pytest.raises(ImageFileError, match=r"rtplan.dcm: has no PixelData"):
        read_mammogram_dicom(path)


def test_dicom_with_colour_photometric_is_rejected():
    path = pydicom.data.get_testdata_file("SC_rgb_small_odd.dcm", download=False)
    with pytest.raises(ImageFileError, match=r"SC_rgb_small_odd.dcm: unsupported PhotometricInterpretation 'RGB'"):
        read_mammogram_dicom(path)


def test_unreadable_or_missing_dicom_names_file(tmp_path):
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 128 + b"NOPE" + b"garbage")
    with pytest.raises(ImageFileError, match=r"broken.dcm: cannot be read as DICOM"):
        read_mammogram_dicom(path)
    with pytest.raises(ImageFileError, match=r"absent.dcm: file does not exist"):
        read_mammogram_dicom(tmp_path / "absent.dcm")


def test_multiframe_and_bad_window_are_rejected(tmp_path):
    path = write_mammogram_dicom(tmp_path / "f.dcm", _ramp(), "P1", "L", "CC", window=(100, 10))
    ds = pydicom.dcmread(path)
    ds.WindowWidth = 0  # LINEAR needs a width >= 1
    ds.save_as(tmp_path / "badwindow.dcm")
    with pytest.raises(ImageFileError, match=r"badwindow.dcm: cannot apply the Modality/VOI LUT"):
        read_mammogram_dicom(tmp_path / "badwindow.dcm")
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 2
    ds.Rows = 3  # two 3x5 frames in the same bytes
    ds.save_as(tmp_path / "frames.dcm")
    with pytest.raises(ImageFileError, match=r"frames.dcm: has 2 frames"):
        read_mammogram_dicom(tmp_path / "frames.dcm")


# ---------------------------------------------------------------- PNG


def test_read_mammogram_png_reads_16_bit_grey(tmp_path):
    array = _ramp(step=2000)  # up to 58000: needs 16 bits
    Image.fromarray(array).save(tmp_path / "m.png")
    image = read_mammogram_png(tmp_path / "m.png")
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, array)


def test_read_mammogram_png_errors_name_file(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageFileError, match=r"rgb.png: image mode RGB is not single-channel grey"):
        read_mammogram_png(tmp_path / "rgb.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageFileError, match=r"bad.png: cannot read image"):
        read_mammogram_png(tmp_path / "bad.png")
    with pytest.raises(ImageFileError, match=r"none.png: file does not exist"):
        read_mammogram_png(tmp_path / "none.png")


# ---------------------------------------------------------------- breast box


def _half_ellipse(height: int = 200, width: int = 120, seed: int = 0) -> np.ndarray:
    """Breast against the left edge (chest wall): centre (100, 0), semi-axes 80 (y) and 90 (x)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    breast = ((y - 100) / 80.0) ** 2 + (x / 90.0) ** 2 <= 1
    image = rng.normal(100, 10, (height, width))
    image[breast] += 1500 + rng.normal(0, 100, breast.sum())
    image[190:194, 110:114] = 3000  # a burnt-in laterality marker: bright but small and separate
    return image.astype(np.float32)


def test_breast_region_box_finds_the_half_ellipse_and_drops_the_marker():
    x1, y1, x2, y2 = breast_region_box(_half_ellipse())
    # the ellipse spans x 0..90 and y 20..180 (pixel edges 0..91, 20..181); smoothing moves edges by < 2 px
    assert x1 == 0 and abs(y1 - 20) <= 2 and abs(x2 - 91) <= 2 and abs(y2 - 181) <= 2
    assert y2 < 190  # the marker is not part of the breast
    mx1, my1, mx2, my2 = breast_region_box(_half_ellipse(), margin=5)
    assert (mx1, my1, mx2, my2) == (0, y1 - 5, min(120, x2 + 5), y2 + 5)


def test_breast_region_box_errors_when_no_breast_is_found():
    with pytest.raises(ImageFileError, match=r"case_7.dcm: constant image .*no breast tissue found"):
        breast_region_box(np.full((50, 40), 7.0), source="case_7.dcm")
    speck = np.zeros((200, 200), np.float32)
    speck[100:103, 100:103] = 1000  # 9 px: 0.02% of the image
    with pytest.raises(ImageFileError, match=r"^image: no breast tissue found.*covers 0\.\d+% of the image \(< 1%\)"):
        breast_region_box(speck)
    with pytest.raises(ImageFileError, match=r"nan.png: image has non-finite"):
        breast_region_box(np.full((10, 10), np.nan), source="nan.png")
    with pytest.raises(ValueError, match="2-D"):
        breast_region_box(np.zeros((2, 10, 10)))
