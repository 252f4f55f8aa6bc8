r"""Properties every prior of the library must have, run over all of them (like the operator suite).

What is checked, in float64 (one sample ``v`` at a time; ``F(x) = ½‖x − v‖² + τ g(x)``):

(a) brute-force prox.
    Priors with a regularizer ``g`` (classic): ``p = prox(v, τ)`` must minimise ``F``. ``F`` is 1-strongly
    convex, so ``p`` is the minimiser iff ``F(q) ≥ F(p) + ½‖q − p‖²`` for every ``q``; this is checked for
    ``q = p ± ε eᵢ`` (every coordinate) and ``p + ε d`` (32 random unit directions), ε ∈ {1e-1, 1e-2, 1e-3},
    for random points in a ball around ``v``, and for the iterates of a generic subgradient descent on ``F``
    (autograd of ``g``) started at ``p``, all within a stated slack (1e-9 for the closed forms, 1e-8 for
    FGP's TV prox run to a relative change of 1e-12). Constrained priors (Box, TV with a box) are checked
    against feasible ``q`` only.
    LPN: its ``R`` is defined through the inverse of its prox ``f = ∇ψ``, so the defining properties are
    checked instead: the Jacobian of ``f`` (the Hessian of ψ) is symmetric with eigenvalues ``≥ 2α``
    (ψ is convex plus α‖x‖²), ``R`` at ``x = f(v)`` satisfies the optimality condition
    ``∇R(x) = v − x`` (``v − x ∈ ∂R(x)``), and ``½‖q − v‖² + R(q) ≥ ½‖x − v‖² + R(x)`` for random
    ``q``.
(b) Moreau's identity ``prox_{τg}(v) + τ prox_{g*/τ}(v/τ) = v`` where the conjugate's prox is known
    independently: L1 ↔ projection onto the ℓ∞ ball (a ``Box``), Box ↔ the support function's prox (an
    asymmetric soft threshold, written out here), WaveletL1 ↔ projection in the wavelet domain.
(c) ``torch.autograd.gradcheck`` of the prox in float64 where it is differentiable: at points away from the
    kinks for the piecewise ones (L1, Box, wavelets), the FGP map with a fixed iteration count for TV, and
    at random points for LPN (smooth) and DnCNN (ReLU: kinks have measure zero).
(d) function equals module: ``soft_threshold`` / ``L1``, ``soft_threshold_unchecked`` / ``soft_threshold``,
    ``project_box`` / ``Box``, ``prox_tv`` / ``TV``, ``prox_wavelet_l1`` / ``WaveletL1``, LPN's ``forward`` /
    the gradient of its ``psi``; and ``prior.prox(v, τ)`` / ``prior(v, τ)`` for every prior.
(e) ``torch.compile`` smoke test, one prior per family (classic, LPN, network), with ``backend="eager"``:
    it exercises Dynamo's tracing (and its graph breaks) without paying for Inductor's code generation.

The ``TestChecksCanFail`` class feeds each check a deliberately wrong prox and asserts that it fails.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from proxlab.priors import Prior, capabilities
from proxlab.priors.classic import (
    L1,
    TV,
    Box,
    WaveletL1,
    project_box,
    prox_tv,
    prox_wavelet_l1,
    soft_threshold,
    soft_threshold_unchecked,
)
from proxlab.priors.lpn import LPNConv, LPNFullyConnected, LPNFullyConvolutional
from proxlab.priors.flow import FlowPrior, Glow
from proxlab.priors.networks import DnCNN, ResNetProxBN, UNetProx

D = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------
# the cases: every prior of the library
# ---------------------------------------------------------------------------------------------------------
def _away_from(v: torch.Tensor, kinks: list[float], gap: float) -> torch.Tensor:
    """Move every entry of v at least ``gap`` away from each kink (by pushing it past the kink)."""
    for k in kinks:
        close = (v - k).abs() < gap
        v = torch.where(close, k + gap * torch.where(v >= k, 1.0, -1.0) * 1.5, v)
    return v


def _lpn(cls, **kw):
    torch.manual_seed(0)
    m = cls(**kw)
    m.init_weights(-2.0, 0.5)  # z-path weights exp(N(-2, .5)): ψ far from quadratic
    return m


def _perturbed(m: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """``m`` with every parameter moved at random (zero-initialised heads would make it the identity)."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return m


