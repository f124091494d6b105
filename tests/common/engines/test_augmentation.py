"""Tests of common.engines.augmentation: geometric counterparts, WGAN/CAE training and sampling, class folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from common.data import ImageFileError
from common.engines import (
    AUGMENTATION_REGIMES,
    GEOMETRIC_OPERATIONS,
    geometric_counterparts,
    write_augmented_class_folders,
)
from common.engines import augmentation as augmentation_module

# ------------------------------------------------------------------------------------------- geometric


def test_six_distinct_geometric_counterparts():
    image = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)  # asymmetric
    out = geometric_counterparts(image)
    assert len(out) == len(GEOMETRIC_OPERATIONS) == 6
    flat = {a.tobytes() for a in out} | {image.tobytes()}
    assert len(flat) == 7  # six distinct and none is the original
    hflip, vflip, r90, r180, r270, transpose = out
    assert np.array_equal(hflip, image[:, ::-1]) and np.array_equal(vflip, image[::-1])
    assert np.array_equal(r180, image[::-1, ::-1]) and np.array_equal(transpose, image.transpose(1, 0, 2))
    assert np.array_equal(np.rot90(r90, -1), image) and np.array_equal(np.rot90(r270, 1), image)
    # all are pixel permutations: same histogram
    assert all(np.array_equal(np.sort(a, axis=None), np.sort(image, axis=None)) for a in out)
    # channel-first tensors with spatial axes (-2, -1) give the same images
    tensor_out = geometric_counterparts(torch.from_numpy(image).permute(2, 0, 1), spatial_axes=(-2, -1))
    assert all(np.array_equal(t.permute(1, 2, 0).numpy(), a) for t, a in zip(tensor_out, out))
    assert geometric_counterparts(np.zeros((4, 6)))[2].shape == (6, 4)
    with pytest.raises(ValueError, match="spatial_axes"):
        geometric_counterparts(image, spatial_axes=(0, 0))


# ------------------------------------------------------------------------------------------- class folders


def _write_dataset(root, squares, per_class=3, size=40):
    """Two classes of RGB PNGs (non-square originals are resized by the writer)."""
    datalist = []
    for label, bright in enumerate((True, False)):
        images = squares(per_class, size, bright, seed=label)
        for i, image in enumerate(images):
            path = root / f"c{label}_{i}.png"
            array = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            array[0, 0] = (255, 0, 0)  # asymmetric corner: every geometric counterpart differs
            Image.fromarray(array).save(path)
            datalist.append({"image": str(path), "label": label})
    return datalist


FAST = {"wgan_options": {"width": 4, "latent_dim": 8, "batch_size": 4}, "cae_options": {"width": 4, "depth": 2}}


@pytest.mark.parametrize(
    ("regime", "expected"),
    [("none", {"original": 3}), ("geometric", {"original": 3, "geometric": 18}),
     ("wgan", {"original": 3, "wgan": 5}), ("cae", {"original": 3, "cae": 5})],
)  # fmt: skip
def test_class_folders_have_the_expected_counts(tmp_path, regime, expected, squares):
    datalist = _write_dataset(tmp_path, squares)
    out = tmp_path / "out"
    items = write_augmented_class_folders(datalist, ["dark", "bright"], out, regime, per_class=5, image_size=32,
                                          epochs=2, seed=0, progress=False, **FAST)  # fmt: skip
    assert regime in AUGMENTATION_REGIMES
    for label, name in enumerate(["dark", "bright"]):
        mine = [it for it in items if it["label"] == label]
        counts = {s: sum(it["source"] == s for it in mine) for s in {it["source"] for it in mine}}
        assert counts == expected
        files = sorted((out / name).glob("*.png"))
        assert len(files) == sum(expected.values()) == len(mine)
        assert all(it["image"].startswith(str(out / name)) for it in mine)
    with Image.open(items[0]["image"]) as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    if regime == "geometric":
        arrays = [np.asarray(Image.open(it["image"])).tobytes() for it in items if it["label"] == 0]
        assert len(set(arrays)) == len(arrays)


def test_class_folders_are_deterministic_and_reused(tmp_path, monkeypatch, squares):
    datalist = _write_dataset(tmp_path, squares)
    kwargs = dict(regime="wgan", per_class=4, image_size=32, epochs=2, seed=3, progress=False, **FAST)
    first = write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "one", **kwargs)
    second = write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "two", **kwargs)
    for x, y in zip(first, second):
        assert open(x["image"], "rb").read() == open(y["image"], "rb").read()
    manifest = json.loads((tmp_path / "one" / "augmentation_manifest.json").read_text())
    assert manifest["regime"] == "wgan" and manifest["per_class"] == 4 and len(manifest["sources"]) == 6

    def no_training(*args, **kwargs):
        raise AssertionError("a matching folder must be re-used without retraining")

    monkeypatch.setattr(augmentation_module, "train_wgan", no_training)
    assert write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "one", **kwargs) == first
    # what every rank of a multi-process run does after rank 0 wrote the folder: read it, never write
    assert write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "one", **kwargs, reuse_only=True) == first
    with pytest.raises(FileNotFoundError, match="augmentation stage writes it first"):
        write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "three", **kwargs, reuse_only=True)
    with pytest.raises(FileNotFoundError, match="no complete wgan training set"):
        write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "one", **{**kwargs, "seed": 9}, reuse_only=True)
    assert not (tmp_path / "three").exists()
    # a different request replaces the folder (here: the seed changes -> retraining is attempted)
    with pytest.raises(AssertionError, match="re-used"):
        write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "one", **{**kwargs, "seed": 4})
    assert write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "one", **kwargs) == first  # untouched
    # a changed source file invalidates the manifest too
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(datalist[0]["image"])
    with pytest.raises(AssertionError, match="re-used"):
        write_augmented_class_folders(datalist, ["a", "b"], tmp_path / "one", **kwargs)


def test_class_folders_leave_nothing_on_error(tmp_path, monkeypatch, squares):
    datalist = _write_dataset(tmp_path, squares)
    out = tmp_path / "out"
    names = ["a", "b"]
    with pytest.raises(ValueError, match="unknown augmentation regime"):
        write_augmented_class_folders(datalist, names, out, "mixup")
    with pytest.raises(ValueError, match="per_class"):
        write_augmented_class_folders(datalist, names, out, "wgan", per_class=-1)
    with pytest.raises(ValueError, match="label"):
        write_augmented_class_folders([{"image": datalist[0]["image"], "label": 2}], names, out)
    with pytest.raises(ValueError, match="power of two"):
        write_augmented_class_folders(datalist, names, out, "cae", image_size=48)
    with pytest.raises(ValueError, match="no training images|needs training images"):
        write_augmented_class_folders(datalist[:3], names, out, "cae", per_class=2, image_size=32)
    # a truncated file: named in the error, nothing written
    broken = tmp_path / "broken.png"
    broken.write_bytes(open(datalist[0]["image"], "rb").read()[:40])
    with pytest.raises(ImageFileError, match="broken.png"):
        write_augmented_class_folders(datalist + [{"image": str(broken), "label": 0}], names, out, "geometric")
    assert not out.exists()

    # a failure during generator training leaves neither the folder nor a temporary folder
    def failing(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(augmentation_module, "train_autoencoder", failing)
    with pytest.raises(RuntimeError, match="boom"):
        write_augmented_class_folders(datalist, names, out, "cae", per_class=2, image_size=32, progress=False)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    # a foreign non-empty folder is never replaced
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="manifest"):
        write_augmented_class_folders(datalist, names, out, "none")
    assert (out / "keep.txt").read_text() == "mine"
