"""Total variation: gradient/adjoint, TV values, prox_tv (FGP) against a long Chambolle-Pock run, errors."""

import math

import pytest
import torch

from proxlab.priors.classic import TV, image_gradient, image_gradient_adjoint, prox_tv, total_variation


def _rand(shape, seed=0, dtype=torch.float64):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _objective(z, x, lam, isotropic):
    """Per-sample 1/2 |z - x|^2 + lam TV(z)."""
    return 0.5 * (z - x).pow(2).flatten(1).sum(1) + lam * total_variation(z, isotropic)


def _chambolle_pock(x, lam, isotropic, low, high, iters):
    """Reference: accelerated primal-dual algorithm (Chambolle & Pock, 2011, J. Math. Imaging Vis. 40, Alg. 2,
    G = 1/2|z - x|^2 + box indicator, uniformly convex with gamma = 1; K = D; F = lam |.|_{2,1} or lam |.|_1).

    ``isotropic`` (B,) bool, ``lam``/``low``/``high`` (B,) tensors: each sample its own problem, one batch.
    Returns the primal z and the dual y.
    """
    iso = isotropic.view(-1, 1, 1, 1, 1)
    lam5 = lam.view(-1, 1, 1, 1, 1)
    lo, hi = low.view(-1, 1, 1, 1), high.view(-1, 1, 1, 1)
    tau = sigma = 0.99 / math.sqrt(8.0)
    z = x.clone()
    zbar = z.clone()
    y = torch.zeros(x.shape[:2] + (2,) + x.shape[2:], dtype=x.dtype)
    for _ in range(iters):
        y = y + sigma * image_gradient(zbar)
        y = torch.where(iso, y / (y.pow(2).sum(2, keepdim=True).sqrt() / lam5).clamp_min(1.0), torch.maximum(torch.minimum(y, lam5), -lam5))
        z_old = z
        z = torch.clamp((z - tau * image_gradient_adjoint(y) + tau * x) / (1.0 + tau), lo, hi)
        theta = 1.0 / math.sqrt(1.0 + 2.0 * tau)
        tau, sigma = theta * tau, sigma / theta
        zbar = z + theta * (z - z_old)
    return z, y


def _dual_value(y, x, low, high):
    """Lagrangian dual value min_{z in C} 1/2|z - x|^2 + <Dz, y> (a lower bound on the prox objective)."""
    z = torch.clamp(x - image_gradient_adjoint(y), low.view(-1, 1, 1, 1), high.view(-1, 1, 1, 1))
    return 0.5 * (z - x).pow(2).flatten(1).sum(1) + (image_gradient(z) * y).flatten(1).sum(1)


def make_reference(iters=30000):
    """Four 8x8 problems (iso/aniso x unconstrained/box), solved by ``iters`` Chambolle-Pock iterations in float64
    (duality gaps measured: 30 000 iterations below 1e-8, 1 000 iterations below 6e-6)."""
    x = _rand((1, 1, 8, 8), seed=0).expand(4, 1, 8, 8).clone()
    x[2:] = _rand((2, 1, 8, 8), seed=1)
    isotropic = torch.tensor([True, False, True, False])
    lam = torch.tensor([0.15, 0.15, 0.1, 0.2], dtype=torch.float64)
    low = torch.tensor([-math.inf, -math.inf, 0.2, 0.3], dtype=torch.float64)
    high = torch.tensor([math.inf, math.inf, 0.7, 0.9], dtype=torch.float64)
    z, y = _chambolle_pock(x, lam, isotropic, low, high, iters=iters)
    return dict(x=x, isotropic=isotropic, lam=lam, low=low, high=high, z=z, y=y)


@pytest.fixture(scope="module")
def reference():
    return make_reference()


@pytest.fixture(scope="module")
def short_reference():
    """The same problems after 1 000 iterations: within its duality gap (< 1e-5) of the optimum, enough to judge
    FGP's default settings in the default run."""
    return make_reference(iters=1000)


