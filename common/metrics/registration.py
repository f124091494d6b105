"""Registration metrics for 2D and 3D: label Dice over labels present in both maps, folding (non-positive Jacobian
determinant) percentage, and the MONAI cumulative metrics / ignite handlers that evaluators attach.

Displacements follow MONAI's DDF convention: ``(batch, spatial_dims, *spatial)``, voxel units, channel ``i`` along
spatial axis ``i``; the transform is ``x -> x + ddf(x)``.
"""  # noqa: D205

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.handlers import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric

__all__ = [
    "label_dice",
    "jacobian_determinant",
    "folding_percentage",
    "LabelDiceMetric",
    "FoldingMetric",
    "LabelDiceHandler",
    "FoldingHandler",
]


def label_dice(pred: torch.Tensor, target: torch.Tensor, ignore: Sequence[int] = (0,)) -> torch.Tensor:
    """Mean Dice over the label values present in both maps (background excluded), one value per batch item.

    Args:
        pred: ``(batch, 1, *spatial)`` or ``(batch, *spatial)`` integer label map (e.g. warped moving labels).
        target: label map of the same shape (e.g. fixed labels).
        ignore: label values left out (background).

    Returns:
        ``(batch,)`` tensor; NaN for an item with no label present in both maps.

    Raises:
        ValueError: when the shapes differ.
    """
    if pred.shape != target.shape:
        raise ValueError(f"label maps differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    scores = []
    for p, t in zip(pred.round().long(), target.round().long()):
        common = set(torch.unique(p).tolist()) & set(torch.unique(t).tolist())
        values = sorted(common - set(int(i) for i in ignore))
        if not values:
            scores.append(torch.tensor(float("nan"), dtype=torch.float64))
            continue
        dice = []
        for v in values:
            a, b = p == v, t == v
            dice.append(2.0 * (a & b).sum().item() / (a.sum().item() + b.sum().item()))
        scores.append(torch.tensor(sum(dice) / len(dice), dtype=torch.float64))
    return torch.stack(scores)


def jacobian_determinant(ddf: torch.Tensor) -> torch.Tensor:
    """Determinant of the Jacobian of ``x -> x + ddf(x)`` by central differences (one-sided at the borders).

    Args:
        ddf: ``(batch, spatial_dims, *spatial)`` voxel-unit displacement, 2 or 3 spatial dimensions.

    Returns:
        ``(batch, *spatial)`` determinants.

    Raises:
        ValueError: when the channel count is not the number of spatial dimensions.
    """
    spatial_dims = ddf.dim() - 2
    if ddf.shape[1] != spatial_dims or spatial_dims not in (2, 3):
        raise ValueError(f"expected a (batch, {spatial_dims}, ...) 2D or 3D displacement, got {tuple(ddf.shape)}")
    ddf = ddf.double()
    # rows i: displacement component, columns j: derivative along axis j; plus the identity
    grads = torch.gradient(ddf, dim=list(range(2, 2 + spatial_dims)))
    jac = torch.stack(grads, dim=2)  # (batch, i, j, *spatial)
    eye = torch.eye(spatial_dims, dtype=ddf.dtype, device=ddf.device).reshape(
        1, spatial_dims, spatial_dims, *([1] * spatial_dims)
    )
    jac = torch.movedim(jac + eye, (1, 2), (-2, -1))
    return torch.linalg.det(jac)


def folding_percentage(ddf: torch.Tensor) -> torch.Tensor:
    """Percentage of voxels whose Jacobian determinant is not positive (``|J| <= 0``), per batch item."""
    det = jacobian_determinant(ddf)
    return (det <= 0).flatten(1).double().mean(1) * 100.0


class LabelDiceMetric(CumulativeIterationMetric):
    """Cumulative :func:`label_dice`: ``y_pred`` warped moving labels, ``y`` fixed labels (batch-first or lists)."""

    def __init__(self, ignore: Sequence[int] = (0,)) -> None:
        super().__init__()
        self.ignore = tuple(ignore)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("LabelDiceMetric needs the fixed labels as y")
        return label_dice(y_pred, y, self.ignore).reshape(-1, 1)

    def aggregate(self) -> torch.Tensor:  # noqa: D102
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            return torch.tensor(float("nan"))
        finite = data[torch.isfinite(data)]
        return finite.mean() if finite.numel() else torch.tensor(float("nan"))


class FoldingMetric(CumulativeIterationMetric):
    """Cumulative :func:`folding_percentage` of predicted DDFs (``y_pred``); ``y`` is ignored."""

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return folding_percentage(y_pred).reshape(-1, 1)

    def aggregate(self) -> torch.Tensor:  # noqa: D102
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            return torch.tensor(float("nan"))
        return data.mean()


class LabelDiceHandler(IgniteMetricHandler):
    """Ignite handler of :class:`LabelDiceMetric` (``output_transform`` returns ``(warped_labels, fixed_labels)``)."""

    def __init__(
        self, ignore: Sequence[int] = (0,), output_transform: Callable = lambda x: x, save_details: bool = True
    ) -> None:
        super().__init__(
            metric_fn=LabelDiceMetric(ignore), output_transform=output_transform, save_details=save_details
        )


class FoldingHandler(IgniteMetricHandler):
    """Ignite handler of :class:`FoldingMetric` (``output_transform`` returns ``(ddf, anything)``)."""

    def __init__(self, output_transform: Callable = lambda x: x, save_details: bool = True) -> None:
        super().__init__(metric_fn=FoldingMetric(), output_transform=output_transform, save_details=save_details)
