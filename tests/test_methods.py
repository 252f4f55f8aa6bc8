"""Classic reconstruction methods by name: every method runs on every task, each beats the operator's own first
estimate on an easy problem, the weights can be overridden, Tikhonov solves its normal equations, PnP takes any
prox, and bad names or missing priors are refused."""

import pytest
import torch

from proxlab.data import shepp_logan
from proxlab.metrics import psnr
from proxlab.priors.classic import total_variation

from proxlab import methods as M
from proxlab.tasks import TASKS, make_task

CLASSIC = [n for n, m in M.CLASSIC_METHODS.items() if m.prior != "learned"]
LEARNED = [n for n, m in M.CLASSIC_METHODS.items() if m.prior == "learned"]


def test_method_table_names():
    assert set(CLASSIC) == {"init", "tikhonov", "fista-tv", "admm-tv", "hqs-tv", "fista-wavelet", "admm-wavelet"}
    assert set(LEARNED) == {"pnp-admm", "pnp-pgd"}
    assert set(M.DEFAULT_WEIGHTS) == set(TASKS)  # every task has default weights for every prior
    for w in M.DEFAULT_WEIGHTS.values():
        assert {"tv", "wavelet", "tik", "rho_tv", "rho_wavelet"} <= set(w) and all(v > 0 for v in w.values())


@pytest.fixture(scope="module")
def measured():
    """Every task's operator and measurement of a 34×34 phantom (even sides for the wavelets, square for CT)."""
    x = shepp_logan(34)
    out = {}
    for name in TASKS:
        task = make_task(name)
        A, y = task.measure(x, seed=0)
        out[name] = (task, A, y)
    return x, out


@pytest.mark.parametrize("task", TASKS)
def test_every_method_runs_on_every_task(task, measured):
    x, by_task = measured
    t, A, y = by_task[task]
    for method in CLASSIC:
        out = M.reconstruct(method, A, y, t, max_iter=2)
        assert out.shape == x.shape and bool(torch.isfinite(out).all()), (task, method)


def test_init_is_the_operators_first_estimate(measured):
    _, by_task = measured
    for name, (t, A, y) in by_task.items():
        torch.testing.assert_close(M.reconstruct("init", A, y, t), A.init(y), msg=name)


def test_every_method_beats_the_init_on_a_mild_blur():
    # Gaussian blur σ_b = 1.5 and noise 0.01 on a 32×32 phantom, 15 iterations. Measured once (1 thread): init
    # 19.8 dB; Tikhonov 23.5, FISTA-TV 23.5, ADMM-TV 23.8, HQS-TV 23.4, FISTA/ADMM-wavelet 22.6 dB. Margin asked: 2 dB.
    x = shepp_logan(32)
    task = make_task("deblur")
    A, y = task.measure(x, seed=0)
    base = float(psnr(M.reconstruct("init", A, y, task).clamp(0, 1), x))
    gains = {m: float(psnr(M.reconstruct(m, A, y, task, max_iter=15).clamp(0, 1), x)) - base
             for m in CLASSIC if m != "init"}
    assert all(g > 2.0 for g in gains.values()), gains


def test_tikhonov_solves_its_normal_equations():
    x = shepp_logan(32)
    task = make_task("deblur")
    A, y = task.measure(x, seed=1)
    for rho in (None, 0.1):
        got = M.reconstruct("tikhonov", A, y, task, rho=rho, max_iter=200)
        r = M.DEFAULT_WEIGHTS["deblur"]["tik"] if rho is None else rho
        residual = A.gram(got) + r * got - A.adjoint(y)  # (AᵀA + ρI)x − Aᵀy
        assert float(residual.norm() / A.adjoint(y).norm()) < 1e-5, rho


def test_weights_can_be_overridden():
    x = shepp_logan(32)
    task = make_task("denoise")
    A, y = task.measure(x, seed=2)
    default = M.reconstruct("fista-tv", A, y, task, max_iter=50)
    flat = M.reconstruct("fista-tv", A, y, task, lam=10.0, max_iter=50)  # a 100 times larger TV weight
    assert float(total_variation(flat).sum()) < 0.25 * float(total_variation(default).sum())  # measured: 7.0 vs 45
    assert float((M.reconstruct("fista-tv", A, y, task, lam=M.DEFAULT_WEIGHTS["denoise"]["tv"], max_iter=50)
                  - default).abs().max()) < 1e-6
    loose = M.reconstruct("admm-tv", A, y, task, rho=10.0, max_iter=5)
    assert float((loose - M.reconstruct("admm-tv", A, y, task, max_iter=5)).abs().max()) > 1e-3


