"""Arbitrary-scale super-resolution data: ISTE's degradation, training patches as coordinate/RGB pairs, outputs.

Training (Qu et al., following LIIF): draw a magnification ``m ~ U(scale_min, scale_max)``, crop a ``48m x 48m``
patch of the high-resolution tile, resize it to ``48 x 48`` (bicubic, antialiased) and blur it with a Gaussian (the
degradation); the target is ``48^2`` HR pixels sampled from the crop, given as coordinate / cell / RGB triples
(:class:`RandArbitraryScalePatch` / :class:`RandArbitraryScalePatchd`).

Evaluation degrades a whole HR tile by a fixed scale with the same degradation (:class:`ArbitraryScaleDegrade` /
:class:`ArbitraryScaleDegraded`), keeping the (cropped) HR tile as the label and its bicubic up-sampling as the
trivial baseline. :class:`SaveSuperResolutiond` writes the SR image and a side-by-side comparison figure.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils.type_conversion import convert_to_tensor
from PIL import Image

from ..sr_ops import make_coord, upsample, validate_scale, write_sr_comparison

__all__ = [
    "ArbitraryScaleDegrade",
    "ArbitraryScaleDegraded",
    "RandArbitraryScalePatch",
    "RandArbitraryScalePatchd",
    "SaveSuperResolutiond",
    "degrade_to_size",
    "gaussian_blur",
]


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a channel-first image ``(C, H, W)`` (reflected borders, radius ``ceil(3 sigma)``).

    Args:
        image: the image.
        sigma: standard deviation in pixels; ``0`` returns the image unchanged.
    """
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=image.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(image.dtype)
    c, h, w = image.shape
    out = image.reshape(c, 1, h, w)
    pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)  # reflection needs padding < size
    out = F.pad(out, [pad_w, pad_w, pad_h, pad_h], mode="reflect" if min(h, w) > 1 else "replicate")
    if pad_w < radius or pad_h < radius:
        out = F.pad(out, [radius - pad_w, radius - pad_w, radius - pad_h, radius - pad_h], mode="replicate")
    out = F.conv2d(out, kernel.reshape(1, 1, 1, -1))
    out = F.conv2d(out, kernel.reshape(1, 1, -1, 1))
    return out.reshape(c, h, w)


def degrade_to_size(hr: torch.Tensor, size: Sequence[int], blur_sigma: float) -> torch.Tensor:
    """ISTE's degradation: bicubic (antialiased) resize of ``hr`` ``(C, H, W)`` to ``size``, then a Gaussian blur.

    Returns:
        The low-resolution image, clamped to [0, 1].
    """
    lr = F.interpolate(hr[None].float(), size=(int(size[0]), int(size[1])), mode="bicubic", antialias=True,
                       align_corners=False)[0]  # fmt: skip
    return gaussian_blur(lr.clamp(0.0, 1.0), blur_sigma).clamp(0.0, 1.0)


