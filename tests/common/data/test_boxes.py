"""Box readers: COCO JSON, one-box-per-row CSV, INbreast plist XML + cluster rule, and the shared box checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import (
    BOX_CSV_COLUMNS,
    BOX_CSV_LAYOUT,
    COCO_LAYOUT,
    INBREAST_XML_LAYOUT,
    DatasetLayoutError,
    ImageFileError,
    check_boxes,
    inbreast_cluster_boxes,
    read_coco_boxes,
    read_csv_boxes,
    read_image_size,
    read_inbreast_xml,
    write_mammogram_dicom,
)


def _png(path: Path, height: int = 40, width: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((height, width), np.uint16)).save(path)
    return path


# ---------------------------------------------------------------- check_boxes


def test_check_boxes_accepts_valid_boxes_clips_within_tolerance_and_keeps_empty():
    boxes = check_boxes([[0, 0, 10, 10], [-0.4, 5, 30.3, 40]], (40, 30), "ann.csv")
    assert boxes.dtype == np.float32 and boxes.shape == (2, 4)
    np.testing.assert_allclose(boxes[1], [0, 5, 30, 40])  # clipped to the image
    empty = check_boxes([], (40, 30), "ann.csv")
    assert empty.shape == (0, 4) and empty.dtype == np.float32
    # unknown image size: geometry checked, bounds not
    np.testing.assert_allclose(check_boxes([[100, 100, 200, 300]], None, "ann.csv"), [[100, 100, 200, 300]])


@pytest.mark.parametrize(
    ("box", "problem"),
    [
        ([0, 0, 10, float("nan")], "non-finite"),
        ([0, 0, float("inf"), 10], "non-finite"),
        ([5, 0, 5, 10], "zero or negative size"),
        ([0, 10, 10, 2], "zero or negative size"),
        ([0, 0, 31, 10], "outside the image"),
        ([-1, 0, 10, 10], "outside the image"),
        ([0, 0, 10, 40.6], "outside the image"),
    ],
)
def test_check_boxes_rejects_bad_boxes_naming_source_and_entry(box, problem):
    with pytest.raises(DatasetLayoutError) as e:
        check_boxes([[1, 1, 2, 2], box], (40, 30), "ann.csv", entries=["line 2 (a.png)", "line 3 (a.png)"])
    message = str(e.value)
    assert message.startswith("ann.csv: line 3 (a.png)") and problem in message
    assert e.value.path == "ann.csv"
    with pytest.raises(DatasetLayoutError, match="box 1"):  # default entry names
        check_boxes([[1, 1, 2, 2], box], (40, 30), "ann.csv")


def test_check_boxes_rejects_wrong_shape():
    with pytest.raises(DatasetLayoutError, match=r"ann.json: boxes must be an \(N, 4\) array.*\(2, 3\)"):
        check_boxes([[0, 0, 1], [0, 0, 1]], None, "ann.json")


# ---------------------------------------------------------------- read_image_size


def test_read_image_size_reads_png_and_dicom_headers(tmp_path):
    assert read_image_size(_png(tmp_path / "a.png", 40, 30)) == (40, 30)
    dcm = write_mammogram_dicom(tmp_path / "b.dcm", np.zeros((24, 16), np.uint16), "P1", "L", "CC")
    assert read_image_size(dcm) == (24, 16)


def test_read_image_size_errors_name_the_image(tmp_path):
    with pytest.raises(ImageFileError, match="missing.png: file does not exist"):
        read_image_size(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageFileError, match="bad.png: cannot read the image header"):
        read_image_size(tmp_path / "bad.png")
    (tmp_path / "bad.dcm").write_bytes(b"\0" * 200)
    with pytest.raises(ImageFileError, match="bad.dcm: cannot read the image header"):
        read_image_size(tmp_path / "bad.dcm")


# ---------------------------------------------------------------- COCO


def _coco(tmp_path: Path, annotations=None, images=None, categories=True) -> Path:
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "b.png")
    data = {
        "images": images
        if images is not None
        else [
            {"id": 1, "file_name": "a.png", "width": 30, "height": 40, "patient_id": "P1"},
            {"id": 2, "file_name": "b.png", "width": 30, "height": 40},
        ],
        "annotations": annotations
        if annotations is not None
        else [
            {"id": 10, "image_id": 1, "bbox": [2, 3, 5, 7], "category_id": 1},
            {"id": 11, "image_id": 1, "bbox": [10.5, 20, 4, 4], "category_id": 1},
        ],
    }
    if categories:
        data["categories"] = [{"id": 1, "name": "cluster"}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_read_coco_boxes_converts_xywh_and_keeps_images_without_boxes(tmp_path):
    items = read_coco_boxes(_coco(tmp_path), tmp_path / "img")
    assert [Path(i["image"]).name for i in items] == ["a.png", "b.png"]
    a, b = items
    np.testing.assert_allclose(a["box"], [[2, 3, 7, 10], [10.5, 20, 14.5, 24]])
    assert a["box"].dtype == np.float32 and a["label"].dtype == np.int64
    assert a["label"].tolist() == [0, 0]  # COCO id 1 -> label 0
    assert a["patient"] == "P1" and "patient" not in b
    assert b["box"].shape == (0, 4) and b["label"].shape == (0,)


def test_read_coco_boxes_category_map_and_no_categories_list(tmp_path):
    path = _coco(tmp_path, categories=False)
    assert read_coco_boxes(path, tmp_path / "img")[0]["label"].tolist() == [0, 0]
    assert read_coco_boxes(path, tmp_path / "img", category_map={1: 3})[0]["label"].tolist() == [3, 3]


@pytest.mark.parametrize(
    ("annotations", "images", "problem"),
    [
        ([{"id": 5, "image_id": 1, "bbox": [0, 0, 0, 4], "category_id": 1}], None, "annotations[0] (id 5) (a.png)"),
        ([{"id": 5, "image_id": 1, "bbox": [0, 0, 31, 4], "category_id": 1}], None, "outside the image"),
        ([{"id": 5, "image_id": 1, "bbox": [0, 0, float("nan"), 4], "category_id": 1}], None, "non-finite"),
        (
            [
                {"id": 5, "image_id": 1, "bbox": [0, 0, 3, 4], "category_id": 1},
                {"image_id": 9, "bbox": [0, 0, 1, 1], "category_id": 1},
            ],
            None,
            "annotations[1]: image_id 9 is not in 'images'",
        ),  # fmt: skip
        ([{"id": 5, "image_id": 1, "category_id": 1}], None, "annotations[0] (id 5): missing field(s) ['bbox']"),
        ([{"id": 5, "image_id": 1, "bbox": [0, 0, 3], "category_id": 1}], None, "bbox must be [x, y, width, height]"),
        ([{"id": 5, "image_id": 1, "bbox": [0, 0, 3, 3], "category_id": 7}], None, "category_id 7 is not among [1]"),
        ([], [{"id": 1, "file_name": "a.png", "height": 40}], "images[0]: missing field(s) ['width']"),
        ([], [{"id": 1, "file_name": "zz.png", "width": 30, "height": 40}], "images[0]: image 'zz.png' not found"),
        ([], [{"id": 1, "file_name": "a.png", "width": 30, "height": 40}] * 2, "images[1]: duplicate image id 1"),
    ],
)
def test_read_coco_boxes_errors_name_file_and_entry(tmp_path, annotations, images, problem):
    path = _coco(tmp_path, annotations=annotations, images=images)
    with pytest.raises(DatasetLayoutError) as e:
        read_coco_boxes(path, tmp_path / "img")
    assert str(e.value).startswith(str(path)) and problem in str(e.value)


def test_read_coco_boxes_unreadable_or_incomplete_json(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="ann.json: cannot be read as JSON") as e:
        read_coco_boxes(path, tmp_path)
    assert COCO_LAYOUT.splitlines()[0] in str(e.value)
    path.write_text(json.dumps({"annotations": []}))
    with pytest.raises(DatasetLayoutError, match="ann.json: has no 'images' list"):
        read_coco_boxes(path, tmp_path)
    with pytest.raises(DatasetLayoutError, match="missing.json: annotation file does not exist"):
        read_coco_boxes(tmp_path / "missing.json", tmp_path)


# ---------------------------------------------------------------- CSV


def _csv(tmp_path: Path, text: str) -> Path:
    for name in ("a.png", "b.png", "c.png"):
        _png(tmp_path / "img" / name)
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    return path


CSV_OK = """image,x1,y1,x2,y2,label,patient
a.png,1,2,11,12,0,P1
a.png,5.5,6,9,30,1,P1
b.png,,,,,,P1
c.png,0,0,30,40,0,P2
"""


def test_read_csv_boxes_groups_rows_per_image_and_keeps_normal_images(tmp_path):
    items = read_csv_boxes(_csv(tmp_path, CSV_OK), tmp_path / "img", read_sizes=True)
    assert [Path(i["image"]).name for i in items] == ["a.png", "b.png", "c.png"]
    a, b, c = items
    np.testing.assert_allclose(a["box"], [[1, 2, 11, 12], [5.5, 6, 9, 30]])
    assert a["label"].tolist() == [0, 1] and a["label"].dtype == np.int64 and a["box"].dtype == np.float32
    assert b["box"].shape == (0, 4) and b["label"].shape == (0,) and b["patient"] == "P1"
    assert c["patient"] == "P2"


def test_read_csv_boxes_without_label_or_patient_and_renamed_columns(tmp_path):
    path = _csv(tmp_path, "file,left,top,right,bottom,extra\na.png,1,2,3,4,x\nb.png,,,,,y\n")
    columns = {**BOX_CSV_COLUMNS, "image": "file", "x1": "left", "y1": "top", "x2": "right", "y2": "bottom"}
    items = read_csv_boxes(path, tmp_path / "img", columns=columns, default_label=2)
    assert items[0]["label"].tolist() == [2] and "patient" not in items[0]
    assert items[1]["box"].shape == (0, 4)


def test_read_csv_boxes_checks_sizes_from_mapping_or_header(tmp_path):
    path = _csv(tmp_path, "image,x1,y1,x2,y2\na.png,0,0,30,40\n")
    read_csv_boxes(path, tmp_path / "img")  # size unknown: not checked
    with pytest.raises(DatasetLayoutError, match=r"boxes.csv: line 2 \(a.png\): box .* outside the image \(width 20"):
        read_csv_boxes(path, tmp_path / "img", image_sizes={"a.png": (40, 20)})
    _png(tmp_path / "img" / "a.png", height=30, width=30)
    with pytest.raises(DatasetLayoutError, match=r"line 2 \(a.png\).*outside the image \(width 30, height 30\)"):
        read_csv_boxes(path, tmp_path / "img", read_sizes=True)
    (tmp_path / "img" / "a.png").write_bytes(b"broken")
    with pytest.raises(ImageFileError, match="a.png: cannot read the image header"):
        read_csv_boxes(path, tmp_path / "img", read_sizes=True)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("a.png,1,2,,4,0,P1", "line 2 (a.png): missing box field(s) ['x2']"),
        ("a.png,1,2,x,4,0,P1", "line 2 (a.png): x2 'x' is not a number"),
        ("a.png,1,2,3,4,,P1", "line 2 (a.png): missing label"),
        ("a.png,1,2,3,4,1.5,P1", "line 2 (a.png): label '1.5' is not an integer"),
        ("zz.png,1,2,3,4,0,P1", "line 2 (zz.png): image 'zz.png' not found"),
        (",1,2,3,4,0,P1", "line 2: empty 'image' field"),
        ("a.png,1,2,3,4,0,P1\na.png,,,,,,P2", "line 3 (a.png): patient 'P2' differs from 'P1'"),
        ("a.png,1,2,3,4,0,P1,extra", "line 2: more fields than the header's 7"),
        ("a.png,3,2,1,4,0,P1", "line 2 (a.png): box [3, 2, 1, 4] has zero or negative size"),
        ("b.png,,,,,,P1\na.png,1,nan,3,4,0,P1", "line 3 (a.png): box [1, nan, 3, 4] has a non-finite"),
    ],
)
def test_read_csv_boxes_errors_name_file_and_line(tmp_path, rows, problem):
    path = _csv(tmp_path, "image,x1,y1,x2,y2,label,patient\n" + rows + "\n")
    with pytest.raises(DatasetLayoutError) as e:
        read_csv_boxes(path, tmp_path / "img")
    assert str(e.value).startswith(str(path)) and problem in str(e.value)


def test_read_csv_boxes_header_errors_show_expected_layout(tmp_path):
    path = _csv(tmp_path, "image,x1,y1,x2\na.png,1,2,3\n")
    with pytest.raises(DatasetLayoutError, match=r"boxes.csv: missing column\(s\) \['y2'\]") as e:
        read_csv_boxes(path, tmp_path / "img")
    assert BOX_CSV_LAYOUT.splitlines()[0] in str(e.value)
    with pytest.raises(DatasetLayoutError, match="nope.csv: annotation file does not exist"):
        read_csv_boxes(tmp_path / "nope.csv", tmp_path / "img")
    with pytest.raises(ValueError, match="unknown column role"):
        read_csv_boxes(path, tmp_path / "img", columns={"score": "s"})


# ---------------------------------------------------------------- INbreast XML

PLIST_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>Images</key>
\t<array>
\t\t<dict>
\t\t\t<key>ImageIndex</key>
\t\t\t<integer>0</integer>
\t\t\t<key>NumberOfROIs</key>
\t\t\t<integer>{n}</integer>
\t\t\t<key>ROIs</key>
\t\t\t<array>
"""
PLIST_TAIL = """\t\t\t</array>
\t\t</dict>
\t</array>
</dict>
</plist>
"""


