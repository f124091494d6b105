"""rVTT microscopy super resolution: PSNR / SSIM per scale for nearest, bicubic and the trained variants, side by side.

Like the paper's Table 1 (without its Perceptual Index, which needs NIQE/Ma et al. models that are not available
offline), on the held-out test tiles of the bundle's sample (or ``--dataset_dir``). For every scale the bundle is
trained from scratch in each variant, with the same epoch budget:

- ``SRNet``: stage 1 only (``J_recon`` = L1 + perceptual);
- ``SRNet-w``: stage 1 with the edge-weighted L1;
- ``T1``: the four-stage schedule with only T1's adversarial term in stage 4;
- ``T1+T2``: the full four-stage schedule (the paper's method).

Each HR test tile is degraded by bicubic downsampling; the table reports mean PSNR (dB) / SSIM over the tiles and the
model's seconds per megapixel of output (eager, batch 1, this machine). Models are the kept ``model.pt`` of each
variant: the best-validated generator of stage 4 for T1 and T1+T2, of stage 1 for SRNet and SRNet-w (no stage 4).
For held-out real images see ``microscopy_super_resolution_real_images.py``.

    python benchmarks/microscopy_super_resolution.py --scales 4 --epochs 20
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import stopwatch, super_resolve_tiles  # noqa: E402

from common.data import sr_tile_datalist, write_sr_tile_sample  # noqa: E402
from common.metrics import sr_quality  # noqa: E402
from common.sr_ops import upsample  # noqa: E402
from common.workflows import load_config, run_workflow  # noqa: E402

BUNDLE = ROOT / "bundles" / "microscopy_super_resolution"


def variants(epochs: int) -> dict[str, dict]:
    """Config overrides of each variant for a total of ``epochs`` epochs (stage 1: 60%, stages 2-4: the rest)."""
    s1 = max(1, round(0.6 * epochs))
    s23 = max(1, round(0.15 * epochs))
    schedule = [s1, s23, s23]
    return {
        "SRNet": {"stage_epochs": [epochs, 0, 0]},
        "SRNet-w": {"stage_epochs": [epochs, 0, 0], "edge_alpha": 2.0},
        "T1": {"stage_epochs": schedule, "adversarial_weights": [0.00005, 0.0]},  # train.yaml's T1 weight, no T2 term
        "T1+T2": {"stage_epochs": schedule},
    }


def load_tiles(dataset_dir: str) -> list[torch.Tensor]:
    tiles = []
    for item in sr_tile_datalist(dataset_dir, "test"):
        array = np.asarray(Image.open(item["image"]).convert("RGB"), dtype=np.float32) / 255.0
        tiles.append(torch.from_numpy(array).permute(2, 0, 1))
    return tiles


def score(predict, tiles: list[torch.Tensor], scale: int) -> dict[str, float]:
    """Mean PSNR/SSIM of ``predict(lr, hr_size)`` over the tiles, and seconds per output megapixel."""
    pairs, seconds_per_mp = super_resolve_tiles(predict, tiles, scale)
    qualities = [sr_quality(sr, hr) for sr, hr in pairs]
    return {"psnr": float(np.mean([q["psnr"] for q in qualities])),
            "ssim": float(np.mean([q["ssim"] for q in qualities])), "s_per_mp": seconds_per_mp}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[4], help="scale factors (paper: 4 9 16)")
    parser.add_argument("--epochs", type=int, default=20, help="total epochs per variant (all stages)")
    parser.add_argument("--variants", nargs="+", default=None, help="subset of SRNet SRNet-w T1 T1+T2")
    parser.add_argument("--dataset_dir", default=None, help="a dataset in the bundle's layout (default: the sample)")
    parser.add_argument("--keep", default=None, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    work = Path(args.keep or tempfile.mkdtemp(prefix="rvtt_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    dataset_dir = args.dataset_dir or str(work / "sample_data")
    if args.dataset_dir is None and not (work / "sample_data").is_dir():
        write_sr_tile_sample(dataset_dir, seed=0)
    tiles = load_tiles(dataset_dir)
    chosen = variants(args.epochs)
    if args.variants:
        chosen = {name: chosen[name] for name in args.variants}

    rows: dict[int, dict[str, dict[str, float]]] = {}
    for scale in args.scales:
        rows[scale] = {mode: score(lambda lr, size, m=mode: upsample(lr, size, m), tiles, scale)
                       for mode in ("nearest", "bicubic")}  # fmt: skip
        for name, overrides in chosen.items():
            root = work / f"x{scale}_{name}"
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            settings = {
                "bundle_root": str(root),
                "dataset_dir": dataset_dir,
                "scale": scale,
                # the variant's schedule is the whole run (not compressed from train.yaml's full schedule)
                "full_schedule_epochs": args.epochs,
                **overrides,
            }
            with stopwatch() as watch:
                run_workflow(BUNDLE, "train", quiet=True, max_epochs=args.epochs, **settings)
            train_seconds = watch.seconds
            network = load_config(BUNDLE, "inference", bundle_root=str(root), scale=scale).get_parsed_content(
                "network_def"
            )
            network.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
            network.eval()
            rows[scale][name] = {**score(lambda lr, size, net=network: net(lr), tiles, scale), "train_s": train_seconds}
            print(f"x{scale} {name}: {rows[scale][name]}", flush=True)

    columns = ["nearest", "bicubic", *chosen]
    print(f"\nrVTT microscopy SR, {len(tiles)} held-out tiles of {dataset_dir}, {args.epochs} epochs per variant "
          f"(kept model.pt)")  # fmt: skip
    header = f"| scale | metric | {' | '.join(columns)} |"
    print(header)
    print("|" + "---|" * (len(columns) + 2))
    for scale, row in rows.items():
        print(f"| x{scale} | PSNR (dB) | " + " | ".join(f"{row[c]['psnr']:.2f}" for c in columns) + " |")
        print(f"| x{scale} | SSIM | " + " | ".join(f"{row[c]['ssim']:.3f}" for c in columns) + " |")
        print(f"| x{scale} | s / output MP | " + " | ".join(f"{row[c]['s_per_mp']:.3f}" for c in columns) + " |")
        print(f"| x{scale} | train s | " + " | ".join("-" if c in ("nearest", "bicubic") else f"{row[c]['train_s']:.0f}"
                                                      for c in columns) + " |")  # fmt: skip
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
