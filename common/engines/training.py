"""The training contract every bundle shares: the plan beside the weights, resumable state, atomic checkpoints.

A training run writes three files to ``models/``, each through a temporary file and a rename, on rank 0 only:

- ``model.pt``: the plain state dict of the network with the best validation key metric (what MONAI Label,
  evaluate, inference and ``ckpt_export`` load);
- ``training_plan.json``: what was trained (bundle and version, the variant switches, the network's class and
  constructor arguments, the training data's fingerprint, the best metric), read by evaluate, inference, the MONAI
  Label app and export so they build the network that was trained (as nnU-Net keeps its plans beside its weights);
- ``training_state.pt``: everything needed to resume (networks, optimizers, schedulers, GAN testers, the
  trainer's epoch and iteration, the best metric so far, RNG states), saved every ``save_interval`` epochs and at
  the end.

Rerunning the same training command resumes from ``training_state.pt``; a finished run is not repeated (it says
so). A run whose plan differs (other switches, other network arguments, other training data) or ``--resume false``
starts afresh, after moving the earlier files to ``models/previous-<time>/`` and saying so, so no better checkpoint
is ever overwritten silently.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import distributed
from ..config import as_flag
from .metrics_report import write_json_atomic

__all__ = [
    "PLAN_FILENAME",
    "STATE_FILENAME",
    "TrainingCheckpoints",
    "save_torch_atomic",
    "load_checkpoint",
    "read_training_plan",
    "trained_switch",
    "check_trained_variant",
    "network_arguments",
    "data_fingerprint",
]

PLAN_FILENAME = "training_plan.json"
STATE_FILENAME = "training_state.pt"
logger = logging.getLogger(__name__)


def save_torch_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file in the same folder and ``os.replace``: a reader (or a kill at any
    moment) sees the old file or the new one, never a truncated one.
    """  # noqa: D205
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool = True) -> Any:
    """``torch.load`` that names the file when it cannot be read (empty, truncated, not a checkpoint).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: naming ``path`` and the reason, when it exists but cannot be loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the checkpoint is empty (0 bytes; a save was interrupted?); retrain or restore it")
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as exc:  # torch raises EOFError, RuntimeError, UnpicklingError... for damaged files
        raise ValueError(
            f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc}); retrain or restore it"
        ) from exc


def network_arguments(spec: Any) -> dict[str, Any]:
    """Class path and constructor arguments of a network spec (a config component with ``_mode_: callable``,
    which MONAI resolves to ``functools.partial(cls, **arguments)``), as JSON-ready values.
    """  # noqa: D205
    if not isinstance(spec, functools.partial):
        raise TypeError(f"network_spec must be a config component with `_mode_: callable`, got {type(spec).__name__}")
    target = f"{spec.func.__module__}.{spec.func.__qualname__}"
    positional = {"_args_": list(spec.args)} if spec.args else {}
    return _jsonable({"_target_": target, **positional, **dict(spec.keywords)})


def data_fingerprint(items: Sequence[Any]) -> dict[str, Any]:
    """Number of training items and a SHA-1 of their file names (what the plan records of the data)."""
    names = sorted(json.dumps(item, sort_keys=True, default=str) for item in items)
    return {"num_items": len(names), "sha1": hashlib.sha1("\n".join(names).encode()).hexdigest()}


def read_training_plan(ckpt_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The plan in ``ckpt_dir`` (a folder, or a checkpoint file whose folder is used), or None if there is none.

    Raises:
        ValueError: naming the file when it exists but is not valid JSON.
    """
    folder = Path(ckpt_dir)
    if folder.suffix in (".pt", ".pth", ".ts"):
        folder = folder.parent
    path = folder / PLAN_FILENAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not a valid training plan ({exc}); retrain, or delete it to use the defaults"
        ) from exc


def trained_switch(ckpt_dir: str | os.PathLike, name: str, default: Any) -> Any:
    """The value switch ``name`` had when the checkpoint in ``ckpt_dir`` was trained, else ``default``.

    Evaluate and inference configs give their switches this default, so they build the trained variant without
    being told; an explicit ``--<name>`` that contradicts the plan is caught by :func:`check_trained_variant`.
    """
    plan = read_training_plan(ckpt_dir)
    if plan is None:
        return default
    return plan.get("switches", {}).get(name, default)


