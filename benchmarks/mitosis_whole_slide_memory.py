"""Whole-slide inference of the mitosis_detection bundle: peak memory and seconds per megapixel by slide size.

For each side (2k, 8k, 20k by default) an H&E-like tiled TIFF is written tile by tile (the sample's target-scanner
images, flipped and rotated at random, so the slide is never whole in memory), then a fresh process runs
``common.engines.detect_whole_slide`` over it (512 px tiles, 12.5 % overlap, read region by region with
``common.data.TiffRegionReader``, boxes merged by NMS) and reports its peak RSS (``ru_maxrss``) and time. Flat peak
memory and a constant s/MP across sizes mean memory is bounded by the tile and time grows linearly with the area.
The network is the bundle's trained checkpoint when ``--checkpoint-root`` holds one (random weights otherwise:
time and memory do not depend on the weights, only the number of boxes does).

    python benchmarks/mitosis_whole_slide_memory.py [--sides 2048 8192 20480] [--checkpoint-root DIR] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import peak_rss_mib, stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "mitosis_detection"
TILE = 512


def write_slide(path: Path, side: int, sample: Path, seed: int = 0) -> Path:
    """An RGB tiled TIFF of ``side`` x ``side`` made of random sample tiles, written tile by tile."""
    import tifffile

    rng = np.random.default_rng(seed)
    sources = [tifffile.imread(p) for p in sorted(sample.glob("1*.tiff"))]
    block = 256  # the sample images' side; 4 of them fill one 512 px TIFF tile

    def tiles():
        for _ in range(-(-side // TILE) * -(-side // TILE)):
            tile = np.empty((TILE, TILE, 3), np.uint8)
            for by in range(0, TILE, block):
                for bx in range(0, TILE, block):
                    image = np.rot90(sources[rng.integers(len(sources))], int(rng.integers(4)))
                    tile[by : by + block, bx : bx + block] = image
            yield tile

    tifffile.imwrite(path, tiles(), shape=(side, side, 3), dtype=np.uint8, tile=(TILE, TILE), photometric="rgb")
    return path


def measure(slide: str, checkpoint_root: str | None) -> dict:
    """Run in a fresh process: detection over the slide; peak RSS and time."""
    import torch

    from common.engines import detect_whole_slide
    from common.workflows import load_config

    overrides = {"bundle_root": checkpoint_root} if checkpoint_root else {}
    parser = load_config(BUNDLE, "inference", **overrides)
    network = parser.get_parsed_content("network")
    model = Path(checkpoint_root or "", "models", "model.pt")
    if checkpoint_root and model.is_file():
        network.load_state_dict(torch.load(model, map_location="cpu", weights_only=True))
    detector = parser.get_parsed_content("detector")
    parser.get_parsed_content(
        "detector_ops"
    )  # the bundle's box selection (<= 100 boxes per tile, all kept after the merge)
    before = peak_rss_mib()
    found = detect_whole_slide(detector, slide, tile_size=TILE, overlap=0.125, progress=False)
    peak = peak_rss_mib()
    return {"megapixels": found["megapixels"], "seconds": found["seconds"], "tiles": found["tiles"],
            "boxes": len(found["box"]), "peak_rss_mb": peak, "rss_before_mb": before}  # fmt: skip


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[2048, 8192, 20480])
    parser.add_argument("--checkpoint-root", default=None, help="bundle root holding models/model.pt")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.checkpoint_root)))
        return 0
    from common.data import write_midog_sample

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mitosis_wsi_"))
    sample = write_midog_sample(workdir / "sample_data", seed=0, source_images=2, target_images=10, overwrite=True)
    rows = []
    for side in args.sides:
        slide = workdir / f"slide_{side}.tiff"
        with stopwatch() as watch:
            write_slide(slide, side, sample)
        written = watch.seconds
        cmd = [sys.executable, __file__, "--measure", str(slide)]
        if args.checkpoint_root:
            cmd += ["--checkpoint-root", args.checkpoint_root]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        row.update(side=side, file_mb=slide.stat().st_size / 2**20, write_seconds=written)
        rows.append(row)
        slide.unlink()
        print(f"{side}: {row}", file=sys.stderr)
    weights = "trained checkpoint" if args.checkpoint_root else "random weights"
    print(f"\nWhole-slide inference ({TILE} px tiles, 12.5 % overlap, 1 thread, {weights})")
    print("| slide | megapixels | TIFF on disk (MB) | tiles | boxes | peak RSS (MB) | seconds | s/MP |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['side']}² | {r['megapixels']:.1f} | {r['file_mb']:.0f} | {r['tiles']} | {r['boxes']} | "
              f"{r['peak_rss_mb']:.0f} | {r['seconds']:.1f} | {r['seconds'] / r['megapixels']:.3f} |")  # fmt: skip
    (workdir / "whole_slide_memory.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
