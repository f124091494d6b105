"""RetinaNet on CAWE / colorization-enhanced radiographs: the paper's Table 1 rows as one switch.

:class:`EnhancedRetinaNet` is one module holding the frozen enhancement networks (the CAWE classifier and the
colorization generator, each trained by its own stage) and the trained MONAI RetinaNet. Its forward pass takes the
grey image in ``[0, 1]``, builds ``I`` (grey repeated to RGB, or the colorization), fuses it with ``L_CAWE`` by Eq. 7
when CAWE is on, standardises each image and returns RetinaNet's head maps. Keeping the enhancement inside the
network means ``model.pt`` holds every weight the method needs (MONAI Label and a TorchScript export run it from that
one file) and evaluation, inference and deployment cannot enhance differently from training.

``enhancement``: ``baseline`` (RetinaNet), ``color`` (+Color), ``cawe`` (+CAWE), ``color_cawe`` (+Color+CAWE).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.apps.detection.networks.retinanet_network import RetinaNet
from torch import Tensor, nn

from ..transforms.cawe_fusion import cawe_fusion
from .cawe import CAWEClassifier, cawe_closed_form
from .colorization import ColorizationGenerator
from .detection import ANCHOR_SIZES, ASPECT_RATIOS, retinanet

__all__ = ["ENHANCEMENTS", "EnhancedRetinaNet", "scaled_anchor_sizes"]

ENHANCEMENTS: dict[str, tuple[bool, bool]] = {
    "baseline": (False, False),
    "color": (True, False),
    "cawe": (False, True),
    "color_cawe": (True, True),
}
"""Table 1's rows: enhancement name -> (colorize, CAWE fusion)."""


def scaled_anchor_sizes(image_size: int, reference: int = 256) -> list[list[int]]:
    """:data:`common.networks.ANCHOR_SIZES` scaled by ``image_size / reference`` (at least 4 px).

    Pneumonia opacities cover a sizeable part of a lung field, so at the paper's 512 px input the anchors span
    32..384 px; the 128 px sample input gets 8..96 px.
    """
    return [[max(4, int(round(s * image_size / reference))) for s in level] for level in ANCHOR_SIZES]


class EnhancedRetinaNet(nn.Module):
    """Enhancement (Eq. 7) + MONAI RetinaNet with a ResNet FPN, as one exportable network.

    Args:
        enhancement: a key of :data:`ENHANCEMENTS`.
        backbone: the detector's ResNet (``resnet50`` in the paper; ``resnet18`` for the CPU sample).
        num_classes: detected classes (1: lung opacity).
        classifier: the CAWE classifier's ResNet (``resnet50`` in the paper).
        cawe_classes: its image-level classes (1 intra-dataset; CheXpert's 14 inter-dataset).
        cawe_threshold: class activation threshold on the probabilities.
        colorizer_depth: the generator's ResNet encoder depth (34 in the paper).
        colorizer_width: the generator's last decoder width.
        alpha: Eq. 7's balance.
        anchor_sizes: anchor sides per FPN level (default :data:`common.networks.ANCHOR_SIZES`).
        aspect_ratios: anchor ratios.
        fpn_channels: FPN and head width (None: 256).
        use_list_output: head maps as a list (traceable; accepted by ``RetinaNetDetector``).

    Raises:
        ValueError: unknown enhancement.
    """

    def __init__(
        self,
        enhancement: str = "color_cawe",
        backbone: str = "resnet50",
        num_classes: int = 1,
        classifier: str = "resnet50",
        cawe_classes: int = 1,
        cawe_threshold: float = 0.5,
        colorizer_depth: int = 34,
        colorizer_width: int = 32,
        alpha: float = 0.5,
        anchor_sizes: Sequence[Sequence[int]] = ANCHOR_SIZES,
        aspect_ratios: Sequence[float] = ASPECT_RATIOS,
        fpn_channels: int | None = None,
        use_list_output: bool = True,
    ) -> None:
        super().__init__()
        if enhancement not in ENHANCEMENTS:
            raise ValueError(f"unknown enhancement '{enhancement}'; choose one of {list(ENHANCEMENTS)}")
        self.enhancement = enhancement
        self.use_color, self.use_cawe = ENHANCEMENTS[enhancement]
        self.alpha, self.cawe_threshold = float(alpha), float(cawe_threshold)
        self.detector: RetinaNet = retinanet(
            backbone,
            num_classes=num_classes,
            in_channels=3,
            anchor_sizes=anchor_sizes,
            aspect_ratios=aspect_ratios,
            fpn_channels=fpn_channels,
            use_list_output=use_list_output,
        )
        self.classifier = CAWEClassifier(classifier, cawe_classes, in_channels=1) if self.use_cawe else None
        self.colorizer = ColorizationGenerator(colorizer_depth, colorizer_width) if self.use_color else None
        for module in (self.classifier, self.colorizer):
            if module is not None:
                module.requires_grad_(False).eval()  # trained by their own stages, frozen here
        # what RetinaNetDetector reads from its network
        for name in ("spatial_dims", "num_classes", "size_divisible", "cls_key", "box_reg_key", "num_anchors"):
            setattr(self, name, getattr(self.detector, name))
        self.use_list_output = use_list_output

    def train(self, mode: bool = True) -> EnhancedRetinaNet:
        """Train mode for the detector only: the frozen enhancement networks stay in eval mode."""
        super().train(mode)
        for module in (self.classifier, self.colorizer):
            if module is not None:
                module.eval()
        return self

    def cawe_map(self, images: Tensor) -> Tensor:
        """``L_CAWE`` ``(B, 1, ...)`` of grey ``(B, 1, ...)`` images (zeros without a CAWE classifier)."""
        if self.classifier is None:
            return torch.zeros_like(images[:, :1])
        with torch.no_grad():
            return cawe_closed_form(self.classifier, images[:, :1], self.cawe_threshold)

    def enhance(self, images: Tensor) -> Tensor:
        """``I_en`` (Eq. 7) of grey ``(B, 1, ...)`` images in ``[0, 1]``: 3 channels, before standardisation."""
        grey = images[:, :1]
        with torch.no_grad():
            base = self.colorizer(grey) if self.colorizer is not None else grey.repeat(1, 3, 1, 1)
            if self.classifier is not None:
                base = cawe_fusion(base, self.cawe_map(grey), self.alpha)
        return base

    def forward(self, images: Tensor) -> Any:
        """RetinaNet's head maps of the enhanced, per-image standardised images."""
        x = self.enhance(images)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        return self.detector((x - mean) / std)
