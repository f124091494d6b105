"""Deterministic skin-lesion samples: dermoscopy-like lesions in the ISIC layout and clinical images in class folders.

Neither ISIC (licence and size) nor the cutaneous-disease photographs of Kanekar et al. (available on request) can be
fetched here, so the bundle ships this generator of images in the real layouts.

**Dermoscopy** (:func:`write_isic_sample`, layout :data:`common.data.ISIC_LAYOUT`): a skin-tone field with uneven
illumination, pores and sometimes hairs, and one lesion whose outline is star-shaped,
``r(theta) = r0 (1 + sum_k a_k cos(k theta + phi_k))``, with an exact mask (``masks/<image>_segmentation.png``,
standing in for the paper's DeepLabv3+ masks). Melanoma differs from the benign classes in the four ABCD cues, each
drawn *independently* (abnormal with probability 0.75 for melanoma, 0.15 for benign lesions), so removing one cue
(the paper's debasing variants) leaves the others:

* Asymmetry: odd low-order harmonics (k = 1, 3) and off-centre colour, against near-elliptic benign outlines;
* Border: ragged high-order harmonics (k = 7..17) and a partly blurred edge;
* Colour: two to four blotches of black, dark brown, blue-grey or red, against one tan-to-brown tone with a darker
  centre;
* Diameter: a larger lesion (radius 22-40 % of the side against 11-24 %), so the foreground ratio alone carries
  signal, as the paper found on ISIC.

Benign keratoses carry white milia-like dots and a waxy tone; basal cell carcinomas are pinkish with thin red
vessels. ``ISIC_2019_Training_GroundTruth.csv`` lists MEL, NV, BCC and BKL images;
``ISIC_2020_Training_GroundTruth.csv`` lists further images by patient with ISIC 2020 diagnoses (melanoma, nevus,
solar lentigo, unknown) that the reader maps to the 2019 classes.

**Clinical** (:func:`write_cutaneous_sample`): class folders ``herpes_zoster/``, ``herpes_simplex/``,
``molluscum_contagiosum/``, ``non_viral/`` of cropped clinical photographs: zoster = many clustered vesicles along an
erythematous band, simplex = one tight vesicle cluster, molluscum = scattered pearly dome papules with a central
dark dot, non-viral = an irregular scaly plaque. Counts, sizes and skin tones overlap between classes.

Command line: ``python -m common.data.skin_sample OUT_DIR [--seed S] [--overwrite]``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .atomic import write_folder_atomically

__all__ = [
    "CUTANEOUS_CLASSES",
    "clinical_image",
    "dermoscopy_lesion",
    "write_cutaneous_sample",
    "write_isic_sample",
    "write_skin_sample",
]

CUTANEOUS_CLASSES = ("herpes_zoster", "herpes_simplex", "molluscum_contagiosum", "non_viral")

_BLOTCH_COLOURS = np.array([[0.08, 0.05, 0.04], [0.30, 0.16, 0.09], [0.38, 0.45, 0.58], [0.70, 0.22, 0.20]])


def _skin(rng: np.random.Generator, size: int, tone: np.ndarray) -> np.ndarray:
    """Skin field (size, size, 3) in [0, 1]: base tone, uneven illumination, pores, fine texture."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    light = 1.0 + 0.12 * np.sin(2 * np.pi * (rng.uniform() + xx * rng.uniform(0.3, 1.0))) * rng.uniform(0.3, 1.0)
    light *= 1.0 - 0.25 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * rng.uniform(0.5, 1.5)
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.2) * 0.05
    pores = (rng.uniform(size=(size, size)) < 0.004).astype(float)
    pores = ndimage.gaussian_filter(pores, 0.8) * 2.0
    field = tone[None, None, :] * (light + texture - 0.15 * pores)[..., None]
    return field


