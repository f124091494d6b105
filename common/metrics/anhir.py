"""ANHIR registration metrics (Borovec et al., IEEE TMI 2020).

rTRE of a landmark is its target registration error divided by the diagonal of the target image. Per pair: the
median (MrTRE) and mean (ArTRE) over landmarks; over pairs: MMrTRE / AMrTRE (median / average of MrTRE), MArTRE /
AArTRE (median / average of ArTRE); robustness: per pair the fraction of landmarks whose rTRE after registration is
below the initial rTRE (identity), averaged over pairs (higher is better; the identity scores 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from ignite.metrics import Metric

__all__ = ["relative_tre", "anhir_pair_scores", "anhir_aggregates", "ANHIR_AGGREGATES", "ANHIRMetric"]

ANHIR_AGGREGATES = ("robustness", "MMrTRE", "AMrTRE", "MArTRE", "AArTRE")


def relative_tre(warped: np.ndarray, target: np.ndarray, diagonal: float) -> np.ndarray:
    """Per-landmark rTRE: Euclidean distance of ``(N, 2)`` point sets divided by the target image diagonal.

    Raises:
        ValueError: for point sets of different lengths or a non-positive diagonal.
    """
    warped, target = np.asarray(warped, np.float64).reshape(-1, 2), np.asarray(target, np.float64).reshape(-1, 2)
    if len(warped) != len(target):
        raise ValueError(f"{len(warped)} warped landmarks but {len(target)} target landmarks")
    if diagonal <= 0:
        raise ValueError(f"image diagonal must be positive, got {diagonal}")
    return np.linalg.norm(warped - target, axis=1) / diagonal


def anhir_pair_scores(rtre: np.ndarray, initial_rtre: np.ndarray) -> dict[str, float]:
    """``MrTRE``, ``ArTRE`` and ``robustness`` of one pair."""
    rtre, initial_rtre = np.asarray(rtre), np.asarray(initial_rtre)
    return {"MrTRE": float(np.median(rtre)), "ArTRE": float(np.mean(rtre)),
            "robustness": float(np.mean(rtre < initial_rtre))}  # fmt: skip


def anhir_aggregates(pairs: Sequence[dict[str, float]]) -> dict[str, float]:
    """MMrTRE, AMrTRE, MArTRE, AArTRE and robustness over the per-pair scores of :func:`anhir_pair_scores`."""
    if not pairs:
        raise ValueError("no pair to aggregate")
    mr = np.array([p["MrTRE"] for p in pairs])
    ar = np.array([p["ArTRE"] for p in pairs])
    return {"robustness": float(np.mean([p["robustness"] for p in pairs])),
            "MMrTRE": float(np.median(mr)), "AMrTRE": float(np.mean(mr)),
            "MArTRE": float(np.median(ar)), "AArTRE": float(np.mean(ar))}  # fmt: skip


class ANHIRMetric(Metric):
    """Ignite metric computing one ANHIR aggregate from decollated evaluator outputs.

    Each output item (merged with its batch item) needs ``fixed_landmarks`` (N, 2), ``moving_landmarks`` (N, 2),
    ``fixed_size`` (H, W of the original target image) and, unless ``identity``, ``warped_landmarks`` (moving
    landmarks mapped into the target frame). Per-case values of the aggregate's per-pair score (MrTRE for
    MMrTRE/AMrTRE, ArTRE for MArTRE/AArTRE, robustness) are stored in ``engine.state.metric_details[name]``
    when ``save_details``.

    Args:
        aggregate: one of :data:`ANHIR_AGGREGATES`.
        identity: score the identity transform (the trivial baseline) instead of the prediction.
        save_details: store per-case values for :class:`common.engines.MetricsReport`.
        negate: return minus the aggregate (so that an rTRE aggregate can select checkpoints, higher is better).
        output_transform: ignite output transform (default: the engine output as is).
    """

    def __init__(self, aggregate: str = "robustness", identity: bool = False, save_details: bool = True,
                 negate: bool = False, output_transform: Callable = lambda x: x) -> None:  # fmt: skip
        if aggregate not in ANHIR_AGGREGATES:
            raise ValueError(f"unknown ANHIR aggregate '{aggregate}' (expected one of {ANHIR_AGGREGATES})")
        self.aggregate, self.identity, self.save_details, self.negate = aggregate, identity, save_details, negate
        self._engine: Any = None
        self._name = aggregate
        super().__init__(output_transform=output_transform)

    def reset(self) -> None:  # noqa: D102
        self._pairs: list[dict[str, float]] = []

    def update(self, output: Any) -> None:  # noqa: D102
        items = output if isinstance(output, list) else [output]
        for item in items:
            fixed = np.asarray(item["fixed_landmarks"], np.float64)
            moving = np.asarray(item["moving_landmarks"], np.float64)
            warped = moving if self.identity else np.asarray(item["warped_landmarks"], np.float64)
            h, w = (float(v) for v in np.asarray(item["fixed_size"]).reshape(-1)[:2])
            diag = float(np.hypot(h, w))
            self._pairs.append(anhir_pair_scores(relative_tre(warped, fixed, diag), relative_tre(moving, fixed, diag)))

    def compute(self) -> float:  # noqa: D102
        agg = anhir_aggregates(self._pairs)
        if self.save_details and self._engine is not None:
            column = {"MMrTRE": "MrTRE", "AMrTRE": "MrTRE", "MArTRE": "ArTRE", "AArTRE": "ArTRE"}.get(
                self.aggregate, "robustness"
            )
            if not hasattr(self._engine.state, "metric_details"):
                self._engine.state.metric_details = {}
            self._engine.state.metric_details[self._name] = torch.tensor([[p[column]] for p in self._pairs])
        return -agg[self.aggregate] if self.negate else agg[self.aggregate]

    def iteration_completed(self, engine: Any) -> None:
        """Update from the decollated batch items merged with their outputs (landmarks live in the batch)."""
        output = self._output_transform(engine.state.output)
        batch = engine.state.batch
        if isinstance(output, list) and isinstance(batch, list) and len(batch) == len(output):
            output = [{**b, **o} if isinstance(b, dict) and isinstance(o, dict) else o for b, o in zip(batch, output)]
        self.update(output)

    def attach(self, engine: Any, name: str, *args: Any, **kwargs: Any) -> None:  # noqa: D102
        self._engine, self._name = engine, name
        super().attach(engine, name, *args, **kwargs)