def agreement_report():
    """Measured FGP-vs-reference numbers; ``python tests/priors/test_classic_tv.py`` prints them."""
    ref = make_reference()
    for i in range(4):
        x, lam, iso = ref["x"][i : i + 1], float(ref["lam"][i]), bool(ref["isotropic"][i])
        low, high = _box(ref, i)
        z_cp = ref["z"][i : i + 1]
        f_cp = float(_objective(z_cp, x, lam, iso))
        gap = f_cp - float(_dual_value(ref["y"][i : i + 1], x, ref["low"][i : i + 1], ref["high"][i : i + 1]))
        for label, kw in (("long", dict(max_iter=20000, tol=1e-13)), ("default", {})):
            z = prox_tv(x, lam, isotropic=iso, low=low, high=high, **kw)
            f = float(_objective(z, x, lam, iso))
            print(
                f"iso={iso!s:5} box=({low}, {high}) FGP {label:7}: CP duality gap {gap:.1e}, "
                f"objective rel. diff {abs(f - f_cp) / f_cp:.1e}, max |z - z_cp| {float((z - z_cp).abs().max()):.1e}"
            )


def _box(ref, i):
    lo, hi = float(ref["low"][i]), float(ref["high"][i])
    return (None if math.isinf(lo) else lo), (None if math.isinf(hi) else hi)


class TestGradient:
    def test_shapes_and_boundary(self):
        x = _rand((2, 3, 5, 7))
        g = image_gradient(x)
        assert g.shape == (2, 3, 2, 5, 7)
        assert torch.equal(g[:, :, 0, -1], torch.zeros(2, 3, 7, dtype=torch.float64))  # Neumann: last row
        assert torch.equal(g[:, :, 1, :, -1], torch.zeros(2, 3, 5, dtype=torch.float64))  # last column
        assert torch.allclose(g[:, :, 0, :-1], x[:, :, 1:] - x[:, :, :-1])
        assert torch.allclose(g[:, :, 1, :, :-1], x[..., 1:] - x[..., :-1])
        assert torch.equal(image_gradient(torch.ones(1, 1, 4, 4)), torch.zeros(1, 1, 2, 4, 4))

    @pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
    def test_dot(self, dtype, tol):
        x = _rand((2, 3, 6, 9), seed=1, dtype=dtype) - 0.5
        p = _rand((2, 3, 2, 6, 9), seed=2, dtype=dtype) - 0.5
        lhs = (image_gradient(x) * p).sum()
        rhs = (x * image_gradient_adjoint(p)).sum()
        assert abs(float(lhs - rhs)) <= tol * float(image_gradient(x).norm() * p.norm())

    def test_norm_bound(self):
        # ||D||^2 <= 8 (the FGP step): checked by power iteration on a 16x16 image.
        x = _rand((1, 1, 16, 16), seed=3)
        for _ in range(300):
            x = image_gradient_adjoint(image_gradient(x))
            x = x / x.norm()
        assert float((image_gradient(x).norm() ** 2)) <= 8.0

    def test_bad_input(self):
        with pytest.raises(ValueError, match=r"image_gradient: x must have shape \(B, C, H, W\)"):
            image_gradient(torch.zeros(3, 4))
        with pytest.raises(ValueError, match=r"p must have shape \(B, C, 2, H, W\)"):
            image_gradient_adjoint(torch.zeros(1, 1, 3, 4, 4))


class TestTotalVariation:
    def test_values(self):
        step = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
        step[..., 3:] = 1.0  # one unit jump per row and channel
        assert float(total_variation(step)) == pytest.approx(10.0)
        assert float(total_variation(step, isotropic=False)) == pytest.approx(10.0)
        dot = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
        dot[0, 0, 2, 2] = 1.0  # differences: (-1, -1) at the dot, +1 above, +1 left
        assert float(total_variation(dot)) == pytest.approx(2.0 + math.sqrt(2.0))
        assert float(total_variation(dot, isotropic=False)) == pytest.approx(4.0)
        assert total_variation(_rand((3, 2, 4, 4))).shape == (3,)

    def test_gradcheck(self):
        x = _rand((2, 1, 5, 5), seed=4).requires_grad_()
        assert torch.autograd.gradcheck(total_variation, (x,))
        assert torch.autograd.gradcheck(lambda v: total_variation(v, isotropic=False), (x,))

    def test_zero_gradient_is_finite(self):
        x = torch.ones(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
        total_variation(x).sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x))

    def test_bad_input(self):
        with pytest.raises(TypeError, match="real floating-point"):
            total_variation(torch.zeros(1, 1, 3, 3, dtype=torch.int64))


