"""Training losses: values against hand-computed numbers, gradients, the γ schedule, the Trainer adapters, errors."""

import math

import pytest
import torch

from proxlab import losses
from proxlab.losses import (
    LOSSES,
    ProximalMatchingSchedule,
    denoising_schedule_loss,
    get_loss,
    l1,
    mse,
    proximal_matching_loss,
    simulated,
    supervised,
)


class Ctx:
    """The two fields a loss reads from the Trainer's step context."""

    def __init__(self, step=0, seed=0):
        self.step = step
        self.generator = torch.Generator().manual_seed(seed)


PRED = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])  # (2, 1, 2, 2)
TARGET = torch.tensor([[[[1.0, 0.0], [3.0, 1.0]]], [[[0.0, 0.0], [0.0, -1.0]]]])
# differences: sample 0 (0, 2, 0, 3), sample 1 (0, 0, 0, 2)


# ---------------------------------------------------------------- plain losses

def test_mse_and_l1_by_hand():
    assert float(mse(PRED, TARGET)) == pytest.approx((4 + 9 + 4) / 8)
    assert float(l1(PRED, TARGET)) == pytest.approx((2 + 3 + 2) / 8)
    assert float(mse(TARGET, TARGET)) == 0.0 and float(l1(TARGET, TARGET)) == 0.0


def test_mse_and_l1_gradients_by_hand():
    p = PRED.clone().requires_grad_()
    mse(p, TARGET).backward()
    torch.testing.assert_close(p.grad, 2 * (PRED - TARGET) / 8)
    p = PRED.clone().requires_grad_()
    l1(p, TARGET).backward()
    torch.testing.assert_close(p.grad, torch.sign(PRED - TARGET) / 8)


def test_nmse_loss():
    assert losses.get_loss("nmse") is losses.nmse
    # per-sample ‖p − x‖² / ‖x‖², batch mean: sample 0: 13/11, sample 1: 4/1
    assert float(losses.nmse(PRED, TARGET)) == pytest.approx((13 / 11 + 4 / 1) / 2, rel=1e-6)


def test_loss_table_and_lookup():
    assert get_loss("mse") is mse and get_loss("l1") is l1
    assert {"mse", "l1"} <= set(LOSSES)
    with pytest.raises(ValueError, match=r"loss must be one of .*got 'mae'"):
        get_loss("mae")
    with pytest.raises(ValueError, match="did you mean 'mse'"):
        get_loss("mes")


# ---------------------------------------------------------------- proximal matching

def test_proximal_matching_by_hand():
    # per-sample norms: sqrt(13) and 2; loss = mean(1 − exp(−(d/γ)²))
    g = 2.0
    expect = ((1 - math.exp(-13 / 4)) + (1 - math.exp(-4 / 4))) / 2
    assert float(proximal_matching_loss(PRED, TARGET, g)) == pytest.approx(expect, rel=1e-6)
    assert float(proximal_matching_loss(TARGET, TARGET, g)) == 0.0


def test_proximal_matching_limits_in_gamma():
    # γ → ∞: (1 − e^{−t}) ≈ t, so the loss ≈ mean ‖d‖² / γ²; γ → 0: every non-zero error costs 1
    big = 1e3
    assert float(proximal_matching_loss(PRED.double(), TARGET.double(), big)) * big**2 == pytest.approx(8.5, rel=1e-4)
    assert float(proximal_matching_loss(PRED, TARGET, 1e-3)) == pytest.approx(1.0)


def test_proximal_matching_gradient_by_hand_and_gradcheck():
    p = PRED.double().requires_grad_()
    x = TARGET.double()
    g = 3.0
    proximal_matching_loss(p, x, g).backward()
    d = (PRED - TARGET).double()
    sq = d.flatten(1).pow(2).sum(1)  # ‖d‖² per sample
    # ∂/∂p of mean_b (1 − exp(−‖d_b‖²/γ²)) = (1/B) · exp(−‖d_b‖²/γ²) · 2 d_b / γ²
    expect = (torch.exp(-sq / g**2)[:, None, None, None] * 2 * d / g**2) / 2
    torch.testing.assert_close(p.grad, expect)
    q = torch.rand(3, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    t = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: proximal_matching_loss(v, t, 0.7), (q,))


