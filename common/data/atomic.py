"""Writing a generated folder atomically: build it beside its destination, then rename it into place."""

from __future__ import annotations

import os
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
    remove_stale_temporaries(root)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-{os.getpid()}-"))
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
    files = sum(1 for p in root.rglob("*") if p.is_file())
    print(f"wrote {files} files to {root}", flush=True)
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(root: str | Path) -> list[Path]:
    """Remove the temporary siblings (``.<name>.tmp-<pid>-*``, ``.<name>.old-*``) that a killed writer of ``root``
    left behind; those of a writer still running are kept.

    Returns:
        The folders removed.
    """  # noqa: D205
    root = Path(root)
    removed = []
    for candidate in root.parent.glob(f".{root.name}.tmp-*"):
        pid = candidate.name[len(f".{root.name}.tmp-") :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    if root.exists():  # an .old- copy is only stale once the new folder is in place
        for candidate in root.parent.glob(f".{root.name}.old-*"):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed
