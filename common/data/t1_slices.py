"""Real T1 slices for registration: nibabel's test volume ``anatomical.nii``, split into training and test slices.

nibabel ships one real T1 volume (33 x 41 x 25 voxels of 2 mm, LAS). Its 25 axial slices, resized to a chosen grid
and scaled to [0, 1], are the only real brain images every installation has. They are split once here: the **test
slices** (:data:`T1_TEST_SLICES`) are used by benchmarks only; the **training slices** are those at least two slices
(4 mm) away from every test slice, so no training image is a test image or its direct neighbour.

Pairs are made as registration users meet them: the slice pulled back through a smooth random deformation (a
Gaussian control grid upsampled cubically) and a mild intensity change (gamma, bias field, noise), labelled with
three intensity classes (multi-Otsu thresholds of the undeformed slice: dark, intermediate and bright tissue) that
move with the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import write_folder_atomically

__all__ = [
    "T1_TEST_SLICES",
    "deform_slice",
    "intensity_change",
    "smooth_displacement",
    "t1_axial_slices",
    "t1_tissue_labels",
    "t1_training_slices",
    "write_t1_slice_sample",
]

#: axial slices (index along the volume's last axis) kept for testing only
T1_TEST_SLICES: tuple[int, ...] = (4, 10, 16, 22)


def t1_training_slices(gap: int = 2) -> tuple[int, ...]:
    """Axial slices at least ``gap`` slices away from every test slice."""
    return tuple(z for z in range(25) if all(abs(z - t) >= gap for t in T1_TEST_SLICES))


def t1_axial_slices(size: Sequence[int] = (128, 160), slices: Sequence[int] | None = None) -> dict[int, np.ndarray]:
    """Axial slices of nibabel's ``anatomical.nii`` resized to ``size`` (cubic), float32 in [0, 1].

    Args:
        size: output grid ``(H, W)``; the slice's axes are left-right x anterior-posterior (33 x 41 voxels).
        slices: slice indices, all 25 by default.

    Returns:
        ``{index: image}``; intensities scaled by the volume's 0.5 and 99.5 percentiles and clipped.
    """
    import nibabel as nib
    from nibabel.testing import data_path

    volume = np.asarray(nib.load(str(Path(data_path) / "anatomical.nii")).get_fdata(), np.float64)
    low, high = np.percentile(volume, [0.5, 99.5])
    volume = np.clip((volume - low) / (high - low), 0.0, 1.0)
    indices = range(volume.shape[2]) if slices is None else slices
    zoom = (size[0] / volume.shape[0], size[1] / volume.shape[1])
    out = {}
    for z in indices:
        resized = ndimage.zoom(volume[:, :, z], zoom, order=3, mode="nearest")[: size[0], : size[1]]
        out[int(z)] = np.clip(resized, 0.0, 1.0).astype(np.float32)
    return out


def t1_tissue_labels(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Three tissue labels of a slice: 1 dark, 2 intermediate, 3 bright (int16).

    Multi-Otsu thresholds of the slice smoothed by a Gaussian of ``sigma`` pixels (so the labels are regions, not
    noise speckle).
    """
    from skimage.filters import threshold_multiotsu

    smooth = ndimage.gaussian_filter(image.astype(np.float64), sigma) if sigma > 0 else image
    thresholds = threshold_multiotsu(smooth, classes=3)
    return (np.digitize(smooth, thresholds) + 1).astype(np.int16)


def smooth_displacement(rng: np.random.Generator, shape: Sequence[int], amplitude: float, grid: int = 6) -> np.ndarray:
    """A smooth random displacement in voxels, ``(2, H, W)``.

    Args:
        rng: random generator.
        shape: ``(H, W)``.
        amplitude: standard deviation of the control-point displacements, as a fraction of each axis' size.
        grid: control points per axis.
    """
    out = []
    for axis, s in enumerate(shape):
        control = rng.normal(0.0, amplitude * s, size=(grid, grid))
        zoomed = ndimage.zoom(control, (shape[0] / grid, shape[1] / grid), order=3, mode="nearest")
        out.append(zoomed[: shape[0], : shape[1]])
        del axis
    return np.stack(out).astype(np.float64)


