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
  generator takes a step after every ``n_critic`` critic steps, counted across epochs. MONAI's ``GanTrainer`` would
  instead take ``d_train_steps`` critic steps on the same batch before every generator step, so the WGAN runs on a
  small ``GanTrainer`` subclass with this schedule; the CAE runs on MONAI's ``SupervisedTrainer``.
- **Generating with the CAE** (the paper does not say how an autoencoder produces *new* images): encode the class's
  training images, fit an independent Gaussian (mean, standard deviation) to every latent value, draw latents from
  it, clip them at zero (the feature space is a ReLU output) and decode.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import torch
from monai.engines import GanTrainer, SupervisedTrainer
from monai.utils import CommonKeys, GanKeys

from ..networks.generative import ConvAutoencoder, WGANCritic, WGANGenerator
from .stage_training import PrepareBatchInputAsTarget, attach_stage_handlers, shuffled_loader

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


def _gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator):
    """Gulrajani et al.'s penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` at random points between real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=rng).to(real.device)
    mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def _seeded_latents(
    rng: torch.Generator,
    num_latents: int,
    latent_size: int,
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """``GanTrainer``'s ``g_prepare_batch`` drawing from the run's generator (MONAI's default uses the global RNG)."""
    return torch.randn(num_latents, latent_size, generator=rng).to(device=device, non_blocking=non_blocking, **kwargs)


def _critic_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """The critic's Wasserstein loss ``D(fake) - D(real)`` from its mean scores (the penalty is added by the step)."""
    return fake_score - real_score


def _generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's Wasserstein loss ``-D(G(z))`` from the critic's scores of its images."""
    return -fake_scores.mean()


class _WGANTrainer(GanTrainer):
    """MONAI's ``GanTrainer`` with the module's step schedule and Lipschitz constraint.

    Each iteration is one critic step on its batch of real images (with Gulrajani et al.'s gradient penalty, or with
    its weights clipped to ``[-clip_value, clip_value]`` after the step); every ``n_critic``-th iteration, counted
    across epochs (the engine's iteration number), is followed by one generator step on ``generator_batch`` new
    latents. The iteration output holds ``GanKeys.DLOSS`` (penalty included), ``"wasserstein"`` (``D(real) -
    D(fake)``) and ``GanKeys.GLOSS`` (None when the generator did not step).

    Args:
        rng: the generator of the latents and of the penalty's mixing weights.
        n_critic: critic steps per generator step.
        gp_weight: penalty weight (unused with ``clip_value``).
        clip_value: weight-clipping bound, or None for the penalty.
        generator_batch: latents per generator step.
        kwargs: ``GanTrainer``'s other arguments (device, epochs, loader, networks, optimizers, handlers...).
    """

    def __init__(
        self,
        rng: torch.Generator,
        n_critic: int,
        gp_weight: float,
        clip_value: float | None,
        generator_batch: int,
        **kwargs: Any,
    ) -> None:
        latents = functools.partial(_seeded_latents, rng)
        super().__init__(g_loss_function=_generator_loss, d_loss_function=_critic_loss, g_prepare_batch=latents,
                         decollate=False, **kwargs)  # fmt: skip
        self.rng, self.n_critic, self.gp_weight = rng, n_critic, gp_weight
        self.clip_value, self.generator_batch = clip_value, generator_batch

    def _latents(self, count: int) -> torch.Tensor:
        return self.g_prepare_batch(count, self.latent_shape, self.state.device, self.non_blocking, **self.to_kwargs)

    def _iteration(self, engine: _WGANTrainer, batchdata: torch.Tensor) -> dict[str, Any]:
        """One critic step on ``batchdata``, then a generator step if it is the ``n_critic``-th."""
        real, _ = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        generator, critic = engine.g_network.train(), engine.d_network.train()
        z = engine._latents(len(real))
        with torch.no_grad():
            fake = engine.g_inferer(z, generator)
        d_real, d_fake = engine.d_inferer(real, critic).mean(), engine.d_inferer(fake, critic).mean()
        loss_d = engine.d_loss_function(d_real, d_fake)
        if engine.clip_value is None:
            loss_d = loss_d + engine.gp_weight * _gradient_penalty(critic, real, fake, engine.rng)
        engine.d_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        loss_d.backward()
        engine.d_optimizer.step()
        if engine.clip_value is not None:
            with torch.no_grad():
                for p in critic.parameters():
                    p.clamp_(-engine.clip_value, engine.clip_value)
        output = {GanKeys.REALS: real, GanKeys.FAKES: fake, GanKeys.LATENTS: z, GanKeys.DLOSS: loss_d.item(),
                  "wasserstein": (d_real - d_fake).item(), GanKeys.GLOSS: None}  # fmt: skip
        if engine.state.iteration % engine.n_critic == 0:
            fake_scores = engine.d_inferer(engine.g_inferer(engine._latents(engine.generator_batch), generator), critic)
            loss_g = engine.g_loss_function(fake_scores)
            engine.g_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
            loss_g.backward()
            engine.g_optimizer.step()
            output[GanKeys.GLOSS] = loss_g.item()
        return output


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
    step, no penalty). Runs on MONAI's ``GanTrainer`` with the module's step schedule (module docstring); the losses
    are averaged, logged (``log_every``) and shown (``progress``) once per epoch.

    Resume: none within a call; a call trains from scratch, and the same seed gives the same generator.
    :func:`~common.engines.write_augmented_class_folders` re-uses a finished training set whose manifest matches the
    request, so a rerun trains no generator; an interrupted one trains them all again.

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

    rng = torch.Generator().manual_seed(seed)
    trainer = _WGANTrainer(
        rng, n_critic, gp_weight, clip_value, batch_size, device=device, max_epochs=epochs,
        train_data_loader=shuffled_loader(real_all, batch_size, rng), g_network=generator,
        g_optimizer=make_optimizer(generator.parameters()), d_network=critic,
        d_optimizer=make_optimizer(critic.parameters()), latent_shape=latent_dim, optim_set_to_none=True,
    )  # fmt: skip
    attach_stage_handlers(
        trainer, {"critic_loss": GanKeys.DLOSS, "wasserstein": "wasserstein", "generator_loss": GanKeys.GLOSS},
        history, logger=logger, log_every=log_every, progress="WGAN" if progress else None,
        message="WGAN epoch {epoch}/{max_epochs}: critic loss {critic_loss:.4f}, W estimate {wasserstein:.4f}, "
        "generator loss {generator_loss:.4f}",
    )  # fmt: skip
    if epochs > 0:
        trainer.run()
    return generator.eval()


def train_autoencoder(
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

    Runs on MONAI's ``SupervisedTrainer`` (the target is the input); the loss is averaged, logged (``log_every``) and
    shown (``progress``) once per epoch.

    Resume: none within a call, as :func:`train_wgan` (a finished training set is re-used by
    :func:`~common.engines.write_augmented_class_folders`).

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
    rng = torch.Generator().manual_seed(seed)
    trainer = SupervisedTrainer(
        device=device, max_epochs=epochs, train_data_loader=shuffled_loader(data, batch_size, rng), network=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=learning_rate), loss_function=torch.nn.MSELoss(),
        prepare_batch=PrepareBatchInputAsTarget(), decollate=False, optim_set_to_none=True,
    )  # fmt: skip
    attach_stage_handlers(trainer, {"loss": CommonKeys.LOSS}, history, per_image=True, logger=logger,
                          message="CAE epoch {epoch}/{max_epochs}: reconstruction loss {loss:.5f}",
                          log_every=log_every, progress="CAE" if progress else None)  # fmt: skip
    if epochs > 0:
        trainer.run()
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
