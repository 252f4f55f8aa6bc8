"""The ``prox_denoising`` loss: denoiser pre-training of an unrolled network's proxes (issue: baselines trained
"from a denoiser pre-training"), then an end-to-end stage that starts from it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import proxlab.experiments.builtin  # noqa: F401  (registers the parts)
from proxlab.experiments.parts import LOSSES
from proxlab.operators.denoising import Denoising
from proxlab.registry import build_model


def _loss(sigma=0.2):
    part = LOSSES.get("prox_denoising")
    return part.build(part.validate_options({"sigma": sigma}), SimpleNamespace(splits=None)), part


def _net():
    torch.manual_seed(0)
    return build_model("unrolled", operator=Denoising(), prox="dncnn", prox_options={"depth": 3, "features": 8},
                       stages=3, tied=False)


def test_loss_is_the_mean_denoising_error_of_the_proxes():
    loss_fn, part = _loss(0.2)
    assert part.meta["evaluate"] == "final"
    net = _net()
    x = torch.rand(4, 1, 12, 12)
    got = loss_fn(net, x, SimpleNamespace(generator=torch.Generator().manual_seed(1)))
    v = x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    want = sum(((p(v, 0.2) - x) ** 2).mean() for p in net.proxes) / 3
    torch.testing.assert_close(got, want)


def test_training_with_it_makes_each_prox_a_denoiser():
    loss_fn, _ = _loss(0.2)
    net = _net()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(8, 1, 12, 12, generator=g).round()  # binary images: a denoiser can learn them fast
    v = x + 0.2 * torch.randn(x.shape, generator=g)

    def errors():
        with torch.no_grad():
            return [float(((p(v, 0.2) - x) ** 2).mean()) for p in net.proxes]

    before = errors()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    step = SimpleNamespace(generator=torch.Generator().manual_seed(3))
    for _ in range(60):
        opt.zero_grad()
        loss_fn(net, x, step).backward()
        opt.step()
    after = errors()
    assert all(a < 0.5 * b for a, b in zip(after, before)), (before, after)


def test_bad_options_and_models_are_refused():
    part = LOSSES.get("prox_denoising")
    with pytest.raises(ValueError, match="sigma"):
        part.validate_options({"sigma": 0.0})
    with pytest.raises(ValueError, match="sigma"):
        part.validate_options({})
    loss_fn, _ = _loss()
    with pytest.raises(ValueError, match=r"needs an unrolled model with \.proxes, got DnCNN"):
        loss_fn(build_model("dncnn", depth=3, features=4), torch.rand(2, 1, 8, 8),
                SimpleNamespace(generator=torch.Generator()))
