"""Deterministic B-mode ultrasound phantoms of rheumatoid-arthritis finger joints with synovial fluid.

The SFRSeg-Net images (ultrasoundcases.info, masks drawn by the authors) are not public, so the bundle ships a
generator of images in the same layout: ``images/<case>.png`` (8-bit RGB, grey replicated, as the website's
images) and ``masks/<case>.png`` (8-bit, 0 background, 255 synovial fluid).

Each phantom is a longitudinal scan of a joint with the probe at the top: bright subcutaneous layers, fibrillar
soft tissue with depth attenuation, two hyperechoic bone-end surfaces (bright curved lines with acoustic shadow
below) meeting at the joint gap, an anechoic synovial fluid pocket of random irregular shape over the gap (with
posterior acoustic enhancement), and hypoechoic distractors that are not fluid (vessel and tendon-sheath
cross-sections, some as dark as fluid) elsewhere. Multiplicative Rayleigh speckle and log compression give the
B-mode texture. Darkness alone therefore does not give the mask: a model must use where the dark region lies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .atomic import write_folder_atomically

__all__ = ["render_synovial_phantom", "write_synovial_sample"]


def _star_polygon_mask(shape, centre, radius, aspect, rng) -> np.ndarray:
    """A smooth random star-shaped region (radius varying with angle), stretched horizontally by ``aspect``."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    dy, dx = (rows - centre[0]), (cols - centre[1]) / aspect
    theta, dist = np.arctan2(dy, dx), np.hypot(dy, dx)
    profile = np.ones_like(theta)
    for k in range(2, 6):
        profile += rng.uniform(0.0, 0.25 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return dist <= radius * profile


def render_synovial_phantom(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """One phantom: ``(image uint8 (size, size), mask bool (size, size))``."""
    h = w = size
    rows, cols = np.mgrid[:h, :w].astype(np.float64)
    depth = rows / h

    # soft tissue: fibrillar texture, bright subcutaneous band near the probe, attenuation with depth
    fibres = ndimage.gaussian_filter(rng.normal(size=(h, w)), sigma=(0.8, 5.0))
    echo = 0.42 + 0.9 * fibres - 0.25 * depth
    skin = 0.05 * h + 0.03 * h * np.sin(cols / w * rng.uniform(2, 5) + rng.uniform(0, 6))
    echo += 0.35 * np.exp(-(((rows - skin) / (0.035 * h)) ** 2))
    echo += 0.12 * ndimage.gaussian_filter(rng.normal(size=(h, w)), 8) * 3

    # two bone ends meeting at a joint gap; the heads curve down towards the gap
    gap_x = rng.uniform(0.38, 0.62) * w
    gap_half = rng.uniform(0.04, 0.08) * w
    bone_y = rng.uniform(0.55, 0.72) * h
    tilt = rng.uniform(-0.08, 0.08)
    head = rng.uniform(0.12, 0.22) * w
    left_edge = np.clip(cols - (gap_x - gap_half - head), 0, None) / head
    right_edge = np.clip((gap_x + gap_half + head) - cols, 0, None) / head
    surface = np.where(
        cols < gap_x,
        bone_y + tilt * (cols - gap_x) + 0.18 * h * left_edge**2,
        bone_y + tilt * (cols - gap_x) + 0.18 * h * right_edge**2,
    )
    in_gap = np.abs(cols - gap_x) < gap_half
    bone_line = (np.abs(rows - surface) < 1.6) & ~in_gap
    shadow = (rows > surface + 1.6) & ~in_gap
    echo = np.where(shadow, 0.04 + 0.03 * depth, echo)
    echo = np.where(bone_line, 1.25, echo)

    # synovial fluid: anechoic pocket above the gap, between the bone heads, with posterior enhancement
    radius = rng.uniform(0.07, 0.15) * h
    centre = (bone_y - rng.uniform(0.3, 0.8) * radius - 0.02 * h, gap_x + rng.uniform(-0.06, 0.06) * w)
    mask = _star_polygon_mask((h, w), centre, radius, aspect=rng.uniform(1.4, 2.4), rng=rng)
    mask &= rows < surface - 1.0  # fluid lies above the bone surface
    below = ndimage.binary_dilation(mask, structure=np.ones((9, 1)), origin=(-4, 0)) & ~mask & ~shadow
    echo = np.where(below, echo * 1.25, echo)
    echo = np.where(mask, rng.uniform(0.02, 0.06), echo)

    # hypoechoic distractors away from the joint: vessels (round, bright walls) and tendon sheaths (elongated)
    for _ in range(rng.integers(1, 4)):
        for _attempt in range(20):
            cy, cx = rng.uniform(0.15, 0.5) * h, rng.uniform(0.08, 0.92) * w
            if abs(cx - gap_x) > 0.25 * w or cy < centre[0] - 2 * radius:
                break
        ry, rx = rng.uniform(0.025, 0.06) * h, rng.uniform(0.03, 0.12) * w
        blob = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2
        inside = (blob <= 1.0) & ~mask & (rows < surface - 2)
        wall = (blob > 1.0) & (blob <= 1.5) & ~mask & (rows < surface - 2)
        echo = np.where(wall, echo + 0.3, echo)
        echo = np.where(inside, rng.uniform(0.03, 0.2), echo)

    # speckle (multiplicative Rayleigh with unit mean, slightly correlated) and log compression
    speckle = rng.rayleigh(scale=np.sqrt(2 / np.pi), size=(h, w))
    speckle = ndimage.gaussian_filter(speckle, 0.6) / ndimage.gaussian_filter(speckle, 0.6).mean()
    intensity = np.clip(echo, 0.0, None) * speckle
    image = np.log1p(12 * intensity) / np.log1p(12 * 1.6)
    image = np.clip(image * rng.uniform(0.85, 1.05), 0, 1)
    return (image * 255).round().astype(np.uint8), mask


def write_synovial_sample(
    root: str | Path, num_images: int = 49, image_size: int = 128, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write ``num_images`` phantoms in the image/mask folder layout under ``root`` (atomically).

    The paper's set has 49 images (39 for training and validation, 10 for testing); the default matches it.
    Same ``seed``, same bytes.

    Raises:
        FileExistsError: ``root`` is not empty and ``overwrite`` is false.
    """
    if num_images < 1 or image_size < 16:
        raise ValueError(f"need num_images >= 1 and image_size >= 16, got {num_images}, {image_size}")

    def fill(folder: Path) -> None:
        (folder / "images").mkdir()
        (folder / "masks").mkdir()
        for i in range(num_images):
            image, mask = render_synovial_phantom(np.random.default_rng([seed, i]), image_size)
            name = f"synovial_{i:03d}.png"
            Image.fromarray(np.repeat(image[..., None], 3, axis=2), "RGB").save(folder / "images" / name)
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(folder / "masks" / name)

    return write_folder_atomically(root, fill, overwrite)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic synovial ultrasound sample.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--num-images", type=int, default=49)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    root = write_synovial_sample(args.out_dir, args.num_images, args.image_size, args.seed, args.overwrite)
    print(f"wrote {args.num_images} images and masks to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
