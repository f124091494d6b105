"""Benchmark of the pathology_arbitrary_scale_super_resolution bundle (ISTE) on its held-out sample tiles.

The sample's test tiles come from held-out areas of the training pictures; for pictures the training never sees
see ``pathology_arbitrary_scale_super_resolution_real_images.py``.

Trains ISTE, its Table 2 ablations (without LFI / STF / LTD) and the LIIF-equivalent configuration (LFI, STF and
LTD off) with the bundle's train.yaml on the same sample, then scores nearest, bicubic and every trained variant by
PSNR (dB) and SSIM at x2, x3, x4, x6 and x8 (x6, x8 are outside the training range U(1, 4)) on the test tiles,
degraded as in training; prints the tables side by side with seconds per megapixel of output (CPU, whole-tile
block-wise decoding).

    python benchmarks/pathology_arbitrary_scale_super_resolution.py [--epochs N] [--variants iste liif] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "pathology_arbitrary_scale_super_resolution"
SCALES = (2.0, 3.0, 4.0, 6.0, 8.0)
DEFAULT_EPOCHS = 4  # the bundle's short schedule (short_epochs: 60 iterations of 4 patches on the 60-tile sample)


def _load(path: str) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as img:
        return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).float() / 255.0


def main() -> int:
    from common.data import sr_tile_datalist
    from common.metrics.super_resolution import sr_quality
    from common.networks import ISTE_VARIANTS
    from common.sr_ops import upsample
    from common.transforms import ArbitraryScaleDegrade
    from common.workflows import load_config, run_workflow

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--variants", nargs="+", default=list(ISTE_VARIANTS), choices=list(ISTE_VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".benchmarks" / "pathology_arbitrary_scale_sr")
    args = parser.parse_args()
    torch.set_num_threads(1)

    sample = args.workdir / "sample_data"
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, sample_dir=str(sample), seed=args.seed)
    tiles = [_load(item["image"]) for item in sr_tile_datalist(str(sample), "test")]
    degraded = {}
    for scale in SCALES:
        degrade = ArbitraryScaleDegrade(scale, blur_sigma=load_config(BUNDLE, "evaluate").get("blur_sigma"))
        degraded[scale] = [(degrade(t)[None], degrade.hr_crop(t)[None]) for t in tiles]

    rows: dict[str, dict[float, tuple[float, float]]] = {}
    speed: dict[str, float] = {}
    train_seconds: dict[str, float] = {}
    for mode in ("nearest", "bicubic"):
        rows[mode] = {}
        for scale in SCALES:
            q = [sr_quality(upsample(lr, hr.shape[-2:], mode), hr) for lr, hr in degraded[scale]]
            rows[mode][scale] = (float(np.mean([x["psnr"] for x in q])), float(np.mean([x["ssim"] for x in q])))
    for variant in args.variants:
        root = args.workdir / variant
        overrides = {"bundle_root": str(root), "dataset_dir": str(sample), "variant": variant, "seed": args.seed}
        (root / "configs").mkdir(parents=True, exist_ok=True)
        (root / "configs" / "metadata.json").write_text((BUNDLE / "configs" / "metadata.json").read_text())
        with stopwatch() as watch:
            run_workflow(BUNDLE, "train", quiet=True, max_epochs=args.epochs, **overrides)
        train_seconds[variant] = watch.seconds
        network = load_config(BUNDLE, "inference", **overrides).get_parsed_content("network_def")
        network.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
        network.eval()
        rows[variant], seconds, pixels = {}, 0.0, 0
        with torch.no_grad():
            for scale in SCALES:
                q = []
                for lr, hr in degraded[scale]:
                    with stopwatch() as watch:
                        sr = network.upsample(lr, hr.shape[-2], hr.shape[-1])
                    seconds += watch.seconds
                    pixels += hr.shape[-2] * hr.shape[-1]
                    q.append(sr_quality(sr, hr))
                psnr, ssim = np.mean([x["psnr"] for x in q]), np.mean([x["ssim"] for x in q])
                rows[variant][scale] = (float(psnr), float(ssim))
        speed[variant] = seconds / (pixels / 1e6)

    batches = -(-len(sr_tile_datalist(str(sample), "train")) // int(load_config(BUNDLE, "train").get("batch_size")))
    print(f"\nISTE on the held-out sample tiles: {len(tiles)} test tiles of {tiles[0].shape[-1]} px, "
          f"{args.epochs} epochs ({args.epochs * batches} iterations), seed {args.seed}; "
          "PSNR dB / SSIM")  # fmt: skip
    header = f"{'method':<13}" + "".join(f"{'x' + format(s, 'g'):>16}" for s in SCALES)
    print(header + f"{'s/MP out':>10}{'train s':>9}")
    for name, scores in rows.items():
        cells = "".join(f"{p:>9.2f} {s:.4f}" for p, s in (scores[sc] for sc in SCALES))
        extra = f"{speed[name]:>10.1f}{train_seconds[name]:>9.0f}" if name in speed else ""
        print(f"{name:<13}{cells}{extra}")
    bicubic = rows["bicubic"]
    for name in speed:
        gains = "  ".join(f"x{format(s, 'g')} {rows[name][s][0] - bicubic[s][0]:+.2f}" for s in SCALES)
        print(f"PSNR gain over bicubic, {name:<12} {gains}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
