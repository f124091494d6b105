"""Guided-SET-DCL training and sequential inference over colon CT volumes.

- :class:`ColonEpisodeTrainer`: a ``SupervisedTrainer`` whose iteration runs a batch of episodes
  (:class:`common.data.ColonEpisodeDataset`) through the network's training forward (one forward, so DDP
  synchronises it) and optimises :class:`common.losses.GuidedSETDCLLoss`; the loss parts are in the output.
- :class:`SequentialColonInferer`: the paper's inference. The rectum slice, with its MRF mask, is the first
  support; the next slice is the query (with its MRF mask as guidance); the prediction becomes the next support,
  upwards and downwards from the rectum until the colon ends. Returns a ``(B, 1, X, Y, Z)`` colon probability.
- :class:`ColonMontageWriter`: an evaluator handler writing a PNG montage of slices with the predicted contour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer
from monai.utils import min_version, optional_import

from ..distributed import unwrap

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["ColonEpisodeTrainer", "ColonMontageWriter", "SequentialColonInferer", "colon_montage"]


class ColonEpisodeTrainer(SupervisedTrainer):
    """Episode training of :class:`common.networks.GuidedSETDCLNet`.

    Batches are dicts ``{"x", "unrelated", "label"}``; ``loss_function(network.episode_outputs, label)`` returns a
    dict with ``loss`` and its parts, all copied (detached) into the iteration output.

    Takes ``SupervisedTrainer``'s arguments; ``train_data_loader`` loads episodes, ``network`` may be DDP-wrapped
    and ``loss_function`` is a :class:`common.losses.GuidedSETDCLLoss`.
    """

    def _iteration(self, engine: Any, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        """One optimisation step over a batch of episodes."""
        device = engine.state.device
        x = torch.as_tensor(batchdata["x"]).to(device)
        unrelated = torch.as_tensor(batchdata["unrelated"]).to(device)
        label = torch.as_tensor(batchdata["label"]).to(device)
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        pred = engine.network(x, unrelated)
        parts = engine.loss_function(unwrap(engine.network).episode_outputs, label)
        engine.state.output = {"image": x, "label": label, "pred": pred.detach()}
        engine.state.output.update({k: v.detach() for k, v in parts.items()})
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        parts["loss"].backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


class SequentialColonInferer(Inferer):
    """Slice-by-slice propagation of the colon mask from the rectum, in both directions.

    Inputs are ``(B, 3, X, Y, Z)``: windowed CT, MRF initial mask, rectum seed
    (:class:`common.transforms.ColonInitialLabelling`). The seed's slice keeps its MRF mask and is the first
    support. Each next slice is predicted from the current support; a prediction of at least ``min_area`` pixels
    becomes the next support. When the prediction is smaller but the slice's MRF mask is not, the MRF mask is the
    next support (the documented fallback); when both are empty for ``stop_after`` consecutive slices the colon has
    ended in that direction.

    Args:
        threshold: probability threshold of a colon pixel.
        min_area: smallest support (pixels).
        stop_after: consecutive empty slices that end the propagation.
    """

    def __init__(self, threshold: float = 0.5, min_area: int = 4, stop_after: int = 2) -> None:
        super().__init__()
        self.threshold, self.min_area, self.stop_after = float(threshold), int(min_area), int(stop_after)

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any) -> Any:
        """Colon probabilities ``(B, 1, X, Y, Z)`` (0 in slices the propagation did not reach).

        Raises:
            ValueError: inputs without the three channels, or without a rectum seed.
        """
        if inputs.ndim != 5 or inputs.shape[1] != 3:
            raise ValueError(
                f"SequentialColonInferer expects (B, 3, X, Y, Z) inputs (windowed CT, MRF mask, rectum seed), got "
                f"{tuple(inputs.shape)}"
            )
        out = torch.zeros_like(inputs[:, :1])
        for b in range(inputs.shape[0]):
            out[b, 0] = self._volume(inputs[b], network)
        return out

    def _volume(self, volume: torch.Tensor, network: Callable[..., torch.Tensor]) -> torch.Tensor:
        image, mrf, seed = volume[0], (volume[1] > 0.5).float(), volume[2]
        seed_area = seed.sum((0, 1))
        if float(seed_area.max()) <= 0:
            raise ValueError("no rectum seed in the input's third channel: run ColonInitialLabellingd first")
        z0 = int(seed_area.argmax())
        depth = image.shape[-1]
        prob = torch.zeros_like(image)
        prob[..., z0] = mrf[..., z0]
        for step in (1, -1):
            support_image, support_mask = image[..., z0], mrf[..., z0]
            empty, z = 0, z0 + step
            while 0 <= z < depth and empty < self.stop_after:
                x = torch.stack([support_image, support_mask, image[..., z], mrf[..., z]])[None]
                p = torch.softmax(network(x), 1)[0, 1]
                prob[..., z] = p
                mask = (p > self.threshold).float()
                if mask.sum() >= self.min_area:
                    support_image, support_mask, empty = image[..., z], mask, 0
                elif mrf[..., z].sum() >= self.min_area:
                    support_image, support_mask, empty = image[..., z], mrf[..., z], 0
                else:
                    empty += 1
                z += step
        return prob


def colon_montage(image: np.ndarray, mask: np.ndarray, columns: int = 6, slices: int = 12, zoom: int = 3) -> np.ndarray:
    """An RGB montage of axial slices (evenly spaced over the mask's extent) with the mask's contour in red.

    Args:
        image: ``(X, Y, Z)`` volume scaled to [0, 1].
        mask: ``(X, Y, Z)`` binary mask.
        columns: tiles per row.
        slices: number of tiles.
        zoom: pixel repetition of each tile (small phantoms stay legible).

    Returns:
        ``(rows * Y * zoom, columns * X * zoom, 3)`` uint8 image (slices shown with anterior up).
    """
    from skimage.segmentation import find_boundaries

    mask = np.asarray(mask) > 0.5
    covered = np.flatnonzero(mask.any((0, 1)))
    low, high = (int(covered[0]), int(covered[-1])) if len(covered) else (0, image.shape[-1] - 1)
    picks = np.unique(np.linspace(low, high, slices).round().astype(int))
    tiles = []
    for z in picks:
        block = np.ones((zoom, zoom), np.uint8)
        grey = np.kron((np.clip(image[..., z], 0, 1) * 255).astype(np.uint8).T[::-1], block)
        rgb = np.repeat(grey[..., None], 3, -1)
        edge = find_boundaries(np.kron(mask[..., z].T[::-1].astype(np.uint8), block) > 0, mode="inner")
        rgb[edge] = (255, 0, 0)
        tiles.append(rgb)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + columns], 1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


class ColonMontageWriter:
    """Evaluator handler: ``<output_dir>/<name>_seg_montage.png`` per volume (CT with the predicted contour).

    Args:
        output_dir: destination folder.
        image_channel: channel of ``image`` holding the windowed CT.
        postfix: appended to the input's name.
    """

    def __init__(self, output_dir: str | Path, image_channel: int = 0, postfix: str = "_seg_montage") -> None:
        self.output_dir = Path(output_dir)
        self.image_channel, self.postfix = int(image_channel), postfix

    def attach(self, engine: Any) -> None:
        """Write after every iteration."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        """Write the montage of each item of the iteration's output."""
        from PIL import Image

        output = engine.state.output
        items: Sequence[dict] = output if isinstance(output, list) else [output]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for item in items:
            image, pred = item["image"], item["pred"]
            image = image[self.image_channel] if image.ndim == 4 else image
            pred = pred[0] if pred.ndim == 4 else pred
            if tuple(pred.shape) != tuple(image.shape):  # pred inverted to the input grid: back to the image's
                pred = torch.nn.functional.interpolate(
                    torch.as_tensor(pred, dtype=torch.float32)[None, None], size=tuple(image.shape), mode="nearest"
                )[0, 0]
            meta = getattr(item["pred"], "meta", {}) or {}
            name = Path(str(meta.get("filename_or_obj", "volume"))).name.split(".")[0]
            montage = colon_montage(np.asarray(image.detach().cpu()), np.asarray(torch.as_tensor(pred).detach().cpu()))
            target = self.output_dir / f"{name}{self.postfix}.png"
            tmp = target.with_name(f".{target.name}.tmp")
            Image.fromarray(montage).save(tmp, format="PNG")
            tmp.replace(target)
