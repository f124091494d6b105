"""Class-aware attention weight extraction (CAWE) from a ResNet classifier trained on image-level labels.

Paper (class-aware attention lesion detection, Eqs. 1-2): for an image, the *activated* classes are those whose
probability exceeds a threshold; the gradient of the sum of their probabilities with respect to the last
convolutional feature maps ``F^k`` goes through a ReLU and is averaged over each map (``w_k``, Eq. 1), and
``L_CAWE = ReLU(sum_k w_k F^k)`` (Eq. 2) is upsampled bilinearly to the image.

How it differs from Grad-CAM: Grad-CAM explains one class (the arg-max logit by default), weights each map by the
plain spatial mean of the gradient of that logit, and so lets negative gradients cancel positive ones; CAWE sums
the *probabilities* of every activated class (several findings at once, multi-label), and passes the gradient
through a ReLU *before* the spatial mean, so only cells that raise the activated classes count.

Two implementations, tested to agree:

- :class:`CAWE` is MONAI's CAM machinery (``monai.visualize.GradCAM`` and its ``ModelWithHooks``) with Eq. 1's
  weights: the hooked "class score" is the sum of the activated classes' probabilities (:class:`ActivatedClassSum`).
  It works for any classifier and target layer (autograd through hooks), but cannot be exported.
- :func:`cawe_closed_form` is the same map for a classifier whose head is global average pooling + a linear layer +
  sigmoid (the ResNet here, as in CAM): the gradient of ``sum_l p_l`` w.r.t. ``F^k_ij`` is
  ``sum_l p_l (1 - p_l) W_lk / (h w)``, the same at every cell, so Eq. 1 is ``ReLU`` of it. No autograd, so it runs
  inside a detector's forward pass, under ``torch.no_grad`` and in a TorchScript trace.

Both normalise the map by its per-image maximum (0 stays 0, the strongest cell becomes 1), because Eq. 7 multiplies
the image by it; an image without any activated class gets an all-zero map (a decision: the paper does not say).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.nets import ResNet
from monai.networks.nets.resnet import get_inplanes
from monai.visualize import GradCAM
from torch import Tensor, nn

from .skin_classifiers import load_pretrained_weights

__all__ = [
    "CAWE",
    "CAWE_CLASSIFIERS",
    "ActivatedClassSum",
    "CAWEClassifier",
    "cawe_closed_form",
    "normalise_by_max",
]

CAWE_CLASSIFIERS: dict[str, tuple[str, list[int]]] = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
}
"""ResNet layouts of the CAWE classifier (the paper: ResNet-50; ResNet-18 keeps the CPU sample fast)."""


def normalise_by_max(maps: Tensor, eps: float = 1e-8) -> Tensor:
    """Divide each map of a ``(B, 1, ...)`` batch by its maximum (non-negative maps; all-zero maps stay zero)."""
    peak = maps.flatten(1).amax(dim=1).clamp_min(eps)
    return maps / peak.view(-1, *([1] * (maps.ndim - 1)))


def _upsample(maps: Tensor, size: tuple[int, ...]) -> Tensor:
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


class CAWEClassifier(nn.Module):
    """A MONAI ResNet classifier (torchvision layout: 7x7 stride-2 stem) with the split CAWE needs.

    ``features(x)`` returns the last convolutional feature maps ``F`` (``layer4``), ``head(F)`` the logits (global
    average pooling + linear); ``forward`` chains them. Probabilities are sigmoids: image-level labels are
    multi-label (CheXpert's 14 observations; RSNA's one "Lung Opacity").

    Args:
        arch: a key of :data:`CAWE_CLASSIFIERS`.
        num_classes: image-level classes.
        in_channels: image channels (1: grey radiographs).
        weights_path: optional local ResNet state dict (e.g. ImageNet weights; nothing is downloaded).

    Raises:
        ValueError: unknown ``arch``.
    """

    def __init__(
        self, arch: str = "resnet50", num_classes: int = 1, in_channels: int = 1, weights_path: str | Path | None = None
    ) -> None:
        super().__init__()
        if arch not in CAWE_CLASSIFIERS:
            raise ValueError(f"unknown CAWE classifier '{arch}'; choose one of {sorted(CAWE_CLASSIFIERS)}")
        block, layers = CAWE_CLASSIFIERS[arch]
        self.resnet = ResNet(
            block,
            layers,
            get_inplanes(),
            spatial_dims=2,
            n_input_channels=in_channels,
            conv1_t_size=7,
            conv1_t_stride=2,
            num_classes=num_classes,
            bias_downsample=False,
        )
        if weights_path is not None:
            load_pretrained_weights(self.resnet, weights_path)
        self.num_classes = int(num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The last convolutional feature maps ``F`` (``(B, K, h, w)``)."""
        r = self.resnet
        x = r.maxpool(r.act(r.bn1(r.conv1(x))))
        return r.layer4(r.layer3(r.layer2(r.layer1(x))))

    def head(self, features: Tensor) -> Tensor:
        """Logits from the feature maps: global average pooling, then the linear layer."""
        return self.resnet.fc(features.mean(dim=(2, 3)))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes)``."""
        return self.head(self.features(x))


def cawe_closed_form(classifier: CAWEClassifier, images: Tensor, threshold: float = 0.5) -> Tensor:
    """CAWE map (Eqs. 1-2) of a global-average-pooling + linear + sigmoid classifier, without autograd.

    Args:
        classifier: the trained :class:`CAWEClassifier`.
        images: ``(B, C, H, W)`` classifier input.
        threshold: a class is activated when its probability exceeds it.

    Returns:
        ``(B, 1, H, W)`` maps in ``[0, 1]`` (normalised by their maximum), bilinearly upsampled to the images.
    """
    features = classifier.features(images)
    probs = torch.sigmoid(classifier.head(features))
    activated = (probs > threshold).to(probs.dtype)
    h, w = features.shape[-2:]
    # d(sum_l a_l p_l) / dF^k_ij = sum_l a_l p_l (1 - p_l) W_lk / (h w): the same at every cell (i, j)
    gradient = (activated * probs * (1 - probs)) @ classifier.resnet.fc.weight / float(h * w)
    weights = F.relu(gradient)  # Eq. 1: ReLU, then the spatial mean of a constant
    maps = F.relu((weights[:, :, None, None] * features).sum(dim=1, keepdim=True))  # Eq. 2
    return normalise_by_max(_upsample(maps, tuple(images.shape[2:])))


class ActivatedClassSum(nn.Module):
    """``sum_l a_l sigmoid(z_l)`` over the activated classes (``sigmoid(z_l) > threshold``) as a ``(B, 1)`` score.

    MONAI's ``ModelWithHooks`` back-propagates the score of one "class"; wrapping the classifier in this module
    makes that score Eq. 1's multi-class sum of probabilities.

    Args:
        classifier: any classifier returning logits ``(B, L)``.
        threshold: activation threshold on the probabilities.
    """

    def __init__(self, classifier: nn.Module, threshold: float = 0.5) -> None:
        super().__init__()
        self.classifier = classifier
        self.threshold = float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        """The activated classes' probability sum, ``(B, 1)``."""
        probs = torch.sigmoid(self.classifier(x))
        activated = (probs > self.threshold).to(probs.dtype).detach()
        return (activated * probs).sum(dim=1, keepdim=True)