@dataclass(frozen=True)
class Case:
    make: Callable[[], torch.nn.Module]
    shape: tuple[int, ...]  # one sample
    family: str  # "classic", "lpn", "network", "flow"
    tau: float = 0.5
    box: tuple[float | None, float | None] | None = None  # the domain of g, where it is a constraint
    slack: float = 1e-9  # brute-force slack in F
    kinks: Callable[[torch.nn.Module, float], list[float]] | None = None  # where the prox is not smooth


TAU = 0.5
CASES: dict[str, Case] = {
    "l1": Case(lambda: L1(0.3), (12,), "classic", kinks=lambda p, t: [-t * p.weight, t * p.weight]),
    "l1-image": Case(lambda: L1(0.2), (2, 3, 4), "classic", tau=1.3, kinks=lambda p, t: [-t * p.weight, t * p.weight]),
    "box-unit": Case(lambda: Box(0.0, 1.0), (1, 4, 4), "classic", box=(0.0, 1.0), kinks=lambda p, t: [0.0, 1.0]),
    "box-nonnegative": Case(lambda: Box(0.0, None), (10,), "classic", box=(0.0, None), kinks=lambda p, t: [0.0]),
    "box-upper": Case(lambda: Box(None, 0.3), (10,), "classic", box=(None, 0.3), kinks=lambda p, t: [0.3]),
    "box-shifted": Case(lambda: Box(0.2, 0.7), (10,), "classic", box=(0.2, 0.7), kinks=lambda p, t: [0.2, 0.7]),
    "tv-isotropic": Case(lambda: TV(0.15, max_iter=20000, tol=1e-12), (1, 5, 5), "classic", slack=1e-8),
    "tv-anisotropic": Case(lambda: TV(0.15, isotropic=False, max_iter=20000, tol=1e-12), (1, 5, 5), "classic",
                           slack=1e-8),
    "tv-two-channels": Case(lambda: TV(0.1, max_iter=20000, tol=1e-12), (2, 4, 5), "classic", slack=1e-8),
    "tv-box": Case(lambda: TV(0.15, max_iter=20000, tol=1e-12, low=0.0, high=0.8), (1, 5, 5), "classic",
                   box=(0.0, 0.8), slack=1e-8),
    "wavelet-haar": Case(lambda: WaveletL1(0.2, "haar", levels=2), (1, 8, 8), "classic"),
    "wavelet-db2": Case(lambda: WaveletL1(0.2, "db2", levels=1), (1, 4, 6), "classic"),
    "wavelet-db4": Case(lambda: WaveletL1(0.1, "db4", levels=1), (1, 6, 4), "classic"),
    "lpn-fully-connected": Case(lambda: _lpn(LPNFullyConnected, dim=3, hidden=8, layers=2, beta=2.0, alpha=0.1),
                                (3,), "lpn"),
    "lpn-conv": Case(lambda: _lpn(LPNConv, image_size=6, hidden=3, depth=2, features=4, beta=2.0, alpha=0.1),
                     (1, 6, 6), "lpn"),
    "lpn-fully-convolutional": Case(lambda: _lpn(LPNFullyConvolutional, hidden=3, depth=2, features=4, beta=2.0,
                                                 alpha=0.1), (1, 5, 5), "lpn"),
    "dncnn": Case(lambda: DnCNN(depth=3, features=4), (1, 6, 6), "network"),
    "dncnn-no-batch-norm": Case(lambda: DnCNN(channels=2, depth=3, features=3, batch_norm=False), (2, 4, 4),
                                "network"),
    "resnet-prox": Case(lambda: _perturbed(ResNetProxBN(features=4, blocks=1)), (1, 6, 6), "network"),
    "unet-prox": Case(lambda: _perturbed(UNetProx(features=2, levels=1)), (1, 6, 6), "network"),
    # a flow's latent shrinkage is a prox in latent coordinates (checked in tests/priors/test_flow.py), here a network
    "flow": Case(lambda: FlowPrior(_perturbed(Glow(1, levels=1, steps=1, hidden=4, image_size=4), 0.05), 0.5),
                 (1, 4, 4), "flow"),
}


