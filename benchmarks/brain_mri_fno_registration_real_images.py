"""FNOReg vs SimpleITK diffeomorphic demons on real T1 slices never seen in training.

Data (all from nibabel's test volume ``anatomical.nii``, see ``common/data/t1_slices.py``):

- **training**: the bundle trains on ``write_t1_slice_sample`` (axial slices at least 2 slices from every test
  slice, each under its own random smooth deformation and intensity change; neurite-oasis layout), with the
  bundle's synthetic-pair augmentation; one run per seed and per training resolution (full = the grid below, half =
  images resized by 0.5 for training and validation);
- **test**: ``--pairs_per_slice`` pairs of each test slice (``T1_TEST_SLICES``): moving and fixed are the slice under
  two independent smooth random deformations (``--deformation``, std of a 6 x 6 control grid as a fraction of the
  axis) and the moving one also under a mild intensity change (gamma, bias, noise); 3 tissue labels (multi-Otsu)
  move with the images. Every method registers the same pairs at full resolution.

Methods: identity; SimpleITK diffeomorphic demons (histogram matching, ``--demons_iterations`` iterations,
field smoothing sigma 1.5 px, on the same [0, 1] images); FNOReg trained at full and at half resolution, one
forward pass each. Prints Dice over the 3 labels (mean ± std over pairs, worst pair; the seeds' means), folding
(% of pixels with Jacobian determinant <= 0) and seconds per pair (median over pairs, one thread for both tools:
forward pass + label warp for the network, the whole registration + warp for demons).

    python benchmarks/brain_mri_fno_registration_real_images.py [--seeds 0,1] [--epochs 40] [--resolutions full,half]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "brain_mri_fno_registration"
SIZE = (96, 120)  # the 33 x 41 slices upsampled about 3x; half resolution 48 x 60


def dice(a: np.ndarray, b: np.ndarray, labels: tuple[int, ...] = (1, 2, 3)) -> float:
    """Mean Dice over ``labels`` present in either map."""
    scores = []
    for k in labels:
        x, y = a == k, b == k
        if x.sum() + y.sum():
            scores.append(2.0 * (x & y).sum() / (x.sum() + y.sum()))
    return float(np.mean(scores))


def folding_percent(ddf: np.ndarray) -> float:
    """% of pixels with a non-positive Jacobian determinant of ``x + ddf(x)`` (``ddf``: ``(2, H, W)`` voxels)."""
    dy = np.gradient(ddf[0])
    dx = np.gradient(ddf[1])
    det = (1 + dy[0]) * (1 + dx[1]) - dy[1] * dx[0]
    return float(100.0 * (det <= 0).mean())


def test_pairs(seed: int, per_slice: int, amplitude: float) -> list[dict]:
    """The test pairs: ``moving``, ``fixed``, their labels, all ``SIZE``."""
    from common.data import (
        T1_TEST_SLICES,
        deform_slice,
        intensity_change,
        smooth_displacement,
        t1_axial_slices,
        t1_tissue_labels,
    )

    rng = np.random.default_rng(10_000 + seed)
    pairs = []
    for z, image in t1_axial_slices(SIZE, T1_TEST_SLICES).items():
        labels = t1_tissue_labels(image)
        for k in range(per_slice):
            moving, moving_label = deform_slice(image, labels, smooth_displacement(rng, SIZE, amplitude))
            fixed, fixed_label = deform_slice(image, labels, smooth_displacement(rng, SIZE, amplitude))
            moving = intensity_change(rng, moving, 0.5)
            pairs.append({"name": f"z{z}_{k}", "moving": moving, "fixed": fixed, "moving_label": moving_label,
                          "fixed_label": fixed_label})  # fmt: skip
    return pairs


def demons(pair: dict, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK diffeomorphic demons; return (warped moving labels, DDF ``(2, H, W)`` in voxels)."""
    import SimpleITK as sitk  # noqa: N813

    fixed = sitk.GetImageFromArray(pair["fixed"].astype(np.float32))
    moving = sitk.GetImageFromArray(pair["moving"].astype(np.float32))
    matcher = sitk.HistogramMatchingImageFilter()
    matcher.SetNumberOfHistogramLevels(256)
    matcher.SetNumberOfMatchPoints(15)
    matcher.ThresholdAtMeanIntensityOn()
    moving = matcher.Execute(moving, fixed)
    reg = sitk.DiffeomorphicDemonsRegistrationFilter()
    reg.SetNumberOfIterations(iterations)
    reg.SetStandardDeviations(1.5)
    field = reg.Execute(fixed, moving)
    ddf_xy = sitk.GetArrayFromImage(field)  # (H, W, 2): (x = column, y = row) displacement of fixed points
    transform = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    labels = sitk.GetImageFromArray(pair["moving_label"].astype(np.int16))
    warped = sitk.Resample(labels, fixed, transform, sitk.sitkNearestNeighbor, 0, labels.GetPixelID())
    ddf = np.stack([ddf_xy[..., 1], ddf_xy[..., 0]])
    return sitk.GetArrayFromImage(warped), ddf


def load_network(root: Path):
    """The trained network of a bundle run at ``root`` (inference config, switches from its plan)."""
    import torch

    from common.workflows import load_config

    network = load_config(BUNDLE, "inference", bundle_root=str(root)).get_parsed_content("network_def")
    network.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
    return network.eval()


