"""Offline augmentation stages of Kanekar et al., "Classification of Cutaneous Diseases" (ICPR 2024).

The paper compares four training sets built from 35 images per class: the originals alone, the originals plus six
geometric counterparts of each, and the originals plus 100-500 images per class drawn from a Wasserstein GAN or from
a convolutional autoencoder (CAE). This module builds those training sets as class-folder datasets on disk, once:
:func:`write_augmented_class_folders` writes ``<output_dir>/<class>/<name>.png`` atomically, deterministically for
a seed, and re-uses a complete folder whose manifest matches the request, so re-running a workflow does not retrain
the generators.

Decisions where the paper is silent or ambiguous (see the bundle README):

- **Six geometric counterparts.** The paper lists "horizontal and vertical flips, and rotations at 0, 90, 180, and
  270 degrees" and says each image yields six counterparts. Rotation by 0 degrees is the identity, which leaves five
  distinct operations; the sixth is the transpose (mirror about the main diagonal), the remaining order-2 element of
  the square's symmetry group that is not already listed (its other diagonal mirror is left out). All six are exact
  pixel permutations (no interpolation).
- **WGAN variant.** Training uses the gradient penalty of Gulrajani et al. (WGAN-GP: penalty weight 10, Adam with
  betas (0.5, 0.9), ``n_critic`` = 5; lr 5e-4 instead of their 1e-4, because the CPU budgets here allow tens to
  hundreds of generator steps, not their 100k) because weight clipping, the original WGAN's way of keeping the
  critic 1-Lipschitz, is known to under-use the critic's capacity and to be sensitive to the clip value. The
  original variant is kept: ``clip_value=0.01`` clips every critic weight after each critic step, drops the penalty
  and switches to RMSprop with lr 5e-5 (Arjovsky et al.).
- **Epoch.** One epoch is one shuffled pass of the critic over the class's images (one critic step per batch); the
  generator takes a step after every ``n_critic`` critic steps, counted across epochs.
- **Generating with the CAE** (the paper does not say how an autoencoder produces *new* images): encode the class's
  training images, fit an independent Gaussian (mean, standard deviation) to every latent value, draw latents from
  it, clip them at zero (the feature space is a ReLU output) and decode.
- **Per class.** One generator is trained per class on that class's training images only; the class label of a
  generated image is the class its generator was trained on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.atomic import write_folder_atomically
from ..image_io import read_image_array
from ..networks.generative import ConvAutoencoder, WGANCritic, WGANGenerator, check_power_of_two_size

__all__ = [
    "AUGMENTATION_REGIMES",
    "DEFAULT_CAE_EPOCHS",
    "DEFAULT_WGAN_EPOCHS",
    "GEOMETRIC_OPERATIONS",
    "geometric_counterparts",
    "sample_autoencoder",
    "train_autoencoder",
    "train_wgan",
    "write_augmented_class_folders",
]

logger = logging.getLogger(__name__)

AUGMENTATION_REGIMES = ("none", "geometric", "wgan", "cae")
GEOMETRIC_OPERATIONS = ("hflip", "vflip", "rot90", "rot180", "rot270", "transpose")
DEFAULT_WGAN_EPOCHS = 60
DEFAULT_CAE_EPOCHS = 60
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


# --------------------------------------------------------------------------------------------- training


def _as_image_batch(images: Any, what: str) -> torch.Tensor:
    """``(N, C, S, S)`` float tensor in [0, 1] from a tensor/array or a sequence of ``(C, S, S)`` items."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"{what}: no training images")
        images = torch.stack([x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x)) for x in images])
    x = torch.as_tensor(images).float()
    if x.dim() != 4 or x.shape[0] == 0 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{what}: expected a non-empty batch of square images (N, C, S, S), got {tuple(x.shape)}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(f"{what}: image values must be finite and in [0, 1]")
    return x


def _epoch_bar(epochs: int, desc: str, progress: bool):
    """Epoch iterator, a tqdm bar on stdout when ``progress``."""
    if progress:
        from tqdm import tqdm

        return tqdm(range(epochs), desc=desc, file=sys.stdout, leave=False)
    return range(epochs)


