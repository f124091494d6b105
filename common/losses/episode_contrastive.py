"""Losses of Guided-SET-DCL (Harb et al., ICPR 2024): weighted cross-entropy plus dense contrastive learning.

- :func:`info_nce`: InfoNCE between an anchor, one positive and negatives, on L2-normalised vectors with
  temperature ``tau``. ``form="paper"`` is the formula as printed, ``-a.p/tau + log sum_i exp(a.n_i/tau)`` (the
  positive is absent from the log-sum, so the loss is not bounded below by 0); ``form="standard"`` is the usual
  ``-log(exp(a.p/tau) / (exp(a.p/tau) + sum_i exp(a.n_i/tau)))`` (the ``info-nce-pytorch`` package the authors'
  code calls).
- :class:`GuidedSETDCLLoss`: ``ce_weight * CE + dcl_weight * (global_weight * CPCL + patch_weight * PPCL +
  context_weight * CCL)`` with the authors' weights (0.9 / 0.1 and 0.08 / 0.12 / 0.06), class weights (0.05, 1.0)
  and ``tau = 0.1``. CPCL contrasts the query's colon prototype with the support's (positive) and the unrelated
  slices' (negatives); PPCL does so for every local (patch) prototype of the query; CCL for the attention-pooled
  context vectors of the whole slices.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["INFONCE_FORMS", "GuidedSETDCLLoss", "info_nce"]

INFONCE_FORMS: tuple[str, ...] = ("paper", "standard")
"""The two InfoNCE forms: as printed in the paper, and the standard one (positive in the denominator)."""


def info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    tau: float = 0.1,
    form: str = "paper",
    negative_mask: torch.Tensor | None = None,
    anchor_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean InfoNCE over anchors.

    Args:
        anchor: ``(..., C)`` anchors.
        positive: ``(..., C)`` positives, broadcastable to ``anchor``.
        negatives: ``(..., N, C)`` negatives of each anchor (broadcastable over anchor dimensions).
        tau: temperature.
        form: ``"paper"`` or ``"standard"`` (see the module docstring).
        negative_mask: ``(..., N)`` bool, False for negatives to leave out.
        anchor_mask: ``(...)`` bool, False for anchors to leave out (an anchor without any negative is left out
            too).

    Returns:
        Scalar loss (0 when no anchor is valid).

    Raises:
        ValueError: an unknown form.
    """
    if form not in INFONCE_FORMS:
        raise ValueError(f"InfoNCE form must be one of {list(INFONCE_FORMS)}, got {form!r}")
    a = F.normalize(anchor, dim=-1)
    pos = (a * F.normalize(positive, dim=-1)).sum(-1) / tau
    neg = (a.unsqueeze(-2) * F.normalize(negatives, dim=-1)).sum(-1) / tau
    valid = torch.ones_like(pos, dtype=torch.bool)
    if negative_mask is not None:
        negative_mask = negative_mask.expand_as(neg)
        neg = neg.masked_fill(~negative_mask, float("-inf"))
        valid = valid & negative_mask.any(-1)
    if anchor_mask is not None:
        valid = valid & anchor_mask.expand_as(valid)
    if form == "paper":
        loss = -pos + torch.logsumexp(neg, -1)
    else:
        loss = -pos + torch.logsumexp(torch.cat([pos.unsqueeze(-1), neg], -1), -1)
    if not valid.any():
        return anchor.sum() * 0.0
    return loss[valid].mean()


class GuidedSETDCLLoss(nn.Module):
    """Weighted cross-entropy on the query plus global, patch and contextual contrastive losses.

    Args:
        ce_weight: weight of the cross-entropy (authors: 0.9).
        dcl_weight: weight of the contrastive sum (authors: 0.1).
        global_weight: weight of the global-prototype loss CPCL (authors: 0.08).
        patch_weight: weight of the patch-prototype loss PPCL (authors: 0.12).
        context_weight: weight of the contextual loss CCL (authors: 0.06).
        class_weights: cross-entropy weights of background and colon (authors: 0.05, 1.0).
        tau: InfoNCE temperature (authors: 0.1).
        infonce: ``"paper"`` or ``"standard"`` InfoNCE.

    Raises:
        ValueError: an unknown InfoNCE form or not two class weights.
    """

    def __init__(
        self,
        ce_weight: float = 0.9,
        dcl_weight: float = 0.1,
        global_weight: float = 0.08,
        patch_weight: float = 0.12,
        context_weight: float = 0.06,
        class_weights: Sequence[float] = (0.05, 1.0),
        tau: float = 0.1,
        infonce: str = "paper",
    ) -> None:
        super().__init__()
        if infonce not in INFONCE_FORMS:
            raise ValueError(f"infonce must be one of {list(INFONCE_FORMS)}, got {infonce!r}")
        if len(class_weights) != 2:
            raise ValueError(f"class_weights must be (background, colon), got {list(class_weights)}")
        self.ce_weight, self.dcl_weight = float(ce_weight), float(dcl_weight)
        self.weights = (float(global_weight), float(patch_weight), float(context_weight))
        self.register_buffer("class_weights", torch.tensor([float(w) for w in class_weights]))
        self.tau, self.infonce = float(tau), infonce

    def forward(self, outputs: Mapping[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The total loss and its parts.

        Args:
            outputs: :attr:`common.networks.GuidedSETDCLNet.episode_outputs` of a training forward.
            target: ``(B, 1, H, W)`` query ground truth (0/1).

        Returns:
            ``{"loss", "ce_loss", "global_loss", "patch_loss", "context_loss"}``.
        """
        iterates = outputs["iterates"]  # (B, K, 2, H, W): every iterate is supervised
        b, k = iterates.shape[:2]
        labels = target[:, 0].long().unsqueeze(1).expand(-1, k, -1, -1).reshape(b * k, *target.shape[2:])
        ce = F.cross_entropy(iterates.reshape(b * k, *iterates.shape[2:]), labels, weight=self.class_weights)
        nce = functools.partial(info_nce, tau=self.tau, form=self.infonce)
        global_loss = nce(outputs["query_prototype"], outputs["support_prototype"], outputs["unrelated_prototypes"])
        patch_loss = nce(
            outputs["query_patches"],
            outputs["support_prototype"].unsqueeze(1),
            outputs["unrelated_patches"].unsqueeze(1),
            negative_mask=outputs["unrelated_patches_valid"].unsqueeze(1),
            anchor_mask=outputs["query_patches_valid"],
        )
        context_loss = nce(outputs["query_context"], outputs["support_context"], outputs["unrelated_context"])
        wg, wp, wc = self.weights
        dcl = wg * global_loss + wp * patch_loss + wc * context_loss
        return {
            "loss": self.ce_weight * ce + self.dcl_weight * dcl,
            "ce_loss": ce,
            "global_loss": global_loss,
            "patch_loss": patch_loss,
            "context_loss": context_loss,
        }
