"""The stages and outputs of the chest radiograph lesion detection bundle (CAWE + colorization GAN + RetinaNet).

Stages before the detector's trainer (``train.yaml``'s ``run`` list), each writing one checkpoint atomically and
skipping when a checkpoint with the same settings exists (a changed setting retrains and moves the earlier file to
``models/previous-<time>/``):

- :func:`train_cawe_classifier`: the CAWE classifier on image-level labels (intra-dataset: the detector's own
  training images, "any opacity"; inter-dataset: CheXpert's 14 observations), Adam, binary cross-entropy, early
  stopping on the validation loss (the paper: Adam and early stopping);
- :func:`train_colorizer`: the colorization GAN on colour photographs turned grey (Eqs. 3-6), discriminator rate
  five times the generator's (two time-scale update rule).

:func:`load_enhancers` copies both into the detector network (:class:`common.networks.EnhancedRetinaNet`), whose
``model.pt`` then holds everything inference needs. Outputs: :class:`CAWEMapWriter` (``<name>_cawe.png``),
:class:`RSNASubmissionWriter` (``submission.csv``: ``patientId,PredictionString``) and :func:`plot_froc`.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.chest_xray import read_chest_xray
from ..losses.colorization import ColorizationDiscriminatorLoss, ColorizationGeneratorLoss
from ..networks.cawe import CAWEClassifier
from ..networks.colorization import ColorizationDiscriminator, ColorizationGenerator
from .detection import _boxes, _image_name, _iteration_items, _stem, _vector
from .metrics_report import write_json_atomic, write_text_atomic
from .training import load_checkpoint, save_torch_atomic

__all__ = [
    "COLORIZATION_IMAGES",
    "CAWEMapWriter",
    "RSNASubmissionWriter",
    "colorization_images",
    "load_enhancers",
    "plot_froc",
    "train_cawe_classifier",
    "train_colorizer",
]

logger = logging.getLogger(__name__)

COLORIZATION_IMAGES: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
)
"""scikit-image's bundled colour images (photographs and histology) that train the colorizer offline."""


# ---- stage checkpoints ------------------------------------------------------------------------------------------


def _stage_done(path: Path, settings: Mapping[str, Any]) -> bool:
    """True when ``path`` holds a stage checkpoint with these settings; a different one is set aside."""
    if not path.is_file():
        return False
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        same = json.dumps(saved.get("settings"), sort_keys=True, default=str) == json.dumps(
            dict(settings), sort_keys=True, default=str
        )
    except Exception:  # an unreadable file is retrained, and kept aside
        same = False
    if same:
        logger.info(f"{path.name} exists with the same settings: stage skipped")
        return True
    target = path.parent / f"previous-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    target.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target / path.name)
    logger.warning(f"{path.name} was trained with other settings; moved to {target} and retrained")
    return False


def _save_stage(path: Path, state_dict: Mapping[str, torch.Tensor], settings: Mapping[str, Any], **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch_atomic({"state_dict": dict(state_dict), "settings": dict(settings), **extra}, path)


def _load_image(path: str | Path, size: Sequence[int]) -> torch.Tensor:
    """``(1, W, H)`` image in ``[0, 1]`` at ``size`` (W, H), as the detector's preprocessing gives it."""
    array = read_chest_xray(path).T  # (W, H): MONAI's detection layout
    low, high = float(array.min()), float(array.max())
    x = torch.from_numpy((array - low) / max(high - low, 1e-12))[None, None].float()
    return F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)[0]