def _gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator):
    """Gulrajani et al.'s penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` at random points between real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=rng).to(real.device)
    mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def train_wgan(
    images: Any,
    latent_dim: int = 64,
    width: int = 16,
    epochs: int = DEFAULT_WGAN_EPOCHS,
    batch_size: int = 8,
    n_critic: int = 5,
    gp_weight: float = 10.0,
    clip_value: float | None = None,
    optimizer: str | None = None,
    learning_rate: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    log_every: int = 0,
    history: list | None = None,
) -> WGANGenerator:
    """Train a Wasserstein GAN on one class's images and return its generator (in eval mode).

    WGAN-GP by default (critic loss ``D(fake) - D(real) + gp_weight * GP``, generator loss ``-D(G(z))``); with
    ``clip_value`` the original WGAN (critic weights clipped to ``[-clip_value, clip_value]`` after every critic
    step, no penalty).

    Args:
        images: ``(N, C, S, S)`` images in [0, 1] (tensor, array or sequence of ``(C, S, S)``), S a power of two
            in 32..512; scaled to [-1, 1] internally.
        latent_dim: size of ``z``.
        width: generator/critic width (see :class:`~common.networks.WGANGenerator`).
        epochs: passes of the critic over the images (module docstring).
        batch_size: images per critic step.
        n_critic: critic steps per generator step.
        gp_weight: gradient-penalty weight (ignored with ``clip_value``).
        clip_value: weight-clipping bound for the original WGAN; None for WGAN-GP.
        optimizer: ``"adam"`` or ``"rmsprop"``; None picks Adam for WGAN-GP and RMSprop for weight clipping.
        learning_rate: None picks 5e-4 (Adam) or 5e-5 (RMSprop).
        seed: seed of the initial weights, the shuffling, the latents and the penalty's mixing weights.
        device: training device.
        progress: show a tqdm bar over epochs.
        log_every: log the losses every that many epochs (0: never).
        history: if a list, one dict per epoch is appended: ``epoch``, ``critic_loss`` (mean over the epoch's
            critic steps, penalty included), ``wasserstein`` (mean ``D(real) - D(fake)``, the critic's estimate of
            the Earth-Mover distance up to scale), ``generator_loss`` (mean of the epoch's generator steps, NaN if
            none).

    Returns:
        the trained :class:`~common.networks.WGANGenerator`; ``generator.sample(n, seed)`` draws images in [0, 1].

    Raises:
        ValueError: bad images or settings.
    """
    x = _as_image_batch(images, "train_wgan")
    for name, value in (("latent_dim", latent_dim), ("width", width), ("batch_size", batch_size),
                        ("n_critic", n_critic)):  # fmt: skip
        if int(value) < 1:
            raise ValueError(f"train_wgan: {name} must be >= 1, got {value}")
    if epochs < 0:
        raise ValueError(f"train_wgan: epochs must be >= 0, got {epochs}")
    if clip_value is not None and clip_value <= 0:
        raise ValueError(f"train_wgan: clip_value must be positive or None, got {clip_value}")
    optimizer = optimizer or ("rmsprop" if clip_value is not None else "adam")
    if optimizer not in ("adam", "rmsprop"):
        raise ValueError(f"train_wgan: optimizer must be 'adam' or 'rmsprop', got {optimizer!r}")
    lr = learning_rate if learning_rate is not None else (5e-4 if optimizer == "adam" else 5e-5)
    device = torch.device(device)
    real_all = (x * 2.0 - 1.0).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = WGANGenerator(latent_dim, x.shape[-1], x.shape[1], width).to(device)
        critic = WGANCritic(x.shape[-1], x.shape[1], width).to(device)

    def make_optimizer(params):
        if optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9))
        return torch.optim.RMSprop(params, lr=lr)

    opt_g, opt_d = make_optimizer(generator.parameters()), make_optimizer(critic.parameters())
    rng = torch.Generator().manual_seed(seed)
    critic_steps = 0
    generator.train()
    critic.train()
    for epoch in _epoch_bar(epochs, "WGAN", progress):
        d_losses, distances, g_losses = [], [], []
        order = torch.randperm(len(real_all), generator=rng)
        for start in range(0, len(order), batch_size):
            real = real_all[order[start : start + batch_size].to(device)]
            z = torch.randn(len(real), latent_dim, generator=rng).to(device)
            with torch.no_grad():
                fake = generator(z)
            d_real, d_fake = critic(real).mean(), critic(fake).mean()
            loss_d = d_fake - d_real
            if clip_value is None:
                loss_d = loss_d + gp_weight * _gradient_penalty(critic, real, fake, rng)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            if clip_value is not None:
                with torch.no_grad():
                    for p in critic.parameters():
                        p.clamp_(-clip_value, clip_value)
            d_losses.append(loss_d.item())
            distances.append((d_real - d_fake).item())
            critic_steps += 1
            if critic_steps % n_critic == 0:
                z = torch.randn(batch_size, latent_dim, generator=rng).to(device)
                loss_g = -critic(generator(z)).mean()
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                g_losses.append(loss_g.item())
        record = {
            "epoch": epoch + 1,
            "critic_loss": float(np.mean(d_losses)),
            "wasserstein": float(np.mean(distances)),
            "generator_loss": float(np.mean(g_losses)) if g_losses else float("nan"),
        }
        if history is not None:
            history.append(record)
        if log_every and (epoch + 1) % log_every == 0:
            logger.info(
                f"WGAN epoch {epoch + 1}/{epochs}: critic loss {record['critic_loss']:.4f}, "
                f"W estimate {record['wasserstein']:.4f}, generator loss {record['generator_loss']:.4f}"
            )
    return generator.eval()


def train_autoencoder(  # noqa: D417
    images: Any,
    width: int = 16,
    latent_channels: int = 8,
    depth: int = 3,
    epochs: int = DEFAULT_CAE_EPOCHS,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    log_every: int = 0,
    history: list | None = None,
) -> ConvAutoencoder:
    """Train a :class:`~common.networks.ConvAutoencoder` on one class's images (Adam, mean squared error).

    Args:
        images: ``(N, C, S, S)`` images in [0, 1], S a power of two in 32..512.
        width: the autoencoder's base width (see :class:`~common.networks.ConvAutoencoder`).
        latent_channels: channels of its feature space.
        depth: its number of down-sampling stages.
        epochs: shuffled passes over the images.
        batch_size: images per step.
        learning_rate: Adam's learning rate.
        seed: seed of the initial weights and the shuffling.
        device: training device.
        progress: show a tqdm bar over epochs.
        log_every: log the loss every that many epochs (0: never).
        history: if a list, ``{"epoch", "loss"}`` (mean reconstruction error of the epoch) is appended per epoch.

    Returns:
        the trained autoencoder in eval mode; :func:`sample_autoencoder` draws new images from it.

    Raises:
        ValueError: bad images or settings.
    """
    x = _as_image_batch(images, "train_autoencoder")
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"train_autoencoder: need epochs >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    device = torch.device(device)
    data = x.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ConvAutoencoder(x.shape[-1], x.shape[1], width, latent_channels, depth).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    rng = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in _epoch_bar(epochs, "CAE", progress):
        total = 0.0
        order = torch.randperm(len(data), generator=rng)
        for start in range(0, len(order), batch_size):
            batch = data[order[start : start + batch_size].to(device)]
            loss = model.reconstruction_loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        mean = total / len(data)
        if history is not None:
            history.append({"epoch": epoch + 1, "loss": mean})
        if log_every and (epoch + 1) % log_every == 0:
            logger.info(f"CAE epoch {epoch + 1}/{epochs}: reconstruction loss {mean:.5f}")
    return model.eval()


@torch.no_grad()
def sample_autoencoder(autoencoder: ConvAutoencoder, images: Any, count: int, seed: int = 0) -> torch.Tensor:
    """Draw ``count`` new images from a trained autoencoder by sampling its feature space.

    The class's training ``images`` are encoded; every latent value gets an independent Gaussian fitted to it
    (mean and population standard deviation over the images); latents are drawn from those Gaussians, clipped at
    zero (the feature space is a ReLU output) and decoded. The result is clipped to [0, 1].

    Args:
        autoencoder: a trained :class:`~common.networks.ConvAutoencoder`.
        images: the class's ``(N, C, S, S)`` training images in [0, 1].
        count: number of images to draw (0 gives an empty tensor).
        seed: seed of the latent draws.

    Returns:
        ``(count, C, S, S)`` float tensor in [0, 1] on the CPU.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    x = _as_image_batch(images, "sample_autoencoder")
    was_training = autoencoder.training
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    latents = torch.cat([autoencoder.encode(x[i : i + 32].to(device)).cpu() for i in range(0, len(x), 32)])
    flat = latents.flatten(1).double()
    mean, std = flat.mean(0), flat.std(0, unbiased=False)
    rng = torch.Generator().manual_seed(seed)
    draws = (mean + std * torch.randn(count, flat.shape[1], generator=rng, dtype=torch.float64)).clamp_min(0.0)
    draws = draws.float().reshape(count, *latents.shape[1:])
    out = [autoencoder.decode(draws[i : i + 32].to(device)).cpu() for i in range(0, count, 32)]
    autoencoder.train(was_training)
    if not out:
        return torch.zeros(0, *x.shape[1:])
    return torch.cat(out).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------- class folders


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_rgb(path: Path, image_size: int) -> np.ndarray:
    """``(image_size, image_size, 3)`` uint8 array of an RGB image file, resized (bicubic) when needed."""
    from PIL import Image

    from ..data.errors import ImageFileError

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
            from ..data.errors import ImageFileError

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
