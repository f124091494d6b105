"""Deterministic calcification-cluster mammogram sample ("calc-cluster phantom") in the box-CSV layout.

OMI-DB and InBreast (Cantone et al., ICPR 2024) are access-controlled, so the bundle generates a small sample of
16-bit DICOM mammograms with calcification-cluster boxes, in the layout :data:`CALCIFICATION_LAYOUT` (read by
:func:`calcification_datalist` through :func:`common.data.read_csv_boxes`)::

    <root>/
      images/<patient>_<L|R>_<CC|MLO>.dcm   two views (CC, MLO) of one breast per patient
      boxes.csv                             image,x1,y1,x2,y2,label,patient (normal images: empty box fields)
      splits.json                           {"train": [patients], "val": [...], "test": [...]}
      spots.csv                             image,x,y,radius,amplitude,cluster: every speck drawn (ground truth
                                            for spot-level analyses; cluster = box index in the image, -1 = distractor)

Each image (default 320 x 200, H x W: a quarter of the paper's 1280 x 800) holds:

- a breast: a half-ellipse from the chest wall (left edge for ``L``, right edge for ``R``, as mammograms are hung
  back to back) with a wavy outline; the MLO view adds the axillary tail and a bright pectoral-muscle triangle in
  the upper chest-wall corner; tissue thins towards the skin, and a bright skin line follows the outline;
- parenchyma: fatty background with fibroglandular tissue where a structure map exceeds a per-breast density
  threshold. The structure map mixes a **real image** — a greyscale, low-passed, rescaled crop of one of the
  scikit-image images listed in :data:`CALCIFICATION_SAMPLE_SOURCES` — with Gaussian-filtered noise (sigma 6-16
  px), plus a
  fine-grained texture and quantum noise, so it is not purely synthetic;
- 2-5 curvilinear bright vessels running from the chest wall towards the nipple;
- on positive images, 1-2 calcification **clusters**: 4-12 micro-spots (discs of radius 1-2 px, separated by at
  least 1.5 px, blurred by a 0.5 px PSF) inside a 12-30 px (elongated or round) area; the peak contrast is
  log-uniform in 0.06-0.32 per cluster (display units; fat ~0.27, pixel noise ~0.01) with a 0.8-1.25 per-spot
  jitter; clusters lie inside the breast, off the pectoral muscle; the box is the spots' extent (centre +-
  radius) padded by 3 px, clipped to the image;
- on every image, **distractors**: 1-4 isolated single specks and 0-2 pairs of specks, with the same size and
  contrast distribution as cluster spots, kept at least 30 px from any other spot — so a detector must learn
  "a group of >= 3-4 specks", not "a bright dot";
- background near 0 outside the breast and, on about half the images, a burnt-in marker label (bright rectangle
  with dark "L CC"-style letters) in a corner away from the breast.

About 60 % of the images are normal: each patient is positive with probability 0.4 and each view of a positive
patient shows the cluster(s) with probability 0.85 (at least one view does); a positive view holds two clusters with
probability 0.25. Positions differ between the two views (no projection geometry is modelled).

DICOM variation: every third patient comes from a "MONOCHROME1 vendor" (14-bit stored values inverted, with a VOI
window covering the range), the others are MONOCHROME2 12-bit without a window, so
:func:`common.data.read_mammogram_dicom`'s inversion is exercised; all read back as high = bright.

Splits: patient level, 70/10/20 train/val/test as the paper's proportions, drawn separately among positive and
normal patients (with :func:`common.data.split_groups`) so the tiny validation set holds both kinds; the paper's
split was plainly random.

Determinism: each patient is drawn from ``numpy.random.default_rng([seed, patient_index])``, so the same arguments
give byte-identical files, and adding patients does not change the earlier patients' images.

Real images used (record kept so later benchmarks can hold other real images out):
:data:`CALCIFICATION_SAMPLE_SOURCES` =
``skimage.data.immunohistochemistry()`` (luminance) and ``skimage.data.retina()`` (green channel of the central
800 x 800 px of the fundus disc). Both are also used by :mod:`common.data.anhir_sample` and
:mod:`common.data.sr_tiles`.

Command line: ``python -m common.data.calcification_sample OUT_DIR [--seed S] [--patients N] [--overwrite]``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import write_folder_atomically
from .boxes import read_csv_boxes
from .errors import DatasetLayoutError
from .mammography import write_mammogram_dicom
from .splits import split_groups

__all__ = [
    "CALCIFICATION_LAYOUT",
    "CALCIFICATION_SAMPLE_SOURCES",
    "calcification_datalist",
    "calcification_phantom",
    "write_calcification_sample",
]

CALCIFICATION_LAYOUT = """\
<root>/
  images/<patient>_<L|R>_<CC|MLO>.dcm   single-frame grey mammograms (MONOCHROME1 or MONOCHROME2)
  boxes.csv     header image,x1,y1,x2,y2,label,patient; image relative to images/; one row per cluster box,
                one row with empty box fields per normal image
  splits.json   {"train": ["P001", ...], "val": [...], "test": [...]}   patient IDs of boxes.csv, each in one split
  [spots.csv]   image,x,y,radius,amplitude,cluster   every speck of the generated sample (not read by the datalist):
                x, y, radius in px; amplitude in display units (fraction of the value range); cluster = index of
                its box among the image's rows of boxes.csv, -1 for an isolated distractor
