"""rVTT on real images it never saw: bicubic vs the bundle's kept (stage-4, adversarially trained) generator.

The bundle is trained with its defaults (``train.yaml``; ``--max_epochs`` and the patch size can be changed) on
``write_sr_real_sample``'s training tiles, cut from :data:`common.data.SR_TRAINING_SOURCES` (photographs, textures,
a fundus photograph, hubble); every training seed trains its own generator. It is scored on textured tiles cut from
:data:`common.data.SR_HELD_OUT_SOURCES` (immunohistochemistry, cell, coins, microaneurysms): pictures no training
or validation tile comes from. Each HR tile is degraded by the bundle's bicubic downsampling, and bicubic
upsampling of the same LR input is scored beside the network, by the same code:

- PSNR (dB) and SSIM (RGB, [0, 1], MONAI's metrics, no border crop);
- GMSD (gradient magnitude similarity deviation, Xue et al. 2014; lower is better): a full-reference perceptual
  index that needs no learned weights, so it runs offline (LPIPS needs downloaded network weights; the paper's
  Perceptual Index needs NIQE's and Ma et al.'s trained models);
- HF ratio: Laplacian energy of the output over that of the HR tile (1 = as much fine detail as the reference;
  bicubic < 1, over-smoothed);
- seconds per output megapixel (eager, batch 1, one thread).

Per scale the table gives the mean over tiles (mean +- std over seeds when there are several), the worst tile
(smallest PSNR gain over bicubic, over all seeds) and the training time. ``SRNet`` is the same run's generator at
the end of stage 1 (before any adversarial update), so the perception-distortion trade-off of the four-stage
schedule shows side by side with the kept ``rVTT`` model.

    python benchmarks/microscopy_super_resolution_real_images.py --scales 2 4 --seeds 0
    python benchmarks/microscopy_super_resolution_real_images.py --scales 9 16 --tile_size 288 --patch_size 144
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import stopwatch, super_resolve_tiles  # noqa: E402

from common.data import SR_HELD_OUT_SOURCES, real_sr_tiles, write_sr_real_sample  # noqa: E402
from common.metrics import gmsd, high_frequency_ratio, sr_quality  # noqa: E402
from common.sr_ops import upsample  # noqa: E402
from common.workflows import load_config, run_workflow  # noqa: E402

BUNDLE = ROOT / "bundles" / "microscopy_super_resolution"
MIN_LR_SIDE = 16  # held-out tiles whose LR input would be smaller are left out at that scale


def held_out_tiles(tile_size: int, per_image: int, scale: int, seed: int = 1) -> list[tuple[str, torch.Tensor]]:
    """Textured held-out tiles as ``(name, (3, H, W) float tensor in [0, 1])``, large enough for ``scale``."""
    tiles = []
    for name, tile in real_sr_tiles(SR_HELD_OUT_SOURCES, tile_size, per_image, seed=seed):
        if min(tile.shape[:2]) // scale >= MIN_LR_SIDE:
            tiles.append((name, torch.from_numpy(tile).permute(2, 0, 1).float() / 255.0))
    return tiles


def score(predict, tiles: list[tuple[str, torch.Tensor]], scale: int) -> dict[str, object]:
    """Per-tile PSNR/SSIM/GMSD/HF ratio of ``predict(lr, hr_size)`` and its seconds per output megapixel."""
    pairs, seconds_per_mp = super_resolve_tiles(predict, [hr for _, hr in tiles], scale)
    rows = []
    for sr, hr in pairs:
        quality = sr_quality(sr, hr)
        rows.append([quality["psnr"], quality["ssim"], float(gmsd(sr, hr)[0]), float(high_frequency_ratio(sr, hr)[0])])
    return {"tiles": np.asarray(rows), "s_per_mp": seconds_per_mp}


def train_once(work: Path, dataset_dir: str, scale: int, seed: int, args: argparse.Namespace) -> dict[str, object]:
    """Train the bundle once (defaults + the given overrides); the kept model, the stage-1 generator and the plan."""
    root = work / f"x{scale}_seed{seed}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    overrides = {"bundle_root": str(root), "dataset_dir": dataset_dir, "scale": scale, "seed": seed,
                 "stage1_snapshot": str(root / "stage1" / "generator.pt")}  # fmt: skip
    if args.max_epochs:
        overrides["max_epochs"] = args.max_epochs
    if args.patch_size:
        overrides["patch_size"] = args.patch_size
        overrides["roi_patch_size"] = args.patch_size // 2
    if args.adversarial_weights:
        overrides["adversarial_weights"] = list(args.adversarial_weights)
    with stopwatch() as watch:
        run_workflow(BUNDLE, "train", quiet=True, **overrides)
    seconds = watch.seconds
    plan = json.loads((root / "models" / "training_plan.json").read_text())

    def network(path: Path) -> torch.nn.Module:
        net = load_config(BUNDLE, "inference", bundle_root=str(root)).get_parsed_content("network_def")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return net.eval()

    nets = {"rVTT": network(root / "models" / "model.pt")}
    if (root / "stage1" / "generator.pt").is_file():
        nets["SRNet"] = network(root / "stage1" / "generator.pt")
    return {"nets": nets, "plan": plan, "train_s": seconds}


def _cell(values: list[float], digits: int) -> str:
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {float(np.std(values)):.{digits}f}"


def results_table(scale: int, tiles: list, bicubic: dict, runs: list[dict], args: argparse.Namespace) -> list[str]:
    """The markdown lines of one scale: bicubic, SRNet (stage 1) and rVTT (kept model) side by side."""
    columns = ["bicubic", *[n for n in ("SRNet", "rVTT") if n in runs[0]["scores"]]]
    nets = columns[1:]

    def per_seed(column: str, metric: int) -> list[float]:
        if column == "bicubic":
            return [float(bicubic["tiles"][:, metric].mean())]
        return [float(r["scores"][column]["tiles"][:, metric].mean()) for r in runs]

    def gain(column: str, metric: int) -> list[float]:
        return [v - per_seed("bicubic", metric)[0] for v in per_seed(column, metric)]

    names = sorted({name for name, _ in tiles})
    lines = [
        f"\nx{scale}: {len(tiles)} held-out tiles of {args.tile_size} px ({', '.join(names)}), "
        f"{len(runs)} training seed(s) {args.seeds}",
        f"| metric | {' | '.join(columns)} |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for label, metric, digits in (("PSNR (dB)", 0, 2), ("SSIM", 1, 4), ("GMSD (lower better)", 2, 4),
                                  ("HF ratio (1 = HR)", 3, 3)):  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(_cell(per_seed(c, metric), digits) for c in columns) + " |")
    lines.append("| PSNR gain over bicubic (dB) | - | " + " | ".join(_cell(gain(c, 0), 2) for c in nets) + " |")
    lines.append("| SSIM gain over bicubic | - | " + " | ".join(_cell(gain(c, 1), 4) for c in nets) + " |")
    worst = []
    for c in nets:
        delta = np.concatenate([r["scores"][c]["tiles"][:, 0] - bicubic["tiles"][:, 0] for r in runs])
        worst.append(f"{float(delta.min()):+.2f} ({tiles[int(np.argmin(delta)) % len(tiles)][0]})")
    lines.append("| worst tile, PSNR gain (dB) | - | " + " | ".join(worst) + " |")
    speed = [f"{bicubic['s_per_mp']:.3f}"] + [_cell([r["scores"][c]["s_per_mp"] for r in runs], 2) for c in nets]
    lines.append("| s / output MP | " + " | ".join(speed) + " |")
    train_s = _cell([r["train_s"] for r in runs], 0)
    lines.append("| train s (whole schedule, one run) | - | " + " | ".join(train_s for _ in nets) + " |")
    kept = sorted({f"epoch {r['plan']['best'].get('epoch')} (stage {r['plan']['best'].get('stage')})" for r in runs})
    lines.append(f"kept rVTT model (model.pt): {', '.join(kept)} of {runs[0]['plan'].get('epochs_completed')} epochs; "
                 "SRNet: the same run's generator at the end of stage 1")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4], help="scale factors (paper: 4 9 16)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (one model each)")
    parser.add_argument("--max_epochs", type=int, default=None, help="default: train.yaml's (the full schedule)")
    parser.add_argument("--patch_size", type=int, default=None, help="HR training patch (default: train.yaml's)")
    parser.add_argument("--tile_size", type=int, default=192, help="side of the held-out HR tiles")
    parser.add_argument("--per_image", type=int, default=3, help="held-out tiles per held-out image")
    parser.add_argument("--adversarial_weights", type=float, nargs=2, default=None,
                        help="stage-4 weights of the T1 and T2 adversarial terms (default: train.yaml's)")  # fmt: skip
    parser.add_argument("--keep", default=None, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    work = Path(args.keep or tempfile.mkdtemp(prefix="rvtt_real_"))
    work.mkdir(parents=True, exist_ok=True)
    dataset_dir = str(work / "sample_data")
    sample_tile = max(192, args.patch_size or 0)
    write_sr_real_sample(dataset_dir, tile_size=min(288, sample_tile), seed=0)

    lines = []
    for scale in args.scales:
        tiles = held_out_tiles(args.tile_size, args.per_image, scale)
        bicubic = score(lambda lr, size: upsample(lr, size, "bicubic"), tiles, scale)
        runs = []
        for seed in args.seeds:
            run = train_once(work, dataset_dir, scale, seed, args)
            run["scores"] = {name: score(lambda lr, size, n=net: n(lr), tiles, scale)
                             for name, net in run["nets"].items()}  # fmt: skip
            best = run["plan"]["best"]
            print(f"x{scale} seed {seed}: kept model from epoch {best.get('epoch')} (stage {best.get('stage')}), "
                  f"trained in {run['train_s']:.0f} s", flush=True)  # fmt: skip
            runs.append(run)
        table = results_table(scale, tiles, bicubic, runs, args)
        lines.extend(table)
        print("\n".join(table), flush=True)

    command = "python benchmarks/microscopy_super_resolution_real_images.py " + " ".join(argv or sys.argv[1:])
    print(f"\nrVTT on held-out real images, bundle defaults unless given: {command}")
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
