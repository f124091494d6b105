"""A deterministic MIDOG-layout sample: H&E-like tiles from two "scanners", mitotic figures and look-alikes.

The tissue is real: random crops (flipped, rotated) of scikit-image's ``immunohistochemistry`` image, separated into
haematoxylin, eosin and DAB optical densities (``skimage.color.rgb2hed``). The haematoxylin density (nuclei) and a
cytoplasm density (the eosin channel plus the DAB, which H&E does not have) are rendered back by Beer-Lambert with a
scanner's stain vectors, then blurred and noised as that scanner images:

- ``hamamatsu_xr`` (source, ids 1..): standard H&E vectors, sharp, little noise;
- ``aperio_cs2`` (target, ids 101..): bluer haematoxylin and paler eosin, a Gaussian blur, more noise and a warm
  white balance.

Mitotic figures are small, very dark, irregular objects (a random star-shaped outline, clumped chromatin); hard
negatives are look-alikes of the same size and a slightly lower density but round and smooth (pyknotic nuclei,
lymphocytes). Boxes are tight around each object (MIDOG's own boxes are 50 x 50 px around the centre; the sample's
are smaller, so that COCO's small-object AP is defined). Everything is drawn from one seed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_SCANNER_STYLES", "write_midog_sample"]

SAMPLE_SCANNER_STYLES: dict[str, dict[str, object]] = {
    "hamamatsu_xr": {"first_id": 1, "h": (0.65, 0.70, 0.29), "e": (0.07, 0.99, 0.11), "blur": 0.0, "noise": 2.0,
                     "white": (1.0, 1.0, 1.0)},
    "aperio_cs2": {"first_id": 101, "h": (0.50, 0.62, 0.60), "e": (0.15, 0.80, 0.25), "blur": 1.2, "noise": 6.0,
                   "white": (1.0, 0.96, 0.90)},
}  # fmt: skip
"""Per sample scanner: first image id, haematoxylin and eosin OD vectors (RGB), blur sigma, noise std, white."""


def _densities(hed: np.ndarray, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = rng.integers(0, hed.shape[0] - size), rng.integers(0, hed.shape[1] - size)
    crop = hed[y : y + size, x : x + size]
    crop = np.rot90(crop, int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    h = np.clip(crop[..., 0] - 0.01, 0, None) * 9.0  # nuclei OD, ~0..1
    e = 0.18 + np.clip(crop[..., 1], 0, None) * 3.0 + np.clip(crop[..., 2], 0, None) * 2.0
    return h, e


def _outline(rng: np.random.Generator, radius: float, irregular: bool, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if irregular:  # spiky, clumped outline (metaphase plates, anaphase clumps)
        k = rng.integers(5, 9)
        wobble = 0.35 * np.sin(k * angles + rng.uniform(0, 6.3)) + 0.2 * rng.standard_normal(n)
        scale = radius * np.clip(1.0 + wobble, 0.4, 1.6)
        aspect = rng.uniform(0.5, 1.0)
    else:
        scale = radius * (1.0 + 0.04 * rng.standard_normal(n))
        aspect = rng.uniform(0.85, 1.0)
    theta = rng.uniform(0, np.pi)
    px, py = scale * np.cos(angles), scale * aspect * np.sin(angles)
    return px * np.cos(theta) - py * np.sin(theta), px * np.sin(theta) + py * np.cos(theta)


def _draw(h: np.ndarray, rng: np.random.Generator, centre: tuple[float, float], mitotic: bool) -> list[float]:
    from scipy.ndimage import gaussian_filter
    from skimage.draw import polygon

    radius = rng.uniform(7.0, 12.0) if mitotic else rng.uniform(6.0, 9.0)
    ox, oy = _outline(rng, radius, irregular=mitotic)
    rows, cols = polygon(centre[1] + oy, centre[0] + ox, shape=h.shape)
    mask = np.zeros(h.shape, np.float64)
    mask[rows, cols] = 1.0
    if mitotic:  # clumped chromatin: dark with darker grains
        density = rng.uniform(1.5, 1.9) + 0.35 * rng.random(h.shape)
    else:
        density = np.full(h.shape, rng.uniform(1.0, 1.25))
    soft = gaussian_filter(mask, 0.8)
    h[:] = h * (1 - soft) + density * soft
    return [float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)]


def _render(h: np.ndarray, e: np.ndarray, style: dict, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    od = h[..., None] * np.asarray(style["h"]) + e[..., None] * np.asarray(style["e"])
    rgb = 255.0 * np.asarray(style["white"]) * np.power(10.0, -od)
    if style["blur"]:
        rgb = gaussian_filter(rgb, sigma=(float(style["blur"]),) * 2 + (0.0,))
    rgb = rgb + rng.normal(0.0, float(style["noise"]), rgb.shape)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def write_midog_sample(
    out_dir: str | Path,
    seed: int = 0,
    source_images: int = 20,
    target_images: int = 10,
    image_size: int = 256,
    overwrite: bool = False,
) -> Path:
    """Write the sample in MIDOG's layout (``MIDOG.json`` and ``NNN.tiff``) to ``out_dir``, atomically.

    Args:
        out_dir: the dataset folder (replaced when ``overwrite``).
        seed: the one seed of everything drawn.
        source_images: images of the source scanner (ids from 1).
        target_images: images of the target scanner (ids from 101).
        image_size: side of every image (pixels).
        overwrite: replace an existing folder (else it is kept and returned).

    Returns:
        ``out_dir``.

    Raises:
        ValueError: fewer than 2 source images or a side below 128.
    """
    import tifffile

    out = Path(out_dir)
    if out.is_dir() and not overwrite:
        return out
    if source_images < 2 or target_images < 1 or image_size < 128:
        raise ValueError("the sample needs >= 2 source images, >= 1 target image and a side >= 128")
    from skimage import data
    from skimage.color import rgb2hed

    hed = rgb2hed(data.immunohistochemistry())
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        images, annotations = [], []
        for scanner, count in (("hamamatsu_xr", source_images), ("aperio_cs2", target_images)):
            style = SAMPLE_SCANNER_STYLES[scanner]
            for k in range(count):
                image_id = int(style["first_id"]) + k
                h, e = _densities(hed, rng, image_size)
                n_mitotic, n_negative = int(rng.integers(1, 4)), int(rng.integers(1, 4))
                placed: list[tuple[float, float]] = []
                for j in range(n_mitotic + n_negative):
                    for _ in range(50):  # objects do not touch one another
                        c = (float(rng.uniform(16, image_size - 16)), float(rng.uniform(16, image_size - 16)))
                        if all((c[0] - p[0]) ** 2 + (c[1] - p[1]) ** 2 > 40**2 for p in placed):
                            break
                    placed.append(c)
                    box = _draw(h, rng, c, mitotic=j < n_mitotic)
                    annotations.append({
                        "id": len(annotations) + 1, "image_id": image_id, "category_id": 1 if j < n_mitotic else 2,
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                        "area": (box[2] - box[0]) * (box[3] - box[1]), "iscrowd": 0,
                    })  # fmt: skip
                name = f"{image_id:03d}.tiff"
                tifffile.imwrite(tmp / name, _render(h, e, style, rng), photometric="rgb")
                images.append({"id": image_id, "file_name": name, "width": image_size, "height": image_size})
        coco = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "mitotic figure"}, {"id": 2, "name": "hard negative"}],
        }
        (tmp / "MIDOG.json").write_text(json.dumps(coco, indent=1))
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
