"""Whole-slide super-resolution of both SR bundles: peak memory and seconds per megapixel by slide size.

For each side (2k², 8k², 16k² by default) a tiled RGB TIFF (512 px tiles, zlib) is written tile by tile into a
temporary folder, made of scikit-image's ``immunohistochemistry`` section (512², flipped and rotated at random), so
the slide is never whole in memory. A fresh process per (network, slide) then runs
``common.engines.super_resolve_whole_slide``: tiles read region by region through
``common.data.RegionTiffWSIReader`` (MONAI's tifffile ``WSIReader``, decoding only the TIFF tiles a region touches),
blended in their overlap, written as a tiled pyramidal TIFF; it reports its peak RSS (``ru_maxrss``) and time.

Protocol. Full 16k² SR is not feasible on this 2-core CPU: RRDB x4 costs ~50 s per input megapixel on an idle core
(~100 s on this shared machine), so a 16k² slide would take 4-7 h, and ISTE x2 ~2.5x that. So every slide is opened
whole, but the SR covers a **full-width band** of it (``--band-rows`` tile rows from the top, every column): what
grows with the slide (the row-to-row overlap file, the pyramid levels, the number of tiles) then has the slide's own
width, and time is per input megapixel of the band. ``--full-sides`` lists slides also super-resolved whole (by the
``--full-networks``). Networks are the bundles' default architectures (RRDB generator x4, ISTE x2) with random
weights: time and memory do not depend on the weights.

    python benchmarks/sr_whole_slide.py [--sides 2048 8192 16384] [--networks rrdb iste] [--full-sides 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, peak_rss_mib, run_measured, stopwatch  # noqa: E402

INPUT_TILE = 512
NETWORKS = {  # bundle, scale, LR tile side, LR overlap
    "rrdb": ("microscopy_super_resolution", 4, 256, 16),
    "iste": ("pathology_arbitrary_scale_super_resolution", 2, 128, 16),
}


def write_slide(path: Path, side: int, seed: int = 0) -> Path:
    """An RGB tiled TIFF of ``side`` x ``side`` from the packaged IHC section, written tile by tile."""
    import tifffile

    from common.data import real_sr_source

    rng = np.random.default_rng(seed)
    source = real_sr_source("immunohistochemistry")[:INPUT_TILE, :INPUT_TILE]

    def tiles():
        for _ in range((-(-side // INPUT_TILE)) ** 2):
            tile = np.rot90(source, int(rng.integers(4)))
            yield np.ascontiguousarray(tile[:, ::-1] if rng.integers(2) else tile)

    tifffile.imwrite(path, tiles(), shape=(side, side, 3), dtype=np.uint8, tile=(INPUT_TILE, INPUT_TILE),
                     photometric="rgb", compression="zlib", bigtiff=True)  # fmt: skip
    return path


def build_network(name: str):
    """The bundle's default network (its inference.yaml ``network_def``), untrained."""
    from common.workflows import load_config

    bundle, scale, _, _ = NETWORKS[name]
    overrides = {"scale": scale} if name == "iste" else {}
    # a bundle root without models/: the architecture of inference.yaml, not that of a local training plan
    parser = load_config(ROOT / "bundles" / bundle, "inference", bundle_root=tempfile.mkdtemp(), **overrides)
    return parser.get_parsed_content("network")


def measure(name: str, slide: str, rows: int | None, workdir: str) -> dict:
    """Run in a fresh process: SR of the band (or the whole slide); peak RSS and time."""
    import torch

    from common.engines.whole_slide_sr import TiledSuperResolver, super_resolve_whole_slide

    torch.manual_seed(0)
    network = build_network(name)
    _, scale, tile, overlap = NETWORKS[name]
    region = None
    if rows is not None:  # exactly ``rows`` tile rows (a band one row taller would add a row of tiles)
        region = (0, 0, rows * TiledSuperResolver(network, scale, tile, overlap).stride, 1 << 30)
    before = peak_rss_mib()
    out = Path(workdir) / f"{name}_{Path(slide).stem}_sr.tiff"
    found = super_resolve_whole_slide(network, slide, out, scale, tile, overlap, progress=False, region=region)
    peak = peak_rss_mib()
    size = out.stat().st_size
    out.unlink()
    return {"seconds": found["seconds"], "input_mp": found["input_megapixels"], "output_mp": found["output_megapixels"],
            "input_shape": found["input_shape"], "output_shape": found["output_shape"], "levels": len(found["levels"]),
            "tiles": found["tiles"], "peak_rss_mb": peak, "rss_before_mb": before,
            "output_mb": size / 2**20}  # fmt: skip


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[2048, 8192, 16384])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--band-rows", type=int, default=1, help="tile rows of the band super-resolved per slide")
    parser.add_argument("--full-sides", type=int, nargs="*", default=[2048], help="slides also super-resolved whole")
    parser.add_argument(
        "--full-networks",
        nargs="*",
        default=["rrdb"],
        choices=list(NETWORKS),
        help="networks that super-resolve the --full-sides slides whole",
    )
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--measure", nargs=3, default=None, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.measure:
        name, slide, rows = args.measure
        print(json.dumps(measure(name, slide, None if rows == "full" else int(rows), str(Path(slide).parent))))
        return 0
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sr_wsi_"))
    workdir.mkdir(parents=True, exist_ok=True)  # tifffile does not create the folder of the slide it writes
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results = []
    for side in args.sides:
        slide = workdir / f"slide_{side}.tiff"
        with stopwatch() as watch:
            write_slide(slide, side)
        written = watch.seconds
        for name in args.networks:
            whole = side in args.full_sides and name in args.full_networks
            for rows in [str(args.band_rows)] + (["full"] if whole else []):
                cmd = [sys.executable, __file__, "--measure", name, str(slide), rows]
                result = run_measured(cmd, env=env)
                if result.returncode:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
                row = json.loads(result.stdout.strip().splitlines()[-1])
                row.update(network=name, side=side, region=rows, slide_mb=slide.stat().st_size / 2**20,
                           slide_write_seconds=written)  # fmt: skip
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        slide.unlink()
    (workdir / "sr_whole_slide.json").write_text(json.dumps(results, indent=1))
    print(f"\nWhole-slide SR ({' '.join(sys.argv[1:]) or 'defaults'}; 1 thread via OMP_NUM_THREADS, random weights)")
    print("| network | slide | region super-resolved | input MP | output | tiles | pyramid levels | "
          "peak RSS (MB) | RSS before run (MB) | seconds | s per input MP | s per output MP |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        (h, w), (oh, ow) = r["input_shape"], r["output_shape"]
        what = "whole slide" if r["region"] == "full" else f"band {h} x {w} (top {r['region']} tile row)"
        label = {"rrdb": "RRDB x4", "iste": "ISTE x2"}[r["network"]]
        print(f"| {label} | {r['side']}² | {what} | {r['input_mp']:.2f} | {oh} x {ow} | {r['tiles']} | {r['levels']} | "
              f"{r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} | {r['seconds']:.1f} | "
              f"{r['seconds'] / r['input_mp']:.1f} | {r['seconds'] / r['output_mp']:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
