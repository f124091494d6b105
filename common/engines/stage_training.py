"""Data order, batch preparation and handlers shared by the trainers of the stages around a main trainer.

Those stages (the WGAN and CAE of the augmentation stage, the thyroid fusion autoencoder's stage 1, the OOD bundle's
ensemble members) run MONAI's engines (``SupervisedTrainer``, a small ``GanTrainer`` subclass) from Python, not from a
config, and without validation data (their papers have none). They share:

- :func:`shuffled_loader`: a ``DataLoader`` whose epochs follow one ``torch.randperm`` each from a given generator,
  and which draws nothing else from it or from the global RNG (a seed gives the same run as a plain ``for`` loop
  over the same permutations).
- :class:`PrepareBatchInputAsTarget`: the batch's image as input and target (autoencoders).
- :func:`attach_stage_handlers`: epoch averages of the iteration outputs (into ``engine.state.metrics`` and a
  history list), MONAI's ``StatsHandler`` logging them once per epoch, ignite's ``ProgressBar`` over epochs and a
  ``TensorBoardStatsHandler`` writing them once per epoch.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.engines import PrepareBatch, Workflow
from monai.handlers import StatsHandler
from monai.utils import CommonKeys, min_version, optional_import

from .tensorboard import TensorBoardStatsHandler

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
ProgressBar, _ = optional_import("ignite.handlers", "0.4.11", min_version, "ProgressBar")

__all__ = ["PrepareBatchInputAsTarget", "attach_stage_handlers", "shuffled_loader"]


class _ShuffledBatches:
    """Batch sampler: per pass, the ``batch_size`` slices of one ``torch.randperm`` as lists of ``indices``.

    Unlike torch's ``RandomSampler`` it draws exactly one permutation per pass (``RandomSampler`` draws a second,
    empty one when a pass ends, which moves every later draw of a shared generator).
    """

    def __init__(self, indices: Sequence[int], batch_size: int, generator: torch.Generator) -> None:
        self.indices = list(indices)
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.indices), generator=self.generator).tolist()
        for start in range(0, len(order), self.batch_size):
            yield [self.indices[i] for i in order[start : start + self.batch_size]]


def shuffled_loader(
    dataset: Any,
    batch_size: int,
    generator: torch.Generator,
    indices: Sequence[int] | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over ``dataset[indices]`` whose every epoch is one shuffled pass drawn from ``generator``.

    Epoch ``e`` loads ``dataset[indices[i]]`` for ``i`` in ``torch.randperm(len(indices), generator=generator)``, in
    slices of ``batch_size``, in the main process. The permutation is the only draw from ``generator``, and the
    loader draws nothing from the global RNG: a generator shared with other random choices (a GAN's latents) and a
    network's dropout then see the same streams as in a plain loop over that permutation. (``shuffle=True`` would
    draw a worker seed per epoch from the global RNG or the loader's generator, and ``RandomSampler`` an extra
    permutation at the end of each pass.)

    Args:
        dataset: anything indexable by int with a length (a tensor, a list of dicts, a MONAI dataset).
        batch_size: items per batch (the last batch of an epoch may be smaller).
        generator: the shuffling generator.
        indices: the items to load; None: all of ``dataset``.
        collate_fn: builds a batch from the list of items; None: torch's default collation (stacking).

    Returns:
        The loader; its length is the number of batches per epoch.

    Raises:
        ValueError: ``batch_size`` < 1 or no items.
    """
    indices = range(len(dataset)) if indices is None else indices
    if batch_size < 1 or len(indices) == 0:
        raise ValueError(f"shuffled_loader needs batch_size >= 1 and items, got {batch_size} and {len(indices)} items")
    # the loader's own generator takes the worker-seed draw every DataLoader makes (unused without workers)
    return torch.utils.data.DataLoader(dataset, batch_sampler=_ShuffledBatches(indices, batch_size, generator),
                                       collate_fn=collate_fn, generator=torch.Generator())  # fmt: skip


