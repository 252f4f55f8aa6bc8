"""Prox networks (DnCNN, the ResNet prox): shapes at any image size, the residual form, the documented starts,
float64 gradients, and bad arguments."""

import pytest
import torch

from proxlab.priors import networks

DnCNN = networks.DnCNN
try:  # the ResNet prox lives with the other prox networks, or beside ISTA-Net
    ResNetProx = networks.ResNetProx
except AttributeError:
    from proxlab.unrolled.istanet import ResNetProx


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------- DnCNN

def test_dncnn_parameter_count_is_the_documented_one():
    assert n_params(DnCNN(depth=10, features=32)) == 74_849
    # conv 1→F (9F + F), (depth − 2) × [conv F→F without bias (9F²) + BN (2F)], conv F→1 (9F + 1)
    F, d = 8, 5
    assert n_params(DnCNN(depth=d, features=F)) == 10 * F + (d - 2) * (9 * F * F + 2 * F) + 9 * F + 1
    # without batch norm the middle convolutions keep their biases
    assert n_params(DnCNN(depth=d, features=F, batch_norm=False)) == 10 * F + (d - 2) * (9 * F * F + F) + 9 * F + 1
    assert n_params(DnCNN(channels=3, depth=3, features=4)) == (27 * 4 + 4) + (36 * 4 + 8) + (36 * 3 + 3)


@pytest.mark.parametrize("shape", [(1, 1, 28, 28), (3, 1, 17, 40), (2, 1, 5, 5), (1, 3, 12, 9)])
def test_dncnn_keeps_the_shape_at_any_size(shape):
    torch.manual_seed(0)
    net = DnCNN(channels=shape[1], depth=4, features=6).eval()
    with torch.no_grad():
        assert net(torch.rand(shape)).shape == shape


def test_dncnn_predicts_the_noise_and_ignores_tau():
    torch.manual_seed(1)
    net = DnCNN(depth=4, features=6).eval()
    y = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        out = net(y)
        torch.testing.assert_close(out, y - net.body(y))  # D(y) = y − r(y)
        assert float((out - y).abs().max()) > 1e-4  # a random residual net is not the identity
        torch.testing.assert_close(net(y, 0.3), out)
        torch.testing.assert_close(net(y, torch.tensor(5.0)), out)
    # zero last convolution: exactly the identity
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
        torch.testing.assert_close(net(y), y)


def test_dncnn_is_translation_equivariant_away_from_the_border():
    torch.manual_seed(2)
    net = DnCNN(depth=3, features=4).eval()  # receptive field 7×7: 3 pixels of border effect
    y = torch.rand(1, 1, 20, 20)
    with torch.no_grad():
        a = net(y)
        b = net(torch.roll(y, shifts=(2, 1), dims=(2, 3)))
    torch.testing.assert_close(b[..., 6:-6, 6:-6], torch.roll(a, shifts=(2, 1), dims=(2, 3))[..., 6:-6, 6:-6])