@pytest.mark.parametrize("gamma", [0, -1.0, float("nan")])
def test_proximal_matching_needs_a_positive_gamma(gamma):
    with pytest.raises(ValueError, match="gamma must be > 0"):
        proximal_matching_loss(PRED, TARGET, gamma)


def test_proximal_matching_gamma_must_be_a_number():
    with pytest.raises(TypeError, match="gamma: expected a number, got 'big'"):
        proximal_matching_loss(PRED, TARGET, "big")


def test_schedule_gamma_by_step():
    s = ProximalMatchingSchedule(l1_steps=10, stage_steps=5, gamma_min=0.5)
    assert [s.gamma(k, 784) for k in (0, 9)] == [None, None]
    # stages of 5 steps with 8, 4, 2, 1 × γ_min, then the last value to the end
    got = [s.gamma(k, 784) for k in (10, 14, 15, 20, 25, 29, 30, 10_000)]
    assert got == pytest.approx([4.0, 4.0, 2.0, 1.0, 0.5, 0.5, 0.5, 0.5])


def test_schedule_default_gamma_min_is_the_papers():
    s = ProximalMatchingSchedule(l1_steps=0, stage_steps=1, factors=(1.0,))
    assert s.gamma(0, 784) == pytest.approx(0.08 * 28)  # 2.24 for MNIST
    assert s.gamma(3, 64 * 64) == pytest.approx(0.08 * 64)
    s = ProximalMatchingSchedule(l1_steps=0, stage_steps=2, factors=(3.0, 1.5))
    assert [s.gamma(k, 100) for k in (0, 1, 2, 99)] == pytest.approx([2.4, 2.4, 1.2, 1.2])


def test_schedule_loss_switches_from_l1_to_proximal_matching():
    s = ProximalMatchingSchedule(l1_steps=2, stage_steps=1, gamma_min=2.0, factors=(1.0,))
    loss, info = s(PRED, TARGET, step=1)
    # the ℓ1 stage is the per-sample ℓ1 norm, batch mean: (5 + 2) / 2
    assert float(loss) == pytest.approx(3.5) and info == {"gamma": 0.0}
    loss, info = s(PRED, TARGET, step=2)
    assert float(loss) == pytest.approx(float(proximal_matching_loss(PRED, TARGET, 2.0))) and info == {"gamma": 2.0}


@pytest.mark.parametrize("kwargs, match", [
    ({"l1_steps": -1, "stage_steps": 1}, "l1_steps must be an int >= 0, got -1"),
    ({"l1_steps": 1.5, "stage_steps": 1}, "l1_steps must be an int >= 0, got 1.5"),
    ({"l1_steps": True, "stage_steps": 1}, "l1_steps must be an int >= 0, got True"),
    ({"l1_steps": 0, "stage_steps": 0}, "stage_steps must be >= 1, got 0"),
    ({"l1_steps": 0, "stage_steps": 1, "gamma_min": 0.0}, "gamma_min must be > 0"),
    ({"l1_steps": 0, "stage_steps": 1, "factors": ()}, "factors must be a non-empty sequence"),
    ({"l1_steps": 0, "stage_steps": 1, "factors": (2.0, -1.0)}, "factors must be a non-empty sequence"),
])
def test_schedule_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProximalMatchingSchedule(**kwargs)


# ---------------------------------------------------------------- Trainer adapters

class Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, y):
        return self.a * y


def test_supervised_applies_the_criterion_to_model_output():
    y, x = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    model = Scale()
    loss = supervised()(model, (y, x), Ctx())
    torch.testing.assert_close(loss, ((0.5 * y - x) ** 2).mean())
    torch.testing.assert_close(supervised(l1)(model, (y, x), Ctx()), (0.5 * y - x).abs().mean())
    loss.backward()  # the gradient reaches the model: d/da mean((a y − x)²) = mean(2 (a y − x) y)
    torch.testing.assert_close(model.a.grad, (2 * (0.5 * y - x) * y).mean())