class PrepareBatchInputAsTarget(PrepareBatch):
    """``prepare_batch`` returning ``(x, x)``: the batch's image as the network input and as the loss target.

    For autoencoders trained by MONAI's ``SupervisedTrainer``, whose loss is ``loss_function(network(x), x)``.

    Args:
        image_key: the image's key when batches are dicts; a tensor batch is the image itself.
    """

    def __init__(self, image_key: str = CommonKeys.IMAGE) -> None:
        self.image_key = image_key

    def __call__(
        self,
        batchdata: Mapping[str, Any] | torch.Tensor,
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's image, as float on ``device``, twice.

        Args:
            batchdata: a tensor batch, or a dict batch holding ``image_key``.
            device: where the image goes.
            non_blocking: ``Tensor.to``'s argument.
            kwargs: more ``Tensor.to`` arguments.

        Returns:
            ``(x, x)``.
        """
        image = batchdata[self.image_key] if isinstance(batchdata, Mapping) else batchdata
        x = torch.as_tensor(image).to(device=device, non_blocking=non_blocking, **kwargs).float()
        return x, x


class _EpochAverages:
    """Trainer handler: per epoch, the mean of output values into ``engine.state.metrics`` and a history list.

    Args:
        averages: ``{name: key of the iteration output}``; an iteration whose value is None is left out, and an
            epoch without any value averages to NaN.
        per_image: weight each iteration by its batch size (``len(output["image"])``), giving the mean per image
            rather than per step.
        history: if a list, ``{"epoch": e, name: mean, ...}`` is appended at the end of every epoch.
    """

    def __init__(self, averages: Mapping[str, str], per_image: bool, history: list | None) -> None:
        self.averages = dict(averages)
        self.per_image = per_image
        self.history = history
        self._sums: dict[str, list[float]] = {}

    def attach(self, engine: Workflow) -> None:
        """Register the epoch start, iteration and epoch end handlers (before the handlers that log the means)."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._complete)

    def _reset(self, engine: Workflow) -> None:
        self._sums = {name: [0.0, 0.0] for name in self.averages}

    def _accumulate(self, engine: Workflow) -> None:
        output = engine.state.output
        weight = len(output[CommonKeys.IMAGE]) if self.per_image else 1
        for name, key in self.averages.items():
            value = output.get(key)
            if value is not None:
                self._sums[name][0] += (value.item() if isinstance(value, torch.Tensor) else float(value)) * weight
                self._sums[name][1] += weight

    def _complete(self, engine: Workflow) -> None:
        means = {name: total / count if count else math.nan for name, (total, count) in self._sums.items()}
        engine.state.metrics.update(means)
        if self.history is not None:
            self.history.append({"epoch": engine.state.epoch, **means})


def attach_stage_handlers(
    trainer: Workflow,
    averages: Mapping[str, str],
    history: list | None = None,
    per_image: bool = False,
    logger: logging.Logger | None = None,
    message: str = "",
    log_every: int = 1,
    progress: str | None = None,
    log_dir: str | Path | None = None,
) -> None:
    """Give a stage's trainer its epoch averages, per-epoch log line, progress bar and TensorBoard scalars.

    At the end of every epoch the averages of the iteration outputs go to ``trainer.state.metrics`` (and
    ``history``); MONAI's ``StatsHandler`` logs ``message`` every ``log_every`` epochs (never per iteration);
    ignite's ``ProgressBar`` advances once per epoch; a TensorBoard handler writes every average as a scalar whose
    step is the epoch. Attach before ``trainer.run()``.

    Args:
        trainer: a MONAI trainer (``SupervisedTrainer``, ``GanTrainer``...) whose iteration output is a dict.
        averages: ``{name: key of the iteration output}`` averaged over each epoch (iterations whose value is None
            are left out; an epoch without any gives NaN).
        history: if a list, ``{"epoch": e, name: average, ...}`` is appended at the end of every epoch.
        per_image: weight iterations by their batch size (``len(output["image"])``): the epoch's mean per image.
        logger: the logger of the per-epoch line (the calling module's, so its records carry its name); None logs
            nothing.
        message: the line, formatted with ``epoch``, ``max_epochs`` and the averages' names
            (``"CAE epoch {epoch}/{max_epochs}: loss {loss:.5f}"``).
        log_every: log every that many epochs (0: never).
        progress: the description of a progress bar over epochs on stdout; None: no bar.
        log_dir: TensorBoard folder for the averages; None: none written.
    """
    _EpochAverages(averages, per_image, history).attach(trainer)  # first: the handlers below read its averages
    if logger is not None and log_every > 0:

        def log_line(engine: Workflow) -> None:
            logger.info(message.format(epoch=engine.state.epoch, max_epochs=engine.state.max_epochs,
                                       **engine.state.metrics))  # fmt: skip

        # the line goes through the caller's logger: StatsHandler(name=...) would set that logger's propagate to
        # False (MONAI's get_logger), hiding its records from the application's handlers
        StatsHandler(iteration_log=False, epoch_log=lambda engine, epoch: epoch % log_every == 0,
                     epoch_print_logger=log_line).attach(trainer)  # fmt: skip
    if log_dir is not None:
        tensorboard = TensorBoardStatsHandler(log_dir=str(log_dir), iteration_log=False)
        tensorboard.attach(trainer)
        trainer.add_event_handler(Events.COMPLETED, tensorboard.close)  # MONAI's handler leaves its event file open
    if progress is not None:
        bar = ProgressBar(persist=False, desc=progress, file=sys.stdout)
        bar.attach(trainer, metric_names="all", event_name=Events.EPOCH_COMPLETED, closing_event_name=Events.COMPLETED)