def _roi(name: str, points: list[tuple[float, float]], count: int | None = None) -> str:
    px = "".join(f"\t\t\t\t\t\t<string>({x:.6f}, {y:.6f})</string>\n" for x, y in points)
    mm = "".join(f"\t\t\t\t\t\t<string>({x * 0.07:.6f}, {y * 0.07:.6f}, 0.000000)</string>\n" for x, y in points)
    return (
        "\t\t\t\t<dict>\n"
        "\t\t\t\t\t<key>Area</key>\n\t\t\t\t\t<real>0.0</real>\n"
        "\t\t\t\t\t<key>IndexInImage</key>\n\t\t\t\t\t<integer>0</integer>\n"
        f"\t\t\t\t\t<key>Name</key>\n\t\t\t\t\t<string>{name}</string>\n"
        f"\t\t\t\t\t<key>NumberOfPoints</key>\n\t\t\t\t\t<integer>{len(points) if count is None else count}</integer>\n"
        f"\t\t\t\t\t<key>Point_mm</key>\n\t\t\t\t\t<array>\n{mm}\t\t\t\t\t</array>\n"
        f"\t\t\t\t\t<key>Point_px</key>\n\t\t\t\t\t<array>\n{px}\t\t\t\t\t</array>\n"
        "\t\t\t\t\t<key>Type</key>\n\t\t\t\t\t<integer>19</integer>\n"
        "\t\t\t\t</dict>\n"
    )


