"""Deterministic brain-like sample in the neurite-oasis layout (2D slices and 3D volumes), for CPU runs and tests.

Every subject is one shared template, pulled back through its own known smooth deformation (a small random affine
map plus a smooth random displacement from a coarse control grid), so labels move with the image and every pair of
subjects is related by a smooth transform. The template is analytic in normalised coordinates ``[-1, 1]^d``: a brain
ellipsoid split into hemispheres, a cortical ribbon with a gyral (sinusoidally modulated) inner boundary, white
matter, lateral ventricles, thalami, caudates, putamina, a third ventricle and a brainstem (13 labels, a subset of
the 24/35 FreeSurfer-style classes; ventricle size varies per subject like atrophy). Images: label-dependent
intensities with per-subject jitter, partial-volume blur, a smooth multiplicative bias field and Gaussian noise,
in ``[0, 1]`` like the ``*_norm`` files.

Files per subject, as the real archives: ``slice_norm``, ``slice_seg4``, ``slice_seg24`` (``H x W x 1``) and,
optionally, ``aligned_norm``, ``aligned_seg4``, ``aligned_seg35``; ``subjects.txt`` at the root.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import write_folder_atomically

__all__ = ["SAMPLE_LABELS", "SEG4_OF_LABEL", "template_labels", "write_oasis_sample"]

#: label value -> (name, mean intensity)
SAMPLE_LABELS: dict[int, tuple[str, float]] = {
    1: ("left_cerebral_white_matter", 0.85),
    2: ("left_cerebral_cortex", 0.52),
    3: ("left_lateral_ventricle", 0.12),
    4: ("left_thalamus", 0.70),
    5: ("left_caudate", 0.60),
    6: ("left_putamen", 0.64),
    7: ("brainstem", 0.76),
    8: ("right_cerebral_white_matter", 0.85),
    9: ("right_cerebral_cortex", 0.52),
    10: ("right_lateral_ventricle", 0.12),
    11: ("right_thalamus", 0.70),
    12: ("right_caudate", 0.60),
    13: ("right_putamen", 0.64),
    14: ("third_ventricle", 0.14),
}
#: neurite's 4 classes: 1 cortex, 2 subcortical grey matter, 3 white matter, 4 CSF
SEG4_OF_LABEL = {1: 3, 2: 1, 3: 4, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3, 9: 1, 10: 4, 11: 2, 12: 2, 13: 2, 14: 4}

# (label left, label right or None, centre (x, y, z), semi-axes (x, y, z)); x: left-right, y: up, z: front-back
_DEEP = [
    (4, 11, (0.15, -0.12, 0.0), (0.11, 0.09, 0.14)),
    (5, 12, (0.20, 0.20, 0.15), (0.06, 0.10, 0.14)),
    (6, 13, (0.36, 0.02, 0.05), (0.07, 0.15, 0.20)),
    (7, None, (0.0, -0.62, -0.1), (0.13, 0.22, 0.15)),
]


def template_labels(coords: np.ndarray, ventricle_scale: float = 1.0) -> np.ndarray:
    """Label of the analytic template at normalised coordinates.

    Args:
        coords: ``(d, ...)`` points in ``[-1, 1]^d``, ``d`` = 2 (a coronal slice, z = 0) or 3.
        ventricle_scale: growth factor of the ventricles (per-subject atrophy).

    Returns:
        integer label map of shape ``coords.shape[1:]`` (0 = background).
    """
    x, y = coords[0], coords[1]
    z = coords[2] if coords.shape[0] > 2 else np.zeros_like(x)
    r = np.sqrt((x / 0.80) ** 2 + (y / 0.86) ** 2 + (z / 0.90) ** 2)
    theta = np.arctan2(y, x)
    phi = np.arctan2(z, np.hypot(x, y))
    inner = 0.80 + 0.05 * np.sin(13 * theta) * np.cos(5 * phi)  # gyral inner boundary of the cortex
    left = x < 0
    labels = np.zeros(x.shape, dtype=np.int16)
    brain = r < 1.0
    fissure = (np.abs(x) < 0.025) & (y > 0.05)  # interhemispheric fissure
    labels[brain & (r >= inner) & left] = 2
    labels[brain & (r >= inner) & ~left] = 9
    labels[brain & (r < inner) & left] = 1
    labels[brain & (r < inner) & ~left] = 8
    labels[fissure & brain] = 0

    def ellipsoid(centre: Sequence[float], axes: Sequence[float]) -> np.ndarray:
        return ((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 + (
            (z - centre[2]) / axes[2]
        ) ** 2 < 1.0

    for lab_l, lab_r, (cx, cy, cz), axes in _DEEP:
        if lab_r is None:
            labels[ellipsoid((cx, cy, cz), axes)] = lab_l
            continue
        labels[ellipsoid((-cx, cy, cz), axes)] = lab_l
        labels[ellipsoid((cx, cy, cz), axes)] = lab_r
    s = ventricle_scale
    labels[ellipsoid((-0.11, 0.12, 0.0), (0.06 * s, 0.15 * s, 0.25))] = 3
    labels[ellipsoid((0.11, 0.12, 0.0), (0.06 * s, 0.15 * s, 0.25))] = 10
    labels[ellipsoid((0.0, -0.12, 0.0), (0.03 * s, 0.09, 0.12))] = 14
    return labels


def _smooth_field(rng: np.random.Generator, shape: Sequence[int], grid: int, amplitude: float) -> np.ndarray:
    """A smooth random displacement (normalised units): Gaussian control points, cubic upsampling."""
    d = len(shape)
    control = rng.normal(0.0, amplitude, size=(d,) + (grid,) * d)
    zoom = [s / grid for s in shape]
    return np.stack([ndimage.zoom(c, zoom, order=3, mode="nearest")[tuple(slice(0, s) for s in shape)]
                     for c in control])  # fmt: skip


def _subject(rng: np.random.Generator, shape: Sequence[int], deform: float) -> tuple[np.ndarray, np.ndarray]:
    """One subject: (image float32 in [0, 1], labels int16) of ``shape``."""
    d = len(shape)
    axes = [np.linspace(-1.0, 1.0, s) for s in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"))
    # small affine: rotation in the first plane, anisotropic scaling, translation
    angle = np.deg2rad(rng.uniform(-6, 6))
    rot = np.eye(d)
    rot[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    scale = np.diag(rng.uniform(0.93, 1.07, size=d))
    shift = rng.uniform(-0.04, 0.04, size=d)
    coords = np.tensordot(rot @ scale, grid, axes=1) + shift.reshape((d,) + (1,) * d)
    coords = coords + _smooth_field(rng, shape, grid=5, amplitude=deform)
    labels = template_labels(coords, ventricle_scale=rng.uniform(0.85, 1.35))
    means = {k: v + rng.normal(0, 0.025) for k, (_, v) in SAMPLE_LABELS.items()}
    image = np.zeros(shape, dtype=np.float64)
    for k, mean in means.items():
        image[labels == k] = mean
    image = ndimage.gaussian_filter(image, 0.6)
    bias = 1.0 + _smooth_field(rng, shape, grid=3, amplitude=0.08)[0]
    image = image * bias + rng.normal(0, 0.025, size=shape) * (labels > 0)
    return np.clip(image, 0.0, 1.0).astype(np.float32), labels


def write_oasis_sample(
    root: str | Path,
    seed: int = 0,
    num_subjects: int = 32,
    size_2d: Sequence[int] = (80, 96),
    size_3d: Sequence[int] | None = (32, 40, 48),
    deformation: float = 0.06,
    overwrite: bool = False,
) -> Path:
    """Write the sample in the neurite-oasis layout, atomically; return ``root``.

    Args:
        root: destination folder.
        seed: random seed (same voxels for the same arguments).
        num_subjects: number of subjects (``OASIS_OAS1_0001_MR1`` ...).
        size_2d: slice shape (half of the real 160 x 192 by default).
        size_3d: volume shape, or ``None`` to write 2D files only.
        deformation: standard deviation of the control-point displacements, in normalised units.
        overwrite: replace an existing non-empty ``root``.
    """
    import nibabel as nib

    def fill(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        names = []
        seg4 = np.zeros(max(SEG4_OF_LABEL) + 1, dtype=np.int16)
        for k, v in SEG4_OF_LABEL.items():
            seg4[k] = v
        for i in range(num_subjects):
            name = f"OASIS_OAS1_{i + 1:04d}_MR1"
            names.append(name)
            folder = tmp / name
            folder.mkdir()
            sizes = [("slice", tuple(size_2d), "seg24")]
            if size_3d is not None:
                sizes.append(("aligned", tuple(size_3d), "seg35"))
            for prefix, shape, fine in sizes:
                image, labels = _subject(rng, shape, deformation)
                if prefix == "slice":  # neurite's slices are H x W x 1 volumes
                    image, labels = image[..., None], labels[..., None]
                affine = np.eye(4)
                nib.save(nib.Nifti1Image(image, affine), folder / f"{prefix}_norm.nii.gz")
                nib.save(nib.Nifti1Image(labels, affine), folder / f"{prefix}_{fine}.nii.gz")
                nib.save(nib.Nifti1Image(seg4[labels], affine), folder / f"{prefix}_seg4.nii.gz")
        (tmp / "subjects.txt").write_text("\n".join(names) + "\n")
        (tmp / "README.txt").write_text(
            "Generated brain-like sample in the neurite-oasis layout (common/data/oasis_sample.py, seed "
            f"{seed}). Labels: " + ", ".join(f"{k} {n}" for k, (n, _) in SAMPLE_LABELS.items()) + "\n"
        )

    return write_folder_atomically(root, fill, overwrite=overwrite)
