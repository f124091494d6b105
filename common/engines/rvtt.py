"""The rVTT four-stage training schedule as a MONAI trainer, and a comparison-figure writer for SR inference.

Tom et al. train a super-resolution generator G with two relativistic visual Turing tests (rVTT):

1. G on the reconstruction loss ``J_recon`` (Eq. 1);
2. T1 (whole images) on ``J_T1`` (Eq. 2), G frozen;
3. T2 (patches around regions of interest) on ``J_T2`` (Eq. 3), G frozen;
4. G on ``J_recon`` plus the adversarial losses of T1 and T2; the testers keep learning on every mini-batch
   ("updating Stages 1-4 per mini-batch"), as in any adversarial training.

:class:`RVTTTrainer` is a ``SupervisedTrainer`` (so MONAI's handlers, ``ValidationHandler``, ``TrainingCheckpoints`` and
``LrScheduleHandler`` for G work unchanged) whose iteration depends on the stage of the current epoch: stages 1-3 last
``stage_epochs`` epochs and stage 4 takes the rest of ``max_epochs``. A shorter ``max_epochs`` cuts the schedule
(e.g. only stage 1).

In multi-process training G, T1 and T2 may each be wrapped in ``DistributedDataParallel``
(:func:`common.distributed.wrap`). Every update then goes through the wrapper, so its gradients are averaged over the
ranks; G's stage-4 step scores SR with the unwrapped testers, frozen (``requires_grad`` off during that forward, as
ESRGAN does), so it computes, accumulates and all-reduces no tester gradient.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines import SupervisedTrainer
from monai.utils import min_version, optional_import
from torch import nn
from torch.optim import Optimizer

from common.distributed import is_main_process, unwrap
from common.engines.training import save_torch_atomic
from common.losses.super_resolution import RelativisticPairLoss
from common.sr_ops import upsample, write_sr_comparison

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["RVTTTrainer", "SRComparisonWriter", "roi_patch_corners", "rvtt_stage4_start", "rvtt_stage_epochs"]


def roi_patch_corners(roi: torch.Tensor | None, batch: int, size: tuple[int, int], patch: int) -> list[tuple[int, int]]:
    """Top-left corners of one ``patch`` x ``patch`` box per image, centred on a random ROI pixel.

    Images without ROI pixels (or ``roi=None``) get a random box. Randomness comes from torch's global generator
    (seeded by ``monai.utils.set_determinism``).

    Args:
        roi: ``(B, 1, H, W)`` masks (non-zero = region of interest) or ``None``.
        batch: number of images.
        size: image ``(H, W)``.
        patch: box side, at most ``min(H, W)``.

    Raises:
        ValueError: a patch larger than the image.
    """
    height, width = size
    if patch > min(height, width):
        raise ValueError(f"ROI patch size {patch} exceeds the image size {height}x{width}")
    corners = []
    for b in range(batch):
        points = torch.nonzero(roi[b, 0] > 0) if roi is not None else torch.empty(0, 2)
        if len(points):
            cy, cx = points[int(torch.randint(len(points), (1,)))].tolist()
        else:
            cy, cx = int(torch.randint(height, (1,))), int(torch.randint(width, (1,)))
        y = min(max(int(cy) - patch // 2, 0), height - patch)
        x = min(max(int(cx) - patch // 2, 0), width - patch)
        corners.append((y, x))
    return corners


def rvtt_stage_epochs(max_epochs: int, stage_epochs: Sequence[int], full_epochs: int) -> list[int]:
    """Epochs of stages 1-3 for a run of ``max_epochs``, given the full schedule's ``stage_epochs`` of ``full_epochs``.

    A run at least as long as the full schedule keeps ``stage_epochs`` (the extra epochs are stage 4, so a finished
    run continued with a larger ``--max_epochs`` stays in stage 4). A shorter run (the test suite's
    ``short_epochs``, a quick try) is the same schedule compressed: each stage scaled by ``max_epochs / full_epochs``
    (at least one epoch each), stage 1 shortened until stage 4 keeps at least one epoch, so the short run still ends
    with the adversarial stage. A run too short for all its stages is stage 1 only.

    Args:
        max_epochs: epochs of this run.
        stage_epochs: epochs of stages 1, 2 and 3 in the full schedule.
        full_epochs: epochs of the full schedule (stage 4: ``full_epochs - sum(stage_epochs)``); a schedule
            without a stage 4 (``sum(stage_epochs) >= full_epochs``, e.g. SRNet) is returned as given.

    Raises:
        ValueError: not three non-negative counts.
    """
    stages = [int(e) for e in stage_epochs]
    max_epochs, full_epochs = int(max_epochs), int(full_epochs)
    if len(stages) != 3 or min(stages) < 0:
        raise ValueError(f"stage_epochs must be three epoch counts >= 0 (stages 1-3), got {list(stage_epochs)}")
    if max_epochs >= full_epochs or sum(stages) >= full_epochs:  # the full schedule, or one without a stage 4
        return stages
    scaled = [max(1, math.floor(e * max_epochs / full_epochs)) if e else 0 for e in stages]
    while sum(scaled) >= max_epochs and scaled[0] > 1:
        scaled[0] -= 1
    if sum(scaled) >= max_epochs:  # too short for four stages
        return [max_epochs, 0, 0]
    return scaled


def rvtt_stage4_start(stage_epochs: Sequence[int], max_epochs: int) -> int:
    """First epoch (1-based) of stage 4, or 1 when the run has no stage 4 (e.g. the SRNet variant, stage 1 only).

    ``train.yaml`` gives it to :class:`common.engines.TrainingCheckpoints` as ``select_from_epoch``, so the kept
    ``model.pt`` is the best-validated generator *of the adversarial stage*, not the stage-1 network.
    """
    start = sum(int(e) for e in stage_epochs) + 1
    return start if start <= int(max_epochs) else 1


@contextlib.contextmanager
def _frozen(*modules: nn.Module) -> Iterator[None]:
    """Turn ``requires_grad`` off for the parameters of ``modules`` and restore each flag afterwards."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def _crop(images: torch.Tensor, corners: Sequence[tuple[int, int]], patch: int) -> torch.Tensor:
    return torch.stack([images[b, :, y : y + patch, x : x + patch] for b, (y, x) in enumerate(corners)])


