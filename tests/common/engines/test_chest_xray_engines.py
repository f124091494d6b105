"""Stages and outputs of the chest radiograph bundle: CAWE classifier and colorizer training, assembling the
detector network, the CAWE map, RSNA submission and FROC picture writers.
"""  # noqa: D205

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from common.data import rsna_datalist, write_chest_xray_sample
from common.engines import (
    COLORIZATION_IMAGES,
    CAWEMapWriter,
    RSNASubmissionWriter,
    colorization_images,
    load_enhancers,
    plot_froc,
    train_cawe_classifier,
    train_colorizer,
)
from common.networks import EnhancedRetinaNet, scaled_anchor_sizes


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_chest_xray_sample(tmp_path_factory.mktemp("cxr") / "s", num_patients=8, num_chexpert=4, image_size=64)


def _net(enhancement: str = "color_cawe") -> EnhancedRetinaNet:
    return EnhancedRetinaNet(enhancement, "resnet18", classifier="resnet18", colorizer_depth=18,
                             anchor_sizes=scaled_anchor_sizes(64), fpn_channels=16)  # fmt: skip


def test_stages_train_skip_and_load(sample, tmp_path, caplog):
    items = rsna_datalist(sample, "all")
    cawe = train_cawe_classifier(tmp_path / "cawe.pt", items[:6], items[6:], "resnet18", 1, (64, 64), max_epochs=2,
                                 patience=1, batch_size=4)  # fmt: skip
    saved = torch.load(cawe, weights_only=False)
    assert saved["settings"]["arch"] == "resnet18" and 1 <= len(saved["history"]) <= 2
    stamp = cawe.stat().st_mtime_ns
    with caplog.at_level("INFO"):
        train_cawe_classifier(tmp_path / "cawe.pt", items[:6], items[6:], "resnet18", 1, (64, 64), max_epochs=2,
                              patience=1, batch_size=4)  # fmt: skip
    assert cawe.stat().st_mtime_ns == stamp and "stage skipped" in caplog.text
    # other settings: retrained, the earlier file kept aside
    train_cawe_classifier(tmp_path / "cawe.pt", items[:6], [], "resnet18", 1, (64, 64), max_epochs=1, batch_size=4)
    assert list(tmp_path.glob("previous-*/cawe.pt"))
    colorizer = train_colorizer(tmp_path / "colorizer.pt", encoder_depth=18, crop_size=32, steps=2, batch_size=2)
    net = load_enhancers(_net(), cawe, colorizer)
    expected = torch.load(colorizer, weights_only=False)["state_dict"]
    assert all(torch.equal(net.colorizer.state_dict()[k], v) for k, v in expected.items())
    assert not any(p.requires_grad for p in net.classifier.parameters())
    with pytest.raises(FileNotFoundError, match="checkpoint does not exist"):
        load_enhancers(_net("cawe"), tmp_path / "none.pt", None)
    load_enhancers(_net("baseline"), None, None)  # nothing to load


def test_cawe_label_length_is_checked(sample, tmp_path):
    items = rsna_datalist(sample, "all")
    with pytest.raises(ValueError, match="cawe_label has 1 values, expected 14"):
        train_cawe_classifier(tmp_path / "c.pt", items[:2], [], "resnet18", 14, (64, 64), max_epochs=1)


def test_colorization_images_offline(tmp_path):
    images = colorization_images("skimage", max_side=64)
    assert len(images) >= 5 and all(i.ndim == 3 and i.shape[2] == 3 and i.max() <= 1 for i in images)
    assert "astronaut" in COLORIZATION_IMAGES
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(tmp_path / "a.jpg")
    assert colorization_images(str(tmp_path))[0].shape == (40, 50, 3)
    with pytest.raises(FileNotFoundError, match="no colour images"):
        colorization_images(str(tmp_path / "empty"))


def _engine(outputs, batch=None):
    return SimpleNamespace(state=SimpleNamespace(output=outputs, batch=batch))


def test_writers(tmp_path):
    from monai.data import MetaTensor

    image = MetaTensor(torch.rand(1, 64, 64), meta={"filename_or_obj": "/data/patient1.dcm"})
    output = {"image": image, "pred_box": torch.tensor([[1.0, 2.0, 11.0, 22.0], [5.0, 5.0, 9.0, 9.0]]),
              "pred_score": torch.tensor([0.4, 0.9]), "pred_label": torch.tensor([0, 0])}  # fmt: skip
    submission = RSNASubmissionWriter(tmp_path, score_threshold=0.3)
    submission(_engine([output]))
    text = submission.write().read_text().splitlines()
    assert text == ["patientId,PredictionString", "patient1,0.9000 5.0 5.0 4.0 4.0 0.4000 1.0 2.0 10.0 20.0"]
    net = _net("cawe").eval()
    CAWEMapWriter(tmp_path, net)(_engine([output]))
    assert np.asarray(Image.open(tmp_path / "patient1_cawe.png")).shape == (64, 64)
    CAWEMapWriter(tmp_path / "none", _net("baseline"))(_engine([output]))
    assert not (tmp_path / "none").exists() or not list((tmp_path / "none").iterdir())


def test_plot_froc(tmp_path):
    model = [{"fppi": 0.5, "sensitivity": 0.4, "threshold": 0.9}, {"fppi": 2.0, "sensitivity": 0.8, "threshold": 0.2}]
    report = {"froc": model, "trivial_baseline": {"froc": [{"fppi": 1.0, "sensitivity": 0.1, "threshold": 1}]}}
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    png = plot_froc(tmp_path / "metrics.json", tmp_path / "froc.png")
    assert Image.open(png).size == (480, 360)
    with pytest.raises(FileNotFoundError, match="no detection report"):
        plot_froc(tmp_path / "missing.json", tmp_path / "x.png")