def train_cawe_classifier(
    ckpt_path: str | Path,
    train_data: Sequence[Mapping[str, Any]],
    val_data: Sequence[Mapping[str, Any]],
    arch: str = "resnet50",
    num_classes: int = 1,
    image_size: Sequence[int] = (512, 512),
    max_epochs: int = 30,
    patience: int = 5,
    learning_rate: float = 1e-3,
    batch_size: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Train the CAWE classifier on ``cawe_label`` (multi-label BCE), keep the best validation loss, save it.

    Args:
        ckpt_path: the checkpoint (``models/cawe_classifier.pt``).
        train_data: items with ``image`` (a path) and ``cawe_label`` (``(num_classes,)`` 0/1).
        val_data: the same for early stopping (empty: the last epoch is kept).
        arch: :data:`common.networks.CAWE_CLASSIFIERS` key.
        num_classes: label length.
        image_size: input ``(W, H)``, the detector's.
        max_epochs: epoch limit.
        patience: epochs without a better validation loss before stopping.
        learning_rate: Adam's rate.
        batch_size: images per step.
        seed: shuffling and initialisation seed.
        device: training device.
        settings: extra entries identifying the run (dataset, mode), compared to skip a finished stage.

    Returns:
        ``ckpt_path``.

    Raises:
        ValueError: an item without a ``cawe_label`` of ``num_classes`` values.
    """
    path = Path(ckpt_path)
    data = [dict(i) for i in train_data]
    run = {"arch": arch, "num_classes": int(num_classes), "image_size": list(image_size), "max_epochs": max_epochs,
           "patience": patience, "learning_rate": learning_rate, "batch_size": batch_size, "seed": seed,
           "train": sorted(str(i["image"]) for i in data), **dict(settings or {})}  # fmt: skip
    if _stage_done(path, run):
        return path
    torch.manual_seed(seed)
    device = torch.device(device)

    def tensors(items: Sequence[Mapping[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        if not items:
            return torch.zeros(0, 1, *image_size), torch.zeros(0, num_classes)
        labels = []
        for i in items:
            label = np.asarray(i.get("cawe_label"), np.float32).reshape(-1)
            if label.shape != (num_classes,):
                raise ValueError(f"{i.get('image')}: cawe_label has {label.size} values, expected {num_classes}")
            labels.append(label)
        return torch.stack([_load_image(i["image"], image_size) for i in items]), torch.from_numpy(np.stack(labels))

    x_train, y_train = tensors(data)
    x_val, y_val = tensors(list(val_data))
    model = CAWEClassifier(arch, num_classes, in_channels=1).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    best, best_state, waited, history = float("inf"), None, 0, []
    for epoch in range(max_epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = x_train[idx].to(device)
            flip = torch.rand(len(idx), generator=generator) < 0.5  # left-right flips: both lungs look alike
            x[flip] = x[flip].flip(1)
            loss = F.binary_cross_entropy_with_logits(model(x), y_train[idx].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            val = (
                float(F.binary_cross_entropy_with_logits(model(x_val.to(device)), y_val.to(device)))
                if len(x_val)
                else total / max(len(x_train), 1)
            )
        history.append({"epoch": epoch + 1, "train_loss": total / max(len(x_train), 1), "val_loss": val})
        logger.info(f"CAWE classifier epoch {epoch + 1}: train loss {history[-1]['train_loss']:.4f}, val {val:.4f}")
        if val < best:
            best, waited = val, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:  # early stopping (the paper)
                break
    _save_stage(path, best_state or model.state_dict(), run, history=history, best_val_loss=best)
    write_json_atomic(path.with_suffix(".json"), {"settings": run, "history": history, "best_val_loss": best})
    return path


# ---- colorization GAN -------------------------------------------------------------------------------------------


def colorization_images(source: str = "skimage", max_side: int = 256) -> list[np.ndarray]:
    """RGB float32 ``(H, W, 3)`` images in ``[0, 1]`` that train the colorizer.

    Args:
        source: ``"skimage"`` (:data:`COLORIZATION_IMAGES`) or a folder of colour images (e.g. an ImageNet
            folder; ``*.JPEG``, ``*.jpg``, ``*.png``, searched recursively).
        max_side: images are downscaled so their longer side is at most this.

    Raises:
        FileNotFoundError: a folder without colour images.
    """
    from PIL import Image

    images = []
    if source == "skimage":
        import skimage.data

        arrays = []
        for name in COLORIZATION_IMAGES:
            try:  # every listed image ships in the wheel; skip one a future scikit-image would fetch
                arrays.append(getattr(skimage.data, name)())
            except Exception:
                logger.warning(f"scikit-image image '{name}' is not available offline; skipped")
    else:
        folder = Path(source)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        arrays = [np.asarray(Image.open(p).convert("RGB")) for p in files]
        if not arrays:
            raise FileNotFoundError(f"{folder}: no colour images (*.JPEG, *.jpg, *.png) for the colorization GAN")
    for array in arrays:
        if array.ndim != 3 or array.shape[2] < 3:
            continue
        picture = Image.fromarray(np.asarray(array)[..., :3].astype(np.uint8))
        scale = max_side / max(picture.size)
        if scale < 1:
            picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.BILINEAR)
        images.append(np.asarray(picture, np.float32) / 255.0)
    return images


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (scikit-image's ``rgb2gray`` weights) of ``(B, 3, H, W)``."""
    weights = torch.tensor([0.2125, 0.7154, 0.0721], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True)


def train_colorizer(
    ckpt_path: str | Path,
    source: str = "skimage",
    encoder_depth: int = 34,
    decoder_width: int = 32,
    crop_size: int = 64,
    steps: int = 2000,
    batch_size: int = 8,
    generator_lr: float = 1e-4,
    lr_ratio: float = 5.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Path:
    """Train the colorization GAN on grey versions of colour images (Eqs. 3-6) and save the generator.

    Each step draws ``batch_size`` random crops (random flips), converts them to grey, updates the discriminator on
    Eq. 6 (rate ``lr_ratio * generator_lr``: the two time-scale update rule, 5x in the paper), then the generator on
    ``L_G = L_C + 1/2 L_A``.

    Args:
        ckpt_path: the checkpoint (``models/colorizer.pt``).
        source: see :func:`colorization_images`.
        encoder_depth: the generator's ResNet depth (34 in the paper).
        decoder_width: the generator's last decoder width (:class:`common.networks.ColorizationGenerator`).
        crop_size: training crop side (a multiple of 32).
        steps: optimisation steps.
        batch_size: crops per step.
        generator_lr: the generator's Adam rate.
        lr_ratio: discriminator rate / generator rate.
        seed: crop and initialisation seed.
        device: training device.

    Returns:
        ``ckpt_path``.
    """
    path = Path(ckpt_path)
    run = {"source": str(source), "encoder_depth": int(encoder_depth), "decoder_width": int(decoder_width),
           "crop_size": int(crop_size), "steps": steps,
           "batch_size": batch_size, "generator_lr": generator_lr, "lr_ratio": lr_ratio, "seed": seed}  # fmt: skip
    if _stage_done(path, run):
        return path
    images = [torch.from_numpy(i).permute(2, 0, 1) for i in colorization_images(source, max_side=4 * crop_size)]
    images = [i for i in images if min(i.shape[1:]) >= crop_size]
    torch.manual_seed(seed)
    device = torch.device(device)
    generator = ColorizationGenerator(encoder_depth, decoder_width).to(device)
    discriminator = ColorizationDiscriminator().to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=generator_lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_ratio * generator_lr, betas=(0.5, 0.999))
    loss_g, loss_d = ColorizationGeneratorLoss(), ColorizationDiscriminatorLoss()
    rng = np.random.default_rng(seed)
    history = []
    for step in range(steps):
        crops = []
        for _ in range(batch_size):
            image = images[int(rng.integers(len(images)))]
            y0 = int(rng.integers(image.shape[1] - crop_size + 1))
            x0 = int(rng.integers(image.shape[2] - crop_size + 1))
            crop = image[:, y0 : y0 + crop_size, x0 : x0 + crop_size]
            crops.append(crop.flip(2) if rng.random() < 0.5 else crop)
        real = torch.stack(crops).to(device)
        grey = _grey(real)
        fake = generator(grey)
        d_real, _ = discriminator(real)
        d_fake, _ = discriminator(fake.detach())
        ld = loss_d(d_real, d_fake)
        opt_d.zero_grad()
        ld.backward()
        opt_d.step()
        fake_logits, fake_features = discriminator(fake)
        with torch.no_grad():
            _, real_features = discriminator(real)
        parts = loss_g(fake, real, fake_logits, fake_features, real_features)
        opt_g.zero_grad()
        parts["loss"].backward()
        opt_g.step()
        if step % 50 == 0 or step == steps - 1:
            entry = {"step": step + 1, "loss_d": float(ld.detach()), **{k: float(v.detach()) for k, v in parts.items()}}
            history.append(entry)
            logger.info(f"colorizer step {step + 1}: L_D {entry['loss_d']:.3f}, L_G {entry['loss']:.3f}")
    _save_stage(path, generator.state_dict(), run, history=history)
    write_json_atomic(path.with_suffix(".json"), {"settings": run, "history": history})
    return path


# ---- assembling the detector network ----------------------------------------------------------------------------


def load_enhancers(network: torch.nn.Module, cawe_path: str | Path | None, colorizer_path: str | Path | None):
    """Copy the stage checkpoints into :class:`common.networks.EnhancedRetinaNet`'s frozen parts.

    Args:
        network: the detector network (DDP-unwrapped or not).
        cawe_path: ``models/cawe_classifier.pt`` (used when the network has a classifier).
        colorizer_path: ``models/colorizer.pt`` (used when the network has a colorizer).

    Returns:
        ``network``.

    Raises:
        FileNotFoundError: a needed checkpoint that does not exist.
    """
    module = getattr(network, "module", network)
    for part, path in (("classifier", cawe_path), ("colorizer", colorizer_path)):
        target = getattr(module, part, None)
        if target is None:
            continue
        if path is None or not Path(path).is_file():
            raise FileNotFoundError(f"{path}: the {part} checkpoint does not exist (its training stage did not run)")
        checkpoint = load_checkpoint(path, map_location="cpu", weights_only=False)
        target.load_state_dict(checkpoint["state_dict"])
        target.requires_grad_(False).eval()
    return network


# ---- outputs ----------------------------------------------------------------------------------------------------


class CAWEMapWriter:
    """Inference handler writing ``<stem>_cawe.png``: the image's ``L_CAWE`` (8-bit, rows x columns).

    Nothing is written for a network without a CAWE classifier (the ``baseline`` and ``color`` rows).

    Args:
        output_dir: output folder.
        network: the :class:`common.networks.EnhancedRetinaNet` (its ``cawe_map``).
        image_key: image key of the outputs (the network input).
    """

    def __init__(self, output_dir: str | Path, network: torch.nn.Module, image_key: str = "image") -> None:
        self.output_dir = Path(output_dir)
        self.network = getattr(network, "module", network)
        self.image_key = image_key

    def attach(self, engine: Any) -> None:
        """Write at every iteration."""
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        """Write the map of every image of the iteration."""
        from PIL import Image

        items = _iteration_items(engine)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        device = next(self.network.parameters()).device
        if getattr(self.network, "classifier", None) is None:  # no CAWE in this variant: no map to write
            return
        for k, (item, batch_item) in enumerate(items):
            image = item.get(self.image_key, batch_item.get(self.image_key))
            name = _image_name(item, batch_item, self.image_key, f"image_{k}")
            with torch.no_grad():
                cawe = self.network.cawe_map(torch.as_tensor(image)[None].float().to(device))[0, 0].cpu().numpy()
            picture = Image.fromarray(np.round(np.clip(cawe.T, 0, 1) * 255).astype(np.uint8))
            stem = _stem(name)
            tmp = self.output_dir / f".{stem}_cawe.png.tmp"
            picture.save(tmp, format="PNG")
            tmp.replace(self.output_dir / f"{stem}_cawe.png")


class RSNASubmissionWriter:
    """Inference handler writing the RSNA challenge's ``submission.csv`` at the end of the run.

    One row per image: ``patientId`` (the file stem) and ``PredictionString``, ``"score x y width height"`` per box
    scoring at least ``score_threshold``, boxes in the file's pixels, joined by spaces (empty without a box).

    Args:
        output_dir: output folder.
        score_threshold: smallest score written.
        filename: the CSV's name.
        pred_box_key: predicted box key.
        pred_score_key: predicted score key.
        image_key: image key of the outputs.
    """

    def __init__(
        self,
        output_dir: str | Path,
        score_threshold: float = 0.5,
        filename: str = "submission.csv",
        pred_box_key: str = "pred_box",
        pred_score_key: str = "pred_score",
        image_key: str = "image",
    ) -> None:
        self.path = Path(output_dir) / filename
        self.score_threshold = float(score_threshold)
        self.pred_box_key, self.pred_score_key, self.image_key = pred_box_key, pred_score_key, image_key
        self.rows: list[list[str]] = []

    def attach(self, engine: Any) -> None:
        """Collect at every iteration, write when the run completes."""
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def __call__(self, engine: Any) -> None:
        """Keep one row per image of the iteration."""
        for item, batch_item in _iteration_items(engine):
            name = _image_name(item, batch_item, self.image_key, f"image_{len(self.rows)}")
            boxes, scores = _boxes(item.get(self.pred_box_key)), _vector(item.get(self.pred_score_key))
            order = np.argsort(-scores)
            parts = [
                f"{scores[i]:.4f} {boxes[i, 0]:.1f} {boxes[i, 1]:.1f} {boxes[i, 2] - boxes[i, 0]:.1f} "
                f"{boxes[i, 3] - boxes[i, 1]:.1f}"
                for i in order
                if scores[i] >= self.score_threshold
            ]
            self.rows.append([_stem(name), " ".join(parts)])

    def write(self, engine: Any = None) -> Path:
        """Write the CSV (header ``patientId,PredictionString``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["patientId", "PredictionString"])
        writer.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(self.path, buffer.getvalue())


def plot_froc(metrics_path: str | Path, png_path: str | Path, max_fppi: float = 4.5) -> Path:
    """Draw the FROC curve of a :class:`common.engines.DetectionReport` ``metrics.json`` as a PNG (Pillow only).

    The model's step curve is blue, the trivial baseline's grey; grid lines at every false positive per image and
    every 0.2 of sensitivity.

    Args:
        metrics_path: the report.
        png_path: the picture to write (atomically).
        max_fppi: the x axis' end.

    Returns:
        ``png_path``.

    Raises:
        FileNotFoundError: no report.
    """
    from PIL import Image, ImageDraw

    metrics_path, png_path = Path(metrics_path), Path(png_path)
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path}: no detection report to plot")
    report = json.loads(metrics_path.read_text())
    width, height, left, bottom, top, right = 480, 360, 50, 40, 20, 20
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)

    def xy(fppi: float, sens: float) -> tuple[float, float]:
        x = left + min(fppi, max_fppi) / max_fppi * (width - left - right)
        return x, height - bottom - sens * (height - bottom - top)

    for f in range(int(max_fppi) + 1):
        draw.line([xy(f, 0), xy(f, 1)], fill=(220, 220, 220))
        draw.text((xy(f, 0)[0] - 3, height - bottom + 5), str(f), fill="black")
    for k in range(6):
        draw.line([xy(0, k / 5), xy(max_fppi, k / 5)], fill=(220, 220, 220))
        draw.text((left - 30, xy(0, k / 5)[1] - 6), f"{k / 5:.1f}", fill="black")
    draw.text((width // 2 - 70, height - 18), "false positives per image", fill="black")
    draw.text((5, 3), "sensitivity", fill="black")
    curves = [((30, 90, 200), report.get("froc") or [], "model")]
    if report.get("trivial_baseline"):
        curves.append(((150, 150, 150), report["trivial_baseline"].get("froc") or [], "trivial baseline"))
    for k, (colour, points, label) in enumerate(curves):
        line, previous = [], 0.0
        for p in points:
            if p.get("fppi") is None or p.get("sensitivity") is None:
                continue
            line += [xy(p["fppi"], previous), xy(p["fppi"], p["sensitivity"])]
            previous = p["sensitivity"]
        if line:
            line.append(xy(max_fppi, previous))
            draw.line([xy(0, 0), *line], fill=colour, width=2)
        draw.text((width - 150, height - bottom - 40 + 14 * k), label, fill=colour)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(f".{png_path.name}.tmp")
    picture.save(tmp, format="PNG")
    tmp.replace(png_path)
    return png_path
