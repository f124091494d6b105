"""Bundle-specific tests of mitosis_detection.

Bad input the generic cases cannot express (a TIFF that cannot be decoded, a box outside its image in MIDOG.json, an
image id without its file, an unknown category) stops before anything is written, naming the file; the Table VI
switches build the networks they name; FFT reaches the training pipeline only where the method asks for it; whole-slide
inference (region by region) writes the same boxes as the bundle's in-memory tiled inference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint

from common.config import root_cause
from common.data import DatasetError
from common.networks import SOREN
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "mitosis_detection"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    """Root holding the bundle's generated sample."""
    return bundle_runs.sampled(BUNDLE).root


def _damage(case: str, root: Path, workflow: str) -> tuple[str, str]:
    """Apply one kind of damage to the copied sample; return (what the error must name, words it must contain)."""
    data = root / "sample_data"
    coco_path = data / "MIDOG.json"
    coco = json.loads(coco_path.read_text())
    if case == "undecodable_tiff":
        image = data / ("002.tiff" if workflow == "train" else "101.tiff")  # a file the workflow reads
        image.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
        return str(image), "cannot read image"
    if case == "box_outside_image":
        coco["annotations"].append({"id": 9999, "image_id": 1, "bbox": [240, 10, 40, 20], "category_id": 1})
        words = (
            "annotations[" + str(len(coco["annotations"]) - 1) + "] (id 9999) (001.tiff): box [240, 10, 280, 30] lies"
        )
    elif case == "image_without_file":
        coco["images"].append({"id": 21, "file_name": "021.tiff", "width": 256, "height": 256})
        words = "image '021.tiff' not found"
    elif case == "unknown_category":
        coco["categories"].append({"id": 3, "name": "tumour cell"})
        words = "unknown category"
    else:
        raise AssertionError(case)
    coco_path.write_text(json.dumps(coco))
    return str(coco_path), words


CASES = ["undecodable_tiff", "box_outside_image", "image_without_file", "unknown_category"]


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize("case", CASES)
def test_bad_midog_input_stops_before_writing(pristine: Path, tmp_path: Path, case: str, workflow: str):
    copy_sample(pristine, tmp_path)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    before = top_level_names(tmp_path)
    named, words = _damage(case, tmp_path, workflow)
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert named in str(info.value) and words in str(info.value), str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize(
    ("method", "soren", "dah", "fft"),
    [("source_only", False, False, False), ("dah", False, True, False), ("dah_soren", True, True, False),
     ("dah_soren_fft", True, True, True)],
)  # fmt: skip
def test_table_vi_switches_build_what_they_name(pristine: Path, method: str, soren: bool, dah: bool, fft: bool):
    parser = load_config(BUNDLE, "train", bundle_root=str(pristine), method=method)
    network = parser.get_parsed_content("network_def")
    assert isinstance(network.neck, SOREN) == soren
    assert (parser.get_parsed_content("dah") is not None) == dah
    fft_transform = next(t for t in parser.get_parsed_content("train#preprocessing").transforms
                         if type(t).__name__ == "FFTStyleTransferd")  # fmt: skip
    assert (fft_transform.prob > 0) == fft
    assert len(fft_transform.targets) == 10, "the style pool is the target scanner's images"
    with pytest.raises(RuntimeError) as info:
        load_config(BUNDLE, "train", bundle_root=str(pristine), method="soren_only").get_parsed_content("components")
    assert "method must be one of" in str(root_cause(info.value))


def test_full_method_needs_the_sr_bundles_checkpoint(pristine: Path, tmp_path: Path):
    parser = load_config(BUNDLE, "train", bundle_root=str(pristine), method="full", srm_bundle_root=str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        parser.get_parsed_content("train#preprocessing")
    cause = root_cause(info.value)
    assert isinstance(cause, FileNotFoundError)
    assert "microscopy_super_resolution" in str(cause) and str(tmp_path) in str(cause)


@pytest.mark.slow
def test_whole_slide_inference_matches_the_in_memory_tiles(bundle_runs, tmp_path: Path):
    run = bundle_runs.trained(BUNDLE)
    item = load_config(BUNDLE, "inference", **run.overrides).get_parsed_content("datalist")[0]
    tiled, slide = tmp_path / "tiled", tmp_path / "slide"
    run_workflow(BUNDLE, "inference", quiet=True, datalist=[item], output_dir=str(tiled), **run.overrides)
    run_workflow(BUNDLE, "inference", quiet=True, datalist=[item], output_dir=str(slide), whole_slide=True,
                 **run.overrides)  # fmt: skip
    name = Path(item["image"]).name.split(".")[0] + ".json"
    a, b = (json.loads((d / name).read_text()) for d in (tiled, slide))
    assert len(a["box"]) == len(b["box"]) > 0
    assert np.allclose(a["box"], b["box"], atol=0.05) and np.allclose(a["score"], b["score"], atol=1e-4)
    assert (slide / "detections.csv").is_file() and not list(slide.glob("*_overlay.png"))
