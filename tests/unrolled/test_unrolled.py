"""Unrolled networks run the classic solvers' steps: with fixed parameters they equal K solver iterations."""

import pytest
import torch

from proxlab.operators import CompressedSensing, GaussianBlur
from proxlab.priors.classic import L1
from proxlab.priors.networks import DnCNN
from proxlab.solvers import admm, fista, pgd
from proxlab.unrolled import Unrolled


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    A = CompressedSensing(20, 40, seed=1).double()
    y = torch.randn(3, 20, generator=g, dtype=torch.float64)
    return A, y


@pytest.mark.parametrize("step, solver", [("pgd", pgd), ("fista", fista)])
def test_equals_k_iterations_of_the_classic_solver(problem, step, solver):
    A, y = problem
    net = Unrolled(A, L1(0.05), step=step, stages=7, tied=True, step_size=0.9).double()
    ref = solver(A, y, L1(0.05), step_size=0.9 / A.norm((40,)), x0=A.init(y), max_iter=7, tol=0).x
    torch.testing.assert_close(net(y), ref)


def test_admm_equals_classic_admm(problem):
    A, y = problem
    net = Unrolled(A, L1(0.05), step="admm", stages=5, rho=0.7).double()
    ref = admm(A, y, L1(0.05), rho=0.7, x0=A.init(y), max_iter=5, tol=0).x
    torch.testing.assert_close(net(y), ref)


def test_tied_and_untied_parameters_and_gradients():
    A = GaussianBlur(1.0)
    tied = Unrolled(A, DnCNN(depth=3, features=4), stages=4, tied=True)
    untied = Unrolled(A, DnCNN(depth=3, features=4), stages=4, tied=False)
    n_prox = sum(p.numel() for p in DnCNN(depth=3, features=4).parameters())
    assert sum(p.numel() for p in tied.parameters()) == n_prox + 1
    assert sum(p.numel() for p in untied.parameters()) == 4 * n_prox + 4
    y = torch.rand(2, 1, 12, 12)
    untied(y).pow(2).mean().backward()
    assert untied.raw_step_size.grad is not None and untied.raw_step_size.grad.abs().sum() > 0
    assert (untied.step_sizes() > 0).all()
    assert all(p.grad is not None for p in untied.proxes[3].parameters())


@pytest.mark.parametrize("step", ["pgd", "fista", "admm", "hqs"])
def test_every_step_runs_on_images(step):
    net = Unrolled(GaussianBlur(1.0), lambda: DnCNN(depth=3, features=4), step=step, stages=2)
    assert net(torch.rand(2, 1, 16, 16)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"step": "newton"}, ValueError, "step must be one of"),
        ({"stages": 0}, ValueError, "stages must be an int >= 1"),
        ({"step_size": -1.0}, ValueError, "step_size must be > 0"),
        ({"operator": "blur"}, TypeError, "operator must be a proxlab LinearOperator"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = {"operator": GaussianBlur(1.0), "prox": DnCNN(depth=3, features=4)}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        Unrolled(**args)
