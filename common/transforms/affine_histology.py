"""Affine helpers and transforms for histology (ANHIR) registration.

Conventions: a 2x3 affine ``A`` maps *source* (moving) pixel coordinates ``(x, y)`` (x the column, y the row, pixel
centres at integers) to *target* (fixed) pixel coordinates. Warping the source into the target frame samples the
source at ``A^-1 p`` for every target pixel ``p``.

Images are brought onto a square "canvas" for the network: RGB is converted to grey (luminance), inverted so that
the white glass background becomes 0 and tissue is bright, resized so that the longer side equals ``size``
(aspect kept) and zero-padded at the bottom/right. The canvas-to-original mapping is stored per image so results are
reported in pixel units of the original images.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import MapTransform

from common.data.anhir import read_landmarks, write_landmarks

__all__ = [
    "affine_to_3x3",
    "rotation90_affine",
    "warp_affine",
    "canvas_scale_matrix",
    "to_grey_canvas",
    "HistologyCanvasd",
    "AffineToOriginald",
    "SaveAffineOutputsd",
    "checkerboard",
    "pair_stem",
    "LoadLandmarksd",
]


def affine_to_3x3(affine: torch.Tensor | np.ndarray) -> np.ndarray:
    """A (6,), (2, 3) or (3, 3) affine as a float64 3x3 numpy matrix."""
    a = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    a = a.reshape(-1)
    if a.size == 9:
        return a.reshape(3, 3)
    if a.size != 6:
        raise ValueError(f"an affine has 6 or 9 entries, got {a.size}")
    return np.vstack([a.reshape(2, 3), [0.0, 0.0, 1.0]])


def rotation90_affine(k: int, height: int, width: int) -> np.ndarray:
    """3x3 map from pixel coordinates of an image to those of ``torch.rot90(image, k, dims=(-2, -1))``."""
    m = np.eye(3)
    h, w = height, width
    for _ in range(k % 4):
        # one counter-clockwise turn: new (x, y) = (y, w - 1 - x), then the width and height swap
        m = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0], [0.0, 0.0, 1.0]]) @ m
        h, w = w, h
    return m


def warp_affine(
    image: torch.Tensor, affine: torch.Tensor, out_shape: tuple[int, int] | None = None, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Warp source images ``(B, C, H, W)`` into the target frame with source-to-target affines ``(B, 6)``.

    Differentiable in both arguments. ``out_shape`` is the target's (H, W) (default: the source's).
    """
    b, _, h, w = image.shape
    oh, ow = out_shape if out_shape is not None else (h, w)
    a = affine.reshape(b, 2, 3).to(image.dtype)
    lin, t = a[:, :, :2], a[:, :, 2]
    inv = torch.linalg.inv(lin)
    ys, xs = torch.meshgrid(
        torch.arange(oh, dtype=image.dtype, device=image.device),
        torch.arange(ow, dtype=image.dtype, device=image.device),
        indexing="ij",
    )
    p = torch.stack([xs, ys], -1).view(1, -1, 2) - t.view(b, 1, 2)
    src = p @ inv.transpose(1, 2)  # (B, HW, 2)
    gx = 2.0 * src[..., 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * src[..., 1] / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], -1).view(b, oh, ow, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def canvas_scale_matrix(original_hw: tuple[int, int], resized_hw: tuple[int, int]) -> np.ndarray:
    """3x3 map from original pixel coordinates to canvas pixel coordinates (pixel-centre convention)."""
    sy = resized_hw[0] / original_hw[0]
    sx = resized_hw[1] / original_hw[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def to_grey_canvas(image: torch.Tensor, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Channel-first RGB (or grey) image ``(C, H, W)`` -> (inverted grey canvas ``(1, size, size)``, 3x3 scale map).

    Intensities are scaled to [0, 1] from the 8-bit range (or the image maximum for other ranges).
    """
    img = torch.as_tensor(image, dtype=torch.float32)
    peak = 255.0 if float(img.max()) > 1.0 else 1.0
    img = img / max(peak, 1e-6)
    if img.shape[0] >= 3:
        grey = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    else:
        grey = img[0]
    grey = (1.0 - grey).clamp(0, 1)
    h, w = grey.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = F.interpolate(grey[None, None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    canvas = torch.zeros(1, size, size)
    canvas[:, :nh, :nw] = resized
    return canvas, canvas_scale_matrix((h, w), (nh, nw))


class HistologyCanvasd(MapTransform):
    """Channel-first images (keys) -> inverted grey canvases; stores ``<key>_canvas`` (3x3) and ``<key>_size`` (H, W).

    The original image is kept under ``<key>_original`` when ``keep_original`` (for warping at full resolution).

    Args:
        keys: moving and fixed images.
        size: canvas side (a multiple of 8: the paper uses 512 for training, 1024 for inference).
        keep_original: keep the original channel-first image.
    """

    dictionary_only = "stores each key's canvas transform and size (``<key>_canvas``, ``<key>_size``) beside it"

    def __init__(self, keys: tuple[str, ...] = ("image", "fixed"), size: int = 512, keep_original: bool = False):
        super().__init__(keys)
        if size % 8:
            raise ValueError(f"canvas size {size} must be a multiple of 8")
        self.size = size
        self.keep_original = keep_original

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, object]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            canvas, scale = to_grey_canvas(image, self.size)
            if isinstance(image, MetaTensor):
                canvas = MetaTensor(canvas, meta=dict(image.meta))
                canvas.meta["spatial_shape"] = np.asarray(canvas.shape[1:])
            if self.keep_original:
                d[f"{key}_original"] = torch.as_tensor(np.asarray(image), dtype=torch.float32)
            d[key] = canvas
            d[f"{key}_canvas"] = torch.as_tensor(scale, dtype=torch.float64)
            d[f"{key}_size"] = torch.tensor(image.shape[1:], dtype=torch.int64)
        return d


class AffineToOriginald(MapTransform):
    """Canvas affine ``pred`` (6,) -> source-to-target 3x3 affine in original pixel units (``output_key``).

    Also maps ``moving_landmarks`` (N, 2) (when present) to the target frame as ``warped_landmarks``.

    Args:
        keys: the predicted canvas affine.
        output_key: where the original-units 3x3 matrix goes.
        moving_key: the moving image (its ``_canvas`` map is read).
        fixed_key: the fixed image.
        landmarks_key: moving landmarks (X, Y), optional.
        name_key: image whose metadata names the pair (the output becomes a MetaTensor named after the pair, so
            per-case metrics are keyed by it).
    """

    dictionary_only = "combines the predicted affine with the moving and fixed canvases, sizes and landmarks"

    def __init__(
        self, keys: str = "pred", output_key: str = "affine", moving_key: str = "image", fixed_key: str = "fixed",
        landmarks_key: str = "moving_landmarks", name_key: str = "moving",
    ) -> None:  # fmt: skip
        super().__init__(keys)
        self.output_key, self.moving_key, self.fixed_key = output_key, moving_key, fixed_key
        self.landmarks_key, self.name_key = landmarks_key, name_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            a = affine_to_3x3(d[key])
            s_src = np.asarray(d[f"{self.moving_key}_canvas"], dtype=np.float64)
            s_tgt = np.asarray(d[f"{self.fixed_key}_canvas"], dtype=np.float64)
            m = np.linalg.inv(s_tgt) @ a @ s_src
            d[self.output_key] = torch.as_tensor(m)
            name = pair_stem(_filename(d.get(self.name_key), "moving"), _filename(d.get(self.fixed_key), "fixed"))
            d[key] = MetaTensor(torch.as_tensor(d[key]).detach().clone(), meta={"filename_or_obj": name})
            if self.landmarks_key in d and d[self.landmarks_key] is not None:
                pts = np.asarray(d[self.landmarks_key], dtype=np.float64).reshape(-1, 2)
                d["warped_landmarks"] = torch.as_tensor(pts @ m[:2, :2].T + m[:2, 2])
        return d


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    """Checkerboard of two same-shape images (H, W[, C]) with ``tiles`` tiles along the longer side."""
    h, w = a.shape[:2]
    step = max(1, max(h, w) // tiles)
    yy, xx = np.meshgrid(np.arange(h) // step, np.arange(w) // step, indexing="ij")
    mask = (yy + xx) % 2 == 0
    if a.ndim == 3:
        mask = mask[..., None]
    return np.where(mask, a, b)


def _stem(path: object) -> str:
    name = Path(str(path)).name
    for suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


class SaveAffineOutputsd(MapTransform):
    """Write the per-pair outputs of affine registration into ``output_dir``.

    Files (``<pair>`` = ``<moving stem>_to_<fixed stem>``):

    - ``<pair>_affine.json``: the 3x3 source-to-target affine in original pixel units (x column, y row) and its
      inverse (target-to-source, the sampling map of the warped image);
    - ``<pair>_warped.png``: the moving RGB image warped into the fixed image's original frame (white padding);
    - ``<pair>_checkerboard.png``: checkerboard of the warped moving and the fixed image (grey);
    - ``<pair>_landmarks.csv``: moving landmarks mapped to the fixed frame (ANHIR layout: index, X, Y), only when
      the pair carries moving landmarks.

    Args:
        keys: the original-units affine (3x3).
        output_dir: output folder.
        moving_key: moving image whose metadata names the file.
        fixed_key: fixed image whose metadata names the file.
        moving_original_key: the original channel-first moving image.
        fixed_original_key: the original channel-first fixed image.
    """

    dictionary_only = "writes a pair's outputs from its prediction, its moving and fixed images and their names"

    def __init__(
        self, keys: str = "affine", output_dir: str = "outputs", moving_key: str = "moving", fixed_key: str = "fixed",
        moving_original_key: str = "image_original", fixed_original_key: str = "fixed_original",
    ) -> None:  # fmt: skip
        super().__init__(keys)
        self.output_dir = Path(output_dir)
        self.moving_key, self.fixed_key = moving_key, fixed_key
        self.moving_original_key, self.fixed_original_key = moving_original_key, fixed_original_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:  # noqa: D102
        from PIL import Image

        d = dict(data)
        for key in self.key_iterator(d):
            m = affine_to_3x3(d[key])
            mpath, fpath = _filename(d.get(self.moving_key), "moving"), _filename(d.get(self.fixed_key), "fixed")
            pair = pair_stem(mpath, fpath)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            payload = {
                "source": str(mpath), "target": str(fpath),
                "convention": "x = column, y = row, pixel centres at integers, original image pixels; "
                              "[x_t, y_t, 1]^T = source_to_target @ [x_s, y_s, 1]^T",
                "source_to_target": m.tolist(), "target_to_source": np.linalg.inv(m).tolist(),
            }  # fmt: skip
            (self.output_dir / f"{pair}_affine.json").write_text(json.dumps(payload, indent=2) + "\n")
            src = torch.as_tensor(np.asarray(d[self.moving_original_key]), dtype=torch.float32)
            tgt = torch.as_tensor(np.asarray(d[self.fixed_original_key]), dtype=torch.float32)
            src = src / (255.0 if float(src.max()) > 1.0 else 1.0)
            tgt = tgt / (255.0 if float(tgt.max()) > 1.0 else 1.0)
            th, tw = int(tgt.shape[1]), int(tgt.shape[2])
            # warp the inverted source so that the outside is background (0), then invert back to white
            warped = 1.0 - warp_affine(1.0 - src[None], torch.as_tensor(m[:2].reshape(1, 6)), (th, tw))[0]
            warped_u8 = (warped.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(warped_u8[..., 0] if warped_u8.shape[-1] == 1 else warped_u8).save(
                self.output_dir / f"{pair}_warped.png"
            )
            grey_w = warped_u8.astype(np.float32).mean(-1)
            grey_t = (tgt.clamp(0, 1) * 255).permute(1, 2, 0).numpy().mean(-1)
            Image.fromarray(checkerboard(grey_w, grey_t).round().astype(np.uint8)).save(
                self.output_dir / f"{pair}_checkerboard.png"
            )
            if d.get("warped_landmarks") is not None:
                write_landmarks(self.output_dir / f"{pair}_landmarks.csv", np.asarray(d["warped_landmarks"]))
        return d


def _filename(image: object, default: str) -> str:
    return str(image.meta.get("filename_or_obj", default)) if isinstance(image, MetaTensor) else default


def pair_stem(moving: object, fixed: object) -> str:
    """``<moving stem>_to_<fixed stem>``, prefixed by the moving image's folder names up to the ANHIR set folder.

    ANHIR names images by stain within a set folder (``lung-lesion_1/scale-25pc/...``), so the set folder is kept:
    ``ihc_1/scale-100pc/source.png`` and ``.../target.png`` give ``ihc_1_source_to_target``.
    """
    m, f = Path(str(moving)), Path(str(fixed))
    parent = m.parent.parent.name if m.parent.name.startswith("scale-") else m.parent.name
    prefix = f"{parent}_" if parent else ""
    return f"{prefix}{_stem(m)}_to_{_stem(f)}"


class LoadLandmarksd(MapTransform):
    """Read ANHIR landmark CSVs (keys hold paths) into ``(N, 2)`` float64 tensors (X, Y); missing keys are skipped."""

    dictionary_only = "the array form is common.data.read_landmarks; this one skips keys an item lacks"

    def __init__(self, keys: tuple[str, ...] = ("moving_landmarks", "fixed_landmarks")) -> None:
        super().__init__(keys, allow_missing_keys=True)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:  # noqa: D102

        d = dict(data)
        for key in self.key_iterator(d):
            if isinstance(d[key], (str, Path)):
                d[key] = torch.as_tensor(read_landmarks(d[key]))
        return d
