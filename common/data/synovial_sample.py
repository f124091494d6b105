"""Deterministic B-mode ultrasound phantoms of rheumatoid-arthritis finger/wrist joints with synovial fluid.

The SFRSeg-Net images (ultrasoundcases.info, masks drawn by the authors) are not public, so the bundle ships this
generator of images in the same layout::

    <root>/images/synovial_000.png ...   8-bit RGB, the grey image replicated to 3 channels (as the website's images)
    <root>/masks/synovial_000.png ...    8-bit single channel: 0 background, 255 synovial fluid

Each phantom is a longitudinal (dorsal) scan of a small joint with a linear probe at the top:

- a bright skin line, a hypoechoic subcutaneous layer with echogenic septa, a fibrillar extensor tendon, and
  depth attenuation of the soft tissue echoes;
- two hyperechoic bone surfaces (metacarpal head on one side, phalanx base on the other) whose rounded ends curve
  down into the joint gap, each with a dark posterior acoustic shadow;
- the target: a synovial fluid pocket of random irregular (smooth star-shaped) outline, size and position in the
  joint recess above the gap, lying on the bone surfaces, under a thin echogenic capsule, with posterior acoustic
  enhancement; anechoic to faintly echoic (debris), with a partial-volume transition at its wall;
- hypoechoic structures that are *not* fluid: the thin cartilage cap of the bone ends, proliferative synovium
  beside part of the fluid (usually grey, at times nearly as dark as the fluid), vessels with bright walls, fat
  lobules, and sometimes a tendon-sheath pocket away from the joint that is as dark as the fluid.

The mask is the fluid outline *as an annotator would trace it*: the smooth part of the rendered outline, a few
percent larger or smaller, without the small wiggles of the rendered boundary. This mimics manual masks and keeps a
perfect score out of reach (as on real data).

Echoes are rendered as fully developed speckle (complex Gaussian scatterers blurred by an anisotropic point spread
function, envelope detection), plus specular bone reflections and a noise floor, then log compressed over a
randomly drawn dynamic range. Darkness alone does not give the mask (shadows, cartilage and distractors are dark
too): a model has to use where the dark region lies with respect to the bones and the joint gap.

Command line: ``python -m common.data.synovial_sample OUT_DIR [--num-images N] [--seed S] [--overwrite]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .atomic import write_folder_atomically

__all__ = ["render_synovial_phantom", "write_synovial_sample"]

_MIN_SIZE = 32


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="reflect")
    return field / (field.std() + 1e-12)


def _star_regions(
    rows: np.ndarray,
    cols: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    aspect: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A random smooth star-shaped region, as it is in the image and as an annotator traces it.

    The outline is ``radius * (1 + sum_k a_k cos(k theta + phi_k))`` in polar coordinates stretched horizontally by
    ``aspect``. The rendered region adds small high-frequency wiggles (harmonics 6-11) to the outline; the traced
    one keeps only the smooth part (harmonics 2-5) and is a few percent larger or smaller, like a manual mask.

    Returns:
        ``(rendered, traced)`` boolean arrays.
    """
    dy = rows - centre[0]
    dx = (cols - centre[1]) / aspect
    theta, dist = np.arctan2(dy, dx), np.hypot(dy, dx)
    smooth = np.ones_like(theta)
    for k in range(2, 6):
        smooth += rng.uniform(0.0, 0.45 / k) * np.cos(k * theta + rng.uniform(0.0, 2.0 * np.pi))
    detail = np.zeros_like(theta)
    for k in range(6, 12):
        detail += rng.uniform(0.0, 0.35 / k) * np.cos(k * theta + rng.uniform(0.0, 2.0 * np.pi))
    rendered = dist <= radius * np.maximum(smooth + detail, 0.3)
    traced = dist <= radius * rng.uniform(0.92, 1.1) * np.maximum(smooth, 0.3)
    return rendered, traced


