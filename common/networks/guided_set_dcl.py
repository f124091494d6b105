"""Guided-SET-DCL episode network (Harb et al., ICPR 2024, after AAS-DCL): colon segmentation from a support slice.

:class:`GuidedSETDCLNet` is the two-branch encoder-decoder of the authors' code (``AAS_DCL_w_ini``), built narrow
enough for a CPU:

- a support branch (slice + its mask, 2 channels) and a query branch (slice, 1 channel) with their own stems and
  shared encoder/decoder blocks (U-Net, max-pool down, transposed-conv up, skip concatenation);
- support-to-query spatial squeeze-excitation (:class:`SpatialSE`) at every encoder and decoder level: a 1x1 conv
  and a sigmoid on the support features give a spatial map multiplied into the query features;
- a prior embedding: cosine similarity of the query features with the support's foreground and background
  prototypes (masked average pooling, :func:`masked_average_pooling`), min-max normalised, fused with the query
  features and the query's initial (MRF) mask by a conv ("guided");
- iterative refinement: the query features re-weighted by the current foreground / background probabilities,
  fused with the similarity maps and re-classified, ``refine_iterations`` times; the iterate whose foreground
  probability agrees best (lowest MSE) with the support-similarity map is the output ("similarity consistency").

``forward(x)`` takes one ``(B, 4, H, W)`` tensor, support slice, support mask, query slice, query initial mask,
and returns the query's 2-class logits (TorchScript-scriptable). Training calls ``forward(x, unrelated)`` with the
episode's colon-free slices and their pseudo-masks: the prediction is returned the same way (so DDP sees one
forward) and the prototypes and context vectors the contrastive losses need are left in :attr:`episode_outputs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GuidedSETDCLNet", "SpatialSE", "masked_average_pooling", "patch_prototypes", "minmax_normalise"]


def masked_average_pooling(features: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Prototype ``sum_r m(r) f(r) / sum_r m(r)`` of ``(B, C, H, W)`` features under a ``(B, 1, H, W)`` mask.

    Args:
        features: feature maps.
        mask: soft or binary mask at the features' resolution.
        eps: added to the mask sum (an empty mask gives a zero prototype).

    Returns:
        ``(B, C)`` prototypes.
    """
    return (features * mask).sum((2, 3)) / (mask.sum((2, 3)) + eps)


