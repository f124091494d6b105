"""Classification losses shared by bundles (thyroid's classifier, skin's BCE option)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OneHotBCEWithLogitsLoss"]


class OneHotBCEWithLogitsLoss(nn.Module):
    """Binary cross-entropy of per-class sigmoid outputs against one-hot targets (the paper's classifier loss: two
    sigmoid outputs, BCE on one-hot labels). Targets are class indices ``(B,)`` / ``(B, 1)`` or one-hot ``(B, C)``.
    """  # noqa: D205

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if target.ndim == logits.ndim and target.shape == logits.shape:
            one_hot = target.float()
        else:
            one_hot = F.one_hot(target.reshape(-1).long(), logits.shape[-1]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, one_hot)
