"""ABCDE "feature debasing" transforms of Bolelli et al., *Investigating the ABCDE Rule in Convolutional Neural
Networks* (ICPR 2024).

Each transform removes one clinical cue of the ABCD(E) rule from a dermoscopic image, using the lesion's
segmentation mask:

========================  ==================================================================================
variant                   transform
========================  ==================================================================================
``asymmetry``             :class:`RemoveAsymmetry`: centre the lesion, rotate randomly, mirror one quadrant
``borders``               :class:`ConcealBorders`: cover the lesion contour with a thick, soft black band
``grayscale``             :class:`ToGrayscale`: ITU-R BT.601 luma, replicated to the input channels
``mask``                  :class:`MaskAsImage`: the image becomes the binary lesion mask
``diameter``              :class:`FixForegroundRatio`: crop / reflect-pad so the lesion covers ``target``
========================  ==================================================================================

:class:`DebaseABCDEd` picks one of them by name (``ABCDE_VARIANTS``), so a config switches with one string.

Conventions: images are channel-first ``(C, H, W)``, masks ``(1, H, W)`` (or ``(H, W)``); numpy arrays, torch
tensors and MONAI MetaTensors are accepted and the output has the input's type (MetaTensors keep their meta data),
dtype ``float32`` and shape. A mask is binarised at half its maximum (``{0, 1}``, ``{0, 255}`` and probability
maps all work). Geometric transforms return the transformed mask as ``{0, 1}`` float32.

Decisions where the paper is vague (digest gaps 5-8):

- Asymmetry: the translation to the image centre and the rotation are one resampling (bilinear image, nearest
  mask, reflection outside the image). "The top-right quarter is flipped with respect to the horizontal and
  vertical axes" is read as *replacing* the other three quadrants by the mirrored top-right one, so the result is
  exactly mirror-symmetric about both central axes (flipping in place would not add symmetry). Default angle
  range is the full circle.
- Borders: the contour is the lesion's inner boundary (the image edge is not a contour); it is dilated by a disk
  of radius ``r = width_factor * sqrt(H * W) * sqrt(fg_ratio)`` (= ``width_factor * sqrt(lesion area)``, i.e.
  proportional to the image size and to the square root of the foreground-background ratio), default
  ``width_factor = 0.1``; the dilated band is smoothed with a Gaussian of ``sigma = sigma_factor * r`` (default
  0.5), rescaled so its maximum is 1, and the image is blended toward ``fill_value`` (black, 0) by it.
- Grayscale: luma ``0.299 R + 0.587 G + 0.114 B`` replicated to 3 channels so the network is unchanged.
- Mask: the mask replicated to the image's channels, foreground ``foreground_value`` (1.0; ``None`` = image max).
- Diameter: square window of side ``s = sqrt(N_fg / target)`` (sub-pixel) centred on the lesion centroid and
  shifted to stay inside the image (crop), or centred on the image and reflection-padded where it exceeds it (pad),
  resampled to the input size in one step (bilinear image, nearest mask). When padding, the image is reflected (as
  in the paper) but the mask is zero-padded by default (``mask_padding="zeros"``): the mirrored skin/lesion copies
  are not new lesion pixels, and this is what makes the foreground ratio reach ``target`` (a lesion covering more
  than 78.5% of an image touches the image edge, so a reflected mask would keep the ratio high).
"""  # noqa: D205

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils import convert_to_dst_type
from scipy import ndimage

__all__ = [
    "ABCDE_VARIANTS",
    "ConcealBorders",
    "ConcealBordersd",
    "DebaseABCDEd",
    "FixForegroundRatio",
    "FixForegroundRatiod",
    "MaskAsImage",
    "MaskAsImaged",
    "RemoveAsymmetry",
    "RemoveAsymmetryd",
    "ToGrayscale",
    "ToGrayscaled",
]

ABCDE_VARIANTS = ("original", "asymmetry", "borders", "grayscale", "mask", "diameter")
"""Names of the paper's experiments, in its table order; ``DebaseABCDEd(variant=...)`` accepts these."""

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601
MASK_PADDINGS = ("zeros", "reflect")

ArrayLike = TypeVar("ArrayLike", np.ndarray, torch.Tensor)


# ----------------------------------------------------------------------------------------------- helpers


