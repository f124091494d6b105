"""LoFTR-style coarse feature matching and a differentiable affine estimator (Soft Points + weighted affine DLT).

Used by the histology affine registration bundle (Unsupervised Feature Matching for Affine Histological Image
Registration, ICPR 2024). Coordinates are pixel units of the network's input grid: ``x`` is the column, ``y`` the
row, pixel centres at integer positions. Affines are 2x3 matrices mapping *source* (moving) pixel coordinates to
*target* (fixed) pixel coordinates: ``[x_t, y_t]^T = A[:, :2] [x_s, y_s]^T + A[:, 2]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "CoarseBackbone",
    "sine_positional_encoding",
    "AttentionLayer",
    "CoarseMatcher",
    "mutual_nearest_mask",
    "soft_points",
    "coarse_cell_centres",
    "weighted_affine_dlt",
    "AffineMatchingNet",
]


class CoarseBackbone(nn.Module):
    """Small convolutional backbone producing ``dim``-channel features at 1/8 of the input resolution.

    Args:
        in_channels: input channels (1: grey images).
        dim: feature dimension.
        width: channels of the first stage (doubled at each of the three stride-2 stages, capped at ``dim``).
    """

    def __init__(self, in_channels: int = 1, dim: int = 64, width: int = 16) -> None:
        super().__init__()
        c1, c2 = width, min(2 * width, dim)
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c1, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c2, dim, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.layers(x)


def sine_positional_encoding(dim: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """LoFTR's 2D sinusoidal positional encoding, ``(dim, height, width)``; ``dim`` must be a multiple of 4."""
    quarter = dim // 4
    y = torch.arange(height, device=device, dtype=torch.float32).view(1, height, 1).expand(1, height, width)
    x = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width).expand(1, height, width)
    freq = torch.exp(torch.arange(quarter, device=device, dtype=torch.float32) * (-math.log(10000.0) / quarter))
    freq = freq.view(quarter, 1, 1)
    return torch.cat([torch.sin(x * freq), torch.cos(x * freq), torch.sin(y * freq), torch.cos(y * freq)], 0)


class AttentionLayer(nn.Module):
    """Transformer encoder layer (multi-head softmax attention + MLP, pre-concatenation as in LoFTR).

    Args:
        dim: token dimension.
        heads: attention heads.
    """

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.merge = nn.Linear(dim, dim, bias=False)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, 2 * dim, bias=False), nn.ReLU(), nn.Linear(2 * dim, dim, bias=False)
        )
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Update tokens ``x`` (B, N, C) attending to ``source`` (B, M, C) (``source is x`` for self-attention)."""
        b, n, c = x.shape
        m = source.shape[1]
        h = self.heads
        q = self.q(x).view(b, n, h, c // h).transpose(1, 2)
        k = self.k(source).view(b, m, h, c // h).transpose(1, 2)
        v = self.v(source).view(b, m, h, c // h).transpose(1, 2)
        # softmax(q k^T / sqrt(d)) v, fused: about 3x faster on CPU than the explicit product at 1024 tokens
        attended = nn.functional.scaled_dot_product_attention(q, k, v)
        message = self.norm1(self.merge(attended.transpose(1, 2).reshape(b, n, c)))
        return x + self.norm2(self.mlp(torch.cat([x, message], -1)))


class CoarseMatcher(nn.Module):
    """Coarse matcher: shared backbone, positional encoding, interleaved self/cross attention, dual-softmax.

    Args:
        dim: feature dimension (multiple of 4 and of ``heads``).
        layers: number of (self, cross) attention pairs.
        heads: attention heads.
        temperature: dual-softmax temperature.
        width: backbone width.
    """

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 4, temperature: float = 0.1, width: int = 16):
        super().__init__()
        self.stride = 8
        if dim % 4 or dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of 4 and of heads {heads}")
        self.dim = dim
        self.temperature = temperature
        self.backbone = CoarseBackbone(1, dim, width)
        self.self_layers = nn.ModuleList([AttentionLayer(dim, heads) for _ in range(layers)])
        self.cross_layers = nn.ModuleList([AttentionLayer(dim, heads) for _ in range(layers)])

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Backbone features + positional encoding, flattened to tokens ``(B, h*w, dim)``."""
        f = self.backbone(image)
        f = f + sine_positional_encoding(self.dim, f.shape[2], f.shape[3], f.device).unsqueeze(0)
        return f.flatten(2).transpose(1, 2)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Confidence matrix ``(B, N_source, N_target)`` of two grey images ``(B, 1, H, W)`` (H, W multiples of 8)."""
        f0, f1 = self.features(source), self.features(target)
        for self_layer, cross_layer in zip(self.self_layers, self.cross_layers):
            f0, f1 = self_layer(f0, f0), self_layer(f1, f1)
            f0, f1 = cross_layer(f0, f1), cross_layer(f1, f0)
        sim = (f0 / (self.dim * self.temperature)) @ f1.transpose(1, 2)  # scale the tokens, not the N x M matrix
        return torch.softmax(sim, 1) * torch.softmax(sim, 2)


def mutual_nearest_mask(conf: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean ``(B, N, M)``: entries above ``threshold`` that are the maximum of both their row and column."""
    row_max = conf.max(dim=2, keepdim=True)[0]
    col_max = conf.max(dim=1, keepdim=True)[0]
    return (conf > threshold) & (conf == row_max) & (conf == col_max)