def network_scores(network, pairs: list[dict]) -> dict:
    """Dice, folding and seconds per pair of one trained network on the pairs."""
    import torch

    from common.transforms import WarpImage

    warp = WarpImage("nearest", "zeros")
    rows = []
    with torch.no_grad():
        x = torch.from_numpy(np.stack([pairs[0]["moving"], pairs[0]["fixed"]]))[None]
        network(x)  # warm-up
        for p in pairs:
            with stopwatch() as watch:
                x = torch.from_numpy(np.stack([p["moving"], p["fixed"]]))[None]
                ddf = network(x)[0]
                warped = warp(torch.from_numpy(p["moving_label"][None].astype(np.float32)), ddf)[0].numpy()
            seconds = watch.seconds
            rows.append({"dice": dice(warped, p["fixed_label"]), "folding": folding_percent(ddf.numpy()),
                         "seconds": seconds})  # fmt: skip
    return summarise(rows)


def summarise(rows: list[dict]) -> dict:
    """Mean, std and worst Dice, mean folding and seconds over per-pair rows."""
    d = np.array([r["dice"] for r in rows])
    return {"dice": float(d.mean()), "dice_std": float(d.std()), "dice_worst": float(d.min()),
            "folding": float(np.mean([r["folding"] for r in rows])),
            "seconds": float(np.median([r["seconds"] for r in rows])), "per_pair": [float(v) for v in d]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1", help="training seeds (one bundle run per seed and resolution)")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs of each run")
    parser.add_argument("--resolutions", default="full,half")
    parser.add_argument("--pairs_per_slice", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=24, help="subjects of the training folder (~46 %% train)")
    parser.add_argument("--deformation", type=float, default=0.03)
    parser.add_argument("--demons_iterations", type=int, default=100)
    parser.add_argument("--test_seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="also score this bundle root's models/model.pt (e.g. the shipped checkpoint)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=ROOT / ".artifacts" / "benchmarks" / "fno_real_images")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    resolutions = [r for r in args.resolutions.split(",") if r]

    import SimpleITK as sitk  # noqa: N813
    import torch

    from common.data import write_t1_slice_sample
    from common.workflows import run_workflow

    # the same single thread for both tools, so seconds per pair compare the methods, not the thread pools
    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)

    pairs = test_pairs(args.test_seed, args.pairs_per_slice, args.deformation)
    rows: dict[str, dict] = {}
    rows["identity"] = summarise([{"dice": dice(p["moving_label"], p["fixed_label"]), "folding": 0.0, "seconds": 0.0}
                                  for p in pairs])  # fmt: skip
    demon_rows = []
    for p in pairs:
        with stopwatch() as watch:
            warped, ddf = demons(p, args.demons_iterations)
        seconds = watch.seconds
        demon_rows.append({"dice": dice(warped, p["fixed_label"]), "folding": folding_percent(ddf), "seconds": seconds})
    rows["SimpleITK diffeomorphic demons"] = summarise(demon_rows)

    train_seconds = {}
    for resolution in resolutions:
        per_seed = []
        for seed in seeds:
            root = args.workdir / f"{resolution}_seed{seed}"
            data = args.workdir / f"t1_data_seed{seed}"
            if not (data / "subjects.txt").is_file():
                write_t1_slice_sample(data, seed=seed, num_subjects=args.subjects, size=SIZE, overwrite=True)
            with stopwatch() as watch:
                run_workflow(BUNDLE, "train", quiet=True, bundle_root=str(root), dataset_dir=str(data), seed=seed,
                             resolution=resolution, max_epochs=args.epochs)  # fmt: skip
            train_seconds[f"{resolution}_seed{seed}"] = watch.seconds
            per_seed.append(network_scores(load_network(root), pairs))
        means = [r["dice"] for r in per_seed]
        rows[f"FNOReg trained at {resolution}"] = {
            "dice": float(np.mean(means)), "dice_std": float(np.mean([r["dice_std"] for r in per_seed])),
            "dice_worst": float(min(r["dice_worst"] for r in per_seed)), "seed_means": means,
            "folding": float(np.mean([r["folding"] for r in per_seed])),
            "seconds": float(np.mean([r["seconds"] for r in per_seed])),
        }  # fmt: skip
    if args.checkpoint is not None:
        rows[f"checkpoint {args.checkpoint.name}"] = network_scores(load_network(args.checkpoint), pairs)

    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "results.json").write_text(json.dumps({"rows": rows, "train_seconds": train_seconds}, indent=2))
    demons_seconds = rows["SimpleITK diffeomorphic demons"]["seconds"]
    print(f"\nreal T1 slices (nibabel anatomical.nii), {len(pairs)} test pairs = {args.pairs_per_slice} x test slices "
          f"{sorted({p['name'].split('_')[0] for p in pairs})} at {SIZE[0]}x{SIZE[1]}, deformation {args.deformation}; "
          f"FNOReg: {args.epochs} epochs per run, seeds {seeds}; training seconds per run: "
          + ", ".join(f"{k} {v:.0f}" for k, v in train_seconds.items()))  # fmt: skip
    print(f"| {'method':<32} | {'Dice mean ± std':>16} | {'worst pair':>10} | {'seed means':>14} | {'%|J|<=0':>8} "
          f"| {'s/pair':>8} | {'speed vs demons':>15} |")  # fmt: skip
    print("|" + "|".join("-" * (w + 2) for w in (32, 16, 10, 14, 8, 8, 15)) + "|")
    for name, r in rows.items():
        seed_means = ", ".join(f"{m:.3f}" for m in r.get("seed_means", [])) or "-"
        speed = f"{demons_seconds / r['seconds']:.1f}x" if r["seconds"] > 0 else "-"
        print(f"| {name:<32} | {r['dice']:.3f} ± {r['dice_std']:.3f}".ljust(54) + f" | {r['dice_worst']:>10.3f} "
              f"| {seed_means:>14} | {r['folding']:>8.2f} | {r['seconds']:>8.4f} | {speed:>15} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