class Oracle(torch.nn.Module):
    """A prox that always answers the ground truth (or, with ``x=None``, its input)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self, v, tau=None):
        return v if self.x is None else self.x.expand_as(v)


def test_pnp_with_an_oracle_prox_returns_the_truth():
    # y = A x without noise: with a prox that always answers x, x is reached at once by PnP-PGD and is the fixed point
    # of PnP-ADMM ((AᵀA + ρI)x = Aᵀy + ρ(z − u) with z = x, u = 0)
    x = shepp_logan(32)
    task = make_task("deblur", noise=0.0)
    A, y = task.measure(x)
    for m in LEARNED:
        out = M.reconstruct(m, A, y, task, prior=Oracle(x), max_iter=3)
        torch.testing.assert_close(out, x, atol=1e-5, rtol=0, msg=m)
    # and the identity prox leaves PnP-PGD a plain gradient descent on ½‖Ax − y‖²: the residual falls
    res = M.pnp("pgd", A, y, Oracle(None), max_iter=20)
    x0 = A.init(y)
    assert float((A(res.x) - y).norm()) < 0.5 * float((A(x0) - y).norm())


def test_unknown_method_is_named_with_a_hint(measured):
    _, by_task = measured
    t, A, y = by_task["denoise"]
    with pytest.raises(ValueError, match=r"method must be one of .*got 'fista_tv'; did you mean 'fista-tv'\?"):
        M.reconstruct("fista_tv", A, y, t)
    with pytest.raises(ValueError, match="method must be one of"):
        M.get_method("nesterov")


def test_pnp_does_not_evaluate_a_learned_regularizer():
    """PnP returns its relative-change history without the objective: for an LPN, R(x) inverts the gradient map (the
    cost of a whole solve many times over), and no caller of pnp reads it."""

    from proxlab.priors.base import Prior, capabilities

    class WithRegularizer(Prior):
        def forward(self, v, tau=None):
            return v

        def regularizer(self, x):
            raise AssertionError("pnp evaluated the prior's regularizer")

    assert "regularizer" in capabilities(WithRegularizer())

    task = make_task("deblur", noise=0.0)
    A, y = task.measure(shepp_logan(32))
    for solver in ("admm", "pgd"):
        res = M.pnp(solver, A, y, WithRegularizer(), max_iter=3, tol=0)
        assert len(res.series("rel_change")) == 3 and "objective" not in res.history[0]


def test_pnp_methods_need_a_prior(measured):
    _, by_task = measured
    t, A, y = by_task["denoise"]
    for m in LEARNED:
        with pytest.raises(ValueError, match=f"method '{m}' needs a learned prior"):
            M.reconstruct(m, A, y, t)


def test_wavelet_methods_need_even_sides():
    x = shepp_logan(33)
    task = make_task("denoise")
    A, y = task.measure(x)
    with pytest.raises(ValueError, match=r"wavelet methods need even image sides, got \(33, 33\)"):
        M.reconstruct("fista-wavelet", A, y, task)


def test_a_flow_plugs_into_pnp_through_its_latent_shrinkage():
    """reconstruct("pnp-admm", ..., prior=Glow) runs PnP-ADMM with FlowPrior(flow, lam) (default λ 0.1)."""
    from proxlab.methods import PNP_DEFAULTS, pnp, reconstruct
    from proxlab.operators import GaussianBlur
    from proxlab.priors.flow import FlowPrior, Glow

    flow = Glow(1, levels=2, steps=1, hidden=8, image_size=8).eval()
    A = GaussianBlur(1.0)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = A(x)
    for lam in (None, 0.5):
        got = reconstruct("pnp-admm", A, y, "deblur", prior=flow, lam=lam, max_iter=5)
        want = pnp("admm", A, y, FlowPrior(flow, PNP_DEFAULTS["flow_weight"] if lam is None else lam), rho=0.1,
                   max_iter=5).x
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    stronger = reconstruct("pnp-admm", A, y, "deblur", prior=flow, lam=5.0, max_iter=5)
    assert float((stronger - got).abs().max()) > 1e-3  # the weight reaches the prox
