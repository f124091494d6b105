"""Deterministic multiphoton-like phantoms of thyroid nodule capsules, in the layout of :mod:`common.data.thyroid_mpm`.

Each region of interest has three co-registered channels drawn from one scene:

* FSHG: collagen fibres traced along a smooth orientation field, blurred to the section's fibre thickness and
  modulated by a smooth random *zone* field (fibre-rich and fibre-poor zones);
* BSHG: punctate collagen (isolated puncta), whose density follows either the same zone field or its complement;
* TPEF: autofluorescent cells (Gaussian blobs, uniformly placed) over a weak fibre background.

The class lies only in the RELATION between BSHG and FSHG: in FA regions the puncta sit in the fibre-rich zones
(``co_located=True``), in FTC regions in the fibre-poor zones. The zone field ``z`` is a logistic function of a
standardised smooth Gaussian field, so ``z`` and ``1 - z`` have the same distribution: every single modality
(its fibre, punctate and cell densities, drawn independently of the class, and its spatial pattern) has the same
distribution in both classes, and a classifier of one modality alone is at chance by construction. Sections (FA 6,
FTC 10, scaled down from the paper's 8 and 20) share a style: per-modality gain, fibre thickness, mean fibre
orientation and noise level.
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


def _zone_field(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Smooth field in (0, 1) whose distribution is symmetric about 0.5 (``z`` and ``1 - z`` are alike)."""
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), scale, mode="wrap")
    field /= field.std() + 1e-12
    return 1.0 / (1.0 + np.exp(-3.0 * field))


def mpm_phantom(
    rng: np.random.Generator,
    size: int = 128,
    fibre_density: float = 0.5,
    cell_density: float = 0.5,
    punctate_density: float = 0.5,
    co_located: bool = True,
    coupling: float = 1.0,
    zone_scale: float | None = None,
    thickness: float = 1.0,
    orientation: float = 0.0,
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
    noise: float = 0.05,
) -> np.ndarray:
    """One region: float array ``(size, size, 3)`` = BSHG, FSHG, TPEF (unscaled intensities).

    Args:
        rng: random generator (the output is a function of its state and the arguments).
        size: region side in pixels.
        fibre_density: 0..1, number of collagen fibres (FSHG).
        cell_density: 0..1, number of autofluorescent cells (TPEF).
        punctate_density: 0..1, number of isolated BSHG puncta.
        co_located: puncta follow the fibre-rich zones (FA) or the fibre-poor zones (FTC).
        coupling: 0..1, share of the punctate density that follows the zones (the rest is uniform).
        zone_scale: smoothing (pixels) of the zone field; default ``size / 12``.
        thickness: fibre blur (pixels).
        orientation: mean fibre orientation (radians).
        gains: per-modality gains (BSHG, FSHG, TPEF).
        noise: additive Gaussian noise, relative to each modality's maximum.
    """
    zones = _zone_field(rng, size, size / 12 if zone_scale is None else zone_scale)
    theta = _orientation_field(rng, size, orientation)
    fibres = np.zeros((size, size))
    count = int(40 + 360 * fibre_density)
    pos = rng.uniform(0, size, (count, 2))
    for _ in range(int(size * 0.5)):  # trace all fibres one step at a time along the orientation field
        r = np.clip(pos[:, 0].astype(int), 0, size - 1)
        c = np.clip(pos[:, 1].astype(int), 0, size - 1)
        np.add.at(fibres, (r, c), 1.0)
        angle = theta[r, c]
        pos = np.mod(pos + np.stack([np.sin(angle), np.cos(angle)], 1), size)
    fibres = ndimage.gaussian_filter(np.minimum(fibres, 3.0), thickness) * (0.1 + 0.9 * zones)
    fshg = gains[1] * fibres
    where = zones if co_located else 1.0 - zones
    rate = (0.008 + 0.06 * punctate_density) * ((1.0 - coupling) * 0.5 + coupling * where)
    puncta = ndimage.gaussian_filter((rng.random((size, size)) < rate).astype(float), 0.8)
    bshg = gains[0] * 4.0 * puncta
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
    coupling: float = 1.0,
    overwrite: bool = False,
) -> Path:
    """Write the phantom dataset (``sections.csv`` + ``<section>/<roi>.png``) atomically under ``root``.

    Every region draws its fibre, cell and punctate densities uniformly in 0.2..0.8 whatever its class; the class
    (the section's label) only decides whether the BSHG puncta follow the FSHG fibre-rich zones (FA) or avoid them
    (FTC).

    Args:
        root: dataset folder.
        seed: random seed (the output is a function of the arguments only).
        size: region side in pixels (the paper: 512).
        sections: number of FA and FTC tissue sections.
        rois_per_section: inclusive range of regions per section.
        coupling: 0..1, how strictly the puncta follow the zones (0: the classes are identical).
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
            for r in range(n_rois):
                fibre, cell, punctate = (float(v) for v in rng.uniform(0.2, 0.8, 3))
                stack = mpm_phantom(rng, size, fibre, cell, punctate, label == "FA", coupling, **style)
                image = np.stack([scale_modality(stack[..., m]) for m in range(3)], -1)
                Image.fromarray(image).save(tmp / name / f"roi{r:02d}.png")
        (tmp / "sections.csv").write_text("\n".join(rows) + "\n")

    return write_folder_atomically(root, fill, overwrite=overwrite)