def _xml(tmp_path: Path, rois: list[str], name: str = "20586908.xml") -> Path:
    path = tmp_path / name
    path.write_text(PLIST_HEAD.format(n=len(rois)) + "".join(rois) + PLIST_TAIL)
    return path


# three close calcifications (one drawn as a 3-point contour) + one far away + a mass
CLOSE = [
    _roi("Calcification", [(100, 200)]),
    _roi("calcification", [(148, 228), (152, 228), (150, 233)]),
    _roi("CALCIFICATION", [(120, 290)]),
]
FAR = _roi("Calcification", [(600, 800)])
MASS = _roi("Mass", [(300, 300), (400, 300), (400, 420), (300, 420)])


def test_read_inbreast_xml_returns_named_point_arrays(tmp_path):
    path = _xml(tmp_path, [*CLOSE, FAR, MASS])
    rois = read_inbreast_xml(path)
    assert [r["name"] for r in rois] == ["Calcification", "calcification", "CALCIFICATION", "Calcification", "Mass"]
    assert rois[1]["points"].shape == (3, 2)
    np.testing.assert_allclose(rois[1]["points"], [[148, 228], [152, 228], [150, 233]])
    assert rois[4]["entry"] == "Images[0].ROIs[4]" and rois[4]["source"] == str(path)


