"""Engine pieces of the breast ultrasound OOD bundle: multi-exit training, the deep ensemble, scoring, reports.

- :class:`ExitsInferer`: lets MONAI's ``SupervisedTrainer`` train all exits (``network.forward_exits``).
- :func:`sample_member_hyperparameters` / :func:`train_ensemble`: the paper's deep ensemble (Table 2: 0-15 % of
  the training data left out, learning rate 1e-4..1e-3, Adam or RMSprop, 25-85 epochs, batch 8..128). A rerun with
  the same request re-uses the finished ensemble, and an interrupted one keeps the members it had finished.
- :func:`score_datalist`: every OOD score of every image (MSP, ``-E`` per exit, multi-level, ensemble).
- :func:`write_ood_thresholds`: fits the thresholds (95 % / 80 % of the calibration images kept) after training;
  skipped when the thresholds file was fitted on the same model, ensemble and calibration images.
- The evaluation and inference handlers live in :mod:`common.engines.ood_report`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines import SupervisedTrainer
from monai.inferers import Inferer
from monai.utils import CommonKeys, min_version, optional_import

from ..data.atomic import write_folder_atomically
from ..distributed import unwrap
from ..metrics.ood import (
    MultiLevelRule,
    energy_score,
    ensemble_uncertainties,
    fit_threshold,
    max_softmax_probability,
)
from .metrics_report import write_json_atomic
from .stage_training import attach_stage_handlers, shuffled_loader
from .training import data_fingerprint, network_arguments, save_torch_atomic

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = [
    "ENSEMBLE_SPACE",
    "OOD_METHODS",
    "ExitsInferer",
    "fit_ood_thresholds",
    "load_ensemble",
    "method_id_scores",
    "ood_flags",
    "sample_member_hyperparameters",
    "score_datalist",
    "train_ensemble",
    "write_ood_thresholds",
]

logger = logging.getLogger(__name__)

#: the paper's Table 2
ENSEMBLE_SPACE = {
    "left_out": (0.0, 0.15),
    "learning_rate": (1e-4, 1e-3),
    "optimizer": ("adam", "rmsprop"),
    "epochs": (25, 85),
    "batch_size": (8, 16, 32, 64, 128),
}

#: bump when the members trained for the same request change
ENSEMBLE_VERSION = 1
ENSEMBLE_MANIFEST = "ensemble_manifest.json"

#: OOD methods, as ID scores (higher = in-distribution); ``energy_multilevel`` is the paper's 3-exit rule
OOD_METHODS = (
    "msp",
    "energy_exit1",
    "energy_exit2",
    "energy_exit3",
    "energy_multilevel",
    "ensemble_variance",
    "ensemble_weighted_variance",
    "ensemble_epistemic",
)


class ExitsInferer(Inferer):
    """Inferer returning every exit's logits ``[B, exits, C]`` (``network.forward_exits``), for multi-exit training.

    A ``DistributedDataParallel`` wrapper is called through its own ``forward`` (with the wrapped module's
    ``forward`` standing for ``forward_exits`` during the call): DDP averages gradients only for passes that go
    through the wrapper, and calling ``network.module.forward_exits`` directly would leave the ranks' weights apart.
    """

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """All exits' logits of ``inputs``."""
        module = unwrap(network)
        if module is network:
            return network.forward_exits(inputs)
        module.forward = module.forward_exits  # an instance attribute shadows the class's forward for this call
        try:
            return network(inputs)
        finally:
            del module.forward


def sample_member_hyperparameters(
    rng: np.random.Generator, epoch_scale: float = 1.0, lr_scale: float = 1.0
) -> dict[str, Any]:
    """Draw one ensemble member's training set-up from the paper's Table 2.

    The learning rate is drawn log-uniformly in [1e-4, 1e-3] (the paper gives only the range), then multiplied by
    ``lr_scale``; epochs uniformly in 25..85, multiplied by ``epoch_scale`` (shorter schedules on the sample; at
    least 1). Both scales are 1 for the paper's set-up.
    """
    lo, hi = ENSEMBLE_SPACE["epochs"]
    return {
        "left_out": float(rng.uniform(*ENSEMBLE_SPACE["left_out"])),
        "learning_rate": float(np.exp(rng.uniform(*np.log(ENSEMBLE_SPACE["learning_rate"])))) * lr_scale,
        "optimizer": str(rng.choice(ENSEMBLE_SPACE["optimizer"])),
        "epochs": max(1, int(round(int(rng.integers(lo, hi + 1)) * epoch_scale))),
        "batch_size": int(rng.choice(ENSEMBLE_SPACE["batch_size"])),
    }


