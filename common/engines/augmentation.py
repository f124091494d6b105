"""Offline augmentation stages of Kanekar et al., "Classification of Cutaneous Diseases" (ICPR 2024).

The paper compares four training sets built from 35 images per class: the originals alone, the originals plus six
geometric counterparts of each, and the originals plus 100-500 images per class drawn from a Wasserstein GAN or from
a convolutional autoencoder (CAE; trained by :mod:`common.engines.generative_training`). This module builds those
training sets as class-folder datasets on disk, once: :func:`write_augmented_class_folders` writes
``<output_dir>/<class>/<name>.png`` atomically, deterministically for a seed, and re-uses a complete folder whose
manifest matches the request, so re-running a workflow does not retrain the generators.

Decisions where the paper is silent or ambiguous (see the bundle README):

- **Six geometric counterparts.** The paper lists "horizontal and vertical flips, and rotations at 0, 90, 180, and
  270 degrees" and says each image yields six counterparts. Rotation by 0 degrees is the identity, which leaves five
  distinct operations; the sixth is the transpose (mirror about the main diagonal), the remaining order-2 element of
  the square's symmetry group that is not already listed (its other diagonal mirror is left out). All six are exact
  pixel permutations (no interpolation).
- **Per class.** One generator is trained per class on that class's training images only; the class label of a
  generated image is the class its generator was trained on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.atomic import write_folder_atomically
from ..data.errors import ImageFileError
from ..image_io import read_image_array
from ..networks.generative import check_power_of_two_size
from .generative_training import (
    DEFAULT_CAE_EPOCHS,
    DEFAULT_WGAN_EPOCHS,
    sample_autoencoder,
    train_autoencoder,
    train_wgan,
)

__all__ = ["AUGMENTATION_REGIMES", "GEOMETRIC_OPERATIONS", "geometric_counterparts", "write_augmented_class_folders"]

logger = logging.getLogger(__name__)

AUGMENTATION_REGIMES = ("none", "geometric", "wgan", "cae")
GEOMETRIC_OPERATIONS = ("hflip", "vflip", "rot90", "rot180", "rot270", "transpose")
MANIFEST_NAME = "augmentation_manifest.json"
MANIFEST_VERSION = 2  # bump when the generated images change for the same request


# --------------------------------------------------------------------------------------------- geometric


def geometric_counterparts(image: np.ndarray | torch.Tensor, spatial_axes: tuple[int, int] = (0, 1)) -> list:
    """The six geometric counterparts of one image, in :data:`GEOMETRIC_OPERATIONS` order.

    Horizontal flip (mirror left-right), vertical flip (mirror top-bottom), rotations by 90, 180 and 270 degrees
    (counter-clockwise) and the transpose (mirror about the main diagonal). The paper's rotation by 0 degrees is the
    identity and is not a counterpart; the transpose is the chosen sixth operation (module docstring).

    Args:
        image: a numpy array or torch tensor with (at least) two spatial axes.
        spatial_axes: the (row, column) axes: ``(0, 1)`` for channel-last ``(H, W, C)`` arrays as Pillow loads
            them, ``(-2, -1)`` for channel-first ``(C, H, W)`` tensors.

    Returns:
        six arrays (or tensors) of the input's type; rotations and the transpose swap H and W of non-square input.

    Raises:
        ValueError: the axes are not two distinct axes of ``image``.
    """
    ndim = image.ndim
    rows, cols = spatial_axes
    if not (-ndim <= rows < ndim and -ndim <= cols < ndim) or rows % ndim == cols % ndim:
        raise ValueError(f"spatial_axes {spatial_axes} are not two distinct axes of a {ndim}-D image")
    if isinstance(image, torch.Tensor):
        flip: Callable = lambda x, axis: torch.flip(x, dims=(axis,))  # noqa: E731
        rot: Callable = lambda x, k: torch.rot90(x, k, dims=(rows, cols))  # noqa: E731
        swap: Callable = lambda x: x.transpose(rows, cols).contiguous()  # noqa: E731
    else:
        image = np.asarray(image)
        flip = lambda x, axis: np.ascontiguousarray(np.flip(x, axis=axis))  # noqa: E731
        rot = lambda x, k: np.ascontiguousarray(np.rot90(x, k, axes=(rows, cols)))  # noqa: E731
        swap = lambda x: np.ascontiguousarray(np.swapaxes(x, rows, cols))  # noqa: E731
    return [flip(image, cols), flip(image, rows), rot(image, 1), rot(image, 2), rot(image, 3), swap(image)]


# --------------------------------------------------------------------------------------------- class folders


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_rgb(path: Path, image_size: int) -> np.ndarray:
    """``(image_size, image_size, 3)`` uint8 array of an RGB image file, resized (bicubic) when needed."""
    from PIL import Image

    array = read_image_array(path)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageFileError(path, f"expected an RGB image (H, W, 3), got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        raise ImageFileError(path, f"expected 8-bit RGB values, got {array.dtype}")
    image = Image.fromarray(array, mode="RGB")
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.asarray(image)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(array), mode="RGB").save(path)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, 3, S, S)`` floats in [0, 1] -> ``(N, S, S, 3)`` uint8."""
    return (images.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        candidate, k = f"{name}_{k}", k + 1
    used.add(candidate)
    return candidate


class _ClassFolderWriter:
    """Saves PNGs into one class folder under unique stems and records their datalist entries."""

    def __init__(self, folder: Path, label: int, files: list[dict]) -> None:
        self.folder, self.label, self.files = folder, label, files
        self.used: set[str] = set()

    def __call__(self, array: np.ndarray, stem: str, source: str) -> str:
        stem = _unique(stem, self.used)
        _save_png(array, self.folder / f"{stem}.png")
        self.files.append({"image": f"{self.folder.name}/{stem}.png", "label": self.label, "source": source})
        return stem


def _class_seed(seed: int, label: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(label)]).generate_state(1)[0])


