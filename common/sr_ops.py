"""Super-resolution pieces that networks, transforms, metrics and engines all use.

The magnification check, the pixel-centre coordinate grid of implicit (coordinate-query) networks, the
interpolation baselines of SR tables and the side-by-side comparison figure. They live here, beside the kinds,
because each is used by more than one of them (``common.networks.iste``, ``common.transforms.arbitrary_scale``,
``common.metrics.super_resolution``, ``common.engines.rvtt``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

__all__ = ["UPSAMPLE_MODES", "make_coord", "upsample", "validate_scale", "write_sr_comparison"]

UPSAMPLE_MODES = ("nearest", "bicubic", "bilinear")


def upsample(lr: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Interpolate a low-resolution batch to ``size``: the nearest / bicubic baselines of SR tables.

    Args:
        lr: ``(B, C, h, w)`` (or ``(C, h, w)``) images in [0, 1].
        size: output ``(H, W)``.
        mode: ``"nearest"``, ``"bicubic"`` or ``"bilinear"``.

    Returns:
        The upsampled images, clamped to [0, 1] (bicubic overshoots), same number of dimensions as ``lr``.

    Raises:
        ValueError: unknown ``mode`` or an input that is not 3D/4D.
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {list(UPSAMPLE_MODES)}, got '{mode}'")
    if lr.ndim not in (3, 4):
        raise ValueError(f"expected a (B, C, H, W) or (C, H, W) tensor, got shape {tuple(lr.shape)}")
    batch = lr[None] if lr.ndim == 3 else lr
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    out = F.interpolate(batch.float(), size=tuple(int(s) for s in size), mode=mode, **kwargs).clamp(0.0, 1.0)
    return out[0] if lr.ndim == 3 else out


def make_coord(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Centres of the pixels of a ``height x width`` grid in [-1, 1], as ``(height * width, 2)`` (row, column).

    Args:
        height: number of rows.
        width: number of columns.
        device: device of the result.

    Returns:
        ``coord[i * width + j] = (-1 + (2 i + 1) / height, -1 + (2 j + 1) / width)``.
    """
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_y, grid_x], dim=-1).reshape(-1, 2)


def validate_scale(scale: object, name: str = "scale") -> float:
    """Return ``scale`` as a float if it is a finite number > 1.

    Raises:
        ValueError: naming the bad value.
    """
    try:
        value = float(scale)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 1 (a magnification such as 2, 3.5 or 4), got {scale!r}") from None
    if isinstance(scale, bool) or not math.isfinite(value) or value <= 1:
        raise ValueError(f"{name} must be a number > 1 (a magnification such as 2, 3.5 or 4), got {scale!r}")
    return value


def _to_uint8(panel: np.ndarray) -> np.ndarray:
    """HWC/HW/CHW array (uint8, or float in [0, 1]) -> HWC uint8 RGB."""
    array = np.asarray(panel)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        array = np.moveaxis(array, 0, -1)  # channels first
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"a panel must be an HxW or HxWx3 image, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.round(np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def write_sr_comparison(path: str, panels: dict[str, np.ndarray]) -> None:
    """Write a side-by-side PNG figure of titled panels (e.g. LR, bicubic, SR, HR), with Pillow.

    Every panel is resized with nearest-neighbour interpolation to the height of the tallest one (so LR pixels
    stay visible); titles are drawn above. The file is written to a temporary name and renamed.

    Args:
        path: destination ``.png`` file (its folder is created).
        panels: title -> image (``HxW`` or ``HxWx3``, uint8 or float in [0, 1]; ``CxHxW`` is accepted too).

    Raises:
        ValueError: no panel, or a panel that is not a 2D grey/RGB image.
    """
    if not panels:
        raise ValueError("write_sr_comparison needs at least one panel")
    images = {title: _to_uint8(panel) for title, panel in panels.items()}
    height = max(a.shape[0] for a in images.values())
    resized = []
    for array in images.values():
        width = max(1, round(array.shape[1] * height / array.shape[0]))
        resized.append(Image.fromarray(array, mode="RGB").resize((width, height), Image.NEAREST))
    gap, title_h = 4, 14
    canvas = Image.new("RGB", (sum(r.width for r in resized) + gap * (len(resized) + 1), height + title_h + 2 * gap),
                       (255, 255, 255))  # fmt: skip
    draw = ImageDraw.Draw(canvas)
    x = gap
    for title, image in zip(images, resized):
        draw.text((x, 1), str(title), fill=(0, 0, 0))
        canvas.paste(image, (x, title_h + gap))
        x += image.width + gap
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    canvas.save(tmp, format="PNG")
    os.replace(tmp, path)
