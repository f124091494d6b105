"""Deterministic CT-colonography phantoms in Hounsfield units, prone and supine twins of each phantom patient.

The paper's 98 CT colonography scans are private, so the colon CT bundle ships this generator of volumes in the
layout :func:`common.data.colon_ct_datalist` reads::

    <root>/dataset.json                          decathlon-style datalist (patient and position per item)
    <root>/imagesTr/ctc_000_supine.nii.gz ...    int16 HU volumes, RAS, axes (x, y, z), z = 0 the lowest slice
    <root>/labelsTr/ctc_000_supine.nii.gz ...    uint8 colon lumen masks (1 colon, 0 elsewhere)

Each phantom holds what every step of the MRF initial labelling needs:

- air outside the body (-1000 HU), a body ellipse with a muscular wall (50 HU) around visceral fat (-100 HU), psoas
  muscles, and soft-tissue small-bowel loops (40 HU) in the middle slices;
- bone (700 HU): the spine behind the colon in every slice, pelvic bones in the lowest slices;
- a liver-like organ (60 HU) in the upper slices, which hold no colon (the colon-free "unrelated" slices);
- the colon: a tube along a jittered path rectum -> sigmoid -> descending -> transverse -> ascending -> caecum, with
  an air lumen (-1000 HU) and opacified fluid pools (400 HU) on the dependent side: posterior in the supine twin,
  anterior in the prone twin (the same anatomy, shifted by a voxel or two). The rectum is the only air in the
  lowest slices;
- small-bowel air pockets in the middle slices, not connected to the colon (one of them close to it), as
  distractors for the region growing;
- partial-volume blur and Gaussian noise (sigma 20 HU).

Command line: ``python -m common.data.colon_ct_sample OUT_DIR [--num-patients N] [--seed S] [--overwrite]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .atomic import write_folder_atomically

__all__ = ["COLON_PHANTOM_SHAPE", "COLON_PHANTOM_SPACING", "colon_phantom", "write_colon_ct_sample"]

COLON_PHANTOM_SHAPE: tuple[int, int, int] = (64, 64, 44)
"""Phantom volume shape (x, y, z); the colon spans the lower 3/4 of the slices."""
COLON_PHANTOM_SPACING: tuple[float, float, float] = (6.0, 6.0, 8.0)
"""Voxel size in mm (a 384 mm field of view in 64 pixels; thick slices keep the phantom small)."""

AIR_HU, FAT_HU, SOFT_HU, MUSCLE_HU, LIVER_HU, FLUID_HU, BONE_HU = -1000.0, -100.0, 40.0, 50.0, 60.0, 400.0, 700.0


def _colon_path(rng: np.random.Generator, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense points (N, 3) along the colon centre line and the lumen radius at each, rectum first."""

    def jitter(scale: float = 1.5) -> float:
        return float(rng.uniform(-scale, scale))

    top = depth * 0.62
    control = np.array(
        [
            (32 + jitter(1), 25 + jitter(1), 0.0),  # rectum, in the lowest slice
            (32 + jitter(1), 26 + jitter(1), 5.0),
            (38 + jitter(), 27 + jitter(), 9.0),  # sigmoid loop
            (44 + jitter(), 28 + jitter(), 13.0),
            (45 + jitter(), 29 + jitter(), top * 0.7),  # descending colon
            (45 + jitter(), 31 + jitter(), top),
            (32 + jitter(), 38 + jitter(), top + 1.0),  # transverse colon, anterior
            (19 + jitter(), 33 + jitter(), top),
            (19 + jitter(), 31 + jitter(), top * 0.7),  # ascending colon
            (20 + jitter(), 30 + jitter(), 14.0 + jitter(1)),  # caecum
        ]
    )
    radius = np.array([5.4, 5.2, 4.6, 4.4, 4.4, 4.6, 4.8, 4.8, 5.0, 5.8]) * rng.uniform(0.9, 1.1)
    segments, radii = [], []
    for i in range(len(control) - 1):
        n = int(np.ceil(np.linalg.norm(control[i + 1] - control[i]) / 0.25)) + 1
        t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        segments.append(control[i] + t * (control[i + 1] - control[i]))
        radii.append(radius[i] + t[:, 0] * (radius[i + 1] - radius[i]))
    return np.concatenate(segments + [control[-1:]]), np.concatenate(radii + [radius[-1:]])


def _grid(shape: tuple[int, int, int]) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)


