"""Deterministic chest radiograph phantoms in the RSNA Pneumonia Detection and CheXpert layouts.

Each phantom has a soft-tissue thorax on a dark background, two dark lung fields, a bright mediastinum / spine
band, a heart shadow of varying size, a bright diaphragm, rib arcs crossing the lungs and film noise. Positive
images carry one or two opacities inside a lung field: smooth blobs of varied size (boxes of about 11..28 % of the
image side)
and density, faint next to the ribs (their peak is 0.8..1.6 times a rib's contrast, spread over a much larger
area), so that telling an opacity from rib crossings takes context. The box of an opacity is its +-2 sigma extent.

RSNA part: ``stage_2_train_images/<patientId>.dcm`` (12-bit MONOCHROME2 DICOM, Modality CR, BodyPartExamined
CHEST, a VOI window) and ``stage_2_train_labels.csv``. CheXpert part: ``CheXpert-v1.0-small/train.csv`` and JPEG
frontal films with image-level labels (Lung Opacity / Pneumonia / Consolidation from the opacities, Cardiomegaly
from the heart size, No Finding, a few uncertain -1 entries). Written into a temporary folder, then renamed.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .atomic import write_folder_atomically
from .chest_xray import CHEXPERT_OBSERVATIONS
from .mammography import write_mammogram_dicom

__all__ = ["chest_xray_phantom", "write_chest_xray_sample"]


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2


def _soft(d2: np.ndarray, edge: float = 0.15) -> np.ndarray:
    """1 inside an ellipse (``d2 < 1``), a smooth fall-off of relative width ``edge`` outside."""
    return np.clip((1.0 + edge - np.sqrt(d2)) / edge, 0.0, 1.0)


def chest_xray_phantom(
    rng: np.random.Generator, size: int = 256, num_opacities: int = 0, heart_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """One phantom: ``(image (size, size) float32 in [0, 1], boxes (N, 4) xyxy pixels)``.

    Args:
        rng: random generator (the phantom's anatomy, noise and opacities).
        size: image side, px.
        num_opacities: opacities to place in the lung fields.
        heart_scale: heart shadow size factor (> 1.15: cardiomegaly in the CheXpert labels).
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    image = np.full((size, size), 0.04)
    body = _soft(_ellipse(yy, xx, 0.55, 0.5, 0.52, 0.46 + rng.uniform(-0.02, 0.02)), 0.05)
    image += 0.38 * body
    lungs, lung_specs = np.zeros_like(image), []
    for side in (-1, 1):
        cy = 0.47 + rng.uniform(-0.02, 0.02)
        cx = 0.5 + side * (0.2 + rng.uniform(-0.015, 0.015))
        ry, rx = 0.3 + rng.uniform(-0.02, 0.02), 0.14 + rng.uniform(-0.01, 0.01)
        lungs = np.maximum(lungs, _soft(_ellipse(yy, xx, cy, cx, ry, rx), 0.12))
        lung_specs.append((cy, cx, ry, rx))
    image -= 0.26 * lungs
    ribs = np.zeros_like(image)
    for k in range(9):
        y0 = 0.17 + 0.072 * k + rng.uniform(-0.006, 0.006)
        centre = y0 + 0.9 * (xx - 0.5) ** 2 - 0.02
        ribs += np.exp(-(((yy - centre) / 0.011) ** 2))
    rib_contrast = 0.1
    image += rib_contrast * np.clip(ribs, 0, 1) * (0.35 + 0.65 * lungs)
    mediastinum = _soft(_ellipse(yy, xx, 0.45, 0.5, 0.42, 0.055), 0.3)
    image = np.maximum(image, 0.42 * mediastinum + image * (1 - mediastinum))
    heart = _soft(_ellipse(yy, xx, 0.63, 0.54, 0.13 * heart_scale, 0.15 * heart_scale), 0.12)
    image += 0.2 * heart * lungs + 0.05 * heart
    diaphragm = np.clip((yy - (0.8 + 0.05 * np.cos((xx - 0.5) * 6))) / 0.02, 0, 1) * body
    image += 0.22 * diaphragm
    boxes = []
    for _ in range(num_opacities):
        cy, cx, ry, rx = lung_specs[int(rng.integers(2))]
        oy = cy + rng.uniform(-0.5, 0.45) * ry
        ox = cx + rng.uniform(-0.35, 0.35) * rx
        sy, sx = rng.uniform(0.035, 0.07), rng.uniform(0.028, 0.05)
        amplitude = rng.uniform(0.8, 1.6) * rib_contrast
        blob = np.exp(-0.5 * (((yy - oy) / sy) ** 2 + ((xx - ox) / sx) ** 2))
        texture = 0.75 + 0.25 * rng.random((size, size))
        image += amplitude * blob * texture * np.maximum(lungs, 0.3)
        x1, x2 = np.clip([(ox - 2 * sx) * size, (ox + 2 * sx) * size], 0, size)
        y1, y2 = np.clip([(oy - 2 * sy) * size, (oy + 2 * sy) * size], 0, size)
        boxes.append([x1, y1, x2, y2])
    image += rng.normal(0.0, 0.012, image.shape)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return image, np.asarray(boxes, np.float32).reshape(-1, 4)


def _write_chest_dicom(path: Path, image: np.ndarray, patient_id: str) -> None:
    """12-bit MONOCHROME2 DICOM with a VOI window, relabelled as a chest CR film."""
    import pydicom

    stored = np.round(image * 4095).astype(np.uint16)
    write_mammogram_dicom(path, stored, patient_id, "L", "PA", window=(2048.0, 4096.0), bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    for keyword in ("ImageLaterality", "Laterality", "PresentationIntentType"):
        if keyword in ds:
            delattr(ds, keyword)
    buffer = io.BytesIO()
    ds.save_as(buffer, write_like_original=False)
    path.write_bytes(buffer.getvalue())


def write_chest_xray_sample(
    root: str | Path,
    seed: int = 0,
    num_patients: int = 40,
    num_chexpert: int = 48,
    image_size: int = 256,
    positive_fraction: float = 0.7,
    overwrite: bool = False,
) -> Path:
    """Write the RSNA-layout and CheXpert-layout sample under ``root`` (see the module docstring).

    Args:
        root: destination folder (the bundle's ``sample_data``).
        seed: the random seed (same files for the same seed).
        num_patients: RSNA patients (one film each).
        num_chexpert: CheXpert frontal films.
        image_size: image side, px.
        positive_fraction: share of films with opacities.
        overwrite: replace an existing folder.

    Returns:
        ``root``.
    """
    rng = np.random.default_rng(seed)

    def fill(tmp: Path) -> None:
        rows = []
        for k in range(num_patients):
            pid = f"cxr{k:04d}-{seed:02d}"
            count = int(rng.random() < positive_fraction) * (1 + int(rng.random() < 0.35))
            image, boxes = chest_xray_phantom(rng, image_size, count, rng.uniform(0.9, 1.1))
            _write_chest_dicom(tmp / "stage_2_train_images" / f"{pid}.dcm", image, pid)
            if not len(boxes):
                rows.append([pid, "", "", "", "", 0])
            for x1, y1, x2, y2 in boxes:
                rows.append([pid, f"{x1:.1f}", f"{y1:.1f}", f"{x2 - x1:.1f}", f"{y2 - y1:.1f}", 1])
        with open(tmp / "stage_2_train_labels.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["patientId", "x", "y", "width", "height", "Target"])
            writer.writerows(rows)
        _write_chexpert(tmp, rng, num_chexpert, image_size, positive_fraction)

    return write_folder_atomically(root, fill, overwrite=overwrite)


def _write_chexpert(tmp: Path, rng: np.random.Generator, count: int, size: int, positive_fraction: float) -> None:
    from PIL import Image

    base = tmp / "CheXpert-v1.0-small"
    rows = []
    for k in range(count):
        opacities = int(rng.random() < positive_fraction) * (1 + int(rng.random() < 0.35))
        heart_scale = rng.uniform(0.9, 1.3)
        image, _ = chest_xray_phantom(rng, size, opacities, heart_scale)
        relative = f"CheXpert-v1.0-small/train/patient{k + 1:05d}/study1/view1_frontal.jpg"
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp / relative, format="JPEG", quality=95)
        labels = dict.fromkeys(CHEXPERT_OBSERVATIONS, "")
        if opacities:
            labels["Lung Opacity"] = "1.0"
            labels["Pneumonia"] = "1.0" if rng.random() < 0.6 else "-1.0"
            labels["Consolidation"] = "1.0" if opacities > 1 else ""
        if heart_scale > 1.15:
            labels["Cardiomegaly"] = "1.0" if rng.random() < 0.8 else "-1.0"
        if not opacities and heart_scale <= 1.15:
            labels["No Finding"] = "1.0"
        sex = "Female" if rng.random() < 0.5 else "Male"
        rows.append([relative, sex, int(rng.integers(20, 90)), "Frontal", "PA", *labels.values()])
    with open(base / "train.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_OBSERVATIONS])
        writer.writerows(rows)