class TestProxTV:
    @pytest.mark.slow  # 30 000 Chambolle-Pock and 20 000 FGP iterations
    @pytest.mark.parametrize("i", range(4))
    def test_matches_chambolle_pock(self, reference, i):
        ref = reference
        x, lam, iso = ref["x"][i : i + 1], float(ref["lam"][i]), bool(ref["isotropic"][i])
        low, high = _box(ref, i)
        z = prox_tv(x, lam, max_iter=20000, tol=1e-13, isotropic=iso, low=low, high=high)
        z_cp = ref["z"][i : i + 1]
        f, f_cp = float(_objective(z, x, lam, iso)), float(_objective(z_cp, x, lam, iso))
        gap = f_cp - float(_dual_value(ref["y"][i : i + 1], x, ref["low"][i : i + 1], ref["high"][i : i + 1]))
        assert 0 <= gap <= 1e-8  # the reference itself is certified: |z_cp - z*| <= sqrt(2 gap)
        assert abs(f - f_cp) <= 1e-6 * f_cp
        assert f <= f_cp + 1e-12  # FGP is at least as good as the reference
        assert float((z - z_cp).abs().max()) <= 1e-4
        if low is not None:
            assert float(z.min()) >= low and float(z.max()) <= high

    def test_defaults_are_close(self, short_reference):
        # measured against this reference: objective within 1.6e-3 (relative), max |z - z_cp| <= 1.9e-3
        ref = short_reference
        for i in range(4):
            x, lam, iso = ref["x"][i : i + 1], float(ref["lam"][i]), bool(ref["isotropic"][i])
            z = prox_tv(x, lam, isotropic=iso, low=_box(ref, i)[0], high=_box(ref, i)[1])
            f, f_cp = float(_objective(z, x, lam, iso)), float(_objective(ref["z"][i : i + 1], x, lam, iso))
            dual = float(_dual_value(ref["y"][i : i + 1], x, ref["low"][i : i + 1], ref["high"][i : i + 1]))
            assert 0 <= f_cp - dual <= 1e-5  # the short reference is certified by its duality gap
            assert f >= dual - 1e-12  # no point beats the dual bound
            assert abs(f - f_cp) <= 2e-3 * f_cp
            assert float((z - ref["z"][i : i + 1]).abs().max()) <= 5e-3

    @pytest.mark.parametrize("isotropic", [True, False])
    def test_beats_random_perturbations(self, isotropic):
        x, lam = _rand((1, 1, 8, 8), seed=5), 0.1
        z = prox_tv(x, lam, max_iter=5000, tol=1e-12, isotropic=isotropic)
        best = float(_objective(z, x, lam, isotropic))
        g = torch.Generator().manual_seed(6)
        for scale in (1e-3, 1e-2, 1e-1):
            d = torch.randn((400, 1, 8, 8), generator=g, dtype=torch.float64) * scale
            assert float(_objective(z + d, x.expand_as(d), lam, isotropic).min()) >= best - 1e-9

    def test_batch_and_per_sample_threshold(self):
        x = _rand((3, 2, 8, 8), seed=7)
        lam = torch.tensor([0.05, 0.0, 0.2], dtype=torch.float64)
        z = prox_tv(x, lam, max_iter=50, tol=0)
        for i in range(3):
            zi = prox_tv(x[i : i + 1], float(lam[i]), max_iter=50, tol=0)
            assert torch.allclose(z[i : i + 1], zi, atol=1e-12)
        assert torch.equal(z[1], x[1])  # lam = 0: identity
        assert torch.allclose(prox_tv(x, lam.view(3, 1, 1, 1), max_iter=50, tol=0), z, atol=0)
        per_channel = torch.tensor([[0.05, 0.2]], dtype=torch.float64).view(1, 2, 1, 1)
        zc = prox_tv(x[:1], per_channel, max_iter=50, tol=0)
        for c in range(2):
            ref = prox_tv(x[:1, c : c + 1], float(per_channel[0, c]), max_iter=50, tol=0)
            assert torch.allclose(zc[:, c : c + 1], ref, atol=1e-12)

    def test_constant_and_large_threshold(self):
        c = torch.full((1, 1, 6, 6), 0.3, dtype=torch.float64)
        assert torch.allclose(prox_tv(c, 1.0), c, atol=1e-15)
        # a very large threshold flattens the image to its mean (the TV = 0 minimiser of 1/2|z - x|^2)
        x = _rand((1, 1, 6, 6), seed=8)
        z = prox_tv(x, 100.0, max_iter=3000, tol=1e-12)
        assert torch.allclose(z, x.mean().expand_as(x), atol=1e-6)

    def test_tolerance_stops_early(self):
        x = _rand((2, 1, 8, 8), seed=9)
        assert torch.equal(prox_tv(x, 0.1, max_iter=500, tol=1.0), prox_tv(x, 0.1, max_iter=1))
        assert not torch.equal(prox_tv(x, 0.1, max_iter=500, tol=0), prox_tv(x, 0.1, max_iter=1))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_dtype_and_shape(self, dtype):
        x = _rand((2, 3, 9, 7), seed=10, dtype=dtype)
        z = prox_tv(x, 0.1, low=0.0, high=1.0)
        assert z.shape == x.shape and z.dtype == dtype

    def test_gradcheck_unrolled(self):
        x = _rand((1, 1, 4, 4), seed=11).requires_grad_()
        assert torch.autograd.gradcheck(lambda v: prox_tv(v, 0.05, max_iter=5, tol=0), (x,))

    def test_bad_input(self):
        x = torch.zeros(2, 1, 4, 4)
        with pytest.raises(ValueError, match=r"prox_tv: x must have shape \(B, C, H, W\)"):
            prox_tv(torch.zeros(4, 4), 0.1)
        with pytest.raises(ValueError, match="thresh must be >= 0"):
            prox_tv(x, -0.1)
        with pytest.raises(ValueError, match="per-sample / per-channel"):
            prox_tv(x, torch.ones(1, 1, 4, 4))
        with pytest.raises(ValueError, match="max_iter must be > 0"):
            prox_tv(x, 0.1, max_iter=0)
        with pytest.raises(ValueError, match="tol must be >= 0"):
            prox_tv(x, 0.1, tol=-1.0)
        with pytest.raises(ValueError, match="low must be <= high"):
            prox_tv(x, 0.1, low=1.0, high=0.0)
        with pytest.raises(TypeError, match="real floating-point"):
            prox_tv(torch.zeros(1, 1, 3, 3, dtype=torch.complex64), 0.1)


