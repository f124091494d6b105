"""Deterministic breast ultrasound phantoms (normal / benign / malignant) from two devices, plus three OOD sets.

The paper's data (POCUS from a GE Vscan Air CL, standard ultrasound from GE Logiq E9/E10) are private, and no
breast ultrasound ships offline, so the bundle generates a sample in the class-folder layout of BUSI
(:mod:`common.data.busi`)::

    <root>/
      normal/normal (1).png, normal (1)_mask.png, ...       8-bit grey 180x180 B-mode images and BUSI-style masks
      benign/benign (1).png, benign (1)_mask.png, ...
      malignant/malignant (1).png, ...
      splits.json      train / val: both devices; test: POCUS only; calibration: POCUS train (as the paper)
      ood/mnist/*.png           scikit-learn's bundled 8x8 digits imaged as speckled B-mode scans (MNIST stand-in)
      ood/corrupt_pocus/*.png   each POCUS test image with random dark areas, blur and noise (CorruptPOCUS)
      ood/cca/*.png             longitudinal carotid-artery-like scans in the same speckle model (near-OOD, CCA)

Each breast phantom is rendered from an echogenicity map: a bright skin line, hypoechoic subcutaneous fat with
lobules and Cooper's ligaments, a brighter wavy fibroglandular layer, retromammary fat and a striated pectoral
muscle, with depth attenuation. Lesions follow the BI-RADS descriptors the classes differ by:

- **benign**: oval, circumscribed, wider-than-tall, hypoechoic mass with posterior acoustic enhancement;
- **malignant**: irregular, spiculated, taller-than-wide, markedly hypoechoic mass with a thin echogenic halo and
  posterior acoustic shadowing;
- **normal**: no mass (a normal image may hold an extra small hypoechoic fat lobule, as a distractor).

Echoes are fully developed speckle: complex Gaussian scatterers weighted by the echogenicity, blurred by an
anisotropic point spread function, envelope detected, log compressed. The two "devices" differ in speckle size,
dynamic range and electronic noise (POCUS: coarser speckle, lower contrast, more noise).

Command line: ``python -m common.data.busi_sample OUT_DIR [--seed S] [--overwrite]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .atomic import write_folder_atomically
from .busi import BUSI_CLASSES

__all__ = [
    "DEVICES",
    "corrupt_ultrasound",
    "render_breast_phantom",
    "render_carotid_phantom",
    "render_digit",
    "write_busi_sample",
]

SIZE = 180
#: speckle point-spread sigmas (axial, lateral) in pixels, dynamic range (dB), additive noise, gain jitter
DEVICES = {
    "us": {"psf": (0.7, 1.0), "dynamic_range": 40.0, "noise": 0.01},
    "pocus": {"psf": (1.2, 1.8), "dynamic_range": 34.0, "noise": 0.05},
}


def _smooth(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="reflect")
    return field / (field.std() + 1e-12)


def _speckle(echo: np.ndarray, device: str, rng: np.random.Generator, specular: np.ndarray | None = None) -> np.ndarray:
    """Render an echogenicity map as a log-compressed 8-bit B-mode image."""
    spec = DEVICES[device]
    scat = rng.normal(size=echo.shape) + 1j * rng.normal(size=echo.shape)
    field = np.sqrt(np.clip(echo, 1e-4, None)) * scat
    rf = ndimage.gaussian_filter(field.real, spec["psf"]) + 1j * ndimage.gaussian_filter(field.imag, spec["psf"])
    envelope = np.abs(rf) / np.sqrt(np.mean(np.abs(rf) ** 2) + 1e-12)
    if specular is not None:
        envelope = envelope + specular
    envelope = envelope + spec["noise"] * np.abs(rng.normal(size=echo.shape) + 1j * rng.normal(size=echo.shape))
    dynamic_range = spec["dynamic_range"] * rng.uniform(0.9, 1.1)
    db = 20.0 * np.log10(envelope / (np.quantile(envelope, 0.995) + 1e-12) + 1e-6)
    image = np.clip((db + dynamic_range) / dynamic_range, 0.0, 1.0) * rng.uniform(0.85, 1.0)
    return (image * 255.0 + 0.5).astype(np.uint8)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)


def _breast_background(rng: np.random.Generator) -> np.ndarray:
    """Echogenicity of normal breast tissue (rows = depth)."""
    rows, cols = _grid()
    skin = rng.uniform(5, 9)
    gland_top = skin + rng.uniform(25, 45) + 10 * _smooth(rng, (1, SIZE), (0, 25))[0] * rng.uniform(0.3, 1.0)
    gland_bottom = gland_top + rng.uniform(45, 75) + 8 * _smooth(rng, (1, SIZE), (0, 30))[0]
    muscle_top = gland_bottom + rng.uniform(10, 25)
    echo = np.full((SIZE, SIZE), 0.25)
    echo[rows < skin] = 0.002  # gel
    echo += 3.0 * np.exp(-0.5 * ((rows - skin) / 1.2) ** 2)  # skin line
    fat = (rows > skin + 2) & (rows < gland_top)
    lobules = _smooth(rng, (SIZE, SIZE), (6, 9))
    echo[fat] = np.clip(0.2 + 0.06 * lobules[fat], 0.05, None)
    gland = (rows >= gland_top) & (rows < gland_bottom)
    echo[gland] = 1.0 + 0.3 * _smooth(rng, (SIZE, SIZE), (2, 5))[gland]
    echo[(rows >= gland_bottom) & (rows < muscle_top)] = 0.2  # retromammary fat
    muscle = rows >= muscle_top
    striation = 0.5 + 0.3 * np.sin(2 * np.pi * (rows + 4 * _smooth(rng, (SIZE, SIZE), 12)) / rng.uniform(5, 8))
    echo[muscle] = striation[muscle]
    # Cooper's ligaments: thin bright oblique lines through the fat
    for _ in range(rng.integers(2, 5)):
        x0, slope = rng.uniform(0, SIZE), rng.uniform(-1.5, 1.5)
        dist = np.abs(cols - (x0 + slope * (rows - skin))) / np.sqrt(1 + slope**2)
        echo += 0.6 * np.exp(-0.5 * (dist / 0.8) ** 2) * fat
    echo *= np.exp(-rows / rng.uniform(260, 420))  # depth attenuation (time-gain compensation is imperfect)
    return np.clip(echo, 0.005, None)


def _lesion(rng: np.random.Generator, kind: str, echo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert a mass into ``echo`` (in place); return ``(echo, mask)``."""
    rows, cols = _grid()
    cy, cx = rng.uniform(55, 115), rng.uniform(45, 135)
    if kind == "benign":
        ry = rng.uniform(10, 18)
        rx = ry * rng.uniform(1.4, 2.0)  # wider than tall
        angle = rng.uniform(-0.25, 0.25)
        yy = (rows - cy) * np.cos(angle) - (cols - cx) * np.sin(angle)
        xx = (rows - cy) * np.sin(angle) + (cols - cx) * np.cos(angle)
        radius = np.hypot(yy / ry, xx / rx)
        mask = radius <= 1.0
        edge = np.clip((1.0 - radius) / 0.08, 0, 1)  # sharp, circumscribed margin
        echo[:] = echo * (1 - edge) + edge * rng.uniform(0.01, 0.03)
        below = (rows > cy) & (np.abs(cols - cx) < rx * 0.9) & (radius > 1.0)
        echo[below] *= 1.0 + rng.uniform(0.6, 1.1) * np.exp(-(rows[below] - cy) / 60.0)  # posterior enhancement
    else:
        rx = rng.uniform(10, 15)
        ry = rx * rng.uniform(1.2, 1.7)  # taller than wide
        theta = np.arctan2(rows - cy, (cols - cx) * ry / rx)
        outline = np.ones_like(theta)
        for k in range(2, 5):
            outline += rng.uniform(0.05, 0.2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        for k in rng.integers(6, 14, size=3):  # spicules
            outline += rng.uniform(0.1, 0.25) * np.maximum(np.cos(k * theta + rng.uniform(0, 2 * np.pi)), 0) ** 6
        radius = np.hypot((rows - cy) / ry, (cols - cx) / rx) / outline
        mask = radius <= 1.0
        halo = np.exp(-0.5 * ((radius - 1.12) / 0.08) ** 2)
        inside = np.clip((1.0 - radius) / 0.2, 0, 1)  # ill-defined margin
        echo[:] = echo * (1 - inside) + inside * rng.uniform(0.004, 0.015) + 0.8 * halo * (1 - inside)
        below = (rows > cy) & (np.abs(cols - cx) < rx * 0.8) & (radius > 1.25)
        echo[below] *= rng.uniform(0.15, 0.35)  # posterior shadowing
    return echo, mask


def render_breast_phantom(kind: str, device: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One 180x180 8-bit B-mode phantom of class ``kind`` seen by ``device``; return ``(image, mask)``.

    Raises:
        ValueError: unknown class or device.
    """
    if kind not in BUSI_CLASSES:
        raise ValueError(f"kind must be one of {BUSI_CLASSES}, got '{kind}'")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {sorted(DEVICES)}, got '{device}'")
    echo = _breast_background(rng)
    mask = np.zeros((SIZE, SIZE), bool)
    if kind == "normal":
        if rng.random() < 0.5:  # distractor: a small round fat lobule
            rows, cols = _grid()
            cy, cx, r = rng.uniform(20, 60), rng.uniform(30, 150), rng.uniform(4, 7)
            echo[np.hypot(rows - cy, cols - cx) < r] *= 0.6
    else:
        echo, mask = _lesion(rng, kind, echo)
    return _speckle(echo, device, rng), (mask * 255).astype(np.uint8)


def render_carotid_phantom(rng: np.random.Generator, device: str = "pocus") -> np.ndarray:
    """A longitudinal common-carotid-artery scan: anechoic lumen band between bright intima-media double lines."""
    rows, cols = _grid()
    skin = rng.uniform(4, 8)
    centre = rng.uniform(75, 110) + 4 * _smooth(rng, (1, SIZE), (0, 40))[0] + rng.uniform(-0.08, 0.08) * (cols - 90)
    half = rng.uniform(14, 22)
    echo = np.clip(0.4 + 0.15 * _smooth(rng, (SIZE, SIZE), (3, 12)), 0.05, None)  # muscle / connective tissue
    echo[rows < skin] = 0.002
    echo += 2.0 * np.exp(-0.5 * ((rows - skin) / 1.2) ** 2)
    muscle = (rows > skin + 5) & (rows < centre - half - 12)
    echo[muscle] *= 0.7 + 0.3 * np.sin(2 * np.pi * rows[muscle] / rng.uniform(6, 9))
    dist = np.abs(rows - centre)
    echo[dist < half] = 0.003  # lumen
    for wall in (centre - half, centre + half):
        echo += 1.4 * np.exp(-0.5 * ((rows - wall) / 1.0) ** 2)  # intima
        echo += 1.0 * np.exp(-0.5 * ((np.abs(rows - wall) - 2.5) / 0.9) ** 2) * (np.abs(rows - centre) > half)
    echo *= np.exp(-rows / rng.uniform(250, 400))
    return _speckle(np.clip(echo, 0.005, None), device, rng)


def render_digit(digit: np.ndarray, rng: np.random.Generator, device: str = "pocus") -> np.ndarray:
    """An 8x8 scikit-learn digit (values 0-16, ink high) imaged as a B-mode scan of a digit-shaped phantom.

    The digit is upsampled to an echogenicity map (ink = an echogenic structure, background = soft tissue with a
    gel line and depth attenuation) and rendered through the same speckle and log-compression model as the ID
    phantoms. The set is OOD by content (a digit, no breast anatomy), not by image statistics: a bright-on-black
    MNIST image has a histogram no ultrasound image has (mostly exact zeros), and a network trained on B-mode
    images only would then flag it, or score it over-confidently, for its intensity range alone.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {sorted(DEVICES)}, got '{device}'")
    small = np.pad(np.asarray(digit, np.float64).reshape(8, 8) / 16.0, 1)
    ink = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR), float)
    rows, _ = _grid()
    echo = np.clip(0.3 + 0.08 * _smooth(rng, (SIZE, SIZE), (4, 8)), 0.05, None) + rng.uniform(2.0, 4.0) * ink / 255
    echo[rows < rng.uniform(4, 8)] = 0.002  # gel
    echo *= np.exp(-rows / rng.uniform(260, 420))
    return _speckle(np.clip(echo, 0.005, None), device, rng)


