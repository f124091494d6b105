"""Mammogram preprocessing for detection: load as displayed, crop to the breast, resize with the boxes, augment.

Layout: MONAI's detection code reads a 2D box ``[x1, y1, x2, y2]`` along the image's first and second spatial axes,
and MONAI's PNG reader puts x (the column) first. The transforms here keep that convention: an image is a
``(C, W, H)`` tensor (axis 1 = x = column, axis 2 = y = row) and a box is ``[x1, y1, x2, y2]`` in pixels of that
tensor, so MONAI's box transforms (``RandFlipBoxd``, ``ClipBoxToImaged``, ...) and ``RetinaNetDetector`` apply
unchanged. :class:`LoadMammogramd` transposes the reader's ``(H, W)`` array once.

Every geometric step records itself in the image's meta data (``breast_box``, ``resize_scale``), so that
:class:`BoxesToOriginald` maps predicted boxes back to the pixels of the file the user gave.

Cantone et al. (ICPR 2024) pre-process by cropping the breast, z-scoring, resizing to 1280 x 800 and replicating the
grey channel three times, and augment with a horizontal flip, a random crop, and contrast and brightness changes
"with magnitude values" [0.4, 0.8, 1.5] and [0.3, 0.7, 1.3]: :class:`RandFactorFromListd` draws one of the listed
factors (the reading taken here; the paper does not define "magnitude").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable, Transform

from ..data.errors import ImageFileError
from ..data.mammography import breast_region_box, read_mammogram_dicom, read_mammogram_png
from .file_loading import LoadPathsd

__all__ = [
    "BoxesToOriginald",
    "BreastCropd",
    "LoadMammogramd",
    "RandFactorFromList",
    "RandFactorFromListd",
    "ResizeWithBoxesd",
    "load_mammogram",
]

#: meta keys written by the geometric steps (read by :class:`BoxesToOriginald`)
BREAST_BOX_KEY = "breast_box"
RESIZE_SCALE_KEY = "resize_scale"


def load_mammogram(path: str | Path) -> MetaTensor:
    """Read a mammogram (``.dcm`` DICOM as displayed, or the 16-bit PNG layout) as a ``(1, W, H)`` MetaTensor.

    Args:
        path: the file.

    Returns:
        float32 values as displayed (high = bright), axis 1 = x; meta: ``filename_or_obj``, ``original_shape``
        ``(H, W)`` and, for DICOM, patient id, laterality, view and pixel spacing.

    Raises:
        ImageFileError: unreadable file, unsupported format or photometric interpretation.
    """
    path = Path(path)
    meta: dict[str, Any] = {}
    if path.suffix.lower() in (".dcm", ".dicom", ""):
        array, dicom_meta = read_mammogram_dicom(path)
        meta.update({k: v for k, v in dicom_meta.items() if v is not None and k != "range"})
    elif path.suffix.lower() == ".png":
        array = read_mammogram_png(path)
    else:
        raise ImageFileError(path, f"unsupported mammogram file type {path.suffix!r} (expected .dcm or .png)")
    if not np.isfinite(array).all():
        raise ImageFileError(path, "the image holds NaN or infinite values")
    meta.update(filename_or_obj=str(path), original_shape=list(array.shape))
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(array.T))[None], meta=meta)


class LoadMammogramd(LoadPathsd):
    """Replace each key's file path with :func:`load_mammogram`'s ``(1, W, H)`` MetaTensor (see :class:`LoadPathsd`).

    Args:
        keys: keys holding file paths.
        allow_missing_keys: skip absent keys.
    """

    loader = staticmethod(load_mammogram)

    dictionary_only = "the array form is load_mammogram"

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys=allow_missing_keys)


def _shift_scale_boxes(boxes: Any, offset: Sequence[float], scale: Sequence[float]) -> torch.Tensor:
    boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4)
    shift = torch.tensor([offset[0], offset[1], offset[0], offset[1]], dtype=boxes.dtype)
    factor = torch.tensor([scale[0], scale[1], scale[0], scale[1]], dtype=boxes.dtype)
    return (boxes - shift) * factor


class BreastCropd(MapTransform):
    """Crop the image to the breast region (:func:`~common.data.breast_region_box`) and shift the boxes with it.

    The breast box (``[x1, y1, x2, y2]`` of the file's pixels) goes into the image's meta data as ``breast_box``.
    Boxes are clipped to the crop; the breast-region rule keeps every annotated cluster inside it on real data, and
    a box cut away entirely would be a reader error caught before training (``check_boxes``).

    Args:
        keys: the image key.
        box_keys: box keys moved with the crop (absent keys are skipped: inference has none).
        margin: pixels kept around the breast region.
        min_fraction: smallest breast area, as a fraction of the image, before "no breast tissue" is raised.
    """

    dictionary_only = "crops the image and shifts its boxes together"

    def __init__(self, keys: KeysCollection, box_keys: KeysCollection = (), margin: int = 8,
                 min_fraction: float = 0.01) -> None:  # fmt: skip
        super().__init__(keys)
        self.box_keys = [box_keys] if isinstance(box_keys, str) else list(box_keys)
        self.margin = int(margin)
        self.min_fraction = float(min_fraction)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Crop the image keys and shift the boxes.

        Raises:
            ImageFileError: no breast tissue in the image (named by its file).
        """
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            source = getattr(image, "meta", {}).get("filename_or_obj", key)
            grey = image[0].detach().cpu().numpy().T  # (H, W) as the breast-box rule reads it
            x1, y1, x2, y2 = breast_region_box(grey, margin=self.margin, min_fraction=self.min_fraction, source=source)
            cropped = image[:, x1:x2, y1:y2]
            if isinstance(cropped, MetaTensor):
                cropped.meta[BREAST_BOX_KEY] = [int(x1), int(y1), int(x2), int(y2)]
            d[key] = cropped
            for box_key in self.box_keys:
                if box_key in d:
                    boxes = _shift_scale_boxes(d[box_key], (x1, y1), (1.0, 1.0))
                    limit = torch.tensor([x2 - x1, y2 - y1, x2 - x1, y2 - y1], dtype=boxes.dtype)
                    d[box_key] = torch.minimum(boxes.clamp(min=0), limit)
        return d


class ResizeWithBoxesd(MapTransform):
    """Resize the image to ``spatial_size`` (bilinear, antialiased) and scale its boxes by the same factors.

    The per-axis scale goes into the meta data as ``resize_scale`` (new / old size). The paper resizes to
    1280 x 800 (rows x columns) without keeping the aspect ratio; with the ``(C, W, H)`` layout that is
    ``spatial_size=(800, 1280)``.

    Args:
        keys: the image key.
        spatial_size: ``(W, H)`` after resizing.
        box_keys: box keys scaled with the image (absent keys are skipped).
    """

    dictionary_only = "resizes the image and scales its boxes together"

    def __init__(self, keys: KeysCollection, spatial_size: Sequence[int], box_keys: KeysCollection = ()) -> None:
        super().__init__(keys)
        self.spatial_size = tuple(int(s) for s in spatial_size)
        if len(self.spatial_size) != 2 or min(self.spatial_size) < 1:
            raise ValueError(f"spatial_size must be two positive sizes (W, H), got {spatial_size}")
        self.box_keys = [box_keys] if isinstance(box_keys, str) else list(box_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Resize the image keys and scale the boxes."""
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            old = image.shape[1:]
            resized = torch.nn.functional.interpolate(
                torch.as_tensor(image)[None].float(), size=self.spatial_size, mode="bilinear", antialias=True,
                align_corners=False,
            )[0]  # fmt: skip
            scale = (self.spatial_size[0] / old[0], self.spatial_size[1] / old[1])
            meta = dict(getattr(image, "meta", {}))
            meta[RESIZE_SCALE_KEY] = [float(scale[0]), float(scale[1])]
            d[key] = MetaTensor(resized, meta=meta)
            for box_key in self.box_keys:
                if box_key in d:
                    d[box_key] = _shift_scale_boxes(d[box_key], (0.0, 0.0), scale)
        return d


class BoxesToOriginald(MapTransform):
    """Map boxes from the network's input back to the pixels of the file (undo the resize, then the breast crop).

    Args:
        keys: box keys (``pred_box`` after the detector).
        image_key: the image whose meta data holds ``breast_box`` and ``resize_scale``.
        allow_missing_keys: skip absent box keys (one post-processing for evaluation, with gt boxes, and for
            inference or MONAI Label, without them).
    """

    dictionary_only = "needs the boxes and the crop and resize recorded in the image's meta data"

    def __init__(self, keys: KeysCollection, image_key: str = "image", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.image_key = image_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Map every key's boxes to the file's pixels."""
        d = dict(data)
        meta = getattr(d.get(self.image_key), "meta", {}) or {}
        scale = [float(s) for s in meta.get(RESIZE_SCALE_KEY, (1.0, 1.0))]
        x1, y1 = (float(v) for v in list(meta.get(BREAST_BOX_KEY, (0, 0, 0, 0)))[:2])
        for key in self.key_iterator(d):
            boxes = _shift_scale_boxes(d[key], (0.0, 0.0), (1.0 / scale[0], 1.0 / scale[1]))
            d[key] = boxes + torch.tensor([x1, y1, x1, y1], dtype=boxes.dtype)
        return d


class RandFactorFromList(Randomizable, Transform):
    """With probability ``prob``, change contrast or brightness by a factor drawn from a list.

    ``contrast``: ``(x - mean) * f + mean``; ``brightness``: ``x * f``. Applied before the z-score, on the values as
    displayed (the paper lists contrast factors [0.4, 0.8, 1.5] and brightness factors [0.3, 0.7, 1.3]).

    Args:
        kind: ``"contrast"`` or ``"brightness"``.
        factors: the factors to draw from (uniformly).
        prob: probability of changing the image.

    Raises:
        ValueError: an unknown ``kind``, an empty list or a factor <= 0, or ``prob`` outside [0, 1].
    """

    KINDS = ("contrast", "brightness")

    def __init__(self, kind: str, factors: Sequence[float], prob: float = 0.5) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        if not factors or any(float(f) <= 0 for f in factors):
            raise ValueError(f"factors must be a non-empty list of positive numbers, got {factors}")
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.kind = kind
        self.factors = [float(f) for f in factors]
        self.prob = float(prob)
        self._factor: float | None = None

    def randomize(self, data: Any = None) -> None:
        """Draw whether to apply and which factor."""
        apply = self.R.random_sample() < self.prob
        index = self.R.randint(len(self.factors))
        self._factor = self.factors[index] if apply else None

    def __call__(self, image: torch.Tensor, randomize: bool = True) -> torch.Tensor:
        """Apply a newly drawn factor (or, with ``randomize=False``, the last one drawn) to ``image``."""
        if randomize:
            self.randomize()
        if self._factor is None:
            return image
        if self.kind == "contrast":
            mean = image.mean()
            return (image - mean) * self._factor + mean
        return image * self._factor


class RandFactorFromListd(Randomizable, MapTransform):
    """Dictionary twin of :class:`RandFactorFromList`: one factor drawn per item, applied to every key.

    Args:
        keys: image keys.
        kind: ``"contrast"`` or ``"brightness"``.
        factors: the factors to draw from (uniformly).
        prob: probability of changing the item.
    """

    KINDS = RandFactorFromList.KINDS

    def __init__(self, keys: KeysCollection, kind: str, factors: Sequence[float], prob: float = 0.5) -> None:
        super().__init__(keys)
        self.factor = RandFactorFromList(kind, factors, prob)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        """Seed the array transform, which makes the draws."""
        super().set_random_state(seed, state)
        self.factor.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw whether to apply and which factor."""
        self.factor.randomize()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Apply the drawn factor to every key (the same factor to all of them)."""
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            d[key] = self.factor(d[key], randomize=False)
        return d
        for key in self.key_iterator(d):
            image = d[key]
            if self.kind == "contrast":
                mean = image.mean()
                d[key] = (image - mean) * self._factor + mean
            else:
                d[key] = image * self._factor
        return d
