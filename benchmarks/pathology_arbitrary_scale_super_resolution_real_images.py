"""ISTE (pathology_arbitrary_scale_super_resolution) against bicubic on real images its training never sees.

Training: the bundle's train.yaml with its defaults (or ``--epochs``) on the bundle's sample, which is cut from the
packaged training pictures only (``common.data.SR_TRAINING_SOURCES``: natural photographs, textures, a fundus
photograph, a telescope field). Test: textured tiles cut from the held-out pictures
(``common.data.SR_HELD_OUT_SOURCES``: the immunohistochemistry section, ``cell``, ``coins``, ``microaneurysms``),
which no sample or training set uses. Every tile is degraded as in the bundle (antialiased bicubic down-sampling by
the scale, Gaussian blur of ``blur_sigma`` LR pixels); bicubic up-sampling of the same LR input is scored in the
same script by the same PSNR / SSIM (MONAI metrics, whole tile, [0, 1] RGB).

Printed per scale (x2, x2.5, x3, x3.5, x4 by default): bicubic PSNR / SSIM, the model's PSNR / SSIM (mean over tiles,
then mean +- standard deviation over training seeds), its PSNR gain over bicubic (mean +- std over seeds), the worst
tile's gain (over all tiles and seeds), and seconds per output megapixel (CPU, block-wise whole-tile decoding). The
command line is printed with the table. A training run is resumed (not redone) when the work folder already holds
it with the same number of epochs.

    python benchmarks/pathology_arbitrary_scale_super_resolution_real_images.py [--epochs N] [--seeds 0 1 2]
        [--variants iste liif] [--scales 2 2.5 3 3.5 4] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import Stopwatch, stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "pathology_arbitrary_scale_super_resolution"
SCALES = (2.0, 2.5, 3.0, 3.5, 4.0)


def held_out_tiles(tile_size: int, per_image: int) -> list[tuple[str, torch.Tensor]]:
    """The benchmark's test tiles: textured crops of the held-out packaged pictures, ``(3, H, W)`` in [0, 1]."""
    from common.data import SR_HELD_OUT_SOURCES, real_sr_tiles

    tiles = real_sr_tiles(SR_HELD_OUT_SOURCES, tile_size, per_image, seed=0)
    return [(name, torch.from_numpy(t).permute(2, 0, 1).float() / 255.0) for name, t in tiles]


def train(variant: str, seed: int, epochs: int | None, workdir: Path, sample: Path) -> tuple[Path, float]:
    """Train one variant/seed under its own bundle root (resumed if already there); return the root and seconds."""
    from common.workflows import run_workflow

    root = workdir / f"{variant}_seed{seed}"
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "metadata.json").write_text((BUNDLE / "configs" / "metadata.json").read_text())
    overrides = {"bundle_root": str(root), "dataset_dir": str(sample), "variant": variant, "seed": seed}
    if epochs is not None:
        overrides["max_epochs"] = epochs
    timing = root / "train_seconds.json"  # {epochs: seconds} of the run that trained them
    recorded = json.loads(timing.read_text()) if timing.is_file() else {}
    watch = Stopwatch()
    run_workflow(BUNDLE, "train", quiet=True, **overrides)  # a finished run with these epochs does nothing
    key = str(overrides.get("max_epochs", "default"))
    if key not in recorded:
        recorded[key] = watch.seconds
        timing.write_text(json.dumps(recorded))
    return root, recorded[key]


def score(root: Path, variant: str, tiles, scales, blur_sigma: float) -> tuple[dict, float]:
    """PSNR / SSIM per (scale, tile) of the trained model under ``root``, and seconds per output megapixel."""
    from common.metrics.super_resolution import sr_quality
    from common.transforms import ArbitraryScaleDegrade
    from common.workflows import load_config

    overrides = {"bundle_root": str(root), "variant": variant}
    network = load_config(BUNDLE, "inference", **overrides).get_parsed_content("network_def")
    network.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
    network.eval()
    out, seconds, pixels = {}, 0.0, 0
    with torch.no_grad():
        for scale in scales:
            degrade = ArbitraryScaleDegrade(scale, blur_sigma)
            for i, (_, tile) in enumerate(tiles):
                lr, hr = degrade(tile)[None], degrade.hr_crop(tile)[None]
                with stopwatch() as watch:
                    sr = network.upsample(lr, hr.shape[-2], hr.shape[-1]).clamp(0, 1)
                seconds += watch.seconds
                pixels += hr.shape[-2] * hr.shape[-1]
                out[scale, i] = sr_quality(sr, hr)
    return out, seconds / (pixels / 1e6)


