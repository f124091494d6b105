"""Colour, stain and intensity augmentation of RGB tiles in [0, 1] for super-resolution training.

Applied to the high-resolution tile before the degradation, so the low-resolution input and the target change
together and the network sees stains, colours and exposures the training pictures do not have:

- **stain jitter** (Tellez et al., 2018): optical densities ``-log(rgb)`` are projected on the haematoxylin /
  eosin / DAB basis of scikit-image's ``rgb2hed``, each stain's concentration is scaled by ``U(1 - s, 1 + s)`` and
  shifted by ``U(-s, s)``, and the tile is rebuilt; on non-stained (natural or grey) pictures this is a
  colour change;
- **channel permutation**: the RGB channels in a random order (with probability ``shuffle_prob``);
- **gamma**: ``x ** g`` with ``log g ~ U(log g_min, log g_max)`` (exposure / intensity).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils.type_conversion import convert_to_tensor

__all__ = ["RandStainColourJitter", "RandStainColourJitterd"]

# scikit-image's rgb2hed basis (rows: haematoxylin, eosin, DAB optical densities in R, G, B)
_HED_FROM_RGB_BASIS = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
_RGB_FROM_HED = _HED_FROM_RGB_BASIS / _HED_FROM_RGB_BASIS.norm(dim=1, keepdim=True)
_HED_FROM_RGB = torch.linalg.inv(_RGB_FROM_HED)
_OD_FLOOR = 1.0 / 255.0  # smallest transmitted intensity (log of zero is undefined)


class RandStainColourJitter(RandomizableTransform):
    """Random stain (HED) jitter, channel permutation and gamma of one RGB image ``(3, H, W)`` in [0, 1].

    Args:
        prob: probability of augmenting an image at all.
        stain_sigma: ``s`` of the stain concentration scale ``U(1 - s, 1 + s)`` and shift ``U(-s, s)``
            (0: no stain jitter).
        shuffle_prob: probability of permuting the RGB channels.
        gamma_range: ``(g_min, g_max)`` of the gamma, drawn log-uniformly (``(1, 1)``: none).

    Raises:
        ValueError: a probability outside [0, 1], a negative ``stain_sigma`` or a non-positive gamma range.
    """

    def __init__(
        self,
        prob: float = 0.8,
        stain_sigma: float = 0.05,
        shuffle_prob: float = 0.25,
        gamma_range: Sequence[float] = (0.7, 1.4),
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if not 0.0 <= float(shuffle_prob) <= 1.0 or not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob and shuffle_prob must be in [0, 1], got {prob} and {shuffle_prob}")
        if float(stain_sigma) < 0:
            raise ValueError(f"stain_sigma must be >= 0, got {stain_sigma}")
        if len(gamma_range) != 2 or not 0 < float(gamma_range[0]) <= float(gamma_range[1]):
            raise ValueError(f"gamma_range must be (g_min, g_max) with 0 < g_min <= g_max, got {gamma_range}")
        self.stain_sigma = float(stain_sigma)
        self.shuffle_prob = float(shuffle_prob)
        self.gamma_range = (float(gamma_range[0]), float(gamma_range[1]))
        self._alpha = np.ones(3)
        self._beta = np.zeros(3)
        self._order = np.arange(3)
        self._gamma = 1.0

    def randomize(self, data: Any = None) -> None:  # noqa: D102
        super().randomize(None)
        s = self.stain_sigma
        self._alpha = self.R.uniform(1 - s, 1 + s, size=3)
        self._beta = self.R.uniform(-s, s, size=3)
        self._order = self.R.permutation(3) if self.R.rand() < self.shuffle_prob else np.arange(3)
        self._gamma = float(np.exp(self.R.uniform(np.log(self.gamma_range[0]), np.log(self.gamma_range[1]))))

    def __call__(self, img: torch.Tensor, randomize: bool = True) -> torch.Tensor:
        """Return the augmented image (same shape, float32, clamped to [0, 1])."""
        if randomize:
            self.randomize()
        img = convert_to_tensor(img, track_meta=False, dtype=torch.float32)
        if img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"expected an RGB image (3, H, W), got shape {tuple(img.shape)}")
        if not self._do_transform:
            return img
        out = img.double()
        if self.stain_sigma > 0:
            od = -torch.log(out.clamp(min=_OD_FLOOR))  # (3, H, W) optical densities
            hed = torch.einsum("chw,cs->shw", od, _HED_FROM_RGB)
            alpha = torch.as_tensor(self._alpha, dtype=torch.float64)[:, None, None]
            beta = torch.as_tensor(self._beta, dtype=torch.float64)[:, None, None]
            od = torch.einsum("shw,sc->chw", hed * alpha + beta, _RGB_FROM_HED)
            out = torch.exp(-od)
        out = out[torch.as_tensor(self._order)].clamp(0.0, 1.0) ** self._gamma
        return out.clamp(0.0, 1.0).float()


class RandStainColourJitterd(RandomizableTransform, MapTransform):
    """Dictionary twin of :class:`RandStainColourJitter` (the same draw for every key).

    Args:
        keys: RGB image keys.
        prob, stain_sigma, shuffle_prob, gamma_range: as in :class:`RandStainColourJitter`.
        allow_missing_keys: as in MONAI.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        prob: float = 0.8,
        stain_sigma: float = 0.05,
        shuffle_prob: float = 0.25,
        gamma_range: Sequence[float] = (0.7, 1.4),
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.jitter = RandStainColourJitter(1.0, stain_sigma, shuffle_prob, gamma_range)
        self.jitter.R = self.R  # one random stream, so a saved ``self.R`` state resumes the draws exactly

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):  # noqa: D102
        super().set_random_state(seed, state)
        self.jitter.R = self.R
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        self.jitter.randomize()
        for key in self.key_iterator(d):
            d[key] = self.jitter(d[key], randomize=False)
        return d