def check_trained_variant(ckpt_dir: str | os.PathLike, switches: Mapping[str, Any], network_spec: Any = None) -> None:
    """Stop when this command's switches or network arguments differ from those the checkpoint was trained with.

    Raises:
        ValueError: naming the plan file and, for each difference, the trained and the requested value.
    """
    plan = read_training_plan(ckpt_dir)
    if plan is None:
        return
    trained = plan.get("switches", {})
    problems = [
        f"--{k} {v!r} (trained with {trained[k]!r})"
        for k, v in _jsonable(dict(switches)).items()
        if k in trained and trained[k] != v
    ]
    if network_spec is not None and "network" in plan:
        requested = network_arguments(network_spec)
        problems += [
            f"network argument {k}={requested.get(k)!r} (trained with {plan['network'].get(k)!r})"
            for k in sorted(set(requested) | set(plan["network"]))
            if requested.get(k) != plan["network"].get(k)
        ]
    if problems:
        folder = Path(ckpt_dir) if Path(ckpt_dir).suffix not in (".pt", ".pth", ".ts") else Path(ckpt_dir).parent
        raise ValueError(
            f"{folder / PLAN_FILENAME}: this command asks for {'; '.join(problems)}; the checkpoint cannot run that "
            "variant. Drop the override to use the trained one, or train the variant you want first."
        )


def _jsonable(value: Any) -> Any:
    # a nested spec (a backbone passed as a callable) is recorded by its class and arguments, not its repr
    return json.loads(
        json.dumps(value, default=lambda v: network_arguments(v) if isinstance(v, functools.partial) else str(v))
    )


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _randomizable(transform: Any) -> list[Any]:
    """Every MONAI randomizable transform inside ``transform`` (Compose nests), in a stable order."""
    from monai.transforms import Randomizable

    found = [transform] if isinstance(transform, Randomizable) and hasattr(transform, "R") else []
    for child in getattr(transform, "transforms", ()) or ():
        found += [t for t in _randomizable(child) if t is not transform]
    return found


