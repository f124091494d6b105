"""Reconstruction loss of the multiphoton fusion autoencoder (Kethireddy et al., ICPR 2024, Eq. 2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FusionReconstructionLoss"]


class FusionReconstructionLoss(nn.Module):
    """``L = L_B + alpha L_F + beta L_T``: one mean squared error per modality, weighted (paper: 1, 0.5, 0.05).

    Args:
        weights: weight of each modality's MSE, in channel order (BSHG, FSHG, TPEF).

    Call with ``(output, target)`` where ``output`` is the autoencoder's ``(latent, reconstruction)`` pair or the
    reconstruction alone, and ``target`` the ``(B, C, H, W)`` input stack.
    """

    def __init__(self, weights: Sequence[float] = (1.0, 0.5, 0.05)) -> None:
        super().__init__()
        if not weights or any(w < 0 for w in weights):
            raise ValueError(f"weights must be non-negative, got {list(weights)}")
        self.weights = [float(w) for w in weights]

    def terms(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unweighted MSE per modality, shape ``(C,)``."""
        if reconstruction.shape != target.shape:
            raise ValueError(f"reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} differ")
        if reconstruction.shape[1] != len(self.weights):
            raise ValueError(f"{reconstruction.shape[1]} channels but {len(self.weights)} weights {self.weights}")
        return F.mse_loss(reconstruction, target, reduction="none").mean(dim=(0, 2, 3))

    def forward(self, output: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        reconstruction = output[1] if isinstance(output, (tuple, list)) else output
        terms = self.terms(reconstruction, target)
        return (terms * torch.as_tensor(self.weights, dtype=terms.dtype, device=terms.device)).sum()
