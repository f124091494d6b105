"""Training episodes of Guided-SET-DCL from colon CT volumes.

An episode (the paper's guided sequential episodic training) is:

- the support: a slice with colon and its ground-truth mask;
- the query: the next slice (above or below: inference propagates both ways) with its MRF initial mask as
  guidance and its ground truth as the target;
- three unrelated slices without colon, each with a pseudo-mask: its dominant Felzenszwalb superpixel
  (:func:`dominant_superpixel_mask`).

:class:`ColonEpisodeDataset` runs the volume transforms once per volume (loading, orientation, MRF labelling,
resizing: the items' ``image`` becomes windowed slice / MRF mask / rectum seed channels), then serves episodes.
``data`` lists one entry per episode (volume file, support and query slice), which is what a
``DistributedSampler`` shards. The unrelated slices and the augmentation (random lightness and sharpness, as the
paper's) are drawn from torch's global generator, so a resumed run draws as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DatasetError

__all__ = ["ColonEpisodeDataset", "dominant_superpixel_mask", "random_lightness_sharpness"]


def random_lightness_sharpness(
    image: torch.Tensor, lightness: float = 0.1, sharpness: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random lightness (brightness shift) and sharpness (unsharp masking) of a ``(1, H, W)`` slice in [0, 1].

    Args:
        image: the slice.
        lightness: largest brightness shift.
        sharpness: largest unsharp-masking amount (a negative amount blurs).
        generator: torch generator (default: the global one).

    Returns:
        The augmented slice, clipped to [0, 1].
    """
    shift = (torch.rand((), generator=generator) * 2 - 1) * lightness
    amount = (torch.rand((), generator=generator) * 2 - 1) * sharpness
    blurred = F.avg_pool2d(image[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    return (image + amount * (image - blurred) + shift).clamp(0.0, 1.0)


def dominant_superpixel_mask(
    image: np.ndarray, scale: float = 100.0, sigma: float = 0.5, min_size: int = 20, body: np.ndarray | None = None
) -> np.ndarray:
    """Pseudo-mask of a colon-free slice: its largest Felzenszwalb-Huttenlocher superpixel as foreground.

    Superpixels touching the image border (the air around the body) are left out, so the foreground is an
    anatomical region (soft tissue, liver, ...) as in the paper's unrelated slices.

    Args:
        image: 2D slice scaled to [0, 1].
        scale: Felzenszwalb's scale (higher, larger segments).
        sigma: its pre-smoothing.
        min_size: its smallest segment.
        body: optional 2D mask restricting the candidates.

    Returns:
        2D bool mask (all false when no inner superpixel exists).
    """
    from skimage.segmentation import felzenszwalb

    segments = felzenszwalb(np.asarray(image, dtype=np.float64), scale=scale, sigma=sigma, min_size=min_size)
    border = np.unique(np.concatenate([segments[0], segments[-1], segments[:, 0], segments[:, -1]]))
    labels, counts = np.unique(segments, return_counts=True)
    best, best_count = None, 0
    for label, count in zip(labels, counts):
        if label in border:
            continue
        region = segments == label
        if body is not None:
            count = int((region & body).sum())
        if count > best_count:
            best, best_count = label, count
    if best is None:
        return np.zeros(segments.shape, bool)
    return segments == best


class ColonEpisodeDataset(torch.utils.data.Dataset):
    """Support / query / unrelated-slice episodes from labelled colon CT volumes.

    Args:
        data: volume items (``image``, ``label``; MONAI Label's ``train#dataset#data``).
        transform: volume transform giving ``image`` ``(3, X, Y, Z)`` (windowed, MRF mask, rectum seed) and
            ``label`` ``(1, X, Y, Z)``.
        num_unrelated: colon-free slices per episode.
        min_foreground: smallest colon area (pixels) of a support or query slice.
        slice_step: use every ``slice_step``-th support slice (fewer, less redundant episodes per epoch).
        augment: random lightness and sharpness of every slice.
        lightness: largest brightness shift (0.02 of the [0, 1] window is 41 HU: larger shifts blur the HU levels
            that tell air, fat and fluid apart).
        sharpness: largest unsharp-masking amount.
        superpixel_scale: Felzenszwalb scale of the pseudo-masks.

    Raises:
        DatasetError: no volume, no episode (no two consecutive colon slices), or no colon-free slice in any
            volume.
    """

    def __init__(
        self,
        data: Sequence[dict],
        transform: Callable[[dict], dict],
        num_unrelated: int = 3,
        min_foreground: int = 10,
        slice_step: int = 1,
        augment: bool = True,
        lightness: float = 0.02,
        sharpness: float = 0.5,
        superpixel_scale: float = 100.0,
    ) -> None:
        if len(data) == 0:
            raise DatasetError("the colon episode dataset got no volume")
        self.num_unrelated, self.augment = int(num_unrelated), bool(augment)
        self.lightness, self.sharpness = float(lightness), float(sharpness)
        self.volumes: list[torch.Tensor] = []  # (4, X, Y, Z): windowed, MRF, seed, label
        self.data: list[dict[str, Any]] = []
        unrelated: list[tuple[int, int, torch.Tensor]] = []
        for v, item in enumerate(data):
            out = transform(dict(item))
            image = torch.as_tensor(np.asarray(out["image"]), dtype=torch.float32)
            label = (torch.as_tensor(np.asarray(out["label"]), dtype=torch.float32) > 0.5).float()
            self.volumes.append(torch.cat([image, label]))
            area = label[0].sum((0, 1))
            depth = label.shape[-1]
            for z in range(0, depth, max(1, int(slice_step))):
                if area[z] < min_foreground:
                    continue
                for q in (z + 1, z - 1):
                    if 0 <= q < depth and area[q] >= min_foreground:
                        self.data.append({"image": str(item.get("image", v)), "support": z, "query": q, "volume": v})
            for z in np.flatnonzero(area.numpy() == 0):
                body = image[0, ..., z].numpy() > 0.3  # not air
                mask = dominant_superpixel_mask(image[0, ..., z].numpy(), scale=superpixel_scale, body=body)
                if mask.sum() > 0:
                    unrelated.append((v, int(z), torch.as_tensor(mask, dtype=torch.float32)))
        if not self.data:
            raise DatasetError(f"no episode: no two consecutive slices with >= {min_foreground} colon pixels")
        if not unrelated:
            raise DatasetError("no colon-free slice with a superpixel pseudo-mask in any training volume")
        self.unrelated = unrelated
        self._by_volume = {v: [i for i, u in enumerate(unrelated) if u[0] == v] for v in range(len(self.volumes))}

    def __len__(self) -> int:
        """Number of episodes."""
        return len(self.data)

    def _slice(self, image: torch.Tensor) -> torch.Tensor:
        return random_lightness_sharpness(image, self.lightness, self.sharpness) if self.augment else image

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One episode: ``x`` ``(4, H, W)`` network input, ``unrelated`` ``(2n, H, W)``, ``label`` ``(1, H, W)``."""
        episode = self.data[index]
        volume = self.volumes[episode["volume"]]
        z, q = episode["support"], episode["query"]
        # unrelated slices of the same scan when it has enough, else of any scan
        pool = self._by_volume[episode["volume"]]
        if len(pool) < self.num_unrelated:
            pool = list(range(len(self.unrelated)))
        picks = [pool[int(i)] for i in torch.randint(len(pool), (self.num_unrelated,))]
        u_images = [self._slice(self.volumes[self.unrelated[p][0]][0:1, ..., self.unrelated[p][1]]) for p in picks]
        u_masks = [self.unrelated[p][2][None] for p in picks]
        x = torch.cat(
            [
                self._slice(volume[0:1, ..., z]),
                volume[3:4, ..., z],
                self._slice(volume[0:1, ..., q]),
                volume[1:2, ..., q],
            ]
        )
        return {"x": x, "unrelated": torch.cat(u_images + u_masks), "label": volume[3:4, ..., q].clone()}
