"""Draw the skin bundle's README figure: sample lesions under each ABCDE debasing variant, and Grad-CAM overlays.

    python tools/skin_figure.py BUNDLE_ROOT [--out bundles/skin_lesion_classification/docs/sample_and_gradcam.jpg]

BUNDLE_ROOT holds ``sample_data/`` (``make_sample``) and, for the Grad-CAM row, ``outputs/*_gradcam.png`` written by
the bundle's inference workflow after training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUNDLE = ROOT / "bundles" / "skin_lesion_classification"


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    from common.transforms import ABCDE_VARIANTS
    from common.workflows import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle_root", type=Path)
    parser.add_argument("--out", type=Path, default=BUNDLE / "docs" / "sample_and_gradcam.jpg")
    parser.add_argument("--lesions", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    items = None
    for variant in ABCDE_VARIANTS:
        config = load_config(BUNDLE, "evaluate", bundle_root=str(args.bundle_root), debias=variant, image_size=128)
        items = items or [i for i in config.get_parsed_content("datalist") if i["label"] == 0][: args.lesions]
        steps = config.get_parsed_content("load_steps") + config.get_parsed_content("debias_steps")
        tiles = []
        for item in items:
            data = dict(item)
            for step in steps:
                data = step(data)
            image = np.asarray(data["image"])  # (3, W, H) in [0, 1], MONAI axis order
            tiles.append((np.clip(image.transpose(2, 1, 0), 0, 1) * 255).astype(np.uint8))
        rows.append(np.concatenate(tiles, 0))
    picture = np.concatenate(rows, 1)
    gradcams = sorted((args.bundle_root / "outputs").glob("*_gradcam.png"))[: 2 * args.lesions]
    if gradcams:
        cams = [np.asarray(Image.open(p).convert("RGB").resize((256, 128))) for p in gradcams]
        strip = np.concatenate(cams, 1)[:, : picture.shape[1]]
        strip = np.pad(strip, ((0, 0), (0, picture.shape[1] - strip.shape[1]), (0, 0)), constant_values=255)
        picture = np.concatenate([picture, np.full((8, picture.shape[1], 3), 255, np.uint8), strip], 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(args.out, quality=88)
    print(f"columns: {', '.join(ABCDE_VARIANTS)}; rows: {len(items)} melanomas; bottom: Grad-CAM (input | overlay)")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
