"""MONAI's TensorBoard handler with the event file opened when the handler is attached, not when it is built."""

from __future__ import annotations

from typing import Any

from monai.handlers import TensorBoardStatsHandler as _MonaiTensorBoardStatsHandler

__all__ = ["TensorBoardStatsHandler"]


class _WriterOnFirstUse:
    """Stands for a ``SummaryWriter`` and creates it (and its event file) on first use."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self._writer: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=self.log_dir)
        return getattr(self._writer, name)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class TensorBoardStatsHandler(_MonaiTensorBoardStatsHandler):
    """``monai.handlers.TensorBoardStatsHandler`` that writes nothing until it logs.

    MONAI's handler opens its event file in ``__init__``. Config lists are built whole on every rank, so in
    multi-process training each rank would leave an (empty) event file even when only rank 0 attaches the handler;
    this one opens the file on the first value it logs. Same arguments as MONAI's.
    """

    def __init__(self, log_dir: str = "./runs", **kwargs: Any):
        if kwargs.get("summary_writer") is None:
            kwargs["summary_writer"] = _WriterOnFirstUse(str(log_dir))
        super().__init__(log_dir=log_dir, **kwargs)
        self.internal_writer = True  # close() closes the writer this handler made