def _ellipse(
    rows: np.ndarray, cols: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float
) -> np.ndarray:
    """Normalised elliptic radius (<= 1 inside)."""
    cos, sin = np.cos(angle), np.sin(angle)
    y, x = rows - cy, cols - cx
    return np.hypot((cos * y - sin * x) / ry, (sin * y + cos * x) / rx)


def _bone_surfaces(x: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Depth (row) of the bone surface in every column; ``inf`` in the joint gap.

    One bone end is a large convex head (metacarpal / radius side), the other a flatter base (phalanx / carpal side);
    both are circular arcs that curve down into the gap. Returns ``(surface, gap_x, gap_floor)``.
    """
    gap_x = rng.uniform(0.36, 0.64) * size
    gap_half = rng.uniform(0.02, 0.05) * size
    level = rng.uniform(0.55, 0.74) * size  # depth of the bones next to the joint
    head_side = rng.choice([-1.0, 1.0])
    surface = np.full(x.shape, np.inf)
    for side in (-1.0, 1.0):
        tip = gap_x + side * gap_half
        if side == head_side:
            radius, drop = rng.uniform(0.18, 0.35) * size, rng.uniform(0.3, 0.6)
        else:
            radius, drop = rng.uniform(0.05, 0.12) * size, rng.uniform(0.3, 0.8)
        u = side * (x - tip)  # distance from the tip, positive on this bone
        into_end = np.clip(radius - u, 0.0, radius)  # 0 on the shaft, ``radius`` at the tip
        curve = drop * radius * (1.0 - np.sqrt(1.0 - (into_end / radius) ** 2))
        slope = rng.uniform(-0.12, 0.12)  # each bone runs at its own small angle
        wobble = 0.005 * size * np.sin(x / size * rng.uniform(4, 9) + rng.uniform(0, 6.3))
        depth = level + rng.uniform(-0.03, 0.03) * size + slope * u + curve + wobble
        surface = np.where(u >= 0, depth, surface)
    tips = surface[np.isfinite(surface) & (np.abs(x - gap_x) < gap_half + 2.0)]
    gap_floor = (tips.max() if tips.size else level) + rng.uniform(0.02, 0.06) * size
    return surface, gap_x, gap_floor


def render_synovial_phantom(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Render one joint ultrasound phantom.

    Args:
        rng: the random generator (all randomness comes from it, so a seeded generator gives the same phantom).
        size: image height and width in pixels (at least 32; the geometry scales with it).

    Returns:
        ``(image, mask)``: ``uint8 (size, size)`` B-mode image and ``bool (size, size)`` synovial fluid mask.

    Raises:
        ValueError: ``size`` below 32.
    """
    if size < _MIN_SIZE:
        raise ValueError(f"image size must be at least {_MIN_SIZE} pixels, got {size}")
    h = w = size
    px = size / 128.0  # pixel scale relative to the paper's 128x128 input
    rows, cols = np.mgrid[:h, :w].astype(np.float64)
    x = cols[0]

    # Mean backscattered power ("echo") of every structure, relative to bright tissue ~ 1. --------------------------
    # layers: coupling gel | skin | subcutaneous fat | extensor tendon | periarticular tissue | bone
    skin = (0.03 + rng.uniform(0.0, 0.03)) * h + 1.2 * px * _smooth_noise(rng, (1, w), (0, 12 * px))
    subcut_bottom = skin + rng.uniform(0.1, 0.2) * h + 1.5 * px * _smooth_noise(rng, (1, w), (0, 15 * px))
    tendon_bottom = subcut_bottom + rng.uniform(0.05, 0.1) * h + 1.0 * px * _smooth_noise(rng, (1, w), (0, 15 * px))
    deep = rng.uniform(0.3, 0.5) * np.exp(0.35 * _smooth_noise(rng, (h, w), 7 * px))
    echo = deep
    subcut = (rows > skin) & (rows < subcut_bottom)
    echo = np.where(subcut, rng.uniform(0.05, 0.12) * np.exp(0.3 * _smooth_noise(rng, (h, w), 5 * px)), echo)
    for _ in range(int(rng.integers(2, 6))):  # echogenic septa: thin oblique bright lines in the fat
        y0, angle, x0 = rng.uniform(0.15, 0.95), rng.uniform(-0.4, 0.4), rng.uniform(0, w)
        line_y = skin + y0 * (subcut_bottom - skin) + np.tan(angle) * (cols - x0)
        extent = np.abs(cols - x0) < rng.uniform(10, 50) * px
        echo = echo + rng.uniform(0.4, 1.2) * np.exp(-(((rows - line_y) / (0.7 * px)) ** 2)) * extent * subcut
    tendon = (rows >= subcut_bottom) & (rows < tendon_bottom)
    fibres = np.exp(0.9 * _smooth_noise(rng, (h, w), (0.5 * px, 12 * px)))  # parallel fibrillar striations
    echo = np.where(tendon, rng.uniform(0.8, 1.5) * fibres, echo)
    for edge in (subcut_bottom, tendon_bottom):  # paratenon: bright thin lines along the tendon
        echo = echo + 0.8 * np.exp(-(((rows - edge) / (0.7 * px)) ** 2))
    echo = echo + rng.uniform(4.0, 8.0) * np.exp(-(((rows - skin) / (1.0 * px)) ** 2))  # skin entry echo
    echo = np.where(rows < skin - 1.5 * px, 1e-4, echo)  # coupling gel: anechoic

    # bones, joint gap, cartilage --------------------------------------------------------------------------------
    surface, gap_x, gap_floor = _bone_surfaces(x, size, rng)
    in_gap = ~np.isfinite(surface)
    surf = surface[None, :]
    floor = np.where(in_gap, gap_floor, surface)[None, :]  # deepest soft tissue of every column
    echo = np.where(in_gap[None, :] & (rows > tendon_bottom), echo * rng.uniform(0.3, 0.6), echo)  # joint space
    cartilage_thick = rng.uniform(1.2, 3.0) * px  # hyaline cartilage: anechoic band on the bone ends
    cartilage = (rows < surf) & (rows > surf - cartilage_thick) & (np.abs(cols - gap_x) < rng.uniform(0.15, 0.35) * w)
    echo = np.where(cartilage, 10 ** rng.uniform(-2.5, -1.5), echo)

    # the target: synovial fluid in the dorsal recess above the joint gap ----------------------------------------
    radius = rng.uniform(0.06, 0.15) * h
    aspect = rng.uniform(1.2, 2.6)
    near_gap = ~in_gap & (np.abs(x - gap_x) < 0.2 * w)
    recess = surface[near_gap].min() if near_gap.any() else gap_floor  # shallowest bone next to the gap
    centre = (recess - rng.uniform(0.0, 0.6) * radius, gap_x + rng.uniform(-0.08, 0.08) * w)
    fluid, mask = _star_regions(rows, cols, centre, radius, aspect, rng)  # in the image / as annotated
    allowed = (rows < floor - cartilage_thick) & (rows > tendon_bottom + px)
    fluid &= allowed
    mask &= allowed
    if mask.sum() < 12 * px * px or fluid.sum() < 12 * px * px:  # degenerate draw: a small pocket above the gap
        mask = (_ellipse(rows, cols, gap_floor - 0.08 * h, gap_x, 0.04 * h, 0.07 * w, 0.0) <= 1) & allowed
        fluid = mask.copy()
    if rng.random() < 0.75:  # proliferative synovium beside part of the fluid: hypoechoic, rarely as dark as fluid
        grown = ndimage.binary_dilation(fluid, iterations=max(1, round(rng.uniform(2, 7) * px)))
        one_side = (cols - centre[1]) * rng.choice([-1.0, 1.0]) > rng.uniform(-0.4, 0.5) * radius * aspect
        synovium = grown & ~fluid & one_side & (rows < floor)
        echo = np.where(synovium, 10 ** rng.uniform(-2.5, -1.0) * deep / deep.mean(), echo)
    capsule = ndimage.binary_dilation(fluid, iterations=max(1, round(1.5 * px))) & ~fluid & (rows < centre[0])
    echo = np.where(capsule, echo + rng.uniform(0.1, 1.0), echo)  # distended capsule over the fluid
    # anechoic to faintly echoic (debris), with a partial-volume transition at the wall
    content = 10 ** rng.uniform(-3.5, -1.5) * np.exp(0.6 * _smooth_noise(rng, (h, w), 2.5 * px))
    weight = ndimage.gaussian_filter(fluid.astype(float), 0.8 * px)
    echo = echo * (1.0 - weight) + content * weight

    # hypoechoic structures that are not fluid -------------------------------------------------------------------
    sk, sb, tb = skin.mean(), subcut_bottom.mean(), tendon_bottom.mean()
    for _ in range(int(rng.integers(0, 3))):  # vessels cut across: round dark lumen with bright walls, in the fat
        r = rng.uniform(0.015, 0.04) * h
        e = _ellipse(rows, cols, rng.uniform(sk + r + 2 * px, max(sb - r, sk + r + 3 * px)), rng.uniform(0, w), r,
                     r * rng.uniform(1.0, 1.5), 0.0)  # fmt: skip
        echo = np.where((e > 1) & (e < 1.4), echo + 0.8, echo)
        echo = np.where(e <= 1, 10 ** rng.uniform(-3.3, -2.3), echo)
    for _ in range(int(rng.integers(1, 4))):  # fat lobules: darker grey ellipses
        e = _ellipse(rows, cols, rng.uniform(sk, sb), rng.uniform(0, w), rng.uniform(0.02, 0.05) * h,
                     rng.uniform(0.05, 0.12) * w, rng.uniform(-0.3, 0.3))  # fmt: skip
        echo = np.where((e <= 1) & subcut, echo * rng.uniform(0.15, 0.45), echo)
    if rng.random() < 0.5:  # a tendon-sheath / bursa pocket away from the joint, as dark as the fluid
        cx = gap_x + (-1.0 if gap_x > w / 2 else 1.0) * rng.uniform(0.3, 0.45) * w
        e = _ellipse(rows, cols, rng.uniform(sb, tb + 0.06 * h), cx, rng.uniform(0.02, 0.045) * h,
                     rng.uniform(0.06, 0.14) * w, rng.uniform(-0.2, 0.2))  # fmt: skip
        echo = np.where(
            (e <= 1) & (rows < floor - 2 * px) & (rows > skin + 2 * px), 10 ** rng.uniform(-3.3, -2.0), echo
        )

    if rng.random() < 0.5:  # synovial thickening without fluid along a bone end, away from the gap
        side = rng.choice([-1.0, 1.0])
        cx = gap_x + side * rng.uniform(0.22, 0.4) * w
        reach = rng.uniform(0.06, 0.14) * w
        pad_top = floor - rng.uniform(0.03, 0.07) * h * np.exp(-(((cols - cx) / reach) ** 2) * 2)
        pad = (np.abs(cols - cx) < reach) & (rows > pad_top) & (rows < floor - cartilage_thick) & ~fluid
        echo = np.where(pad, 10 ** rng.uniform(-2.4, -1.2) * deep / deep.mean(), echo)

    # propagation: attenuation with depth (partly compensated by TGC), shadows, posterior enhancement ------------
    echo = echo * np.exp(-rng.uniform(0.5, 1.2) * rows / h)
    shadow = rows > floor
    echo = np.where(shadow, 1e-4 + 0.01 * np.exp(-(rows - floor) / (5 * px)), echo)
    below_fluid = np.maximum.accumulate(fluid, axis=0) & ~fluid & ~shadow
    echo = echo * (1 + rng.uniform(0.4, 1.0) * ndimage.gaussian_filter(below_fluid.astype(float), (1.0, 2.0 * px)))

    # fully developed speckle: complex Gaussian scatterers, anisotropic PSF, envelope ----------------------------
    psf = (rng.uniform(0.6, 0.9) * px, rng.uniform(1.1, 1.8) * px)  # axial (rows) finer than lateral (columns)
    scatterers = np.sqrt(np.clip(echo, 0.0, None)) * (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w)))
    rf = ndimage.gaussian_filter(scatterers.real, psf) + 1j * ndimage.gaussian_filter(scatterers.imag, psf)
    envelope = np.abs(rf) * np.sqrt(2.0 * np.pi * psf[0] * psf[1])  # mean power = echo for a unit-sum PSF
    # specular bone reflection: a sharp bright line, brightest where the beam hits the surface squarely
    below = rows - surf
    specular = np.exp(-np.clip(below, 0, None) / (1.0 * px)) * np.exp(-((np.clip(-below, 0, None) / (0.6 * px)) ** 2))
    facing = 1.0 / np.sqrt(1.0 + np.gradient(np.where(in_gap, gap_floor, surface)) ** 2)
    bone = rng.uniform(6.0, 12.0) * facing**2 * np.exp(0.25 * _smooth_noise(rng, (1, w), (0, 5 * px)))
    envelope = envelope + np.where(in_gap[None, :], 0.0, bone * specular)
    noise_floor = rng.uniform(0.01, 0.06)
    envelope = envelope + noise_floor * np.abs(rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / np.sqrt(2)

    # log compression: soft tissue mid-grey, fluid and shadows near black, bone saturating -----------------------
    dynamic_range = rng.uniform(45.0, 58.0)  # dB
    tissue_db = 20.0 * np.log10(np.median(envelope[(rows > tendon_bottom) & (rows < floor) & ~fluid]) + 1e-9)
    low = tissue_db - rng.uniform(0.42, 0.55) * dynamic_range
    image = np.clip((20.0 * np.log10(envelope + 1e-9) - low) / dynamic_range, 0.0, 1.0)
    return np.round(image * 255.0).astype(np.uint8), mask


def write_synovial_sample(
    root: str | Path, num_images: int = 49, image_size: int = 128, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write ``num_images`` phantoms in the images/ + masks/ layout under ``root``, atomically.

    The paper's set has 49 images (39 for training and validation, 10 for testing); the default matches it. Image
    ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so the same arguments give the same bytes, and a
    larger ``num_images`` only appends images. The files are generated in a temporary sibling folder that is then
    renamed to ``root``: an interrupted run leaves no half-written sample.

    Args:
        root: destination folder.
        num_images: number of image/mask pairs (``synovial_000.png`` ...).
        image_size: height and width in pixels (at least 32).
        seed: base seed.
        overwrite: replace an existing non-empty ``root``.

    Returns:
        ``root`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``num_images`` below 1 or above 1000, or ``image_size`` below 32.
        FileExistsError: ``root`` exists, is not empty and ``overwrite`` is false.
    """
    if not 1 <= num_images <= 1000:
        raise ValueError(f"num_images must be between 1 and 1000 (3-digit file names), got {num_images}")
    if image_size < _MIN_SIZE:
        raise ValueError(f"image_size must be at least {_MIN_SIZE} pixels, got {image_size}")

    def fill(folder: Path) -> None:
        (folder / "images").mkdir()
        (folder / "masks").mkdir()
        for i in range(num_images):
            image, mask = render_synovial_phantom(np.random.default_rng([seed, i]), image_size)
            name = f"synovial_{i:03d}.png"
            Image.fromarray(np.repeat(image[..., None], 3, axis=2), mode="RGB").save(folder / "images" / name)
            Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(folder / "masks" / name)

    return write_folder_atomically(root, fill, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m common.data.synovial_sample",
        description="Write the synthetic synovial-fluid ultrasound sample (images/ and masks/ folders).",
    )
    parser.add_argument("out_dir", type=Path, help="destination folder")
    parser.add_argument("--num-images", type=int, default=49, help="number of images (default 49, as the paper)")
    parser.add_argument("--image-size", type=int, default=128, help="height and width in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    args = parser.parse_args(argv)
    try:
        root = write_synovial_sample(args.out_dir, args.num_images, args.image_size, args.seed, args.overwrite)
    except FileExistsError:
        parser.error(f"{args.out_dir} exists and is not empty; pass --overwrite to replace it")
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {args.num_images} images and masks to {root.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
