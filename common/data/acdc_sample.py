"""Deterministic ACDC-like short-axis cine-MRI phantoms, written in ACDC's own on-disk layout.

ACDC (Bernard et al., IEEE TMI 2018) needs registration on its challenge website, so the bundle ships this
generator. It writes::

    <root>/training/patient001/Info.cfg                      ED: 1 / ES: <k> / Group / Height / NbFrame / Weight
    <root>/training/patient001/patient001_frame01.nii.gz     ED image, int16 (X, Y, Z), affine diag(sx, sy, 10)
    <root>/training/patient001/patient001_frame01_gt.nii.gz  ED labels, uint8: 0 background, 1 RV, 2 Myo, 3 LV
    <root>/training/patient001/patient001_frameKK.nii.gz     ES frame KK (named by Info.cfg) and its _gt file
    <root>/training/patient002/...

ACDC's ``patientNNN_4d.nii.gz`` (the whole cine sequence) is not written: no reader of this collection uses it.

Each frame is a stack of balanced-SSFP-like short-axis slices from the base (slice 0) to the apex, built in
millimetres and sampled on the pixel grid, so that a different ``image_size`` gives the same anatomy at another
resolution:

- heart: bright LV blood pool (with two papillary muscles, labelled LV as in ACDC) inside a darker myocardial ring
  of realistic thickness; a bright RV crescent wrapping the septum, with a thin unlabelled free wall; both shrink
  from base to apex and the RV is absent on the 1-2 most apical slices. The ES frame has a smaller cavity and a
  myocardium thickened by conserving its area. The ``Group`` of ``Info.cfg`` shapes the heart (DCM: large thin
  LV, weak contraction; HCM: thick wall, small cavity; MINF: regional thinning, weak contraction; RV: large RV).
- surroundings: dark lungs, grey mediastinum, chest-wall muscle, and bright structures of blood-pool intensity
  that are *not* connected to the blood pools: subcutaneous fat, pericardial fat pads, the descending aorta,
  cerebrospinal fluid in the spinal canal, and stomach fluid beside the liver on apical slices. Intensity alone
  therefore does not give the heart; intensity-aware distances (geodesic, minimum barrier) are tested by them.
- acquisition: partial volume at every edge, a truncated k-space along the phase-encoding axis (Gibbs ringing),
  a smooth multiplicative coil bias field, and complex Gaussian noise whose magnitude is Rician.

Patients vary in position, size, orientation (in-plane rotation), in-plane spacing (about ``1.5 * 256 /
image_size`` mm, +-6 %), slice count (``num_slices`` +-1), contrast and noise. The same ``seed`` gives the same voxel
values: patient ``n`` is drawn from ``numpy.random.default_rng([seed, n])`` only.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from .atomic import write_folder_atomically

__all__ = ["write_acdc_sample"]

_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")  # ACDC's order (patients 1-20 DCM, 21-40 HCM, ...)
_SLICE_GAP_MM = 10.0

# Group -> (LV ED cavity radius mm, wall mm, ES/ED cavity radius ratio, RV size factor, RV ES ratio)
_GROUP_HEARTS = {
    "NOR": (24.0, 8.0, 0.70, 1.00, 0.70),
    "DCM": (31.0, 6.5, 0.88, 1.00, 0.80),
    "HCM": (20.0, 14.0, 0.60, 0.95, 0.70),
    "MINF": (28.0, 7.5, 0.85, 1.00, 0.78),
    "RV": (22.0, 8.0, 0.72, 1.45, 0.88),
}


@dataclass
class _Patient:
    """Everything drawn once per patient (lengths in mm, intensities relative to the blood pool)."""

    group: str
    spacing: float
    depth: int
    rotation: float
    body: tuple[float, float, float, float]  # centre u, centre v, half-width, half-height
    fat: float
    muscle: float
    heart: tuple[float, float]  # LV centre (u, v) at the base
    apex_shift: tuple[float, float]  # LV centre displacement per slice
    r_endo: float
    wall: float
    es_ratio: float
    rv_size: float
    rv_es_ratio: float
    rv_angle: float
    rv_thickness: float
    harmonics: np.ndarray  # (3, 3): amplitude, phase, order of the contour wobble
    minf_angle: float
    apical_without_rv: int
    fat_pads: list[tuple[float, float, float]]  # angle from the LV centre, distance beyond the heart, radius
    aorta: tuple[float, float, float]
    contrast: dict[str, float]
    blood: float
    noise: float
    kspace_fraction: float
    bias: np.ndarray  # (5,) coefficients of the smooth coil field


def _draw_patient(rng: np.random.Generator, number: int, image_size: int, num_slices: int) -> _Patient:
    group = _GROUPS[(number - 1) % len(_GROUPS)]
    r_endo, wall, es_ratio, rv_size, rv_es = _GROUP_HEARTS[group]
    jitter = rng.uniform(0.9, 1.1, size=3)
    half_w, half_h = rng.uniform(140, 170), rng.uniform(100, 120)
    return _Patient(
        group=group,
        spacing=1.5 * 256 / image_size * rng.uniform(0.94, 1.06),
        depth=max(3, num_slices + int(rng.integers(-1, 2))),
        rotation=rng.uniform(-0.5, 0.5),
        body=(rng.uniform(-10, 10), rng.uniform(-8, 8), half_w, half_h),
        fat=rng.uniform(7, 20),
        muscle=rng.uniform(8, 14),
        heart=(rng.uniform(5, 30), rng.uniform(-30, -10)),
        apex_shift=(rng.uniform(1.0, 3.0), rng.uniform(0.5, 2.0)),
        r_endo=r_endo * jitter[0],
        wall=wall * jitter[1],
        es_ratio=float(np.clip(es_ratio * rng.uniform(0.95, 1.05), 0.5, 0.95)),
        rv_size=rv_size * jitter[2],
        rv_es_ratio=rv_es * rng.uniform(0.95, 1.05),
        rv_angle=np.pi + rng.uniform(-0.1, 0.5),
        rv_thickness=rng.uniform(18, 26),
        harmonics=np.stack([rng.uniform(0, 0.05, 3), rng.uniform(0, 2 * np.pi, 3), np.array([2.0, 3.0, 4.0])]),
        minf_angle=rng.uniform(0, 2 * np.pi),
        apical_without_rv=int(rng.integers(1, 3)),
        fat_pads=[
            (rng.uniform(0, 2 * np.pi), rng.uniform(6, 12), rng.uniform(4, 7)) for _ in range(rng.integers(1, 4))
        ],
        aorta=(rng.uniform(15, 35), rng.uniform(30, 45), rng.uniform(9, 13)),
        contrast={
            "myo": rng.uniform(0.24, 0.36),
            "fat": rng.uniform(0.85, 1.05),
            "muscle": rng.uniform(0.25, 0.35),
            "tissue": rng.uniform(0.38, 0.5),
            "lung": rng.uniform(0.04, 0.09),
            "liver": rng.uniform(0.38, 0.48),
            "fluid": rng.uniform(0.85, 1.0),
            "aorta": rng.uniform(0.9, 1.05),
        },
        blood=rng.uniform(480, 640),
        noise=rng.uniform(0.025, 0.045),
        kspace_fraction=rng.uniform(0.6, 0.85),
        bias=rng.uniform(-1, 1, 5) * np.array([0.12, 0.12, 0.15, 0.08, 0.08]),
    )


def _soft(signed_mm: np.ndarray, width_mm: float) -> np.ndarray:
    """Partial-volume coverage of a region given its signed distance (negative inside)."""
    return 0.5 * (1.0 - np.tanh(signed_mm / width_mm))


def _ellipse_sd(u: np.ndarray, v: np.ndarray, cu: float, cv: float, a: float, b: float, angle: float = 0.0):
    """Approximate signed distance (mm) to an ellipse with half-axes ``a`` (along ``angle``) and ``b``."""
    c, s = np.cos(angle), np.sin(angle)
    du, dv = u - cu, v - cv
    x, y = c * du + s * dv, -s * du + c * dv
    return (np.sqrt((x / a) ** 2 + (y / b) ** 2) - 1.0) * min(a, b)


def _render_slice(
    p: _Patient, u: np.ndarray, v: np.ndarray, z: int, phase: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One slice: ``(intensity relative to the blood pool, labels uint8)``; ``u``, ``v`` in mm (anatomy frame)."""
    t = (z + 0.5) / p.depth  # 0 at the base, 1 at the apex
    es = phase == "ES"
    shape = u.shape
    edge = 0.45 * p.spacing
    c = p.contrast

    def smooth(sigma_mm: float) -> np.ndarray:
        """Zero-mean, unit-variance Gaussian random field with correlation length ``sigma_mm``."""
        field = ndimage.gaussian_filter(rng.normal(size=shape), sigma_mm / p.spacing)
        return field / (field.std() + 1e-12)

    img = np.zeros(shape)

    def paint(coverage: np.ndarray, value: float | np.ndarray) -> None:
        nonlocal img
        img = img * (1.0 - coverage) + coverage * value

    # body: subcutaneous fat, chest-wall muscle, mediastinal tissue, lungs
    bu, bv, bw, bh = p.body
    paint(_soft(_ellipse_sd(u, v, bu, bv, bw, bh), edge), c["fat"] * (1 + 0.05 * smooth(4)))
    paint(_soft(_ellipse_sd(u, v, bu, bv, bw - p.fat, bh - p.fat), edge), c["muscle"] * (1 + 0.08 * smooth(3)))
    inner_w, inner_h = bw - p.fat - p.muscle, bh - p.fat - p.muscle
    paint(_soft(_ellipse_sd(u, v, bu, bv, inner_w, inner_h), edge), c["tissue"] * (1 + 0.06 * smooth(4)))
    vessels = np.clip(smooth(2.0) - 1.5, 0, 1)  # pulmonary vessels
    for side in (-1, 1):
        lung = _ellipse_sd(u, v, bu + side * 0.5 * inner_w, bv - 0.05 * inner_h, 0.46 * inner_w, 0.78 * inner_h)
        paint(_soft(lung, 1.5 * edge), c["lung"] + 0.25 * vessels)
    # spine (vertebral body, bright CSF behind it) with paraspinal muscle, and the descending aorta
    spine_v = bv + bh - p.fat - 32
    paint(_soft(_ellipse_sd(u, v, bu, spine_v + 5, 42, 26), edge), c["muscle"])
    paint(_soft(_ellipse_sd(u, v, bu, spine_v - 8, 17, 15), edge), c["tissue"] * (1 + 0.1 * smooth(2)))
    paint(_soft(_ellipse_sd(u, v, bu, spine_v + 14, 6, 5), edge), c["fluid"])
    au, av, ar = p.aorta
    paint(_soft(_ellipse_sd(u, v, bu + au, spine_v - av, ar + 2.5, ar + 2.5), edge), c["tissue"])
    paint(_soft(_ellipse_sd(u, v, bu + au, spine_v - av, ar, ar), edge), c["aorta"])
    # liver (image left, below the heart) and stomach fluid (image right) appear towards the apex
    if t > 0.45:
        grow = (t - 0.45) / 0.55
        paint(_soft(_ellipse_sd(u, v, bu - 60, bv + 45, 35 + 40 * grow, 20 + 25 * grow, 0.3), 1.5 * edge),
              c["liver"] * (1 + 0.05 * smooth(5)))  # fmt: skip
        paint(_soft(_ellipse_sd(u, v, bu + 70, bv + 45, 10 + 18 * grow, 8 + 12 * grow, -0.4), edge), c["fluid"])

    # heart geometry at this slice
    hu = bu + p.heart[0] + z * p.apex_shift[0]
    hv = bv + p.heart[1] + z * p.apex_shift[1]
    du, dv = u - hu, v - hv
    radius, theta = np.hypot(du, dv), np.arctan2(dv, du)
    wobble = 1.0 + sum(a * np.cos(k * theta + ph) for a, ph, k in p.harmonics.T)
    taper = 1.0 - 0.55 * t**1.6
    r_endo_ed = p.r_endo * taper * wobble
    wall = p.wall * (1.0 - 0.2 * t) * (1.0 + 0.08 * np.cos(theta - p.rv_angle))  # septum a little thicker
    ratio = p.es_ratio if es else 1.0
    if p.group == "MINF":  # a scarred sector: thinner, and it hardly contracts
        scar = np.exp(-(np.angle(np.exp(1j * (theta - p.minf_angle))) ** 2) / 0.35)
        wall = wall * (1.0 - 0.45 * scar)
        ratio = ratio + (1.0 - ratio) * 0.6 * scar
    r_epi_ed = r_endo_ed + wall
    r_endo = np.maximum(r_endo_ed * ratio, max(6.0, 1.8 * p.spacing))
    r_epi = np.sqrt(r_endo**2 + r_epi_ed**2 - r_endo_ed**2)  # the myocardium keeps its area
    endo_sd, epi_sd = radius - r_endo, radius - r_epi

    # RV: an ellipse beside the LV, minus the LV; crescent-shaped because it wraps the septum
    r_epi_mean = float(np.mean(r_epi_ed))
    rv_scale = p.rv_size * (1.0 - 0.75 * t**1.3) * (p.rv_es_ratio if es else 1.0)
    rv_present = z < p.depth - p.apical_without_rv
    ca, cb = np.cos(p.rv_angle), np.sin(p.rv_angle)
    thickness = max(p.rv_thickness * rv_scale, 2.5 * p.spacing)  # septum to free wall
    # the ellipse runs from half-way into the LV (hidden by it) to the free wall; its width puts the crescent's
    # tips a little beyond the LV's equator
    rv_a = (1.5 * r_epi_mean + thickness) / 2
    rv_offset = (0.5 * r_epi_mean + thickness) / 2
    rv_b = r_epi_mean / np.sqrt(1.0 - (rv_offset / rv_a) ** 2) * (1.0 + 0.12 * min(rv_scale, 1.5))
    rv_centre = (hu + rv_offset * ca, hv + rv_offset * cb)
    rv_sd = np.maximum(_ellipse_sd(u, v, *rv_centre, rv_a, rv_b, p.rv_angle), -epi_sd)

    # pericardial fat pads and pericardium keep a tissue gap between the heart and everything bright
    heart_sd = np.minimum(epi_sd, rv_sd) if rv_present else epi_sd
    for angle, gap, pad_r in p.fat_pads:  # walk out along a ray until the pad clears the heart by ``gap``
        for dist in np.arange(r_epi_mean, r_epi_mean + 4 * (rv_a + rv_b) + gap + pad_r, 1.0):
            pu, pv = hu + dist * np.cos(angle), hv + dist * np.sin(angle)
            clearance = dist - r_epi_mean
            if rv_present:
                clearance = min(clearance, float(_ellipse_sd(pu, pv, *rv_centre, rv_a, rv_b, p.rv_angle)))
            if clearance >= gap + pad_r:
                break
        pad = _ellipse_sd(u, v, pu, pv, pad_r, pad_r * 1.5, angle + np.pi / 2)
        paint(_soft(pad, edge), c["fat"])
    paint(_soft(heart_sd - 4.0, edge), c["tissue"])
    if rv_present:
        paint(_soft(np.maximum(rv_sd - 2.5, -epi_sd), edge), c["myo"])  # thin RV free wall
    paint(_soft(epi_sd, edge), c["myo"] * (1 + 0.06 * smooth(2)))
    pool = 1.0 + 0.04 * smooth(3)
    if rv_present:
        trabeculae = 1.0 - 0.3 * np.clip(smooth(1.5) - 0.8, 0, 1) * _soft(-(rv_sd + 4.0), edge)
        paint(_soft(rv_sd, edge), pool * trabeculae)
    paint(_soft(endo_sd, edge), pool)
    # papillary muscles: dark spots on the free-wall side of the LV cavity (ACDC labels them LV)
    if 0.15 < t < 0.8:
        for offset in (-0.75, 0.75):
            angle = p.rv_angle + np.pi + offset
            r_pap = 4.0 if es else 3.5
            dist = float(np.mean(r_endo)) - r_pap - 1.0
            if dist > r_pap:
                pap = _ellipse_sd(u, v, hu + dist * np.cos(angle), hv + dist * np.sin(angle), r_pap, r_pap)
                paint(_soft(pap, edge), c["myo"])

    labels = np.zeros(shape, np.uint8)
    if rv_present:
        labels[rv_sd < 0] = 1
    labels[epi_sd < 0] = 2
    labels[endo_sd < 0] = 3
    return img, labels