def corrupt_ultrasound(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomly add dark areas, blur and noise to an 8-bit ultrasound image (the paper's CorruptPOCUS).

    Each corruption is applied with probability 0.7, and at least one always is: dark areas are 1-3 shadows
    (vertical bands, as from poor probe contact, or blobs) multiplied down to 0-30 % brightness with soft edges;
    blur is a Gaussian of sigma 1.5-3.5 px; noise is additive Gaussian (sigma 15-40 grey levels) and multiplicative
    speckle. The paper gives no parameters; these are chosen to look like its Fig. 2.
    """
    image = np.asarray(image, np.float64)
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    chosen = rng.random(3) < 0.7
    if not chosen.any():
        chosen[rng.integers(3)] = True
    if chosen[0]:
        for _ in range(rng.integers(1, 4)):
            if rng.random() < 0.6:
                x0, width = rng.uniform(0, image.shape[1]), rng.uniform(12, 45)
                weight = np.exp(-0.5 * ((cols - x0) / (width / 2)) ** 4) * np.clip(
                    (rows - rng.uniform(0, 40)) / 15, 0, 1
                )
            else:
                cy, cx, r = rng.uniform(0, image.shape[0]), rng.uniform(0, image.shape[1]), rng.uniform(20, 50)
                weight = np.exp(-0.5 * (np.hypot(rows - cy, cols - cx) / r) ** 4)
            image = image * (1 - weight * rng.uniform(0.7, 1.0))
    if chosen[1]:
        image = ndimage.gaussian_filter(image, rng.uniform(1.5, 3.5))
    if chosen[2]:
        image = image * rng.gamma(4.0, 0.25, size=image.shape) + rng.normal(0, rng.uniform(15, 40), image.shape)
    return (np.clip(image, 0, 255) + 0.5).astype(np.uint8)


def _save(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def write_busi_sample(
    root: str | Path,
    seed: int = 0,
    overwrite: bool = False,
    us_per_class: int = 30,
    pocus_train_per_class: int = 12,
    pocus_test_per_class: int = 15,
    val_per_class: Sequence[int] = (3, 2),
    num_digits: int = 45,
    num_carotid: int = 30,
) -> Path:
    """Write the sample (layout in the module docstring) to ``root`` atomically; same pixels for the same seed.

    Args:
        root: output folder.
        seed: random seed.
        overwrite: replace an existing non-empty ``root``.
        us_per_class: standard-ultrasound images per class (training and validation).
        pocus_train_per_class: POCUS training and validation images per class.
        pocus_test_per_class: POCUS test images per class (the ID test set; CorruptPOCUS has one per image).
        val_per_class: validation images per class taken from (US, POCUS) training images.
        num_digits: digits in ``ood/mnist``.
        num_carotid: images in ``ood/cca``.

    Returns:
        ``root`` as a path.
    """

    def fill(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        counters = dict.fromkeys(BUSI_CLASSES, 0)
        splits: dict[str, list[str]] = {"train": [], "val": [], "test": [], "calibration": []}
        test_images = []
        for name in BUSI_CLASSES:
            (tmp / name).mkdir()
        plan = [("us", "trainval", us_per_class, val_per_class[0]),
                ("pocus", "trainval", pocus_train_per_class, val_per_class[1]),
                ("pocus", "test", pocus_test_per_class, 0)]  # fmt: skip
        for device, part, count, n_val in plan:
            for name in BUSI_CLASSES:
                for k in range(count):
                    counters[name] += 1
                    image, mask = render_breast_phantom(name, device, rng)
                    case = f"{name}/{name} ({counters[name]})"
                    _save(tmp / f"{case}.png", image)
                    _save(tmp / f"{case}_mask.png", mask)
                    if part == "test":
                        splits["test"].append(f"{case}.png")
                        test_images.append(image)
                    else:
                        splits["val" if k < n_val else "train"].append(f"{case}.png")
                        if device == "pocus" and k >= n_val:
                            splits["calibration"].append(f"{case}.png")
        (tmp / "splits.json").write_text(json.dumps(splits, indent=1) + "\n")
        from sklearn.datasets import load_digits

        digits = load_digits()
        folders = {name: tmp / "ood" / name for name in ("mnist", "corrupt_pocus", "cca")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        for k, index in enumerate(rng.choice(len(digits.images), num_digits, replace=False)):
            digit = render_digit(digits.images[index], rng, "pocus" if k % 2 else "us")
            _save(folders["mnist"] / f"digit_{k:03d}_{digits.target[index]}.png", digit)
        for k, image in enumerate(test_images):
            _save(folders["corrupt_pocus"] / f"corrupt_{k:03d}.png", corrupt_ultrasound(image, rng))
        for k in range(num_carotid):
            _save(folders["cca"] / f"cca_{k:03d}.png", render_carotid_phantom(rng, "pocus" if k % 2 else "us"))

    return write_folder_atomically(root, fill, overwrite=overwrite)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the breast ultrasound OOD sample.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    print(write_busi_sample(args.out_dir, seed=args.seed, overwrite=args.overwrite))


if __name__ == "__main__":
    main()
