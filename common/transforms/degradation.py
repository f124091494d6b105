"""The rVTT paper's degradation: low-resolution images made by bicubic downsampling of the high-resolution ones."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils.type_conversion import convert_to_tensor

__all__ = ["BicubicDegrade", "BicubicDegraded", "crop_to_multiple"]


def _check_scale(scale: object) -> int:
    try:
        value = float(scale)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a number > 1 (e.g. 4, 9 or 16), got {scale!r}") from None
    if not value > 1 or value != int(value):
        raise ValueError(f"scale must be an integer > 1 (e.g. 4, 9 or 16), got {scale!r}")
    return int(value)


def crop_to_multiple(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the last two (spatial) axes of a channel-first image to multiples of ``scale`` (top-left anchored)."""
    h, w = image.shape[-2] // scale * scale, image.shape[-1] // scale * scale
    return image[..., :h, :w]


class BicubicDegrade(Transform):
    """Bicubic downsampling (antialiased, as MATLAB's ``imresize``) of a channel-first image by ``scale``.

    The image is first cropped to multiples of ``scale``; the output is clamped to the input's [0, 1] range.

    Args:
        scale: integer factor > 1.
        min_lr_size: the smallest allowed low-resolution side (the image must be at least ``scale * min_lr_size``).

    Raises:
        ValueError: a non-numeric, non-integer or <= 1 ``scale``; an image too small for it.
    """

    def __init__(self, scale: int = 4, min_lr_size: int = 1) -> None:
        self.scale = _check_scale(scale)
        self.min_lr_size = int(min_lr_size)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:  # noqa: D102
        img = img if isinstance(img, torch.Tensor) else convert_to_tensor(img)  # MetaTensors keep their meta
        if img.ndim != 3:
            raise ValueError(f"expected a (C, H, W) image, got shape {tuple(img.shape)}")
        lr_size = (img.shape[-2] // self.scale, img.shape[-1] // self.scale)
        if min(lr_size) < self.min_lr_size:
            raise ValueError(
                f"a {tuple(img.shape[-2:])} image is too small for scale {self.scale} "
                f"(low-resolution side {min(lr_size)} < {self.min_lr_size})"
            )
        plain = img.as_tensor() if isinstance(img, MetaTensor) else img
        hr = crop_to_multiple(plain.float(), self.scale)
        lr = F.interpolate(hr[None], size=lr_size, mode="bicubic", align_corners=False, antialias=True)[0]
        lr = lr.clamp(0.0, 1.0)
        if isinstance(img, MetaTensor):  # keep the meta data (file name for reports); pixels are scale x larger
            meta = {k: v for k, v in img.meta.items() if k != "affine"}
            diagonal = [float(self.scale)] * 2 + [1.0] * (img.affine.shape[0] - 2)
            zoom = torch.diag(torch.tensor(diagonal, dtype=torch.float64))
            lr = MetaTensor(lr, affine=img.affine.double() @ zoom, meta=meta)
        return lr


class BicubicDegraded(MapTransform):
    """Dictionary twin of :class:`BicubicDegrade`: the HR image becomes the target, its degradation the input.

    For each key, the image (cropped to multiples of ``scale``) is stored under ``hr_key`` and replaced by its
    bicubic downsampling; ``crop_keys`` (e.g. an ROI mask) are cropped the same way to stay aligned with the target.

    Args:
        keys: key of the high-resolution image (usually ``image``).
        scale: integer factor > 1.
        hr_key: where the high-resolution target goes (``label`` so MONAI's trainers and evaluators find it).
        crop_keys: other HR-sized arrays to crop to multiples of ``scale``.
        min_lr_size: smallest allowed low-resolution side.
        allow_missing_keys: skip missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        scale: int = 4,
        hr_key: str = "label",
        crop_keys: Sequence[str] = (),
        min_lr_size: int = 1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.degrade = BicubicDegrade(scale, min_lr_size)
        self.hr_key = hr_key
        self.crop_keys = tuple(crop_keys)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        scale = self.degrade.scale
        for key in self.key_iterator(d):
            d[self.hr_key] = crop_to_multiple(d[key], scale)
            d[key] = self.degrade(d[key])
        for key in self.crop_keys:
            if key in d:
                d[key] = crop_to_multiple(d[key], scale)
        return d
