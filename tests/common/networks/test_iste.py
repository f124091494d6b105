from __future__ import annotations

import pytest
import torch

from common.networks import (
    ISTE,
    ISTE_VARIANTS,
    LocalFeatureInteractor,
    SelfTextureFusion,
    SwinIREncoder,
    TextureLearner,
    make_coord,
    validate_scale,
)

TINY = {"dim": 8, "depths": (2,), "heads": (2,), "window": 4, "texture_dim": 8, "similarity_dim": 4,
        "decoder_hidden": (8,), "block_size": 8}  # fmt: skip


def _perturb(net: torch.nn.Module) -> None:
    """Move the zero-initialised decoder outputs away from zero so that every part matters."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))


def test_make_coord_is_pixel_centres():
    coord = make_coord(2, 4)
    assert coord.shape == (8, 2)
    torch.testing.assert_close(coord[0], torch.tensor([-0.5, -0.75]))
    torch.testing.assert_close(coord[-1], torch.tensor([0.5, 0.75]))


@pytest.mark.parametrize("value", [1, 0.5, "abc", None, float("nan"), True])
def test_validate_scale_rejects(value):
    with pytest.raises(ValueError, match="scale must be a number > 1"):
        validate_scale(value)


def test_validate_scale_accepts_strings_and_floats():
    assert validate_scale("3.5") == 3.5 and validate_scale(2) == 2.0


def test_encoder_keeps_size_for_any_input():
    enc = SwinIREncoder(dim=8, depths=(2,), heads=(2,), window=4)
    assert enc(torch.rand(2, 3, 7, 10)).shape == (2, 8, 7, 10)
    with pytest.raises(ValueError, match="divide dim"):
        SwinIREncoder(dim=8, depths=(2,), heads=(3,))


def test_lfi_attends_to_neighbours_only():
    torch.manual_seed(0)
    lfi = LocalFeatureInteractor(4)
    feat = torch.zeros(1, 4, 9, 9)
    out0 = lfi(feat)
    feat[0, :, 4, 4] = 1.0  # a change at the centre reaches only its 3x3 neighbourhood
    diff = (lfi(feat) - out0).abs().sum(1)[0]
    assert diff[3:6, 3:6].min() > 0
    diff[3:6, 3:6] = 0
    assert diff.max() == 0


def test_texture_learner_is_a_sine_of_the_local_grid():
    torch.manual_seed(0)
    tl = TextureLearner(4, texture_dim=6)
    assert tl.maps(torch.rand(1, 4, 5, 5)).shape == (1, 18, 5, 5)
    amp, fx, fy = torch.rand(3, 1, 2, 6).unbind(0)
    rel, cell = torch.rand(1, 2, 2), torch.full((1, 2, 2), 0.5)
    out = tl(amp, fx, fy, rel, cell)
    phase = torch.pi * torch.sigmoid(tl.phase(cell))
    torch.testing.assert_close(out, amp * torch.sin(fx * rel[..., 1:2] + fy * rel[..., 0:1] + phase))


def test_stf_retrieves_the_most_similar_texture():
    torch.manual_seed(0)
    stf = SelfTextureFusion(4, 4, similarity_dim=4)
    pixel, texture = torch.rand(2, 10, 4, requires_grad=True), torch.rand(2, 10, 4)
    out = stf(pixel, texture)
    assert out.shape == (2, 10, 4)
    out.sum().backward()
    assert stf.to_k.weight.grad.abs().sum() > 0, "the soft attention (max similarity) is differentiable"
    # retrieval is hard: a texture that is never the best match gets no value gradient
    q = torch.nn.functional.normalize(stf.to_q(pixel), dim=-1)
    k = torch.nn.functional.normalize(stf.to_k(texture), dim=-1)
    best = (q @ k.transpose(1, 2)).argmax(-1)
    assert best.shape == (2, 10)


@pytest.mark.parametrize("variant", list(ISTE_VARIANTS))
def test_variants_shapes_gradients_and_torchscript(variant):
    torch.manual_seed(0)
    net = ISTE(scale=2.0, **ISTE_VARIANTS[variant], **TINY)
    _perturb(net)
    image = torch.rand(2, 3, 9, 12)
    coord = torch.rand(2, 30, 2) * 2 - 1
    cell = torch.full((2, 30, 2), 2 / 20)
    out = net(image, coord, cell)
    assert out.shape == (2, 30, 3)
    out.abs().mean().backward()
    assert net.encoder.conv_first.weight.grad.abs().sum() > 0
    assert (net.texture is None) == (variant == "liif")
    assert (net.lfi is None) == (variant in ("without_lfi", "liif"))
    net.eval()
    scripted = torch.jit.script(net)
    with torch.no_grad():
        eager = net(image)
        assert eager.shape == (2, 3, 18, 24)
        torch.testing.assert_close(scripted(image), eager, atol=1e-5, rtol=1e-5)
        up = scripted.upsample(image, 31, 20)  # non-integer, anisotropic scale through the exported method
        assert up.shape == (2, 3, 31, 20)


def test_untrained_network_is_the_bicubic_skip():
    net = ISTE(**TINY).eval()
    image = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        out = net(image)
    expected = torch.nn.functional.interpolate(image, size=(16, 16), mode="bicubic", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_blockwise_decoding_matches_one_block_without_stf():
    # without STF each query is independent, so the block size must not change the result
    torch.manual_seed(0)
    kw = {**TINY, **ISTE_VARIANTS["without_stf"]}
    small, big = ISTE(**{**kw, "block_size": 5}), ISTE(**{**kw, "block_size": 1000})
    _perturb(small)
    big.load_state_dict(small.state_dict())
    image = torch.rand(1, 3, 6, 7)
    with torch.no_grad():
        torch.testing.assert_close(small.upsample(image, 17, 15), big.upsample(image, 17, 15), atol=1e-5, rtol=0)


def test_query_equals_full_decoding():
    torch.manual_seed(0)
    net = ISTE(**{**TINY, "block_size": 100})
    _perturb(net)
    image = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        full = net.upsample(image, 15, 15)
        coord = make_coord(15, 15).unsqueeze(0)
        cell = torch.full_like(coord, 2 / 15)
        queried = net.query(image, net.encode(image), coord, cell)
    torch.testing.assert_close(queried.reshape(15, 15, 3).permute(2, 0, 1), full[0], atol=1e-5, rtol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale must be a number > 1"):
        ISTE(scale=1.0)
    with pytest.raises(ValueError, match="image_skip"):
        ISTE(image_skip="lanczos")