class CAWE(GradCAM):
    """CAWE with MONAI's CAM machinery: ``GradCAM`` whose map weights are Eq. 1's (ReLU on the gradient, then mean).

    Args:
        classifier: the classifier (logits ``(B, L)``).
        target_layer: the last convolutional layer's name inside ``classifier`` (``"resnet.layer4"`` for
            :class:`CAWEClassifier`).
        threshold: class activation threshold on the probabilities.
        upsampler: maps a spatial size to the upsampling function (bilinear by default, as the paper).
        postprocessing: applied to the upsampled maps (default :func:`normalise_by_max`).

    Example::

        maps = CAWE(classifier, "resnet.layer4", threshold=0.5)(images)   # (B, 1, H, W) in [0, 1]
    """

    def __init__(
        self,
        classifier: nn.Module,
        target_layer: str = "resnet.layer4",
        threshold: float = 0.5,
        upsampler: Callable | None = None,
        postprocessing: Callable = normalise_by_max,
    ) -> None:
        wrapped = ActivatedClassSum(classifier, threshold).train(classifier.training)
        super().__init__(
            wrapped,
            f"classifier.{target_layer}",
            upsampler=upsampler or (lambda size: lambda maps: _upsample(maps, tuple(size))),
            postprocessing=postprocessing,
        )

    def compute_map(  # type: ignore[override]
        self,
        x: Tensor,
        class_idx: int | None = None,
        retain_graph: bool = False,
        layer_idx: int = -1,
        **kwargs: Any,
    ) -> Tensor:
        """Eq. 2 at the feature maps' size: ``ReLU(sum_k w_k F^k)`` with ``w_k`` = mean of ``ReLU(gradient)``.

        Args:
            x: classifier input ``(B, C, H, W)``.
            class_idx: ignored (the score is the activated classes' sum, index 0 of :class:`ActivatedClassSum`).
            retain_graph: keep the autograd graph after the backward pass.
            layer_idx: which target layer, when several are hooked.
            **kwargs: passed to the classifier.

        Returns:
            ``(B, 1, h, w)`` map before upsampling.
        """
        x = x.detach().requires_grad_(True)  # a frozen classifier still needs a graph to its feature maps
        wrapper = self.nn_module.model
        mode = wrapper.classifier.training  # ModelWithHooks runs in eval mode, then restores the wrapper's mode
        wrapper.train(mode)
        with torch.enable_grad():
            _, acti, grad = self.nn_module(x, class_idx=0, retain_graph=retain_graph, **kwargs)
        wrapper.train(mode)
        acti, grad = acti[layer_idx], grad[layer_idx]
        b, c, *spatial = grad.shape
        weights = F.relu(grad).view(b, c, -1).mean(2).view(b, c, *[1] * len(spatial))
        return F.relu((weights * acti).sum(1, keepdim=True)).detach()