def _validate_request(datalist: Sequence[Mapping], class_names: Sequence[str], regime: str, per_class: int,
                      image_size: int, epochs: int | None) -> None:  # fmt: skip
    if regime not in AUGMENTATION_REGIMES:
        raise ValueError(f"unknown augmentation regime {regime!r}; expected one of {AUGMENTATION_REGIMES}")
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 0:
        raise ValueError(f"per_class must be an integer >= 0, got {per_class!r}")
    if regime in ("wgan", "cae"):
        check_power_of_two_size(image_size)
    elif isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0):
        raise ValueError(f"epochs must be an integer >= 0 or None, got {epochs!r}")
    names = list(class_names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"class_names must be non-empty and unique, got {names}")
    for name in names:
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
            raise ValueError(f"class name {name!r} cannot be used as a folder name")
    if not datalist:
        raise ValueError("the datalist is empty: nothing to augment")
    for index, item in enumerate(datalist):
        if not isinstance(item, Mapping) or "image" not in item or "label" not in item:
            raise ValueError(f"datalist item {index} must be a dict with 'image' and 'label', got {item!r}")
        label = item["label"]
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < len(names):
            raise ValueError(f"{item['image']}: label {label!r} is not a class index in [0, {len(names) - 1}]")


def _read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_augmented_class_folders(
    datalist: Sequence[Mapping],
    class_names: Sequence[str],
    output_dir: str | Path,
    regime: str = "none",
    per_class: int = 100,
    image_size: int = 64,
    epochs: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    wgan_options: Mapping[str, Any] | None = None,
    cae_options: Mapping[str, Any] | None = None,
    reuse_only: bool = False,
) -> list[dict]:
    """Write one augmentation regime's training set as a class-folder dataset and return its datalist.

    ``<output_dir>/<class>/<name>.png`` holds the originals (RGB, resized to ``image_size`` square) plus, per regime:
    ``none`` nothing; ``geometric`` the six :func:`geometric_counterparts` of each original (``<stem>_<op>.png``);
    ``wgan`` / ``cae`` ``per_class`` images (``<regime>_<k>.png``) from a generator trained per class on that
    class's images only. The folder is written atomically (:func:`common.data.write_folder_atomically`) with a
    manifest (regime, per_class, seed, image_size, epochs, generator options, class names and the source files with
    their labels and SHA-256); a complete folder whose manifest matches is re-used without retraining.

    Args:
        datalist: training items ``{"image": path, "label": int}`` (8-bit RGB PNG/JPEG).
        class_names: folder name of each class index.
        output_dir: the dataset folder to write (re-used or replaced when it holds a manifest of this function;
            any other non-empty folder is refused).
        regime: one of :data:`AUGMENTATION_REGIMES`.
        per_class: generated images per class (wgan, cae); recorded as 0 for the other regimes.
        image_size: side of the written images (a power of two in 32..512 for wgan and cae).
        epochs: generator epochs; None: :data:`DEFAULT_WGAN_EPOCHS` / :data:`DEFAULT_CAE_EPOCHS`.
        seed: seed of every random choice (per-class seeds are derived from it and the class index).
        device: training device of the generators.
        progress: tqdm bars during generator training and one log line per class.
        wgan_options: extra keyword arguments of :func:`train_wgan` (e.g. ``width``, ``clip_value``).
        cae_options: extra keyword arguments of :func:`train_autoencoder` (e.g. ``latent_channels``).
        reuse_only: only read a folder that matches the request, never write. Multi-process training writes the
            folder on rank 0 (``common.distributed.on_main_process``) and every rank then reads it this way.

    Returns:
        ``{"image": path, "label": int, "source": "original" | "geometric" | "wgan" | "cae"}`` per written file,
        by class, originals first.

    Raises:
        ValueError: unknown regime, ``per_class < 0``, bad sizes, labels or class names, an empty datalist, or a
            generative regime with a class that has no training image.
        common.data.ImageFileError: an unreadable or non-RGB source image (before anything is written).
        FileExistsError: ``output_dir`` is a non-empty folder without this function's manifest.
        FileNotFoundError: ``reuse_only`` and no complete folder matches the request.
    """
    _validate_request(datalist, class_names, regime, per_class, image_size, epochs)
    generative = regime in ("wgan", "cae")
    if not generative:
        per_class, epochs = 0, None
    elif epochs is None:
        epochs = DEFAULT_WGAN_EPOCHS if regime == "wgan" else DEFAULT_CAE_EPOCHS
    options = dict((wgan_options if regime == "wgan" else cae_options if regime == "cae" else None) or {})
    for reserved in ("images", "epochs", "seed", "device", "progress", "history"):
        if reserved in options:
            raise ValueError(f"{regime}_options must not set {reserved!r}; it is an argument of this function")
    output_dir = Path(output_dir)
    sources = [Path(item["image"]).resolve() for item in datalist]
    for path in sources:
        if not path.is_file():
            raise ImageFileError(path, "file does not exist")
    labels = [int(item["label"]) for item in datalist]
    request = {
        "version": MANIFEST_VERSION,
        "regime": regime,
        "per_class": per_class,
        "seed": int(seed),
        "image_size": image_size,
        "epochs": epochs,
        "options": options,
        "class_names": list(class_names),
        "sources": [[str(p), y, _file_digest(p)] for p, y in zip(sources, labels)],
    }
    request = json.loads(json.dumps(request))  # normalise types (tuples -> lists) for the comparison
    manifest_path = output_dir / MANIFEST_NAME
    overwrite = False
    if output_dir.exists() and any(output_dir.iterdir()):
        manifest = _read_manifest(manifest_path)
        if manifest is None:
            raise FileExistsError(f"{output_dir} is not empty and holds no {MANIFEST_NAME}: refusing to replace it")
        if {k: v for k, v in manifest.items() if k != "files"} == request and all(
            (output_dir / f["image"]).is_file() for f in manifest.get("files", [])
        ):
            if not reuse_only:
                logger.info(f"re-using the {regime} training set in {output_dir} (manifest matches)")
            return [{**f, "image": str(output_dir / f["image"])} for f in manifest["files"]]
        overwrite = True
    if reuse_only:
        raise FileNotFoundError(
            f"{output_dir}: no complete {regime} training set matching this request; the augmentation stage writes "
            "it first (the `augment` step of cutaneous_train.yaml)"
        )

    by_class: dict[int, list[int]] = {c: [] for c in range(len(class_names))}
    for index, label in enumerate(labels):
        by_class[label].append(index)
    if generative and per_class > 0:
        empty = [class_names[c] for c, members in by_class.items() if not members]
        if empty:
            raise ValueError(f"regime {regime!r} needs training images in every class; none for {empty}")
    # decode everything first: a bad file stops before any folder is created
    pixels = [_load_rgb(path, image_size) for path in sources]

    def fill(tmp: Path) -> None:
        files: list[dict] = []
        for label, name in enumerate(class_names):
            folder = tmp / name
            folder.mkdir()
            members = by_class[label]
            add = _ClassFolderWriter(folder, label, files)
            stems = [add(pixels[index], sources[index].stem, "original") for index in members]
            if regime == "geometric":
                for index, stem in zip(members, stems):
                    for op, array in zip(GEOMETRIC_OPERATIONS, geometric_counterparts(pixels[index])):
                        add(array, f"{stem}_{op}", "geometric")
            elif generative and per_class > 0:
                class_seed = _class_seed(seed, label)
                batch = torch.from_numpy(np.stack([pixels[i] for i in members])).permute(0, 3, 1, 2).float() / 255.0
                if regime == "wgan":
                    model = train_wgan(batch, epochs=epochs, seed=class_seed, device=device, progress=progress,
                                       **options)  # fmt: skip
                    generated = model.sample(per_class, seed=class_seed)
                else:
                    model = train_autoencoder(batch, epochs=epochs, seed=class_seed, device=device,
                                              progress=progress, **options)  # fmt: skip
                    generated = sample_autoencoder(model, batch, per_class, seed=class_seed)
                for k, array in enumerate(_to_uint8(generated)):
                    add(array, f"{regime}_{k:04d}", regime)
            if progress:
                logger.info(f"{regime}: class {name}: {len(members)} originals, "
                            f"{sum(f['label'] == label for f in files)} images written")  # fmt: skip
        (tmp / MANIFEST_NAME).write_text(json.dumps({**request, "files": files}, indent=1))

    write_folder_atomically(output_dir, fill, overwrite=overwrite)
    manifest = json.loads(manifest_path.read_text())
    return [{**f, "image": str(output_dir / f["image"])} for f in manifest["files"]]
