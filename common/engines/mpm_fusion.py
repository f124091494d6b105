"""Stage-wise training and reporting for the multiphoton fusion classifier (Kethireddy et al., ICPR 2024).

Stage 1 trains the fusion autoencoder alone on the reconstruction loss; it is then frozen and stage 2 (MONAI's
``SupervisedTrainer`` in train.yaml) trains the classifier on the fused latent. Evaluation writes ``metrics.json``;
inference writes one JSON of class scores per region.

The class scores are the network's two **independent sigmoid outputs** (the paper trains two sigmoid outputs with
binary cross-entropy on one-hot labels): each is a score for its class, they need not sum to 1 and they are not a
probability distribution, so the reports call them ``class_scores`` (with :data:`CLASS_SCORES_NOTE`), never
``probabilities``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys

from ..metrics.binary_classification import binary_classification_summary
from ..networks import ChannelSelector, FusionAutoencoder, FusionClassifier, efficientnet_classifier
from .classification_outputs import PerCaseWriter, ProbabilityCollector, output_probabilities, source_names
from .metrics_report import write_json_atomic
from .stage_training import PrepareBatchInputAsTarget, attach_stage_handlers
from .training import TrainingCheckpoints

__all__ = [
    "CLASS_SCORES_NOTE",
    "ClassProbabilityWriter",
    "MPMClassificationReport",
    "fusion_classifier",
    "train_fusion_autoencoder",
    "training_resumes",
]

logger = logging.getLogger(__name__)

#: what the reports say about ``class_scores``
CLASS_SCORES_NOTE = (
    "independent sigmoid scores, not a distribution: one sigmoid per class (the paper's BCE on two outputs), so "
    "they need not sum to 1; predicted_class is the larger one"
)


def fusion_classifier(
    front_channels: Sequence[int] | None = None,
    width: float = 1.0,
    latent_on_path: bool = True,
    classifier: str = "efficientnet-b4",
    classifier_size: int = 224,
    bn_momentum: float = 0.01,
    num_classes: int = 2,
) -> torch.nn.Module:
    """The bundle's network from plain arguments: front end + EfficientNet as one ``FusionClassifier``.

    The configs' ``network_spec`` is this function with ``_mode_: callable``, so the training plan records these
    JSON values (not the front end's and classifier's module reprs) and only the chosen front end is ever built.

    Args:
        front_channels: None for the fusion autoencoder (the paper); else the input channels a
            :class:`~common.networks.ChannelSelector` keeps (``[0]`` BSHG, ``[1]`` FSHG, ``[2]`` TPEF, ``[0, 1, 2]``
            naive stacking).
        width: the autoencoder's channel multiplier (1.0 = Table 1); unused by the baselines.
        latent_on_path: the autoencoder's latent wiring (see :class:`~common.networks.FusionAutoencoder`).
        classifier: EfficientNet name (:func:`~common.networks.efficientnet_classifier`).
        classifier_size: side the front end's output is resized to.
        bn_momentum: the classifier's batch-norm momentum.
        num_classes: output logits.
    """
    front = FusionAutoencoder(3, width, latent_on_path) if front_channels is None else ChannelSelector(front_channels)
    head = efficientnet_classifier(classifier, num_classes, 3, bn_momentum, classifier_size)
    return FusionClassifier(front, head, classifier_size)


def training_resumes(
    ckpt_dir: str | Path,
    resume: bool,
    switches: Mapping[str, Any],
    network_spec: Any,
    train_data: Sequence[Any],
) -> bool:
    """Whether the classifier training (``TrainingCheckpoints`` with these arguments) will resume its state.

    That is: ``training_state.pt`` exists, its plan has the same switches, network arguments and training data, and
    ``resume`` is true. Stage 1 is then skipped: the trained, frozen autoencoder is part of the network state that
    is restored. Built from the plain arguments (not the trainer's handler) so that multi-process training can
    decide before the network is wrapped in ``DistributedDataParallel``.
    """
    probe = TrainingCheckpoints(ckpt_dir, torch.nn.Identity(), switches=switches, network_spec=network_spec,
                                train_data=train_data, resume=resume)  # fmt: skip
    return bool(probe._resumable())


def train_fusion_autoencoder(
    network: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    epochs: int,
    loss: torch.nn.Module,
    learning_rate: float = 1e-4,
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    log_dir: str | Path | None = None,
    seed: int = 0,
    skip: bool = False,
) -> list[float]:
    """Stage 1: train the autoencoder ``network.front`` on the reconstruction loss with Adam, then freeze it.

    ``network.front`` is a :class:`~common.networks.FusionAutoencoder`; baseline networks (no autoencoder) are
    returned untouched.

    Runs on MONAI's ``SupervisedTrainer`` (the target is the input); the epoch's mean loss is logged once per epoch
    and, with ``log_dir``, written to TensorBoard as ``ae_loss`` (step: the epoch).

    In multi-process training only rank 0 runs this (``common.distributed.on_main_process``); the other ranks
    freeze their copy and receive rank 0's weights when the network is wrapped in ``DistributedDataParallel``.

    Resume: ``skip`` (the bundle passes :func:`training_resumes`) when the classifier's ``training_state.pt`` will be
    resumed, since it holds the trained autoencoder; otherwise stage 1 trains from scratch (an interrupted stage 1 is
    run again whole).

    Args:
        network: a :class:`~common.networks.FusionClassifier` (or a DistributedDataParallel wrapping one).
        dataset: items with an ``image`` tensor ``(3, N, N)``.
        epochs: autoencoder epochs (the paper: 30); 0 freezes the untrained autoencoder.
        loss: the reconstruction loss (:class:`~common.losses.FusionReconstructionLoss`).
        learning_rate: Adam's learning rate (the paper: 1e-4).
        batch_size: the batch size (the paper: 1).
        device: training device.
        log_dir: TensorBoard folder for the per-epoch loss (``ae_loss``), or None.
        seed: shuffling seed.
        skip: do not train, only freeze (the classifier run resumes ``training_state.pt``, which holds the trained
            autoencoder: :func:`training_resumes`).

    Returns:
        the mean loss of each epoch (empty when skipped).
    """
    model = getattr(network, "module", network)
    if not getattr(model, "fusion", False):
        return []
    autoencoder = model.front.to(device)
    history: list[float] = []
    if skip:
        logger.info("stage 1 skipped: the classifier training resumes, and its saved state holds the autoencoder")
    elif epochs > 0:
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                             generator=torch.Generator().manual_seed(seed))  # fmt: skip
        trainer = SupervisedTrainer(
            device=torch.device(device), max_epochs=epochs, train_data_loader=loader, network=autoencoder,
            optimizer=torch.optim.Adam(autoencoder.parameters(), lr=learning_rate), loss_function=loss,
            prepare_batch=PrepareBatchInputAsTarget(), decollate=False, optim_set_to_none=True,
        )  # fmt: skip
        records: list[dict[str, float]] = []
        attach_stage_handlers(trainer, {"ae_loss": CommonKeys.LOSS}, records, per_image=True, logger=logger,
                              message="autoencoder epoch {epoch}/{max_epochs}: reconstruction loss {ae_loss:.5f}",
                              log_dir=log_dir)  # fmt: skip
        trainer.run()
        history = [record["ae_loss"] for record in records]
    model.freeze_front()
    return history


class MPMClassificationReport(ProbabilityCollector):
    """Evaluator handler writing ``metrics.json`` at the end of the evaluation.

    The report: AUROC from the FTC score, the trivial baseline (a constant 0.5 for every region, scored by the same
    function), AUROC of hard labels (as the paper's code), accuracy, per-class precision / recall / F1, per-region
    ``class_scores`` (independent sigmoids, :data:`CLASS_SCORES_NOTE`).

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

    def __call__(self, engine: Any) -> None:
        """Write the report of the epoch's collected scores."""
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
                          "class_scores": {c: float(v) for c, v in zip(self.class_names, p)}}  # fmt: skip
        report = {
            "metrics": {k: (None if not np.isfinite(v) else float(v)) for k, v in metrics.items()},
            "auroc_definition": "from the FTC sigmoid score (rank statistic); auroc_hard_labels uses argmax labels",
            "class_scores_note": CLASS_SCORES_NOTE,
            "cases": cases,
            "num_cases": len(labels),
            **self.extra,
        }
        write_json_atomic(self.path, report)
        engine.logger.info(f"AUROC {metrics['auroc']:.3f} (trivial {metrics['trivial_auroc']:.3f}); "
                           f"metrics written to {self.path}")  # fmt: skip


class ClassProbabilityWriter(PerCaseWriter):
    """Evaluator handler writing one ``<section>_<region>.json`` per input from the post-processed ``pred``.

    Each file: ``{"image", "class_scores": {class: s}, "class_scores_note", "predicted_class"}``.

    The scores are the independent per-class sigmoids (:data:`CLASS_SCORES_NOTE`); they do not sum to 1, so they
    are not written as ``probabilities``.

    Args:
        output_dir: output folder.
        class_names: class names in channel order.
    """

    def __init__(self, output_dir: str | Path, class_names: Sequence[str] = ("FA", "FTC")) -> None:
        super().__init__(output_dir, class_names, parent_in_name=True)

    def records(self, engine: Any):
        """One record per item: the class scores and the predicted class."""
        probs = output_probabilities(engine.state.output)
        for name, p in zip(source_names(engine.state.batch, len(probs)), probs):
            yield (
                name,
                {
                    "image": name,
                    "class_scores": {c: float(v) for c, v in zip(self.class_names, p)},
                    "class_scores_note": CLASS_SCORES_NOTE,
                    "predicted_class": self.class_names[int(np.argmax(p))],
                },
            )
