"""ISTA-Net / ISTA-Net+ over any operator (here sparse-view CT), as the unrolled net ``unrolled(prox="istanet-prox")``,
and the ``istanet`` loss on simulated measurements when the source has no block sampler."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import proxlab.experiments.builtin  # noqa: F401  (registers the parts)
from proxlab.experiments.parts import LOSSES
from proxlab.losses import istanet_loss
from proxlab.operators import ParallelBeamCT
from proxlab.registry import build_model


def _ct():
    return ParallelBeamCT(16, 8)


def _x(n=2, seed=0):
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("plus", [True, False], ids=["ista-net-plus", "ista-net"])
def test_istanet_over_ct_returns_one_symmetry_term_per_stage(plus):
    A = _ct()
    net = build_model("unrolled", operator=A, prox="istanet-prox", prox_options={"plus": plus}, stages=3, tied=False,
                      step_size=0.5)
    out = net(A(_x()), return_aux=True)
    assert out.x.shape == (2, 1, 16, 16) and len(out.aux["symmetry"]) == 3
    assert len({id(p) for p in net.proxes}) == 3  # untied, as in the paper


def test_untrained_zero_residual_istanet_plus_is_gradient_descent_from_fbp():
    A = _ct()
    net = build_model("unrolled", operator=A, prox="istanet-prox", prox_options={"plus": True, "zero_residual": True},
                      stages=3, tied=False, step_size=0.5)
    y = A(_x())
    x = A.fbp(y)
    gamma = 0.5 / A.norm((1, 16, 16))
    for _ in range(3):
        x = x - gamma * A.adjoint(A(x) - y)
    with torch.no_grad():
        torch.testing.assert_close(net(y), x, rtol=1e-4, atol=1e-5)


def test_istanet_loss_without_a_sampler_uses_the_tasks_operator():
    A = _ct()
    part = LOSSES.get("istanet")
    ctx = SimpleNamespace(splits=SimpleNamespace(sampler=None), operator=A, noise=0.0)
    loss_fn = part.build(part.validate_options({"gamma": 0.01}), ctx)
    net = build_model("unrolled", operator=A, prox="istanet-prox", stages=2, tied=False)
    x = _x()
    got = loss_fn(net, x, SimpleNamespace(generator=torch.Generator()))
    out = net(A(x), return_aux=True)
    torch.testing.assert_close(got, istanet_loss(out.x, x, out.aux, gamma=0.01))
    assert float(got.detach()) > float(((out.x - x) ** 2).mean().detach())  # the symmetry term adds
    with pytest.raises(ValueError, match="channels_last / compile apply to block CS"):
        part.build(part.validate_options({"channels_last": True}), ctx)
