"""Training the generators of the cutaneous augmentation regimes (Kanekar et al., ICPR 2024): WGAN and CAE.

:func:`train_wgan` and :func:`train_autoencoder` fit one generator to one class's images; :func:`sample_autoencoder`
draws new images from a trained CAE. :mod:`common.engines.augmentation` calls them to build the training sets.

Decisions where the paper is silent or ambiguous (see the bundle README):

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
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np
import torch

from ..networks.generative import ConvAutoencoder, WGANCritic, WGANGenerator

__all__ = ["DEFAULT_CAE_EPOCHS", "DEFAULT_WGAN_EPOCHS", "sample_autoencoder", "train_autoencoder", "train_wgan"]

logger = logging.getLogger(__name__)

DEFAULT_WGAN_EPOCHS = 60
DEFAULT_CAE_EPOCHS = 60


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