def _acquire(p: _Patient, img: np.ndarray, bias: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MR magnitude of one slice: bias field, k-space truncation (Gibbs), complex noise (Rician magnitude)."""
    signal = img * bias * p.blood
    kspace = np.fft.fftshift(np.fft.fft2(signal))
    n = signal.shape[0]
    keep = np.abs(np.arange(n) - n // 2) <= p.kspace_fraction * n / 2
    kspace[~keep, :] = 0  # phase encoding along the first axis
    complex_image = np.fft.ifft2(np.fft.ifftshift(kspace))
    sigma = p.noise * p.blood
    complex_image = complex_image + rng.normal(0, sigma, img.shape) + 1j * rng.normal(0, sigma, img.shape)
    return np.abs(complex_image)


def _render_frame(p: _Patient, phase: str, image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One frame: ``(image int16 (X, Y, Z), labels uint8 (X, Y, Z))``, slice 0 at the base."""
    centre = (image_size - 1) / 2
    rows, cols = np.mgrid[:image_size, :image_size].astype(np.float64)
    y, x = (rows - centre) * p.spacing, (cols - centre) * p.spacing
    cr, sr = np.cos(p.rotation), np.sin(p.rotation)
    u, v = cr * x + sr * y, -sr * x + cr * y  # the anatomy, rotated in-plane
    fov = image_size * p.spacing
    xn, yn = x / fov, y / fov
    b = p.bias
    bias = 1.0 + b[0] * yn + b[1] * xn + b[2] * (xn**2 + yn**2) * 4 + b[3] * xn * yn * 4 + b[4] * (xn**2 - yn**2) * 4
    image = np.zeros((image_size, image_size, p.depth), np.int16)
    labels = np.zeros((image_size, image_size, p.depth), np.uint8)
    for z in range(p.depth):
        img, lab = _render_slice(p, u, v, z, phase, rng)
        image[..., z] = np.clip(np.rint(_acquire(p, img, bias, rng)), 0, 32767).astype(np.int16)
        labels[..., z] = lab
    return image, labels


def _info_cfg(p: _Patient, rng: np.random.Generator) -> tuple[str, int]:
    n_frames = int(rng.choice([25, 28, 30, 30, 30, 20, 35]))
    es = int(round(n_frames * rng.uniform(0.33, 0.45))) + 1
    height, weight = rng.uniform(150, 195), rng.uniform(50, 110)
    text = (f"ED: 1\nES: {es}\nGroup: {p.group}\nHeight: {height:.1f}\nNbFrame: {n_frames}\n"
            f"Weight: {weight:.1f}\n")  # fmt: skip
    return text, es


def write_acdc_sample(
    root: str | Path,
    num_patients: int = 20,
    image_size: int = 128,
    num_slices: int = 8,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write ``num_patients`` synthetic patients in ACDC's layout under ``root/training``, atomically.

    The sample is built in a temporary sibling folder of ``root`` and renamed into place, so an interrupted run
    leaves no half-written sample. ``Group`` cycles through DCM, HCM, MINF, NOR, RV so that any split holds all
    groups.

    Args:
        root: dataset root (what the bundle's ``dataset_dir`` points at).
        num_patients: patients ``patient001`` ... (ACDC's training set has 100).
        image_size: in-plane size in pixels; the in-plane spacing is about ``1.5 * 256 / image_size`` mm
            (+-6 % per patient), slices are 10 mm apart.
        num_slices: short-axis slices per volume, base to apex (each patient has ``num_slices`` -1, +0 or +1).
        seed: non-negative seed; the same seed gives the same voxel values.
        overwrite: replace an existing, non-empty ``root``.

    Returns:
        ``root`` as a ``Path``.

    Raises:
        ValueError: for a size, count or seed out of range.
        FileExistsError: ``root`` exists and is a file, or is a non-empty folder and ``overwrite`` is false.
    """
    if num_patients < 1 or num_patients > 999:
        raise ValueError(f"num_patients must be in 1..999 (ACDC names patients patientNNN), got {num_patients}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    if num_slices < 4:
        raise ValueError(f"num_slices must be at least 4 (base to apex, RV absent apically), got {num_slices}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a folder")

    def fill(folder: Path) -> None:
        for number in range(1, num_patients + 1):
            rng = np.random.default_rng([seed, number])
            patient = _draw_patient(rng, number, image_size, num_slices)
            info, es_frame = _info_cfg(patient, rng)
            name = f"patient{number:03d}"
            patient_dir = folder / "training" / name
            patient_dir.mkdir(parents=True)
            (patient_dir / "Info.cfg").write_text(info)
            affine = np.diag([patient.spacing, patient.spacing, _SLICE_GAP_MM, 1.0])
            for phase, frame in (("ED", 1), ("ES", es_frame)):
                image, labels = _render_frame(patient, phase, image_size, rng)
                stem = patient_dir / f"{name}_frame{frame:02d}"
                for data, suffix in ((image, ""), (labels, "_gt")):
                    nifti = nib.Nifti1Image(data, affine)
                    nifti.header.set_xyzt_units("mm", "sec")
                    nib.save(nifti, f"{stem}{suffix}.nii.gz")

    return write_folder_atomically(root, fill, overwrite)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m common.data.acdc_sample OUT_DIR [--num-patients N] [--image-size S] ...``."""
    parser = argparse.ArgumentParser(description="Write a synthetic sample in the ACDC on-disk layout.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--num-patients", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--num-slices", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        root = write_acdc_sample(
            args.out_dir, args.num_patients, args.image_size, args.num_slices, args.seed, args.overwrite
        )
    except (ValueError, FileExistsError) as error:
        parser.error(str(error).replace("overwrite=True", "--overwrite"))
    print(f"wrote {args.num_patients} synthetic ACDC patients to {root.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
