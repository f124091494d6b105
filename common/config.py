"""Helpers that bundle configs call: locating the bundle, checking a checkpoint, choosing a variant.

Locating a bundle folder from inside its own config:

MONAI's ``ConfigWorkflow`` does not set ``bundle_root``; model-zoo configs use ``"."`` and expect to be run
from inside the bundle. Our README runs every bundle from the repository root
(``--config_file bundles/<name>/configs/train.yaml``), so configs call :func:`bundle_root` instead.
MONAI Label and ``ckpt_export --bundle_root`` override the id anyway.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "as_flag",
    "bundle_root",
    "repository_root",
    "require_checkpoint",
    "choose",
    "root_cause",
    "install_error_summary",
]


def repository_root() -> Path:
    """The checkout this package was installed from (editable install) or imported from."""
    return Path(__file__).resolve().parents[1]


def _config_files_from_command_line(argv: list[str]) -> list[Path]:
    """The ``--config_file`` of a ``python -m monai.bundle run`` command line (one path, or a list literal)."""
    import ast

    values = []
    for i, arg in enumerate(argv):
        if arg == "--config_file" and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith("--config_file="):
            values.append(arg.split("=", 1)[1])
    files = []
    for value in values:
        try:
            parsed = ast.literal_eval(value) if value.lstrip().startswith(("[", "(")) else value
        except (SyntaxError, ValueError):
            parsed = value
        files += [Path(v) for v in (parsed if isinstance(parsed, list | tuple) else [parsed])]
    return files


def bundle_root(name: str) -> str:
    """Return the folder of bundle ``name`` as a string usable in config expressions.

    A bundle is where its config is: when the command line names a ``--config_file`` inside
    ``<folder>/configs/`` with a ``metadata.json`` beside it, ``<folder>`` is the bundle root, whatever it is called
    and wherever it was copied (model-zoo bundles are relocatable). Otherwise (in-process runs) it looks, in order,
    at ``$MONAI_BUNDLES_ROOT/<name>``, ``./bundles/<name>``, ``./<name>``, the current folder when it is the bundle
    itself, and ``<repository>/bundles/<name>``. ``--bundle_root`` and MONAI Label's override replace this
    expression, so they always win.

    Raises:
        FileNotFoundError: when none of those holds ``configs/metadata.json``; the message says how to pass
            ``--bundle_root`` explicitly.
    """
    import sys

    for config_file in _config_files_from_command_line(sys.argv):
        folder = config_file.resolve().parent
        if folder.name == "configs" and (folder / "metadata.json").is_file():
            return str(folder.parent)
    cwd = Path.cwd()
    candidates = []
    if os.environ.get("MONAI_BUNDLES_ROOT"):
        candidates.append(Path(os.environ["MONAI_BUNDLES_ROOT"]) / name)
    candidates += [cwd / "bundles" / name, cwd / name, cwd, repository_root() / "bundles" / name]
    for candidate in candidates:
        if candidate.name == name and (candidate / "configs" / "metadata.json").is_file():
            return str(candidate)
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"cannot find bundle '{name}' (looked in: {tried}); pass --bundle_root <path to the bundle folder>"
    )


def require_checkpoint(path: str | os.PathLike) -> str:
    """Return ``path`` if it is a file; otherwise stop with a message that says how to make one.

    Raises:
        FileNotFoundError: naming the missing checkpoint and the training command.
        ValueError: naming the checkpoint when it is empty or cannot be read.
    """
    from .engines.training import load_checkpoint

    path = Path(path)
    if not path.is_file():
        bundle = path.parent.parent
        raise FileNotFoundError(
            f"{path}: no trained checkpoint; train first with "
            f"`python -m monai.bundle run --config_file {bundle}/configs/train.yaml` (or pass --ckpt_path)"
        )
    load_checkpoint(path)  # an empty or truncated file stops here, named, not as a bare EOFError later
    return str(path)


def choose(options: Mapping[str, Any], name: str, option: str) -> Any:
    """Return ``options[name]``; a config switch (``--supervision``, ``--arch``...) with an unknown value stops
    with a message listing the allowed values.

    Raises:
        ValueError: when ``name`` is not a key of ``options``.
    """  # noqa: D205
    if name not in options:
        raise ValueError(f"{option} must be one of {sorted(options)}, got '{name}'")
    return options[name]


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def as_flag(value: Any, option: str) -> bool:
    """A command-line switch as a bool: ``--resume false`` arrives as the string ``"false"``, which is truthy.

    Args:
        value: a bool, 0 / 1, or one of true/false, yes/no, on/off, 1/0 in any case.
        option: the switch's name, for the error message.

    Returns:
        The switch's truth value.

    Raises:
        ValueError: any other value, naming the switch and what it accepts.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{option} must be true or false, got {value!r}")


def root_cause(exc: BaseException) -> BaseException:
    """The innermost ``__cause__`` of an exception chain (the error a config expression raised)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _print_error_summary(exc_type, exc, tb, previous=None) -> None:
    import sys

    (previous or sys.__excepthook__)(exc_type, exc, tb)
    cause = root_cause(exc)
    # MONAI wraps what a config expression raises in "Failed to evaluate ConfigExpression: ..." (or to
    # instantiate a component) and prints the long chain: repeat the original message as the last line
    if cause is not exc and str(exc).startswith(("Failed to evaluate", "Failed to instantiate")):
        print(f"\nError: {cause}  ({type(cause).__name__})", file=sys.stderr)


def install_error_summary() -> None:
    """Make the message of the error a config expression raised the last line a CLI user reads.

    Installed once on ``import common`` (every bundle config imports it); it chains to the previous
    ``sys.excepthook`` and only adds a line for MONAI's config-evaluation wrappers.
    """
    import functools
    import sys

    if getattr(sys.excepthook, "_common_error_summary", False):
        return
    hook = functools.partial(_print_error_summary, previous=sys.excepthook)
    hook._common_error_summary = True
    sys.excepthook = hook