class RVTTTrainer(SupervisedTrainer):
    """Four-stage rVTT training (see the module docstring); ``network`` / ``optimizer`` are G's.

    Batches carry ``image`` (LR input), ``label`` (HR target) and optionally ``roi_key`` (HR-sized ROI masks).

    Args:
        device: training device.
        max_epochs: total epochs of all stages.
        train_data_loader: loader of LR/HR(/ROI) batches.
        network: the generator G.
        optimizer: G's optimizer.
        loss_function: ``J_recon(sr, hr)`` (e.g. :class:`common.losses.ReconstructionLoss`).
        t1: whole-image critic (may be DDP-wrapped).
        t2: ROI-patch critic (may be DDP-wrapped).
        t1_optimizer: T1's optimizer.
        t2_optimizer: T2's optimizer.
        adversarial_loss: relativistic pair loss ``loss(c_real, c_fake)`` (default
            :class:`common.losses.RelativisticPairLoss`); G uses ``loss(c_fake, c_real)``.
        stage_epochs: epochs of stages 1, 2 and 3; stage 4 runs for the remaining epochs.
        adversarial_weights: weights of T1's and T2's adversarial terms in G's stage-4 loss.
        roi_patch_size: side of T2's patches in HR pixels.
        roi_key: batch key of the ROI masks.
        update_testers_in_stage4: keep training T1 and T2 on every stage-4 mini-batch.
        t1_lr_scheduler: stepped after each T1 update (G's scheduler goes in an ``LrScheduleHandler``).
        t2_lr_scheduler: stepped after each T2 update.
        stage1_path: if given, G's state dict at the end of stage 1 (the SRNet generator, before any adversarial
            update) is written there (rank 0 only), for side-by-side comparisons with the kept stage-4 generator.
        kwargs: passed to ``SupervisedTrainer`` (handlers, inferer, prepare_batch...).

    Raises:
        ValueError: negative stage lengths or a wrong number of them.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Any,
        network: nn.Module,
        optimizer: Optimizer,
        loss_function: Callable,
        t1: nn.Module,
        t2: nn.Module,
        t1_optimizer: Optimizer,
        t2_optimizer: Optimizer,
        adversarial_loss: Callable | None = None,
        stage_epochs: Sequence[int] = (1, 1, 1),
        adversarial_weights: Sequence[float] = (5e-3, 5e-3),
        roi_patch_size: int = 32,
        roi_key: str = "roi",
        update_testers_in_stage4: bool = True,
        t1_lr_scheduler: Any = None,
        t2_lr_scheduler: Any = None,
        stage1_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if len(stage_epochs) != 3 or min(int(e) for e in stage_epochs) < 0:
            raise ValueError(f"stage_epochs must be three epoch counts >= 0 (stages 1-3), got {list(stage_epochs)}")
        super().__init__(device=device, max_epochs=max_epochs, train_data_loader=train_data_loader, network=network,
                         optimizer=optimizer, loss_function=loss_function, **kwargs)  # fmt: skip

        self.t1, self.t2 = t1.to(device), t2.to(device)
        self.t1_optimizer, self.t2_optimizer = t1_optimizer, t2_optimizer
        self.adversarial_loss = adversarial_loss if adversarial_loss is not None else RelativisticPairLoss()
        self.stage_epochs = [int(e) for e in stage_epochs]
        self.adversarial_weights = [float(w) for w in adversarial_weights]
        self.roi_patch_size = int(roi_patch_size)
        self.roi_key = roi_key
        self.update_testers_in_stage4 = bool(update_testers_in_stage4)
        self.t1_lr_scheduler, self.t2_lr_scheduler = t1_lr_scheduler, t2_lr_scheduler
        self.stage1_path = Path(stage1_path) if stage1_path else None
        if self.stage1_path is not None:
            self.add_event_handler(Events.EPOCH_COMPLETED, self._save_stage1)

    def _save_stage1(self, engine: RVTTTrainer) -> None:
        epoch = engine.state.epoch
        if self.stage_of_epoch(epoch) != 1 or self.stage_of_epoch(epoch + 1) == 1 and epoch < engine.state.max_epochs:
            return

        if is_main_process():
            self.stage1_path.parent.mkdir(parents=True, exist_ok=True)
            save_torch_atomic(unwrap(engine.network).state_dict(), self.stage1_path)

    def stage_of_epoch(self, epoch: int) -> int:
        """Stage (1-4) of a 1-based epoch number."""
        bound = 0
        for stage, length in enumerate(self.stage_epochs, start=1):
            bound += length
            if epoch <= bound:
                return stage
        return 4

    def _patches(
        self, hr: torch.Tensor, sr: torch.Tensor, roi: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        corners = roi_patch_corners(roi, hr.shape[0], tuple(hr.shape[-2:]), self.roi_patch_size)
        return _crop(hr, corners, self.roi_patch_size), _crop(sr, corners, self.roi_patch_size)

    def _update_tester(self, tester: nn.Module, optimizer: Optimizer, scheduler: Any, real: torch.Tensor,
                       fake: torch.Tensor) -> torch.Tensor:  # fmt: skip
        tester.train()
        optimizer.zero_grad(set_to_none=True)
        loss = self.adversarial_loss(tester(real), tester(fake.detach()))
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return loss.detach()

    def _iteration(self, engine: RVTTTrainer, batchdata: dict[str, torch.Tensor]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        lr, hr = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)[:2]
        roi = batchdata.get(self.roi_key) if isinstance(batchdata, dict) else None
        roi = roi.to(engine.state.device) if isinstance(roi, torch.Tensor) else None
        stage = self.stage_of_epoch(engine.state.epoch)
        nan = torch.tensor(math.nan)
        out: dict[str, Any] = {"image": lr, "label": hr, "stage": stage, "loss_g": nan, "loss_t1": nan, "loss_t2": nan}
        engine.state.output = out

        if stage in (2, 3):  # G frozen: the testers learn to tell SR from real HR
            engine.network.eval()
            with torch.no_grad():
                sr = engine.inferer(lr, engine.network)
            if stage == 2:
                out["loss_t1"] = self._update_tester(self.t1, self.t1_optimizer, self.t1_lr_scheduler, hr, sr)
            else:
                hr_patch, sr_patch = self._patches(hr, sr, roi)
                out["loss_t2"] = self._update_tester(self.t2, self.t2_optimizer, self.t2_lr_scheduler, hr_patch,
                                                     sr_patch)  # fmt: skip
            out["pred"], out["loss"] = sr, out["loss_t1"] if stage == 2 else out["loss_t2"]
            return out

        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=True)
        sr = engine.inferer(lr, engine.network)
        loss = engine.loss_function(sr, hr).mean()
        if stage == 4:
            hr_patch, sr_patch = self._patches(hr, sr, roi)
            self.t1.train()
            self.t2.train()
            # G's adversarial terms: gradients flow through the frozen testers to SR only, and the unwrapped
            # testers keep DDP's reducers out of G's backward (the testers' own updates below go through DDP)
            t1, t2 = unwrap(self.t1), unwrap(self.t2)
            with _frozen(t1, t2):
                adv_t1 = self.adversarial_loss(t1(sr), t1(hr).detach())
                adv_t2 = self.adversarial_loss(t2(sr_patch), t2(hr_patch).detach())
            loss = loss + self.adversarial_weights[0] * adv_t1 + self.adversarial_weights[1] * adv_t2
        loss.backward()
        engine.optimizer.step()
        out["pred"], out["loss"], out["loss_g"] = sr.detach(), loss.detach(), loss.detach()
        if stage == 4 and self.update_testers_in_stage4:
            out["loss_t1"] = self._update_tester(self.t1, self.t1_optimizer, self.t1_lr_scheduler, hr, sr)
            out["loss_t2"] = self._update_tester(self.t2, self.t2_optimizer, self.t2_lr_scheduler, hr_patch, sr_patch)
        return out


def _panel(image: torch.Tensor) -> np.ndarray:
    """MONAI's PIL loader gives (C, W, H) for PNG: back to (H, W, C) for display."""
    return np.transpose(image.detach().float().clamp(0, 1).cpu().numpy(), (2, 1, 0))