def _hairs(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    size = image.shape[0]
    for _ in range(count):
        x, y = rng.uniform(0, size, 2)
        angle = rng.uniform(0, np.pi)
        curve = rng.uniform(-0.006, 0.006)
        for _ in range(int(size * rng.uniform(0.6, 1.4))):
            angle += curve
            x, y = x + np.cos(angle) * 0.7, y + np.sin(angle) * 0.7
            r, c = int(y), int(x)
            if 0 <= r < size and 0 <= c < size:
                image[r, c] = image[r, c] * 0.3 + 0.05


def _outline(rng: np.random.Generator, theta: np.ndarray, asymmetric: bool, ragged: bool) -> np.ndarray:
    """Relative radius r(theta) / r0 of a star-shaped lesion outline."""
    r = np.ones_like(theta)
    # elongation (k = 2) keeps mirror symmetry; odd orders break it
    r += rng.uniform(0.0, 0.22) * np.cos(2 * theta + rng.uniform(0, 2 * np.pi))
    odd = (0.14, 0.32) if asymmetric else (0.0, 0.05)
    for k in (1, 3):
        r += rng.uniform(*odd) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    high = (0.025, 0.06) if ragged else (0.0, 0.008)
    for k in rng.choice(np.arange(7, 18), 4, replace=False):
        r += rng.uniform(*high) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.maximum(r, 0.3)


def dermoscopy_lesion(
    rng: np.random.Generator, size: int = 128, lesion: str = "NV", abnormal: dict[str, bool] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One dermoscopy-like image (size, size, 3) uint8 and its exact lesion mask (size, size) bool.

    Args:
        rng: random generator.
        size: image side.
        lesion: ``MEL``, ``NV``, ``BKL``, ``BCC`` or ``UNK`` (rendered like a naevus or lentigo).
        abnormal: which of the ABCD cues (keys ``A``, ``B``, ``C``, ``D``) are abnormal; drawn from the class when
            not given (melanoma 0.75 each, others 0.15).
    """
    p = 0.75 if lesion == "MEL" else 0.15
    cues = abnormal if abnormal is not None else {k: bool(rng.uniform() < p) for k in "ABCD"}
    tone = np.array([0.93, 0.74, 0.62]) * rng.uniform(0.8, 1.05) + rng.uniform(-0.03, 0.03, 3)
    image = _skin(rng, size, tone)
    r0 = size * (rng.uniform(0.22, 0.40) if cues["D"] else rng.uniform(0.11, 0.24))
    centre = size / 2 + rng.uniform(-0.12, 0.12, 2) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    dy, dx = yy - centre[0], xx - centre[1]
    rho, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    boundary = r0 * _outline(rng, theta, cues["A"], cues["B"])
    distance = boundary - rho  # > 0 inside
    edge = np.where(cues["B"], 0.6 + 2.5 * (np.cos(theta * 3 + rng.uniform(0, 6)) > 0.3), 1.0)
    alpha = 1.0 / (1.0 + np.exp(-distance / edge))
    mask = distance > 0
    depth = np.clip(distance / r0, 0, 1)  # 0 at the edge, 1 at the centre
    if lesion == "BCC":
        colour = np.array([0.78, 0.52, 0.52]) + rng.uniform(-0.05, 0.05, 3)
    elif lesion == "BKL":
        colour = np.array([0.58, 0.42, 0.28]) + rng.uniform(-0.05, 0.05, 3)
    else:
        colour = np.array([0.55, 0.36, 0.22]) * rng.uniform(0.8, 1.1)
    lesion_rgb = colour[None, None, :] * (1.0 - 0.35 * depth[..., None])
    if cues["C"]:  # multicolour blotches, placed off-centre
        for _ in range(int(rng.integers(2, 5))):
            angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.6) * r0
            by, bx = centre[0] + radius * np.sin(angle), centre[1] + radius * np.cos(angle)
            blob = np.exp(-((yy - by) ** 2 + (xx - bx) ** 2) / (2 * (rng.uniform(0.15, 0.35) * r0) ** 2))
            c = _BLOTCH_COLOURS[rng.integers(len(_BLOTCH_COLOURS))]
            lesion_rgb = lesion_rgb * (1 - 0.85 * blob[..., None]) + c * 0.85 * blob[..., None]
    network = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.0)
    lesion_rgb = lesion_rgb * (1.0 - 0.12 * (network > 0.3))[..., None]  # pigment network
    if lesion == "BKL":  # milia-like cysts
        dots = ndimage.gaussian_filter((rng.uniform(size=(size, size)) < 0.01).astype(float), 0.7) * 3
        lesion_rgb = lesion_rgb + np.clip(dots, 0, 1)[..., None] * 0.5
    if lesion == "BCC":  # thin arborising vessels
        for _ in range(3):
            _hairs_like = np.zeros((size, size))
            x, y, a = centre[1], centre[0], rng.uniform(0, 2 * np.pi)
            for _ in range(int(r0 * 1.5)):
                a += rng.uniform(-0.4, 0.4)
                x, y = x + np.cos(a), y + np.sin(a)
                if 0 <= int(y) < size and 0 <= int(x) < size:
                    _hairs_like[int(y), int(x)] = 1
            lesion_rgb = (
                lesion_rgb * (1 - 0.6 * _hairs_like[..., None])
                + np.array([0.75, 0.1, 0.12]) * 0.6 * _hairs_like[..., None]
            )
    image = image * (1 - alpha[..., None]) + lesion_rgb * alpha[..., None]
    if rng.uniform() < 0.3:
        _hairs(rng, image, int(rng.integers(1, 5)))
    image = image + rng.normal(0, 0.012, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), mask


def _vesicle(yy: np.ndarray, xx: np.ndarray, y: float, x: float, r: float) -> np.ndarray:
    return np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * r**2))


def clinical_image(rng: np.random.Generator, size: int = 128, disease: str = "non_viral") -> np.ndarray:
    """One clinical photograph crop (size, size, 3) uint8 of a disease in :data:`CUTANEOUS_CLASSES`.

    The classes overlap on purpose (faint bands, umbilication that is not always visible, papules beside plaques,
    moles and blur in any class), so that a classifier trained on the sample does not saturate.
    """
    if disease not in CUTANEOUS_CLASSES:
        raise ValueError(f"disease must be one of {CUTANEOUS_CLASSES}, got '{disease}'")
    tone = np.array([0.72, 0.52, 0.40]) * rng.uniform(0.7, 1.1) + rng.uniform(-0.04, 0.04, 3)
    image = _skin(rng, size, tone)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    red = np.zeros((size, size))
    bumps = np.zeros((size, size))
    dots = np.zeros((size, size))
    if disease in ("herpes_zoster", "herpes_simplex"):
        if disease == "herpes_zoster":  # clusters along a dermatomal band
            angle = rng.uniform(0, np.pi)
            shift = rng.uniform(-0.15, 0.15) * size
            offset = (xx - size / 2) * np.sin(angle) - (yy - size / 2) * np.cos(angle) - shift
            width = rng.uniform(0.1, 0.22) * size
            red = np.exp(-(offset**2) / (2 * width**2)) * rng.uniform(0.3, 1.0)
            centres = []
            for _ in range(int(rng.integers(2, 7))):
                t = rng.uniform(-0.45, 0.45) * size
                cy = size / 2 + t * np.sin(angle) - shift * np.cos(angle) + rng.normal(0, width * 0.3)
                cx = size / 2 + t * np.cos(angle) + shift * np.sin(angle) + rng.normal(0, width * 0.3)
                centres.append((cy, cx))
            per_cluster = (2, 7)
        else:  # one or two tight clusters
            centres = [tuple(rng.uniform(0.25, 0.75, 2) * size) for _ in range(int(rng.integers(1, 3)))]
            for cy, cx in centres:
                red = np.maximum(red, _vesicle(yy, xx, cy, cx, rng.uniform(0.07, 0.15) * size))
            per_cluster = (4, 12)
        for cy, cx in centres:
            for _ in range(int(rng.integers(*per_cluster))):
                bumps += _vesicle(yy, xx, cy + rng.normal(0, 0.04 * size), cx + rng.normal(0, 0.04 * size),
                                  rng.uniform(0.012, 0.028) * size)  # fmt: skip
        image = image * (1 - 0.45 * red[..., None]) + np.array([0.80, 0.25, 0.22]) * 0.45 * red[..., None]
        bumps = np.clip(bumps, 0, 1) * rng.uniform(0.4, 0.75)
        image = image * (1 - bumps[..., None]) + np.array([0.95, 0.90, 0.82]) * bumps[..., None]
    elif disease == "molluscum_contagiosum":
        umbilication = rng.uniform(0.0, 0.6)  # the central dot is not always visible
        for _ in range(int(rng.integers(3, 12))):
            y, x = rng.uniform(0.1, 0.9, 2) * size
            r = rng.uniform(0.02, 0.045) * size
            bumps += _vesicle(yy, xx, y, x, r)
            dots += _vesicle(yy, xx, y, x, r * 0.25)
            red = np.maximum(red, _vesicle(yy, xx, y, x, r * 2.0) * rng.uniform(0, 0.5))
        bumps, dots = np.clip(bumps, 0, 1) * rng.uniform(0.4, 0.7), np.clip(dots, 0, 1) * umbilication
        image = image * (1 - 0.45 * red[..., None]) + np.array([0.80, 0.25, 0.22]) * 0.45 * red[..., None]
        image = image * (1 - bumps[..., None]) + np.array([0.92, 0.82, 0.74]) * bumps[..., None]
        image = image * (1 - dots[..., None]) + np.array([0.35, 0.22, 0.18]) * dots[..., None]
    else:  # non-viral: an irregular scaly plaque, sometimes with papules at its edge
        blob = ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 10)
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        envelope = _vesicle(yy, xx, cy, cx, rng.uniform(0.12, 0.3) * size)
        plaque = np.clip((blob / (np.abs(blob).max() + 1e-9) + 1.2 * envelope - 0.6) * 4, 0, 1)
        scale = ndimage.gaussian_filter(rng.uniform(size=(size, size)), 0.7) > 0.56
        colour = np.array([0.62, 0.30, 0.25]) if rng.uniform() < 0.6 else np.array([0.45, 0.30, 0.22])
        strength = rng.uniform(0.35, 0.75)
        image = image * (1 - strength * plaque[..., None]) + colour * strength * plaque[..., None]
        image = image + (rng.uniform(0.05, 0.25) * scale * plaque)[..., None]
        for _ in range(int(rng.integers(0, 4))):
            angle = rng.uniform(0, 2 * np.pi)
            bumps += _vesicle(yy, xx, cy + 0.2 * size * np.sin(angle), cx + 0.2 * size * np.cos(angle), 0.02 * size)
        bumps = np.clip(bumps, 0, 1) * 0.5
        image = image * (1 - bumps[..., None]) + np.array([0.9, 0.8, 0.72]) * bumps[..., None]
    for _ in range(int(rng.integers(0, 3))):  # moles, in any class
        y, x = rng.uniform(0.05, 0.95, 2) * size
        mole = _vesicle(yy, xx, y, x, rng.uniform(0.01, 0.025) * size) * 0.7
        image = image * (1 - mole[..., None]) + np.array([0.3, 0.2, 0.15]) * mole[..., None]
    image = ndimage.gaussian_filter(image, (rng.uniform(0, 1.5),) * 2 + (0,))  # focus
    image = image + rng.normal(0, rng.uniform(0.01, 0.04), image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def write_isic_sample(
    root: str | Path,
    seed: int = 0,
    overwrite: bool = False,
    size: int = 128,
    counts_2019: dict[str, int] | None = None,
    patients_2020: int = 20,
) -> Path:
    """Write the dermoscopy sample in the ISIC layout to ``root`` atomically; same pixels for the same seed.

    Args:
        root: output folder.
        seed: random seed.
        overwrite: replace an existing non-empty ``root``.
        size: image side (ISIC images are larger and not square; the bundle crops and resizes anyway).
        counts_2019: images per class in the ISIC 2019 part (default MEL 60, NV 80, BCC 20, BKL 20).
        patients_2020: patients in the ISIC 2020 part (2-4 images each).

    Returns:
        ``root`` as a path.
    """
    return write_folder_atomically(
        root, lambda tmp: _fill_isic(tmp, seed, size, counts_2019, patients_2020), overwrite=overwrite
    )


def _fill_isic(tmp: Path, seed: int, size: int, counts_2019: dict[str, int] | None, patients_2020: int) -> None:
    counts = counts_2019 or {"MEL": 60, "NV": 80, "BCC": 20, "BKL": 20}
    classes = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
    rng = np.random.default_rng(seed)
    (tmp / "ISIC_2019_Training_Input").mkdir()
    (tmp / "ISIC_2020_Training_JPEG" / "train").mkdir(parents=True)
    (tmp / "masks").mkdir()
    index = 0

    def save(folder: Path, name: str, lesion: str) -> None:
        image, mask = dermoscopy_lesion(rng, size, lesion)
        Image.fromarray(image).save(folder / f"{name}.jpg", quality=95)
        Image.fromarray((mask * 255).astype(np.uint8)).save(tmp / "masks" / f"{name}_segmentation.png")

    order = [c for c, n in counts.items() for _ in range(n)]
    rng.shuffle(order)
    with open(tmp / "ISIC_2019_Training_GroundTruth.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", *classes])
        for lesion in order:
            name = f"ISIC_{index:07d}"
            index += 1
            save(tmp / "ISIC_2019_Training_Input", name, lesion)
            writer.writerow([name, *(f"{float(c == lesion):.1f}" for c in classes)])
    diagnoses = {"melanoma": "MEL", "nevus": "NV", "solar lentigo": "BKL", "unknown": "UNK"}
    with open(tmp / "ISIC_2020_Training_GroundTruth.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_name", "patient_id", "sex", "age_approx", "anatom_site_general_challenge",
                             "diagnosis", "benign_malignant", "target"])  # fmt: skip
        for patient in range(patients_2020):
            for _ in range(int(rng.integers(2, 5))):
                diagnosis = str(rng.choice(list(diagnoses), p=[0.3, 0.25, 0.1, 0.35]))
                name = f"ISIC_{index:07d}"
                index += 1
                save(tmp / "ISIC_2020_Training_JPEG" / "train", name, diagnoses[diagnosis])
                malignant = diagnosis == "melanoma"
                writer.writerow([name, f"IP_{patient:07d}", str(rng.choice(["male", "female"])),
                                     int(rng.integers(25, 85)), "torso", diagnosis,
                                     "malignant" if malignant else "benign", int(malignant)])  # fmt: skip


def write_cutaneous_sample(
    root: str | Path, seed: int = 0, overwrite: bool = False, size: int = 128, per_class: int = 50
) -> Path:
    """Write the 4-class clinical sample (one folder per class, ``per_class`` PNGs each) to ``root`` atomically.

    The paper: 50 images per class at 512x512 (35 train / 15 test).
    """
    return write_folder_atomically(root, lambda tmp: _fill_cutaneous(tmp, seed, size, per_class), overwrite=overwrite)


def _fill_cutaneous(tmp: Path, seed: int, size: int, per_class: int) -> None:
    rng = np.random.default_rng(seed)
    for disease in CUTANEOUS_CLASSES:
        (tmp / disease).mkdir()
        for k in range(per_class):
            Image.fromarray(clinical_image(rng, size, disease)).save(tmp / disease / f"{disease}_{k:03d}.png")


def write_skin_sample(root: str | Path, seed: int = 0, overwrite: bool = False) -> Path:
    """Write both samples atomically: ``<root>/isic`` (dermoscopy, ISIC layout) and ``<root>/cutaneous`` (4 classes)."""

    def fill(tmp: Path) -> None:
        (tmp / "isic").mkdir()
        _fill_isic(tmp / "isic", seed, 128, None, 20)
        (tmp / "cutaneous").mkdir()
        _fill_cutaneous(tmp / "cutaneous", seed + 1, 128, 50)

    return write_folder_atomically(root, fill, overwrite=overwrite)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    write_skin_sample(args.out_dir, args.seed, args.overwrite)


if __name__ == "__main__":
    main()
