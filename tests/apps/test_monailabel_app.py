"""A real MONAI Label server (apps/monailabel) on a loopback port, serving every bundle from a sample datastore.

Each bundle is trained on its short schedule first (shared with the conformance suite), copied with its weights
into a served folder, and one sample input per bundle goes into the datastore. The server is started with
``monailabel start_server`` and stopped at the end whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import BUNDLE_IDS, BUNDLES, ROOT, metadata

from common.image_io import read_image_array
from common.workflows import discover_bundles, load_config, run_workflow

try:
    import monailabel  # noqa: F401
    import requests
except ImportError as exc:  # the extra is optional for users; `make test` installs it
    pytest.skip(
        f"MONAI Label is not installed ({exc}); `make test` installs it, or: pip install -c constraints.txt "
        "-e '.[label]' && pip install --no-deps monailabel==0.8.5",
        allow_module_level=True,
    )

sys.path.insert(0, str(ROOT / "apps" / "monailabel"))
from main import (  # noqa: E402
    IMAGE_RESULT_KINDS,
    RESULT_SUFFIXES,
    BundleCollectionApp,
    bundle_kind,
    file_stem,
    select_bundles,
)
from sample_datastore import build_sample_datastore  # noqa: E402

pytestmark = pytest.mark.slow
STARTUP_TIMEOUT = 300
TRAIN_BUNDLE = "synovial_ultrasound_segmentation"  # the POST /train/ run: 2D, image/label pairs, fastest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(bundle_runs, tmp_path_factory):
    """Start the server over every trained bundle; yield (url, served folder, requests per bundle, log path)."""
    base = tmp_path_factory.mktemp("monailabel")
    served, studies = base / "bundles", base / "studies"
    roots = {}
    for bundle in BUNDLES:
        run = bundle_runs.trained(bundle)
        target = served / bundle.name
        shutil.copytree(bundle / "configs", target / "configs")
        (target / "models").mkdir()
        shutil.copyfile(run.root / "models" / "model.pt", target / "models" / "model.pt")
        roots[bundle] = run.root
    requests_by_bundle = build_sample_datastore(studies, roots, train_bundle=TRAIN_BUNDLE)
    for request in requests_by_bundle.values():
        request["params"] = {"device": "cpu", **({"fixed": request["fixed"]} if "fixed" in request else {})}

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = base / "server.log"
    cmd = [str(Path(sys.executable).parent / "monailabel"), "start_server", "--app", str(ROOT / "apps" / "monailabel"),
           "--studies", str(studies), "--host", "127.0.0.1", "--port", str(port),
           "--conf", "models", "all", "--conf", "bundles", str(served)]  # fmt: skip
    # the monailabel launcher runs `python -m monailabel.main`: the venv's python must come first on PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT), "MONAI_LABEL_TASKS_SCORING": "false"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if requests.get(f"{url}/info/", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.time() > deadline:
                pytest.fail(f"server not up after {STARTUP_TIMEOUT} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(2)
        yield url, served, requests_by_bundle, log_path
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's whole process group (uvicorn and any training subprocess it started)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def test_info_lists_every_bundle_with_its_labels(server):
    url, _, _, log_path = server
    info = requests.get(f"{url}/info/", timeout=30).json()
    assert set(info["models"]) == set(BUNDLE_IDS), f"served {sorted(info['models'])}; log: {log_path}"
    for bundle in BUNDLES:
        model = info["models"][bundle.name]
        channel_def = metadata(bundle)["network_data_format"]["outputs"]["pred"]["channel_def"]
        if bundle_kind(bundle.name) in IMAGE_RESULT_KINDS:
            assert model["type"] == "others"
            continue
        # classification keeps the class names' case (ClassificationBundleInferTask); MONAI Label lowercases others
        keep_case = bundle_kind(bundle.name) == "classification"
        expected = {
            (v if keep_case else v.lower()): int(k) for k, v in channel_def.items() if v.lower() != "background"
        }
        assert model["labels"] == expected
        assert model["type"] == bundle_kind(bundle.name)
    if TRAIN_BUNDLE in BUNDLE_IDS:
        assert TRAIN_BUNDLE in info["trainers"]


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_infer_over_http_matches_the_bundles_own_inference(server, bundle_runs, bundle: Path, tmp_path: Path):
    url, _, requests_by_bundle, log_path = server
    request = requests_by_bundle[bundle.name]
    kind = bundle_kind(bundle.name)
    output = "json" if kind in ("classification", "detection") else "image"
    response = requests.post(
        f"{url}/infer/{bundle.name}",
        params={"image": request["image"], "output": output},
        data={"params": json.dumps(request["params"])},
        timeout=600,
    )
    assert response.ok, f"{response.status_code} {response.text[:2000]}\nlog: {log_path.read_text()[-3000:]}"
    pred = metadata(bundle)["network_data_format"]["outputs"]["pred"]

    # the same item through the bundle's own inference.yaml (no MONAI Label in between)
    run = bundle_runs.trained(bundle)
    item = {"image": request["source"]}
    if "fixed" in request["params"]:
        item["fixed"] = request["fixed_source"]
    own_dir = tmp_path / "own"
    run_workflow(bundle, "inference", quiet=True, datalist=[item], output_dir=str(own_dir), **run.overrides)

    if kind == "classification":
        # MONAI Label's answer: one {idx, label, score} per class of channel_def; the bundle's: a JSON per image
        # with the class probabilities (CONTRIBUTING.md)
        served = {p["label"]: p["score"] for p in response.json()["prediction"]}
        assert set(served) == set(pred["channel_def"].values()), "class names must keep their case"
        (own_json,) = own_dir.glob("*.json")
        own_report = json.loads(own_json.read_text())
        own = own_report.get("probabilities") or own_report.get("class_scores")
        assert served == pytest.approx(own, abs=1e-3)
        # the README's form (output=image) answers with the same scores as a JSON file, not an HTTP 500
        as_file = requests.post(
            f"{url}/infer/{bundle.name}",
            params={"image": request["image"], "output": "image"},
            data={"params": json.dumps(request["params"])},
            timeout=600,
        )
        assert as_file.ok, f"{as_file.status_code} {as_file.text[:2000]}"
        assert {p["label"]: p["score"] for p in as_file.json()["prediction"]} == pytest.approx(served, abs=1e-6)
        return
    if kind == "detection":
        # MONAI Label's detection answer holds the boxes and labels; the bundle writes them (and scores) per image
        served = response.json()
        (own_json,) = own_dir.glob("*.json")
        own_boxes = json.loads(own_json.read_text())
        assert len(served["box"]) == len(own_boxes["box"]) > 0, "no box, or not the bundle's own boxes"
        assert np.allclose(np.asarray(served["box"]), np.asarray(own_boxes["box"]), atol=0.5)
        assert served["label"] == own_boxes["label"]
        return
    disposition = response.headers.get("content-disposition", "")
    name = disposition.split("filename=")[-1].strip('"') or "result.nii.gz"
    (tmp_path / name).write_bytes(response.content)
    served = np.squeeze(read_image_array(tmp_path / name))
    postfix = load_config(bundle, "inference", **run.overrides).get("result_postfix", "")
    own_files = sorted(p for p in own_dir.rglob("*") if p.is_file() and p.name.lower().endswith(RESULT_SUFFIXES))
    own_files = [p for p in own_files if postfix and file_stem(p).endswith(postfix)] or own_files
    own = np.squeeze(read_image_array(own_files[0]))
    assert served.shape == own.shape, f"MONAI Label gave {served.shape}, the bundle {own.shape}"
    if kind == "segmentation":
        # the bundle's PNG scales labels for viewing (0/255); compare label identity, voxel by voxel
        same = (served > 0) == (own > 0) if own.max() > pred["num_channels"] else served == own
        assert same.mean() > 0.999, f"only {same.mean():.4f} of voxels agree with the bundle's own output"
    else:  # registration: the warped image; super-resolution: the SR image
        assert np.allclose(served.astype(np.float64), own.astype(np.float64), atol=1.0)


@pytest.mark.skipif(TRAIN_BUNDLE not in BUNDLE_IDS, reason=f"$TEST_BUNDLES leaves out {TRAIN_BUNDLE}")
def test_train_over_http_writes_a_checkpoint(server):
    url, served, _, log_path = server
    checkpoint = served / TRAIN_BUNDLE / "models" / "model.pt"
    before = checkpoint.stat().st_mtime_ns
    params = {"max_epochs": 1, "val_split": 0.25, "device": "cpu", "multi_gpu": False}
    response = requests.post(f"{url}/train/{TRAIN_BUNDLE}", json=params, timeout=60)
    assert response.ok, response.text[:2000]
    deadline = time.time() + 900
    while True:
        status = requests.get(f"{url}/train/", params={"check_if_running": "false"}, timeout=30).json()
        if status.get("status") in ("DONE", "ERROR"):
            break
        assert time.time() < deadline, f"training still {status.get('status')} after 900 s"
        time.sleep(3)
    assert status["status"] == "DONE", f"{status}\n{log_path.read_text()[-4000:]}"
    assert checkpoint.stat().st_mtime_ns > before, "training did not rewrite models/model.pt"
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    network = load_config(served / TRAIN_BUNDLE, "inference").get_parsed_content("network_def")
    assert set(state) == set(network.state_dict())


def test_select_bundles_rejects_unknown_names(tmp_path: Path):
    with pytest.raises(ValueError, match="no bundle named"):
        select_bundles(ROOT / "bundles", "no_such_bundle")
    with pytest.raises(ValueError, match="does not exist"):
        select_bundles(tmp_path / "missing", "all")
    assert set(select_bundles(ROOT / "bundles", "all")) == {b.name for b in discover_bundles(ROOT)}
    assert BundleCollectionApp.__doc__


def _any_served(kinds: tuple[str, ...]) -> Path | None:
    return next((b for b in BUNDLES if bundle_kind(b.name) in kinds), None)


def test_bad_requests_get_a_4xx_that_says_why(server):
    url, _, requests_by_bundle, _ = server
    some = BUNDLES[0].name
    unknown_model = requests.post(f"{url}/infer/no_such_model", params={"image": "x"}, timeout=60)
    assert unknown_model.status_code == 404 and "no model 'no_such_model'" in unknown_model.json()["detail"]
    assert some in unknown_model.json()["detail"], "the answer lists the served models"
    unknown_image = requests.post(f"{url}/infer/{some}", params={"image": "no_such_image"}, timeout=60)
    assert unknown_image.status_code == 404 and "'no_such_image' is not in the datastore" in unknown_image.text
    registration = _any_served(("registration",))
    if registration is not None:
        image = requests_by_bundle[registration.name]["image"]
        no_fixed = requests.post(f"{url}/infer/{registration.name}", params={"image": image}, timeout=60)
        assert no_fixed.status_code == 400 and "needs params {'fixed'" in no_fixed.json()["detail"]
        bad_fixed = requests.post(
            f"{url}/infer/{registration.name}",
            params={"image": image},
            data={"params": json.dumps({"fixed": "no_such_fixed"})},
            timeout=60,
        )
        assert bad_fixed.status_code == 404 and "no_such_fixed" in bad_fixed.json()["detail"]


def _readme_curl_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("# the app test runs every curl line of this block", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("curl ")]


def test_readme_curl_lines_work_as_written(server, tmp_path: Path):
    import re
    import shlex

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    url, _, _, _ = server
    lines = _readme_curl_lines()
    assert len(lines) >= 5, "one curl line per kind of task, plus /info/"
    kinds = set()
    for line in lines:
        served = re.search(r"/infer/([a-z_]+)\?", line)
        if served and served.group(1) not in BUNDLE_IDS:
            continue  # $TEST_BUNDLES leaves that bundle out
        kinds.add(bundle_kind(served.group(1)) if served else "info")
        result = subprocess.run(
            line.replace("http://127.0.0.1:8000", url), shell=True, cwd=tmp_path, capture_output=True, timeout=600
        )
        assert result.returncode == 0, f"{line}\n-> exit {result.returncode} {result.stderr[-500:]!r}"
        output = tmp_path / shlex.split(line)[-1]
        assert output.is_file() and output.stat().st_size > 0, f"{line} wrote nothing"
        if output.suffix == ".json":
            json.loads(output.read_text())
        else:
            assert read_image_array(output).size > 0
    if len(BUNDLE_IDS) == len(discover_bundles(ROOT)):
        assert kinds == {"info", "segmentation", "classification", "registration", "super_resolution"}