def _prior(name: str) -> torch.nn.Module:
    torch.manual_seed(1)
    return CASES[name].make().to(D).eval()


def _names(pred) -> list[str]:
    return [n for n, c in CASES.items() if pred(c)]


def _sample(case: Case, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn((1,) + case.shape, dtype=D, generator=_gen(seed))


def test_every_prior_of_the_library_is_in_the_suite():
    """A new Prior subclass must be added to CASES (base classes without a prox of their own excepted)."""
    abstract = {"LearnedProximalNetwork"}
    found = set()
    for module in ("proxlab.priors.classic", "proxlab.priors.lpn", "proxlab.priors.networks", "proxlab.priors.flow"):
        for name, obj in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if issubclass(obj, Prior) and obj is not Prior and not name.startswith("_") and name not in abstract:
                found.add(obj)
    covered = {type(c.make()) for c in CASES.values()}
    assert found - covered == set(), f"priors missing from the suite: {sorted(c.__name__ for c in found - covered)}"


@pytest.mark.parametrize("name", list(CASES))
def test_capabilities_and_shapes(name):
    case, prior = CASES[name], _prior(name)
    expected = {"classic": {"prox", "regularizer"}, "lpn": {"prox", "regularizer", "after_optimizer_step"},
                "network": {"prox"}, "flow": {"prox", "log_prob", "grad_log_prob"}}[case.family]
    assert capabilities(prior) == expected
    v = torch.randn((3,) + case.shape, dtype=D, generator=_gen(0))
    out = prior(v, case.tau)
    assert out.shape == v.shape and out.dtype == D
    if "regularizer" in expected:
        assert prior.regularizer(v).shape == (3,)


# ---------------------------------------------------------------------------------------------------------
# (a) brute-force prox
# ---------------------------------------------------------------------------------------------------------
def _objective(prior, v, tau, x, **kw):
    return 0.5 * (x - v).flatten(1).pow(2).sum(1) + tau * prior.regularizer(x, **kw)


def _candidates(p: torch.Tensor, v: torch.Tensor, seed: int, coordinates: bool = True, n_random: int = 32,
                scales=(1e-1, 1e-2, 1e-3)) -> torch.Tensor:
    """Points around p (coordinate and random directions at several scales) and a few far ones around v."""
    n = p[0].numel()
    g = _gen(seed)
    dirs = [torch.randn(n_random, n, dtype=D, generator=g)]
    dirs[0] = dirs[0] / dirs[0].norm(dim=1, keepdim=True)
    if coordinates:
        eye = torch.eye(n, dtype=D)
        dirs += [eye, -eye]
    dirs = torch.cat(dirs).reshape(-1, *p.shape[1:])
    near = torch.cat([p + s * dirs for s in scales])
    far = v + torch.randn((16,) + p.shape[1:], dtype=D, generator=g)
    return torch.cat([near, far])


def _clamp(x: torch.Tensor, box) -> torch.Tensor:
    return x if box is None else project_box(x, *box)


def _subgradient_descent(prior, v, tau, x0, box, steps=60, step=1e-2):
    """A generic optimiser on F: (projected) subgradient steps ``step/(k+1)`` by autograd of the regularizer."""
    xs, x = [], x0.clone()
    for k in range(steps):
        xr = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(_objective(prior, v, tau, xr).sum(), xr)
        x = _clamp(x - step / (k + 1) * grad, box)
        xs.append(x)
    return torch.cat(xs)


def assert_prox_minimises(prior, v, tau, p, box=None, slack=1e-9, seed=0):
    """F(q) ≥ F(p) + ½‖q − p‖² − slack for many q (see the module docstring); AssertionError otherwise."""
    q = _clamp(_candidates(p, v, seed), box)
    q = torch.cat([q, _subgradient_descent(prior, v, tau, p, box)])
    Fp = _objective(prior, v, tau, p)
    assert torch.isfinite(Fp).all(), "F(prox(v)) is not finite: the prox left the domain of g"
    growth = _objective(prior, v, tau, q) - Fp - 0.5 * (q - p).flatten(1).pow(2).sum(1)
    worst = float(growth.min())
    assert worst >= -slack, f"a point beats the prox: F(q) - F(p) - ½|q - p|² = {worst:.3e} < -{slack:g}"


@pytest.mark.parametrize("name", _names(lambda c: c.family == "classic"))
def test_prox_minimises_its_objective(name):
    case, prior = CASES[name], _prior(name)
    for seed in (0, 1):
        v = _sample(case, seed, scale=0.6) + 0.4
        p = prior(v, case.tau)
        assert_prox_minimises(prior, v, case.tau, p, box=case.box, slack=case.slack, seed=seed)


def assert_symmetric_jacobian(f, v, min_eig: float, tol: float = 1e-9):
    """The Jacobian of f at v is symmetric, and its eigenvalues are ≥ min_eig (f is ∇ of a convex ψ)."""
    n = v.numel()
    J = torch.autograd.functional.jacobian(lambda t: f(t.reshape(v.shape)).reshape(-1), v.reshape(-1))
    scale = float(J.abs().max())
    asym = float((J - J.T).abs().max())
    assert asym <= tol * max(scale, 1.0), f"Jacobian not symmetric: max |J - Jᵀ| = {asym:.3e} (max |J| {scale:.3e})"
    eig = float(torch.linalg.eigvalsh(0.5 * (J + J.T)).min())
    assert eig >= min_eig - tol * max(scale, 1.0), f"Jacobian eigenvalue {eig:.3e} < {min_eig:.3e} (n = {n})"


@pytest.mark.parametrize("name", _names(lambda c: c.family == "lpn"))
def test_lpn_prox_is_the_gradient_of_a_convex_potential(name):
    case, prior = CASES[name], _prior(name)
    v = _sample(case, 0)
    assert_symmetric_jacobian(lambda t: prior(t), v, min_eig=2 * prior.alpha)


@pytest.mark.parametrize("name", _names(lambda c: c.family == "lpn"))
def test_lpn_regularizer_satisfies_the_prox_optimality_condition(name):
    """x = f(v) = prox_R(v) ⇔ v − x ∈ ∂R(x): R's gradient at x (envelope theorem, y* − x) is v − x; and
    ½‖q − v‖² + R(q) does not beat x at random q (R by inverting f to 1e-10)."""
    case, prior = CASES[name], _prior(name)
    v = _sample(case, 3)
    x = prior(v).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(prior.regularizer(x, tol=1e-10).sum(), x)
    torch.testing.assert_close(grad, (v - x).detach(), rtol=0, atol=1e-7)
    p = x.detach()
    q = _candidates(p, v, seed=4, coordinates=False, n_random=8, scales=(1e-1, 1e-2))
    Fp = _objective(prior, v, 1.0, p, tol=1e-10)
    Fq = _objective(prior, v, 1.0, q, tol=1e-10)
    assert float((Fq - Fp).min()) >= -1e-9


# ---------------------------------------------------------------------------------------------------------
# (b) Moreau's identity
# ---------------------------------------------------------------------------------------------------------
def _support_prox(z: torch.Tensor, low, high, tau: float) -> torch.Tensor:
    r"""prox of σ_C/τ for C = [low, high]ⁿ: σ_C(s) = Σ max(high·s, low·s), slopes low (s < 0), high (s > 0):
    s = z − high/τ above high/τ, z − low/τ below low/τ, 0 between (infinite bounds: that side is 0)."""
    hi = float("inf") if high is None else high / tau
    lo = float("-inf") if low is None else low / tau
    return torch.where(z > hi, z - hi, torch.where(z < lo, z - lo, torch.zeros_like(z)))


def _wavelet_conjugate_prox(prior: WaveletL1, z: torch.Tensor) -> torch.Tensor:
    """g* = indicator of {s : |detail(Ws)| ≤ w, approx(Ws) = 0}; its prox projects in the wavelet domain."""
    W = prior.transform
    c = W(z)
    mask = W.detail_mask(z.shape[-2], z.shape[-1])
    return W.adjoint(torch.where(mask, c.clamp(-prior.weight, prior.weight), torch.zeros_like(c)))


def _conjugate_prox(prior, z, tau):
    if isinstance(prior, L1):
        return Box(-prior.weight, prior.weight)(z)
    if isinstance(prior, Box):
        return _support_prox(z, prior.low, prior.high, tau)
    if isinstance(prior, WaveletL1):
        return _wavelet_conjugate_prox(prior, z)
    raise AssertionError(type(prior))


def assert_moreau(prior, v, tau, conjugate_prox, tol=1e-12):
    lhs = prior(v, tau) + tau * conjugate_prox(prior, v / tau, tau)
    err = float((lhs - v).abs().max())
    assert err <= tol * max(1.0, float(v.abs().max())), f"Moreau's identity off by {err:.3e}"


@pytest.mark.parametrize("name", _names(lambda c: isinstance(c.make(), (L1, Box, WaveletL1))))  # TV: no closed form
@pytest.mark.parametrize("tau", [0.3, 2.0])
def test_moreau_identity(name, tau):
    case, prior = CASES[name], _prior(name)
    v = _sample(case, 5)
    assert_moreau(prior, v, tau, _conjugate_prox)


# ---------------------------------------------------------------------------------------------------------
# (c) gradcheck in float64
# ---------------------------------------------------------------------------------------------------------
def _gradcheck_point(name: str, prior) -> torch.Tensor:
    case = CASES[name]
    v = _sample(case, 7, scale=0.8) + 0.3
    if isinstance(prior, WaveletL1):  # away from the kinks |c| = τw in the wavelet domain
        t = case.tau * prior.weight
        c = _away_from(prior.transform(v), [-t, t], 0.05)
        v = prior.transform.adjoint(c)
    elif case.kinks is not None:
        v = _away_from(v, case.kinks(prior, case.tau), 0.05)
    return v


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    case, prior = CASES[name], _prior(name)
    if isinstance(prior, TV):  # the FGP map with a fixed number of iterations (tol=0), not the exact prox
        prior = TV(prior.weight, prior.isotropic, max_iter=20, tol=0.0, low=prior.low, high=prior.high)
    v = _gradcheck_point(name, prior).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: prior(t, case.tau), (v,), eps=1e-6, atol=1e-5, rtol=1e-4,
                                    fast_mode=True)


