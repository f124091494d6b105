"""Super-resolution quality: PSNR/SSIM with MONAI's metrics, GMSD, high-frequency energy, scored baselines.

The interpolation baselines and the comparison figure themselves are in :mod:`common.sr_ops`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.metrics import PSNRMetric, SSIMMetric

from ..sr_ops import upsample

__all__ = ["from_engine_upsampled", "gmsd", "high_frequency_ratio", "sr_quality"]


def from_engine_upsampled(keys: tuple[str, str] = ("image", "label"), mode: str = "bicubic"):
    """Output transform for MONAI metric handlers scoring an interpolation baseline on the evaluator's own images.

    Each decollated item's ``keys[0]`` (the LR input) is upsampled with ``mode`` to the size of ``keys[1]`` (the HR
    target), so the baseline (``trivial_psnr``: bicubic) is scored by the same metric on the same images.

    Returns:
        A function ``output -> (list of upsampled images, list of targets)``.
    """
    lr_key, hr_key = keys

    def transform(output):
        items = output if isinstance(output, list) else [output]
        preds, targets = [], []
        for item in items:
            hr = item[hr_key]
            preds.append(upsample(item[lr_key].float(), tuple(hr.shape[-2:]), mode))
            targets.append(hr)
        return preds, targets

    return transform


def sr_quality(sr: torch.Tensor, hr: torch.Tensor, border: int = 0) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``sr`` against ``hr``, with MONAI's ``PSNRMetric`` / ``SSIMMetric`` on [0, 1] images.

    Both are computed per image over all channels (SSIM: 11x11 Gaussian window, averaged over channels) and then
    averaged over the batch.

    Args:
        sr: ``(B, C, H, W)`` (or ``(C, H, W)``) super-resolved images; values are clamped to [0, 1].
        hr: reference images of the same shape.
        border: pixels cropped from every side before scoring (SR convention: the scale factor).

    Returns:
        ``{"psnr": ..., "ssim": ...}``.

    Raises:
        ValueError: different shapes, or an image smaller than SSIM's window after cropping the border.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if sr.ndim == 3:
        sr, hr = sr[None], hr[None]
    if border > 0:
        sr, hr = sr[..., border:-border, border:-border], hr[..., border:-border, border:-border]
    if min(sr.shape[-2:]) < 11:
        raise ValueError(f"images of {tuple(sr.shape[-2:])} pixels (after a border of {border}) are below SSIM's 11")
    sr = sr.detach().float().clamp(0.0, 1.0)
    hr = hr.detach().float().clamp(0.0, 1.0)
    psnr = PSNRMetric(max_val=1.0, reduction="mean")(sr, hr)
    ssim = SSIMMetric(spatial_dims=2, data_range=1.0, reduction="mean")(sr, hr)
    return {"psnr": float(psnr.mean()), "ssim": float(ssim.mean())}


def _luminance(images: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` luma (ITU-R BT.601) on the 0-255 scale of ``(B, 3|1, H, W)`` images in [0, 1]."""
    images = images.detach().float().clamp(0.0, 1.0)
    if images.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        images = (images * weights).sum(dim=1, keepdim=True)
    elif images.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {images.shape[1]}")
    return 255.0 * images


def _as_batch_pair(sr: torch.Tensor, hr: torch.Tensor, smallest: int) -> tuple[torch.Tensor, torch.Tensor]:
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if sr.ndim == 3:
        sr, hr = sr[None], hr[None]
    if sr.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) or (C, H, W) images, got shape {tuple(sr.shape)}")
    if min(sr.shape[-2:]) < smallest:
        raise ValueError(f"images of {tuple(sr.shape[-2:])} pixels are below the {smallest} this measure needs")
    return sr, hr


def gmsd(sr: torch.Tensor, hr: torch.Tensor, c: float = 170.0) -> torch.Tensor:
    """Gradient magnitude similarity deviation (Xue, Zhang, Mou, Bovik, IEEE TIP 2014); lower is better, 0 = equal.

    A full-reference perceptual-quality index that needs no learned weights (so it runs offline, unlike LPIPS): the
    luma of both images (0-255) is averaged over 2x2 blocks and subsampled by 2 (the authors' viewing-distance
    step), Prewitt gradient magnitudes ``m`` are taken (valid convolution, no padded border), the per-pixel
    similarity ``GMS = (2 m_sr m_hr + c) / (m_sr^2 + m_hr^2 + c)`` is formed and GMSD is its standard deviation over
    the image. Blur, ringing and hallucinated texture all make GMS vary, so GMSD rises; in the authors' tests it
    tracks human opinion scores (LIVE, CSIQ, TID2013) about as well as far costlier indices.

    Args:
        sr: ``(B, C, H, W)`` or ``(C, H, W)`` images in [0, 1], ``C`` 1 or 3 (RGB: BT.601 luma).
        hr: reference images of the same shape.
        c: the stabilising constant (the authors' 170 for 0-255 images).

    Returns:
        ``(B,)`` GMSD per image.

    Raises:
        ValueError: different shapes, not 1/3 channels, or images under 8 pixels.
    """
    sr, hr = _as_batch_pair(sr, hr, 8)
    prewitt = torch.tensor([[1.0, 0.0, -1.0]] * 3, device=sr.device) / 3.0
    kernels = torch.stack([prewitt, prewitt.T])[:, None]  # (2, 1, 3, 3): x and y

    def magnitude(images: torch.Tensor) -> torch.Tensor:
        luma = F.avg_pool2d(_luminance(images), kernel_size=2, stride=2)
        grad = F.conv2d(luma, kernels.to(luma.dtype))
        return torch.sqrt((grad**2).sum(dim=1))

    m_sr, m_hr = magnitude(sr), magnitude(hr)
    gms = (2.0 * m_sr * m_hr + c) / (m_sr**2 + m_hr**2 + c)
    return gms.flatten(1).std(dim=1, unbiased=False)


def high_frequency_ratio(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Energy of the Laplacian of the SR luma over that of the HR luma: 1 = as much fine detail as the reference.

    A no-weights sharpness check beside PSNR: bicubic and PSNR-trained networks lose high frequencies (ratio < 1,
    over-smoothed), adversarial training aims to restore them, and ringing or invented texture pushes the ratio
    above 1. It says how much detail there is, not whether it is the right detail (that is what PSNR, SSIM and
    GMSD measure), so it is reported next to them, never alone.

    Args:
        sr: ``(B, C, H, W)`` or ``(C, H, W)`` images in [0, 1], ``C`` 1 or 3.
        hr: reference images of the same shape.

    Returns:
        ``(B,)`` ratios ``sum(lap(sr)^2) / sum(lap(hr)^2)`` (``inf`` for a flat reference with a non-flat SR, 1
        when both are flat).

    Raises:
        ValueError: different shapes, not 1/3 channels, or images under 3 pixels.
    """
    sr, hr = _as_batch_pair(sr, hr, 3)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=sr.device)[None, None]

    def energy(images: torch.Tensor) -> torch.Tensor:
        luma = _luminance(images)
        return (F.conv2d(luma, kernel.to(luma.dtype)) ** 2).flatten(1).sum(dim=1).double()

    e_sr, e_hr = energy(sr), energy(hr)
    ratio = e_sr / e_hr
    return torch.where(e_hr > 0, ratio, torch.where(e_sr > 0, torch.full_like(ratio, math.inf), 1.0)).float()
