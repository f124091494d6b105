"""Build a MONAI Label datastore from the bundles' generated samples.

    python apps/monailabel/sample_datastore.py apps/monailabel/datastore

For every bundle: its first inference input as ``<bundle>__input`` (registration bundles also get
``<bundle>__fixed``). For one bundle (``--train-bundle``), up to ``--labelled`` training images with their labels
in ``labels/final/`` so that ``POST /train/<bundle>`` has data: MONAI Label hands every labelled image of the
datastore to whichever model it trains, so one datastore carries labels of one bundle. Bundle samples are
generated first where missing (``make_sample``). The folder is rebuilt from scratch each time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def _suffix(path: Path) -> str:
    return ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix


def _copy(source: str | Path, folder: Path, image_id: str) -> str:
    source = Path(source)
    shutil.copyfile(source, folder / f"{image_id}{_suffix(source)}")
    return image_id


DEFAULT_TRAIN_BUNDLE = "synovial_ultrasound_segmentation"


def build_sample_datastore(
    studies: Path, bundle_roots: dict[Path, Path], train_bundle: str = DEFAULT_TRAIN_BUNDLE, labelled: int = 8
) -> dict[str, dict[str, str]]:
    """Fill ``studies`` from each bundle's sample.

    Args:
        studies: datastore folder (replaced).
        bundle_roots: bundle folder -> bundle root holding its ``sample_data`` (the bundle folder itself after
            ``make demo``, or a temporary root in the tests).
        train_bundle: the bundle whose training images (with labels) go into the datastore.
        labelled: how many of them.

    Returns:
        bundle name -> {"image": image id, "source": file path[, "fixed": image id, "fixed_source": path]}.
    """
    from common.workflows import load_config, run_workflow

    shutil.rmtree(studies, ignore_errors=True)
    (studies / "labels" / "final").mkdir(parents=True)
    inputs: dict[str, dict[str, str]] = {}
    for bundle, root in bundle_roots.items():
        overrides = {"bundle_root": str(root)}
        if not (root / "sample_data").is_dir():
            run_workflow(bundle, "train", run_id="make_sample", quiet=True, **overrides)
        item = load_config(bundle, "inference", **overrides).get_parsed_content("datalist")[0]
        entry = {"image": _copy(item["image"], studies, f"{bundle.name}__input"), "source": str(item["image"])}
        if "fixed" in item:
            entry["fixed"] = _copy(item["fixed"], studies, f"{bundle.name}__fixed")
            entry["fixed_source"] = str(item["fixed"])
        inputs[bundle.name] = entry
        if bundle.name == train_bundle:
            train_items = load_config(bundle, "train", **overrides).get_parsed_content("train#dataset#data")
            for i, train_item in enumerate(train_items[:labelled]):
                image_id = _copy(train_item["image"], studies, f"{bundle.name}__train{i:02d}")
                _copy(train_item["label"], studies / "labels" / "final", image_id)
    return inputs


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    sys.path.insert(0, str(REPOSITORY))
    from common.workflows import discover_bundles

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", type=Path, help="datastore folder to (re)build")
    parser.add_argument("--train-bundle", default=DEFAULT_TRAIN_BUNDLE, help="bundle whose labelled images to add")
    parser.add_argument("--labelled", type=int, default=8, help="how many labelled training images")
    args = parser.parse_args(argv)
    bundles = {b: b for b in discover_bundles(REPOSITORY)}
    inputs = build_sample_datastore(args.studies, bundles, args.train_bundle, args.labelled)
    for name, entry in inputs.items():
        print(f"{name}: image id {entry['image']}" + (f", fixed {entry['fixed']}" if "fixed" in entry else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