def deform_slice(image: np.ndarray, labels: np.ndarray | None, displacement: np.ndarray):
    """Sample ``image`` (linear) and ``labels`` (nearest) at ``x + displacement(x)``: the MONAI DDF convention.

    Returns:
        ``(warped image float32, warped labels int16 or None)``.
    """
    grid = np.mgrid[: image.shape[0], : image.shape[1]].astype(np.float64) + displacement
    warped = ndimage.map_coordinates(image, grid, order=1, mode="nearest").astype(np.float32)
    warped_labels = None
    if labels is not None:
        warped_labels = ndimage.map_coordinates(labels, grid, order=0, mode="nearest").astype(np.int16)
    return warped, warped_labels


def intensity_change(rng: np.random.Generator, image: np.ndarray, strength: float) -> np.ndarray:
    """Gamma, smooth multiplicative bias and noise (``strength`` 0: none)."""
    if strength <= 0:
        return image
    gamma = float(np.exp(rng.uniform(-1.0, 1.0) * 0.2 * strength))
    bias = 1.0 + smooth_displacement(rng, image.shape, 0.1 * strength / max(image.shape), grid=3)[0]
    noisy = np.power(np.clip(image, 0, 1), gamma) * bias + rng.normal(0, 0.02 * strength, image.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def write_t1_slice_sample(
    root: str | Path,
    seed: int = 0,
    num_subjects: int = 40,
    size: Sequence[int] = (128, 160),
    deformation: tuple[float, float] = (0.01, 0.06),
    intensity: float = 1.0,
    overwrite: bool = False,
) -> Path:
    """Write a neurite-oasis-layout training folder made of the real T1 **training** slices only; return ``root``.

    Subject ``i`` is training slice ``i mod n`` under its own smooth random deformation (amplitude drawn uniformly
    in ``deformation``, fraction of the axis size) and intensity change; ``slice_seg4`` and ``slice_seg24`` both
    hold the three tissue labels. The test slices (:data:`T1_TEST_SLICES`) never enter it.

    Args:
        root: destination folder.
        seed: random seed (same voxels for the same arguments).
        num_subjects: subject folders written (``OASIS_OAS1_0001_MR1`` ...).
        size: slice grid ``(H, W)``.
        deformation: range of the deformation amplitude.
        intensity: strength of the intensity change (0: none).
        overwrite: replace an existing non-empty ``root``.
    """
    import nibabel as nib

    train = t1_training_slices()
    slices = t1_axial_slices(size, train)
    labels = {z: t1_tissue_labels(img) for z, img in slices.items()}

    def fill(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        order = [train[i % len(train)] for i in range(num_subjects)]
        rng.shuffle(order)
        names = []
        for i, z in enumerate(order):
            name = f"OASIS_OAS1_{i + 1:04d}_MR1"
            names.append(name)
            folder = tmp / name
            folder.mkdir()
            field = smooth_displacement(rng, size, rng.uniform(*deformation))
            image, lab = deform_slice(slices[z], labels[z], field)
            image = intensity_change(rng, image, intensity)
            affine = np.eye(4)
            nib.save(nib.Nifti1Image(image[..., None], affine), folder / "slice_norm.nii.gz")
            for fine in ("seg4", "seg24"):
                nib.save(nib.Nifti1Image(lab[..., None], affine), folder / f"slice_{fine}.nii.gz")
        (tmp / "subjects.txt").write_text("\n".join(names) + "\n")
        (tmp / "README.txt").write_text(
            f"Real T1 training slices {list(train)} of nibabel's anatomical.nii under random smooth deformations "
            f"(common/data/t1_slices.py, seed {seed}); labels 1-3: multi-Otsu tissue classes.\n"
        )

    return write_folder_atomically(root, fill, overwrite=overwrite)
