"""Image fusion of the class-aware attention paper (Eq. 7): ``I_en = alpha * I + (1 - alpha) * L_CAWE * I``.

``I`` is the grey image or its colorization (any number of channels); ``L_CAWE`` a one-channel map in ``[0, 1]``
of the same spatial size, broadcast over the channels. ``alpha = 1`` returns the image unchanged, ``alpha = 0``
keeps only the attended regions.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

__all__ = ["CAWEFusion", "CAWEFusiond", "cawe_fusion"]


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (Eq. 7), got {alpha}")
    return alpha


def cawe_fusion(image: Any, weights: Any, alpha: float = 0.5) -> Any:
    """Eq. 7 on arrays or tensors: ``alpha * image + (1 - alpha) * weights * image``.

    Args:
        image: ``(C, *spatial)`` (or ``(B, C, *spatial)``) grey or colour image.
        weights: ``L_CAWE`` with one channel and the image's spatial size.
        alpha: balance in ``[0, 1]`` (the paper: 0.5).

    Returns:
        The enhanced image, the type and shape of ``image``.

    Raises:
        ValueError: ``alpha`` outside ``[0, 1]``, or weights that do not broadcast over the image.
    """
    alpha = _check_alpha(alpha)
    if tuple(weights.shape[-2:]) != tuple(image.shape[-2:]) or weights.shape[-3] != 1:
        raise ValueError(
            f"L_CAWE of shape {tuple(weights.shape)} does not match the image {tuple(image.shape)} "
            "(one channel, same spatial size)"
        )
    return alpha * image + (1.0 - alpha) * weights * image


class CAWEFusion(Transform):
    """Array transform of Eq. 7: ``CAWEFusion(alpha)(image, weights)``.

    Args:
        alpha: balance in ``[0, 1]`` (the paper: 0.5).
    """

    def __init__(self, alpha: float = 0.5) -> None:
        self.alpha = _check_alpha(alpha)

    def __call__(self, image: Any, weights: Any) -> Any:  # type: ignore[override]
        """Fuse ``image`` with its CAWE map ``weights``."""
        return cawe_fusion(image, weights, self.alpha)


class CAWEFusiond(MapTransform):
    """Dictionary twin of :class:`CAWEFusion`: ``data[key] <- fusion(data[key], data[weight_key])``.

    Args:
        keys: image keys.
        weight_key: key of the ``L_CAWE`` map.
        alpha: balance in ``[0, 1]``.
        allow_missing_keys: skip missing image keys.
    """

    def __init__(
        self, keys: KeysCollection, weight_key: str = "cawe", alpha: float = 0.5, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.weight_key = weight_key
        self.fusion = CAWEFusion(alpha)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Fuse every key's image with ``data[weight_key]``."""
        d = dict(data)
        if self.weight_key not in d:
            raise KeyError(f"CAWEFusiond: no CAWE map under '{self.weight_key}' (keys: {sorted(map(str, d))})")
        for key in self.key_iterator(d):
            d[key] = self.fusion(d[key], d[self.weight_key])
        return d
