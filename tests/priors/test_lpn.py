"""Learned proximal networks: parameter counts, convexity of ψ, monotone prox, inversion, the prior R, errors."""

import math

import pytest
import torch

from proxlab.priors.lpn import LPN1D, LPNConv, LPNFullyConnected, LPNFullyConvolutional
from proxlab.priors.lpn_invert import invert_gradient_map


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _model(kind, dtype=torch.float64, seed=0, mean=-2.0, std=0.5):
    """Small nets whose z-path weights are large enough (exp(N(-2, .5))) for ψ to be far from quadratic."""
    torch.manual_seed(seed)
    if kind == "fc":
        m = LPNFullyConnected(dim=3, hidden=12, layers=3, alpha=0.05)
    elif kind == "conv":
        m = LPNConv(image_size=12, hidden=6, depth=3, features=8)
    elif kind == "fullyconv":
        m = LPNFullyConvolutional(hidden=6, depth=3, features=8)
    else:
        raise AssertionError(kind)
    m.init_weights(mean, std)
    return m.to(dtype)


def _input_shape(kind, b, size=(12, 12)):
    return (b, 3) if kind == "fc" else (b, 1, *size)


def _second_differences(m, a, d, n_t=9, h=0.05):
    """ψ(a + t d) on a grid of t for every (a, d) pair; second differences, one row per line."""
    t = torch.arange(n_t, dtype=a.dtype) * h
    pts = a[:, None] + t.view(1, -1, *[1] * (a.ndim - 1)) * d[:, None]
    vals = m.psi(pts.flatten(0, 1)).view(a.shape[0], n_t)
    return vals[:, 2:] - 2 * vals[:, 1:-1] + vals[:, :-2], vals


KINDS = ["fc", "conv", "fullyconv"]


class TestArchitecture:
    def test_parameter_counts_match_the_paper(self):
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        assert count(LPNFullyConnected()) == 10_502
        assert LPN1D is LPNFullyConnected
        assert count(LPNConv()) == 317_056
        assert count(LPNFullyConvolutional()) == 150_656

    def test_patch128_configuration(self):
        m = LPNConv.patch128()
        assert sum(p.numel() for p in m.parameters()) == 7_235_713
        assert m.final_size == (16, 16) and m.beta == 100.0 and m.alpha == 1e-6

    def test_output_shapes(self):
        m = _model("conv", torch.float32)
        y = torch.rand(5, 1, 12, 12, generator=_gen(0))
        assert m.psi(y).shape == (5,) and m(y).shape == y.shape
        fc = _model("fc", torch.float32)
        assert fc.psi(torch.randn(4, 3)).shape == (4,) and fc(torch.randn(4, 3)).shape == (4, 3)
        mnist = LPNConv()
        assert mnist(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)

    def test_fully_convolutional_any_size(self):
        m = LPNFullyConvolutional()
        for size in [(28, 28), (40, 36)]:
            y = torch.rand(3, 1, *size, generator=_gen(1))
            assert m.psi(y).shape == (3,) and m(y).shape == y.shape
        small = _model("fullyconv")
        a = torch.rand(6, 1, 40, 36, generator=_gen(2), dtype=torch.float64)
        d = torch.randn(6, 1, 40, 36, generator=_gen(3), dtype=torch.float64)
        second, vals = _second_differences(small, a, d)
        assert (second >= -1e-9 * vals.abs().amax()).all()

    def test_init_weights_as_the_authors(self):
        torch.manual_seed(0)
        m = LPNConv(image_size=12, hidden=6)
        w = torch.cat([p.detach().flatten() for p in m.z_path_parameters()])
        # exp(N(-10, 0.1)): log-weights have mean -10 and std 0.1
        assert abs(w.log().mean().item() + 10) < 0.01 and abs(w.log().std().item() - 0.1) < 0.01
        assert m.first.weight.min() < 0  # the first layer is free (PyTorch's default init)


