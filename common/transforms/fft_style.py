"""FFT domain style transfer (ESORDA's FFT; Yang & Soatto's Fourier Domain Adaptation): the low-frequency amplitude
of a target-domain image replaces the source image's, the phase (the content) is kept.

With ``beta`` the band's half-size as a fraction of the shorter side (``b = floor(beta * min(X, Y))``), the centred
spectrum's ``(2b + 1) x (2b + 1)`` low-frequency square of every channel's amplitude is taken from the target
image; ``beta = 0`` keeps the DC term only (the mean colour), larger values transfer more of the stain and blur
style and, past ~0.1, start to show artefacts. The paper gives no value: 0.01 is FDA's default for 1024 px images.
"""  # noqa: D205

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable, Transform

__all__ = ["FFTStyleTransfer", "FFTStyleTransferd", "fft_style_transfer"]


def _fit(target: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``target`` ``(C, X, Y)`` centre-cropped or wrap-padded to the spatial ``shape``."""
    out = target
    for axis, size in ((1, shape[0]), (2, shape[1])):
        n = out.shape[axis]
        if n > size:
            start = (n - size) // 2
            out = np.take(out, range(start, start + size), axis=axis)
        elif n < size:
            pad = [(0, 0)] * 3
            pad[axis] = (0, size - n)
            out = np.pad(out, pad, mode="wrap")
    return out


def fft_style_transfer(image: Any, target: Any, beta: float = 0.01, clip: Sequence[float] | None = None) -> np.ndarray:
    """The source ``image`` with the low-frequency amplitude of ``target`` (both ``(C, X, Y)``).

    Args:
        image: source image, channel first.
        target: target-domain image with as many channels (cropped or wrap-padded to the image's size).
        beta: half-size of the replaced band as a fraction of the shorter side, in ``[0, 0.5]``.
        clip: ``(low, high)`` range the result is clipped to (e.g. ``(0, 255)``); None: not clipped.

    Returns:
        float32 ``(C, X, Y)``.

    Raises:
        ValueError: a ``beta`` outside ``[0, 0.5]``, arrays that are not ``(C, X, Y)`` or differ in channels.
    """
    if not 0.0 <= float(beta) <= 0.5:
        raise ValueError(f"beta must be in [0, 0.5], got {beta}")
    src = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float64)
    tgt = np.asarray(target.detach().cpu() if isinstance(target, torch.Tensor) else target, dtype=np.float64)
    if src.ndim != 3 or tgt.ndim != 3 or src.shape[0] != tgt.shape[0]:
        raise ValueError(f"image and target must be (C, X, Y) with the same C, got {src.shape} and {tgt.shape}")
    tgt = _fit(tgt, src.shape[1:])
    fs = np.fft.fftshift(np.fft.fft2(src, axes=(1, 2)), axes=(1, 2))
    ft = np.fft.fftshift(np.fft.fft2(tgt, axes=(1, 2)), axes=(1, 2))
    amplitude, phase = np.abs(fs), np.angle(fs)
    b = int(np.floor(float(beta) * min(src.shape[1:])))
    cx, cy = src.shape[1] // 2, src.shape[2] // 2
    window = (slice(None), slice(cx - b, cx + b + 1), slice(cy - b, cy + b + 1))
    amplitude[window] = np.abs(ft)[window]
    mixed = np.fft.ifft2(np.fft.ifftshift(amplitude * np.exp(1j * phase), axes=(1, 2)), axes=(1, 2)).real
    if clip is not None:
        mixed = np.clip(mixed, float(clip[0]), float(clip[1]))
    return mixed.astype(np.float32)


class FFTStyleTransfer(Transform):
    """Array transform: :func:`fft_style_transfer` of the input with a fixed target image.

    Args:
        target: the target-domain image ``(C, X, Y)``.
        beta: band half-size fraction.
        clip: range of the result (None: not clipped).
    """

    def __init__(self, target: Any, beta: float = 0.01, clip: Sequence[float] | None = None) -> None:
        fft_style_transfer(np.zeros((np.shape(target)[0], 2, 2)), np.zeros((np.shape(target)[0], 2, 2)), beta)
        self.target, self.beta, self.clip = target, float(beta), clip

    def __call__(self, img: Any) -> Any:
        """``img`` in the target's style, as the input's type (tensor or array)."""
        out = fft_style_transfer(img, self.target, self.beta, self.clip)
        return torch.as_tensor(out) if isinstance(img, torch.Tensor) else out


class FFTStyleTransferd(Randomizable, MapTransform):
    """Dictionary twin: with probability ``prob``, ``keys`` take the style of a random image of a target pool.

    The pool is the unlabelled target-domain images (file paths, read once with ``loader``, or arrays), so each
    source image gets the style of a random target image, as the paper's Fig. 3. The random state is the transform's
    own (``set_random_state``), so a resumed training continues the same sequence.

    Args:
        keys: image keys (``(C, X, Y)``).
        targets: target-domain images or their paths.
        beta: band half-size fraction.
        prob: probability of the transfer.
        loader: reads a path into ``(C, X, Y)`` (needed when ``targets`` holds paths).
        clip: range of the result (None: not clipped).
        allow_missing_keys: skip absent keys.

    Raises:
        ValueError: an empty pool or paths without a loader.
    """

    def __init__(
        self,
        keys: KeysCollection,
        targets: Sequence[Any],
        beta: float = 0.01,
        prob: float = 1.0,
        loader: Callable[[Any], Any] | None = None,
        clip: Sequence[float] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.targets = list(targets)
        if not self.targets:
            raise ValueError("FFTStyleTransferd needs at least one target-domain image")
        if loader is None and any(isinstance(t, str) for t in self.targets):
            raise ValueError("FFTStyleTransferd: targets are paths; give a loader that reads them")
        fft_style_transfer(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), beta)  # checks beta
        self.beta, self.prob, self.loader, self.clip = float(beta), float(prob), loader, clip
        self._cache: dict[int, Any] = {}
        self._do = False
        self._index = 0

    def randomize(self, data: Any = None) -> None:
        """Draw whether to transfer and which target image."""
        self._do = self.R.rand() < self.prob
        self._index = int(self.R.randint(len(self.targets)))

    def _target(self, index: int) -> Any:
        if index not in self._cache:
            t = self.targets[index]
            self._cache[index] = self.loader(t) if isinstance(t, str) and self.loader is not None else t
        return self._cache[index]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """The item with its images styled (or unchanged when not drawn)."""
        d = dict(data)
        self.randomize()
        if not self._do:
            return d
        target = self._target(self._index)
        for key in self.key_iterator(d):
            img = d[key]
            out = fft_style_transfer(img, target, self.beta, self.clip)
            if isinstance(img, torch.Tensor):
                styled = torch.as_tensor(out)
                d[key] = img.new_tensor(styled) if not hasattr(img, "meta") else type(img)(styled, meta=img.meta)
            else:
                d[key] = out
        return d