def test_inbreast_cluster_boxes_groups_close_calcifications_by_hand_computed_box(tmp_path):
    rois = read_inbreast_xml(_xml(tmp_path, [*CLOSE, FAR, MASS]))
    # centres (100, 200), (150, 229.67), (120, 290): links 58.1 and 67.4 px (<= 100) -> one group of 3; the far one
    # (600, 800) is alone -> no box; the mass is ignored. Extent of all group points: x 100..152, y 200..290;
    # padded by the 7 px margin -> [93, 193, 159, 297].
    boxes = inbreast_cluster_boxes(rois)
    assert boxes.dtype == np.float32
    np.testing.assert_allclose(boxes, [[93, 193, 159, 297]])
    # a tighter link distance splits the group (58.1 <= 60 < 67.4): two calcifications are no cluster
    assert inbreast_cluster_boxes(rois, distance=60).shape == (0, 4)
    # min_calcifications=1: the isolated calcification becomes its own padded box
    np.testing.assert_allclose(inbreast_cluster_boxes(rois, min_calcifications=1)[1], [593, 793, 607, 807])
    # the margin is clipped to the image
    np.testing.assert_allclose(inbreast_cluster_boxes(rois, margin=150, image_shape=(1000, 900)), [[0, 50, 302, 440]])


