"""What classification evaluators and writers read off an engine: probabilities, labels and source file names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Events

from ..image_io import image_suffix
from .metrics_report import write_json_atomic

__all__ = ["PerCaseWriter", "ProbabilityCollector", "batch_images", "output_labels", "output_probabilities",
           "source_names"]  # fmt: skip


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


def batch_images(batch: Any, key: str = "image") -> torch.Tensor:
    """The network inputs of a collated (mapping) or decollated (list of items) batch, as one ``(B, ...)`` tensor."""
    images = batch[key] if isinstance(batch, Mapping) else torch.stack([b[key] for b in batch])
    return torch.as_tensor(images)


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


class PerCaseWriter:
    """Base of evaluator handlers that write one JSON record per input image after every iteration.

    A subclass yields ``(source name, record)`` pairs from :meth:`records`; the base names each file after its
    source (:meth:`case_stem`) and writes it atomically into ``output_dir``. Files a subclass adds beside the
    record (a picture) use the same stem.

    Args:
        output_dir: output folder.
        class_names: class names in channel (logit) order.
        parent_in_name: prefix the source's folder name (``<folder>_<stem>``), for datasets whose file names repeat
            across folders (a class folder, a tissue section).
    """

    def __init__(self, output_dir: str | Path, class_names: Sequence[str], parent_in_name: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names)
        self.parent_in_name = parent_in_name

    def attach(self, engine: Any) -> None:
        """Write after every iteration of ``engine``."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def case_stem(self, name: str) -> str:
        """The output file stem of a source: its name without the image suffix (``.nii.gz`` counted as one)."""
        source = Path(name)
        suffix = image_suffix(source)
        stem = source.name[: -len(suffix)] if suffix and source.name.lower().endswith(suffix) else source.name
        return f"{source.parent.name}_{stem}" if self.parent_in_name else stem

    def records(self, engine: Any) -> Iterable[tuple[str, dict[str, Any]]]:
        """``(source name, JSON record)`` of every item of the iteration's batch."""
        raise NotImplementedError

    def __call__(self, engine: Any) -> None:
        """Write the record of every item of the iteration's batch."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, record in self.records(engine):
            write_json_atomic(self.output_dir / f"{self.case_stem(name)}.json", record)