class TestConvexity:
    @pytest.mark.parametrize("kind", KINDS)
    def test_psi_convex_along_random_lines(self, kind):
        m = _model(kind)
        a = torch.randn(_input_shape(kind, 40), generator=_gen(4), dtype=torch.float64)
        d = torch.randn(_input_shape(kind, 40), generator=_gen(5), dtype=torch.float64)
        second, vals = _second_differences(m, a, d)
        assert (second >= -1e-10 * vals.abs().amax()).all()
        # ... and the test has teeth: ψ is not merely affine along these lines.
        assert second.amax() > 1e-4 * vals.abs().amax()

    @pytest.mark.parametrize("kind", KINDS)
    def test_negative_z_weights_break_convexity(self, kind):
        """Control: with the z-path weights flipped negative the same check finds concave stretches."""
        m = _model(kind, mean=0.0, std=0.5)
        with torch.no_grad():
            for w in m.z_path_parameters():
                w.neg_()
        a = torch.randn(_input_shape(kind, 40), generator=_gen(4), dtype=torch.float64)
        d = torch.randn(_input_shape(kind, 40), generator=_gen(5), dtype=torch.float64)
        m.alpha = 0.0
        second, vals = _second_differences(m, a, d)
        assert (second < -1e-6 * vals.abs().amax()).any()

    @pytest.mark.parametrize("kind", KINDS)
    def test_prox_strongly_monotone(self, kind):
        m = _model(kind)
        a = torch.randn(_input_shape(kind, 64), generator=_gen(6), dtype=torch.float64)
        b = a + 0.3 * torch.randn(_input_shape(kind, 64), generator=_gen(7), dtype=torch.float64)
        inner = ((m(a) - m(b)) * (a - b)).flatten(1).sum(1)
        dist2 = (a - b).flatten(1).pow(2).sum(1)
        # ⟨f(a) − f(b), a − b⟩ ≥ 2α‖a − b‖² (ψ − α‖·‖² is convex)
        assert (inner >= 2 * m.alpha * dist2 * (1 - 1e-9)).all()

    def test_adam_step_then_clamp_keeps_convexity(self):
        m = _model("conv", seed=1, mean=-5.0, std=1.0)
        opt = torch.optim.Adam(m.parameters(), lr=0.05)
        y = torch.rand(8, 1, 12, 12, generator=_gen(8), dtype=torch.float64)
        loss = (m(y) - 0.5).abs().mean()
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in m.parameters())
        opt.step()
        assert min(w.min().item() for w in m.z_path_parameters()) < 0  # the step did break the constraint
        m.clamp_weights()
        assert all((w >= 0).all() for w in m.z_path_parameters())
        a = torch.randn(40, 1, 12, 12, generator=_gen(9), dtype=torch.float64)
        d = torch.randn(40, 1, 12, 12, generator=_gen(10), dtype=torch.float64)
        second, vals = _second_differences(m, a, d)
        assert (second >= -1e-10 * vals.abs().amax()).all()


