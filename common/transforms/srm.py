"""SRM: ESORDA's optional super-resolution stage, the RRDB generator the microscopy SR bundle trains.

The transform runs a generator it is given: :func:`common.engines.load_sr_generator` rebuilds it from that bundle's
``models/training_plan.json`` (its network arguments) and loads its ``models/model.pt``; nothing is downloaded. The
paper gives no detail of how the super-resolved image meets the
detector. Decision: the image is super-resolved by the generator's scale and brought back to its own grid by area
averaging, so SRM acts as a learned restoration (sharper nuclei, less noise) at the file's pixel size, and boxes,
the 30 px hit criterion and the FCOS scale ranges stay in the file's pixels.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

__all__ = ["SuperResolution", "SuperResolutiond"]


class SuperResolution(Transform):
    """Array transform: a ``(3, X, Y)`` image in 0..255 super-resolved and area-averaged back to its size.

    Args:
        generator: an RRDB generator (or any ``(B, 3, X, Y) -> (B, 3, sX, sY)`` network on [0, 1] images).
        device: where the generator runs.
    """

    def __init__(self, generator: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        self.generator = generator.to(device).eval()
        self.device = torch.device(device)

    def __call__(self, img: Any) -> Any:
        """The restored image, as the input's type (float32, 0..255)."""
        x = torch.as_tensor(img, dtype=torch.float32)
        size = tuple(int(s) for s in x.shape[1:])
        with torch.no_grad():
            sr = self.generator((x[None] / 255.0).to(self.device)).clamp(0, 1)
            out = F.adaptive_avg_pool2d(sr, size)[0].cpu() * 255.0
        if hasattr(img, "meta"):
            return type(img)(out, meta=img.meta)
        return out if isinstance(img, torch.Tensor) else out.numpy()


class SuperResolutiond(MapTransform):
    """Dictionary twin of :class:`SuperResolution`; ``generator`` None makes it the identity (SRM off).

    Args:
        keys: image keys.
        generator: the SR generator (:func:`common.engines.load_sr_generator`), None: no SRM.
        device: where the generator runs.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self, keys: KeysCollection, generator: torch.nn.Module | None = None, device: str | torch.device = "cpu",
        allow_missing_keys: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(keys, allow_missing_keys)
        self.stage = SuperResolution(generator, device) if generator is not None else None

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """The item with its images restored (unchanged without SRM)."""
        d = dict(data)
        if self.stage is None:
            return d
        for key in self.key_iterator(d):
            d[key] = self.stage(d[key])
        return d
