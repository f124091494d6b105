"""Benchmark of the colon_ct_segmentation bundle: MRF-only, a plain 2D U-Net and Guided-SET-DCL on the phantoms.

For each seed a fresh phantom sample is generated (``write_colon_ct_sample(seed=...)``, 6 patients, 12 scans, split
by patient 4 / 1 / 1), then on the same test scans:

- **MRF only**: the initial labelling (EM, thresholds, rectum, region growing, graph cut) as the segmentation;
- **plain U-Net**: MONAI's 2D ``UNet`` trained with Dice + CE on every axial slice of the training scans (windowed
  CT in, colon out), the paper's supervised baseline;
- **Guided-SET-DCL**: the bundle's ``train.yaml`` (short schedule) and ``evaluate.yaml`` (sequential inference from
  the rectum).

It prints Dice and Jaccard per method (mean ± std over the seeds of the per-scan means; both from the same
confusion counts of each 3D mask) and seconds per volume (MRF labelling included where a method uses it).

    python benchmarks/colon_ct_segmentation.py [--seeds 0 1 2] [--epochs N] [--workdir /tmp/colon_benchmark]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, stopwatch  # noqa: E402

sys.path.insert(0, str(ROOT))
BUNDLE = ROOT / "bundles" / "colon_ct_segmentation"


def _volumes(items: list[dict]) -> list[tuple[np.ndarray, np.ndarray, str]]:
    from common.data import read_ct_volume

    return [(read_ct_volume(i["image"])[0], read_ct_volume(i["label"])[0] > 0.5, Path(i["image"]).name) for i in items]


def mrf_only(test: list) -> tuple[list[tuple[float, float]], float]:
    """Dice / Jaccard of the MRF initial mask per test volume, and seconds per volume."""
    from common.metrics import dice_jaccard
    from common.transforms import mrf_initial_labels

    with stopwatch() as watch:
        scores = [dice_jaccard(mrf_initial_labels(hu).mask, label) for hu, label, _ in test]
    return scores, watch.seconds / len(test)


def plain_unet(train: list, test: list, epochs: int, seed: int) -> tuple[list[tuple[float, float]], float]:
    """Train MONAI's 2D UNet on every slice of the training volumes; score the test volumes slice by slice."""
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    from common.metrics import dice_jaccard
    from common.transforms import window_hu

    torch.manual_seed(seed)
    images = torch.cat([torch.as_tensor(window_hu(hu)).permute(2, 0, 1)[:, None] for hu, _, _ in train]).float()
    labels = torch.cat([torch.as_tensor(label).permute(2, 0, 1)[:, None] for _, label, _ in train]).float()
    net = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32, 64), strides=(2, 2, 2),
               num_res_units=1)  # fmt: skip
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(net.parameters(), 2e-3)
    for _ in range(epochs):
        net.train()
        for index in torch.randperm(len(images)).split(8):
            optimizer.zero_grad()
            loss(net(images[index]), labels[index]).backward()
            optimizer.step()
    net.eval()
    scores = []
    with torch.no_grad(), stopwatch() as watch:
        for hu, label, _ in test:
            slices = torch.as_tensor(window_hu(hu)).permute(2, 0, 1)[:, None].float()
            pred = net(slices).argmax(1).permute(1, 2, 0).numpy()
            scores.append(dice_jaccard(pred, label))
    return scores, watch.seconds / len(test)


def guided_set_dcl(root: Path, epochs: int | None, seed: int, **switches) -> tuple[list[tuple[float, float]], float]:
    """Train and evaluate the bundle under ``root``; per-volume Dice / Jaccard and seconds per volume."""
    from common.workflows import load_config, read_metrics, run_workflow

    overrides = {"bundle_root": str(root), "seed": seed, **switches}
    epochs = epochs or load_config(BUNDLE, "train", **overrides).get_parsed_content("short_epochs")
    run_workflow(BUNDLE, "train", quiet=True, max_epochs=epochs, resume=False, **overrides)
    with stopwatch() as watch:
        run_workflow(BUNDLE, "evaluate", quiet=True, **overrides)  # the same seed: the same patient split
    cases = read_metrics(root / "eval" / "metrics.json")["cases"]
    seconds = watch.seconds / len(cases)
    return [(c["dice"]["colon"], c["jaccard"]["colon"]) for c in cases.values()], seconds


def main() -> int:
    """Run every method for every seed and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="Guided-SET-DCL epochs (default: short_epochs)")
    parser.add_argument("--unet-epochs", type=int, default=15, help="plain U-Net epochs over all training slices")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/colon_ct_benchmark"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    from common.data import colon_ct_datalist, write_colon_ct_sample

    methods = ("MRF only", "plain U-Net (2D)", "Guided-SET-DCL", "SET-DCL (no guidance)")
    results: dict[str, list] = {m: [] for m in methods}
    for seed in args.seeds:
        root = args.workdir / f"seed{seed}"
        sample = write_colon_ct_sample(root / "sample_data", seed=seed, overwrite=True)
        train = _volumes(colon_ct_datalist(sample, "train", seed=seed))
        test = _volumes(colon_ct_datalist(sample, "test", seed=seed))
        results["MRF only"].append(mrf_only(test))
        results["plain U-Net (2D)"].append(plain_unet(train, test, args.unet_epochs, seed))
        results["Guided-SET-DCL"].append(guided_set_dcl(root, args.epochs, seed))
        other = args.workdir / f"seed{seed}_set_dcl"
        other.mkdir(parents=True, exist_ok=True)
        if not (other / "sample_data").exists():
            (other / "sample_data").symlink_to(sample)
        results["SET-DCL (no guidance)"].append(guided_set_dcl(other, args.epochs, seed, method="set_dcl"))
        print(f"seed {seed} done", file=sys.stderr, flush=True)

    print(f"\ncolon CT phantoms, {len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}), 2 test scans per seed; "
          "mean ± std over seeds of the per-scan mean")  # fmt: skip
    print(f"{'method':<24}{'Dice':>16}{'Jaccard':>16}{'s / volume':>14}")
    table = {}
    for method, runs in results.items():
        dice = [np.mean([s[0] for s in scores]) for scores, _ in runs]
        jaccard = [np.mean([s[1] for s in scores]) for scores, _ in runs]
        seconds = np.mean([t for _, t in runs])
        table[method] = {"dice": dice, "jaccard": jaccard, "seconds_per_volume": seconds}
        print(f"{method:<24}{np.mean(dice):>9.3f} ± {np.std(dice):.3f}{np.mean(jaccard):>9.3f} ± {np.std(jaccard):.3f}"
              f"{seconds:>14.2f}")  # fmt: skip
    (args.workdir / "results.json").write_text(json.dumps(table, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