class TestTVModule:
    def test_module_matches_function(self):
        x = _rand((2, 1, 8, 8), seed=12)
        prior = TV(weight=0.5, isotropic=False, max_iter=50, tol=1e-6, low=0.0, high=1.0)
        tau = torch.tensor([0.1, 0.3], dtype=torch.float64)
        ref = prox_tv(x, 0.5 * tau, max_iter=50, tol=1e-6, isotropic=False, low=0.0, high=1.0)
        assert torch.equal(prior(x, tau), ref)
        assert torch.equal(TV(0.2)(x, 0.5), prox_tv(x, 0.5 * 0.2))

    def test_regularizer(self):
        x = _rand((3, 2, 6, 6), seed=13)
        assert torch.allclose(TV(0.3).regularizer(x), 0.3 * total_variation(x))
        assert torch.allclose(TV(0.3, isotropic=False).regularizer(x), 0.3 * total_variation(x, isotropic=False))
        x[1, 0, 0, 0] = -1.0
        r = TV(0.3, low=0.0).regularizer(x)
        assert torch.isinf(r[1]) and torch.isfinite(r[0]) and torch.isfinite(r[2])

    def test_bad_input(self):
        with pytest.raises(ValueError, match="weight must be >= 0"):
            TV(weight=-1.0)
        with pytest.raises(ValueError, match="max_iter must be > 0"):
            TV(max_iter=0)
        with pytest.raises(ValueError, match="tau must be >= 0"):
            TV()(torch.zeros(1, 1, 4, 4), tau=-2.0)
        with pytest.raises(ValueError, match=r"TV.forward: x must have shape"):
            TV()(torch.zeros(1, 4, 4))


if __name__ == "__main__":
    torch.set_num_threads(1)
    agreement_report()
