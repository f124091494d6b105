from __future__ import annotations

import pytest
import torch

from common import sr_ops
from common.networks import (
    ISTE,
    ISTE_VARIANTS,
    LocalFeatureInteractor,
    SelfTextureFusion,
    SwinIREncoder,
    TextureLearner,
    validate_scale,
)
from common.networks import iste as iste_module
from common.sr_ops import make_coord

TINY = {"dim": 8, "depths": (2,), "heads": (2,), "window": 4, "texture_dim": 8, "similarity_dim": 4,
        "decoder_hidden": (8,), "block_size": 8}  # fmt: skip


def _perturb(net: torch.nn.Module) -> None:
    """Move the zero-initialised decoder outputs away from zero so that every part matters."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))


def test_validate_scale_is_the_shared_check_configs_call():
    # bundle configs call common.networks.validate_scale; the check itself is tested in tests/common/test_sr_ops.py
    assert validate_scale is sr_ops.validate_scale and validate_scale("3.5") == 3.5


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
    with pytest.raises(ValueError, match="decode_chunk"):
        ISTE(decode_chunk=0)


def _blockwise_query(net: ISTE, image: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """The previous ``upsample``: encode the whole image, then ``query`` one ``block_size`` HR block at a time."""
    b, c = image.shape[:2]
    latent = net.encode(image)
    coord = make_coord(out_h, out_w).reshape(out_h, out_w, 2)
    out = torch.zeros(b, c, out_h, out_w)
    cell_hw = torch.tensor([2.0 / out_h, 2.0 / out_w])
    bs = net.block_size
    for top in range(0, out_h, bs):
        for left in range(0, out_w, bs):
            block = coord[top : top + bs, left : left + bs]
            bh, bw = block.shape[:2]
            q = block.reshape(1, bh * bw, 2).expand(b, bh * bw, 2)
            pred = net.query(image, latent, q, cell_hw.reshape(1, 1, 2).expand(b, bh * bw, 2))
            out[:, :, top : top + bh, left : left + bw] = pred.permute(0, 2, 1).reshape(b, c, bh, bw)
    return out


# (LR h, LR w, HR h, HR w, block_size, decode_chunk): integer, non-integer and anisotropic scales, partial blocks,
# one block per chunk and many, chunks that do not divide the block row
UPSAMPLE_CASES = [(6, 7, 17, 15, 5, 30), (10, 9, 37, 23, 6, 100), (12, 12, 13, 14, 48, 16384), (5, 6, 41, 44, 8, 130)]


@pytest.mark.parametrize("variant", list(ISTE_VARIANTS))
@pytest.mark.parametrize("case", UPSAMPLE_CASES)
def test_chunked_upsample_equals_blockwise_query(variant, case):
    # the batched, separable, region-wise decoding must give the block-by-block query result (same STF pools)
    h, w, out_h, out_w, block, chunk = case
    torch.manual_seed(0)
    net = ISTE(**{**TINY, **ISTE_VARIANTS[variant], "block_size": block, "decode_chunk": chunk}).eval()
    _perturb(net)
    image = torch.rand(2, 3, h, w)
    with torch.no_grad():
        expected = _blockwise_query(net, image, out_h, out_w)
        got = net.upsample(image, out_h, out_w)
    assert got.shape == (2, 3, out_h, out_w)
    assert (expected - torch.nn.functional.interpolate(image, (out_h, out_w), mode="bicubic")).abs().max() > 1e-2
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_decode_chunk_does_not_change_the_result():
    torch.manual_seed(0)
    net = ISTE(**{**TINY, "block_size": 6, "decode_chunk": 1}).eval()
    _perturb(net)
    image = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        one_block = net.upsample(image, 40, 45)
        net.decode_chunk = 10_000
        whole_rows = net.upsample(image, 40, 45)
    torch.testing.assert_close(one_block, whole_rows, atol=1e-5, rtol=0)


def test_encoder_windows_in_chunks_equal_the_whole_map(monkeypatch):
    torch.manual_seed(0)
    enc = SwinIREncoder(dim=12, depths=(2, 2), heads=(2, 3), window=4)
    calls = []
    chunked = iste_module._SwinBlock._forward_chunked

    def spy(self, x):
        calls.append(x.shape)
        return chunked(self, x)

    monkeypatch.setattr(iste_module._SwinBlock, "_forward_chunked", spy)
    for module in enc.modules():
        if isinstance(module, iste_module._SwinBlock):
            module.chunk_tokens = 37  # 2 windows of 16 tokens per chunk
    image = torch.rand(2, 3, 20, 24)
    whole = enc(image)  # autograd on: the whole-map path
    assert not calls
    with torch.no_grad():
        in_chunks = enc(image)
    assert len(calls) == 4, "every block took the chunked path"
    torch.testing.assert_close(in_chunks, whole.detach(), atol=1e-5, rtol=0)


def test_most_similar_in_bands_equals_the_full_argmax():
    torch.manual_seed(0)
    q, k = torch.randn(3, 50, 4), torch.randn(3, 70, 4)
    full = (q @ k.transpose(1, 2)).argmax(-1)
    assert torch.equal(iste_module._most_similar(q, k, budget=140), full)  # bands of 2 rows
    assert torch.equal(iste_module._most_similar(q, k), full)  # one band


def test_stf_with_distinct_pixels_equals_the_full_pool():
    torch.manual_seed(0)
    stf = SelfTextureFusion(4, 6, similarity_dim=3)
    unique = torch.rand(2, 5, 4)
    inverse = torch.randint(0, 5, (2, 30))
    pixel = torch.gather(unique, 1, inverse.unsqueeze(-1).expand(-1, -1, 4))
    texture = torch.rand(2, 30, 6)
    torch.testing.assert_close(stf(pixel, texture, unique, inverse), stf(pixel, texture), atol=1e-6, rtol=0)


def test_batched_metatensor_input_decodes_like_a_plain_tensor():
    # the bundle's evaluators hand the network a collated MONAI MetaTensor (batch 1); the chunked encoder slices its
    # first dimension (windows), which a batched MetaTensor takes for the batch and refuses, so it is made plain
    import numpy as np
    from monai.data import MetaTensor, list_data_collate

    torch.manual_seed(0)
    net = ISTE(**{**TINY, "block_size": 6}).eval()
    _perturb(net)
    for module in net.modules():
        if isinstance(module, iste_module._SwinBlock):
            module.chunk_tokens = 64  # 4 windows of 16 tokens per chunk
    image = torch.rand(3, 16, 16)
    meta = {"spatial_shape": np.array([16, 16]), "filename_or_obj": "tile.png"}
    batch = list_data_collate([{"image": MetaTensor(image, meta=meta)}])["image"]
    assert isinstance(batch, MetaTensor) and batch.is_batch
    with torch.no_grad():
        out = net(batch)
        expected = net(image.unsqueeze(0))
    assert type(out) is torch.Tensor
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
