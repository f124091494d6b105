"""Fréchet distance between image sets (FID; Kanekar et al. ICPR 2024, Eq. 9).

``d^2((m, C), (m_w, C_w)) = ||m - m_w||_2^2 + Tr(C + C_w - 2 (C C_w)^{1/2})`` between Gaussians fitted to the
features of two image sets. The paper computes it with pytorch-fid (Inception-v3 pool features). Nothing may be
downloaded here, so :func:`image_features` uses torchvision's Inception-v3 only when a local weights file is given;
otherwise it uses a fixed, seeded, randomly initialised convolutional feature extractor
(:func:`random_feature_extractor`). Distances from that extractor rank image sets consistently (identical sets
score ~0, shifted sets score more), but their absolute values are NOT comparable to pytorch-fid's numbers or the
paper's Table 2. Even with Inception weights, pytorch-fid's own "FID Inception" network differs slightly from
torchvision's (pooling details), so values are close to but not identical with pytorch-fid's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from ..image_io import read_image_array

__all__ = ["fid_between_folders", "frechet_distance", "image_features", "inception_feature_extractor",
           "random_feature_extractor"]  # fmt: skip

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _as_features(features: Any, name: str) -> np.ndarray:
    x = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name}: expected features of shape (N >= 2, D), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or infinite values")
    return x


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative rounding eigenvalues -> 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance (paper Eq. 9) between Gaussians fitted to two feature sets.

    ``Tr((C_a C_b)^{1/2})`` is computed as the sum of the square roots of the eigenvalues of the symmetric matrix
    ``C_a^{1/2} C_b C_a^{1/2}`` (same eigenvalues as ``C_a C_b``), which is real by construction and stays stable
    for the rank-deficient covariances of small sets (fewer images than feature dimensions); it equals
    ``Tr(scipy.linalg.sqrtm(C_a @ C_b).real)`` when the latter is well defined.

    Args:
        features_a: ``(N_a, D)`` features (numpy array or tensor), N_a >= 2.
        features_b: ``(N_b, D)`` features, N_b >= 2.

    Returns:
        the squared Fréchet distance (>= 0; 0 for identical sets).

    Raises:
        ValueError: wrong shapes, fewer than two samples, different dimensions or non-finite values.
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)).sum())
    value = float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    return max(value, 0.0)


class _RandomConvFeatures(nn.Module):
    """Four stride-2 3x3 convolutions with ReLU (He-initialised from a seed, zero bias); the features are the
    global averages of all four stages' maps (colour at the first stage, coarser texture later), concatenated.
    """  # noqa: D205

    def __init__(self, seed: int, dim: int) -> None:
        super().__init__()
        widths = [dim // 8, dim // 8, dim // 4, dim // 2]
        generator = torch.Generator().manual_seed(seed)
        self.stages = nn.ModuleList()
        c_in = 3
        for c_out in widths:
            conv = nn.Conv2d(c_in, c_out, 3, 2, 1)
            with torch.no_grad():
                std = (2.0 / (c_in * 9)) ** 0.5
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
                conv.bias.zero_()
            self.stages.append(nn.Sequential(conv, nn.ReLU()))
            c_in = c_out
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        x = (x - 0.5) * 4.0  # [0, 1] -> [-2, 2]: unit-order activations
        for stage in self.stages:
            x = stage(x)
            pooled.append(x.mean(dim=(-2, -1)))
        return torch.cat(pooled, dim=1)


def random_feature_extractor(seed: int = 0, dim: int = 128) -> nn.Module:
    """A fixed, randomly initialised convolutional feature extractor: ``(B, 3, H, W)`` in [0, 1] -> ``(B, dim)``.

    The offline stand-in for Inception-v3 (module docstring): four stride-2 convolutions with ReLU whose weights are
    drawn from a seeded generator (He scaling), features = global averages of every stage (``dim/8, dim/8, dim/4,
    dim/2`` channels). Same seed, same features with the same torch version; absolute distances are not comparable
    to pytorch-fid's.

    Raises:
        ValueError: ``dim`` is not a positive multiple of 8.
    """
    if dim < 8 or dim % 8:
        raise ValueError(f"dim must be a positive multiple of 8, got {dim}")
    return _RandomConvFeatures(seed, dim).eval()


class _InceptionPool(nn.Module):
    """Inception-v3 pool features (2048-d): input in [0, 1] resized to 299 x 299 and scaled to [-1, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x * 2.0 - 1.0)