def main() -> int:
    from common.metrics.super_resolution import sr_quality
    from common.networks import ISTE_VARIANTS
    from common.sr_ops import upsample
    from common.transforms import ArbitraryScaleDegrade
    from common.workflows import load_config, run_workflow

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: train.yaml max_epochs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=["iste"], choices=list(ISTE_VARIANTS))
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    parser.add_argument("--tile-size", type=int, default=128, help="side of the held-out test tiles")
    parser.add_argument("--per-image", type=int, default=3, help="test tiles per held-out picture")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".benchmarks" / "pathology_arbitrary_scale_sr_real")
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])

    config = load_config(BUNDLE, "train")
    epochs = args.epochs if args.epochs is not None else int(config.get_parsed_content("max_epochs"))
    blur_sigma = float(load_config(BUNDLE, "evaluate").get("blur_sigma"))
    sample = args.workdir / "sample_data"
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, sample_dir=str(sample), seed=0)
    tiles = held_out_tiles(args.tile_size, args.per_image)
    scales = [float(s) for s in args.scales]

    bicubic = {}
    for scale in scales:
        degrade = ArbitraryScaleDegrade(scale, blur_sigma)
        for i, (_, tile) in enumerate(tiles):
            lr, hr = degrade(tile)[None], degrade.hr_crop(tile)[None]
            bicubic[scale, i] = sr_quality(upsample(lr, hr.shape[-2:], "bicubic"), hr)

    results: dict[str, list[dict]] = {}
    speed: dict[str, list[float]] = {}
    train_seconds: dict[str, list[float]] = {}
    for variant in args.variants:
        for seed in args.seeds:
            root, seconds = train(variant, seed, epochs, args.workdir, sample)
            scores, s_per_mp = score(root, variant, tiles, scales, blur_sigma)
            results.setdefault(variant, []).append(scores)
            speed.setdefault(variant, []).append(s_per_mp)
            train_seconds.setdefault(variant, []).append(seconds)
            print(f"trained {variant} seed {seed}: {seconds:.0f} s", flush=True)

    names = sorted({name for name, _ in tiles})
    counts = ", ".join(f"{n} {sum(1 for m, _ in tiles if m == n)}" for n in names)
    iterations = epochs * int(np.ceil(len(list((sample / "train").glob("*.png"))) / config.get("batch_size")))
    print(f"\n$ {command}")
    print(f"ISTE vs bicubic on {len(tiles)} held-out real tiles ({counts}; up to {args.tile_size} px), "
          f"degradation: antialiased bicubic down-sampling + Gaussian blur sigma {blur_sigma:g} LR px")  # fmt: skip
    print(f"training: bundle defaults on its sample ({len(list((sample / 'train').glob('*.png')))} train tiles of "
          f"SR_TRAINING_SOURCES), {epochs} epochs ({iterations} iterations), seeds {args.seeds}")  # fmt: skip
    print(f"{'scale':<7}{'method':<8}{'PSNR dB':>16}{'SSIM':>18}{'gain dB':>16}{'worst tile':>12}{'s/MP':>8}")
    for scale in scales:
        b_psnr = [bicubic[scale, i]["psnr"] for i in range(len(tiles))]
        b_ssim = [bicubic[scale, i]["ssim"] for i in range(len(tiles))]
        print(f"x{scale:<6g}{'bicubic':<8}{np.mean(b_psnr):>16.2f}{np.mean(b_ssim):>18.4f}")
        for variant, runs in results.items():
            psnr = [np.mean([r[scale, i]["psnr"] for i in range(len(tiles))]) for r in runs]
            ssim = [np.mean([r[scale, i]["ssim"] for i in range(len(tiles))]) for r in runs]
            gain = [p - np.mean(b_psnr) for p in psnr]
            worst = min(r[scale, i]["psnr"] - b_psnr[i] for r in runs for i in range(len(tiles)))
            print(f"{'':<7}{variant:<8}{np.mean(psnr):>10.2f} ± {np.std(psnr):.2f}"
                  f"{np.mean(ssim):>12.4f} ± {np.std(ssim):.4f}{np.mean(gain):>+10.2f} ± {np.std(gain):.2f}"
                  f"{worst:>+12.2f}{np.mean(speed[variant]):>8.1f}")  # fmt: skip
    for variant in results:
        print(f"train seconds per seed, {variant}: " + ", ".join(f"{s:.0f}" for s in train_seconds[variant]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
