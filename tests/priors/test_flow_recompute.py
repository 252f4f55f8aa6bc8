"""The memory-saving backward pass through a GLOW (`encode_recomputed`, `decode_recomputed`): the same values and
the same gradients as plain autograd, in float64, for every coupling form (the fused coupling rebuild included)."""

from __future__ import annotations

import pytest
import torch

from proxlab.priors.flow import Glow
from proxlab.priors.flow_recompute import decode_recomputed, encode_recomputed

D = torch.float64


def _flow(coupling: str, min_scale: float = 0.0) -> Glow:
    flow = Glow(1, levels=2, steps=2, hidden=8, image_size=8, coupling=coupling, min_scale=min_scale).to(D)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # move off the zero-initialised identity so every layer acts
        for p in flow.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=D))
    return flow.eval()


def _grads(flow: Glow, inp: torch.Tensor, fn, weight: torch.Tensor):
    flow.zero_grad()
    inp = inp.clone().requires_grad_(True)
    out = fn(inp)
    (out * weight).sum().backward()
    return out.detach(), inp.grad.clone(), {n: p.grad.clone() for n, p in flow.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("coupling,min_scale", [("affine", 0.0), ("affine", 0.3), ("additive", 0.0)],
                         ids=["affine", "affine-min-scale", "additive"])
@pytest.mark.parametrize("direction", ["encode", "decode"])
def test_recomputed_backward_equals_autograd(coupling, min_scale, direction):
    flow = _flow(coupling, min_scale)
    g = torch.Generator().manual_seed(5)
    if direction == "encode":
        inp = torch.rand(3, 1, 8, 8, generator=g, dtype=D)
        plain, saving = flow.encode, lambda x: encode_recomputed(flow, x)
    else:
        inp = torch.randn(3, 64, generator=g, dtype=D)
        plain, saving = (lambda z: flow.inverse(z, 8, 8)), (lambda z: decode_recomputed(flow, z, 8, 8))
    weight = torch.randn(plain(inp).shape, generator=g, dtype=D)
    out0, gin0, gp0 = _grads(flow, inp, plain, weight)
    out1, gin1, gp1 = _grads(flow, inp, saving, weight)
    torch.testing.assert_close(out1, out0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gin1, gin0, rtol=1e-8, atol=1e-10)
    assert set(gp1) == set(gp0) and len(gp0) == sum(1 for p in flow.parameters() if p.requires_grad)
    for name, grad in gp0.items():
        torch.testing.assert_close(gp1[name], grad, rtol=1e-8, atol=1e-10, msg=name)
    assert sum(float(g.abs().sum()) for n, g in gp1.items() if "coupling" in n) > 0  # the fused path carries grads


def test_recomputed_encode_saves_no_activations_per_layer():
    """Only the output state is saved for the backward pass, however deep the flow."""
    saved = {}
    for steps in (1, 4):
        flow = Glow(1, levels=2, steps=steps, hidden=8, image_size=8).eval()
        x = torch.rand(2, 1, 8, 8, requires_grad=True)
        n = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: n.append(t.numel()) or t, lambda t: t):
            encode_recomputed(flow, x)
        saved[steps] = sum(n)
    assert saved[1] == saved[4] > 0
