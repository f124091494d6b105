"""Unit tests of common.networks.fusion_autoencoder: Table 1 shapes, the latent switch, baselines, TorchScript."""

from __future__ import annotations

import pytest
import torch

from common.networks import (
    DECODER_CHANNELS,
    ENCODER_CHANNELS,
    MINI_EFFICIENTNET_BLOCKS,
    MODALITIES,
    ChannelSelector,
    FusionAutoencoder,
    FusionClassifier,
    efficientnet_classifier,
    fusion_latent_size,
)


def test_latent_size_rule_matches_table_1():
    assert fusion_latent_size(512) == 108 and fusion_latent_size(128) == 12
    with pytest.raises(ValueError, match="divisible by 4"):
        fusion_latent_size(130)
    assert ENCODER_CHANNELS[-1] == 512 and DECODER_CHANNELS[-1] == 12 and MODALITIES == ("BSHG", "FSHG", "TPEF")
    assert len(MINI_EFFICIENTNET_BLOCKS) == 4


def test_table_1_layer_sizes_at_512():
    ae = FusionAutoencoder(width=1.0, latent_on_path=False)
    sizes = []
    ae.enc1.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    ae.enc[-1].register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    ae.dec_in.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    with torch.no_grad():
        latent, recon = ae(torch.rand(1, 3, 512, 512))
    assert sizes == [(12, 502, 502), (512, 110, 110), (256, 112, 112)]
    assert latent.shape == (1, 3, 108, 108) and recon.shape == (1, 3, 512, 512)


@pytest.mark.parametrize("on_path", [True, False])
def test_latent_gradient_depends_on_the_switch(on_path: bool):
    ae = FusionAutoencoder(width=0.125, latent_on_path=on_path)
    x = torch.rand(2, 3, 128, 128)
    latent, recon = ae(x)
    assert latent.shape == (2, 3, 12, 12) and recon.shape == x.shape
    ((recon - x) ** 2).mean().backward()
    got_grad = ae.latent.weight.grad is not None and ae.latent.weight.grad.abs().sum() > 0
    assert got_grad == on_path  # the code's side-head latent gets no reconstruction gradient


def test_channel_selector_repeats_one_modality():
    x = torch.rand(2, 3, 8, 8)
    out = ChannelSelector([2])(x)
    assert out.shape == (2, 3, 8, 8) and torch.equal(out[:, 0], x[:, 2]) and torch.equal(out[:, 1], x[:, 2])
    assert torch.equal(ChannelSelector([0, 1, 2]).encode(x), x)
    with pytest.raises(ValueError):
        ChannelSelector([])


def test_classifier_freezes_front_and_scripts():
    net = FusionClassifier(
        FusionAutoencoder(width=0.125), efficientnet_classifier("efficientnet-mini", 2, 3, 0.1, 48), 48
    )
    net.freeze_front()
    net.train()
    assert not net.front.training and all(not p.requires_grad for p in net.front.parameters())
    net.eval()
    x = torch.rand(2, 3, 128, 128)
    scripted = torch.jit.script(net)
    with torch.no_grad():
        assert torch.allclose(net(x), scripted(x), atol=1e-5)
    b0 = efficientnet_classifier("efficientnet-b0", 2)
    assert b0(torch.rand(1, 3, 64, 64)).shape == (1, 2)