def test_simulated_draws_noise_from_the_step_generator():
    from proxlab.operators import Denoising, GaussianBlur

    x = torch.rand(2, 1, 8, 8)
    seen = []

    def spy(pred, target):
        seen.append(pred.detach().clone())
        return mse(pred, target)

    A = GaussianBlur(1.0)
    fn = simulated(A, 0.1, spy)
    fn(torch.nn.Identity(), x, Ctx(seed=3))
    fn(torch.nn.Identity(), (x,), Ctx(seed=3))  # a one-element batch tuple is the same batch
    fn(torch.nn.Identity(), x, Ctx(seed=4))
    n = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(seen[0], A(x) + 0.1 * n)
    torch.testing.assert_close(seen[1], seen[0])  # same generator state, same noise
    assert float((seen[2] - seen[0]).abs().max()) > 1e-2  # another seed, other noise
    # σ = 0 is noiseless and leaves the generator alone
    g = Ctx(seed=5)
    state = g.generator.get_state()
    loss = simulated(Denoising(), 0.0)(torch.nn.Identity(), x, g)
    assert float(loss) == 0.0 and torch.equal(g.generator.get_state(), state)


def test_simulated_keeps_the_measurement_out_of_the_graph():
    x = torch.rand(2, 1, 6, 6)

    class Op(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, v):
            return self.w * v

    op, model = Op(), Scale()
    simulated(op, 0.05)(model, x, Ctx()).backward()
    assert op.w.grad is None and model.a.grad is not None


def test_denoising_schedule_loss_follows_the_step():
    x = torch.rand(2, 1, 5, 5)
    s = ProximalMatchingSchedule(l1_steps=1, stage_steps=1, gamma_min=1.0, factors=(1.0,))
    fn = denoising_schedule_loss(0.2, s)
    y = x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    loss0, info0 = fn(torch.nn.Identity(), x, Ctx(step=0, seed=7))
    torch.testing.assert_close(loss0, (y - x).abs().flatten(1).sum(1).mean())
    loss1, info1 = fn(torch.nn.Identity(), [x], Ctx(step=1, seed=7))
    torch.testing.assert_close(loss1, proximal_matching_loss(y, x, 1.0))
    assert (info0["gamma"], info1["gamma"]) == (0.0, 1.0)


def test_adapters_reject_bad_noise_levels():
    from proxlab.operators import Denoising

    with pytest.raises(ValueError, match="sigma must be >= 0, got -0.1"):
        simulated(Denoising(), -0.1)
    with pytest.raises(TypeError, match="sigma: expected a number"):
        simulated(Denoising(), None)
    s = ProximalMatchingSchedule(0, 1)
    with pytest.raises(ValueError, match="sigma must be > 0, got 0"):
        denoising_schedule_loss(0, s)


# ---------------------------------------------------------------- ISTA-Net's loss

def test_istanet_loss_is_mse_plus_the_weighted_symmetry_term():
    from proxlab.losses import istanet_loss
    from proxlab.operators import BlockCompressedSensing
    from proxlab.unrolled import ISTANet, resnet_unrolled

    op = BlockCompressedSensing(0.25, seed=0, block=5)
    torch.manual_seed(0)
    net = ISTANet(op, stages=2, channels=3).train()
    x = torch.rand(2, 1, 5, 5)
    y = op(x)
    with torch.no_grad():
        out = net(y, return_aux=True)
        base = istanet_loss(out.x, x, out.aux, gamma=0.0)
        torch.testing.assert_close(base, mse(net(y), x))
        sym = sum(t.pow(2).mean() for t in out.aux["symmetry"])
        assert float(sym) > 1e-6  # a random transform is far from its own inverse
        torch.testing.assert_close(istanet_loss(out.x, x, out.aux, gamma=0.5), base + 0.5 * sym)
        # a network without a symmetry term: plain MSE whatever γ is
        other = resnet_unrolled(op, stages=2, channels=3)
        res = other(y, return_aux=True)
        assert res.aux == {}
        torch.testing.assert_close(istanet_loss(res.x, x, res.aux, gamma=0.5), mse(other(y), x))