def _lr_hr_sizes(height: int, width: int, scale: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """LR size ``floor(H / scale)`` and the HR crop ``round(lr * scale)`` that it super-resolves to."""
    lr = (int(height // scale), int(width // scale))
    hr = (int(math.floor(lr[0] * scale + 0.5)), int(math.floor(lr[1] * scale + 0.5)))
    return lr, hr


class ArbitraryScaleDegrade(Transform):
    """Degrade a whole HR image ``(C, H, W)`` in [0, 1] by ``scale`` (which may be non-integer).

    The LR image is ``floor(H / scale) x floor(W / scale)``; the HR image is first cropped (top-left) to
    ``round(lr * scale)`` so that the network's output at ``scale`` matches it exactly (see :meth:`hr_crop`).

    Args:
        scale: magnification, a number > 1.
        blur_sigma: Gaussian blur of the LR image, in LR pixels.

    Raises:
        ValueError: a bad scale, or an image with fewer than one LR pixel.
    """

    def __init__(self, scale: float = 2.0, blur_sigma: float = 1.0) -> None:
        self.scale = validate_scale(scale)
        self.blur_sigma = float(blur_sigma)

    def hr_crop(self, hr: torch.Tensor) -> torch.Tensor:
        """The part of ``hr`` the degraded image stands for."""
        (lh, lw), (hh, hw) = _lr_hr_sizes(hr.shape[-2], hr.shape[-1], self.scale)
        if min(lh, lw) < 1:
            raise ValueError(f"an image of {hr.shape[-2]}x{hr.shape[-1]} pixels is too small for scale {self.scale}")
        return hr[..., :hh, :hw]

    def __call__(self, img: torch.Tensor) -> torch.Tensor:  # noqa: D102
        hr = self.hr_crop(convert_to_tensor(img, track_meta=False, dtype=torch.float32))
        (lh, lw), _ = _lr_hr_sizes(img.shape[-2], img.shape[-1], self.scale)
        return degrade_to_size(hr, (lh, lw), self.blur_sigma)


class ArbitraryScaleDegraded(MapTransform):
    """Dictionary twin of :class:`ArbitraryScaleDegrade` for evaluation on HR tiles.

    ``data[key]`` (HR) becomes the LR input; the cropped HR image goes to ``label_key`` and the bicubic up-sampling
    of the LR input to the HR size (the trivial baseline) to ``bicubic_key``. The input's metadata (file name) is
    kept on the LR image.

    Args:
        keys: the HR image key (one key).
        scale: magnification.
        blur_sigma: Gaussian blur of the LR image, in LR pixels.
        label_key: where the HR reference goes.
        bicubic_key: where the bicubic baseline goes (``None``: not computed).
        allow_missing_keys: as in MONAI.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        scale: float = 2.0,
        blur_sigma: float = 1.0,
        label_key: str = "label",
        bicubic_key: str | None = "bicubic",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.degrade = ArbitraryScaleDegrade(scale, blur_sigma)
        self.label_key = label_key
        self.bicubic_key = bicubic_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            hr = self.degrade.hr_crop(convert_to_tensor(image, track_meta=False, dtype=torch.float32))
            lr = self.degrade(image)
            d[self.label_key] = hr
            if self.bicubic_key:
                d[self.bicubic_key] = upsample(lr, tuple(hr.shape[-2:]), "bicubic")
            d[key] = MetaTensor(lr, meta=dict(image.meta)) if isinstance(image, MetaTensor) else lr
        return d


class RandArbitraryScalePatch(Randomizable, Transform):
    """One ISTE training sample from an HR image ``(C, H, W)`` in [0, 1].

    Draws ``m ~ U(scale_min, scale_max)`` and a ``round(patch_size * m)``-sided crop, degrades the crop to
    ``patch_size x patch_size`` (:func:`degrade_to_size`) and samples ``num_samples`` of its pixels without
    replacement as (coordinate, cell, RGB) triples; coordinates are pixel centres in [-1, 1] (row, column) of the
    crop and the cell is the HR pixel size ``2 / crop``.

    Args:
        patch_size: LR patch side (48 in the paper).
        scale_min: lower end of the magnification range (1).
        scale_max: upper end (4).
        num_samples: sampled HR pixels per patch (48^2).
        blur_sigma: Gaussian blur of the LR patch, in LR pixels.

    Raises:
        ValueError: a bad scale range, or an image smaller than the largest crop ``round(patch_size * scale_max)``.
    """

    def __init__(
        self,
        patch_size: int = 48,
        scale_min: float = 1.0,
        scale_max: float = 4.0,
        num_samples: int = 48 * 48,
        blur_sigma: float = 1.0,
    ) -> None:
        if not 1.0 <= float(scale_min) <= float(scale_max):
            raise ValueError(f"need 1 <= scale_min <= scale_max, got {scale_min} and {scale_max}")
        if num_samples > patch_size * patch_size:
            raise ValueError(f"num_samples {num_samples} exceeds the pixels of the smallest crop ({patch_size}^2)")
        self.patch_size = int(patch_size)
        self.scale_min, self.scale_max = float(scale_min), float(scale_max)
        self.num_samples = int(num_samples)
        self.blur_sigma = float(blur_sigma)
        self._crop = self.patch_size
        self._corner = (0, 0)
        self._picks = np.arange(self.num_samples)

    def min_image_size(self) -> int:
        """Smallest HR side the largest crop fits in."""
        return int(math.floor(self.patch_size * self.scale_max + 0.5))

    def randomize(self, data: torch.Tensor) -> None:  # noqa: D102
        height, width = data.shape[-2], data.shape[-1]
        if min(height, width) < self.min_image_size():
            raise ValueError(
                f"an image of {height}x{width} pixels is smaller than the largest training crop "
                f"({self.min_image_size()} = patch {self.patch_size} x scale {self.scale_max})"
            )
        scale = self.R.uniform(self.scale_min, self.scale_max)
        self._crop = min(int(math.floor(self.patch_size * scale + 0.5)), height, width)
        self._corner = (int(self.R.randint(0, height - self._crop + 1)), int(self.R.randint(0, width - self._crop + 1)))
        self._picks = self.R.choice(self._crop * self._crop, self.num_samples, replace=False)

    def __call__(
        self, img: torch.Tensor, randomize: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(lr (C, p, p), coord (N, 2), cell (N, 2), rgb (N, C))``."""
        img = convert_to_tensor(img, track_meta=False, dtype=torch.float32)
        if randomize:
            self.randomize(img)
        top, left = self._corner
        crop = img[:, top : top + self._crop, left : left + self._crop]
        lr = degrade_to_size(crop, (self.patch_size, self.patch_size), self.blur_sigma)
        picks = torch.as_tensor(self._picks, dtype=torch.long)
        coord = make_coord(self._crop, self._crop)[picks]
        rgb = crop.reshape(crop.shape[0], -1).t()[picks]
        cell = torch.full_like(coord, 2.0 / self._crop)
        return lr, coord, cell, rgb


class RandArbitraryScalePatchd(Randomizable, MapTransform):
    """Dictionary twin of :class:`RandArbitraryScalePatch`: ``data[key]`` (HR) becomes the LR patch and
    ``coord_key`` / ``cell_key`` / ``label_key`` receive the sampled coordinates, cells and RGB values.

    Args:
        keys: the HR image key (one key).
        coord_key: key of the query coordinates.
        cell_key: key of the query cells.
        label_key: key of the target RGB values.
        patch_size, scale_min, scale_max, num_samples, blur_sigma: as in :class:`RandArbitraryScalePatch`.
        allow_missing_keys: as in MONAI.
    """  # noqa: D205

    def __init__(
        self,
        keys: KeysCollection = "image",
        coord_key: str = "coord",
        cell_key: str = "cell",
        label_key: str = "label",
        patch_size: int = 48,
        scale_min: float = 1.0,
        scale_max: float = 4.0,
        num_samples: int = 48 * 48,
        blur_sigma: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.sampler = RandArbitraryScalePatch(patch_size, scale_min, scale_max, num_samples, blur_sigma)
        self.coord_key, self.cell_key, self.label_key = coord_key, cell_key, label_key

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):  # noqa: D102
        super().set_random_state(seed, state)
        self.sampler.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:  # noqa: D102
        self.sampler.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            self.randomize(d[key])
            d[key], d[self.coord_key], d[self.cell_key], d[self.label_key] = self.sampler(d[key], randomize=False)
        return d


def _name(image: Any, fallback: str) -> str:
    meta = getattr(image, "meta", None) or {}
    source = meta.get("filename_or_obj")
    if isinstance(source, (list, tuple)):
        source = source[0] if source else None
    return Path(str(source)).name.split(".")[0] if source else fallback


def _hwc(image: torch.Tensor) -> np.ndarray:
    return np.moveaxis(torch.as_tensor(image).detach().cpu().float().clamp(0, 1).numpy(), 0, -1)


class SaveSuperResolutiond(MapTransform):
    """Write the SR image ``<name><postfix>.png`` and a comparison figure ``<name>_comparison.png`` per case.

    The figure shows the same central region (up to ``crop`` HR pixels) of the LR input (nearest), its bicubic
    up-sampling, the SR result and, when ``hr_key`` is present, the HR reference (``write_sr_comparison``).

    Args:
        keys: the SR prediction key (``pred``), ``(C, H, W)`` in [0, 1].
        output_dir: destination folder (created on the first write).
        image_key: the LR input (its metadata gives the file name).
        hr_key: the HR reference, if any.
        postfix: appended to the input's name for the SR image (MONAI Label's ``result_postfix``).
        crop: side of the compared region in HR pixels.
        method: title of the SR panel.
    """

    dictionary_only = "writes the SR image beside the LR input and the HR reference of the item"

    def __init__(
        self,
        keys: KeysCollection = "pred",
        output_dir: str = "outputs",
        image_key: str = "image",
        hr_key: str | None = "label",
        postfix: str = "_sr",
        crop: int = 96,
        method: str = "ISTE",
    ) -> None:
        super().__init__(keys, allow_missing_keys=False)
        self.output_dir = Path(output_dir)
        self.image_key, self.hr_key, self.postfix = image_key, hr_key, postfix
        self.crop, self.method = int(crop), method
        self._count = 0

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            sr = torch.as_tensor(d[key]).detach().cpu().float().clamp(0, 1)
            lr = torch.as_tensor(d[self.image_key]).detach().cpu().float()
            name = _name(d[self.image_key], f"case_{self._count:04d}")
            self._count += 1
            self.output_dir.mkdir(parents=True, exist_ok=True)
            target = self.output_dir / f"{name}{self.postfix}.png"
            tmp = target.with_name(f".{target.name}.tmp")
            Image.fromarray(np.round(_hwc(sr) * 255).astype(np.uint8)).save(tmp, format="PNG")
            os.replace(tmp, target)
            height, width = sr.shape[-2:]
            sy, sx = height / lr.shape[-2], width / lr.shape[-1]
            ch, cw = min(self.crop, height), min(self.crop, width)
            top, left = (height - ch) // 2, (width - cw) // 2
            lt, ll = int(top / sy), int(left / sx)
            lh, lw = max(1, round(ch / sy)), max(1, round(cw / sx))
            bicubic = upsample(lr, (height, width), "bicubic")
            panels = {
                "LR": _hwc(lr[:, lt : lt + lh, ll : ll + lw]),
                "bicubic": _hwc(bicubic[:, top : top + ch, left : left + cw]),
                f"{self.method} x{sy:.3g}": _hwc(sr[:, top : top + ch, left : left + cw]),
            }
            hr = d.get(self.hr_key) if self.hr_key else None
            if isinstance(hr, torch.Tensor) and tuple(hr.shape[-2:]) == (height, width):
                panels["HR"] = _hwc(hr[:, top : top + ch, left : left + cw])
            write_sr_comparison(str(self.output_dir / f"{name}_comparison.png"), panels)
        return d