"""

#: the scikit-image images the parenchyma texture is cut from (see the module docstring)
CALCIFICATION_SAMPLE_SOURCES = ("immunohistochemistry", "retina")

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
BOX_PADDING = 3.0
_ISOLATION = 30.0  # px between a distractor and any other spot
_VIEWS = ("CC", "MLO")

# 5 x 3 bitmaps of the marker letters
_GLYPHS = {
    "L": ["100", "100", "100", "100", "111"],
    "R": ["110", "101", "110", "101", "101"],
    "C": ["111", "100", "100", "100", "111"],
    "M": ["101", "111", "111", "101", "101"],
    "O": ["111", "101", "101", "101", "111"],
}


@functools.cache
def _sources() -> tuple[np.ndarray, ...]:
    """The real greyscale images of :data:`CALCIFICATION_SAMPLE_SOURCES`, float32 in [0, 1], read-only."""
    from skimage import data

    ihc = data.immunohistochemistry().astype(np.float32) @ np.array([0.2125, 0.7154, 0.0721], np.float32) / 255.0
    retina = data.retina()
    h, w = retina.shape[:2]
    green = retina[h // 2 - 400 : h // 2 + 400, w // 2 - 400 : w // 2 + 400, 1].astype(np.float32) / 255.0
    out = (np.ascontiguousarray(ihc), np.ascontiguousarray(green))
    for array in out:
        array.flags.writeable = False
    return out


def _smooth(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (field - field.mean()) / (field.std() + 1e-12)


def _real_structure(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A low-passed, z-scored crop of a real image, resized to ``shape`` (random source, position, zoom, flips)."""
    from skimage.transform import resize

    height, width = shape
    source = _sources()[int(rng.integers(len(CALCIFICATION_SAMPLE_SOURCES)))]
    zoom = rng.uniform(1.0, 1.6) * max(1.0, height / (0.9 * source.shape[0]), width / (0.9 * source.shape[1]))
    ch, cw = int(np.ceil(height / zoom)), int(np.ceil(width / zoom))
    y0 = int(rng.integers(0, source.shape[0] - ch + 1))
    x0 = int(rng.integers(0, source.shape[1] - cw + 1))
    crop = source[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[::-1]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    tile = resize(np.asarray(crop, np.float64), shape, order=1, mode="reflect", anti_aliasing=False)
    tile = ndimage.gaussian_filter(tile, rng.uniform(2.0, 4.0), mode="reflect")
    return (tile - tile.mean()) / (tile.std() + 1e-12)


def _breast_geometry(
    rng: np.random.Generator, shape: tuple[int, int], laterality: str, view: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mask, pectoral, depth)``: breast and pectoral-muscle masks, distance from the chest wall (px)."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5  # pixel centres, edge coordinates
    depth = xx if laterality == "L" else width - xx
    a = width * rng.uniform(0.6, 0.85)
    if view == "CC":
        cy, b = height * rng.uniform(0.46, 0.54), height * rng.uniform(0.36, 0.45)
    else:
        cy, b = height * rng.uniform(0.54, 0.62), height * rng.uniform(0.34, 0.4)
    theta = np.arctan2(yy - cy, depth)
    wobble = 1.0 + sum(rng.uniform(0.0, 0.04) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    mask = np.hypot(depth / a, (yy - cy) / b) <= wobble
    pectoral = np.zeros(shape, bool)
    if view == "MLO":  # axillary tail: a straight outline from the top edge to the ellipse's widest point
        top = width * rng.uniform(0.3, 0.45)
        mask |= (yy <= cy) & (depth <= top + (a - top) * yy / cy)
        p0, p_len = top * rng.uniform(0.55, 0.85), height * rng.uniform(0.3, 0.5)
        pectoral = depth < p0 * (1.0 - yy / p_len)
    mask = ndimage.gaussian_filter(mask.astype(np.float64), 3.0, mode="nearest") > 0.5  # round the corners
    return mask, pectoral & mask, depth


def _polyline_image(points: np.ndarray, shape: tuple[int, int], weights: np.ndarray) -> np.ndarray:
    """Accumulate weighted points (x, y edge coordinates) into an image (nearest pixel)."""
    image = np.zeros(shape)
    cols = np.floor(points[:, 0]).astype(int)
    rows = np.floor(points[:, 1]).astype(int)
    keep = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    np.add.at(image, (rows[keep], cols[keep]), weights[keep])
    return image


def _vessels(rng: np.random.Generator, mask: np.ndarray, laterality: str) -> np.ndarray:
    """2-5 curvilinear bright vessels from the chest wall towards the nipple (intensity to add)."""
    height, width = mask.shape
    out = np.zeros(mask.shape)
    wall_col = 1 if laterality == "L" else width - 2
    rows = np.flatnonzero(mask[:, wall_col])
    if not len(rows):
        return out
    forward = 1.0 if laterality == "L" else -1.0
    step = 0.5
    for _ in range(int(rng.integers(2, 6))):
        y = rng.uniform(rows[0] + 0.15 * len(rows), rows[-1] + 1 - 0.15 * len(rows))
        x = rng.uniform(0, 10) if laterality == "L" else width - rng.uniform(0, 10)
        angle = rng.uniform(-0.6, 0.6)
        curl = 0.0
        length = rng.uniform(0.4, 0.9) * width
        n = int(length / step)
        points = np.empty((n, 2))
        for i in range(n):
            curl = 0.97 * curl + rng.normal(0, 0.004)
            angle = float(np.clip(angle + curl, -1.2, 1.2))
            x += forward * step * np.cos(angle)
            y += step * np.sin(angle)
            points[i] = x, y
        sigma = rng.uniform(0.6, 1.2)
        contrast = rng.uniform(0.03, 0.08)
        fade = np.linspace(1.0, rng.uniform(0.3, 0.8), n)
        line = _polyline_image(points, mask.shape, fade * step * np.sqrt(2 * np.pi) * sigma)
        out += contrast * ndimage.gaussian_filter(line, sigma)
    return out * mask


def _place(rng: np.random.Generator, valid: np.ndarray, spots: list, isolation: float, tries: int = 200):
    """A random pixel centre (x, y) in ``valid`` at least ``isolation`` px from every spot, or None."""
    candidates = np.flatnonzero(valid)
    if not len(candidates):
        return None
    centres = np.asarray([s[:2] for s in spots]).reshape(-1, 2)
    for _ in range(tries):
        row, col = divmod(int(candidates[int(rng.integers(len(candidates)))]), valid.shape[1])
        point = np.array([col + rng.uniform(0.2, 0.8), row + rng.uniform(0.2, 0.8)])
        if not len(centres) or np.hypot(*(centres - point).T).min() >= isolation:
            return point
    return None


def _spot_radius(rng: np.random.Generator) -> float:
    return float(rng.uniform(1.0, 2.0))


def _base_contrast(rng: np.random.Generator) -> float:
    """Contrast of a cluster or distractor group: log-uniform in [0.06, 0.32] (display units; noise ~0.01)."""
    return float(np.exp(rng.uniform(np.log(0.06), np.log(0.32))))


def _spot_amplitude(rng: np.random.Generator, base: float) -> float:
    return float(base * rng.uniform(0.8, 1.25))


def _cluster_spots(rng: np.random.Generator, centre: np.ndarray, count: int, radius: float) -> list:
    """``count`` non-overlapping spots ``(x, y, r, amplitude)`` in an ellipse of long semi-axis ``radius``."""
    aspect, angle = rng.uniform(0.45, 1.0), rng.uniform(0, np.pi)
    base = _base_contrast(rng)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    spots: list = []
    for _ in range(40 * count):
        if len(spots) == count:
            break
        u = rng.uniform(-1, 1, 2)
        if u @ u > 1:
            continue
        point = centre + rotation @ (u * np.array([radius, radius * aspect]))
        r = _spot_radius(rng)
        if all(np.hypot(point[0] - x, point[1] - y) >= r + rs + 1.5 for x, y, rs, _ in spots):
            spots.append((float(point[0]), float(point[1]), r, _spot_amplitude(rng, base)))
    return spots


def _render_spots(spots: Sequence, shape: tuple[int, int]) -> np.ndarray:
    """Anti-aliased discs (4x4 supersampled) blurred by a 0.5 px system PSF, each scaled to peak at its amplitude."""
    image = np.zeros(shape)
    offsets = (np.arange(4) + 0.5) / 4
    for x, y, r, amplitude in spots:
        r0, c0 = int(np.floor(y - r)) - 3, int(np.floor(x - r)) - 3
        size = int(np.ceil(2 * r)) + 7
        rows, cols = np.mgrid[r0 : r0 + size, c0 : c0 + size].astype(np.float64)
        cover = sum(np.hypot(cols + dx - x, rows + dy - y) <= r for dy in offsets for dx in offsets)
        spot = ndimage.gaussian_filter(cover / 16.0, 0.5, mode="constant")
        spot *= amplitude / spot.max()
        top, left = max(r0, 0), max(c0, 0)
        bottom, right = min(r0 + size, shape[0]), min(c0 + size, shape[1])
        if bottom > top and right > left:
            image[top:bottom, left:right] += spot[top - r0 : bottom - r0, left - c0 : right - c0]
    return image


def _marker(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, text: str, laterality: str) -> bool:
    """Burn a bright label with dark letters into a far-side corner that does not touch the breast."""
    height, width = image.shape
    scale = max(1, round(height / 160))
    glyph_w, gap, pad = 3 * scale, scale, 2 * scale
    box_h = 5 * scale + 2 * pad
    box_w = len(text) * glyph_w + (len(text) - 1) * gap + 2 * pad
    margin = max(2, height // 80)
    if box_w + 2 * margin > width or box_h + 2 * margin > height:
        return False
    x0 = width - margin - box_w if laterality == "L" else margin
    near = ndimage.binary_dilation(mask, iterations=3)
    for top in [margin, height - margin - box_h][:: 1 if rng.random() < 0.5 else -1]:
        if near[top : top + box_h, x0 : x0 + box_w].any():
            continue
        patch = np.full((box_h, box_w), rng.uniform(0.8, 0.95))
        for k, letter in enumerate(text):
            bitmap = np.kron(np.array([[c == "1" for c in row] for row in _GLYPHS[letter]]), np.ones((scale, scale)))
            left = pad + k * (glyph_w + gap)
            patch[pad : pad + 5 * scale, left : left + glyph_w][bitmap > 0] = rng.uniform(0.05, 0.15)
        image[top : top + box_h, x0 : x0 + box_w] = patch
        return True
    return False


def calcification_phantom(
    rng: np.random.Generator,
    laterality: str = "L",
    view: str = "CC",
    image_size: tuple[int, int] = (320, 200),
    num_clusters: int = 1,
    marker: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """One synthetic mammogram (display values, high = bright) with ``num_clusters`` calcification clusters.

    The content is described in the module docstring.

    Args:
        rng: random generator (the only source of randomness).
        laterality: ``"L"`` (chest wall at the left edge) or ``"R"`` (right edge).
        view: ``"CC"`` or ``"MLO"`` (adds the axillary tail and the pectoral muscle).
        image_size: ``(height, width)``, at least ``(96, 64)``.
        num_clusters: clusters to insert (0 = normal image); fewer are inserted when the breast has no room.
        marker: burn a marker label into a free corner.

    Returns:
        ``(image, boxes, info)``: float32 ``(H, W)`` in [0, 1]; float32 ``(N, 4)`` xyxy cluster boxes (spot extent
        padded by 3 px, clipped); ``info`` with ``"clusters"`` (per cluster a float64 ``(K, 4)`` array of spots
        ``x, y, radius, amplitude``), ``"distractors"`` (the isolated specks, same columns), ``"breast_mask"`` and
        ``"marker"`` (whether a marker was burnt in).

    Raises:
        ValueError: unknown laterality or view, an image smaller than ``(96, 64)``, or negative ``num_clusters``.
    """
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    if view not in _VIEWS:
        raise ValueError(f"view must be one of {_VIEWS}, got {view!r}")
    height, width = (int(v) for v in image_size)
    if height < 96 or width < 64:
        raise ValueError(f"image_size must be at least (96, 64), got {tuple(image_size)}")
    if num_clusters < 0:
        raise ValueError(f"num_clusters must be >= 0, got {num_clusters}")
    shape = (height, width)
    mask, pectoral, _ = _breast_geometry(rng, shape, laterality, view)
    dist = ndimage.distance_transform_edt(np.pad(mask, ((0, 0), (1, 1)), mode="edge"))[:, 1:-1]
    # parenchyma: real structure + low-pass noise -> fibroglandular fraction, thinning towards the skin
    weight = rng.uniform(0.5, 0.8)
    structure = weight * _real_structure(rng, shape) + np.sqrt(1 - weight**2) * _smooth(rng, shape, rng.uniform(6, 16))
    threshold = rng.uniform(-0.6, 1.0)  # breast density: low threshold = dense
    gland = 1.0 / (1.0 + np.exp(-(structure - threshold) / 0.4)) * np.clip(dist / (0.2 * width), 0.2, 1.0)
    fat = rng.uniform(0.22, 0.32)
    tissue = fat + rng.uniform(0.2, 0.32) * gland + 0.025 * _smooth(rng, shape, rng.uniform(1.2, 2.0))
    tissue *= 1.0 - rng.uniform(0.15, 0.35) * np.exp(-dist / rng.uniform(5, 12))
    if pectoral.any():
        edge = ndimage.gaussian_filter(pectoral.astype(np.float64), 1.5)
        muscle = rng.uniform(0.55, 0.7) + 0.02 * _smooth(rng, shape, 3.0)
        tissue = tissue * (1 - edge) + muscle * edge
    tissue += rng.uniform(0.05, 0.12) * np.exp(-0.5 * ((dist - 1.0) / 0.8) ** 2)  # skin line
    image = np.where(mask, tissue, 0.0) + _vessels(rng, mask, laterality)

    # clusters, then isolated distractors (single specks and pairs)
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    inner = mask & ~ndimage.binary_dilation(pectoral, iterations=4)
    clusters, boxes = [], []
    for _ in range(num_clusters):
        count = int(rng.integers(4, 13))
        radius = max(rng.uniform(6.0, 15.0), 2.3 * np.sqrt(count))
        border = radius + 6
        valid = inner & (dist >= border) & (xx >= border) & (xx <= width - border)
        valid &= (yy >= border) & (yy <= height - border)
        centre = _place(rng, valid, [s for c in clusters for s in c], isolation=2 * radius + 25)
        if centre is None:
            continue
        spots = _cluster_spots(rng, centre, count, radius)
        if len(spots) < 4:  # not expected (the area holds 12 spots), but a cluster has at least 4
            continue
        clusters.append(spots)
        array = np.asarray(spots)
        box = [
            max(0.0, float((array[:, 0] - array[:, 2]).min()) - BOX_PADDING),
            max(0.0, float((array[:, 1] - array[:, 2]).min()) - BOX_PADDING),
            min(float(width), float((array[:, 0] + array[:, 2]).max()) + BOX_PADDING),
            min(float(height), float((array[:, 1] + array[:, 2]).max()) + BOX_PADDING),
        ]
        boxes.append(box)
    distractors: list = []
    valid = inner & (dist >= 6) & (xx >= 4) & (xx <= width - 4) & (yy >= 4) & (yy <= height - 4)
    kinds = [1] * int(rng.integers(1, 5)) + [2] * int(rng.integers(0, 3))
    for size in kinds:
        base = _base_contrast(rng)
        first = _place(rng, valid, [s for c in clusters for s in c] + distractors, isolation=_ISOLATION)
        if first is None:
            continue
        r = _spot_radius(rng)
        group = [(float(first[0]), float(first[1]), r, _spot_amplitude(rng, base))]
        if size == 2:  # the partner must lie in the breast too, else the pair stays a single speck
            r2, gap = _spot_radius(rng), rng.uniform(1.5, 5.0)
            for angle in rng.uniform(0, 2 * np.pi, 8):
                x = float(first[0] + (r + r2 + gap) * np.cos(angle))
                y = float(first[1] + (r + r2 + gap) * np.sin(angle))
                if 0 <= y < height and 0 <= x < width and valid[int(y), int(x)]:
                    group.append((x, y, r2, _spot_amplitude(rng, base)))
                    break
        distractors.extend(group)
    image += _render_spots([s for c in clusters for s in c] + distractors, shape) * mask

    # quantum noise (stronger in the breast), background near 0, marker
    image += rng.uniform(0.006, 0.012) * rng.standard_normal(shape) * np.where(mask, 1.0, 0.3)
    image += np.where(mask, 0.0, rng.uniform(0.0, 0.02))
    has_marker = False
    if marker:
        has_marker = _marker(rng, image, mask, laterality + view, laterality)
    info = {
        "clusters": [np.asarray(c, np.float64).reshape(-1, 4) for c in clusters],
        "distractors": np.asarray(distractors, np.float64).reshape(-1, 4),
        "breast_mask": mask,
        "marker": has_marker,
    }
    return np.clip(image, 0.0, 1.0).astype(np.float32), np.asarray(boxes, np.float32).reshape(-1, 4), info


def _patient_plan(seed: int, num_patients: int) -> list[tuple[str, bool]]:
    """``(patient, positive)``: each patient positive with probability 0.4, on its own draw (at least one is)."""
    plan = [(f"P{k + 1:03d}", bool(np.random.default_rng([seed, k, 1]).random() < 0.4)) for k in range(num_patients)]
    if not any(positive for _, positive in plan):
        plan[0] = (plan[0][0], True)
    return plan


def _dicom_style(index: int, bits_default: int = 12) -> dict[str, object]:
    """Every third patient: MONOCHROME1, 14 bits, full-range window; the others: MONOCHROME2, 12 bits."""
    if index % 3 == 2:
        return {"photometric": "MONOCHROME1", "bits_stored": 14, "window": True}
    return {"photometric": "MONOCHROME2", "bits_stored": bits_default, "window": False}


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


def write_calcification_sample(
    root: str | Path,
    seed: int = 0,
    num_patients: int = 24,
    image_size: tuple[int, int] = (320, 200),
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write the sample (:data:`CALCIFICATION_LAYOUT`, content in the module docstring) to ``root`` atomically.

    The same arguments give byte-identical files. The default (24 patients, 48 images of 320 x 200) takes about a
    second.

    Args:
        root: output folder.
        seed: random seed.
        num_patients: patients (two views each); at least 3, so every split gets one.
        image_size: ``(height, width)`` of every image, at least ``(96, 64)``.
        overwrite: replace an existing non-empty ``root``.
        progress: show a progress bar over patients (only on a terminal).

    Returns:
        ``root`` as a path.

    Raises:
        FileExistsError: ``root`` exists, is not empty and ``overwrite`` is false.
        ValueError: fewer than 3 patients or a too small ``image_size``.
    """
    if num_patients < 3:
        raise ValueError(f"num_patients must be >= 3 (one per split), got {num_patients}")
    height, width = (int(v) for v in image_size)
    if height < 96 or width < 64:
        raise ValueError(f"image_size must be at least (96, 64), got {tuple(image_size)}")
    plan = _patient_plan(seed, num_patients)
    spacing = round(0.6 * 320 / height, 4)  # nominal: a 1280-row breast crop of a Hologic image is ~0.15 mm/px

    def fill(tmp: Path) -> None:
        images_dir = tmp / "images"
        images_dir.mkdir()
        rows: list[list[object]] = []
        spot_rows: list[list[object]] = []
        patients = enumerate(plan)
        if progress and sys.stdout.isatty():
            from tqdm import tqdm

            patients = tqdm(patients, total=len(plan), desc="writing calcification sample", leave=False)
        for index, (patient, positive) in patients:
            rng = np.random.default_rng([seed, index])
            laterality = "L" if rng.random() < 0.5 else "R"
            shows = rng.random(2) < 0.85 if positive else np.zeros(2, bool)
            if positive and not shows.any():
                shows[int(rng.integers(2))] = True
            style = _dicom_style(index)
            for view, show in zip(_VIEWS, shows):
                num_clusters = (2 if rng.random() < 0.25 else 1) if show else 0
                image, boxes, info = calcification_phantom(
                    rng, laterality, view, (height, width), num_clusters, marker=bool(rng.random() < 0.5)
                )
                maxval = 2 ** int(style["bits_stored"]) - 1
                stored = np.rint(image.astype(np.float64) * maxval).astype(np.uint16)
                if style["photometric"] == "MONOCHROME1":
                    stored = (maxval - stored).astype(np.uint16)
                name = f"{patient}_{laterality}_{view}.dcm"
                write_mammogram_dicom(
                    images_dir / name,
                    stored,
                    patient,
                    laterality,
                    view,
                    photometric=str(style["photometric"]),
                    window=((maxval + 1) / 2.0, float(maxval + 1)) if style["window"] else None,
                    pixel_spacing=(spacing, spacing),
                    bits_stored=int(style["bits_stored"]),
                )
                if len(boxes) == 0:
                    rows.append([name, "", "", "", "", "", patient])
                for box in boxes:
                    rows.append([name, *(f"{v:.2f}" for v in box), 0, patient])
                groups = [*enumerate(info["clusters"]), (-1, info["distractors"])]
                for cluster, spots in groups:
                    for x, y, radius, amplitude in spots:
                        spot_rows.append([name, f"{x:.2f}", f"{y:.2f}", f"{radius:.2f}", f"{amplitude:.4f}", cluster])
        _write_csv(tmp / "boxes.csv", ["image", "x1", "y1", "x2", "y2", "label", "patient"], rows)
        _write_csv(tmp / "spots.csv", ["image", "x", "y", "radius", "amplitude", "cluster"], spot_rows)
        positives = [p for p, pos in plan if pos]
        normals = [p for p, pos in plan if not pos]
        splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for offset, group in enumerate((positives, normals)):
            if group:
                for key, members in split_groups(group, SPLIT_FRACTIONS, seed=seed + offset).items():
                    splits[key].extend(members)
        splits = {key: sorted(members) for key, members in splits.items()}
        (tmp / "splits.json").write_text(json.dumps(splits, indent=1) + "\n")

    return write_folder_atomically(root, fill, overwrite=overwrite)


def calcification_datalist(root: str | Path, split: str) -> list[dict[str, object]]:
    """Box datalist of one patient-level split of a folder in :data:`CALCIFICATION_LAYOUT`.

    ``boxes.csv`` is read with :func:`common.data.read_csv_boxes` (image sizes read from the DICOM headers, so
    every box is checked to lie inside its image); ``splits.json`` maps split names to patient IDs. Patients of
    ``boxes.csv`` listed in no split belong to none.

    Args:
        root: the dataset folder.
        split: a key of ``splits.json`` (``"train"``, ``"val"``, ``"test"`` in the generated sample).

    Returns:
        ``{"image", "box", "label", "patient"}`` items of the split's patients, in ``boxes.csv`` order.

    Raises:
        DatasetLayoutError: ``splits.json`` missing, not JSON, not a dict of lists of patient IDs, without the
            ``split`` key, listing a patient in two splits or a patient absent from ``boxes.csv`` (naming
            ``splits.json``); an image of ``boxes.csv`` without a patient (naming ``boxes.csv``); and every
            :func:`common.data.read_csv_boxes` error.
    """
    root = Path(root)
    splits_path = root / "splits.json"
    if not splits_path.is_file():
        raise DatasetLayoutError(splits_path, "split file does not exist", CALCIFICATION_LAYOUT)
    try:
        splits = json.loads(splits_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetLayoutError(splits_path, f"cannot be read as JSON ({e})", CALCIFICATION_LAYOUT) from e
    if not isinstance(splits, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in splits.values()
    ):
        raise DatasetLayoutError(
            splits_path, "must be a JSON object mapping split names to lists of patient IDs", CALCIFICATION_LAYOUT
        )
    if split not in splits:
        raise DatasetLayoutError(splits_path, f"has no split '{split}' (keys: {sorted(splits)})")
    owner: dict[str, str] = {}
    for name, patients in splits.items():
        for patient in patients:
            if owner.get(patient, name) != name:
                raise DatasetLayoutError(splits_path, f"patient '{patient}' is in both '{owner[patient]}' and '{name}'")
            owner[patient] = name
    csv_path = root / "boxes.csv"
    items = read_csv_boxes(csv_path, root / "images", read_sizes=True)
    for item in items:
        if "patient" not in item:
            raise DatasetLayoutError(
                csv_path, f"image '{Path(item['image']).name}' has no patient (patient-level splits need the column)"
            )
    known = {item["patient"] for item in items}
    absent = sorted(set(owner) - known)
    if absent:
        raise DatasetLayoutError(
            splits_path,
            f"{len(absent)} patient(s) not in {csv_path.name}: {absent[:5]}{' ...' if len(absent) > 5 else ''} "
            f"(in split(s) {sorted({owner[p] for p in absent})})",
        )
    wanted = set(splits[split])
    return [item for item in items if item["patient"] in wanted]


def main() -> None:
    """Command line: write the sample."""
    parser = argparse.ArgumentParser(description="Write the calcification-cluster mammogram sample.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patients", type=int, default=24)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    print(write_calcification_sample(args.out_dir, args.seed, args.patients, overwrite=args.overwrite))


if __name__ == "__main__":
    main()