def _source(x: Any) -> str:
    """`` (file.png)`` when ``x`` is a MetaTensor loaded from a file, else an empty string."""
    meta = getattr(x, "meta", None) or {}
    name = meta.get("filename_or_obj")
    if isinstance(name, (list, tuple)):
        name = name[0] if name else None
    return f" ({name})" if name else ""


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().as_subclass(torch.Tensor).numpy()
    return np.asarray(x, dtype=np.float32)


def _like(out: np.ndarray, ref: ArrayLike) -> ArrayLike:
    """``out`` as float32 in the type (numpy / torch / MetaTensor with its meta) and device of ``ref``."""
    dtype = np.float32 if isinstance(ref, np.ndarray) else torch.float32
    converted, _, _ = convert_to_dst_type(np.ascontiguousarray(out, dtype=np.float32), ref, dtype=dtype)
    return converted


def _image(img: Any) -> np.ndarray:
    array = _numpy(img)
    if array.ndim != 3:
        raise ValueError(f"expected a channel-first (C, H, W) image{_source(img)}, got shape {tuple(array.shape)}")
    return array


def _mask(mask: Any, image: np.ndarray | None = None, img_ref: Any = None, allow_empty: bool = False) -> np.ndarray:
    """Binary ``(H, W)`` bool mask, binarised at half its maximum, checked against the image's spatial shape."""
    array = _numpy(mask)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"expected a (1, H, W) or (H, W) mask{_source(mask)}, got shape {tuple(array.shape)}")
    if image is not None and array.shape != image.shape[-2:]:
        raise ValueError(
            f"mask{_source(mask)} has spatial shape {tuple(array.shape)} but the image{_source(img_ref)} has "
            f"{tuple(image.shape[-2:])}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"mask{_source(mask)} contains NaN or infinite values")
    peak = float(array.max()) if array.size else 0.0
    binary = array > 0.5 * peak if peak > 0 else np.zeros(array.shape, dtype=bool)
    if not allow_empty and not binary.any():
        raise ValueError(f"empty lesion mask{_source(mask)}: no foreground pixel, cannot locate the lesion")
    return binary


def _mask_like(binary: np.ndarray, ref: ArrayLike) -> ArrayLike:
    """Binary ``(H, W)`` mask back in ``ref``'s type and rank (``(1, H, W)`` or ``(H, W)``)."""
    out = binary.astype(np.float32)
    if len(ref.shape) == 3:
        out = out[None]
    return _like(out, ref)


def _centroid(binary: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(binary)
    return float(rows.mean()), float(cols.mean())


def _centre_and_rotate(array: np.ndarray, centroid: tuple[float, float], angle: float, order: int) -> np.ndarray:
    """Resample ``(C, H, W)`` so ``centroid`` lands on the image centre, rotated counter-clockwise by ``angle``
    degrees about it (as displayed, rows pointing down); reflection outside the image.
    """  # noqa: D205
    height, width = array.shape[-2:]
    centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
    theta = math.radians(angle)
    c, s = math.cos(theta), math.sin(theta)
    matrix = np.array([[c, s], [-s, c]])  # output (row, col) offset -> input offset
    offset = np.asarray(centroid) - matrix @ centre
    return np.stack(
        [ndimage.affine_transform(ch, matrix, offset=offset, order=order, mode="reflect") for ch in array]
    ).astype(np.float32)


def _mirror_top_right(array: np.ndarray) -> np.ndarray:
    """Replace the other three quadrants of ``(..., H, W)`` by mirror images of the top-right one.

    The result equals its own left-right and up-down flips; with odd sizes the central row/column belongs to the
    top-right quadrant.
    """
    height, width = array.shape[-2:]
    top_rows = (height + 1) // 2
    quadrant = array[..., :top_rows, width // 2 :]
    top = np.concatenate([quadrant[..., :, ::-1][..., :, : width // 2], quadrant], axis=-1)
    bottom = top[..., ::-1, :][..., top_rows - height // 2 :, :]
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=-2))


def _asymmetry_arrays(
    image: np.ndarray | None, binary: np.ndarray, angle: float
) -> tuple[np.ndarray | None, np.ndarray]:
    centroid = _centroid(binary)
    mask_out = _centre_and_rotate(binary[None].astype(np.float32), centroid, angle, order=0)[0] > 0.5
    image_out = None if image is None else _mirror_top_right(_centre_and_rotate(image, centroid, angle, order=1))
    return image_out, _mirror_top_right(mask_out)


def _border_band(binary: np.ndarray, width_factor: float, sigma_factor: float) -> np.ndarray:
    """Soft band in [0, 1] over the lesion contour (1 on the contour, 0 far from it)."""
    inner = ndimage.binary_erosion(binary, structure=ndimage.generate_binary_structure(2, 1), border_value=1)
    contour = binary & ~inner
    if not contour.any():  # the lesion fills the whole image: no skin-lesion transition to hide
        return np.zeros(binary.shape, dtype=np.float32)
    radius = max(1.0, width_factor * math.sqrt(float(binary.sum())))  # = k * sqrt(H*W) * sqrt(fg ratio)
    band = (ndimage.distance_transform_edt(~contour) <= radius).astype(np.float32)
    sigma = sigma_factor * radius
    if sigma > 0:
        band = ndimage.gaussian_filter(band, sigma=sigma, mode="nearest")
        band = np.clip(band / max(float(band.max()), 1e-12), 0.0, 1.0)
    return band.astype(np.float32)


def _luma(image: np.ndarray, img_ref: Any) -> np.ndarray:
    if image.shape[0] == 1:
        return image.copy()
    if image.shape[0] != 3:
        raise ValueError(
            f"grayscale conversion needs an RGB (3-channel) or 1-channel image{_source(img_ref)}, got "
            f"{image.shape[0]} channels"
        )
    luma = np.tensordot(np.asarray(LUMA_WEIGHTS, dtype=np.float32), image, axes=1)
    return np.repeat(luma[None], 3, axis=0).astype(np.float32)


def _window_start(centre: float, side: float, length: int) -> float:
    """Start (in pixel-edge coordinates, pixel ``k`` spanning ``[k, k + 1)``) of a ``side``-long window on an axis of
    ``length`` pixels: centred on the pixel index ``centre`` and shifted inside the axis when it fits, else centred
    on the axis (the rest is padding).
    """  # noqa: D205
    if side <= length:
        return min(max(centre + 0.5 - side / 2.0, 0.0), length - side)
    return (length - side) / 2.0


def _resample_window(array: np.ndarray, start: tuple[float, float], side: float, order: int, mode: str) -> np.ndarray:
    """The ``side x side`` window of ``(C, H, W)`` at ``start`` resampled to ``(H, W)`` (sub-pixel exact)."""
    height, width = array.shape[-2:]
    zoom = np.array([side / height, side / width])
    offset = np.asarray(start) + 0.5 * zoom - 0.5  # output pixel centre i -> input start + (i + 0.5) * zoom - 0.5
    return np.stack(
        [ndimage.affine_transform(ch, zoom, offset=offset, order=order, mode=mode, cval=0.0) for ch in array]
    ).astype(np.float32)


def _fix_ratio_arrays(
    image: np.ndarray | None, binary: np.ndarray, target: float, mask_padding: str
) -> tuple[np.ndarray | None, np.ndarray]:
    height, width = binary.shape
    side = math.sqrt(float(binary.sum()) / target)
    row, col = _centroid(binary)
    start = (_window_start(row, side, height), _window_start(col, side, width))
    mask_mode = "reflect" if mask_padding == "reflect" else "constant"
    mask_out = _resample_window(binary[None].astype(np.float32), start, side, 0, mask_mode)[0] > 0.5
    image_out = None if image is None else _resample_window(image, start, side, 1, "reflect")
    return image_out, mask_out


def _check_target(target: float) -> float:
    value = float(target)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"target foreground ratio must be in (0, 1], got {target!r}")
    return value


def _check_angles(angle_range: Sequence[float]) -> tuple[float, float]:
    low, high = (float(a) for a in angle_range)
    if low > high:
        raise ValueError(f"angle_range must be (low, high) with low <= high, got {tuple(angle_range)}")
    return low, high


def _require(data: Mapping[Hashable, Any], key: Hashable, why: str) -> Any:
    if key not in data:
        raise KeyError(f"mask key '{key}' is missing from the data (keys {sorted(map(str, data))}); {why} needs it")
    return data[key]


# ----------------------------------------------------------------------------------------------- asymmetry


class RemoveAsymmetry(Randomizable, Transform):
    """Debase *Asymmetry*: centre the lesion, rotate by a random angle, mirror the top-right quadrant.

    The lesion centroid (from the mask) is moved to the image centre and the image is rotated about it by an angle
    drawn uniformly from ``angle_range`` (degrees, counter-clockwise as displayed) in one resampling (bilinear,
    reflection outside the image); then the top-right quadrant, flipped over the vertical axis, the horizontal axis
    and both, replaces the other three, giving an image mirror-symmetric about both central axes. The mask gets the
    same geometry (nearest neighbour) and stays aligned.

    Args:
        angle_range: ``(low, high)`` degrees of the random rotation; ``(a, a)`` fixes it.

    Raises:
        ValueError: image not ``(C, H, W)``; mask spatial shape differs from the image; empty mask; bad range.
    """

    def __init__(self, angle_range: Sequence[float] = (0.0, 360.0)) -> None:
        self.angle_range = _check_angles(angle_range)
        self.angle = self.angle_range[0]

    def randomize(self, data: Any = None) -> None:
        """Draw the rotation angle."""
        self.angle = float(self.R.uniform(*self.angle_range))

    def __call__(self, img: ArrayLike, mask: ArrayLike, randomize: bool = True) -> tuple[ArrayLike, ArrayLike]:
        """Return ``(image, mask)``, both symmetric, in the input types."""
        image = _image(img)
        binary = _mask(mask, image, img)
        if randomize:
            self.randomize()
        image_out, mask_out = _asymmetry_arrays(image, binary, self.angle)
        return _like(image_out, img), _mask_like(mask_out, mask)  # type: ignore[arg-type]


class RemoveAsymmetryd(Randomizable, MapTransform):
    """Dictionary twin of :class:`RemoveAsymmetry`: the image keys and ``mask_key`` get the same (random) geometry.

    Args:
        keys: image keys.
        mask_key: key of the lesion mask (replaced by the symmetric mask).
        angle_range: as in :class:`RemoveAsymmetry`.
        allow_missing_keys: skip missing image keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        mask_key: str = "mask",
        angle_range: Sequence[float] = (0.0, 360.0),
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.mask_key = mask_key
        self.op = RemoveAsymmetry(angle_range)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):  # noqa: D102
        super().set_random_state(seed, state)
        self.op.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:  # noqa: D102
        self.op.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        mask = _require(d, self.mask_key, "RemoveAsymmetryd")
        self.randomize()
        binary = None
        for key in self.key_iterator(d):
            image = _image(d[key])
            binary = _mask(mask, image, d[key])
            image_out, _ = _asymmetry_arrays(image, binary, self.op.angle)
            d[key] = _like(image_out, d[key])  # type: ignore[arg-type]
        binary = _mask(mask) if binary is None else binary
        d[self.mask_key] = _mask_like(_asymmetry_arrays(None, binary, self.op.angle)[1], mask)
        return d


# ----------------------------------------------------------------------------------------------- borders


class ConcealBorders(Transform):
    """Debase *Border*: a thick soft black band over the lesion contour.

    The contour (inner boundary of the mask; the image edge does not count) is dilated by a disk of radius
    ``r = width_factor * sqrt(H * W) * sqrt(lesion area / image area)`` pixels (at least 1), smoothed by a Gaussian
    of ``sigma = sigma_factor * r`` and rescaled to a maximum of 1; the image becomes
    ``image * (1 - band) + fill_value * band``. Apply it before intensity normalisation so black is 0.

    Args:
        width_factor: ``k`` of the band radius (0.1).
        sigma_factor: Gaussian sigma as a fraction of the radius (0.5; 0 = hard band).
        fill_value: the band's colour (0 = black).

    Raises:
        ValueError: image not ``(C, H, W)``; mask spatial shape differs from the image; empty mask; negative factors.
    """

    def __init__(self, width_factor: float = 0.1, sigma_factor: float = 0.5, fill_value: float = 0.0) -> None:
        if width_factor < 0 or sigma_factor < 0:
            raise ValueError(f"width_factor and sigma_factor must be >= 0, got {width_factor} and {sigma_factor}")
        self.width_factor, self.sigma_factor, self.fill_value = float(width_factor), float(sigma_factor), fill_value

    def band(self, mask: Any) -> np.ndarray:
        """The ``(H, W)`` float32 band in [0, 1] for ``mask``."""
        return _border_band(_mask(mask), self.width_factor, self.sigma_factor)

    def __call__(self, img: ArrayLike, mask: Any) -> ArrayLike:  # noqa: D102
        image = _image(img)
        band = _border_band(_mask(mask, image, img), self.width_factor, self.sigma_factor)
        return _like(image * (1.0 - band) + float(self.fill_value) * band, img)


class ConcealBordersd(MapTransform):
    """Dictionary twin of :class:`ConcealBorders`; the mask item is left unchanged.

    Args:
        keys: image keys.
        mask_key: key of the lesion mask.
        width_factor, sigma_factor, fill_value: as in :class:`ConcealBorders`.
        allow_missing_keys: skip missing image keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        mask_key: str = "mask",
        width_factor: float = 0.1,
        sigma_factor: float = 0.5,
        fill_value: float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.op = ConcealBorders(width_factor, sigma_factor, fill_value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        mask = _require(d, self.mask_key, "ConcealBordersd")
        for key in self.key_iterator(d):
            d[key] = self.op(d[key], mask)
        return d


# ----------------------------------------------------------------------------------------------- colour


class ToGrayscale(Transform):
    """Debase *Colour* (first experiment): ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` replicated to the three
    input channels (a 1-channel image passes through unchanged).

    Raises:
        ValueError: image not ``(C, H, W)`` or with a channel count other than 1 or 3.
    """  # noqa: D205

    def __call__(self, img: ArrayLike) -> ArrayLike:  # noqa: D102
        return _like(_luma(_image(img), img), img)


class ToGrayscaled(MapTransform):
    """Dictionary twin of :class:`ToGrayscale` (needs no mask).

    Args:
        keys: image keys.
        allow_missing_keys: skip missing keys.
    """

    def __init__(self, keys: KeysCollection = "image", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.op = ToGrayscale()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.op(d[key])
        return d


class MaskAsImage(Transform):
    """Debase *Colour* (second experiment): the image is replaced by the binary lesion mask, replicated to the
    image's channel count; background 0, lesion ``foreground_value``.

    Args:
        foreground_value: the lesion's value (1.0 for images in [0, 1]; 255 for [0, 255]); ``None`` uses the
            image's maximum.

    Raises:
        ValueError: image not ``(C, H, W)``; mask spatial shape differs from the image; empty mask.
    """  # noqa: D205

    def __init__(self, foreground_value: float | None = 1.0) -> None:
        self.foreground_value = foreground_value

    def __call__(self, img: ArrayLike, mask: Any) -> ArrayLike:  # noqa: D102
        image = _image(img)
        binary = _mask(mask, image, img)
        value = float(image.max()) if self.foreground_value is None else float(self.foreground_value)
        out = np.repeat(binary[None].astype(np.float32) * value, image.shape[0], axis=0)
        return _like(out, img)


class MaskAsImaged(MapTransform):
    """Dictionary twin of :class:`MaskAsImage`; the mask item is left unchanged.

    Args:
        keys: image keys.
        mask_key: key of the lesion mask.
        foreground_value: as in :class:`MaskAsImage`.
        allow_missing_keys: skip missing image keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        mask_key: str = "mask",
        foreground_value: float | None = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.op = MaskAsImage(foreground_value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        mask = _require(d, self.mask_key, "MaskAsImaged")
        for key in self.key_iterator(d):
            d[key] = self.op(d[key], mask)
        return d


# ----------------------------------------------------------------------------------------------- diameter


class FixForegroundRatio(Transform):
    """Debase *Diameter*: crop or reflection-pad so the lesion covers ``target`` of the image, at the input size.

    A square window of side ``s = sqrt(N_fg / target)`` pixels (sub-pixel) is taken: centred on the lesion centroid
    and shifted to stay inside the image when it fits (small lesion: crop), else centred on the image with reflection
    padding (large lesion: pad). It is resampled to the input size (bilinear image, nearest mask). Very elongated
    lesions can be partly cut by the crop, as in the paper.

    Args:
        target: lesion area / image area after the transform (0.8 in the paper).
        mask_padding: ``"zeros"`` (default: padded area is background, so the ratio reaches ``target``) or
            ``"reflect"`` (the mask is reflected like the image).

    Raises:
        ValueError: image not ``(C, H, W)``; mask spatial shape differs from the image; empty mask; bad target.
    """

    def __init__(self, target: float = 0.8, mask_padding: str = "zeros") -> None:
        self.target = _check_target(target)
        if mask_padding not in MASK_PADDINGS:
            raise ValueError(f"mask_padding must be one of {list(MASK_PADDINGS)}, got {mask_padding!r}")
        self.mask_padding = mask_padding

    def __call__(self, img: ArrayLike, mask: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
        """Return ``(image, mask)`` in the input types."""
        image = _image(img)
        binary = _mask(mask, image, img)
        image_out, mask_out = _fix_ratio_arrays(image, binary, self.target, self.mask_padding)
        return _like(image_out, img), _mask_like(mask_out, mask)  # type: ignore[arg-type]


class FixForegroundRatiod(MapTransform):
    """Dictionary twin of :class:`FixForegroundRatio`: the image keys and ``mask_key`` get the same window.

    Args:
        keys: image keys.
        mask_key: key of the lesion mask (replaced by the transformed mask).
        target, mask_padding: as in :class:`FixForegroundRatio`.
        allow_missing_keys: skip missing image keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        mask_key: str = "mask",
        target: float = 0.8,
        mask_padding: str = "zeros",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.op = FixForegroundRatio(target, mask_padding)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        mask = _require(d, self.mask_key, "FixForegroundRatiod")
        binary = None
        for key in self.key_iterator(d):
            image = _image(d[key])
            binary = _mask(mask, image, d[key])
            image_out, _ = _fix_ratio_arrays(image, binary, self.op.target, self.op.mask_padding)
            d[key] = _like(image_out, d[key])  # type: ignore[arg-type]
        binary = _mask(mask) if binary is None else binary
        d[self.mask_key] = _mask_like(_fix_ratio_arrays(None, binary, self.op.target, self.op.mask_padding)[1], mask)
        return d


# ----------------------------------------------------------------------------------------------- dispatcher


class DebaseABCDEd(Randomizable, MapTransform):
    """One of the paper's six input variants, chosen by name (``ABCDE_VARIANTS``), as a dictionary transform.

    ``original`` passes the data through and ``grayscale`` converts to luma; neither needs the mask. ``asymmetry``,
    ``borders``, ``mask`` and ``diameter`` read ``data[mask_key]``. The random state is forwarded to the asymmetry
    transform (the only random one), so ``set_random_state`` or a seeded ``Compose`` make it deterministic.

    Args:
        keys: image keys.
        mask_key: key of the lesion mask.
        variant: one of ``ABCDE_VARIANTS``.
        angle_range: rotation range of ``asymmetry`` (degrees).
        width_factor, sigma_factor, fill_value: ``borders`` band (see :class:`ConcealBorders`).
        foreground_value: lesion value of ``mask`` (see :class:`MaskAsImage`).
        target, mask_padding: ``diameter`` (see :class:`FixForegroundRatio`).
        allow_missing_keys: skip missing image keys.

    Raises:
        ValueError: an unknown ``variant`` (the message lists the allowed ones).
    """

    dictionary_only = "reads the image and its lesion mask (``mask_key``) together"

    def __init__(
        self,
        keys: KeysCollection = "image",
        mask_key: str = "mask",
        variant: str = "original",
        angle_range: Sequence[float] = (0.0, 360.0),
        width_factor: float = 0.1,
        sigma_factor: float = 0.5,
        fill_value: float = 0.0,
        foreground_value: float | None = 1.0,
        target: float = 0.8,
        mask_padding: str = "zeros",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if variant not in ABCDE_VARIANTS:
            raise ValueError(f"variant must be one of {list(ABCDE_VARIANTS)}, got {variant!r}")
        self.variant = variant
        self.mask_key = mask_key
        args = (keys, mask_key)
        self.asymmetry = RemoveAsymmetryd(*args, angle_range, allow_missing_keys)
        self.ops: dict[str, MapTransform | None] = {
            "original": None,
            "asymmetry": self.asymmetry,
            "borders": ConcealBordersd(*args, width_factor, sigma_factor, fill_value, allow_missing_keys),
            "grayscale": ToGrayscaled(keys, allow_missing_keys),
            "mask": MaskAsImaged(*args, foreground_value, allow_missing_keys),
            "diameter": FixForegroundRatiod(*args, target, mask_padding, allow_missing_keys),
        }

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):  # noqa: D102
        super().set_random_state(seed, state)
        self.asymmetry.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:  # noqa: D102
        self.asymmetry.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        op = self.ops[self.variant]
        return dict(data) if op is None else op(data)