def colon_phantom(
    seed: int | list[int] = 0, position: str = "supine", shape: tuple[int, int, int] = COLON_PHANTOM_SHAPE
) -> tuple[np.ndarray, np.ndarray]:
    """One phantom CT volume in HU and its colon lumen mask.

    The anatomy is drawn from ``numpy.random.default_rng(seed)``; ``position`` only moves the fluid pools to the
    dependent side (and the anatomy by a small shift), so both positions of a seed are the two scans of one patient.

    Args:
        seed: seed (or seed sequence) of the phantom patient.
        position: ``"supine"`` (fluid posterior, low y) or ``"prone"`` (fluid anterior, high y).
        shape: volume shape (x, y, z); x and y at least 48, z at least 32.

    Returns:
        ``(hu, mask)``: float32 HU volume and uint8 colon mask, both of ``shape``.

    Raises:
        ValueError: an unknown position or a too small shape.
    """
    if position not in ("supine", "prone"):
        raise ValueError(f"position must be 'supine' or 'prone', got {position!r}")
    if min(shape[:2]) < 48 or shape[2] < 32:
        raise ValueError(f"phantom shape must be at least (48, 48, 32), got {tuple(shape)}")
    rng = np.random.default_rng(seed)
    sx, sy = shape[0] / 64.0, shape[1] / 64.0
    points, radii = _colon_path(rng, shape[2])
    bowel = [
        (rng.uniform(27, 37), rng.uniform(33, 41), rng.uniform(shape[2] * 0.27, shape[2] * 0.55)) for _ in range(4)
    ]
    body_axes = (27.0 + rng.uniform(-1.5, 1.0), 21.0 + rng.uniform(-1.0, 1.0))
    fluid_level = rng.uniform(0.25, 0.45)
    pooled = rng.uniform(0, 1, size=len(points) // 40 + 1) < 0.6  # which stretches of the colon hold fluid
    # the second scan of a patient: the same anatomy, slightly displaced
    twin = np.random.default_rng([*np.atleast_1d(seed).tolist(), 7])
    shift = twin.integers(-1, 2, size=3).astype(float) * (position == "prone")
    shift[2] = 0.0

    grid = _grid(shape)
    x, y, z = (grid[..., 0] - shift[0]) / sx, (grid[..., 1] - shift[1]) / sy, grid[..., 2]
    hu = np.full(shape, AIR_HU)
    body = ((x - 32) / body_axes[0]) ** 2 + ((y - 30) / body_axes[1]) ** 2 <= 1
    inner = ((x - 32) / (body_axes[0] - 2.5)) ** 2 + ((y - 30) / (body_axes[1] - 2.5)) ** 2 <= 1
    hu[body] = MUSCLE_HU  # abdominal wall
    hu[inner] = FAT_HU  # visceral fat, where the colon lies
    for cx in (24.0, 40.0):  # psoas muscles beside the spine
        hu[inner & (z >= shape[2] * 0.2) & (((x - cx) / 4.0) ** 2 + ((y - 16) / 3.0) ** 2 <= 1)] = MUSCLE_HU
    mid = (z >= shape[2] * 0.22) & (z < shape[2] * 0.62)
    bowel_region = mid & (((x - 32) / 9.0) ** 2 + ((y - 37) / 6.5) ** 2 <= 1)  # small-bowel loops
    hu[bowel_region] = SOFT_HU
    hu[(x - 32) ** 2 + (y - 13) ** 2 <= 3.5**2] = BONE_HU  # spine
    low = z < shape[2] * 0.18
    for cx in (13.0, 51.0):  # pelvic bones, lowest slices only
        hu[low & (((x - cx) / 3.5) ** 2 + ((y - 20) / 6.0) ** 2 <= 1)] = BONE_HU
    liver_top = z >= shape[2] * 0.78
    hu[liver_top & (((x - 22) / 11.0) ** 2 + ((y - 33) / 10.0) ** 2 <= 1)] = LIVER_HU

    # colon lumen: voxels closer to the centre line than its local radius
    voxels = np.stack([x, y, z], -1).reshape(-1, 3)
    distance, nearest = cKDTree(points).query(voxels)
    lumen = (distance < radii[nearest]).reshape(shape)
    offset = (voxels - points[nearest])[:, 1].reshape(shape) / radii[nearest].reshape(shape)
    dependent = -offset if position == "supine" else offset  # > 0 on the side the fluid sinks to
    pooled_here = pooled[np.minimum(nearest // 40, len(pooled) - 1)].reshape(shape)
    fluid = lumen & pooled_here & (dependent > 1.0 - 2.0 * fluid_level)
    hu[lumen] = AIR_HU
    hu[fluid] = FLUID_HU

    # small-bowel air pockets: never touching the colon (one of them two voxels from its wall)
    keep_out = ndimage.binary_dilation(lumen, iterations=2)
    for i, (cx, cy, cz) in enumerate(bowel):
        r = 2.2 if i else 2.6
        pocket = (x - cx) ** 2 + (y - cy) ** 2 + ((z - cz) * 1.5) ** 2 <= r**2
        if i == 0:  # move the first pocket next to the colon: the erosion must keep it out
            dist = ndimage.distance_transform_edt(~lumen)
            candidates = np.argwhere((dist > 3.0) & (dist < 4.0) & inner & (z > 8) & (z < shape[2] * 0.5))
            if len(candidates):
                c = candidates[rng.integers(len(candidates))]
                pocket = (
                    (grid[..., 0] - c[0]) ** 2 + (grid[..., 1] - c[1]) ** 2 + (grid[..., 2] - c[2]) ** 2
                ) <= 1.6**2
        hu[pocket & ~keep_out & inner] = AIR_HU

    hu = ndimage.gaussian_filter(hu, sigma=(0.5, 0.5, 0.3))  # partial volume
    noise = np.random.default_rng([*np.atleast_1d(seed).tolist(), 1 if position == "supine" else 2])
    hu = hu + noise.normal(0.0, 20.0, size=shape)
    return np.clip(np.round(hu), -1024, 3071).astype(np.float32), lumen.astype(np.uint8)


def write_colon_ct_sample(
    root: str | Path,
    num_patients: int = 6,
    seed: int = 0,
    shape: tuple[int, int, int] = COLON_PHANTOM_SHAPE,
    overwrite: bool = False,
) -> Path:
    """Write ``num_patients`` phantom patients (a supine and a prone scan each) in the decathlon layout, atomically.

    Patient ``i`` is drawn from ``numpy.random.default_rng([seed, i])``; the same arguments give the same voxels.

    Args:
        root: destination folder.
        num_patients: number of phantom patients (two volumes each), 1 to 999.
        seed: base seed.
        shape: volume shape (x, y, z).
        overwrite: replace an existing non-empty ``root``.

    Returns:
        ``root`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``num_patients`` out of range.
        FileExistsError: ``root`` exists, is not empty and ``overwrite`` is false.
    """
    import nibabel as nib

    if not 1 <= num_patients <= 999:
        raise ValueError(f"num_patients must be between 1 and 999, got {num_patients}")
    affine = np.diag([*COLON_PHANTOM_SPACING, 1.0])

    def fill(folder: Path) -> None:
        (folder / "imagesTr").mkdir()
        (folder / "labelsTr").mkdir()
        training = []
        for i in range(num_patients):
            patient = f"ctc_{i:03d}"
            for position in ("supine", "prone"):
                hu, mask = colon_phantom([seed, i], position, shape)
                name = f"{patient}_{position}.nii.gz"
                nib.save(nib.Nifti1Image(hu.astype(np.int16), affine), folder / "imagesTr" / name)
                nib.save(nib.Nifti1Image(mask, affine), folder / "labelsTr" / name)
                training.append(
                    {"image": f"imagesTr/{name}", "label": f"labelsTr/{name}", "patient": patient, "position": position}
                )
        datalist = {
            "name": "CT colonography phantoms",
            "description": "deterministic colon CT phantoms in HU (common.data.colon_ct_sample)",
            "modality": {"0": "CT"},
            "labels": {"0": "background", "1": "colon"},
            "numTraining": len(training),
            "training": training,
        }
        (folder / "dataset.json").write_text(json.dumps(datalist, indent=1) + "\n")

    return write_folder_atomically(root, fill, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m common.data.colon_ct_sample", description="Write the CT colonography phantom sample."
    )
    parser.add_argument("out_dir", type=Path, help="destination folder")
    parser.add_argument("--num-patients", type=int, default=6, help="phantom patients, two scans each (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    args = parser.parse_args(argv)
    try:
        root = write_colon_ct_sample(args.out_dir, args.num_patients, args.seed, overwrite=args.overwrite)
    except FileExistsError:
        parser.error(f"{args.out_dir} exists and is not empty; pass --overwrite to replace it")
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {2 * args.num_patients} volumes to {root.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
