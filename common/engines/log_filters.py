"""Keep a bundle's log to what a user reads: one line per epoch, no engine bookkeeping, no repeated warnings."""

from __future__ import annotations

import logging
import warnings
from typing import Any

__all__ = ["last_iteration_of_epoch", "QuietEngineLogs", "install_quiet_logs"]

#: ignite's own INFO records that say nothing a user acts on (every validation run prints all three)
_BOOKKEEPING = ("Engine run resuming from iteration", "Engine run starting with max_epochs")
_EVALUATOR_ONLY = ("Engine run finished.", "Complete. Time taken")
#: MONAI builds every image reader for each LoadImage; without nvImageCodec each build warns again
_NVIMGCODEC = "nvImageCodec is not available"


def last_iteration_of_epoch(engine: Any, iteration: int) -> bool:
    """Event filter for ``StatsHandler(iteration_log=...)``: log the last iteration of each epoch only.

    Args:
        engine: the trainer.
        iteration: the engine's global iteration number.

    Returns:
        True on the epoch's last iteration.
    """
    length = engine.state.epoch_length or 1
    return iteration % length == 0


class QuietEngineLogs(logging.Filter):
    """Drop ignite's per-run bookkeeping records, evaluators' "Complete"/"finished" lines and the nvImageCodec
    warning; keep everything else (metrics, per-epoch losses, warnings and errors).
    """  # noqa: D205

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for the records this filter drops.

        Args:
            record: the log record.

        Returns:
            Whether to keep the record.
        """
        message = record.getMessage()
        if record.name.startswith("ignite.engine") and record.levelno <= logging.INFO:
            if message.startswith(_BOOKKEEPING):
                return False
            if record.name.endswith("Evaluator") and any(part in message for part in _EVALUATOR_ONLY):
                return False
        return _NVIMGCODEC not in message


def install_quiet_logs() -> None:
    """Attach :class:`QuietEngineLogs` to the root logger's handlers (once) and silence the repeated nvImageCodec
    warnings. ``import common`` calls it; the bundles' ``logging.conf`` configures the root handler first.
    """  # noqa: D205
    warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader: nvImageCodec decoder plugin")
    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietEngineLogs) for f in handler.filters):
            handler.addFilter(QuietEngineLogs())
