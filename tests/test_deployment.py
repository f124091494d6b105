"""Deployment without the project: TorchScript with torch alone, ONNX with onnxruntime alone.

A virtual environment with torch alone (no monai, no ``common``) is built once and reused while the pinned torch
does not change (``$TORCH_ONLY_VENV``, default ``.venv-torch-only/``). For each bundle the exported TorchScript
file is run there on the metadata-shaped sample input and compared with the eager network.

ONNX: each bundle's network (untrained weights: parity does not depend on their values, and the test stays cheap)
is exported with ``common.deployment.export_onnx`` and run by a process that can import onnxruntime and numpy but
not torch, monai or ``common`` (the README's onnxruntime snippet), on a batch of 2 (the export's batch is 1: the
batch axis is dynamic); its outputs must match the eager network's within 1e-4.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bundle_helpers import BUNDLE_IDS, BUNDLES, ROOT, example_input, export_options, flat_tensors

from common.deployment import eager_outputs, export_onnx
from common.workflows import load_config

sys.path.insert(0, str(ROOT / "tools"))
from deployment_snippet import END, START, snippet  # noqa: E402

ATOL = 1e-4
RUNNER = """
import importlib.util, sys, torch
assert importlib.util.find_spec("monai") is None and importlib.util.find_spec("common") is None, "not torch-only"
net = torch.jit.load(sys.argv[1], map_location="cpu").eval()
x = torch.load(sys.argv[2])
with torch.no_grad():
    torch.save(net(x), sys.argv[3])
print(torch.__version__)
"""
ORT_RUNNER = """
import sys
sys.modules.update(torch=None, monai=None, common=None)  # importing any of them now fails: onnxruntime alone
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
outputs = session.run(None, {"image": np.load(sys.argv[2])})
np.savez(sys.argv[3], *outputs)
"""
#: networks the ONNX exporter cannot express, with the reason (the test checks that the export still fails, so a
#: network that becomes exportable fails here until it is taken off this list)
ONNX_UNSUPPORTED: dict[str, str] = {
    "histology_affine_registration": "the weighted DLT solves its affine with torch.linalg.svd, for which ONNX has "
    "no operator (the exporter first stops at the coarse window's stable torch.sort, which it cannot write either)",
}


def _torch_pin() -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.startswith("torch=="):
            return line.split("==")[1].strip()
    raise AssertionError("constraints.txt pins no torch")


@pytest.fixture(scope="session")
def torch_only_python() -> Path:
    venv = Path(os.environ.get("TORCH_ONLY_VENV", ROOT / ".venv-torch-only"))
    python = venv / "bin" / "python"
    stamp = venv / f".torch-{_torch_pin()}"
    if not stamp.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # only torch and what torch itself requires, at the tested versions
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
                        f"torch=={_torch_pin()}"], check=True, timeout=1800)  # fmt: skip
        stamp.touch()
    # without PYTHONPATH: a PYTHONPATH holding the repository would list its editable install inside the venv
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            env=env)  # fmt: skip
    installed = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert not installed & {"monai", "monai-clinical-bundles", "monailabel"}, f"{venv} is not torch-only: {installed}"
    return python


@pytest.mark.slow
@pytest.mark.cli
@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_exported_model_runs_with_torch_only(bundle: Path, bundle_runs, torch_only_python: Path, tmp_path: Path):
    run = bundle_runs.trained(bundle)
    ts_path, ckpt = tmp_path / "model.ts", run.root / "models" / "model.pt"
    configs = bundle / "configs"
    # the README's export command, through the CLI
    cmd = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(ts_path),
           "--ckpt_file", str(ckpt), "--meta_file", str(configs / "metadata.json"),
           "--config_file", str(configs / "inference.yaml"), "--bundle_root", str(run.root)]  # fmt: skip
    for option, value in export_options(bundle, **run.overrides).items():  # e.g. --use_trace True
        cmd += [f"--{option}", str(value)]
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    torch.manual_seed(0)
    x = example_input(bundle, batch=2)
    torch.save(x, tmp_path / "x.pt")
    network = load_config(bundle, "inference", **run.overrides).get_parsed_content("network_def")
    network.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    with torch.no_grad():
        eager = flat_tensors(network.eval()(x))

    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    deployed = subprocess.run([str(torch_only_python), "-c", RUNNER, str(ts_path), "x.pt", "y.pt"], cwd=tmp_path,
                              env=clean_env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    y = flat_tensors(torch.load(tmp_path / "y.pt"))  # detection networks return a list of maps
    assert [t.shape for t in y] == [t.shape for t in eager]
    for deployed_map, eager_map in zip(y, eager):
        difference = (deployed_map - eager_map).abs().max()
        assert torch.allclose(deployed_map, eager_map, atol=ATOL), f"max |diff| {difference:.2e}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_onnx_export_runs_with_onnxruntime_alone(bundle: Path, tmp_path: Path):
    import numpy as np

    torch.manual_seed(0)
    network = load_config(bundle, "inference").get_parsed_content("network_def").eval()
    onnx_path = tmp_path / "model.onnx"
    if bundle.name in ONNX_UNSUPPORTED:
        with pytest.raises(RuntimeError, match="ONNX export of"):
            export_onnx(network, example_input(bundle, batch=1), onnx_path)
        pytest.skip(f"{bundle.name}: {ONNX_UNSUPPORTED[bundle.name]}")
    export_onnx(network, example_input(bundle, batch=1), onnx_path)
    x = example_input(bundle, batch=2)
    np.save(tmp_path / "x.npy", x.numpy())
    deployed = subprocess.run([sys.executable, "-c", ORT_RUNNER, str(onnx_path), "x.npy", "y.npz"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    with np.load(tmp_path / "y.npz") as saved:
        y = [torch.from_numpy(saved[f"arr_{i}"]) for i in range(len(saved.files))]
    eager = eager_outputs(network, x)
    assert [t.shape for t in y] == [t.shape for t in eager]
    for deployed_map, eager_map in zip(y, eager):
        difference = (deployed_map - eager_map).abs().max()
        assert torch.allclose(deployed_map, eager_map, atol=ATOL), f"max |diff| {difference:.2e}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_readme_carries_the_deployment_snippet_from_metadata(bundle: Path):
    readme = (bundle / "docs" / "README.md").read_text()
    assert START in readme and END in readme, "run: python tools/deployment_snippet.py"
    assert snippet(bundle) in readme, "stale deployment section; run: python tools/deployment_snippet.py"
