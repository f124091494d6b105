"""What exporting a bundle's network needs: its example input, its export options, ONNX export, output flattening.

Shared by the conformance and deployment tests and by ``benchmarks/speed.py``, so that all three export and compare
a network the same way. As a command, exports a bundle's checkpoint to ONNX and checks it with onnxruntime:

    python -m common.deployment bundles/<name> --ckpt_file bundles/<name>/models/model.pt \
        --filepath bundles/<name>/models/model.onnx [--bundle_root DIR]
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from .workflows import load_config

__all__ = [
    "eager_outputs",
    "example_input",
    "export_bundle_onnx",
    "export_onnx",
    "export_options",
    "flat_tensors",
    "onnx_outputs",
    "onnx_session",
]


def example_input(bundle: str | Path, batch: int = 1, n: int = 8) -> torch.Tensor:
    """A random input of the shape ``metadata.json``'s first input declares (``n`` substituted as verify_net_in_out).

    Args:
        bundle: the bundle folder.
        batch: batch size.
        n: the value of ``n`` in shapes such as ``"16*n"``.

    Returns:
        A ``(batch, channels, *spatial)`` tensor of uniform noise in [0, 1).
    """
    meta = json.loads((Path(bundle) / "configs" / "metadata.json").read_text())
    spec = meta["network_data_format"]["inputs"]["image"]
    shape = []
    for size in spec["spatial_shape"]:
        if isinstance(size, str):  # "16*n" -> 128 for n=8
            size = eval(re.sub(r"\bn\b", str(n), size), {"__builtins__": {}})
        shape.append(int(size))
    return torch.rand(batch, spec["num_channels"], *shape)


def flat_tensors(output: Any) -> list[torch.Tensor]:
    """The tensors of a network output in a fixed order, so that outputs of any structure compare one by one.

    Args:
        output: a tensor, or nested lists / tuples / dicts of tensors (detection networks return lists of maps).

    Returns:
        The tensors, dict entries in key order.

    Raises:
        TypeError: an output that holds something other than tensors.
    """
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for key in sorted(output) for t in flat_tensors(output[key])]
    if isinstance(output, list | tuple):
        return [t for item in output for t in flat_tensors(item)]
    raise TypeError(f"network output of type {type(output).__name__} holds no tensors")


def _in_output_order(output: Any) -> list[torch.Tensor]:
    """Tensors in the order ``torch.onnx.export`` flattens them (dicts by insertion order)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for value in output.values() for t in _in_output_order(value)]
    return [t for item in output for t in _in_output_order(item)]


def export_options(bundle: str | Path, **overrides: Any) -> dict:
    """The ``ckpt_export`` options of ``inference.yaml``'s optional ``torchscript_export`` id, ``{}`` without it.

    A bundle whose network TorchScript cannot script asks for ``{use_trace: true}`` there (the input shape then
    comes from ``metadata.json``).

    Args:
        bundle: the bundle folder.
        **overrides: config overrides (``bundle_root`` of a trained run, so that trained switches apply).

    Returns:
        Keyword arguments for ``monai.bundle.ckpt_export``.
    """
    parser = load_config(bundle, "inference", **overrides)
    return dict(parser.get_parsed_content("torchscript_export")) if "torchscript_export" in parser else {}