class SRComparisonWriter:
    """Ignite handler writing ``<stem>_comparison.png`` per case: LR, bicubic, SR and (when known) HR.

    Items of ``engine.state.output`` must hold ``image`` (LR) and ``pred`` (SR), optionally ``label`` (HR), as
    channel-first images in [0, 1] in MONAI's PNG axis order. Panels are a central crop of at most ``crop`` HR pixels
    (and the matching LR crop), so details stay visible for large tiles.

    Args:
        output_dir: destination folder.
        crop: largest side of the HR-resolution crop (``0`` for whole images).
        postfix: appended to the input's file stem.
    """

    def __init__(self, output_dir: str, crop: int = 256, postfix: str = "comparison") -> None:
        self.output_dir = Path(output_dir)
        self.crop = int(crop)
        self.postfix = postfix

    def attach(self, engine: Any) -> None:
        """Write the figures after every iteration of ``engine``."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        """Write one figure per item (or batch element) of ``engine.state.output``."""
        output = engine.state.output
        for index, item in enumerate(output if isinstance(output, list) else [output]):
            lr = item["image"]
            if lr.ndim == 4:  # not decollated: one figure per batch element
                items = [{k: v[i] if isinstance(v, torch.Tensor) else v for k, v in item.items()}
                         for i in range(len(lr))]  # fmt: skip
            else:
                items = [item]
            for case in items:
                self.write(case, f"case_{engine.state.iteration}_{index}")

    def write(self, item: dict, fallback_name: str) -> Path:
        """Write the figure of one decollated item; returns its path."""
        lr, sr, hr = item["image"], item["pred"], item.get("label")
        scale = max(1, round(sr.shape[-1] / lr.shape[-1]))
        meta = getattr(sr, "meta", None) or getattr(lr, "meta", None) or {}
        stem = Path(str(meta.get("filename_or_obj", fallback_name))).name.split(".")[0]
        bicubic = upsample(lr.float()[None], tuple(sr.shape[-2:]), "bicubic")[0]
        side = self.crop // scale * scale if self.crop else 0
        if side and max(sr.shape[-2:]) > side:  # central crop aligned to the LR grid
            lr_side = side // scale
            y0, x0 = (lr.shape[-2] - lr_side) // 2, (lr.shape[-1] - lr_side) // 2
            lr = lr[..., y0 : y0 + lr_side, x0 : x0 + lr_side]
            box = (slice(None), slice(y0 * scale, y0 * scale + side), slice(x0 * scale, x0 * scale + side))
            sr, bicubic = sr[box], bicubic[box]
            hr = hr[box] if isinstance(hr, torch.Tensor) else hr
        panels = {"LR": _panel(lr), "bicubic": _panel(bicubic), "SR": _panel(sr)}
        if isinstance(hr, torch.Tensor) and hr.shape == sr.shape:
            panels["HR"] = _panel(hr)
        path = self.output_dir / f"{stem}_{self.postfix}.png"
        write_sr_comparison(str(path), panels)
        return path
