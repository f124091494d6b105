"""Reader for the ACDC cardiac cine-MRI dataset in its own on-disk layout.

ACDC (Bernard et al., IEEE TMI 2018) ships one folder per patient with an ``Info.cfg`` naming the end-diastolic
(ED) and end-systolic (ES) frames, one NIfTI volume per annotated frame and its ``_gt`` label map
(0 background, 1 right ventricle, 2 myocardium, 3 left ventricle).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .errors import DatasetLayoutError
from .splits import SPLIT_NAMES, split_groups

__all__ = [
    "ACDC_LAYOUT",
    "ACDC_CLASS_NAMES",
    "acdc_subset_dir",
    "read_info_cfg",
    "acdc_cases",
    "acdc_volume_datalist",
]

ACDC_CLASS_NAMES = ("background", "RV", "Myo", "LV")

ACDC_LAYOUT = """\
<dataset_dir>/
  training/                          (or database/training/, as in the current ACDC release)
    patient001/
      Info.cfg                       ED: <frame>  ES: <frame>  Group: ...  NbFrame: ...
      patient001_frame01.nii.gz      image of the ED frame (3D: x, y, slices)
      patient001_frame01_gt.nii.gz   labels of the ED frame (0 background, 1 RV, 2 Myo, 3 LV)
      patient001_frame12.nii.gz      image of the ES frame, and its _gt file
      [patient001_frame01_points.nii.gz]  optional point annotations (class index at annotated voxels, 0 elsewhere)
    patient002/ ...
"""

_PATIENT = re.compile(r"^patient\d{3}$")


def acdc_subset_dir(dataset_dir: str | Path, subset: str = "training") -> Path:
    """Return ``<dataset_dir>/<subset>`` (or ``<dataset_dir>/database/<subset>``).

    Raises:
        DatasetLayoutError: if neither exists or it holds no ``patientNNN`` folder.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", ACDC_LAYOUT)
    for candidate in (root / subset, root / "database" / subset):
        if candidate.is_dir():
            if not any(_PATIENT.match(p.name) for p in candidate.iterdir() if p.is_dir()):
                raise DatasetLayoutError(candidate, "holds no patientNNN folder", ACDC_LAYOUT)
            return candidate
    raise DatasetLayoutError(root, f"has no '{subset}/' folder", ACDC_LAYOUT)


def read_info_cfg(path: str | Path) -> dict[str, str]:
    """Parse an ACDC ``Info.cfg`` (``Key: value`` lines).

    Raises:
        DatasetLayoutError: if the file is missing or lacks the ED/ES frame numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetLayoutError(path, "Info.cfg is missing", ACDC_LAYOUT)
    info: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    for key in ("ED", "ES"):
        if not info.get(key, "").isdigit():
            raise DatasetLayoutError(path, f"has no integer '{key}:' frame number", ACDC_LAYOUT)
    return info


def acdc_cases(
    dataset_dir: str | Path, subset: str = "training", require_labels: bool = True, require_points: bool = False
) -> list[dict[str, str]]:
    """List one item per (patient, ED/ES frame): ``image``, ``label``, optionally ``points``, ``patient``, ``phase``.

    Raises:
        DatasetLayoutError: naming the first missing file.
    """
    subset_dir = acdc_subset_dir(dataset_dir, subset)
    cases = []
    for patient_dir in sorted(p for p in subset_dir.iterdir() if p.is_dir() and _PATIENT.match(p.name)):
        info = read_info_cfg(patient_dir / "Info.cfg")
        for phase in ("ED", "ES"):
            stem = f"{patient_dir.name}_frame{int(info[phase]):02d}"
            item = {"image": str(patient_dir / f"{stem}.nii.gz"), "patient": patient_dir.name, "phase": phase}
            if not Path(item["image"]).is_file():
                raise DatasetLayoutError(item["image"], f"{phase} image named by Info.cfg is missing", ACDC_LAYOUT)
            label = patient_dir / f"{stem}_gt.nii.gz"
            if label.is_file():
                item["label"] = str(label)
            elif require_labels:
                raise DatasetLayoutError(label, "label file is missing", ACDC_LAYOUT)
            points = patient_dir / f"{stem}_points.nii.gz"
            if points.is_file():
                item["points"] = str(points)
            elif require_points:
                raise DatasetLayoutError(points, "point annotation file is missing (points_source: file)", ACDC_LAYOUT)
            cases.append(item)
    return cases


def acdc_volume_datalist(  # noqa: D417
    dataset_dir: str | Path,
    split: str = "train",
    fractions: Sequence[float] = (0.65, 0.10, 0.25),
    seed: int = 0,
    subset: str = "training",
    require_labels: bool = True,
    require_points: bool = False,
) -> list[dict[str, str]]:
    """Volumes of one patient-level split (the paper: 65/10/25 of ACDC's 100 training patients).

    Args:
        split: ``train``, ``val``, ``test`` or ``all``.
    """
    if split not in (*SPLIT_NAMES, "all"):
        raise ValueError(f"split must be one of {(*SPLIT_NAMES, 'all')}, got '{split}'")
    cases = acdc_cases(dataset_dir, subset, require_labels=require_labels, require_points=require_points)
    if split == "all":
        return cases
    patients = split_groups([c["patient"] for c in cases], fractions, seed)[split]
    return [c for c in cases if c["patient"] in set(patients)]
