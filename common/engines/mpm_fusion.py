"""Stage-wise training and reporting for the multiphoton fusion classifier (Kethireddy et al., ICPR 2024).

Stage 1 trains the fusion autoencoder alone on the reconstruction loss; it is then frozen and stage 2 (MONAI's
``SupervisedTrainer`` in train.yaml) trains the classifier on the fused latent. Evaluation writes ``metrics.json``;
inference writes one JSON of class probabilities per region.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Events

from ..metrics.binary_classification import binary_classification_summary
from .classification_outputs import ProbabilityCollector, output_probabilities, source_names
from .metrics_report import write_json_atomic

__all__ = ["ClassProbabilityWriter", "MPMClassificationReport", "train_fusion_autoencoder"]

logger = logging.getLogger(__name__)


def train_fusion_autoencoder(  # noqa: D417
    network: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    epochs: int,
    loss: torch.nn.Module,
    learning_rate: float = 1e-4,
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    log_dir: str | Path | None = None,
    seed: int = 0,
) -> list[float]:
    """Stage 1: train ``network.front`` (a :class:`~common.networks.FusionAutoencoder`) on the reconstruction loss
    with Adam, then freeze it. Baseline networks (no autoencoder) are returned untouched.

    Args:
        network: a :class:`~common.networks.FusionClassifier` (or a DistributedDataParallel wrapping one).
        dataset: items with an ``image`` tensor ``(3, N, N)``.
        epochs: autoencoder epochs (the paper: 30); 0 freezes the untrained autoencoder.
        loss: the reconstruction loss (:class:`~common.losses.FusionReconstructionLoss`).
        learning_rate, batch_size: Adam's learning rate and the batch size (the paper: 1e-4 and 1).
        device: training device.
        log_dir: TensorBoard folder for the per-epoch loss (``ae_loss``), or None.
        seed: shuffling seed.

    Returns:
        the mean loss of each epoch.
    """  # noqa: D205
    model = getattr(network, "module", network)
    if not getattr(model, "fusion", False):
        return []
    autoencoder = model.front
    history: list[float] = []
    if epochs > 0:
        generator = torch.Generator().manual_seed(seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
        optimizer = torch.optim.Adam(autoencoder.parameters(), lr=learning_rate)
        writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(log_dir))
        autoencoder.train()
        for epoch in range(epochs):
            total, count = 0.0, 0
            for batch in loader:
                x = torch.as_tensor(batch["image"]).to(device).float()
                optimizer.zero_grad()
                value = loss(autoencoder(x), x)
                value.backward()
                optimizer.step()
                total += value.item() * len(x)
                count += len(x)
            history.append(total / max(count, 1))
            logger.info(f"autoencoder epoch {epoch + 1}/{epochs}: reconstruction loss {history[-1]:.5f}")
            if writer is not None:
                writer.add_scalar("ae_loss", history[-1], epoch + 1)
        if writer is not None:
            writer.close()
    model.freeze_front()
    return history


class MPMClassificationReport(ProbabilityCollector):
    """Evaluator handler writing ``metrics.json``: AUROC from probabilities, the trivial baseline (a constant 0.5
    for every region, scored by the same function), AUROC of hard labels (as the paper's code), accuracy, per-class
    precision / recall / F1, per-region probabilities.

    Args:
        output_dir: where ``metrics.json`` goes.
        class_names: the two class names in label order.
        extra: more top-level fields for the report.
    """  # noqa: D205

    def __init__(
        self, output_dir: str | Path, class_names: Sequence[str] = ("FA", "FTC"), extra: Mapping | None = None
    ):
        super().__init__()
        self.path = Path(output_dir) / "metrics.json"
        self.class_names = list(class_names)
        self.extra = dict(extra or {})

    def __call__(self, engine: Any) -> None:  # noqa: D102
        probs = np.stack(self.probs)
        labels = np.asarray(self.labels)
        metrics = binary_classification_summary(probs, labels, self.class_names)
        trivial = binary_classification_summary(np.full_like(probs, 0.5), labels, self.class_names)
        metrics["trivial_auroc"] = trivial["auroc"]
        metrics["trivial_accuracy_majority"] = float(max(labels.mean(), 1 - labels.mean()))
        cases = {}
        for name, p, y in zip(self.cases, probs, labels):
            key = "/".join(Path(name).parts[-2:])
            cases[key] = {"label": self.class_names[int(y)],
                          "probabilities": {c: float(v) for c, v in zip(self.class_names, p)}}  # fmt: skip
        report = {
            "metrics": {k: (None if not np.isfinite(v) else float(v)) for k, v in metrics.items()},
            "auroc_definition": "from the FTC probability (rank statistic); auroc_hard_labels uses argmax labels",
            "cases": cases,
            "num_cases": len(labels),
            **self.extra,
        }
        write_json_atomic(self.path, report)
        engine.logger.info(f"AUROC {metrics['auroc']:.3f} (trivial {metrics['trivial_auroc']:.3f}); "
                           f"metrics written to {self.path}")  # fmt: skip


class ClassProbabilityWriter:
    """Evaluator handler writing one ``<section>_<region>.json`` per input: ``{"image", "probabilities":
    {class: p}, "predicted_class"}`` from the evaluator's post-processed ``pred``.

    Args:
        output_dir: output folder.
        class_names: class names in channel order.
    """  # noqa: D205

    def __init__(self, output_dir: str | Path, class_names: Sequence[str] = ("FA", "FTC")) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names)

    def attach(self, engine: Any) -> None:  # noqa: D102
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:  # noqa: D102
        probs = output_probabilities(engine.state.output)
        names = source_names(engine.state.batch, len(probs))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, p in zip(names, probs):
            source = Path(name)
            record = {
                "image": name,
                "probabilities": {c: float(v) for c, v in zip(self.class_names, p)},
                "predicted_class": self.class_names[int(np.argmax(p))],
            }
            stem = source.name.split(".", 1)[0]
            write_json_atomic(self.output_dir / f"{source.parent.name}_{stem}.json", record)
