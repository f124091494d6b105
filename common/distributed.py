"""Multi-process training with ``torchrun``: process group, device, DDP wrapping and rank-aware handlers.

Every bundle's ``multi_gpu_train.yaml`` is a short override on ``train.yaml`` that calls these functions, so the
logic lives here once::

    torchrun --standalone --nproc_per_node=2 -m monai.bundle run \\
        --config_file "['bundles/<name>/configs/train.yaml','bundles/<name>/configs/multi_gpu_train.yaml']"

The backend follows the device: NCCL on GPUs, gloo on CPU. Outside ``torchrun`` (no ``WORLD_SIZE``) every function
behaves as for a single process, so the same config also runs as one process.
"""  # noqa: D301

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "initialize",
    "finalize",
    "local_device",
    "rank",
    "world_size",
    "is_main_process",
    "barrier",
    "on_main_process",
    "wrap",
    "unwrap",
    "main_process_handlers",
    "WRITING_HANDLERS",
    "parameter_digest",
    "RankReport",
]

#: handler classes that write files or print; ranks above 0 drop them (matched by class name, so optional
#: dependencies need not be imported here)
WRITING_HANDLERS = (
    "StatsHandler",
    "TensorBoardStatsHandler",
    "TensorBoardImageHandler",
    "ProgressBar",
    "CheckpointSaver",
    "MetricsSaver",
    "MetricsReport",
    "ClassificationSaver",
)


def world_size() -> int:
    """Number of processes (1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """Global rank of this process (0 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0: the only process that writes checkpoints, logs, samples and reports."""
    return rank() == 0


def local_device() -> torch.device:
    """``cuda:<LOCAL_RANK>`` when GPUs are visible, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
    return torch.device("cpu")


def initialize(device: torch.device | str | None = None) -> torch.device:
    """Join the process group that ``torchrun`` describes (NCCL for CUDA devices, gloo otherwise).

    Args:
        device: this process's device; defaults to :func:`local_device`.

    Returns:
        The device.

    Raises:
        RuntimeError: when run without ``torchrun`` (no ``WORLD_SIZE``/``MASTER_ADDR`` in the environment).
    """
    device = torch.device(device) if device is not None else local_device()
    if dist.is_initialized():
        return device
    missing = [k for k in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"multi_gpu_train.yaml runs under torchrun (missing {', '.join(missing)}): "
            "torchrun --standalone --nproc_per_node=<N> -m monai.bundle run --config_file \"['.../train.yaml',"
            "'.../multi_gpu_train.yaml']\""
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def finalize() -> None:
    """Leave the process group (after a barrier, so no rank exits while another still communicates)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op for one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def on_main_process(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``function(*args, **kwargs)`` on rank 0 only, then wait for every rank; return its result on rank 0 and
    None elsewhere.

    For a bundle's own ``run`` steps that write (an ensemble, fitted thresholds, a report): pass the function and its
    arguments, not a call, so the other ranks never run it, e.g.
    ``"$common.distributed.on_main_process(common.engines.fit_ood_thresholds, @model, @datalist)"``.
    """  # noqa: D205
    result = function(*args, **kwargs) if is_main_process() else None
    barrier()
    return result


def wrap(network: torch.nn.Module, device: torch.device | str | None = None) -> torch.nn.Module:
    """``DistributedDataParallel(network)`` in a process group, the network itself otherwise.

    Networks without trainable parameters are returned unwrapped (DDP refuses them).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return network
    if not any(p.requires_grad for p in network.parameters()):
        return network
    for parameter in network.parameters():
        if parameter.numel() == 0:  # empty placeholders get no gradient, and DDP stops on parameters without one
            parameter.requires_grad_(False)
    device = torch.device(device) if device is not None else next(network.parameters()).device
    device_ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=device_ids)


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP/DataParallel (plain state-dict keys, without ``module.``)."""
    while isinstance(network, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        network = network.module
    return network


def main_process_handlers(handlers: Sequence[Any] | None) -> list[Any] | None:
    """The handlers this rank attaches: all on rank 0; on the others, those that neither write nor print.

    Selection is by type (:data:`WRITING_HANDLERS`), not by position in the list, so reordering a config's
    handlers cannot leak a writer onto another rank. :class:`common.engines.TrainingCheckpoints` stays on every
    rank (all ranks must load a resumed state; it writes on rank 0 only).
    """
    if handlers is None or is_main_process():
        return None if handlers is None else list(handlers)
    return [h for h in handlers if type(h).__name__ not in WRITING_HANDLERS]


def parameter_digest(network: torch.nn.Module) -> str:
    """SHA-1 of every parameter and buffer, in state-dict order (equal on all ranks when gradients are synced)."""
    h = hashlib.sha1()
    for name, tensor in unwrap(network).state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _item_name(item: Any) -> str:
    # the whole item: in pair datalists the moving image recurs across pairs, so its name alone is not unique
    if isinstance(item, dict):
        return json.dumps({k: v for k, v in item.items() if isinstance(v, str | int | float)}, sort_keys=True)
    return str(item)


class RankReport:
    """Diagnostic handler: each rank writes ``<report_dir>/rank<k>.json`` with the items its sampler gave it and
    its parameter digest before and after training.

    Off by default (``report_dir`` None); the multi-process tests switch it on with ``--rank_report_dir`` to show
    that ranks train on different shards and end with equal weights. It never writes into the bundle.

    Args:
        report_dir: folder for the per-rank files, or None to do nothing.
        network: the trained network (wrapped or not).
    """  # noqa: D205

    def __init__(self, report_dir: str | os.PathLike | None, network: torch.nn.Module):
        self.report_dir = None if report_dir in (None, "", "None") else Path(report_dir)
        self.network = network
        self.items: list[str] = []
        self.initial = ""
        self.start_iteration = 0
        self.start_time = 0.0

    def attach(self, engine: Any) -> None:
        """Register on the trainer (no-op without a report folder)."""
        from ignite.engine import Events

        if self.report_dir is None:
            return
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _started(self, engine: Any) -> None:
        self.initial = parameter_digest(self.network)
        self.start_iteration = int(engine.state.iteration)
        self.start_time = time.perf_counter()

    def _epoch_started(self, engine: Any) -> None:
        # MONAI's workflow has already called sampler.set_epoch for this epoch, so this is the shard it will see
        loader = engine.data_loader
        sampler = getattr(loader, "sampler", None)
        data = getattr(loader.dataset, "data", None)
        indices: Iterable[int] = list(iter(sampler)) if sampler is not None else range(len(loader.dataset))
        self.items += [_item_name(data[i]) if data is not None else str(i) for i in indices]

    def _completed(self, engine: Any) -> None:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        report = {
            "rank": rank(),
            "pid": os.getpid(),
            "world_size": world_size(),
            "iterations": int(engine.state.iteration),
            "iterations_this_run": int(engine.state.iteration) - self.start_iteration,
            "seconds": round(time.perf_counter() - self.start_time, 3),  # trainer STARTED -> COMPLETED
            "items": self.items,
            "initial_digest": self.initial,
            "final_digest": parameter_digest(self.network),
        }
        (self.report_dir / f"rank{rank()}.json").write_text(json.dumps(report, indent=1))
