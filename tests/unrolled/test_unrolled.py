"""Unrolled networks run the table's steps: with fixed scalars they equal K classic solver iterations; FISTA's
momentum is learned; a step registered from outside runs too; extra loss terms come back with the output."""

import contextlib

import pytest
import torch
from torch import nn

from proxlab.operators import CompressedSensing, GaussianBlur
from proxlab.priors.classic import L1
from proxlab.priors.networks import DnCNN
from proxlab.solvers import (STEP_TABLE, Scalar, admm, beck_teboulle_momentum, fista, fista_step, gradient_step, hqs,
                             pgd, register_step)
from proxlab.unrolled import STEPS, AuxProx, Unrolled, UnrolledOutput


@contextlib.contextmanager
def float64():
    """Build networks whose parameters start in float64 (``.double()`` afterwards would round them via float32)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    A = CompressedSensing(20, 40, seed=1).double()
    y = torch.randn(3, 20, generator=g, dtype=torch.float64)
    L = A.norm((40,))
    assert L > 1.5  # ‖A‖² far from 1: an absolute and a relative ρ would differ
    return A, y, L


# the classic solver of each built-in step, and its keyword arguments for relative scalars s (step) and r (penalty)
CLASSIC = {
    "pgd": lambda A, y, L, s, r, it: pgd(A, y, L1(0.05), step_size=s / L, x0=A.init(y), max_iter=it, tol=0),
    "fista": lambda A, y, L, s, r, it: fista(A, y, L1(0.05), step_size=s / L, x0=A.init(y), max_iter=it, tol=0),
    "admm": lambda A, y, L, s, r, it: admm(A, y, L1(0.05), rho=r * L, x0=A.init(y), max_iter=it, tol=0),
    "hqs": lambda A, y, L, s, r, it: hqs(A, y, L1(0.05), mu=r * L, x0=A.init(y), max_iter=it, tol=0),
}


def test_every_builtin_step_has_a_classic_reference():
    assert set(CLASSIC) == set(STEPS) and set(STEPS) <= set(STEP_TABLE)


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("step", list(CLASSIC))
def test_equals_k_iterations_of_the_classic_solver(problem, step, tied):
    # step sizes relative to 1/‖A‖², penalties relative to ‖A‖²; FISTA's learned momentum starts at Beck–Teboulle's
    A, y, L = problem
    with float64():
        net = Unrolled(A, L1(0.05), step=step, stages=7, tied=tied, step_size=0.9, rho=0.7)
    ref = CLASSIC[step](A, y, L, 0.9, 0.7, 7).x
    torch.testing.assert_close(net(y), ref, rtol=0, atol=1e-12)
    assert 0 < float((ref == 0).double().mean()) < 1  # the prox is really exercised


def test_plain_call_returns_a_tensor_and_return_aux_an_output(problem):
    A, y, _ = problem
    net = Unrolled(A, L1(0.05), stages=2).double()
    assert isinstance(net(y), torch.Tensor)
    out = net(y, return_aux=True)
    assert isinstance(out, UnrolledOutput) and out.aux == {}
    torch.testing.assert_close(out.x, net(y))


# ---------------------------------------------------------------- FISTA's learned momentum

def test_fista_momentum_is_one_learned_value_per_stage_started_at_beck_teboulle():
    net = Unrolled(GaussianBlur(1.0), DnCNN(depth=3, features=2), step="fista", stages=4, tied=True)
    assert net.raw_step_size.shape == (1,) and net.raw_momentum.shape == (4,)
    expect = torch.tensor([beck_teboulle_momentum(k) for k in range(4)])
    torch.testing.assert_close(net.scalar("momentum").detach(), expect)
    assert float(expect[0]) == 0.0 and float(expect[3]) > 0.5


def test_a_set_momentum_is_what_fista_step_gets(problem):
    A, y, L = problem
    with float64():
        net = Unrolled(A, L1(0.05), step="fista", stages=3, step_size=0.8, scalars={"momentum": [0.1, 0.5, 0.9]})
    state = STEP_TABLE["fista"].init(A.init(y), A, y, None)
    for beta in (0.1, 0.5, 0.9):
        state = fista_step(state, A, y, L1(0.05), 0.8 / L, momentum=beta)
    torch.testing.assert_close(net(y), state.x, rtol=0, atol=1e-12)
    default = Unrolled(A, L1(0.05), step="fista", stages=3, step_size=0.8).double()
    assert float((default(y) - net(y)).detach().abs().max()) > 1e-3  # not the classic sequence


class SmoothProx(nn.Module):
    """A differentiable stand-in for a prox: ``v / (1 + tau)`` (the prox of ½‖x‖²)."""

    def forward(self, v, tau):
        return v / (1 + tau)


def test_learned_momentum_reaches_the_gradients_gradcheck():
    g = torch.Generator().manual_seed(3)
    A = CompressedSensing(4, 6, seed=2).double()
    y = torch.randn(2, 4, generator=g, dtype=torch.float64)
    with float64():
        net = Unrolled(A, SmoothProx(), step="fista", stages=3, tied=True)
    raw = net.raw_momentum.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda m: torch.func.functional_call(net, {"raw_momentum": m}, (y,)), (raw,))
    # the momentum of every stage but the last (whose extrapolation the read-out never uses) moves the output
    (grad,) = torch.autograd.grad(net(y).pow(2).sum(), net.raw_momentum)
    assert bool((grad[:-1].abs() > 1e-8).all())


def test_weights_saved_before_the_momentum_was_learned_still_load(problem):
    A, y, _ = problem
    net = Unrolled(A, L1(0.05), step="fista", stages=3, step_size=0.8).double()
    old = {k: v for k, v in net.state_dict().items() if k != "raw_momentum"}
    fresh = Unrolled(A, L1(0.05), step="fista", stages=3).double()
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh(y), net(y))


def test_admm_weights_from_the_absolute_penalty_are_refused_by_name(problem):
    A, _, _ = problem
    net = Unrolled(A, L1(0.05), step="admm", stages=2)
    old = {"raw_step_size": torch.zeros(2), **{k: v for k, v in net.state_dict().items() if k != "raw_rho"}}
    with pytest.raises(ValueError, match="relative to ‖A‖².*raw_rho"):
        net.load_state_dict(old)


# ---------------------------------------------------------------- parameters

def test_tied_and_untied_parameters_and_gradients():
    A = GaussianBlur(1.0)
    tied = Unrolled(A, DnCNN(depth=3, features=4), stages=4, tied=True)
    untied = Unrolled(A, DnCNN(depth=3, features=4), stages=4, tied=False)
    n_prox = sum(p.numel() for p in DnCNN(depth=3, features=4).parameters())
    assert sum(p.numel() for p in tied.parameters()) == n_prox + 1
    assert sum(p.numel() for p in untied.parameters()) == 4 * n_prox + 4
    assert "raw_step_size" in tied.state_dict()  # the key of the shipped weights
    y = torch.rand(2, 1, 12, 12)
    untied(y).pow(2).mean().backward()
    assert untied.raw_step_size.grad is not None and untied.raw_step_size.grad.abs().sum() > 0
    assert (untied.step_sizes() > 0).all()
    assert all(p.grad is not None for p in untied.proxes[3].parameters())


def test_penalties_have_their_own_parameter_names():
    A = GaussianBlur(1.0)
    admm_net = Unrolled(A, DnCNN(depth=3, features=2), step="admm", stages=3, rho=0.3)
    hqs_net = Unrolled(A, DnCNN(depth=3, features=2), step="hqs", stages=3, rho=0.3)  # rho= sets HQS's mu
    torch.testing.assert_close(admm_net.scalar("rho").detach(), torch.full((3,), 0.3))
    torch.testing.assert_close(hqs_net.scalar("mu").detach(), torch.full((3,), 0.3))
    torch.testing.assert_close(hqs_net.scalar("rho").detach(), torch.full((3,), 0.3))
    with pytest.raises(ValueError, match="step 'admm' has no scalar 'step_size'; its scalars: rho"):
        admm_net.step_sizes()


@pytest.mark.parametrize("step", ["pgd", "fista", "admm", "hqs"])
def test_every_step_runs_on_images(step):
    net = Unrolled(GaussianBlur(1.0), lambda: DnCNN(depth=3, features=4), step=step, stages=2)
    assert net(torch.rand(2, 1, 16, 16)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"step": "newton"}, ValueError, "step must be one of"),
        ({"step": "fitsa"}, ValueError, "did you mean 'fista'"),
        ({"stages": 0}, ValueError, "stages must be an int >= 1"),
        ({"step_size": -1.0}, ValueError, "step_size must be > 0"),
        ({"rho": 0.0}, ValueError, "rho must be > 0"),
        ({"operator": "blur"}, TypeError, "operator must be a proxlab LinearOperator"),
        ({"prox": 3}, TypeError, "prox must be an nn.Module or a zero-argument factory"),
        ({"tied": 1}, TypeError, "tied must be a bool"),
        ({"scalars": {"rho": 1.0}}, ValueError, "step 'pgd' has no scalar 'rho'; its scalars: step_size"),
        ({"step": "fista", "scalars": {"momentum": 1.5}}, ValueError, r"momentum must be in \(-1, 1\), got 1.5"),
        ({"step": "fista", "stages": 3, "scalars": {"momentum": [0.1, 0.2]}}, ValueError,
         r"scalars\['momentum'\] must have 3 values"),
        ({"scalars": {"step_size": "big"}}, TypeError, "step_size: expected a number, got 'big'"),
        ({"step_options": {"step_size": 0.1}}, ValueError, "step_options must not set step_size"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = {"operator": GaussianBlur(1.0), "prox": DnCNN(depth=3, features=4)}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        Unrolled(**args)


# ---------------------------------------------------------------- a step registered from outside the package

def relaxed_pgd_step(x, A, y, prox, step_size, relax, ATy=None):
    """Toy step: a relaxed proximal-gradient step, x + λ(prox(x - γ∇f(x)) - x)."""
    return x + relax * (prox(gradient_step(x, A, y, step_size, ATy), step_size) - x)


@pytest.fixture
def relaxed_pgd():
    entry = register_step("relaxed-pgd", init=lambda x0, A, y, prox: x0, step=relaxed_pgd_step, readout=lambda s: s,
                          scalars={"step_size": Scalar(1.0, "softplus", "inv_norm"), "relax": Scalar(0.5, "sigmoid")})
    yield entry
    del STEP_TABLE["relaxed-pgd"]


def test_a_step_registered_outside_the_package_is_unrolled(problem, relaxed_pgd):
    A, y, L = problem
    with float64():
        net = Unrolled(A, L1(0.05), step="relaxed-pgd", stages=4, tied=True, step_size=0.9, scalars={"relax": 0.7})
    assert dict(net.named_parameters()).keys() == {"raw_step_size", "raw_relax"}
    x = A.init(y)
    for _ in range(4):
        x = relaxed_pgd_step(x, A, y, L1(0.05), 0.9 / L, 0.7)
    torch.testing.assert_close(net(y), x, rtol=0, atol=1e-12)
    net(y).pow(2).sum().backward()
    assert float(net.raw_relax.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match=r"relax must be in \(0, 1\)"):
        Unrolled(A, L1(0.05), step="relaxed-pgd", scalars={"relax": 1.0})


class EnergyProx(AuxProx):
    """A toy prox with an extra loss term: shrinks by 1/(1 + tau) and reports ‖v‖² per sample."""

    def forward_aux(self, v, tau=None):
        return v / (1 + tau), {"energy": v.pow(2).flatten(1).sum(1)}


@pytest.mark.parametrize("tied", [True, False])
def test_aux_terms_of_every_stage_come_back_with_the_output(problem, tied):
    A, y, L = problem
    net = Unrolled(A, EnergyProx(), step="pgd", stages=3, tied=tied).double()
    out = net(y, return_aux=True)
    assert set(out.aux) == {"energy"} and len(out.aux["energy"]) == 3
    x, gamma = A.init(y), 1.0 / L
    for k in range(3):
        v = gradient_step(x, A, y, gamma)
        torch.testing.assert_close(out.aux["energy"][k], v.pow(2).sum(1))
        x = v / (1 + gamma)
    torch.testing.assert_close(out.x, x)
    torch.testing.assert_close(net(y), out.x)  # the plain call: the prox's first output


def test_a_network_pickles_with_its_step(problem):
    import pickle

    A, y, _ = problem
    net = Unrolled(A, L1(0.05), step="fista", stages=3, step_size=0.8).double()
    clone = pickle.loads(pickle.dumps(net))
    assert clone.entry.step is fista_step
    torch.testing.assert_close(clone(y), net(y))


def test_a_factory_that_builds_no_prox_is_refused_when_the_network_is_built():
    with pytest.raises(TypeError, match=r"Unrolled: every stage: the prior must be callable as prior\(v, tau\)"):
        Unrolled(GaussianBlur(1.0), lambda: 3)


def test_step_options_reach_every_step():
    # an operator without a closed-form solve_normal: ADMM's x-update runs CG, here cut to 2 iterations
    A = CompressedSensing(8, 12, seed=4).double() @ CompressedSensing(12, 12, seed=5).double()
    y = torch.randn(2, 8, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    L = A.norm((12,))
    with float64():
        short = Unrolled(A, L1(0.05), step="admm", stages=3, rho=0.5, step_options={"max_iter": 2, "tol": 0.0})
        full = Unrolled(A, L1(0.05), step="admm", stages=3, rho=0.5, step_options={"max_iter": 200, "tol": 1e-12})
    ref = admm(A, y, L1(0.05), rho=0.5 * L, x0=A.init(y), max_iter=3, tol=0, inner_max_iter=2, inner_tol=0.0).x
    with torch.no_grad():
        torch.testing.assert_close(short(y), ref, rtol=0, atol=1e-12)
        assert float((short(y) - full(y)).abs().max()) > 1e-6