def export_onnx(network: torch.nn.Module, example: torch.Tensor, path: str | Path, opset: int = 17) -> list[str]:
    """Export ``network`` to ONNX with a dynamic batch axis, written atomically; return its output names.

    Uses the TorchScript-based exporter (``dynamo=False``): it needs no extra package and handles every network of
    the collection that ONNX can express; the new exporter would add ``onnxscript`` to the dependencies.

    Args:
        network: the network in eval mode.
        example: an input of the shape to trace.
        path: the ``.onnx`` file to write.
        opset: ONNX opset.

    Returns:
        The output names, in the order of :func:`onnx_outputs`.

    Raises:
        RuntimeError: the network cannot be exported (the exporter's message names the operator).
    """
    import warnings

    path = Path(path)
    with torch.no_grad():
        count = len(_in_output_order(network(example)))
    names = [f"output_{i}" for i in range(count)]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            torch.onnx.export(network, (example,), str(tmp), input_names=["image"], output_names=names,
                              dynamic_axes={"image": {0: "batch"}}, opset_version=opset, dynamo=False)  # fmt: skip
        tmp.replace(path)
    except Exception as error:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export of {type(network).__name__} failed: {error}") from error
    return names


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path`` with ``threads`` intra-op threads (default: torch's thread count)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_outputs(session: Any, example: torch.Tensor) -> list[torch.Tensor]:
    """Run an onnxruntime session on ``example``; outputs as tensors in :func:`eager_outputs` order."""
    return [torch.from_numpy(y) for y in session.run(None, {"image": example.numpy()})]


def eager_outputs(network: torch.nn.Module, example: torch.Tensor) -> list[torch.Tensor]:
    """The eager network's outputs flattened as the ONNX exporter flattens them (to compare with onnx_outputs)."""
    with torch.no_grad():
        return _in_output_order(network(example))


def export_bundle_onnx(
    bundle: str | Path, filepath: str | Path, ckpt_file: str | Path | None = None, atol: float = 1e-4, **overrides: Any
) -> float:
    """Export a bundle's ``network_def`` to ONNX and check it against the eager network with onnxruntime.

    The network is traced on :func:`example_input` (batch 1, dynamic batch axis) and checked on a batch of 2, so
    both the exported graph and its batch axis are verified before the file is kept.

    Args:
        bundle: the bundle folder.
        filepath: the ``.onnx`` file to write.
        ckpt_file: weights (a ``model.pt`` state dict); ``None`` keeps the initialisation (tests, benchmarks).
        atol: the largest absolute difference from the eager output that is accepted.
        **overrides: config overrides of ``inference.yaml`` (``bundle_root`` of a trained run).

    Returns:
        The largest absolute difference between the onnxruntime and eager outputs.

    Raises:
        RuntimeError: the export failed, or the ONNX outputs differ from the eager ones (the file is removed).
    """
    network = load_config(bundle, "inference", **overrides).get_parsed_content("network_def")
    if ckpt_file is not None:
        network.load_state_dict(torch.load(ckpt_file, map_location="cpu", weights_only=True))
    network.eval()
    filepath = Path(filepath)
    export_onnx(network, example_input(bundle, batch=1), filepath)
    check = example_input(bundle, batch=2)
    eager, deployed = eager_outputs(network, check), onnx_outputs(onnx_session(filepath), check)
    if [t.shape for t in eager] != [t.shape for t in deployed]:
        filepath.unlink()
        raise RuntimeError(f"{filepath}: ONNX output shapes {[tuple(t.shape) for t in deployed]} differ from the eager "
                           f"network's {[tuple(t.shape) for t in eager]}")  # fmt: skip
    difference = max(float((a - b).abs().max()) for a, b in zip(eager, deployed))
    if difference > atol:
        filepath.unlink()
        raise RuntimeError(f"{filepath}: ONNX output differs from the eager network by {difference:.2e} > {atol}")
    return difference


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    import argparse

    parser = argparse.ArgumentParser(description="Export a bundle's network to ONNX, checked with onnxruntime.")
    parser.add_argument("bundle", type=Path, help="the bundle folder, e.g. bundles/synovial_ultrasound_segmentation")
    parser.add_argument("--filepath", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--ckpt_file", type=Path, help="the trained weights (models/model.pt)")
    parser.add_argument("--bundle_root", help="the trained run's bundle root (its recorded variant switches)")
    args = parser.parse_args(argv)
    if not (args.bundle / "configs" / "inference.yaml").is_file():
        parser.error(f"{args.bundle} is not a bundle folder (no configs/inference.yaml)")
    if args.ckpt_file is not None and not args.ckpt_file.is_file():
        parser.error(f"checkpoint {args.ckpt_file} does not exist")
    overrides = {"bundle_root": args.bundle_root} if args.bundle_root else {}
    difference = export_bundle_onnx(args.bundle, args.filepath, args.ckpt_file, **overrides)
    print(f"wrote {args.filepath}; onnxruntime matches the eager network within {difference:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
