"""Orthonormal periodic DWT and the wavelet-L1 prox: filters, dot test, W W^T = I, optimality, Moreau, errors."""

import math

import pytest
import torch

from proxlab.operators.base import adjoint_test
from proxlab.priors.classic import WAVELETS, WaveletL1, WaveletTransform, prox_wavelet_l1, soft_threshold, wavelet_filter

CASES = [("haar", 1), ("haar", 3), ("db2", 2), ("db4", 1), ("db4", 3)]


def _rand(shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


class TestFilters:
    @pytest.mark.parametrize("name", WAVELETS)
    def test_orthonormal_and_vanishing_moments(self, name):
        h, g = wavelet_filter(name)
        L = h.numel()
        assert h.dtype == torch.float64 and L % 2 == 0
        assert abs(float(h.sum()) - math.sqrt(2.0)) <= 1e-15
        for m in range(L // 2):
            assert abs(float((h[: L - 2 * m] * h[2 * m :]).sum()) - (1.0 if m == 0 else 0.0)) <= 1e-15
            assert abs(float((h[: L - 2 * m] * g[2 * m :]).sum())) <= 1e-15
            assert abs(float((g[: L - 2 * m] * h[2 * m :]).sum())) <= 1e-15
        k = torch.arange(L, dtype=torch.float64)
        for p in range(L // 2):  # dbN: N vanishing moments of the wavelet
            assert abs(float((k**p * g).sum())) <= 1e-12 * float((k**p * g.abs()).sum())

    def test_db2_closed_form(self):
        s3, d = math.sqrt(3.0), 4.0 * math.sqrt(2.0)
        exact = torch.tensor([(1 + s3) / d, (3 + s3) / d, (3 - s3) / d, (1 - s3) / d], dtype=torch.float64)
        assert torch.allclose(wavelet_filter("db2")[0], exact, atol=3e-16, rtol=0)  # the float closed form is within 1 ulp

    def test_unknown_wavelet_hint(self):
        with pytest.raises(ValueError, match=r"wavelet must be one of .*got 'db3'; did you mean"):
            wavelet_filter("db3")
        with pytest.raises(ValueError, match=r"did you mean 'haar'"):
            WaveletTransform("hair")


class TestWaveletTransform:
    @pytest.mark.parametrize("name,levels", CASES)
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    def test_dot(self, name, levels, dtype, dot_tol):
        W = WaveletTransform(name, levels)
        assert adjoint_test(W, (3, 16, 24), dtype=dtype) <= dot_tol[dtype]

    @pytest.mark.parametrize("name,levels", CASES)
    def test_orthonormal(self, name, levels):
        W = WaveletTransform(name, levels)
        x = _rand((2, 3, 32, 16), seed=1)
        c = W(x)
        assert c.shape == x.shape
        assert float((W.adjoint(c) - x).abs().max()) <= 1e-12  # W^T W = I
        assert float((W(W.adjoint(x)) - x).abs().max()) <= 1e-12  # W W^T = I
        assert abs(float(c.norm() / x.norm()) - 1.0) <= 1e-13

    def test_small_sides_wrap(self):
        # sides shorter than the filter (8 taps on 2x2 at the coarsest level) are still orthonormal
        W = WaveletTransform("db4", 3)
        x = _rand((1, 1, 8, 8), seed=2)
        assert float((W.adjoint(W(x)) - x).abs().max()) <= 1e-12
        assert adjoint_test(W, (1, 8, 8)) <= 1e-12

    def test_haar_values(self):
        x = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.float64).view(1, 1, 2, 2)
        c = WaveletTransform("haar", 1)(x)[0, 0]
        a, b, cc, d = 1.0, 2.0, 3.0, 5.0
        # [[LL, LH], [HL, HH]]; first letter = filter along H, g = (h1, -h0)
        expected = torch.tensor(
            [[(a + b + cc + d) / 2, (a - b + cc - d) / 2], [(a + b - cc - d) / 2, (a - b - cc + d) / 2]], dtype=torch.float64
        )
        assert torch.allclose(c, expected, atol=1e-15)

    @pytest.mark.parametrize("name", ["haar", "db2", "db4"])
    def test_constant_image(self, name):
        W = WaveletTransform(name, 3)
        c = W(torch.full((1, 2, 16, 16), 0.5, dtype=torch.float64))
        mask = W.detail_mask(16, 16)
        assert float(c[..., mask].abs().max()) <= 1e-13
        assert torch.allclose(c[..., :2, :2], torch.full((1, 2, 2, 2), 0.5 * 8, dtype=torch.float64), atol=1e-13)

    def test_batch_channels_independent(self):
        W = WaveletTransform("db2", 2)
        x = _rand((3, 2, 8, 8), seed=3)
        c = W(x)
        assert torch.allclose(c[1:2, 1:2], W(x[1:2, 1:2]), atol=1e-15)

    def test_complex(self):
        W = WaveletTransform("db2", 2)
        x = torch.complex(_rand((2, 1, 8, 8), seed=4), _rand((2, 1, 8, 8), seed=5))
        assert torch.allclose(W(x), torch.complex(W(x.real), W(x.imag)))

    def test_closed_forms(self):
        W = WaveletTransform("db4", 2)
        b = _rand((2, 1, 8, 8), seed=6)
        assert W.norm() == 1.0
        assert torch.allclose(W.solve_normal(b, 0.5), b / 1.5)
        assert torch.equal(W.gram(b), b)
        with pytest.raises(ValueError, match="rho must be >= 0"):
            W.solve_normal(b, -1.0)

    def test_float32_and_device_buffers(self):
        W = WaveletTransform("db4", 2)
        x = _rand((1, 1, 16, 16), seed=7, dtype=torch.float32)
        c = W(x)
        assert c.dtype == torch.float32
        assert float((W.adjoint(c) - x).abs().max()) <= 1e-5

    def test_gradcheck(self):
        W = WaveletTransform("db2", 2)
        x = _rand((1, 1, 4, 8), seed=8).requires_grad_()
        assert torch.autograd.gradcheck(W, (x,))
        assert torch.autograd.gradcheck(W.adjoint, (x,))

    def test_bad_input(self):
        W = WaveletTransform("db4", 3)
        with pytest.raises(ValueError, match=r"spatial size 12x16.*divisible by 2\*\*levels = 8"):
            W(torch.zeros(1, 1, 12, 16))
        with pytest.raises(ValueError, match=r"WaveletTransform.adjoint: y has spatial size"):
            W.adjoint(torch.zeros(1, 1, 16, 20))
        with pytest.raises(ValueError, match=r"x must have shape \(B, \*, \*, \*\)"):
            W(torch.zeros(16, 16))
        with pytest.raises(ValueError, match="levels must be > 0"):
            WaveletTransform("haar", 0)
        with pytest.raises(TypeError, match="levels: expected an int"):
            WaveletTransform("haar", 2.0)


def _coefficient_objective(d, c, t, mask):
    return 0.5 * (d - c).pow(2).flatten(1).sum(1) + t * (d.abs() * mask).flatten(1).sum(1)


class TestProxWaveletL1:
    @pytest.mark.parametrize("name,levels", CASES)
    def test_optimality_in_coefficients(self, name, levels):
        x, t = _rand((2, 2, 16, 16), seed=9), 0.6
        W = WaveletTransform(name, levels)
        z = prox_wavelet_l1(x, t, name, levels)
        c, d = W(x), W(z)
        mask = W.detail_mask(16, 16).expand_as(c)
        assert torch.allclose(d[~mask], c[~mask], atol=1e-12)  # approximation band untouched
        # d = W W^T soft(c): entries that soft-thresholding zeroed come back as round-off (~1e-16), not 0
        nz = mask & (d.abs() > 1e-12)
        zero = mask & (d.abs() <= 1e-12)
        assert nz.any() and zero.any()
        # c - d in t * d|d|_1 on the detail coefficients
        assert torch.allclose((c - d)[nz], t * torch.sign(d[nz]), atol=1e-12, rtol=0)
        assert bool(((c - d)[zero].abs() <= t + 1e-12).all())

    def test_beats_random_perturbations(self):
        x, t = _rand((1, 1, 16, 16), seed=10), 0.4
        W = WaveletTransform("db4", 2)
        z = prox_wavelet_l1(x, t, "db4", 2)
        mask = W.detail_mask(16, 16)
        best = float(_coefficient_objective(W(z), W(x), t, mask))
        g = torch.Generator().manual_seed(11)
        for scale in (1e-4, 1e-2, 1.0):
            zz = z + scale * torch.randn((300, 1, 16, 16), generator=g, dtype=torch.float64)
            vals = 0.5 * (zz - x).pow(2).flatten(1).sum(1) + t * (W(zz).abs() * mask).flatten(1).sum(1)
            assert float(vals.min()) >= best - 1e-10

    def test_moreau_identity(self):
        # g = t|detail(Wx)|_1  =>  g* = indicator{|detail(Wv)|_inf <= t, approx(Wv) = 0}, whose prox is the
        # projection W^T(clip(detail, -t, t), approx -> 0). Moreau: x = prox_g(x) + prox_{g*}(x).
        x, t = _rand((2, 3, 16, 8), seed=12), 0.3
        W = WaveletTransform("db2", 3)
        c = W(x)
        mask = W.detail_mask(16, 8)
        conj = W.adjoint(torch.where(mask, c.clamp(-t, t), torch.zeros_like(c)))
        assert torch.allclose(prox_wavelet_l1(x, t, "db2", 3) + conj, x, atol=1e-12)

    def test_smooth_image_kept_and_shapes(self):
        c = torch.full((2, 3, 8, 8), 0.7, dtype=torch.float32)
        z = prox_wavelet_l1(c, 0.5, "haar", 2)
        assert z.shape == c.shape and z.dtype == torch.float32
        assert torch.allclose(z, c, atol=1e-6)

    def test_per_sample_threshold(self):
        x = _rand((3, 1, 8, 8), seed=13)
        t = torch.tensor([0.0, 0.2, 5.0], dtype=torch.float64)
        z = prox_wavelet_l1(x, t, "db2", 1)
        for i in range(3):
            assert torch.allclose(z[i : i + 1], prox_wavelet_l1(x[i : i + 1], float(t[i]), "db2", 1), atol=1e-14)
        assert torch.allclose(z[0], x[0], atol=1e-13)

    def test_bad_input(self):
        x = torch.zeros(1, 1, 8, 8)
        with pytest.raises(ValueError, match="thresh must be >= 0"):
            prox_wavelet_l1(x, -1.0)
        with pytest.raises(ValueError, match="did you mean 'db4'"):
            prox_wavelet_l1(x, 0.1, wavelet="db5")
        with pytest.raises(ValueError, match="divisible by 2\\*\\*levels = 16"):
            prox_wavelet_l1(x, 0.1, "haar", 4)
        with pytest.raises(TypeError, match="levels: expected an int"):
            prox_wavelet_l1(x, 0.1, "haar", "2")


class TestWaveletL1:
    def test_module_matches_function(self):
        x = _rand((2, 1, 16, 16), seed=14)
        prior = WaveletL1(weight=0.1, wavelet="db2", levels=2)
        assert torch.allclose(prior(x, 3.0), prox_wavelet_l1(x, 0.1 * 3.0, "db2", 2), atol=0)
        tau = torch.tensor([1.0, 2.0], dtype=torch.float64)
        assert torch.allclose(prior(x, tau), prox_wavelet_l1(x, 0.1 * tau, "db2", 2), atol=0)

    def test_regularizer(self):
        x = _rand((3, 2, 16, 16), seed=15)
        prior = WaveletL1(weight=0.5, wavelet="db4", levels=2)
        c = prior.transform(x)
        expected = 0.5 * (c.abs().sum(dim=(1, 2, 3)) - c[..., :4, :4].abs().sum(dim=(1, 2, 3)))
        r = prior.regularizer(x)
        assert r.shape == (3,) and torch.allclose(r, expected)
        assert float(prior.regularizer(torch.ones(1, 1, 16, 16, dtype=torch.float64)).abs().max()) <= 1e-12

    def test_bad_input(self):
        with pytest.raises(ValueError, match="weight must be >= 0"):
            WaveletL1(weight=-0.1)
        with pytest.raises(ValueError, match="tau must be >= 0"):
            WaveletL1()(torch.zeros(1, 1, 8, 8), tau=-1.0)
        with pytest.raises(ValueError, match="divisible"):
            WaveletL1(levels=3)(torch.zeros(1, 1, 12, 12))
