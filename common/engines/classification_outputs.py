"""What classification evaluators and writers read off an engine: probabilities, labels and source file names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ignite.engine import Events

__all__ = ["ProbabilityCollector", "output_labels", "output_probabilities", "source_names"]


def source_names(batch: Any, count: int) -> list[str]:
    """Source file names of a collated or decollated batch (``region_<k>`` when unknown)."""
    if isinstance(batch, Mapping):
        names = (getattr(batch.get("image"), "meta", {}) or {}).get("filename_or_obj")
        names = [names] if isinstance(names, str) else names
    else:
        names = [(getattr(b.get("image"), "meta", {}) or {}).get("filename_or_obj") for b in batch]
    if isinstance(names, (list, tuple)) and len(names) == count and all(isinstance(n, str) for n in names):
        return [str(n) for n in names]
    return [f"region_{k}" for k in range(count)]


def output_probabilities(output: Any) -> list[np.ndarray]:
    """Per-item probability vectors of an engine output (collated or decollated ``pred``)."""
    items = output if isinstance(output, (list, tuple)) else [output]
    probs = []
    for item in items:
        pred = item["pred"]
        pred = torch.as_tensor(pred).detach().cpu().float()
        probs.extend(pred.reshape(-1, pred.shape[-1]).numpy() if pred.ndim > 1 else [pred.numpy()])
    return probs


def output_labels(output: Any) -> list[int]:
    """Per-item class indices of an engine output's ``label`` (indices or one-hot)."""
    items = output if isinstance(output, (list, tuple)) else [output]
    labels = []
    for item in items:
        label = torch.as_tensor(item["label"]).detach().cpu()
        if label.ndim >= 1 and label.shape[-1] > 1:  # one-hot
            labels.extend(label.reshape(-1, label.shape[-1]).argmax(-1).tolist())
        else:
            labels.extend(label.reshape(-1).long().tolist())
    return labels


class ProbabilityCollector:
    """Base of evaluator report handlers: gathers every iteration's probabilities, labels and source names over an
    epoch (``self.probs``, ``self.labels``, ``self.cases``) and calls ``self(engine)`` when the epoch completes.
    """  # noqa: D205

    def __init__(self) -> None:
        self.probs: list[np.ndarray] = []
        self.labels: list[int] = []
        self.cases: list[str] = []

    def attach(self, engine: Any) -> None:  # noqa: D102
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, engine: Any = None) -> None:
        self.probs, self.labels, self.cases = [], [], []

    def _collect(self, engine: Any) -> None:
        probs = output_probabilities(engine.state.output)
        self.probs.extend(probs)
        self.labels.extend(output_labels(engine.state.output))
        self.cases.extend(source_names(engine.state.batch, len(probs)))

    def __call__(self, engine: Any) -> None:  # noqa: D102
        raise NotImplementedError
