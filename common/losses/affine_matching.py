"""Losses of unsupervised feature-matching affine registration: local NCC of the affinely warped source, and the
supervised coarse-matching loss of the synthetic-homography warm-up.
"""  # noqa: D205

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from common.transforms.affine_histology import warp_affine

__all__ = ["local_ncc", "AffineNCCLoss", "CoarseMatchingLoss"]


def local_ncc(a: torch.Tensor, b: torch.Tensor, window: int = 9, eps: float = 1e-5) -> torch.Tensor:
    """Mean local normalised cross-correlation of two ``(B, 1, H, W)`` images over ``window``-sized boxes."""
    pad = window // 2

    def box(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, window, stride=1, padding=pad, count_include_pad=False)

    ma, mb = box(a), box(b)
    cov = box(a * b) - ma * mb
    va = (box(a * a) - ma * ma).clamp_min(0)
    vb = (box(b * b) - mb * mb).clamp_min(0)
    return (cov / (va * vb + eps).sqrt()).mean()


class AffineNCCLoss(nn.Module):
    """Negative local NCC between the source warped by the predicted affine and the target.

    ``forward(pred, targets)``: ``pred`` is ``(B, 6)`` (source-to-target pixel affine of the input grid), ``targets``
    holds ``moving`` and ``fixed`` ``(B, 1, H, W)`` (as :class:`common.engines.PreAlignedRegistrationBatch` returns).

    Args:
        window: local NCC window (pixels).
    """

    def __init__(self, window: int = 9) -> None:
        super().__init__()
        self.window = window

    def forward(self, pred: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> torch.Tensor:  # noqa: D102

        moving, fixed = targets["moving"], targets["fixed"]
        warped = warp_affine(moving, pred, tuple(fixed.shape[2:]))
        return -local_ncc(warped, fixed, self.window)


class CoarseMatchingLoss(nn.Module):
    """Supervised coarse-matching loss: mean negative log confidence at the ground-truth matches.

    ``forward(conf, targets)``: ``conf`` is the dual-softmax matrix ``(B, N, M)``, ``targets["gt"]`` ``(B, N)`` the
    index of the true target cell of each source cell (-1: no supervision).
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, conf: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> torch.Tensor:  # noqa: D102
        gt = targets["gt"]
        valid = gt >= 0
        if not bool(valid.any()):
            return conf.sum() * 0.0
        picked = conf.gather(2, gt.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        return -(torch.log(picked + self.eps) * valid).sum() / valid.sum()
