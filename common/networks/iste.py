"""ISTE (Qu et al., 2023): arbitrary-scale super-resolution of pathology images with implicit self-texture enhancement.

The network has a shared encoder and two implicit (coordinate-query) branches:

- encoder: a SwinIR-style feature extractor without up-sampling layers (shallow conv, residual groups of
  (shifted-)window transformer blocks, conv, long residual), ``F_LR`` of size ``h x w x dim``;
- pixel branch: the Local Feature Interactor (LFI) lets every LR feature attend to itself, the 3x3 average-pooled
  vector and its 8 neighbours (10 tokens, shared projections, Eq. 1), giving ``F_LFI``;
- texture branch: the Texture Learner (TL) predicts amplitude, x-frequency and y-frequency maps with 3x3
  convolutions and a phase from the cell size through an MLP with a sigmoid, and evaluates
  ``F_TL = Amp * sin(FreqX * (x' - x) + FreqY * (y' - y) + Phase)`` at every queried HR coordinate (Eq. 2);
- Self-Texture Fusion (STF): for every query, the texture feature of the same decoding set with the highest cosine
  similarity is retrieved (hard attention, Eq. 3), fused with the pixel feature by an MLP and weighted by that
  similarity (soft attention): ``F_STF = Q + MLP([Q, A]) * S`` (Eq. 4);
- Local Pixel Decoder (LPD, Eq. 5) and Local Texture Decoder (LTD, Eq. 6): LIIF-style local ensembles over the four
  LR neighbours of each query, weighted by the opposite rectangle areas; their outputs are summed.

Every part is a switch (``lfi``, ``stf``, ``ltd``): the paper's Table 2 ablations are ``lfi=False``, ``stf=False``
and ``ltd=False``; with ``lfi=stf=ltd=False`` the network is LIIF (with the same encoder) and the texture branch is
not built at all.

Decisions where the paper is silent (see the bundle README): the attention logits of Eq. 1 are scaled by
``1/sqrt(d)`` (the usual placement) and LFI is residual; the cosine similarity of Eq. 3 is computed between learned
linear projections of the pixel and texture features (their widths differ); the retrieval pool of a query is the
set of queries decoded together (one training patch's 48^2 samples, one HR block at inference); the phase is
``pi * sigmoid(MLP(cell))``; the prediction is a residual over a bicubic up-sampling of the input (LTE's image
skip, switchable with ``image_skip``) and the last layers of both decoders start at zero, so an untrained network
is exactly that up-sampling.

The module is TorchScript-friendly: ``forward(image)`` up-samples by the stored default ``scale``, each
``block_size``-sided HR block one STF pool, decoding whole blocks ``decode_chunk`` queries at a time with the same
result as :meth:`ISTE.query` block by block, at a cost per output pixel that does not grow with the output (see
:meth:`ISTE.upsample`); ``forward(image, coord, cell)`` answers coordinate queries (training), and ``encode`` /
``query`` / ``upsample`` are exported for arbitrary scales and patch-wise use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..sr_ops import make_coord, validate_scale

__all__ = [
    "ISTE",
    "ISTE_VARIANTS",
    "LocalFeatureInteractor",
    "SelfTextureFusion",
    "SwinIREncoder",
    "TextureLearner",
    "validate_scale",  # defined in common.sr_ops; bundle configs call it as common.networks.validate_scale
]

#: the paper's Table 2 variants (and the LIIF-equivalent peer) as switch settings
ISTE_VARIANTS: dict[str, dict[str, bool]] = {
    "iste": {"lfi": True, "stf": True, "ltd": True},
    "without_lfi": {"lfi": False, "stf": True, "ltd": True},
    "without_stf": {"lfi": True, "stf": False, "ltd": True},
    "without_ltd": {"lfi": True, "stf": True, "ltd": False},
    "liif": {"lfi": False, "stf": False, "ltd": False},
}


# ---- SwinIR-style encoder -------------------------------------------------------------------------------------------


class _WindowAttention(nn.Module):
    """Multi-head self-attention inside ``window x window`` windows with a relative position bias (Swin)."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = float((dim // heads) ** -0.5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        pos = torch.stack([ys.flatten(), xs.flatten()])  # (2, window^2)
        rel = (pos[:, :, None] - pos[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("bias_index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.bias_table[self.bias_index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.reshape(bw // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.reshape(bw, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class _SwinBlock(nn.Module):
    """(Shifted-)window transformer block on channels-last maps whose sides are multiples of the window."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        # without autograd, maps of more tokens than this are processed a chunk of windows at a time
        self.chunk_tokens = 1 << 12

    def _partition(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window
        x = x.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, ws * ws, c)

    def _mask(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """-100 between tokens of a shifted window that come from different regions of the rolled map."""
        return self._mask_of(self._region_labels(h, w, device))

    def _region_labels(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """``(nW, ws^2)``: which region of the rolled map each token of each window comes from."""
        ws, s = self.window, self.shift
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        region_r = (rows >= h - ws).long() + (rows >= h - s).long()
        region_c = (cols >= w - ws).long() + (cols >= w - s).long()
        label = (region_r[:, None] * 3 + region_c[None, :]).to(torch.float32)
        return self._partition(label.reshape(1, h, w, 1)).squeeze(-1)

    @staticmethod
    def _mask_of(labels: torch.Tensor) -> torch.Tensor:
        diff = labels.unsqueeze(1) - labels.unsqueeze(2)
        return torch.where(diff != 0, torch.full_like(diff, -100.0), torch.zeros_like(diff))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window
        if not torch.is_grad_enabled() and b * h * w > self.chunk_tokens:  # inference on a large map
            return self._forward_chunked(x)
        y = self.norm1(x)
        mask: torch.Tensor | None = None
        if self.shift > 0:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = self._mask(h, w, x.device)
        y = self.attn(self._partition(y), mask)
        y = y.reshape(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))

    def _forward_chunked(self, x: torch.Tensor) -> torch.Tensor:
        """The same block, a bounded number of windows at a time (inference on large maps).

        Every operation of a block is per token or per window, so the windows can be processed in chunks; the MLP
        runs in the shifted, partitioned layout (it is per token). The attention matrices of the whole map (the
        largest tensor of the encoder, heads x 64 x 64 per window) never exist at once.
        """
        b, h, w, c = x.shape
        ws = self.window
        y = x
        labels: torch.Tensor | None = None
        if self.shift > 0:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            labels = self._region_labels(h, w, x.device)  # the masks are built per chunk: nW x ws^4 is large
        windows = self._partition(y)  # (b * nW, ws^2, c), a copy
        n_windows = (h // ws) * (w // ws)
        step = max(1, self.chunk_tokens // (ws * ws))
        for start in range(0, windows.shape[0], step):
            part = windows[start : start + step]
            part_mask: torch.Tensor | None = None
            if labels is not None:
                index = torch.arange(start, start + part.shape[0], device=x.device) % n_windows
                part_mask = self._mask_of(labels[index])
            part = part + self.attn(self.norm1(part), part_mask)
            windows[start : start + step] = part + self.mlp(self.norm2(part))
        y = windows.reshape(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        return y


class _ResidualSwinGroup(nn.Module):
    """SwinIR's residual Swin transformer block: alternating plain/shifted blocks, a 3x3 conv and a residual."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [_SwinBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio) for i in range(depth)]
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            y = block(y)
        return x + self.conv(y.permute(0, 3, 1, 2))


class SwinIREncoder(nn.Module):
    """SwinIR's feature extractor without the up-sampling tail: ``(B, 3, h, w) -> (B, dim, h, w)``.

    Inputs whose sides are not multiples of ``window`` are padded (replicated borders) and the features cropped back.

    Args:
        in_channels: image channels.
        dim: feature width (SwinIR's embed_dim; the paper's feature maps have 64 channels).
        depths: number of transformer blocks of each residual group.
        heads: attention heads of each residual group.
        window: attention window side.
        mlp_ratio: hidden width of the transformer MLPs relative to ``dim``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        dim: int = 32,
        depths: Sequence[int] = (2, 2),
        heads: Sequence[int] = (2, 2),
        window: int = 8,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        if len(depths) != len(heads) or any(dim % h for h in heads):
            raise ValueError(f"depths {list(depths)} and heads {list(heads)} must pair up and divide dim={dim}")
        self.window = window
        self.out_channels = dim
        self.conv_first = nn.Conv2d(in_channels, dim, 3, padding=1)
        self.groups = nn.ModuleList([_ResidualSwinGroup(dim, d, h, window, mlp_ratio) for d, h in zip(depths, heads)])
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not torch.jit.is_scripting():
            x = _plain(x)  # the window chunks slice the map: a batched MONAI MetaTensor refuses that
        h, w = x.shape[-2], x.shape[-1]
        pad_h = (self.window - h % self.window) % self.window
        pad_w = (self.window - w % self.window) % self.window
        x = F.pad((x - 0.5) / 0.5, [0, pad_w, 0, pad_h], mode="replicate")
        shallow = self.conv_first(x)
        y = shallow
        for group in self.groups:
            y = group(y)
        y = self.norm(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        y = shallow + self.conv_after_body(y)
        return y[:, :, :h, :w]


# ---- the two branches ----------------------------------------------------------------------------------------------


class LocalFeatureInteractor(nn.Module):
    """Local Feature Interactor (Eq. 1): each LR feature attends to itself, its 3x3 mean and its 8 neighbours.

    Query from the centre vector; keys and values from the 10 vectors with projections shared by all windows;
    borders replicate the edge features. The result is added to the input (residual).

    Args:
        dim: feature width.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = float(dim**-0.5)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:  # noqa: D102
        b, c, h, w = feat.shape
        padded = F.pad(feat, [1, 1, 1, 1], mode="replicate")
        window = F.unfold(padded, kernel_size=3).reshape(b, c, 9, h * w)  # 3x3 neighbourhood of every position
        pooled = window.mean(dim=2, keepdim=True)
        centre = window[:, :, 4:5]
        neighbours = torch.cat([window[:, :, :4], window[:, :, 5:]], dim=2)
        tokens = torch.cat([centre, pooled, neighbours], dim=2).permute(0, 3, 2, 1)  # (b, hw, 10, c)
        q = self.to_q(tokens[:, :, :1])
        k = self.to_k(tokens)
        v = self.to_v(tokens)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (b, hw, 1, 10)
        out = self.proj((attn @ v).squeeze(2))  # (b, hw, c)
        return feat + out.permute(0, 2, 1).reshape(b, c, h, w)


class TextureLearner(nn.Module):
    """Texture Learner (Eq. 2): amplitude / frequency maps on the LR grid and a phase from the cell size.

    ``maps(feat)`` returns ``[Amp, FreqX, FreqY]`` stacked on channels (3 x 3x3 convolutions);
    ``forward(amp, freq_x, freq_y, rel, rel_cell)`` evaluates the texture feature of queries whose offsets to their
    LR neighbour are ``rel`` (row, column; in LR pixels) and whose cell is ``rel_cell``.

    Args:
        dim: width of the LR features.
        texture_dim: width of the texture features (256 in the paper).
    """

    def __init__(self, dim: int, texture_dim: int = 64) -> None:
        super().__init__()
        self.texture_dim = texture_dim
        self.amplitude = nn.Conv2d(dim, texture_dim, 3, padding=1)
        self.freq_x = nn.Conv2d(dim, texture_dim, 3, padding=1)
        self.freq_y = nn.Conv2d(dim, texture_dim, 3, padding=1)
        self.phase = nn.Sequential(nn.Linear(2, texture_dim), nn.ReLU(), nn.Linear(texture_dim, texture_dim))

    def maps(self, feat: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.cat([self.amplitude(feat), self.freq_x(feat), self.freq_y(feat)], dim=1)

    def forward(  # noqa: D102
        self, amp: torch.Tensor, freq_x: torch.Tensor, freq_y: torch.Tensor, rel: torch.Tensor, rel_cell: torch.Tensor
    ) -> torch.Tensor:
        return self.evaluate(amp, freq_x, freq_y, rel, self.phase_of(rel_cell))

    def phase_of(self, rel_cell: torch.Tensor) -> torch.Tensor:
        """``Phase = pi * sigmoid(MLP(cell))`` for cells ``(..., 2)`` in LR-pixel units."""
        return math.pi * torch.sigmoid(self.phase(rel_cell))

    def evaluate(
        self, amp: torch.Tensor, freq_x: torch.Tensor, freq_y: torch.Tensor, rel: torch.Tensor, phase: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 2 with a precomputed phase (broadcast: one cell size serves a whole output grid)."""
        return amp * torch.sin(freq_x * rel[..., 1:2] + freq_y * rel[..., 0:1] + phase)


class SelfTextureFusion(nn.Module):
    """Self-Texture Fusion (Eqs. 3-4): retrieve the most similar texture feature of the decoding set and fuse it.

    Args:
        dim: width of the pixel features (query).
        texture_dim: width of the texture features (key and value).
        similarity_dim: width of the projections compared by cosine similarity.
    """

    def __init__(self, dim: int, texture_dim: int, similarity_dim: int = 32) -> None:
        super().__init__()
        self.to_q = nn.Linear(dim, similarity_dim)
        self.to_k = nn.Linear(texture_dim, similarity_dim)
        self.to_v = nn.Linear(texture_dim, dim)
        self.fuse = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(
        self,
        pixel: torch.Tensor,
        texture: torch.Tensor,
        unique_pixel: torch.Tensor | None = None,
        inverse: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``pixel (B, N, dim)``, ``texture (B, N, texture_dim)`` -> ``F_STF (B, N, dim)``.

        Many queries share their pixel feature (all the HR pixels nearest to one LR pixel), so identical rows of
        the similarity matrix need computing once: with ``unique_pixel (B, U, dim)`` and ``inverse (B, N)`` such
        that ``pixel[b, i] == unique_pixel[b, inverse[b, i]]``, the matrix is ``U x N`` instead of ``N x N`` and
        the result is the same (each query's arg max is that of its row).
        """
        if unique_pixel is None or inverse is None:
            q = F.normalize(self.to_q(pixel), dim=-1)
            k = F.normalize(self.to_k(texture), dim=-1)
            index = _most_similar(q, k)  # (B, N)
        else:
            q_unique = F.normalize(self.to_q(unique_pixel), dim=-1)
            k = F.normalize(self.to_k(texture), dim=-1)
            index = torch.gather(_most_similar(q_unique, k), 1, inverse)
            q = torch.gather(q_unique, 1, inverse.unsqueeze(-1).expand(-1, -1, q_unique.shape[-1]))
        k_best = torch.gather(k, 1, index.unsqueeze(-1).expand(-1, -1, k.shape[-1]))
        soft = (q * k_best).sum(dim=-1, keepdim=True)  # s_i = max_j r_ij, differentiable
        v = self.to_v(texture)
        retrieved = torch.gather(v, 1, index.unsqueeze(-1).expand(-1, -1, v.shape[-1]))
        return pixel + self.fuse(torch.cat([pixel, retrieved], dim=-1)) * soft


def _most_similar(q: torch.Tensor, k: torch.Tensor, budget: int = 1 << 18) -> torch.Tensor:
    """``argmax_j <q_i, k_j>`` for ``q (B, U, d)``, ``k (B, N, d)``: ``(B, U)`` indices into ``k``.

    Hard attention: the arg max needs no gradient, so the similarities are computed without a graph, and a band
    of rows at a time (about ``budget`` values, which stay in cache) so that the ``U x N`` matrix, written once and
    read once, never exists whole: with a narrow ``d`` that memory traffic, not the arithmetic, is the cost.
    """
    q, k_t = q.detach(), k.detach().transpose(1, 2).contiguous()
    rows = max(1, budget // max(1, k.shape[1]))
    if q.shape[1] <= rows:
        return torch.bmm(q, k_t).argmax(dim=-1)
    index = torch.empty(q.shape[0], q.shape[1], dtype=torch.long, device=q.device)
    for item in range(q.shape[0]):
        for start in range(0, q.shape[1], rows):
            index[item, start : start + rows] = (q[item, start : start + rows] @ k_t[item]).argmax(dim=-1)
    return index


def _mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU()]
        in_features = width
    last = nn.Linear(in_features, out_features)
    nn.init.zeros_(last.weight)  # decoders start at zero: the untrained network is the image skip
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class ISTE(nn.Module):
    """Dual-branch implicit network for arbitrary-scale super-resolution (see the module docstring).

    Args:
        in_channels: image channels (RGB: 3); the output has the same number.
        scale: default magnification of ``forward(image)`` (any float > 1).
        dim: width of the encoder features.
        depths: transformer blocks per residual group of the encoder.
        heads: attention heads per residual group.
        window: encoder attention window.
        mlp_ratio: encoder MLP width ratio.
        texture_dim: width of the Texture Learner features.
        similarity_dim: width of the STF similarity projections.
        decoder_hidden: hidden widths of the Local Pixel and Local Texture Decoder MLPs.
        lfi: use the Local Feature Interactor.
        stf: use Self-Texture Fusion.
        ltd: use the Local Texture Decoder.
        image_skip: ``"bicubic"``, ``"bilinear"`` or ``"none"``: what the decoded residual is added to.
        block_size: side of the HR blocks whose queries form one STF retrieval pool in ``forward(image)`` /
            ``upsample`` (a training patch's samples are the pool in training).
        decode_chunk: about how many HR queries ``upsample`` decodes at once (whole blocks, at least one); bounds
            the decoding memory whatever the output size and does not change the result.

    Raises:
        ValueError: for a scale that is not a number > 1, or an unknown ``image_skip``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        scale: float = 2.0,
        dim: int = 32,
        depths: Sequence[int] = (2, 2),
        heads: Sequence[int] = (2, 2),
        window: int = 8,
        mlp_ratio: float = 2.0,
        texture_dim: int = 64,
        similarity_dim: int = 32,
        decoder_hidden: Sequence[int] = (64, 64),
        lfi: bool = True,
        stf: bool = True,
        ltd: bool = True,
        image_skip: str = "bicubic",
        block_size: int = 48,
        decode_chunk: int = 4096,
    ) -> None:
        super().__init__()
        self.scale = validate_scale(scale)
        if image_skip not in ("bicubic", "bilinear", "none"):
            raise ValueError(f"image_skip must be one of ['bicubic', 'bilinear', 'none'], got '{image_skip}'")
        if block_size < 1:
            raise ValueError(f"block_size must be a positive number of HR pixels, got {block_size}")
        if decode_chunk < 1:
            raise ValueError(f"decode_chunk must be a positive number of queries, got {decode_chunk}")
        self.in_channels = in_channels
        self.dim = dim
        self.texture_dim = texture_dim if (stf or ltd) else 0
        self.use_stf = stf
        self.use_ltd = ltd
        self.image_skip = image_skip
        self.block_size = int(block_size)
        self.decode_chunk = int(decode_chunk)
        self.encoder = SwinIREncoder(in_channels, dim, depths, heads, window, mlp_ratio)
        self.lfi: LocalFeatureInteractor | None = LocalFeatureInteractor(dim) if lfi else None
        self.texture: TextureLearner | None = TextureLearner(dim, texture_dim) if (stf or ltd) else None
        self.fusion: SelfTextureFusion | None = SelfTextureFusion(dim, texture_dim, similarity_dim) if stf else None
        self.pixel_decoder = _mlp(dim + 4, decoder_hidden, in_channels)
        self.texture_decoder: nn.Sequential | None = _mlp(texture_dim, decoder_hidden, in_channels) if ltd else None

    @torch.jit.export
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """LR image ``(B, C, h, w)`` in [0, 1] -> latent ``(B, dim + 3 * texture_dim, h, w)``: the pixel features
        (``F_LFI``, or ``F_LR`` without LFI) followed by the Texture Learner's Amp, FreqX and FreqY maps.
        """  # noqa: D205
        return self._heads(self.encoder(image))

    def _heads(self, feat: torch.Tensor) -> torch.Tensor:
        """Encoder features -> latent (LFI and the Texture Learner's maps; both look at 3x3 neighbourhoods only)."""
        pixel = feat
        if self.lfi is not None:
            pixel = self.lfi(feat)
        if self.texture is not None:
            return torch.cat([pixel, self.texture.maps(feat)], dim=1)
        return pixel

    @torch.jit.export
    def query(self, image: torch.Tensor, latent: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """RGB at ``coord`` (``(B, N, 2)``, row/column in [-1, 1]) for HR pixels of size ``cell`` (``(B, N, 2)``).

        Args:
            image: the LR image the latent was encoded from (for the image skip).
            latent: output of :meth:`encode`.
            coord: query coordinates; all N queries of an item form the STF retrieval pool.
            cell: HR pixel size in the same units (``2 / H_out, 2 / W_out``).

        Returns:
            ``(B, N, C)`` predicted values.
        """
        b, _, h, w = latent.shape
        t = self.texture_dim
        lr_coord = make_coord(h, w, latent.device).t().reshape(1, 2, h, w).expand(b, 2, h, w)
        scale_hw = torch.tensor([float(h), float(w)], device=latent.device)
        rel_cell = cell * scale_hw
        preds: list[torch.Tensor] = []
        areas: list[torch.Tensor] = []
        for vy in [-1.0, 1.0]:
            for vx in [-1.0, 1.0]:
                shift = torch.tensor([vy / h + 1e-6, vx / w + 1e-6], device=latent.device)
                shifted = (coord + shift).clamp(-1 + 1e-6, 1 - 1e-6)
                grid = shifted.flip(-1).unsqueeze(1)  # grid_sample wants (x, y)
                sampled = F.grid_sample(latent, grid, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
                q_coord = F.grid_sample(lr_coord, grid, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
                rel = (coord - q_coord) * scale_hw  # offset to the LR neighbour, in LR pixels
                pixel = sampled[..., : self.dim]
                rgb = torch.zeros(b, coord.shape[1], self.in_channels, device=latent.device, dtype=latent.dtype)
                if self.texture is not None:
                    amp = sampled[..., self.dim : self.dim + t]
                    freq_x = sampled[..., self.dim + t : self.dim + 2 * t]
                    freq_y = sampled[..., self.dim + 2 * t : self.dim + 3 * t]
                    texture = self.texture(amp, freq_x, freq_y, rel, rel_cell)
                    if self.fusion is not None:
                        pixel = self.fusion(pixel, texture)
                    if self.texture_decoder is not None:
                        rgb = rgb + self.texture_decoder(texture)
                rgb = rgb + self.pixel_decoder(torch.cat([pixel, rel, rel_cell], dim=-1))
                preds.append(rgb)
                areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
        total = areas[0] + areas[1] + areas[2] + areas[3]
        out = torch.zeros_like(preds[0])
        for i in range(4):  # each neighbour is weighted by the area of the rectangle opposite to it
            out = out + preds[i] * (areas[3 - i] / total).unsqueeze(-1)
        if self.image_skip != "none":
            skip = F.grid_sample(
                image, coord.flip(-1).unsqueeze(1), mode=self.image_skip, padding_mode="border", align_corners=False
            )
            out = out + skip[:, :, 0].permute(0, 2, 1)
        return out

    @torch.jit.export
    def upsample(self, image: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
        """Super-resolve ``image`` to ``out_h x out_w``: the same result as :meth:`query` on every HR block.

        Every ``block_size``-sided HR block is one retrieval pool, as if :meth:`query` were called block by block,
        but the decoding costs the same per output pixel whatever the output size:

        - the geometry is separable: the LR neighbour and the offset of every HR row (column) are computed once
          per axis, and the features are gathered by index;
        - the latent (LFI and the texture maps) is computed region by region from the encoder features, with a
          one-pixel halo, so no full-size latent exists; whole blocks are decoded ``decode_chunk`` queries at a
          time, the four LR neighbours of the local ensemble batched together;
        - STF compares each block's textures only with the distinct pixel features of the block (all HR pixels
          nearest to one LR pixel share it): ``(block / scale)^2`` rows of similarity instead of ``block^2``;
        - the phase depends on the cell only, one value per output grid.
        """
        if not torch.jit.is_scripting():
            image = _plain(image)  # a batched MONAI MetaTensor refuses the spatial slicing below; the output is plain
        b = image.shape[0]
        device = image.device
        feat = self.encoder(image)
        h, w = feat.shape[-2], feat.shape[-1]
        coord = make_coord(out_h, out_w, device)
        if self.image_skip != "none":
            grid = coord.reshape(1, out_h, out_w, 2).flip(-1).expand(b, out_h, out_w, 2)
            out = F.grid_sample(image, grid, mode=self.image_skip, padding_mode="border", align_corners=False)
        else:
            out = torch.zeros(b, self.in_channels, out_h, out_w, device=device, dtype=image.dtype)
        ys = coord.reshape(out_h, out_w, 2)[:, 0, 0].contiguous()
        xs = coord.reshape(out_h, out_w, 2)[0, :, 1].contiguous()
        rows = [_nearest_cells(ys, h, -1.0), _nearest_cells(ys, h, 1.0)]
        cols = [_nearest_cells(xs, w, -1.0), _nearest_cells(xs, w, 1.0)]
        row_index = torch.stack([rows[0][0], rows[1][0]])  # (2, out_h): the up / down neighbour of every HR row
        row_rel = torch.stack([rows[0][1], rows[1][1]])
        col_index = torch.stack([cols[0][0], cols[1][0]])
        col_rel = torch.stack([cols[0][1], cols[1][1]])
        cell_hw = torch.tensor([2.0 / out_h, 2.0 / out_w], device=device)
        rel_cell = cell_hw * torch.tensor([float(h), float(w)], device=device)
        phase = torch.zeros(1, device=device)
        if self.texture is not None:
            phase = self.texture.phase_of(rel_cell.reshape(1, 1, 2))
        bs = self.block_size
        per_group = max(1, self.decode_chunk // (bs * bs))
        full = out_w // bs
        for top in range(0, out_h, bs):
            bh = min(bs, out_h - top)
            for first in range(0, full, per_group):
                count = min(per_group, full - first)
                left = first * bs
                out[:, :, top : top + bh, left : left + count * bs] += self._decode_blocks(
                    feat, top, bh, left, count, bs, row_index, row_rel, col_index, col_rel, rel_cell, phase
                )
            if full * bs < out_w:  # the partial block of the right border
                left = full * bs
                out[:, :, top : top + bh, left:] += self._decode_blocks(
                    feat, top, bh, left, 1, out_w - left, row_index, row_rel, col_index, col_rel, rel_cell, phase
                )
        return out

    def _decode_blocks(
        self,
        feat: torch.Tensor,
        top: int,
        bh: int,
        left: int,
        count: int,
        bw: int,
        row_index: torch.Tensor,
        row_rel: torch.Tensor,
        col_index: torch.Tensor,
        col_rel: torch.Tensor,
        rel_cell: torch.Tensor,
        phase: torch.Tensor,
    ) -> torch.Tensor:
        """Decoded residual ``(B, C, bh, count * bw)`` of ``count`` side-by-side ``bh x bw`` blocks at (top, left)."""
        b, h, w = feat.shape[0], feat.shape[2], feat.shape[3]
        device = feat.device
        rows_i = row_index[:, top : top + bh]  # (2, bh)
        cols_i = col_index[:, left : left + count * bw]  # (2, count * bw)
        r_lo, r_hi = int(rows_i.min()), int(rows_i.max())
        c_lo, c_hi = int(cols_i.min()), int(cols_i.max())
        # the latent of the LR cells these blocks use; the halo makes the 3x3 operations see real neighbours
        r0, r1, c0, c1 = max(r_lo - 1, 0), min(r_hi + 2, h), max(c_lo - 1, 0), min(c_hi + 2, w)
        latent = self._heads(feat[:, :, r0:r1, c0:c1])[:, :, r_lo - r0 : r_hi - r0 + 1, c_lo - c0 : c_hi - c0 + 1]
        lh, lw, channels = latent.shape[2], latent.shape[3], latent.shape[1]
        # channels-last rows, batch folded in: gathering rows of a 2-D table is a plain copy per query
        latent = latent.permute(0, 2, 3, 1).reshape(b * lh * lw, channels)
        batch_offset = (torch.arange(b, device=device) * (lh * lw)).unsqueeze(1)
        # the 4 LR neighbours (up-left, up-right, down-left, down-right, as in query) one after the other: each is
        # its own STF pool, and one at a time keeps the gathered features (count x block^2 x channels) in cache
        n = bh * bw
        rels: list[torch.Tensor] = []
        for i in range(4):
            rel_y = row_rel[i // 2, top : top + bh].reshape(1, bh, 1).expand(count, bh, bw)
            rel_x = col_rel[i % 2, left : left + count * bw].reshape(count, 1, bw).expand(count, bh, bw)
            rels.append(torch.stack([rel_y, rel_x], dim=-1).reshape(count, n, 2))
        areas = [(rel[..., 0] * rel[..., 1]).abs() + 1e-9 for rel in rels]
        total = areas[0] + areas[1] + areas[2] + areas[3]
        res = torch.zeros(b, count, n, self.in_channels, device=device, dtype=feat.dtype)
        for i in range(4):  # each neighbour is weighted by the area of the rectangle opposite to it (as in query)
            item_rows = (rows_i[i // 2] - r_lo).reshape(1, bh).expand(count, bh)
            item_cols = (cols_i[i % 2] - c_lo).reshape(count, bw)
            pred = self._decode_neighbour(latent, batch_offset, lw, lh, item_rows, item_cols, rels[i], rel_cell, phase)
            res = res + pred.reshape(b, count, n, -1) * (areas[3 - i] / total).unsqueeze(-1)
        return res.reshape(b, count, bh, bw, -1).permute(0, 4, 2, 1, 3).reshape(b, -1, bh, count * bw)

    def _decode_neighbour(
        self,
        latent: torch.Tensor,
        batch_offset: torch.Tensor,
        lw: int,
        lh: int,
        item_rows: torch.Tensor,
        item_cols: torch.Tensor,
        rel: torch.Tensor,
        rel_cell: torch.Tensor,
        phase: torch.Tensor,
    ) -> torch.Tensor:
        """RGB ``(B * items, n, C)`` of the queries of ``items`` blocks decoded from one LR neighbour each.

        ``latent`` is ``(B * lh * lw, channels)`` (channels last, batch folded in, ``batch_offset`` the first row of
        each image); ``item_rows (items, bh)`` / ``item_cols (items, bw)`` the neighbour's cell of every HR row /
        column of each block; ``rel (items, n, 2)`` the offsets to it.
        """
        b = batch_offset.shape[0]
        items, bh, bw = item_rows.shape[0], item_rows.shape[1], item_cols.shape[1]
        n, channels, device = bh * bw, latent.shape[1], latent.device
        lin = (item_rows.unsqueeze(2) * lw + item_cols.unsqueeze(1)).reshape(items * n)
        sampled = latent.index_select(0, (batch_offset + lin).reshape(-1)).reshape(b * items, n, channels)
        rel_b = rel.unsqueeze(0).expand(b, items, n, 2).reshape(b * items, n, 2)
        pixel = sampled[..., : self.dim]
        t = self.texture_dim
        texture_rgb: torch.Tensor | None = None
        if self.texture is not None:
            amp = sampled[..., self.dim : self.dim + t]
            freq_x = sampled[..., self.dim + t : self.dim + 2 * t]
            freq_y = sampled[..., self.dim + 2 * t : self.dim + 3 * t]
            texture = self.texture.evaluate(amp, freq_x, freq_y, rel_b, phase)
            if self.fusion is not None:
                # the distinct pixel features of each block: the rectangle of LR cells its queries are nearest to
                first_r, first_c = item_rows[:, 0], item_cols[:, 0]
                n_r = int((item_rows[:, -1] - first_r).max()) + 1
                n_c = int((item_cols[:, -1] - first_c).max()) + 1
                rect_r = (first_r.unsqueeze(1) + torch.arange(n_r, device=device)).clamp(max=lh - 1)
                rect_c = (first_c.unsqueeze(1) + torch.arange(n_c, device=device)).clamp(max=lw - 1)
                rect = (rect_r.unsqueeze(2) * lw + rect_c.unsqueeze(1)).reshape(items * n_r * n_c)
                unique = latent[:, : self.dim].index_select(0, (batch_offset + rect).reshape(-1))
                unique = unique.reshape(b * items, n_r * n_c, self.dim)
                inverse = (item_rows - first_r.unsqueeze(1)).unsqueeze(2) * n_c
                inverse = (inverse + (item_cols - first_c.unsqueeze(1)).unsqueeze(1)).reshape(1, items, n)
                inverse = inverse.expand(b, items, n).reshape(b * items, n)
                pixel = self.fusion(pixel, texture, unique, inverse)
            if self.texture_decoder is not None:
                texture_rgb = self.texture_decoder(texture)
        rgb = self.pixel_decoder(torch.cat([pixel, rel_b, rel_cell.reshape(1, 1, 2).expand(b * items, n, 2)], -1))
        if texture_rgb is not None:
            rgb = texture_rgb + rgb
        return rgb

    def forward(
        self, image: torch.Tensor, coord: torch.Tensor | None = None, cell: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``forward(image)``: up-sample by the default scale; ``forward(image, coord, cell)``: answer queries."""
        if coord is not None and cell is not None:
            return self.query(image, self.encode(image), coord, cell)
        h, w = image.shape[-2], image.shape[-1]
        return self.upsample(image, int(math.floor(h * self.scale + 0.5)), int(math.floor(w * self.scale + 0.5)))


@torch.jit.unused
def _plain(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a plain ``torch.Tensor`` (a subclass such as MONAI's MetaTensor carries batch metadata along)."""
    return x.as_subclass(torch.Tensor) if type(x) is not torch.Tensor else x


def _nearest_cells(coords: torch.Tensor, size: int, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The LR cell :meth:`ISTE.query` uses for one axis of its local ensemble, and the offset to its centre.

    Args:
        coords: query coordinates along the axis, in [-1, 1] (``(n,)``).
        size: number of LR cells along the axis.
        offset: -1 or +1: the neighbour before or after (``query``'s ``vy`` / ``vx``).

    Returns:
        ``(index (n,) long, rel (n,) float)`` in LR pixels, computed with the same operations as ``query``.
    """
    shift = torch.tensor(offset / size + 1e-6, device=coords.device)
    shifted = (coords + shift).clamp(-1 + 1e-6, 1 - 1e-6)
    # grid_sample itself picks the nearest cell (its own rounding), so ties resolve exactly as in query
    ramp = torch.arange(size, device=coords.device, dtype=torch.float32).reshape(1, 1, size, 1)
    grid = torch.stack([torch.zeros_like(shifted), shifted], dim=-1).reshape(1, 1, -1, 2)
    index = F.grid_sample(ramp, grid, mode="nearest", align_corners=False).reshape(-1).long()
    centres = (torch.arange(size, device=coords.device, dtype=torch.float32) * 2 + 1) / size - 1
    rel = (coords - centres[index]) * torch.tensor(float(size), device=coords.device)
    return index, rel