# ---------------------------------------------------------------------------------------------------------
# (d) function equals module
# ---------------------------------------------------------------------------------------------------------
def _functional(prior, v, tau):
    if isinstance(prior, L1):
        return soft_threshold(v, tau * prior.weight)
    if isinstance(prior, Box):
        return project_box(v, prior.low, prior.high)
    if isinstance(prior, TV):
        return prox_tv(v, tau * prior.weight, prior.max_iter, prior.tol, prior.isotropic, prior.low, prior.high)
    if isinstance(prior, WaveletL1):
        return prox_wavelet_l1(v, tau * prior.weight, prior.transform.wavelet, prior.transform.levels)
    if hasattr(prior, "psi"):  # LPN: f = ∇ψ
        vv = v.clone().requires_grad_(True)
        return torch.autograd.grad(prior.psi(vv).sum(), vv)[0]
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_function_equals_module(name):
    case, prior = CASES[name], _prior(name)
    v = torch.randn((2,) + case.shape, dtype=D, generator=_gen(9))
    out = prior(v, case.tau)
    torch.testing.assert_close(prior.prox(v, case.tau), out, rtol=0, atol=0)
    ref = _functional(prior, v, case.tau)
    if ref is None:
        pytest.skip(f"{type(prior).__name__} has no functional form")
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64])
def test_soft_threshold_core_equals_checked_wrapper(dtype):
    g = _gen(11)
    x = torch.randn(3, 2, 5, 5, dtype=dtype, generator=g)
    per_sample = torch.tensor([0.0, 0.4, 1.5])
    torch.testing.assert_close(soft_threshold_unchecked(x, 0.3), soft_threshold(x, 0.3), rtol=0, atol=0)
    torch.testing.assert_close(soft_threshold_unchecked(x, per_sample.reshape(3, 1, 1, 1).to(x.real.dtype)),
                               soft_threshold(x, per_sample), rtol=0, atol=0)
    learned = torch.rand(1, 2, 1, 1, generator=g).to(x.real.dtype)  # a per-channel threshold, as in unrolled nets
    torch.testing.assert_close(soft_threshold_unchecked(x, learned), soft_threshold(x, learned), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------
# (e) torch.compile smoke test
# ---------------------------------------------------------------------------------------------------------
def _compile_available() -> bool:
    try:
        import torch._dynamo  # noqa: F401
    except Exception:  # pragma: no cover - platforms without Dynamo
        return False
    return hasattr(torch, "compile") and torch._dynamo.is_dynamo_supported()


@pytest.mark.skipif(not _compile_available(), reason="torch.compile (Dynamo) is not available here")
@pytest.mark.parametrize("name", ["l1", "lpn-fully-connected", "dncnn"])  # one per family
def test_torch_compile_smoke(name):
    case, prior = CASES[name], _prior(name)
    v = torch.randn((2,) + case.shape, dtype=D, generator=_gen(12))
    torch._dynamo.reset()
    compiled = torch.compile(prior, backend="eager")
    torch.testing.assert_close(compiled(v, case.tau), prior(v, case.tau), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# every check can fail
# ---------------------------------------------------------------------------------------------------------
class _WrongL1(L1):
    """Soft-thresholds at 1.05 τw instead of τw."""

    def forward(self, x, tau=1.0):
        return soft_threshold(x, 1.05 * tau * self.weight)


class TestChecksCanFail:
    def test_brute_force_catches_a_wrong_threshold(self):
        prior, v = _WrongL1(0.3).to(D), _sample(CASES["l1"], 0)
        with pytest.raises(AssertionError, match="a point beats the prox"):
            assert_prox_minimises(prior, v, TAU, prior(v, TAU))

    def test_brute_force_catches_an_unconverged_tv_prox(self):
        prior = TV(0.15, max_iter=20000, tol=1e-12).to(D)
        v = _sample(CASES["tv-isotropic"], 0, scale=0.6) + 0.4
        rough = TV(0.15, max_iter=30, tol=0.0)(v, TAU)  # F within ~1e-6 of the optimum: still caught
        with pytest.raises(AssertionError, match="a point beats the prox"):
            assert_prox_minimises(prior, v, TAU, rough, slack=1e-8)

    def test_brute_force_catches_a_prox_outside_the_box(self):
        prior = Box(0.0, 1.0)
        v = _sample(CASES["box-unit"], 0)
        with pytest.raises(AssertionError, match="not finite"):
            assert_prox_minimises(prior, v, TAU, v, box=(0.0, 1.0))

    def test_moreau_catches_a_wrong_conjugate(self):
        prior, v = L1(0.3).to(D), _sample(CASES["l1"], 5, scale=2.0)
        wrong = lambda p, z, tau: Box(-2 * p.weight, 2 * p.weight)(z)  # noqa: E731
        with pytest.raises(AssertionError, match="Moreau's identity off"):
            assert_moreau(prior, v, TAU, wrong)

    @pytest.mark.parametrize("kind", ["non-symmetric", "not monotone"])
    def test_jacobian_check_catches_a_map_that_is_no_gradient_of_a_convex_function(self, kind):
        M = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=D)
        if kind == "not monotone":
            M = torch.diag(torch.tensor([1.0, 0.5, -0.2], dtype=D))
        with pytest.raises(AssertionError, match="not symmetric" if kind == "non-symmetric" else "eigenvalue"):
            assert_symmetric_jacobian(lambda t: t @ M.T, torch.ones(1, 3, dtype=D), min_eig=0.0)

    def test_jacobian_check_catches_too_little_curvature(self):
        prior = _prior("lpn-fully-connected")
        with pytest.raises(AssertionError, match="eigenvalue"):
            assert_symmetric_jacobian(lambda t: prior(t), _sample(CASES["lpn-fully-connected"], 0), min_eig=10.0)

    def test_gradcheck_catches_a_wrong_derivative(self):
        class Wrong(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return soft_threshold(x, 0.1)

            @staticmethod
            def backward(ctx, g):
                return 0.5 * g

        v = torch.tensor([[1.0, -2.0, 3.0]], dtype=D, requires_grad=True)
        assert not torch.autograd.gradcheck(Wrong.apply, (v,), raise_exception=False, fast_mode=True)
