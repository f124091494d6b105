"""Synthetic point annotations drawn from full label maps, as in Breznik et al. (ICPR 2024).

For every foreground class present in a 2D slice, one pixel of the class mask is drawn uniformly at random and a
small disc around it (radius 2, i.e. the authors' 4-pixel width), clipped to the class mask, is marked with the
class index. Background is never annotated (0 means "not annotated").
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from ..checks import check_foreground_classes as _check_classes

__all__ = ["sample_point_annotations", "PointAnnotationd"]


def _check_radius(radius: int) -> int:
    if isinstance(radius, bool) or int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, got {radius!r}")
    return int(radius)


def sample_point_annotations(
    label: np.ndarray, classes: Sequence[int], radius: int = 2, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Draw one disc-shaped point annotation per foreground class present in a 2D label map.

    Args:
        label: integer label map ``(H, W)`` (float maps with integer values are accepted).
        classes: foreground classes to annotate; classes absent from the slice get no annotation.
        radius: disc radius in pixels (0 = a single pixel); the disc is clipped to the class mask.
        rng: random generator; ``None`` uses a fresh, unseeded generator.

    Returns:
        int32 map ``(H, W)``: the class index on annotated pixels, 0 elsewhere.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be a 2D map (H, W), got shape {label.shape}")
    classes = _check_classes(classes)
    radius = _check_radius(radius)
    rng = np.random.default_rng() if rng is None else rng
    label = np.rint(label).astype(np.int64) if label.dtype.kind == "f" else label.astype(np.int64)

    points = np.zeros(label.shape, dtype=np.int32)
    rows, cols = np.ogrid[: label.shape[0], : label.shape[1]]
    for c in classes:
        mask = label == c
        coords = np.flatnonzero(mask)
        if coords.size == 0:
            continue
        centre_row, centre_col = np.unravel_index(coords[rng.integers(coords.size)], label.shape)
        disc = (rows - centre_row) ** 2 + (cols - centre_col) ** 2 <= radius**2
        points[disc & mask] = c
    return points


class PointAnnotationd(MapTransform):
    """Dictionary transform writing synthetic point annotations of a channel-first 2D label ``(1, H, W)``.

    The random generator is derived from ``(seed, crc32 of the label bytes, H, W)``, so a given slice always gets
    the same points across epochs and runs (the authors draw their points once, offline), while different slices
    get independent draws. The output has the label's type and dtype (a :class:`~monai.data.MetaTensor` keeps the
    label's metadata) and holds integer class values.

    Args:
        keys: the label key (exactly one).
        output_key: key receiving the point map.
        classes: foreground classes to annotate.
        radius: disc radius in pixels (2 = the authors' width of 4 pixels).
        seed: base seed of the per-slice generator.
        allow_missing_keys: skip samples without the label instead of raising ``KeyError``.
    """

    dictionary_only = "adds the points under ``output_key`` beside the label they are drawn from"

    def __init__(
        self,
        keys: KeysCollection = "label",
        output_key: str = "points",
        classes: Sequence[int] = (1, 2, 3),
        radius: int = 2,
        seed: int = 0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"PointAnnotationd takes exactly one label key, got {self.keys}")
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.output_key = output_key
        self.classes = tuple(_check_classes(classes))
        self.radius = _check_radius(radius)
        self.seed = int(seed)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            array = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
            if array.ndim != 3 or array.shape[0] != 1:
                raise ValueError(f"PointAnnotationd expects a channel-first 2D label (1, H, W), got {array.shape}")
            values = np.rint(array[0]).astype(np.int64) if array.dtype.kind == "f" else array[0].astype(np.int64)
            digest = zlib.crc32(np.ascontiguousarray(values).tobytes())
            rng = np.random.default_rng([self.seed, digest, *values.shape])
            points = sample_point_annotations(values, self.classes, self.radius, rng)[None]
            if isinstance(label, torch.Tensor):
                out = torch.as_tensor(points, dtype=label.dtype, device=label.device)
                if isinstance(label, MetaTensor):
                    out = MetaTensor(out, meta=copy.deepcopy(label.meta))
            else:
                out = points.astype(array.dtype)
            d[self.output_key] = out
        return d