def _image_label_batch(items: Sequence[Mapping[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of a list of items (their other keys, such as file names, are not needed)."""
    return (
        torch.stack([torch.as_tensor(i["image"]) for i in items]),
        torch.as_tensor([int(i["label"]) for i in items]),
    )


def _describe(value: Any) -> Any:
    """JSON-ready identity of a network factory or loss for the ensemble's manifest."""
    import functools

    if isinstance(value, functools.partial):
        return network_arguments(value)
    if isinstance(value, torch.nn.Module):
        weights = getattr(value, "class_weights", None)
        return {"class": type(value).__qualname__, "class_weights": None if weights is None else weights.tolist()}
    return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"


def _ensemble_request(network_factory, dataset, size, loss_function, seed, epoch_scale, lr_scale, max_batch_size,
                      min_steps) -> dict[str, Any]:  # fmt: skip
    items = getattr(dataset, "data", None)
    if items is None and isinstance(dataset, Sequence):
        items = [i for i in dataset if isinstance(i, Mapping) and not isinstance(i.get("image"), torch.Tensor)]
        items = items if len(items) == len(dataset) else None
    data = data_fingerprint(items) if items is not None else {"num_items": len(dataset)}
    request = {
        "version": ENSEMBLE_VERSION,
        "size": int(size),
        "seed": int(seed),
        "epoch_scale": float(epoch_scale),
        "lr_scale": float(lr_scale),
        "max_batch_size": None if max_batch_size is None else int(max_batch_size),
        "min_steps": int(min_steps),
        "member": _describe(network_factory),
        "loss": _describe(loss_function),
        "data": data,
    }
    return json.loads(json.dumps(request, default=str))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _ensemble_is_complete(folder: Path, request: Mapping[str, Any]) -> bool:
    manifest = _read_json(folder / ENSEMBLE_MANIFEST)
    members = _read_json(folder / "members.json")
    return (
        manifest == request
        and isinstance(members, list)
        and len(members) == request["size"]
        and all((folder / f"member_{k:02d}.pt").is_file() for k in range(request["size"]))
    )


def _seed_transforms(dataset: Any, seed: int) -> None:
    """Give the dataset's random transforms a member's own seed.

    A member's views then do not depend on the members trained before it, so an interrupted ensemble resumes exactly.
    """
    transform = getattr(dataset, "transform", None)
    if transform is not None and hasattr(transform, "set_random_state"):
        transform.set_random_state(seed=seed % (2**32))


def train_ensemble(
    network_factory: Callable[[], torch.nn.Module],
    dataset: Any,
    output_dir: str | Path,
    size: int,
    loss_function: torch.nn.Module,
    device: str | torch.device = "cpu",
    seed: int = 0,
    epoch_scale: float = 1.0,
    overwrite: bool = True,
    lr_scale: float = 1.0,
    max_batch_size: int | None = None,
    min_steps: int = 0,
    reuse: bool = True,
) -> list[dict[str, Any]]:
    """Train ``size`` independent members and write them to ``output_dir`` atomically.

    Each member gets its own seed and Table 2 set-up (:func:`sample_member_hyperparameters`), drops its
    ``left_out`` fraction of ``dataset`` and trains from scratch on MONAI's ``SupervisedTrainer`` (one shuffled pass
    of its images per epoch, its mean loss logged once per epoch); the last epoch's weights are kept (the paper
    does not mention model selection for members). Writes ``member_<k>.pt`` (plain state dicts), ``members.json``
    (the set-ups) and ``ensemble_manifest.json`` (the request: size, seeds, scales, member network arguments, loss,
    training-data fingerprint).

    Resume, per member: with ``reuse``, a complete ``output_dir`` whose manifest matches the request is returned as
    it is (no training); members finished by an interrupted run wait in ``.<output_dir name>.partial/`` beside it and
    are kept when the rerun makes the same request, so only the missing members are trained (a member interrupted
    mid-training starts again). Each member's random augmentations are seeded with its own seed, so a resumed
    ensemble equals an uninterrupted one.

    Args:
        network_factory: returns a new untrained member network.
        dataset: indexable training dataset whose items are dicts with ``image`` (tensor) and ``label``;
            random augmentations in its transform give each epoch new views.
        output_dir: where the members go (replaced as a whole).
        size: number of members (the paper: 20).
        loss_function: e.g. class-weighted cross-entropy (``MultiExitLoss`` accepts ``[B, C]``).
        device: training device.
        seed: base seed; member ``k`` uses ``seed + 1000 * (k + 1)``.
        epoch_scale: multiplies the drawn epochs (1.0 = the paper's 25-85).
        overwrite: replace an existing ``output_dir``.
        lr_scale: multiplies the drawn learning rate (1.0 = the paper's 1e-4..1e-3).
        max_batch_size: caps the drawn batch size (``None`` = the paper's 8..128). On a ~100-image sample a batch
            of 64 or 128 gives one or two optimiser steps per epoch.
        min_steps: raises the epochs so that a member makes at least this many optimiser steps (0 = the drawn
            epochs only, the paper). The plain CNN (no exits, so no deep supervision) sits on the ``ln 3`` loss
            plateau for its first ~40 Adam steps; fewer steps leave it at chance.
        reuse: re-use a matching finished ensemble and the finished members of an interrupted run (False: train
            every member again).

    Returns:
        The members' set-ups (as in ``members.json``).

    Raises:
        ValueError: ``size`` < 1 or an empty dataset.
        FileExistsError: ``output_dir`` holds another ensemble and ``overwrite`` is false.
    """
    if size < 1:
        raise ValueError(f"ensemble size must be at least 1, got {size}")
    if len(dataset) == 0:
        raise ValueError("cannot train an ensemble on an empty dataset")
    output_dir = Path(output_dir)
    request = _ensemble_request(network_factory, dataset, size, loss_function, seed, epoch_scale, lr_scale,
                                max_batch_size, min_steps)  # fmt: skip
    if reuse and _ensemble_is_complete(output_dir, request):
        logger.info(f"re-using the {size}-member ensemble in {output_dir} (same request, {ENSEMBLE_MANIFEST})")
        return json.loads((output_dir / "members.json").read_text())
    if not overwrite and output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} exists and is not empty; pass overwrite=True to replace it")
    partial = output_dir.with_name(f".{output_dir.name}.partial")
    if partial.exists() and (not reuse or _read_json(partial / ENSEMBLE_MANIFEST) != request):
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json_atomic(partial / ENSEMBLE_MANIFEST, request)
    device = torch.device(device)
    members: list[dict[str, Any]] = []
    for k in range(size):
        member_path, setup_path = partial / f"member_{k:02d}.pt", partial / f"member_{k:02d}.json"
        finished = _read_json(setup_path) if member_path.is_file() else None
        if finished is not None:
            logger.info(f"ensemble member {k + 1}/{size}: kept from the interrupted run ({member_path})")
            members.append(finished)
            continue
        member_seed = seed + 1000 * (k + 1)
        _seed_transforms(dataset, member_seed)
        rng = np.random.default_rng(member_seed)
        setup = sample_member_hyperparameters(rng, epoch_scale, lr_scale)
        torch.manual_seed(member_seed)
        keep = max(1, int(round(len(dataset) * (1.0 - setup["left_out"]))))
        indices = sorted(rng.permutation(len(dataset))[:keep].tolist())
        if max_batch_size is not None and setup["batch_size"] > max_batch_size:
            setup.update(drawn_batch_size=setup["batch_size"], batch_size=max(1, int(max_batch_size)))
        steps_per_epoch = math.ceil(len(indices) / setup["batch_size"])
        if setup["epochs"] * steps_per_epoch < min_steps:
            setup.update(drawn_epochs=setup["epochs"], epochs=math.ceil(min_steps / steps_per_epoch))
        network = network_factory().to(device)
        if setup["optimizer"] == "adam":
            optimizer = torch.optim.Adam(network.parameters(), lr=setup["learning_rate"])
        else:
            # Keras' RMSprop decay rho = 0.9; PyTorch's default alpha = 0.99 makes the first (not bias-corrected)
            # steps ~10x the learning rate, which left RMSprop members on the ln 3 plateau on the sample
            optimizer = torch.optim.RMSprop(network.parameters(), lr=setup["learning_rate"], alpha=0.9)
        loader = shuffled_loader(dataset, setup["batch_size"], torch.Generator().manual_seed(member_seed), indices,
                                 collate_fn=_image_label_batch)  # fmt: skip
        trainer = SupervisedTrainer(device=device, max_epochs=setup["epochs"], train_data_loader=loader,
                                    network=network, optimizer=optimizer, loss_function=loss_function,
                                    decollate=False, optim_set_to_none=True)  # fmt: skip
        message = f"ensemble member {k + 1}/{size}: " + "epoch {epoch}/{max_epochs}, loss {loss:.5f}"
        attach_stage_handlers(trainer, {"loss": CommonKeys.LOSS}, per_image=True, logger=logger, message=message)
        trainer.run()
        last = trainer.state.output[CommonKeys.LOSS].item()
        setup.update(member=k, seed=member_seed, num_images=len(indices), final_loss=round(last, 6))
        logger.info(f"ensemble member {k + 1}/{size}: {setup}")
        save_torch_atomic({n: t.detach().cpu() for n, t in network.state_dict().items()}, member_path)
        write_json_atomic(setup_path, setup)  # after the weights: a member counts as finished once both exist
        members.append(setup)

    def fill(tmp: Path) -> None:
        for k in range(size):
            shutil.copyfile(partial / f"member_{k:02d}.pt", tmp / f"member_{k:02d}.pt")
        (tmp / "members.json").write_text(json.dumps(members, indent=2) + "\n")
        (tmp / ENSEMBLE_MANIFEST).write_text(json.dumps(request, indent=2) + "\n")

    write_folder_atomically(output_dir, fill, overwrite=True)
    shutil.rmtree(partial, ignore_errors=True)
    return members


def load_ensemble(
    ensemble_dir: str | Path, network_factory: Callable[[], torch.nn.Module], device: str | torch.device = "cpu"
) -> list[torch.nn.Module]:
    """Members written by :func:`train_ensemble`, in eval mode; an empty list when the folder does not exist.

    Raises:
        FileNotFoundError: the folder exists but holds no ``member_*.pt``.
    """
    folder = Path(ensemble_dir)
    if not folder.exists():
        return []
    paths = sorted(folder.glob("member_*.pt"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no member_*.pt checkpoints (train the ensemble again)")
    members = []
    for path in paths:
        network = network_factory()
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        members.append(network.to(device).eval())
    return members


@torch.no_grad()
def _predict(network: torch.nn.Module, images: torch.Tensor, exits: bool) -> torch.Tensor:
    network.eval()
    module = getattr(network, "module", network)
    return module.forward_exits(images) if exits else module(images)


@torch.no_grad()
def score_datalist(
    network: torch.nn.Module,
    members: Sequence[torch.nn.Module],
    datalist: Sequence[Mapping[str, Any]],
    transform: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    device: str | torch.device = "cpu",
    temperature: float = 0.001,
    batch_size: int = 16,
) -> dict[str, np.ndarray]:
    """Run the multi-exit network (and the ensemble) over a datalist; return per-image arrays.

    Returns:
        ``exit_logits [n, exits, C]``, ``probabilities [n, C]`` (final exit softmax), ``msp [n]``,
        ``energy [n, exits]`` (the ID score ``-E`` per exit), and with members: ``ensemble_probabilities
        [n, C]``, ``ensemble_variance``, ``ensemble_weighted_variance``, ``ensemble_epistemic`` (uncertainties,
        high = OOD).
    """
    device = torch.device(device)
    logits, member_probs = [], []
    for start in range(0, len(datalist), batch_size):
        images = torch.stack(
            [torch.as_tensor(transform(dict(i))["image"]) for i in datalist[start : start + batch_size]]
        )
        images = images.to(device)
        logits.append(_predict(network, images, exits=True).cpu())
        if members:
            member_probs.append(torch.stack([torch.softmax(_predict(m, images, False).cpu(), -1) for m in members]))
    exit_logits = torch.cat(logits).double()
    out = {
        "exit_logits": exit_logits.numpy(),
        "probabilities": torch.softmax(exit_logits[:, -1], -1).numpy(),
        "msp": max_softmax_probability(exit_logits[:, -1]).numpy(),
        "energy": energy_score(exit_logits, temperature).numpy(),
    }
    if members:
        unc = ensemble_uncertainties(torch.cat(member_probs, dim=1))
        out["ensemble_probabilities"] = unc["mean"].numpy()
        for key in ("variance", "weighted_variance", "epistemic"):
            out[f"ensemble_{key}"] = unc[key].numpy()
    return out


def method_id_scores(scores: Mapping[str, np.ndarray], rule: MultiLevelRule | None) -> dict[str, np.ndarray]:
    """Every available method as an ID score (higher = in-distribution)."""
    result = {"msp": scores["msp"]}
    for k in range(scores["energy"].shape[1]):
        result[f"energy_exit{k + 1}"] = scores["energy"][:, k]
    if rule is not None:
        result["energy_multilevel"] = rule.combined(scores["energy"])
    for key in ("variance", "weighted_variance", "epistemic"):
        if f"ensemble_{key}" in scores:
            result[f"ensemble_{key}"] = -scores[f"ensemble_{key}"]
    return result


def fit_ood_thresholds(calibration: Mapping[str, np.ndarray], keeps: Sequence[float] = (0.95, 0.80)) -> dict:
    """Thresholds of every method on ID scores, keeping each fraction of ``keeps`` of the calibration images.

    Returns:
        ``{"keeps": [...], "calibration_energy": [[...]], "methods": {method: {str(keep): threshold}},
        "multilevel_exit_thresholds": {str(keep): [t1, t2, t3]}}``; enough to flag new images
        (:func:`ood_flags`).
    """
    rule = MultiLevelRule(calibration["energy"])
    ids = method_id_scores(calibration, rule)
    return {
        "keeps": [float(k) for k in keeps],
        "num_calibration_images": int(len(calibration["msp"])),
        "calibration_energy": rule.calibration.tolist(),
        "methods": {m: {str(k): fit_threshold(s, k) for k in keeps} for m, s in ids.items()},
        "multilevel_exit_thresholds": {str(k): rule.exit_thresholds(k) for k in keeps},
    }


def ood_flags(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, Any], keep: float) -> dict[str, np.ndarray]:
    """``{method: bool [n]}`` True where the image is accepted as in-distribution at the ``keep`` threshold."""
    rule = MultiLevelRule(np.asarray(thresholds["calibration_energy"]))
    ids = method_id_scores(scores, rule)
    return {m: ids[m] >= thresholds["methods"][m][str(keep)] for m in ids if m in thresholds["methods"]}


def write_ood_thresholds(
    path: str | Path,
    network: torch.nn.Module,
    ckpt_path: str | Path,
    datalist: Sequence[Mapping[str, Any]],
    transform: Callable,
    ensemble_dir: str | Path | None = None,
    member_factory: Callable[[], torch.nn.Module] | None = None,
    device: str | torch.device = "cpu",
    temperature: float = 0.001,
    keeps: Sequence[float] = (0.95, 0.80),
    reuse: bool = True,
) -> Path:
    """After training: load the best checkpoint, score the calibration images, write the thresholds JSON.

    The file records what it was fitted on (``fitted_on``: SHA-1 of the checkpoint and of the ensemble members, the
    calibration images' fingerprint, temperature, keeps); with ``reuse`` a rerun on the same inputs leaves it as it
    is, and any change (a retrained model, another ensemble) fits it again.

    Args:
        path: the thresholds JSON to write.
        network: the multi-exit network (DDP-wrapped or not); the checkpoint is loaded into it.
        ckpt_path: the best checkpoint (``models/model.pt``).
        datalist: the calibration items.
        transform: their deterministic preprocessing.
        ensemble_dir: the deep ensemble's folder (used when it exists).
        member_factory: builds an untrained member (to load the ensemble into).
        device: inference device.
        temperature: energy temperature.
        keeps: calibration fractions kept as ID.
        reuse: keep a file fitted on the same inputs.

    Returns:
        ``path``.
    """
    members_paths = sorted(Path(ensemble_dir).glob("member_*.pt")) if ensemble_dir and member_factory else []
    fitted_on = {
        "model_sha1": _sha1_files([Path(ckpt_path)]),
        "ensemble_sha1": _sha1_files(members_paths) if members_paths else None,
        "calibration": data_fingerprint(datalist),
        "temperature": float(temperature),
        "keeps": [float(k) for k in keeps],
    }
    existing = _read_json(Path(path))
    if reuse and isinstance(existing, dict) and existing.get("fitted_on") == fitted_on:
        logger.info(f"{path}: OOD thresholds already fitted on this model, ensemble and calibration set")
        return Path(path)
    module = unwrap(network)
    module.load_state_dict(torch.load(ckpt_path, map_location=device, weights_only=True))
    members = load_ensemble(ensemble_dir, member_factory, device) if ensemble_dir and member_factory else []
    scores = score_datalist(module, members, datalist, transform, device, temperature)
    payload = {"temperature": temperature, "num_members": len(members), **fit_ood_thresholds(scores, keeps),
               "fitted_on": fitted_on}  # fmt: skip
    return write_json_atomic(path, payload)


def _sha1_files(paths: Sequence[Path]) -> str:
    digest = hashlib.sha1()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