def test_dncnn_gradcheck_float64():
    torch.manual_seed(3)
    net = DnCNN(depth=3, features=2).double().eval()
    y = torch.rand(1, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: net(v), (y,), eps=1e-6, atol=1e-6)
    # and the weights receive gradients in training mode (batch norm from the batch statistics)
    net.train()
    loss = net(torch.rand(4, 1, 6, 6, dtype=torch.float64)).pow(2).mean()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert all(torch.isfinite(g).all() for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": 0}, "channels must be an int >= 1, got 0"),
    ({"depth": 2}, "depth must be an int >= 3, got 2"),
    ({"depth": 4.0}, "depth must be an int >= 3, got 4.0"),
    ({"features": True}, "features must be an int >= 1, got True"),
])
def test_dncnn_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DnCNN(**kwargs)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 2, 8, 8), (2, 1, 1, 4, 4)])
def test_dncnn_bad_input_shape_is_named(shape):
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, H, W\), got shape " + str(shape).replace("(", r"\(")
                       .replace(")", r"\)")):
        DnCNN(depth=3, features=2)(torch.zeros(shape))


# ---------------------------------------------------------------- ResNet prox

def test_resnet_prox_starts_as_the_identity():
    torch.manual_seed(4)
    net = ResNetProx(channels=8, blocks=2)
    v = torch.rand(3, 1, 19, 23)
    with torch.no_grad():
        torch.testing.assert_close(net(v, 0.1), v, rtol=0, atol=0)  # the tail starts at zero: v + 0
    # after one optimizer step the tail is non-zero and the prox moves its input
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(v).sub(v.flip(-1)).pow(2).mean().backward()
    assert float(net.tail.weight.grad.abs().sum()) > 0
    opt.step()
    with torch.no_grad():
        assert float((net(v) - v).abs().max()) > 1e-4


@pytest.mark.parametrize("channels, blocks", [(4, 1), (3, 3)])
def test_resnet_prox_parameter_count_and_any_size(channels, blocks):
    c = channels
    # head 1→c, per block two c→c convolutions, tail c→1, all 3×3 with biases
    assert n_params(ResNetProx(c, blocks)) == (9 * c + c) + blocks * 2 * (9 * c * c + c) + (9 * c + 1)
    net = ResNetProx(c, blocks)
    for shape in [(1, 1, 33, 33), (2, 1, 7, 12)]:
        with torch.no_grad():
            assert net(torch.rand(shape)).shape == shape


def test_resnet_prox_gradcheck_float64():
    torch.manual_seed(5)
    net = ResNetProx(channels=2, blocks=1).double()
    with torch.no_grad():  # a non-zero tail, so the gradient goes through the whole network
        net.tail.weight.normal_()
    v = torch.rand(1, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net(t), (v,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": 0}, "channels must be a positive int, got 0"),
    ({"channels": 2.5}, "channels must be a positive int, got 2.5"),
    ({"blocks": 0}, "blocks must be a positive int, got 0"),
])
def test_resnet_prox_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNetProx(**kwargs)


# ---------------------------------------------------------------- the flow-unrolling paper's baseline proxes
@pytest.mark.parametrize("cls", [networks.ResNetProxBN, networks.UNetProx])
def test_baseline_proxes_start_as_the_identity_then_learn(cls):
    net = cls().train()
    v = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(net(v), v, rtol=0, atol=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = v.clamp(0.2, 0.8)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((net(v) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]  # the zero-initialised head is not a dead end


def test_baseline_prox_parameter_counts_and_shapes():
    # ResNet: lift 1·128·9+128, 2 blocks × 2 × (128·128·9 + BN 256), 1×1 head 2·(128·128+128) + 128+1
    assert sum(p.numel() for p in networks.ResNetProxBN().parameters()) == \
        (9 * 128 + 128) + 2 * 2 * (128 * 128 * 9 + 256) + 2 * (128 * 128 + 128) + 129
    u = networks.UNetProx(features=8, levels=3)
    assert u(torch.rand(1, 1, 24, 16)).shape == (1, 1, 24, 16)
    with pytest.raises(ValueError, match="divisible by 8"):
        u(torch.rand(1, 1, 20, 16))
    with pytest.raises(ValueError, match="features: expected an int >= 1, got 0"):
        networks.ResNetProxBN(features=0)
    with pytest.raises(ValueError, match=r"ResNetProxBN: v must have shape \(B, 1, H, W\)"):
        networks.ResNetProxBN()(torch.rand(1, 3, 8, 8))


def test_baseline_prox_gradcheck_float64():
    for net in (networks.ResNetProxBN(features=4, blocks=1), networks.UNetProx(features=2, levels=1)):
        net = net.double().eval()
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
        v = torch.rand(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: net(t), (v,), eps=1e-6, atol=1e-6)
