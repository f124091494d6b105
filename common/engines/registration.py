"""Engine pieces for pairwise registration: batch preparation for the registration loss, and a per-pair timer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from monai.engines import PrepareBatch
from monai.engines.utils import IterationEvents
from monai.utils import min_version, optional_import

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["PrepareRegistrationBatch", "PairTimer"]


class PrepareRegistrationBatch(PrepareBatch):
    """Return ``(pair, targets)`` for :class:`common.losses.RegistrationLoss`.

    ``pair`` is the network input (moving and fixed concatenated, key ``image``); ``targets`` holds ``moving`` and
    ``fixed`` and, when the batch carries them, ``moving_label`` and ``fixed_label``.

    Args:
        image_key: the concatenated pair.
        moving_key: the moving image alone.
        fixed_key: the fixed image.
        label_key: the moving image's labels (optional in the batch).
        fixed_label_key: the fixed image's labels (optional in the batch).
    """

    def __init__(
        self,
        image_key: str = "image",
        moving_key: str = "moving",
        fixed_key: str = "fixed",
        label_key: str = "label",
        fixed_label_key: str = "fixed_label",
    ) -> None:
        self.image_key, self.moving_key, self.fixed_key = image_key, moving_key, fixed_key
        self.label_key, self.fixed_label_key = label_key, fixed_label_key

    def __call__(  # noqa: D102
        self,
        batchdata: Mapping[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        missing = [k for k in (self.image_key, self.moving_key, self.fixed_key) if k not in batchdata]
        if missing:
            raise KeyError(f"batch has no {missing}; it has {sorted(batchdata)}")

        def move(key: str) -> torch.Tensor:
            return batchdata[key].to(device=device, non_blocking=non_blocking, **kwargs)

        targets = {"moving": move(self.moving_key), "fixed": move(self.fixed_key)}
        for key, name in ((self.label_key, "moving_label"), (self.fixed_label_key, "fixed_label")):
            if key in batchdata:
                targets[name] = move(key)
        return move(self.image_key), targets


class PairTimer:
    """Ignite handler: mean seconds per pair of the network forward pass, stored as ``metrics[name]``.

    Times from the end of batch loading to MONAI's ``FORWARD_COMPLETED`` (device transfer and the forward pass),
    divided by the batch size; written at ``EPOCH_COMPLETED`` so an attached :class:`MetricsReport` placed after it
    reports it.

    Args:
        name: metric name.
    """

    def __init__(self, name: str = "seconds_per_pair") -> None:
        self.name = name
        self._start = 0.0
        self._total = 0.0
        self._pairs = 0

    def attach(self, engine: Any) -> None:  # noqa: D102
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.GET_BATCH_COMPLETED, self._tic)
        engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self._toc)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._store)

    def _reset(self, engine: Any) -> None:
        self._total, self._pairs = 0.0, 0

    def _tic(self, engine: Any) -> None:
        self._start = time.perf_counter()

    def _toc(self, engine: Any) -> None:
        self._total += time.perf_counter() - self._start
        batch = engine.state.batch
        image = batch.get("image") if isinstance(batch, Mapping) else None
        self._pairs += int(image.shape[0]) if isinstance(image, torch.Tensor) else 1

    def _store(self, engine: Any) -> None:
        engine.state.metrics[self.name] = self._total / max(self._pairs, 1)
