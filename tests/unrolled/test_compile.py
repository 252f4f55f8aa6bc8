"""Every unrolled network runs under ``torch.compile`` (smoke test with the cheap ``eager`` backend): the same output,
and for ISTA-Net the same extra loss terms, as the plain module."""

import pytest
import torch

from proxlab.operators import BlockCompressedSensing, GaussianBlur
from proxlab.priors.networks import DnCNN
from proxlab.unrolled import LISTA, ISTANet, Unrolled, resnet_unrolled


def _compiled(net):
    torch._dynamo.reset()
    return torch.compile(net, backend="eager")


# the default run compiles PGD and ISTA-Net (its aux terms); the other steps and networks under -m slow
@pytest.mark.parametrize("step", ["pgd"] + [pytest.param(s, marks=pytest.mark.slow) for s in ("fista", "admm", "hqs")])
def test_unrolled_steps_compile(step):
    torch.manual_seed(0)
    net = Unrolled(GaussianBlur(1.0), DnCNN(depth=3, features=4), step=step, stages=2, tied=False).eval()
    y = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        ref = net(y)  # also fills the ‖A‖² cache outside the compiled region
        torch.testing.assert_close(_compiled(net)(y), ref)


def test_istanet_compiles_with_its_symmetry_terms():
    torch.manual_seed(1)
    op = BlockCompressedSensing(0.25, seed=0, block=5)
    net = ISTANet(op, stages=2, channels=3).train()
    y = op(torch.rand(2, 1, 5, 5))
    ref = net(y, return_aux=True)
    out = _compiled(net)(y, return_aux=True)
    torch.testing.assert_close(out.x, ref.x)
    assert len(out.aux["symmetry"]) == 2
    for a, b in zip(out.aux["symmetry"], ref.aux["symmetry"]):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_block_resnet_and_lista_compile():
    torch.manual_seed(2)
    op = BlockCompressedSensing(0.25, seed=0, block=5)
    net = resnet_unrolled(op, stages=2, channels=3).eval()
    y = op(torch.rand(1, 1, 10, 10))
    with torch.no_grad():
        torch.testing.assert_close(_compiled(net)(y), net(y))
    lista = LISTA(torch.randn(6, 9), 0.3, 3, tied=False)
    x = torch.randn(4, 6)
    with torch.no_grad():
        torch.testing.assert_close(_compiled(lista)(x), lista(x))
