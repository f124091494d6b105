from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from common.data import image_mask_pairs, write_synovial_sample
from common.data.synovial_sample import main, render_synovial_phantom

NUM = 8


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_synovial_sample(tmp_path_factory.mktemp("syn") / "sample", num_images=NUM)


def _digest(folder: Path) -> str:
    files = sorted(folder.rglob("*.png"))
    return hashlib.sha256(
        b"".join(p.relative_to(folder).as_posix().encode() + p.read_bytes() for p in files)
    ).hexdigest()


def _load(pair: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(pair["image"]) as img, Image.open(pair["label"]) as mask:
        return np.asarray(img), np.asarray(mask)


def test_layout_and_formats(sample: Path):
    assert sorted(p.name for p in sample.iterdir()) == ["images", "masks"]
    names = [f"synovial_{i:03d}.png" for i in range(NUM)]
    assert sorted(p.name for p in (sample / "images").iterdir()) == names
    assert sorted(p.name for p in (sample / "masks").iterdir()) == names
    assert not [p for p in sample.parent.iterdir() if p.name.startswith(".")], "no temporary folder left behind"
    pairs = image_mask_pairs(sample)
    assert len(pairs) == NUM
    for pair in pairs:
        with Image.open(pair["image"]) as img, Image.open(pair["label"]) as mask:
            assert img.format == "PNG" and img.mode == "RGB" and img.size == (128, 128)
            assert mask.format == "PNG" and mask.mode == "L" and mask.size == (128, 128)
        rgb, m = _load(pair)
        assert rgb.dtype == np.uint8 and m.dtype == np.uint8
        assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]), "grey as RGB"
        assert set(np.unique(m)) == {0, 255}
        assert 0.005 < (m > 0).mean() < 0.2


def test_fluid_is_dark_and_darkness_alone_does_not_segment_it(sample: Path):
    ratios, best_dice, dark_elsewhere = [], [], []
    for pair in image_mask_pairs(sample):
        rgb, m = _load(pair)
        grey, mask = rgb[..., 0].astype(float), m > 0
        ring = ndimage.binary_dilation(mask, iterations=6) & ~mask
        ratios.append(grey[mask].mean() / grey[ring].mean())
        # as dark as the fluid but not fluid: shadows, cartilage, vessels, sheath pockets, synovium
        dark_elsewhere.append(((grey <= np.median(grey[mask])) & ~mask).sum() / mask.sum())
        dice = [2 * ((grey < t) & mask).sum() / ((grey < t).sum() + mask.sum()) for t in range(4, 200, 4)]
        best_dice.append(max(dice))
    assert max(ratios) < 0.85 and np.mean(ratios) < 0.65, "fluid is darker than its surroundings"
    assert min(dark_elsewhere) > 1.0, "there is more fluid-dark tissue outside the mask than fluid"
    # the best global threshold *per image* (an oracle) is far from solving the task
    assert max(best_dice) < 0.7 and np.mean(best_dice) < 0.4


def test_deterministic_refuses_overwrite_and_cli(sample: Path, tmp_path: Path, capsys):
    again = write_synovial_sample(tmp_path / "again", num_images=NUM)
    assert _digest(again) == _digest(sample), "same seed, same bytes"
    other = write_synovial_sample(tmp_path / "other", num_images=2, seed=1)
    assert _digest(other) != _digest(write_synovial_sample(tmp_path / "seed0", num_images=2))
    with pytest.raises(FileExistsError, match="not empty"):
        write_synovial_sample(again, num_images=2)
    assert len(list((again / "images").iterdir())) == NUM, "a refused write leaves the folder alone"
    write_synovial_sample(again, num_images=2, overwrite=True)
    assert len(list((again / "images").iterdir())) == 2
    with pytest.raises(ValueError, match="num_images"):
        write_synovial_sample(tmp_path / "none", num_images=0)
    with pytest.raises(ValueError, match="image_size"):
        write_synovial_sample(tmp_path / "tiny", image_size=16)

    assert main([str(tmp_path / "cli"), "--num-images", "2", "--seed", "1"]) == 0
    assert str((tmp_path / "cli").resolve()) in capsys.readouterr().out
    assert _digest(tmp_path / "cli") == _digest(other)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "cli"), "--num-images", "1"])
    assert "--overwrite" in capsys.readouterr().err


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch):
    import common.data.synovial_sample as module

    def broken(rng, size):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "render_synovial_phantom", broken)
    with pytest.raises(KeyboardInterrupt):
        module.write_synovial_sample(tmp_path / "s", num_images=2)
    assert list(tmp_path.iterdir()) == []


def test_other_sizes_and_cli_help(capsys):
    image, mask = render_synovial_phantom(np.random.default_rng(3), size=64)
    assert image.shape == mask.shape == (64, 64) and image.dtype == np.uint8 and mask.any()
    with pytest.raises(ValueError, match="at least 32"):
        render_synovial_phantom(np.random.default_rng(0), size=20)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "python -m common.data.synovial_sample" in capsys.readouterr().out