class TestProx:
    def test_prox_is_gradient_of_psi(self):
        m = _model("conv")
        y = torch.rand(3, 1, 12, 12, generator=_gen(11), dtype=torch.float64)
        d = torch.randn(3, 1, 12, 12, generator=_gen(12), dtype=torch.float64)
        h = 1e-5
        fd = (m.psi(y + h * d) - m.psi(y - h * d)) / (2 * h)
        torch.testing.assert_close((m(y) * d).flatten(1).sum(1), fd, rtol=1e-7, atol=1e-9)

    def test_no_grad_inference(self):
        m = _model("conv", torch.float32)
        y = torch.rand(4, 1, 12, 12, generator=_gen(13))
        with torch.no_grad():
            out = m(y, 0.1)  # tau accepted and ignored
        assert not out.requires_grad and out.grad_fn is None and not y.requires_grad
        torch.testing.assert_close(out, m(y).detach())

    def test_training_mode_keeps_the_graph(self):
        m = _model("fc")
        y = torch.randn(5, 3, generator=_gen(14), dtype=torch.float64)
        out = m(y)
        assert out.requires_grad and not y.requires_grad
        out.sum().backward()
        assert m.first.weight.grad is not None and m.first.weight.grad.abs().sum() > 0
        m.requires_grad_(False)
        assert not m(y).requires_grad  # nothing asks for gradients: no graph kept

    @pytest.mark.parametrize("kind", KINDS)
    def test_gradcheck_psi_and_prox(self, kind):
        m = _model(kind)
        shape = (2, 3) if kind == "fc" else (2, 1, 6, 5)
        if kind == "conv":
            m = LPNConv(image_size=(6, 5), hidden=3, depth=2, features=4).double()
            m.init_weights(-1.0, 0.5)
        y = torch.randn(shape, generator=_gen(15), dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(m.psi, (y,))
        assert torch.autograd.gradcheck(m, (y,))  # Jacobian of f = Hessian of ψ: second derivatives


class TestPrior:
    @pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-8), (torch.float32, 1e-5)])
    @pytest.mark.parametrize("kind", KINDS)
    def test_invert_images_in_the_range(self, kind, dtype, tol):
        m = _model(kind, dtype)
        y = torch.rand(_input_shape(kind, 6), generator=_gen(16)).to(dtype)
        x = m(y)
        y_star, res = m.invert(x, tol=tol, return_residual=True)
        n = x[0].numel()
        assert res.shape == (6,) and (res <= tol * math.sqrt(n)).all()
        torch.testing.assert_close(m(y_star), x, rtol=0, atol=20 * tol)
        # strongly convex ψ: the inverse is unique, so y* = y up to residual / (2α)
        assert (y_star - y).flatten(1).norm(dim=1).max() <= 1.01 * res.max() / (2 * m.alpha) + 1e-6

    @pytest.mark.parametrize("kind", KINDS)
    def test_regularizer_at_images_in_the_range(self, kind):
        m = _model(kind)
        y = torch.rand(_input_shape(kind, 5), generator=_gen(17), dtype=torch.float64)
        with torch.no_grad():
            x = m(y)
            reg, res = m.regularizer(x, tol=1e-9, return_residual=True)
            direct = (x * y).flatten(1).sum(1) - 0.5 * x.pow(2).flatten(1).sum(1) - m.psi(y)
        torch.testing.assert_close(reg, direct, rtol=1e-9, atol=1e-9)
        assert (res <= 1e-9 * math.sqrt(x[0].numel())).all()

    def test_regularizer_closed_form_for_quadratic_psi(self):
        """With the z-path off, ψ(x) = sᵀx + c + α‖x‖²: R(x) = ‖x − s‖²/(4α) − ½‖x‖² − c."""
        m = LPNFullyConnected(dim=4, hidden=5, layers=2, alpha=0.3).double()
        with torch.no_grad():
            for w in m.z_path_parameters():
                w.zero_()
        s, c = m.out_skip.weight[0].detach(), m.out_skip.bias.detach()
        x = torch.randn(7, 4, generator=_gen(18), dtype=torch.float64)
        expected = (x - s).pow(2).sum(1) / (4 * 0.3) - 0.5 * x.pow(2).sum(1) - c
        torch.testing.assert_close(m.regularizer(x, tol=1e-10), expected, rtol=1e-10, atol=1e-10)

    def test_prox_of_the_learned_prior(self):
        """f(y) = argmin_x ½(x − y)² + R(x): brute force over a grid for a 1-D LPN."""
        torch.manual_seed(3)
        m = LPNFullyConnected(dim=1, hidden=16, layers=3, alpha=0.1).double()
        m.init_weights(-3.0, 0.5)
        grid = torch.linspace(-2, 2, 4001, dtype=torch.float64)[:, None]
        reg = m.regularizer(grid, tol=1e-10)
        y = torch.tensor([[-3.0], [-0.7], [0.1], [0.5], [2.2]], dtype=torch.float64)
        assert ((m(y) > -1.5) & (m(y) < 1.5)).all()  # minimisers well inside the grid
        objective = 0.5 * (grid.T - y) ** 2 + reg[None, :]
        torch.testing.assert_close(grid[objective.argmin(1)], m(y).detach(), rtol=0, atol=2e-3)

    def test_regularizer_gradient(self):
        """∇R(x) = f⁻¹(x) − x, checked against central differences of R."""
        m = _model("fc")
        x = torch.randn(4, 3, generator=_gen(19), dtype=torch.float64, requires_grad=True)
        reg = m.regularizer(x, tol=1e-11)
        (grad,) = torch.autograd.grad(reg.sum(), x)
        torch.testing.assert_close(grad, m.invert(x.detach(), tol=1e-11) - x.detach(), rtol=1e-8, atol=1e-8)
        d = torch.randn(4, 3, generator=_gen(20), dtype=torch.float64)
        h = 1e-4
        fd = (m.regularizer(x.detach() + h * d, tol=1e-11) - m.regularizer(x.detach() - h * d, tol=1e-11)) / (2 * h)
        torch.testing.assert_close((grad * d).sum(1), fd, rtol=1e-6, atol=1e-7)

    def test_regularizer_under_no_grad_and_max_iter(self):
        m = _model("conv", torch.float32)
        x = m(torch.rand(3, 1, 12, 12, generator=_gen(21)))
        with torch.no_grad():
            reg, res = m.regularizer(x, return_residual=True)
        assert reg.shape == (3,) and (res <= 1e-5 * 12).all()
        _, res1 = m.regularizer(x, max_iter=1, return_residual=True)
        assert (res1 > res).all()  # one iteration does not get there: the cap is honoured

    def test_invert_gradient_map_on_a_known_quadratic(self):
        """ψ(y) = ½ yᵀ diag(a) y: y* = x / a, φ* = −½ Σ x² / a."""
        a = torch.linspace(0.05, 20.0, 50, dtype=torch.float64)
        x = torch.randn(3, 50, generator=_gen(22), dtype=torch.float64)
        y, phi, res, iters = invert_gradient_map(lambda t: 0.5 * (a * t * t).sum(1), x, tol=1e-12)
        torch.testing.assert_close(y, x / a, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(phi, -0.5 * (x * x / a).sum(1))
        assert (res <= 1e-12 * math.sqrt(50)).all() and (iters < 200).all()


class TestErrors:
    def test_bad_shapes(self):
        fc = LPNFullyConnected(dim=3, hidden=4, layers=1)
        with pytest.raises(ValueError, match=r"LPNFullyConnected.forward: y must have shape \(B, 3\)"):
            fc(torch.zeros(2, 4))
        with pytest.raises(ValueError, match=r"LPNFullyConnected.psi: x must have shape"):
            fc.psi(torch.zeros(2, 3, 1))
        conv = LPNConv(hidden=4)
        with pytest.raises(ValueError, match=r"LPNConv.forward: y must have shape \(B, 1, 28, 28\).*dimension 2 is 27"):
            conv(torch.zeros(2, 1, 27, 28))
        with pytest.raises(ValueError, match=r"dimension 1 is 3, expected 1"):
            conv(torch.zeros(2, 3, 28, 28))
        with pytest.raises(ValueError, match=r"LPNFullyConvolutional.regularizer: x must have shape \(B, 1, \*, \*\)"):
            LPNFullyConvolutional(hidden=4).regularizer(torch.zeros(1, 28, 28))
        with pytest.raises(TypeError, match="y: expected a torch.Tensor, got list"):
            fc([[0.0, 0.0, 0.0]])

    def test_bad_dtype(self):
        with pytest.raises(TypeError, match=r"y has dtype torch.float64 but the parameters are torch.float32"):
            LPNFullyConnected()(torch.zeros(2, 1, dtype=torch.float64))

    @pytest.mark.parametrize(
        "kwargs,exc,msg",
        [
            (dict(alpha=-0.1), ValueError, "alpha must be >= 0, got -0.1"),
            (dict(beta=0.0), ValueError, "beta must be > 0, got 0.0"),
            (dict(beta=-10), ValueError, "beta must be > 0, got -10"),
            (dict(beta="ten"), TypeError, "beta: expected a number"),
            (dict(hidden=0), ValueError, "hidden must be an int >= 1, got 0"),
            (dict(layers=2.5), TypeError, "layers: expected an int"),
        ],
    )
    def test_bad_fully_connected_arguments(self, kwargs, exc, msg):
        with pytest.raises(exc, match=msg):
            LPNFullyConnected(**kwargs)

    @pytest.mark.parametrize(
        "cls,kwargs,exc,msg",
        [
            (LPNConv, dict(alpha=-1.0), ValueError, "alpha must be >= 0"),
            (LPNConv, dict(beta=-1.0), ValueError, "beta must be > 0"),
            (LPNConv, dict(image_size="28"), TypeError, "image_size: expected an int or a pair"),
            (LPNConv, dict(image_size=(28, 0)), ValueError, "image_size must be an int >= 1, got 0"),
            (LPNConv, dict(depth=0), ValueError, "depth must be an int >= 1"),
            (LPNConv, dict(features=0), ValueError, "features must be an int >= 1"),
            (LPNFullyConvolutional, dict(in_channels=0), ValueError, "in_channels must be an int >= 1"),
            (LPNFullyConvolutional, dict(alpha=-0.5), ValueError, "alpha must be >= 0"),
            (LPNFullyConvolutional, dict(beta=0), ValueError, "beta must be > 0"),
        ],
    )
    def test_bad_conv_arguments(self, cls, kwargs, exc, msg):
        with pytest.raises(exc, match=msg):
            cls(**kwargs)

    def test_bad_inversion_arguments(self):
        m = LPNFullyConnected(dim=2, hidden=4, layers=1)
        x = torch.zeros(3, 2)
        with pytest.raises(ValueError, match="tol must be > 0, got 0"):
            m.regularizer(x, tol=0)
        with pytest.raises(ValueError, match="max_iter must be an int >= 1, got 0"):
            m.invert(x, max_iter=0)
        with pytest.raises(ValueError, match=r"LPNFullyConnected.invert: x must have shape \(B, 2\)"):
            m.invert(torch.zeros(3, 5))


def test_sum_pooling_prox_is_local_and_size_independent():
    from proxlab.priors.lpn import LPNFullyConvolutional

    torch.manual_seed(0)
    net = LPNFullyConvolutional(hidden=8, features=8, depth=2, pool="sum").double()
    for p in net.z_path_parameters():  # away from the near-zero init so the learned part matters
        p.data.uniform_(0, 0.5)
    small = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    big = torch.zeros(1, 1, 48, 48, dtype=torch.float64)
    big[..., 16:32, 16:32] = small
    f_small, f_big = net(small), net(big)
    # away from the patch border the prox of the patch equals the prox inside the bigger image
    torch.testing.assert_close(f_big[..., 22:26, 22:26], f_small[..., 6:10, 6:10], atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="pool must be 'mean' or 'sum'"):
        LPNFullyConvolutional(pool="max")
