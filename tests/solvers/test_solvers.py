"""Classic solvers: convergence to known minimisers, the solve loop's stopping rules, PnP plumbing."""

import pytest
import torch

from proxlab.operators import CompressedSensing, Denoising, GaussianBlur, Inpainting
from proxlab.priors.classic import L1, TV, soft_threshold
from proxlab.solvers import admm, cg, fista, hqs, pgd, solve


@pytest.fixture(scope="module")
def lasso():
    """A LASSO problem and its minimiser from a run of a *different* algorithm (ADMM, 1,000 iterations in float64),
    certified by the KKT conditions below (measured: met to 1e-14 from 300 iterations on; 20,000 change nothing)."""
    g = torch.Generator().manual_seed(0)
    A = CompressedSensing(40, 100, seed=1).double()
    x_true = torch.zeros(1, 100, dtype=torch.float64)
    x_true[0, torch.randperm(100, generator=g)[:8]] = torch.randn(8, generator=g, dtype=torch.float64)
    y = A(x_true) + 0.01 * torch.randn(1, 40, generator=g, dtype=torch.float64)
    lam = 0.05
    prior = L1(lam)
    ref = admm(A, y, prior, rho=1.0, max_iter=1000, tol=0, history=False).x
    # KKT: A^T(y - Ax) = lam * sign(x) on the support, |.| <= lam off it
    grad = A.adjoint(y - A(ref))
    support = ref.abs() > 1e-9
    assert torch.allclose(grad[support], lam * ref[support].sign(), atol=1e-9)
    assert float(grad[~support].abs().max()) <= lam + 1e-9
    return A, y, prior, ref


def _objective(A, y, prior, x):
    return float(0.5 * (A(x) - y).pow(2).sum() + prior.regularizer(x).sum())


def test_fista_reaches_lasso_solution(lasso):
    A, y, prior, ref = lasso
    res = fista(A, y, prior, max_iter=3000, tol=1e-12)
    torch.testing.assert_close(res.x, ref, atol=1e-6, rtol=0)
    assert _objective(A, y, prior, res.x) - _objective(A, y, prior, ref) < 1e-10


def test_fista_beats_ista_at_equal_iterations(lasso):
    A, y, prior, ref = lasso
    f_ref = _objective(A, y, prior, ref)
    gap_fista = _objective(A, y, prior, fista(A, y, prior, max_iter=100, tol=0).x) - f_ref
    gap_ista = _objective(A, y, prior, pgd(A, y, prior, max_iter=100, tol=0).x) - f_ref
    assert 0 <= gap_fista < gap_ista


def test_pgd_objective_is_monotone(lasso):
    A, y, prior, _ = lasso
    obj = pgd(A, y, prior, max_iter=200, tol=0).series("objective")
    assert len(obj) == 200
    assert all(b <= a + 1e-12 for a, b in zip(obj, obj[1:]))


def test_hqs_and_admm_agree_on_tv_denoising():
    torch.manual_seed(0)
    x = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    x[..., 4:12, 4:12] = 1
    y = x + 0.1 * torch.randn_like(x)
    prior = TV(0.1, max_iter=500, tol=1e-9)
    # for A = I the problem is exactly the TV prox: both splittings must converge to it
    direct = prior(y, 1.0)
    res_admm = admm(Denoising(), y, prior, rho=1.0, max_iter=400, tol=1e-10)
    torch.testing.assert_close(res_admm.x, direct, atol=1e-4, rtol=0)
    # HQS with fixed mu solves a relaxed problem; it still must clearly improve on the noisy input (10 iterations,
    # the TV prox at its default precision: error 0.6 against 1.6 for y, measured)
    res_hqs = hqs(Denoising(), y, TV(0.1), mu=5.0, max_iter=10)
    assert (res_hqs.x - x).norm() < 0.5 * (y - x).norm()


def test_deblurring_with_tv_improves_psnr():
    torch.manual_seed(0)
    x = torch.zeros(1, 1, 32, 32)
    x[..., 8:24, 10:20] = 1
    A = GaussianBlur(1.5)
    y = A(x) + 0.01 * torch.randn_like(x)
    res = fista(A, y, TV(0.005), max_iter=100)
    assert (res.x - x).norm() < 0.6 * (y - x).norm()


def test_cg_solves_regularised_least_squares():
    A = Inpainting.random(8, 0.5, seed=1) @ GaussianBlur(0.7)
    y = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    x = cg(A, y, rho=0.1, tol=1e-12, max_iter=500)
    residual = A.gram(x) + 0.1 * x - A.adjoint(y)
    assert float(residual.norm()) < 1e-9


def test_solve_stops_on_tolerance_nan_and_callback():
    # x -> x/2 converges geometrically: rel change is 0.5 each step, so tol=0.6 stops at once
    res = solve(lambda x: x / 2, torch.ones(1, 3), get_x=lambda s: s, max_iter=50, tol=0.6)
    assert res.stop_reason == "tolerance" and res.iterations == 1 and res.converged
    res = solve(lambda x: x * float("nan"), torch.ones(1, 3), get_x=lambda s: s, max_iter=5)
    assert res.stop_reason == "nan" and res.iterations == 0 and torch.equal(res.x, torch.ones(1, 3))
    res = solve(lambda x: x + 1, torch.ones(1, 3), get_x=lambda s: s, max_iter=50, tol=0, callback=lambda k, s: k == 3)
    assert res.stop_reason == "callback" and res.iterations == 3 and float(res.x[0, 0]) == 4
    res = solve(lambda x: x + 1, torch.ones(1, 3), get_x=lambda s: s, max_iter=4, tol=0)
    assert res.stop_reason == "max_iter" and len(res.history) == 4


def test_pnp_accepts_any_denoiser_module():
    calls = []

    class Shrink(torch.nn.Module):
        def forward(self, v, sigma=None):
            calls.append(sigma)
            return 0.9 * v

    A = GaussianBlur(1.0)
    y = torch.rand(1, 1, 12, 12)
    res = admm(A, y, Shrink(), rho=0.5, max_iter=3, tol=0)
    assert res.iterations == 3 and len(calls) == 3 and calls[0] == pytest.approx(2.0)
    assert "objective" not in res.history[0] and "residual" in res.history[0]


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: pgd(lambda x: x, torch.zeros(1, 3), L1(0.1)), TypeError, "A must be a proxlab LinearOperator"),
        (lambda: pgd(Denoising(), [0.0], L1(0.1)), TypeError, "y must be a torch.Tensor"),
        (lambda: fista(Denoising(), torch.zeros(1, 1, 2, 2), "tv"), TypeError, "prior must be callable"),
        (lambda: admm(Denoising(), torch.zeros(1, 1, 2, 2), L1(0.1), rho=0), ValueError, "rho must be > 0"),
        (lambda: hqs(Denoising(), torch.zeros(1, 1, 2, 2), L1(0.1), mu=-1), ValueError, "mu must be > 0"),
        (lambda: pgd(Denoising(), torch.zeros(1, 1, 2, 2), L1(0.1), max_iter=0), ValueError, "max_iter must be a positive int"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_soft_threshold_is_the_l1_prox_used_by_solvers():
    v = torch.tensor([[-2.0, -0.05, 0.0, 0.3]])
    torch.testing.assert_close(L1(0.1)(v, 1.0), soft_threshold(v, 0.1))
