"""The 5-convolution breast ultrasound CNN of Karlsson et al. (ICPR 2024) with optional MOOD-style early exits.

Trunk (paper, Sect. 4.1): five 3x3 convolutions with 32, 64, 128, 128, 128 filters, each followed by ReLU,
dropout 0.2 and 2x2 max pooling (stride 2); then dropout 0.5, flatten, a 512-unit fully connected layer, ReLU,
dropout 0.5 and a 3-unit fully connected layer (logits; softmax is applied outside the network).

Early exits (paper, Sect. 4.3): two extra classifiers, each one 3x3 convolution with 128 filters, ReLU, 2x2 max
pooling and a fully connected layer to the class logits (no activation). The paper only draws where they attach
(its Fig. 4 is not in the text); here they read the outputs of the 2nd and 3rd convolution blocks by default
(``exit_after=(2, 3)``). Training sums three cross-entropies weighted 0.5, 0.5, 1.0 (:class:`MultiExitLoss`).

TorchScript: ``forward(x)`` returns ONE tensor, the final exit's logits ``[B, num_classes]`` (the classifier
path; what MONAI's ``ckpt_export`` scripts and what MONAI Label runs). ``forward_exits(x)`` (``@torch.jit.export``,
so it survives scripting) returns every exit's logits stacked ``[B, num_exits, num_classes]``, the last one equal
to ``forward(x)`` in eval mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EarlyExitCNN", "MultiExitLoss", "PAPER_CHANNELS"]

#: filters of the five convolutions in the paper
PAPER_CHANNELS = (32, 64, 128, 128, 128)


def _conv_out(size: int, padding: int) -> int:
    """Spatial size after a 3x3 convolution (stride 1) and a 2x2 stride-2 max pooling (floor)."""
    return (size + 2 * padding - 2) // 2


class EarlyExitCNN(nn.Module):
    """Karlsson et al.'s classification CNN, optionally with two early-exit classifiers.

    Args:
        in_channels: input channels (1: grey B-mode).
        num_classes: classes (3: normal, benign, malignant).
        spatial_size: input height and width (the fully connected layer is sized for it); 180 in the paper.
        channels: filters of the five convolutions (the paper's 32, 64, 128, 128, 128; smaller for quick runs).
        fc_units: units of the hidden fully connected layer (512 in the paper).
        exit_channels: filters of each early-exit convolution (128 in the paper).
        exit_after: 1-based indices of the convolution blocks whose outputs feed the early exits; empty for the
            plain network (the deep-ensemble members).
        padding: ``"valid"`` (Keras' default: 180 -> 3x3 maps before flattening) or ``"same"`` (-> 5x5).
        conv_dropout: dropout after each convolution (0.2).
        fc_dropout: dropout before and after the hidden fully connected layer (0.5).

    Raises:
        ValueError: for a wrong number of channels, an unknown padding, exit indices outside 1..4 or an input
            size too small for the five blocks.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        spatial_size: int | Sequence[int] = 180,
        channels: Sequence[int] = PAPER_CHANNELS,
        fc_units: int = 512,
        exit_channels: int = 128,
        exit_after: Sequence[int] = (2, 3),
        padding: str = "valid",
        conv_dropout: float = 0.2,
        fc_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) != 5:
            raise ValueError(f"channels must list the filters of the five convolutions, got {channels}")
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got '{padding}'")
        exit_after = tuple(int(i) for i in exit_after)
        if any(i < 1 or i > 4 for i in exit_after) or list(exit_after) != sorted(set(exit_after)):
            raise ValueError(f"exit_after must be increasing block indices in 1..4, got {list(exit_after)}")
        sizes = [spatial_size] * 2 if isinstance(spatial_size, int) else [int(s) for s in spatial_size]
        pad = 1 if padding == "same" else 0
        self.num_classes = int(num_classes)
        self.exit_after = exit_after
        self.blocks = nn.ModuleList()
        block_sizes: list[list[int]] = []
        previous = in_channels
        for filters in channels:
            self.blocks.append(
                nn.Sequential(
                    nn.Conv2d(previous, filters, 3, padding=pad),
                    nn.ReLU(),
                    nn.Dropout(conv_dropout),
                    nn.MaxPool2d(2, 2),
                )
            )
            sizes = [_conv_out(s, pad) for s in sizes]
            if min(sizes) < 1:
                raise ValueError(f"input size {spatial_size} is too small for five conv + pool blocks")
            block_sizes.append(sizes)
            previous = filters
        self.head = nn.Sequential(
            nn.Dropout(fc_dropout),
            nn.Flatten(),
            nn.Linear(previous * sizes[0] * sizes[1], fc_units),
            nn.ReLU(),
            nn.Dropout(fc_dropout),
            nn.Linear(fc_units, num_classes),
        )
        self.exits = nn.ModuleList()
        for index in exit_after:
            exit_sizes = [_conv_out(s, pad) for s in block_sizes[index - 1]]
            self.exits.append(
                nn.Sequential(
                    nn.Conv2d(channels[index - 1], exit_channels, 3, padding=pad),
                    nn.ReLU(),
                    nn.MaxPool2d(2, 2),
                    nn.Flatten(),
                    nn.Linear(exit_channels * exit_sizes[0] * exit_sizes[1], num_classes),
                )
            )
        # 0-based block index after which each exit reads; the trailing -1 keeps the list non-empty, so TorchScript
        # infers List[int] also for the plain network
        self._exit_blocks = [i - 1 for i in exit_after] + [-1]

    @property
    def num_exits(self) -> int:
        """Number of classifiers: early exits plus the final one."""
        return len(self.exits) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Final-exit class logits ``[B, num_classes]`` (the classifier used for prediction)."""
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    @torch.jit.export
    def forward_exits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every exit, early exits first: ``[B, num_exits, num_classes]``."""
        outputs: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            for j, head in enumerate(self.exits):
                if self._exit_blocks[j] == i:
                    outputs.append(head(x))
        outputs.append(self.head(x))
        return torch.stack(outputs, dim=1)


class MultiExitLoss(nn.Module):
    """Weighted sum of cross-entropies over the exits (paper: 0.5, 0.5, 1.0 for exit 1, exit 2, final).

    Args:
        exit_weights: one weight per exit, early exits first.
        class_weights: per-class weights of each cross-entropy (the paper weights classes to equal influence);
            ``None`` for unweighted.

    ``forward(pred, target)`` takes ``pred`` of shape ``[B, num_exits, C]`` (from ``forward_exits``) or
    ``[B, C]`` (a single exit: plain weighted cross-entropy) and integer ``target`` of shape ``[B]`` or ``[B, 1]``.
    """

    def __init__(
        self, exit_weights: Sequence[float] = (0.5, 0.5, 1.0), class_weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.exit_weights = [float(w) for w in exit_weights]
        weight = None if class_weights is None else torch.as_tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weight, persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        target = target.reshape(-1).long()
        weight = None if self.class_weights is None else self.class_weights.to(pred.device)
        if pred.ndim == 2:
            return F.cross_entropy(pred, target, weight=weight)
        if pred.shape[1] != len(self.exit_weights):
            raise ValueError(f"got {pred.shape[1]} exits but {len(self.exit_weights)} exit weights")
        losses = [w * F.cross_entropy(pred[:, k], target, weight=weight) for k, w in enumerate(self.exit_weights)]
        return torch.stack(losses).sum()