def patch_prototypes(
    features: torch.Tensor, mask: torch.Tensor, grid: int = 4, min_fraction: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local prototypes: masked average pooling in each cell of a ``grid x grid`` partition.

    Args:
        features: ``(B, C, H, W)`` with H and W divisible by ``grid``.
        mask: ``(B, 1, H, W)`` mask.
        grid: cells per side.
        min_fraction: a cell's prototype is valid when the mask covers at least this fraction of it.

    Returns:
        ``(prototypes (B, grid*grid, C), valid (B, grid*grid) bool)``.
    """
    b, c, h, w = features.shape
    ph, pw = h // grid, w // grid
    weighted = F.avg_pool2d(features * mask, (ph, pw))  # mean over a cell of m f
    coverage = F.avg_pool2d(mask, (ph, pw))  # mean over a cell of m
    prototypes = (weighted / (coverage + 1e-5)).flatten(2).transpose(1, 2)
    return prototypes, coverage.flatten(1) >= min_fraction


def minmax_normalise(x: torch.Tensor) -> torch.Tensor:
    """Per-sample min-max normalisation of ``(B, 1, H, W)`` maps to [0, 1]."""
    low = x.amin((1, 2, 3), keepdim=True)
    high = x.amax((1, 2, 3), keepdim=True)
    return (x - low) / (high - low + 1e-5)


class SpatialSE(nn.Module):
    """Spatial squeeze-excitation from a guide tensor: ``target * sigmoid(conv1x1(guide))``.

    Args:
        channels: channels of the guide.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, target: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """Gate ``target`` by the spatial map of ``guide``."""
        return target * torch.sigmoid(self.conv(guide))


def _block(in_channels: int, out_channels: int, kernel_size: int, convs: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class _Down(nn.Module):
    """One encoder level of both branches (shared block), the support gating the query."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.block = _block(in_channels, out_channels, kernel_size)
        self.se = SpatialSE(out_channels)

    def support(self, s: torch.Tensor) -> torch.Tensor:
        """Support features of the next level."""
        return self.block(F.max_pool2d(s, 2))

    def query(self, q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Query features of the next level, gated by that level's support features ``s``."""
        return self.se(self.block(F.max_pool2d(q, 2)), s)


class _Up(nn.Module):
    """One decoder level of both branches (shared up-convolution and block), the support gating the query."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.block = _block(2 * out_channels, out_channels, kernel_size)
        self.se = SpatialSE(out_channels)

    def support(self, s: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Support features: upsample, concatenate the skip, convolve."""
        return self.block(torch.cat([self.up(s), skip], 1))

    def query(self, q: torch.Tensor, skip: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Query features, gated by this level's support features ``s``."""
        return self.se(self.block(torch.cat([self.up(q), skip], 1)), s)


class GuidedSETDCLNet(nn.Module):
    """Two-branch sSE U-Net with prior embedding and iterative refinement (see the module docstring).

    Args:
        features: channels per level (the authors': 32, 64, 128, 256, 512); H and W must be divisible by
            ``2 ** (len(features) - 1)`` and by ``grid``.
        kernel_size: convolution size (the authors': 5).
        refine_iterations: refinement iterations (the authors': 5).
        guidance: use the query's initial (MRF) mask (Guided-SET-DCL); False ignores it (SET-DCL).
        grid: cells per side of the local (patch) prototypes.
        num_unrelated: colon-free slices per training episode.

    Raises:
        ValueError: fewer than two levels, or a negative number of iterations.
    """

    __jit_ignored_attributes__ = ["episode_outputs"]  # training-only Python state
    episode_outputs: dict[str, torch.Tensor]

    def __init__(
        self,
        features: Sequence[int] = (16, 32, 64, 128),
        kernel_size: int = 3,
        refine_iterations: int = 3,
        guidance: bool = True,
        grid: int = 4,
        num_unrelated: int = 3,
    ) -> None:
        super().__init__()
        features = [int(f) for f in features]
        if len(features) < 2:
            raise ValueError(f"GuidedSETDCLNet needs at least two levels, got features={features}")
        if refine_iterations < 0:
            raise ValueError(f"refine_iterations must be >= 0, got {refine_iterations}")
        self.levels = len(features)
        self.guidance = bool(guidance)
        self.grid = int(grid)
        self.num_unrelated = int(num_unrelated)
        self.refine_iterations = int(refine_iterations)
        f0 = features[0]
        self.support_stem = _block(2, f0, kernel_size)
        self.query_stem = _block(1, f0, kernel_size)
        self.stem_se = SpatialSE(f0)
        self.down = nn.ModuleList([_Down(features[i - 1], features[i], kernel_size) for i in range(1, self.levels)])
        # deepest first, the order the decoder runs in
        self.up = nn.ModuleList(
            [_Up(features[i + 1], features[i], kernel_size) for i in range(self.levels - 2, -1, -1)]
        )
        self.fusion = _block(f0 + 3, f0, 3, convs=1)
        self.head = nn.Conv2d(f0, 2, 1)
        self.refine = _block(2 * f0 + 2, f0, 3, convs=1)
        self.refine_head = nn.Conv2d(f0, 2, 1)
        self.context = nn.Conv2d(f0, 1, 1)  # spatial attention of the contextual contrastive loss
        self.episode_outputs = {}

    def _support_path(self, support: torch.Tensor, support_mask: torch.Tensor) -> list[torch.Tensor]:
        """Support features at every encoder level, then every decoder level (the last is the output map)."""
        s = self.support_stem(torch.cat([support, support_mask], 1))
        levels = [s]
        for down in self.down:
            s = down.support(s)
            levels.append(s)
        depth = len(levels)
        k = 0
        for up in self.up:
            s = up.support(s, levels[depth - 2 - k])
            levels.append(s)
            k += 1
        return levels

    def _query_path(self, query: torch.Tensor, support_levels: list[torch.Tensor]) -> torch.Tensor:
        """Query features, gated at every level by the support features of that level."""
        q = self.stem_se(self.query_stem(query), support_levels[0])
        skips = [q]
        i = 1
        for down in self.down:
            q = down.query(q, support_levels[i])
            skips.append(q)
            i += 1
        depth = len(skips)
        k = 0
        for up in self.up:
            q = up.query(q, skips[depth - 2 - k], support_levels[i])
            i += 1
            k += 1
        return q

    def _features(
        self, support: torch.Tensor, support_mask: torch.Tensor, query: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last decoder features of both branches, the support gating the query at every level."""
        levels = self._support_path(support, support_mask)
        return levels[-1], self._query_path(query, levels)

    def _predict(
        self, fs: torch.Tensor, ys: torch.Tensor, fq: torch.Tensor, prior: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """All iterates' logits, the index of the selected one per sample, and the enhanced query features."""
        v_fg = masked_average_pooling(fs, ys)[:, :, None, None]
        v_bg = masked_average_pooling(fs, 1.0 - ys)[:, :, None, None]
        sim_fg = minmax_normalise(F.cosine_similarity(fq, v_fg, dim=1).unsqueeze(1))
        sim_bg = minmax_normalise(F.cosine_similarity(fq, v_bg, dim=1).unsqueeze(1))
        if not self.guidance:
            prior = torch.zeros_like(prior)
        enhanced = self.fusion(torch.cat([fq, sim_fg, sim_bg, prior], 1))
        logits = self.head(enhanced)
        iterates = [logits]
        scores = [((torch.softmax(logits, 1)[:, 1:] - sim_fg) ** 2).mean((1, 2, 3))]
        for _ in range(self.refine_iterations):
            p = torch.softmax(logits, 1)
            fused = self.refine(torch.cat([enhanced * p[:, 1:], enhanced * p[:, :1], sim_fg, sim_bg], 1))
            logits = logits + self.refine_head(fused)
            iterates.append(logits)
            scores.append(((torch.softmax(logits, 1)[:, 1:] - sim_fg) ** 2).mean((1, 2, 3)))
        chosen = torch.stack(scores, 1).argmin(1)
        return iterates, chosen, enhanced

    def forward(self, x: torch.Tensor, unrelated: torch.Tensor | None = None) -> torch.Tensor:
        """Query logits ``(B, 2, H, W)`` from ``x`` = support slice, support mask, query slice, query initial mask.

        Args:
            x: ``(B, 4, H, W)`` episode input.
            unrelated: training only, ``(B, 2 * num_unrelated, H, W)``: the colon-free slices, then their
                pseudo-masks; the losses' prototypes are then left in :attr:`episode_outputs`.

        Returns:
            The selected iterate's logits.
        """
        if unrelated is not None:
            return self._episode(x, unrelated)
        support, ys, query, prior = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
        fs, fq = self._features(support, ys, query)
        iterates, chosen, _ = self._predict(fs, ys, fq, prior)
        stacked = torch.stack(iterates, 1)  # (B, K, 2, H, W)
        index = chosen.view(-1, 1, 1, 1, 1).expand(-1, 1, stacked.shape[2], stacked.shape[3], stacked.shape[4])
        return stacked.gather(1, index).squeeze(1)

    def _context(self, features: torch.Tensor) -> torch.Tensor:
        """Context vector of the contextual contrastive loss: spatial attention, then the spatial mean."""
        return (features * torch.sigmoid(self.context(features))).mean((2, 3))

    @torch.jit.unused
    def _episode(self, x, unrelated):  # unannotated: TorchScript reads a skipped method's string annotations
        """Training forward: prediction plus the prototypes and context vectors of the contrastive losses.

        Args:
            x: ``(B, 4, H, W)`` episode input.
            unrelated: ``(B, 2n, H, W)`` colon-free slices, then their pseudo-masks.

        Returns:
            The selected iterate's logits (``(B, 2, H, W)``).
        """
        b, _, h, w = x.shape
        n = unrelated.shape[1] // 2
        support, ys, query, prior = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
        # the unrelated slices go through the query branch under the same support's gating, in one batch
        u_images = unrelated[:, :n].reshape(b * n, 1, h, w)
        u_masks = unrelated[:, n:].reshape(b * n, 1, h, w)
        levels = self._support_path(support, ys)
        repeated = [torch.cat([level, level.repeat_interleave(n, 0)]) for level in levels]
        fq_all = self._query_path(torch.cat([query, u_images]), repeated)
        fs, fq, fu = levels[-1], fq_all[:b], fq_all[b:]
        iterates, chosen, _ = self._predict(fs, ys, fq, prior)
        p_fg = torch.softmax(iterates[0], 1)[:, 1:]
        guide = prior if self.guidance else p_fg  # the query prototype's mask: MRF (guided) or the prediction
        patches_q, valid_q = patch_prototypes(fq, guide, self.grid)
        patches_u, valid_u = patch_prototypes(fu, u_masks, self.grid)
        self.episode_outputs = {
            "iterates": torch.stack(iterates, 1),
            "support_prototype": masked_average_pooling(fs, ys),
            "query_prototype": masked_average_pooling(fq, guide),
            "unrelated_prototypes": masked_average_pooling(fu, u_masks).reshape(b, n, -1),
            "query_patches": patches_q,
            "query_patches_valid": valid_q,
            "unrelated_patches": patches_u.reshape(b, n * patches_u.shape[1], -1),
            "unrelated_patches_valid": valid_u.reshape(b, -1),
            "support_context": self._context(fs),
            "query_context": self._context(fq),
            "unrelated_context": self._context(fu).reshape(b, n, -1),
        }
        index = chosen.view(-1, 1, 1, 1, 1).expand(-1, 1, 2, h, w)
        return torch.stack(iterates, 1).gather(1, index).squeeze(1)
