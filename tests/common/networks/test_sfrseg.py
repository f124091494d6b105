from __future__ import annotations

import pytest
import torch
from torch import nn

from common.networks import IEWADWTDown, SFRSegNet
from common.networks.sfrseg import POOLINGS

SMALL = (4, 8, 16)  # two down-samplings: inputs divisible by 4


def _num_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("pooling", POOLINGS)
def test_shapes_and_gradients(pooling: str):
    torch.manual_seed(0)
    net = SFRSegNet(in_channels=3, out_channels=2, features=SMALL, pooling=pooling)
    x = torch.rand(2, 3, 16, 24)
    out = net(x)
    assert out.shape == (2, 2, 16, 24)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.encoder[0].block[0].conv.weight.grad.abs().sum() > 0, "gradient reaches the first layer"


def test_default_network_is_the_paper_layout():
    sfrseg, unet, avg = SFRSegNet(), SFRSegNet(pooling="max"), SFRSegNet(pooling="avg")
    assert sum(isinstance(m, IEWADWTDown) for m in sfrseg.modules()) == 4
    assert sum(isinstance(m, nn.MaxPool2d) for m in unet.modules()) == 4
    # pooling has no parameters: same count and the same state-dict keys for every variant
    assert _num_params(sfrseg) == _num_params(unet) == _num_params(avg)
    assert sfrseg.state_dict().keys() == unet.state_dict().keys()
    convs = [m for m in sfrseg.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 18  # 10 encoder/bottleneck + 8 decoder 3x3 convolutions
    assert [c.out_channels for c in convs[:10]] == [16, 16, 32, 32, 64, 64, 128, 128, 256, 256]
    with torch.no_grad():
        assert sfrseg.eval()(torch.zeros(1, 3, 128, 128)).shape == (1, 1, 128, 128)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("pooling", ["iewa_dwt", "max"])
def test_torchscript_parity(pooling: str):
    torch.manual_seed(0)
    net = SFRSegNet(features=SMALL, pooling=pooling)
    net(torch.rand(4, 3, 16, 16))  # one training step's worth of batch-norm statistics
    net.eval()
    scripted = torch.jit.script(net)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(Exception, match="divisible by 4"):
        scripted(torch.zeros(1, 3, 18, 16))


def test_errors():
    with pytest.raises(ValueError, match=r"divisible by 16 .* got H x W = 40 x 40"):
        SFRSegNet()(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match="divisible by 4"):
        SFRSegNet(features=SMALL)(torch.zeros(1, 3, 16, 18))
    with pytest.raises(ValueError, match="3 input channels, got 1"):
        SFRSegNet(features=SMALL)(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        SFRSegNet(features=SMALL)(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="pooling must be one of"):
        SFRSegNet(pooling="stochastic")
    with pytest.raises(ValueError, match="features"):
        SFRSegNet(features=(16,))
    with pytest.raises(ValueError, match="positive"):
        SFRSegNet(out_channels=0)
