"""Tests of common.deployment: example inputs from metadata, output flattening, ONNX export and its parity."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.deployment import (
    eager_outputs,
    example_input,
    export_bundle_onnx,
    export_onnx,
    export_options,
    flat_tensors,
    main,
    onnx_outputs,
    onnx_session,
)
from common.workflows import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_input_follows_metadata():
    x = example_input(ROOT / "bundles" / "synovial_ultrasound_segmentation", batch=2)
    assert x.shape[0] == 2 and x.ndim == 4 and float(x.min()) >= 0.0


def test_export_options_read_the_torchscript_export_id():
    assert export_options(ROOT / "bundles" / "mammography_calcification_detection") == {"use_trace": True}
    assert export_options(ROOT / "bundles" / "synovial_ultrasound_segmentation") == {}


def test_flat_tensors_orders_dicts_by_key():
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    assert [t.item() for t in flat_tensors([{"z": a, "b": b}, (c,)])] == [1.0, 0.0, 2.0]
    with pytest.raises(TypeError, match="holds no tensors"):
        flat_tensors(["text"])


class _TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return {"seg": y, "mean": y.mean(dim=(2, 3))}


def test_onnx_export_matches_eager_at_another_batch_size(tmp_path: Path):
    torch.manual_seed(0)
    net = _TwoHeads().eval()
    names = export_onnx(net, torch.rand(1, 1, 16, 16), tmp_path / "m.onnx")
    assert names == ["output_0", "output_1"] and not list(tmp_path.glob(".*tmp"))
    x = torch.rand(3, 1, 16, 16)  # the batch axis is dynamic
    ours, theirs = onnx_outputs(onnx_session(tmp_path / "m.onnx", threads=1), x), eager_outputs(net, x)
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ours, theirs))


class _Unexportable(torch.nn.Module):
    def forward(self, x):
        return torch.fft.rfft2(x).abs()  # the TorchScript-based exporter has no FFT (the FNO networks hit this)


def test_onnx_export_failure_names_the_network_and_leaves_no_file(tmp_path: Path):
    with pytest.raises(RuntimeError, match="ONNX export of _Unexportable failed"):
        export_onnx(_Unexportable(), torch.rand(1, 1, 4, 4), tmp_path / "bad.onnx")
    assert not list(tmp_path.iterdir())


def test_export_bundle_onnx_loads_the_checkpoint_and_checks_parity(tmp_path: Path, capsys):
    bundle = ROOT / "bundles" / "synovial_ultrasound_segmentation"
    torch.manual_seed(1)
    trained = load_config(bundle, "inference").get_parsed_content("network_def").eval()
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    # through the command line, as the README shows it
    assert main([str(bundle), "--ckpt_file", str(tmp_path / "model.pt"), "--filepath", str(tmp_path / "m.onnx")]) == 0
    assert "onnxruntime matches the eager network within" in capsys.readouterr().out
    x = example_input(bundle, batch=3)
    (deployed,) = onnx_outputs(onnx_session(tmp_path / "m.onnx", threads=1), x)
    (eager,) = eager_outputs(trained, x)  # the checkpoint's weights, not a fresh initialisation
    assert torch.allclose(deployed, eager, atol=1e-4)
    with pytest.raises(RuntimeError, match=r"differs from the eager network by .* > 0.0"):
        export_bundle_onnx(bundle, tmp_path / "strict.onnx", tmp_path / "model.pt", atol=0.0)
    assert not (tmp_path / "strict.onnx").exists()
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--filepath", str(tmp_path / "x.onnx")])  # not a bundle folder
    assert "is not a bundle folder" in capsys.readouterr().err
