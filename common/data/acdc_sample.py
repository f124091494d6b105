"""Deterministic ACDC-like short-axis cine-MRI phantoms, written in ACDC's own on-disk layout.

ACDC needs registration on its challenge website, so the bundle ships this generator. It writes
``<root>/training/patientNNN/`` with ``Info.cfg`` and the ED and ES frames (image and ``_gt`` labels: 0 background,
1 RV, 2 myocardium, 3 LV). ACDC's ``patientNNN_4d.nii.gz`` (the whole cine sequence) is not written: no reader of
this collection uses it.

The phantoms are designed so that intensity-aware distances matter, as in the paper's argument: bright blood pools
(LV disc, RV crescent) separated by a dark myocardial ring, inside a body with dark lungs, grey tissue and bright
fat/vessel blobs of blood-pool intensity that are disconnected from the heart, under a smooth bias field and Rician
noise. Slices shrink from base to apex (the RV disappears on the most apical ones); the ES frame has a smaller LV
cavity and a thicker myocardium. Position, size, orientation and contrast vary per patient.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from .atomic import write_folder_atomically

__all__ = ["render_acdc_phantom", "write_acdc_sample"]

GROUPS = ("NOR", "DCM", "HCM", "MINF", "RV")


def _ellipse(rows, cols, cy, cx, ry, rx, angle=0.0) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    y, x = rows - cy, cols - cx
    return ((cos * y + sin * x) / ry) ** 2 + ((-sin * y + cos * x) / rx) ** 2 <= 1.0


def _smooth_field(rng, shape, sigma) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return field / (np.abs(field).max() + 1e-8)


def render_acdc_phantom(
    rng: np.random.Generator, anatomy: dict, phase: str, size: int, depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """One frame: ``(image int16 (size, size, depth), labels uint8 (size, size, depth))``.

    ``anatomy`` holds the per-patient geometry (see :func:`_patient_anatomy`); ``phase`` is ``"ED"`` or ``"ES"``.
    """
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    image = np.zeros((size, size, depth))
    labels = np.zeros((size, size, depth), np.uint8)
    a = anatomy
    lv_scale = 1.0 if phase == "ED" else a["es_lv_scale"]
    wall_scale = 1.0 if phase == "ED" else a["es_wall_scale"]
    body = _ellipse(rows, cols, size / 2 + a["body_dy"], size / 2, a["body_ry"], a["body_rx"])
    for z in range(depth):
        shrink = 1.0 - 0.62 * z / max(depth - 1, 1)  # base -> apex
        cy, cx = a["cy"] + 0.6 * z, a["cx"] - 0.4 * z
        r_lv = a["r_lv"] * shrink * lv_scale
        r_epi = r_lv + a["wall"] * wall_scale * (0.8 + 0.2 * shrink)
        lv = _ellipse(rows, cols, cy, cx, r_lv, r_lv * a["lv_aspect"], a["angle"])
        epi = _ellipse(rows, cols, cy, cx, r_epi, r_epi * a["lv_aspect"], a["angle"])
        myo = epi & ~lv
        rv = np.zeros_like(lv)
        if z < depth - a["apical_without_rv"]:
            d = r_epi + 0.35 * a["r_rv"] * shrink
            ry, rx = a["r_rv"] * shrink * 0.75, a["r_rv"] * shrink * 1.25
            rv = _ellipse(rows, cols, cy + d * np.sin(a["rv_angle"]), cx + d * np.cos(a["rv_angle"]), ry, rx,
                          a["rv_angle"] + np.pi / 2)  # fmt: skip
            rv &= ~ndimage.binary_dilation(epi, iterations=2)
        slice_labels = np.zeros((size, size), np.uint8)
        slice_labels[rv] = 1
        slice_labels[myo] = 2
        slice_labels[lv] = 3

        # background anatomy: tissue, lungs either side of the heart, bright fat and vessel blobs, air outside
        tissue = a["tissue"] * (1 + 0.15 * _smooth_field(rng, (size, size), 4))
        s = np.where(body, tissue, 0.0)
        for side in (-1, 1):
            lung = _ellipse(rows, cols, cy - 0.05 * size, cx + side * 0.27 * size, 0.2 * size, 0.12 * size, 0.3 * side)
            s = np.where(lung & body, a["lung"], s)
        for blob in a["blobs"]:
            s = np.where(_ellipse(rows, cols, *blob) & body, a["blood"] * 0.95, s)
        fat_ring = body & ~_ellipse(rows, cols, size / 2 + a["body_dy"], size / 2, a["body_ry"] - 3, a["body_rx"] - 3)
        s = np.where(fat_ring, a["blood"] * 0.9, s)
        # the heart: pericardial tissue, myocardium, blood pools (trabeculation texture in the pools)
        s = np.where(ndimage.binary_dilation(epi | rv, iterations=2), a["tissue"] * 0.9, s)
        s = np.where(myo, a["myo"] * (1 + 0.08 * _smooth_field(rng, (size, size), 2)), s)
        pool = a["blood"] * (1 + 0.06 * _smooth_field(rng, (size, size), 1.5))
        s = np.where(lv | rv, pool, s)
        s = ndimage.gaussian_filter(s, 0.7)  # partial volume
        image[..., z] = s
        labels[..., z] = slice_labels

    bias = 1 + a["bias"] * _smooth_field(rng, (size, size), size / 4)[..., None]
    image *= bias * a["gain"]
    noise = a["noise"]
    image = np.sqrt((image + rng.normal(0, noise, image.shape)) ** 2 + rng.normal(0, noise, image.shape) ** 2)
    return np.clip(image, 0, 32767).round().astype(np.int16), labels


def _patient_anatomy(rng: np.random.Generator, size: int) -> dict:
    blobs = []
    for _ in range(rng.integers(2, 5)):  # bright structures of blood-pool intensity, away from the heart
        angle = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.25, 0.36) * size
        blobs.append((size / 2 + dist * np.sin(angle), size / 2 + dist * np.cos(angle),
                      rng.uniform(0.025, 0.05) * size, rng.uniform(0.03, 0.07) * size, rng.uniform(0, np.pi)))  # fmt: skip
    return {
        "cy": size / 2 + rng.uniform(-0.08, 0.08) * size,
        "cx": size / 2 + rng.uniform(-0.08, 0.08) * size,
        "r_lv": rng.uniform(0.085, 0.12) * size,
        "lv_aspect": rng.uniform(0.9, 1.15),
        "angle": rng.uniform(0, np.pi),
        "wall": rng.uniform(0.045, 0.065) * size,
        "r_rv": rng.uniform(0.1, 0.14) * size,
        "rv_angle": np.pi + rng.uniform(-0.5, 0.5),
        "apical_without_rv": int(rng.integers(1, 3)),
        "es_lv_scale": rng.uniform(0.65, 0.8),
        "es_wall_scale": rng.uniform(1.2, 1.45),
        "body_ry": rng.uniform(0.36, 0.42) * size,
        "body_rx": rng.uniform(0.44, 0.48) * size,
        "body_dy": rng.uniform(-0.03, 0.03) * size,
        "blobs": blobs,
        "blood": rng.uniform(520, 680),
        "myo": rng.uniform(140, 220),
        "tissue": rng.uniform(260, 340),
        "lung": rng.uniform(30, 70),
        "bias": rng.uniform(0.1, 0.25),
        "gain": rng.uniform(0.85, 1.2),
        "noise": rng.uniform(20, 40),
    }


def write_acdc_sample(
    root: str | Path,
    num_patients: int = 20,
    image_size: int = 128,
    num_slices: int = 8,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write ``num_patients`` synthetic patients in ACDC's layout under ``root/training`` (atomically).

    Args:
        root: dataset root (what the bundle's ``dataset_dir`` points at).
        num_patients: patients ``patient001`` ... (ACDC's training set has 100).
        image_size: in-plane size; the in-plane spacing is ``1.5 * 256 / image_size`` mm, slices are 10 mm apart.
        num_slices: short-axis slices per volume (varies by -1..+1 per patient).
        seed: same seed, same voxels.
        overwrite: replace an existing, non-empty ``root``.

    Raises:
        FileExistsError: ``root`` is not empty and ``overwrite`` is false.
    """
    if num_patients < 1 or image_size < 32 or num_slices < 3:
        raise ValueError(f"need num_patients >= 1, image_size >= 32, num_slices >= 3; got "
                         f"{num_patients}, {image_size}, {num_slices}")  # fmt: skip
    spacing = 1.5 * 256 / image_size

    def fill(folder: Path) -> None:
        for number in range(1, num_patients + 1):
            rng = np.random.default_rng([seed, number])
            anatomy = _patient_anatomy(rng, image_size)
            depth = num_slices + int(rng.integers(-1, 2))
            frames = {"ED": 1, "ES": int(rng.integers(8, 16))}
            patient = folder / "training" / f"patient{number:03d}"
            patient.mkdir(parents=True)
            (patient / "Info.cfg").write_text(
                f"ED: {frames['ED']}\nES: {frames['ES']}\nGroup: {GROUPS[number % len(GROUPS)]}\n"
                f"Height: {rng.uniform(150, 195):.1f}\nNbFrame: {int(rng.integers(20, 31))}\n"
                f"Weight: {rng.uniform(50, 110):.1f}\n"
            )
            affine = np.diag([spacing, spacing, 10.0, 1.0])
            for phase, frame in frames.items():
                image, labels = render_acdc_phantom(rng, anatomy, phase, image_size, depth)
                stem = patient / f"patient{number:03d}_frame{frame:02d}"
                nib.save(nib.Nifti1Image(image, affine), f"{stem}.nii.gz")
                nib.save(nib.Nifti1Image(labels, affine), f"{stem}_gt.nii.gz")

    return write_folder_atomically(root, fill, overwrite)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic ACDC-layout sample.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--num-patients", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--num-slices", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    root = write_acdc_sample(args.out_dir, args.num_patients, args.image_size, args.num_slices, args.seed,
                             args.overwrite)  # fmt: skip
    print(f"wrote {args.num_patients} patients in the ACDC layout to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
