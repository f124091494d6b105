"""Writing a generated folder atomically: build it beside its destination, then rename it into place."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_folder_atomically"]


def write_folder_atomically(root: str | Path, fill: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Call ``fill(tmp)`` on a temporary sibling of ``root``, then move the result to ``root``.

    An interrupted or failing ``fill`` leaves ``root`` as it was (and removes the temporary folder).

    Raises:
        FileExistsError: when ``root`` exists, is not empty and ``overwrite`` is false.
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} exists and is not empty; pass overwrite=True to replace it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    try:
        fill(tmp)
        if root.exists():
            old = root.with_name(f".{root.name}.old-{tmp.name[-8:]}")
            root.rename(old)
            tmp.rename(root)
            shutil.rmtree(old)
        else:
            tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