def test_inbreast_cluster_rois_are_taken_as_drawn_and_absorb_their_calcifications(tmp_path):
    outline = _roi("Cluster", [(590, 790), (640, 792), (635, 850), (588, 845)])
    inside = [_roi("Calcification", p) for p in ([(600, 800)], [(610, 805)], [(620, 830)])]
    rois = read_inbreast_xml(_xml(tmp_path, [*CLOSE, outline, *inside]))
    np.testing.assert_allclose(inbreast_cluster_boxes(rois), [[588, 790, 640, 850], [93, 193, 159, 297]])


def test_inbreast_cluster_boxes_rejects_points_outside_the_image(tmp_path):
    path = _xml(tmp_path, [*CLOSE, FAR])
    with pytest.raises(DatasetLayoutError) as e:
        inbreast_cluster_boxes(read_inbreast_xml(path), image_shape=(700, 700))
    assert str(e.value).startswith(str(path))
    assert "Images[0].ROIs[3] (Calcification): point (600, 800) lies outside the image" in str(e.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not xml at all", "cannot be read as plist XML"),
        (
            '<?xml version="1.0"?><plist version="1.0"><dict><key>X</key><integer>1</integer></dict></plist>',
            "has no 'Images' array",
        ),  # fmt: skip
        (
            PLIST_HEAD.format(n=1) + _roi("Calcification", [(1, 2)]).replace("Point_px", "Points") + PLIST_TAIL,
            "Images[0].ROIs[0]: missing key(s) ['Point_px']",
        ),  # fmt: skip
        (
            PLIST_HEAD.format(n=1)
            + _roi("Calcification", [(1, 2)]).replace("(1.000000, 2.000000)", "(1.0; 2.0)")
            + PLIST_TAIL,
            "Images[0].ROIs[0] (Calcification): Point_px[0] '(1.0; 2.0)' is not '(x, y)'",
        ),  # fmt: skip
        (
            PLIST_HEAD.format(n=1) + _roi("Cluster", [(1, 2), (3, 4)], count=3) + PLIST_TAIL,
            "Images[0].ROIs[0] (Cluster): NumberOfPoints is 3 but Point_px has 2 points",
        ),  # fmt: skip
    ],
)
def test_read_inbreast_xml_errors_name_file_and_entry(tmp_path, text, problem):
    path = tmp_path / "22678622.xml"
    path.write_text(text)
    with pytest.raises(DatasetLayoutError) as e:
        read_inbreast_xml(path)
    assert str(e.value).startswith(str(path)) and problem in str(e.value)


def test_read_inbreast_xml_missing_file_shows_layout(tmp_path):
    with pytest.raises(DatasetLayoutError, match="nope.xml: annotation file does not exist") as e:
        read_inbreast_xml(tmp_path / "nope.xml")
    assert INBREAST_XML_LAYOUT.splitlines()[0] in str(e.value)
