"""Image classifiers of the two skin papers behind one switch, with their Grad-CAM layers and local weight loading.

Bolelli et al. (ABCDE) use EfficientNet-B3 and ResNet-152; Kanekar et al. (cutaneous diseases) compare VGG16,
ResNet-18, ResNet-50, MobileNet-V2 and EfficientNet-V2. MONAI's EfficientNet and ResNet and torchvision's VGG,
MobileNet and EfficientNet-V2 builders are used as they are, randomly initialised: ImageNet weights cannot be
downloaded here, so :func:`load_pretrained_weights` reads a local checkpoint instead (every parameter whose name and
shape match; the classification layer is kept random when the class count differs).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from .fusion_autoencoder import efficientnet_classifier

__all__ = ["SKIN_CLASSIFIERS", "gradcam_target_layer", "load_pretrained_weights", "skin_classifier"]

logger = logging.getLogger(__name__)

# name -> Grad-CAM target layer (the last spatial feature map before global pooling)
SKIN_CLASSIFIERS = {
    "efficientnet-mini": "_bn1",  # CPU-sized EfficientNet (the sample)
    **{f"efficientnet-b{k}": "_bn1" for k in range(8)},
    "resnet-mini": "layer4",  # ResNet with one basic block per stage and widths 16..128 (the sample)
    "resnet18": "layer4",
    "resnet34": "layer4",
    "resnet50": "layer4",
    "resnet101": "layer4",
    "resnet152": "layer4",
    "vgg16": "features",
    "mobilenet_v2": "features",
    "efficientnet_v2_s": "features",
    "efficientnet_v2_m": "features",
    "efficientnet_v2_l": "features",
}


def skin_classifier(
    arch: str, num_classes: int, in_channels: int = 3, image_size: int = 64, weights_path: str | None = None
) -> nn.Module:
    """Build classifier ``arch`` (a key of :data:`SKIN_CLASSIFIERS`) with ``num_classes`` logits.

    Args:
        arch: network name.
        num_classes: output logits (9 for ISIC 2019 + unknown, 4 for the cutaneous diseases).
        in_channels: input channels (MONAI networks only; the torchvision ones take RGB).
        image_size: input side (EfficientNet's same-padding of the mini variant).
        weights_path: optional local checkpoint (e.g. ImageNet weights) loaded by :func:`load_pretrained_weights`.

    Raises:
        ValueError: unknown ``arch`` or a torchvision network with ``in_channels`` other than 3.
    """
    if arch not in SKIN_CLASSIFIERS:
        raise ValueError(f"unknown classifier '{arch}'; choose one of {sorted(SKIN_CLASSIFIERS)}")
    if arch.startswith("efficientnet-"):
        model = efficientnet_classifier(arch, num_classes, in_channels, bn_momentum=0.1, image_size=image_size)
    elif arch.startswith("resnet"):
        from monai.networks.nets import ResNet
        from monai.networks.nets.resnet import get_inplanes

        block, layers = {
            "resnet-mini": ("basic", [1, 1, 1, 1]),
            "resnet18": ("basic", [2, 2, 2, 2]),
            "resnet34": ("basic", [3, 4, 6, 3]),
            "resnet50": ("bottleneck", [3, 4, 6, 3]),
            "resnet101": ("bottleneck", [3, 4, 23, 3]),
            "resnet152": ("bottleneck", [3, 8, 36, 3]),
        }[arch]
        inplanes = [16, 32, 64, 128] if arch == "resnet-mini" else get_inplanes()
        model = ResNet(block, layers, inplanes, spatial_dims=2, n_input_channels=in_channels, num_classes=num_classes)
    else:
        import torchvision

        if in_channels != 3:
            raise ValueError(f"'{arch}' (torchvision) takes RGB input; got in_channels={in_channels}")
        model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    if weights_path:
        load_pretrained_weights(model, weights_path)
    return model


def gradcam_target_layer(arch: str) -> str:
    """Name of the layer whose activations Grad-CAM weights (``monai.visualize.GradCAM(target_layers=...)``)."""
    if arch not in SKIN_CLASSIFIERS:
        raise ValueError(f"unknown classifier '{arch}'; choose one of {sorted(SKIN_CLASSIFIERS)}")
    return SKIN_CLASSIFIERS[arch]


def load_pretrained_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Copy every tensor of a local checkpoint whose name and shape match ``model``'s; return the names copied.

    Accepts a plain state dict or one nested under ``state_dict`` / ``model``; a ``module.`` prefix (DataParallel)
    is removed.

    Raises:
        FileNotFoundError: ``path`` does not exist (nothing is downloaded).
        ValueError: no tensor matches (the checkpoint belongs to another architecture).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained weights not found (nothing is downloaded; give a local file)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not matched:
        raise ValueError(f"{path}: no tensor matches the network's names and shapes (another architecture?)")
    model.load_state_dict(matched, strict=False)
    skipped = sorted(set(own) - set(matched))
    logger.info(f"loaded {len(matched)} tensors from {path}; kept {len(skipped)} initialised ({skipped[:3]} ...)")
    return sorted(matched)
