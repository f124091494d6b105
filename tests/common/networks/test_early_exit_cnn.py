from __future__ import annotations

import pytest
import torch

from common.networks import PAPER_CHANNELS, EarlyExitCNN, MultiExitLoss


def test_paper_network_shapes_and_flatten_size():
    net = EarlyExitCNN(channels=PAPER_CHANNELS).eval()
    assert PAPER_CHANNELS == (32, 64, 128, 128, 128)
    # valid convolutions: 180 -> 3x3 maps of 128 channels before the 512-unit layer (the paper's Keras default)
    assert net.head[2].in_features == 128 * 3 * 3 and net.head[2].out_features == 512
    assert EarlyExitCNN(padding="same").head[2].in_features == 128 * 5 * 5
    x = torch.rand(2, 1, 180, 180)
    with torch.no_grad():
        logits, exits = net(x), net.forward_exits(x)
    assert logits.shape == (2, 3) and exits.shape == (2, 3, 3) and net.num_exits == 3
    assert torch.allclose(exits[:, -1], logits)


def test_plain_member_has_no_exits():
    net = EarlyExitCNN(channels=(4, 4, 8, 8, 8), fc_units=8, exit_after=()).eval()
    assert net.num_exits == 1
    assert net.forward_exits(torch.rand(1, 1, 180, 180)).shape == (1, 1, 3)


def test_torchscript_keeps_forward_and_forward_exits():
    net = EarlyExitCNN(channels=(4, 8, 8, 8, 8), fc_units=16, exit_channels=8).eval()
    scripted = torch.jit.script(net)
    x = torch.rand(2, 1, 180, 180)
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-5)
        assert torch.allclose(scripted.forward_exits(x), net.forward_exits(x), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channels": (1, 2, 3)},
        {"padding": "reflect"},
        {"exit_after": (5,)},
        {"exit_after": (3, 2)},
        {"spatial_size": 40},
    ],  # fmt: skip
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        EarlyExitCNN(**kwargs)


def test_multi_exit_loss_weights_the_exits():
    torch.manual_seed(0)
    pred, target = torch.randn(4, 3, 3), torch.tensor([0, 1, 2, 1])
    ce = [torch.nn.functional.cross_entropy(pred[:, k], target) for k in range(3)]
    assert torch.allclose(MultiExitLoss()(pred, target), 0.5 * ce[0] + 0.5 * ce[1] + ce[2])
    weights = [1.0, 2.0, 3.0]
    single = MultiExitLoss(class_weights=weights)(pred[:, 2], target)
    expected = torch.nn.functional.cross_entropy(pred[:, 2], target, weight=torch.tensor(weights))
    assert torch.allclose(single, expected)
    with pytest.raises(ValueError, match="exit weights"):
        MultiExitLoss(exit_weights=(1.0, 1.0))(pred, target)