class TrainingCheckpoints:
    """Ignite handler for the trainer: plan, best-model and resumable-state checkpoints, all atomic.

    Place it in ``train#handlers`` after the ``ValidationHandler``. It replaces MONAI's ``CheckpointSaver`` (whose
    fixed-name key-metric file is deleted and then rewritten non-atomically, so a kill in between leaves no model or
    a 0-byte one). In a process group every rank loads a resumed state; only rank 0 writes.

    Args:
        ckpt_dir: the ``models/`` folder.
        network: the trained network (DDP-wrapped or not); ``model.pt`` holds its unwrapped state dict.
        evaluator: the validation evaluator whose key metric picks ``model.pt`` (higher is better); None saves the
            last epoch's weights as ``model.pt``.
        state: further objects with ``state_dict``/``load_state_dict`` to resume (optimizers, schedulers, testers,
            their optimizers); the trainer itself is always included.
        switches: the variant switches (config id -> resolved value) recorded in the plan.
        network_spec: ``functools.partial`` of the network class (config ``_mode_: callable``), recorded in the plan.
        train_data: the training items, fingerprinted in the plan (a run on other data starts afresh).
        bundle_name: the bundle's name (``@_meta_#name``), recorded in the plan.
        bundle_version: the bundle's version (``@_meta_#version``), recorded in the plan.
        save_interval: epochs between resumable-state saves (and always at the end).
        resume: resume a run with the same plan (default); False starts afresh, keeping the earlier files.
        transforms: training transforms whose random states are saved and restored with the global RNGs.
        key_metric_name: evaluator metric to maximise; defaults to the evaluator's key metric.
        model_filename: the best-model file name.
        select_from_epoch: validations of earlier epochs do not compete for ``model.pt`` (e.g. rVTT keeps only a
            generator of its adversarial stage); the plan records it, and the trainer's stage of the kept epoch when
            the trainer has ``stage_of_epoch``. If no validation reaches this epoch, the last epoch's weights are kept.
    """

    def __init__(
        self,
        ckpt_dir: str | os.PathLike,
        network: torch.nn.Module,
        evaluator: Any = None,
        state: Mapping[str, Any] | None = None,
        switches: Mapping[str, Any] | None = None,
        network_spec: Any = None,
        train_data: Sequence[Any] | None = None,
        bundle_name: str | None = None,
        bundle_version: str | None = None,
        save_interval: int = 1,
        resume: bool = True,
        transforms: Any = None,
        key_metric_name: str | None = None,
        model_filename: str = "model.pt",
        select_from_epoch: int = 1,
    ):
        if save_interval < 1:
            raise ValueError(f"save_interval must be >= 1 epoch, got {save_interval}")
        self.ckpt_dir = Path(ckpt_dir)
        self.network = network
        self.evaluator = evaluator
        self.state_objects = dict(state or {})
        self.save_interval = int(save_interval)
        self.resume = as_flag(resume, "--resume")
        self.transforms = transforms
        self.key_metric_name = key_metric_name
        self.model_path = self.ckpt_dir / model_filename
        self.state_path = self.ckpt_dir / STATE_FILENAME
        self.plan_path = self.ckpt_dir / PLAN_FILENAME
        self.select_from_epoch = int(select_from_epoch)
        self.plan = self._make_plan(switches or {}, network_spec, train_data, bundle_name, bundle_version)
        if self.select_from_epoch > 1:
            self.plan["model_selection"] = {"from_epoch": self.select_from_epoch}
        self.best: dict[str, Any] = {"metric": None, "value": None, "epoch": None}
        self.finished_before = False

    # ---- plan ---------------------------------------------------------------------------------------------------

    def _make_plan(self, switches, network_spec, train_data, bundle_name, bundle_version) -> dict[str, Any]:
        plan: dict[str, Any] = {"bundle": bundle_name, "version": bundle_version, "switches": _jsonable(dict(switches))}
        if network_spec is not None:
            plan["network"] = network_arguments(network_spec)
        if train_data is not None:
            plan["data"] = data_fingerprint(train_data)
        return plan

    def _signature(self, plan: Mapping[str, Any]) -> dict[str, Any]:
        # what makes two runs the same run: variant, network and data (not max_epochs: a larger one continues)
        return {k: plan.get(k) for k in ("switches", "network", "data")}

    # ---- ignite -------------------------------------------------------------------------------------------------

    def attach(self, engine: Any) -> None:
        """Register on the trainer, and on the evaluator for the best model."""
        from ignite.engine import Events

        self.state_objects["trainer"] = engine
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self._completed)
        if self.evaluator is not None:
            self.evaluator.add_event_handler(Events.EPOCH_COMPLETED, self._validated, engine)

    def _started(self, engine: Any) -> None:
        planned_epochs = engine.state.max_epochs
        resumable = self._resumable()
        distributed.barrier()  # every rank decides from the same files before rank 0 moves any
        if resumable:
            self._load_state(engine, planned_epochs)
        elif distributed.is_main_process():
            self._set_aside_earlier_run()
        distributed.barrier()
        if distributed.is_main_process():
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.ckpt_dir.glob(".*.tmp"):  # left by a run killed while saving
                stale.unlink(missing_ok=True)
            write_json_atomic(self.plan_path, self._plan_payload(engine))

    def _resumable(self) -> bool:
        if not (self.resume and self.state_path.is_file()):
            return False
        earlier = read_training_plan(self.ckpt_dir)
        if earlier is None or self._signature(earlier) != self._signature(self.plan):
            return False
        return True

    def _set_aside_earlier_run(self) -> None:
        earlier = [p for p in (self.model_path, self.state_path, self.plan_path) if p.exists()]
        if not any(p in earlier for p in (self.model_path, self.state_path)):
            return
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = self.ckpt_dir / f"previous-{stamp}"
        suffix = 1
        while target.exists():
            suffix += 1
            target = self.ckpt_dir / f"previous-{stamp}-{suffix}"
        target.mkdir(parents=True)
        for path in earlier:
            shutil.move(str(path), target / path.name)
        why = "--resume false" if self.resume is False else "its plan (switches, network or training data) differs"
        logger.warning(f"a new training run starts ({why}); the earlier run's files were moved to {target}")

    def _load_state(self, engine: Any, planned_epochs: int | None) -> None:
        from ignite.handlers import Checkpoint

        checkpoint = load_checkpoint(self.state_path, map_location="cpu", weights_only=False)
        objects = {"network": distributed.unwrap(self.network), **self.state_objects}
        missing = [k for k in objects if k not in checkpoint["objects"]]
        if missing:
            raise ValueError(f"{self.state_path}: the saved state lacks {missing}; delete it to start afresh")
        Checkpoint.load_objects(to_load=objects, checkpoint=checkpoint["objects"])
        engine.state.max_epochs = planned_epochs
        self.best = dict(checkpoint.get("best", self.best))
        _set_rng_state(checkpoint["rng"])
        for transform, state in zip(_randomizable(self.transforms), checkpoint.get("transform_rng", []), strict=False):
            transform.R.set_state(state)
        done = engine.state.epoch
        if planned_epochs is not None and done >= planned_epochs:
            self.finished_before = True
            logger.info(
                f"training already finished: {done} of {planned_epochs} epochs are in {self.state_path}; nothing to "
                "do (pass a larger --max_epochs to continue, or --resume false to start a new run)"
            )
        else:
            logger.info(f"resuming from {self.state_path} after epoch {done} of {planned_epochs}")

    def _epoch_completed(self, engine: Any) -> None:
        if self.evaluator is None:
            self._save_model(engine.state.epoch, None)
        if engine.state.epoch % self.save_interval == 0:
            self._save_state(engine)

    def _completed(self, engine: Any) -> None:
        if self.finished_before:
            return
        if self.evaluator is not None and self.best["epoch"] is None:  # no validation reached select_from_epoch
            self._save_model(engine.state.epoch, None)
            self.best["stage"] = self._stage(engine, engine.state.epoch)
        self._save_state(engine)

    @staticmethod
    def _stage(trainer: Any, epoch: int) -> int | None:
        stage_of_epoch = getattr(trainer, "stage_of_epoch", None)
        return int(stage_of_epoch(epoch)) if callable(stage_of_epoch) else None

    def _validated(self, evaluator: Any, trainer: Any) -> None:
        name = self.key_metric_name or getattr(evaluator.state, "key_metric_name", None)
        if name is None:
            raise ValueError("TrainingCheckpoints needs the evaluator's key metric (or key_metric_name)")
        value = float(evaluator.state.metrics[name])
        if trainer.state.epoch < self.select_from_epoch:
            return
        if self.best["value"] is None or value > self.best["value"]:
            self.best = {"metric": name, "value": value, "epoch": int(trainer.state.epoch)}
            stage = self._stage(trainer, trainer.state.epoch)
            if stage is not None:
                self.best["stage"] = stage
            self._save_model(trainer.state.epoch, value)

    def _save_model(self, epoch: int, value: float | None) -> None:
        if not distributed.is_main_process():
            return
        save_torch_atomic(distributed.unwrap(self.network).state_dict(), self.model_path)
        if value is None:
            self.best = {"metric": None, "value": None, "epoch": int(epoch)}

    def _save_state(self, engine: Any) -> None:
        if not distributed.is_main_process():
            return
        objects = {"network": distributed.unwrap(self.network), **self.state_objects}
        payload = {
            "objects": {k: v.state_dict() for k, v in objects.items()},
            "best": self.best,
            "rng": _rng_state(),
            "transform_rng": [t.R.get_state() for t in _randomizable(self.transforms)],
        }
        save_torch_atomic(payload, self.state_path)
        write_json_atomic(self.plan_path, self._plan_payload(engine))

    def _plan_payload(self, engine: Any) -> dict[str, Any]:
        return {
            **self.plan,
            "epochs_completed": int(engine.state.epoch),
            "max_epochs": engine.state.max_epochs,
            "best": self.best,
            "updated": datetime.datetime.now().isoformat(timespec="seconds"),
        }