def coarse_cell_centres(height: int, width: int, stride: int, device: torch.device) -> torch.Tensor:
    """Pixel coordinates ``(h*w, 2)`` (x, y) of the centres of the coarse cells of an ``height x width`` image."""
    h, w = height // stride, width // stride
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride - 0.5
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride - 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)


def soft_points(
    conf: torch.Tensor, target_xy: torch.Tensor, stride: int, radius: int = 1, best: torch.Tensor | None = None
) -> torch.Tensor:
    """Soft Points: the differentiable sub-pixel expectation of each source cell's match in the target.

    For each source cell, the confidences of the target cells within ``radius`` coarse cells (Chebyshev distance)
    of its best target cell are normalised into weights, and the expected target position is returned.

    Args:
        conf: confidence matrix ``(B, N, M)``.
        target_xy: target cell centres ``(M, 2)``.
        stride: coarse cell size in pixels.
        radius: window radius in cells.
        best: ``conf.argmax(dim=2)`` if the caller has it already.

    Returns:
        ``(B, N, 2)`` expected target positions in pixels.
    """
    if best is None:
        best = conf.argmax(dim=2)  # (B, N)
    # the window depends only on the best cell: a table of each target cell's neighbours (M, K), K <= (2r+1)^2,
    # gathered per source cell, so the work is B x N x K instead of B x N x M
    near = (target_xy.unsqueeze(1) - target_xy.unsqueeze(0)).abs().amax(dim=-1) <= radius * stride + 0.5
    k = int(near.sum(1).max())
    table = torch.sort((~near).to(torch.uint8), dim=1, stable=True).indices[:, :k]  # neighbours first
    inside = torch.gather(near, 1, table)  # (M, K): False for the padding of cells with fewer neighbours
    cells = table[best]  # (B, N, K)
    weights = conf.gather(2, cells) * inside[best].to(conf.dtype)
    weights = weights / weights.sum(dim=2, keepdim=True).clamp_min(1e-12)
    return (weights.unsqueeze(-1) * target_xy[cells]).sum(dim=2)


