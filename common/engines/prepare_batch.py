"""Batch preparation for losses that need more than one target tensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.engines import PrepareBatch

__all__ = ["PrepareBatchTargetDict"]


class PrepareBatchTargetDict(PrepareBatch):
    """Return ``(image, {key: tensor, ...})`` so a loss can receive several targets at once.

    MONAI's trainers call ``loss_function(pred, targets)`` with whatever the batch preparation returns as
    targets; point supervision needs the point annotations and the signed distance maps together.

    Args:
        target_keys: batch keys collected into the target dictionary.
        image_key: batch key of the network input.
    """

    def __init__(self, target_keys: Sequence[str] = ("points", "distance"), image_key: str = "image") -> None:
        self.target_keys = tuple(target_keys)
        self.image_key = image_key

    def __call__(  # noqa: D102
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        missing = [k for k in (self.image_key, *self.target_keys) if k not in batchdata]
        if missing:
            raise KeyError(f"batch has no {missing}; it has {sorted(batchdata)}")
        image = batchdata[self.image_key].to(device=device, non_blocking=non_blocking, **kwargs)
        targets = {k: batchdata[k].to(device=device, non_blocking=non_blocking, **kwargs) for k in self.target_keys}
        return image, targets
