"""Flow-PGD (deep unfolding with GLOW priors): its folds, its start, and memory-saving gradients equal to autograd's."""

from __future__ import annotations

import pytest
import torch

from proxlab.operators import GaussianBlur, Inpainting
from proxlab.operators.denoising import Denoising
from proxlab.priors.flow import Glow
from proxlab.registry import build_model
from proxlab.unrolled import FlowPGD

D = torch.float64


def _flow(seed: int = 0, scale: float = 0.1) -> Glow:
    flow = Glow(1, levels=2, steps=2, hidden=8, image_size=8).to(D)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=D))
    return flow.eval()


def _y(A, seed: int = 1) -> torch.Tensor:
    x = torch.rand(2, 1, 8, 8, dtype=D, generator=torch.Generator().manual_seed(seed))
    return A(x) + 0.05 * torch.randn(A(x).shape, dtype=D, generator=torch.Generator().manual_seed(seed + 1))


@pytest.mark.parametrize("operator", [Denoising(), Inpainting.box((8, 8), 3), GaussianBlur(1.0)],
                         ids=["denoise", "inpaint", "deblur"])
def test_memory_saving_gradients_equal_autograd(operator):
    """Every parameter's gradient (flows, μ, λ) and the gradient with respect to y, to 1e-6 in float64."""
    A = operator.to(D)
    y = _y(A)
    grads = {}
    for saving in (False, True):
        torch.manual_seed(0)
        net = FlowPGD(A, _flow(), folds=3, memory_saving=saving).to(D)
        yy = y.clone().requires_grad_(True)
        target = torch.rand(2, 1, 8, 8, dtype=D, generator=torch.Generator().manual_seed(9))
        ((net(yy) - target) ** 2).sum().backward()
        grads[saving] = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        grads[saving]["y"] = yy.grad.clone()
    assert set(grads[True]) == set(grads[False]) and len(grads[True]) > 20
    for name, g in grads[False].items():
        torch.testing.assert_close(grads[True][name], g, rtol=1e-6, atol=1e-9, msg=name)
    assert float(grads[True]["raw_shrinkage"].abs().min()) > 0  # λ of every shrinking fold gets a gradient


def test_start_is_the_flows_mode_and_folds_follow_the_paper():
    A = Denoising()
    flow = _flow(2)
    net = FlowPGD(A, flow, folds=4, step_size=0.5, shrinkage=0.3, memory_saving=False).to(D)
    y = _y(A)
    out, xs = net(y, return_intermediates=True)
    torch.testing.assert_close(xs[0], flow.inverse(torch.zeros(1, 64, dtype=D), 8, 8).expand(2, -1, -1, -1))
    x = xs[0]
    for k in range(3):  # folds 1..K-1: gradient step, shrink in the fold's own flow's latent space, back
        xt = x - 0.5 * (x - y)
        f = net.flows[k]
        x = f.inverse(f.encode(xt) / 1.3, 8, 8)
        torch.testing.assert_close(xs[k + 1], x, rtol=1e-6, atol=1e-8)  # μ, λ were float32 parameters
    torch.testing.assert_close(out, x - 0.5 * (x - y), rtol=1e-6, atol=1e-8)  # fold K: g_K(f_K(x̃)) = x̃
    assert len(net.flows) == 3 and net.step_sizes().shape == (4,) and net.shrinkages().shape == (3,)


@pytest.mark.parametrize("saving", [False, True])
def test_without_shrinkage_the_folds_are_plain_gradient_descent(saving):
    """λ → 0 makes each fold g(f(x̃)) = x̃, so K folds are K gradient steps from g(0): x_{k+1} = x_k − μ(x_k − y)
    when denoising. It holds only if every flow inverts exactly; λ > 0 must move the output away from it."""
    A = Denoising()
    y = _y(A)
    net = FlowPGD(A, _flow(3), folds=3, step_size=0.5, shrinkage=1e-12, memory_saving=saving).to(D)
    x = net.start(y)
    for _ in range(3):
        x = x - 0.5 * (x - y)
    torch.testing.assert_close(net(y), x, rtol=1e-6, atol=1e-8)  # μ is a float32 parameter
    shrunk = FlowPGD(A, _flow(3), folds=3, step_size=0.5, shrinkage=0.5, memory_saving=saving).to(D)
    assert float((shrunk(y) - x).detach().abs().max()) > 1e-3


def test_the_callers_flow_is_copied_and_actnorm_never_initialises_mid_fold():
    """Two nets from one Glow share nothing with it; in training mode an untrained flow's ActNorm stays as built
    (no data-dependent init on the first fold's input), so the memory-saving gradients still equal autograd's."""
    flow = Glow(1, levels=2, steps=2, hidden=8, image_size=8).to(D)  # never run: ActNorm not initialised
    a, b = FlowPGD(Denoising(), flow, folds=3), FlowPGD(Denoising(), flow, folds=3, train_flows=False)
    assert a.flows[0] is not flow and b.flows[0] is not a.flows[0]
    assert all(p.requires_grad for p in flow.parameters()) and all(p.requires_grad for p in a.flows.parameters())
    assert not any(bool(m.initialized) for m in flow.modules() if hasattr(m, "initialized"))
    y = _y(Denoising())
    grads = {}
    for saving in (False, True):
        net = FlowPGD(Denoising(), flow, folds=3, step_size=0.5, memory_saving=saving).to(D).train()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        net(y).square().sum().backward()
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the forward changed nothing
        grads[saving] = {n: p.grad for n, p in net.named_parameters() if p.grad is not None}
    for n, g in grads[False].items():
        torch.testing.assert_close(grads[True][n], g, rtol=1e-6, atol=1e-9, msg=n)


