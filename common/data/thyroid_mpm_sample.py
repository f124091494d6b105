"""Deterministic multiphoton-like phantoms of thyroid nodule capsules, in the layout of :mod:`common.data.thyroid_mpm`.

Each region of interest has three co-registered channels drawn from one scene:

* FSHG: collagen fibres traced along a smooth orientation field, blurred to the section's fibre thickness;
* BSHG: the same fibres made punctate (multiplied by sparse dots) plus isolated punctate collagen;
* TPEF: autofluorescent cells (Gaussian blobs) over a weak fibre background.

The class depends on more than one modality: every region draws a fibre density ``a`` (FSHG, and the fibre part of
BSHG) and a punctate density ``c = a + margin`` for FA or ``a - margin`` for FTC (the isolated puncta of BSHG), so the
class lies in the punctate-vs-fibre relation; the cell density (TPEF) is drawn independently of the class. ``c``'s
marginal still differs between the classes, so BSHG alone is partly informative. Sections (FA 6, FTC 10, scaled down
from the paper's 8 and 20) share a style: per-modality gain, fibre thickness, orientation and noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import write_folder_atomically
from .thyroid_mpm import MPM_CLASSES, scale_modality

__all__ = ["mpm_phantom", "write_mpm_sample"]


def _orientation_field(rng: np.random.Generator, size: int, base: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 6)
    noise /= np.abs(noise).max() + 1e-9
    return base + 0.9 * noise


def mpm_phantom(
    rng: np.random.Generator,
    size: int = 128,
    fibre_density: float = 0.5,
    cell_density: float = 0.5,
    punctate_density: float = 0.5,
    thickness: float = 1.0,
    orientation: float = 0.0,
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
    noise: float = 0.05,
) -> np.ndarray:
    """One region: float array ``(size, size, 3)`` = BSHG, FSHG, TPEF (unscaled intensities)."""
    theta = _orientation_field(rng, size, orientation)
    fibres = np.zeros((size, size))
    count = int(10 + 110 * fibre_density)
    pos = rng.uniform(0, size, (count, 2))
    steps = int(size * 0.5)
    for _ in range(steps):  # trace all fibres one step at a time along the orientation field
        r = np.clip(pos[:, 0].astype(int), 0, size - 1)
        c = np.clip(pos[:, 1].astype(int), 0, size - 1)
        np.add.at(fibres, (r, c), 1.0)
        angle = theta[r, c]
        pos = pos + np.stack([np.sin(angle), np.cos(angle)], 1)
        pos = np.mod(pos, size)
    fibres = ndimage.gaussian_filter(np.minimum(fibres, 3.0), thickness)
    fshg = gains[1] * fibres
    dots = ndimage.gaussian_filter((rng.random((size, size)) < 0.25).astype(float), 0.7)
    puncta = ndimage.gaussian_filter((rng.random((size, size)) < 0.002 + 0.02 * punctate_density).astype(float), 0.8)
    bshg = gains[0] * (fibres * dots * 0.5 + 4.0 * puncta)
    cells = np.zeros((size, size))
    n_cells = int(5 + 70 * cell_density)
    cells[rng.integers(0, size, n_cells), rng.integers(0, size, n_cells)] = 1.0
    cells = ndimage.gaussian_filter(cells, 2.2) * 25.0
    tpef = gains[2] * (cells + 0.15 * fibres)
    stack = np.stack([bshg, fshg, tpef], -1)
    scale = stack.reshape(-1, 3).max(0) + 1e-9
    return stack + noise * scale * rng.standard_normal(stack.shape)


def write_mpm_sample(
    root: str | Path,
    seed: int = 0,
    size: int = 128,
    sections: tuple[int, int] = (6, 10),
    rois_per_section: tuple[int, int] = (6, 9),
    margin: float = 0.3,
    overwrite: bool = False,
) -> Path:
    """Write the phantom dataset (``sections.csv`` + ``<section>/<roi>.png``) atomically under ``root``.

    Args:
        root: dataset folder.
        seed: random seed (the output is a function of the arguments only).
        size: region side in pixels (the paper: 512).
        sections: number of FA and FTC tissue sections.
        rois_per_section: inclusive range of regions per section.
        margin: mean punctate-minus-fibre density gap separating the classes (sign = class).
        overwrite: replace an existing ``root``.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    plan = []
    for label, n in zip(MPM_CLASSES, sections):
        for k in range(n):
            name = f"{label.lower()}{k:02d}"
            style = {
                "thickness": float(rng.uniform(0.8, 1.2)),
                "orientation": float(rng.uniform(0, np.pi)),
                "gains": tuple(float(g) for g in rng.uniform(0.6, 1.4, 3)),
                "noise": float(rng.uniform(0.02, 0.04)),
            }
            plan.append((name, label, style, int(rng.integers(rois_per_section[0], rois_per_section[1] + 1))))

    def fill(tmp: Path) -> None:
        rows = ["section,label"]
        for name, label, style, n_rois in plan:
            rows.append(f"{name},{label}")
            (tmp / name).mkdir()
            sign = 1.0 if label == "FA" else -1.0
            for r in range(n_rois):
                a = float(rng.uniform(0.2, 0.8))
                c = float(np.clip(a + sign * margin + rng.normal(0, 0.06), 0.0, 1.0))
                b = float(rng.uniform(0.2, 0.8))
                stack = mpm_phantom(rng, size, a, b, c, **style)
                image = np.stack([scale_modality(stack[..., c]) for c in range(3)], -1)
                Image.fromarray(image).save(tmp / name / f"roi{r:02d}.png")
        (tmp / "sections.csv").write_text("\n".join(rows) + "\n")

    return write_folder_atomically(root, fill, overwrite=overwrite)