def inception_feature_extractor(weights_path: str | Path) -> nn.Module:
    """Torchvision Inception-v3 with the state dict in a LOCAL file, classifier removed: 2048-d pool features.

    Built with ``inception_v3(weights=None, aux_logits=False, init_weights=False)`` (nothing is downloaded); keys of
    the auxiliary classifier and of ``fc`` in the file are ignored.

    Args:
        weights_path: a ``torch.save``-d state dict of torchvision's ``Inception3`` (e.g. the ImageNet weights).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file does not hold a matching state dict (names the missing or unexpected keys).
    """
    from torchvision.models import inception_v3  # slow to import; only the real-Inception FID needs it

    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Inception-v3 weights file does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k: v for k, v in state.items() if not k.startswith(("AuxLogits.", "fc."))}
    net = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
    net.fc = nn.Identity()
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: not an Inception-v3 state dict (missing {missing[:5]}..., "
                         f"unexpected {unexpected[:5]}...)")  # fmt: skip
    for p in net.parameters():
        p.requires_grad_(False)
    return _InceptionPool(net).eval()


def _load_images(paths: Sequence[str | Path], image_size: int | None) -> torch.Tensor:
    arrays = []
    for path in paths:
        array = read_image_array(path)
        image = Image.fromarray(array).convert("RGB")
        if image_size is not None and image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
        arrays.append(np.asarray(image))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; pass image_size to resize them")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def image_features(
    images: Any,
    extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
    weights_path: str | Path | None = None,
    batch_size: int = 32,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Features of a set of images for :func:`frechet_distance`.

    Args:
        images: ``(N, C, H, W)`` tensor/array in [0, 1] (C = 1 is repeated to 3), or a sequence of image files.
        extractor: a module/callable ``(B, 3, H, W) -> (B, D)``; takes precedence over ``weights_path``.
        weights_path: local Inception-v3 state dict (:func:`inception_feature_extractor`); None and no extractor:
            :func:`random_feature_extractor` (seed 0).
        batch_size: images per forward pass.
        image_size: resize image files to this square side (files of different sizes need it).
        device: where the extractor runs.

    Returns:
        ``(N, D)`` float64 array.

    Raises:
        ValueError: empty input, wrong shape or values outside [0, 1].
    """
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
        x = _load_images(images, image_size)
    else:
        x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).float()
    if x.dim() != 4 or x.shape[0] == 0 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected a non-empty batch of 1- or 3-channel images (N, C, H, W), got {tuple(x.shape)}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("image values must be finite and in [0, 1]")
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if extractor is None:
        extractor = inception_feature_extractor(weights_path) if weights_path else random_feature_extractor()
    if isinstance(extractor, nn.Module):
        extractor = extractor.to(device).eval()
    chunks = [extractor(x[i : i + batch_size].to(device)).detach().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(chunks).flatten(1).double().numpy()


def fid_between_folders(  # noqa: D417
    folder_a: str | Path,
    folder_b: str | Path,
    extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
    weights_path: str | Path | None = None,
    image_size: int | None = 64,
    batch_size: int = 32,
) -> float:
    """FID between the PNG/JPEG images found (recursively) under two folders.

    Args:
        folder_a, folder_b: image folders (e.g. the originals and a generated class folder).
        extractor, weights_path, batch_size: as in :func:`image_features` (one extractor is built for both sets).
        image_size: square side every image is resized to before feature extraction (None keeps the sizes, which
            must then agree).

    Raises:
        ValueError: a folder holds fewer than two images.
    """
    sets = []
    for folder in (Path(folder_a), Path(folder_b)):
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if len(files) < 2:
            raise ValueError(f"{folder}: need at least two images (.png/.jpg) for FID, found {len(files)}")
        sets.append(files)
    if extractor is None:
        extractor = inception_feature_extractor(weights_path) if weights_path else random_feature_extractor()
    features = [image_features(files, extractor, batch_size=batch_size, image_size=image_size) for files in sets]
    return frechet_distance(*features)