def _hartley(points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """3x3 similarity ``(B, 3, 3)`` moving the weighted centroid to 0 and the mean distance to sqrt(2)."""
    wsum = weights.sum(1, keepdim=True).clamp_min(1e-12)
    centre = (weights.unsqueeze(-1) * points).sum(1) / wsum  # (B, 2)
    dist = ((points - centre.unsqueeze(1)).pow(2).sum(-1) + 1e-12).sqrt()
    mean = (weights * dist).sum(1, keepdim=True) / wsum
    s = math.sqrt(2.0) / mean.clamp_min(1e-6)  # (B, 1)
    b = points.shape[0]
    t = torch.zeros(b, 3, 3, dtype=points.dtype, device=points.device)
    t[:, 0, 0] = s[:, 0]
    t[:, 1, 1] = s[:, 0]
    t[:, 0, 2] = -s[:, 0] * centre[:, 0]
    t[:, 1, 2] = -s[:, 0] * centre[:, 1]
    t[:, 2, 2] = 1.0
    return t


def weighted_affine_dlt(source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted affine DLT with Hartley normalisation, solved by SVD.

    Each correspondence gives two rows of the homogeneous system ``[x y 1 0 0 0 -x'] h = 0`` and
    ``[0 0 0 x y 1 -y'] h = 0``, scaled by ``sqrt(weight)``; ``h`` is the right singular vector of the smallest
    singular value (SVD), divided by its last entry. Gradients flow through a shifted inverse-iteration step that
    reproduces that vector (see the code), which stays finite when other singular values coincide.

    Args:
        source: ``(B, N, 2)`` source points (pixels).
        target: ``(B, N, 2)`` target points.
        weights: ``(B, N)`` non-negative weights (0 excludes a point).

    Returns:
        ``(B, 2, 3)`` affine mapping source to target pixel coordinates.
    """
    # a tiny floor keeps the system full rank (finite SVD gradients) when only a few points carry weight
    weights = weights.clamp_min(0) + 1e-6 * weights.max(1, keepdim=True)[0].clamp_min(1e-3)
    ts, tt = _hartley(source, weights), _hartley(target, weights)
    ones = torch.ones_like(source[..., :1])
    zeros = torch.zeros_like(ones)
    s = torch.cat([source, ones], -1) @ ts.transpose(1, 2)  # normalised homogeneous (B, N, 3)
    t = torch.cat([target, ones], -1) @ tt.transpose(1, 2)
    row_x = torch.cat([s, zeros, zeros, zeros, -t[..., :1]], -1)
    row_y = torch.cat([zeros, zeros, zeros, s, -t[..., 1:2]], -1)
    w = weights.sqrt().unsqueeze(-1)
    a = torch.cat([row_x * w, row_y * w], 1)  # (B, 2N, 7)
    # the solution is the right singular vector of the smallest singular value (SVD of the detached system); it is
    # made differentiable by one step of shifted inverse iteration on A^T A, whose value equals that vector's
    # direction and whose gradient matches the eigenvector perturbation without SVD's 1/(s_i^2 - s_j^2) terms
    # (infinite for repeated singular values, as in a symmetric grid of points)
    _, _, vh = torch.linalg.svd(a.detach(), full_matrices=False)
    v0 = vh[:, -1, :].unsqueeze(-1)
    m = a.transpose(1, 2) @ a
    eye = torch.eye(7, dtype=a.dtype, device=a.device).unsqueeze(0)
    shift = 1e-6 * torch.diagonal(m, dim1=1, dim2=2).sum(-1).view(-1, 1, 1) / 7.0 + 1e-12
    h = torch.linalg.solve(m + shift * eye, v0).squeeze(-1)
    last = h[:, 6:7]
    last = torch.where(last.abs() < 1e-8, torch.full_like(last, 1e-8), last)
    h = h / last
    an = torch.zeros(source.shape[0], 3, 3, dtype=source.dtype, device=source.device)
    an[:, 0, :] = h[:, 0:3]
    an[:, 1, :] = h[:, 3:6]
    an[:, 2, 2] = 1.0
    return (torch.linalg.inv(tt) @ an @ ts)[:, :2, :]


class AffineMatchingNet(nn.Module):
    """The differentiable path of the paper: coarse matcher -> mutual-NN matches -> Soft Points -> weighted DLT.

    Input: ``(B, 2, H, W)`` (channel 0 the moving/source grey image, channel 1 the fixed/target), H and W multiples
    of 8. Output: ``(B, 6)``, the flattened 2x3 affine mapping source to target pixel coordinates of the input grid
    (row-major: a11 a12 tx a21 a22 ty). Pairs with fewer than ``min_matches`` matches get the identity.

    Args:
        dim: matcher feature dimension.
        layers: (self, cross) attention pairs.
        heads: attention heads.
        threshold: confidence threshold of the matches.
        radius: Soft Points window radius (coarse cells).
        min_matches: below this, the identity is returned.
        temperature: dual-softmax temperature.
        width: backbone width.
    """

    def __init__(
        self, dim: int = 64, layers: int = 2, heads: int = 4, threshold: float = 0.2, radius: int = 1,
        min_matches: int = 3, temperature: float = 0.1, width: int = 16,
    ) -> None:  # fmt: skip
        super().__init__()
        self.matcher = CoarseMatcher(dim, layers, heads, temperature, width)
        self.threshold = threshold
        self.radius = radius
        self.min_matches = min_matches

    def matches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(source cell centres ``(B, N, 2)``, soft target points ``(B, N, 2)``, weights ``(B, N)``).

        Weights are the confidences of the mutual-nearest matches above the threshold, 0 elsewhere.
        """
        source, target = x[:, 0:1], x[:, 1:2]
        conf = self.matcher(source, target)
        stride = self.matcher.stride
        xy = coarse_cell_centres(x.shape[2], x.shape[3], stride, x.device)
        # mutual_nearest_mask's matches, from the row and column maxima alone (no N x M mask): a source cell's best
        # target is mutual when no other source cell scores higher on that target
        row_max, best = conf.max(dim=2)
        col_max = conf.max(dim=1)[0]
        mutual = (row_max >= col_max.gather(1, best)) & (row_max > self.threshold)
        weights = torch.where(mutual, row_max, torch.zeros((), dtype=conf.dtype, device=conf.device))
        points = soft_points(conf, xy, stride, self.radius, best=best)
        return xy.unsqueeze(0).expand(x.shape[0], -1, -1), points, weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        source_xy, target_xy, weights = self.matches(x)
        count = (weights > 0).sum(1)
        enough = (count >= self.min_matches).view(-1, 1)
        # pairs without enough matches get the identity; their system is solved with uniform weights (a
        # well-conditioned SVD whose result is discarded) so that no non-finite gradient can leak into training
        weights = torch.where(enough, weights, torch.ones_like(weights))
        affine = weighted_affine_dlt(source_xy.double(), target_xy.double(), weights.double()).to(x.dtype)
        identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=x.dtype, device=x.device)
        ok = enough.view(-1, 1, 1) & torch.isfinite(affine).all(2, keepdim=True).all(1, keepdim=True)
        affine = torch.where(ok, affine, identity.unsqueeze(0).expand_as(affine))
        return affine.reshape(x.shape[0], 6)