def test_recomputation_refuses_a_flow_that_would_initialise_inside_it():
    from proxlab.priors.flow_recompute import decode_recomputed, encode_recomputed

    flow = Glow(1, levels=2, steps=1, hidden=8, image_size=8).to(D).train()
    with pytest.raises(ValueError, match="encode_recomputed: the flow's ActNorm layers are not initialised"):
        encode_recomputed(flow, torch.rand(2, 1, 8, 8, dtype=D))
    with pytest.raises(ValueError, match="decode_recomputed: the flow's ActNorm layers are not initialised"):
        decode_recomputed(flow, torch.zeros(2, 64, dtype=D), 8, 8)
    flow.eval()
    assert encode_recomputed(flow, torch.rand(2, 1, 8, 8, dtype=D)).shape == (2, 64)


def test_recomputed_pass_reports_a_non_finite_output():
    from proxlab.priors.flow_recompute import encode_recomputed

    flow = _flow()
    x = torch.rand(2, 1, 8, 8, dtype=D)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="encode_recomputed"):
        encode_recomputed(flow, x)


def test_tied_flows_and_the_registered_model(tmp_path):
    tied = FlowPGD(Denoising(), _flow(), folds=4, tied=True)
    untied = FlowPGD(Denoising(), _flow(), folds=4)
    n_flow = sum(p.numel() for p in _flow().parameters())
    assert sum(p.numel() for p in tied.parameters()) == n_flow + 2
    assert sum(p.numel() for p in untied.parameters()) == 3 * n_flow + 4 + 3
    from proxlab.training.checkpoint import save_model

    flow = Glow(1, levels=2, steps=1, hidden=8, image_size=8)
    save_model(tmp_path / "flow.safetensors", flow)
    net = build_model("flow-pgd", operator=Denoising(), flow_options={"levels": 2, "steps": 1, "hidden": 8, "image_size": 8},
                      flow_init=str(tmp_path / "flow.safetensors"), folds=2)
    torch.testing.assert_close(net.flows[0].blocks[0][0].invconv.lower, flow.blocks[0][0].invconv.lower)
    with pytest.raises(TypeError, match="flow: expected a proxlab.priors.flow.Glow"):
        FlowPGD(Denoising(), torch.nn.Identity())
    with pytest.raises(ValueError, match="folds: expected an int >= 1, got 0"):
        FlowPGD(Denoising(), flow, folds=0)


def test_frozen_flows_learn_only_the_step_sizes_and_shrinkages():
    """The paper's PnP-GLOW baseline: the pre-trained flows are kept, μ and λ are trained."""
    net = FlowPGD(Denoising(), _flow(), folds=3, train_flows=False).to(D)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable == ["raw_step_size", "raw_shrinkage"]
    y = _y(Denoising())
    net(y).sum().backward()
    assert net.raw_step_size.grad is not None and all(p.grad is None for p in net.flows.parameters())


def test_registered_flow_pgd_takes_the_zoo_flows_architecture(tmp_path, monkeypatch):
    """``flow_init = "zoo:NAME"`` without ``flow_options`` builds the entry's own GLOW (here additive, 8 hidden)."""
    import json

    import proxlab.weights
    from proxlab.training.checkpoint import save_model

    opts = {"in_channels": 1, "levels": 2, "steps": 1, "hidden": 8, "coupling": "additive", "image_size": 8}
    flow = Glow(**opts)
    save_model(tmp_path / "tiny-glow.safetensors", flow)
    (tmp_path / "tiny-glow.json").write_text(json.dumps({"name": "tiny-glow", "model": {"name": "glow", "options": opts}}))
    (tmp_path / "tiny-dncnn.json").write_text(json.dumps({"name": "tiny-dncnn", "model": {"name": "dncnn", "options": {}}}))
    save_model(tmp_path / "tiny-dncnn.safetensors", build_model("dncnn", depth=3, features=4))
    monkeypatch.setattr(proxlab.weights, "ZOO_DIR", tmp_path)
    net = build_model("flow-pgd", operator=Denoising(), flow_init="zoo:tiny-glow", folds=2)
    assert net.flows[0].coupling == "additive" and net.flows[0].hidden == 8
    torch.testing.assert_close(net.flows[0].state_dict()["blocks.0.0.coupling.net.0.weight"],
                               flow.state_dict()["blocks.0.0.coupling.net.0.weight"])
    with pytest.raises(ValueError, match=r"flow_init: zoo:tiny-dncnn is a 'dncnn' model, not a 'glow'"):
        build_model("flow-pgd", operator=Denoising(), flow_init="zoo:tiny-dncnn")
