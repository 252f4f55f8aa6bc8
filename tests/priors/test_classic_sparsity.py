"""soft_threshold / L1: closed form, optimality, brute-force objective, Moreau identity, gradcheck, errors."""

import pytest
import torch

from proxlab.priors.classic import L1, project_box, soft_threshold


def _objective(z, x, t):
    return 0.5 * (z - x).abs().pow(2).sum() + t * z.abs().sum()


def _rand(shape, seed=0, dtype=torch.float64, complex_=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    if complex_:
        x = torch.complex(x, torch.randn(shape, generator=g, dtype=torch.float64))
        return x.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
    return x.to(dtype)


class TestSoftThreshold:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_smoke_shapes(self, dtype):
        x = _rand((2, 3, 5, 4), dtype=dtype)
        z = soft_threshold(x, 0.3)
        assert z.shape == x.shape and z.dtype == dtype

    def test_values(self):
        x = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.5, 2.0], dtype=torch.float64)
        assert torch.equal(soft_threshold(x, 1.0), torch.tensor([-2.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64))
        assert torch.equal(soft_threshold(x, 0.0), x)

    def test_optimality_real(self):
        # x - z in t * d|z|_1 componentwise: = t sign(z) where z != 0, in [-t, t] where z == 0.
        x, t = _rand((4, 1, 16, 16), seed=1) * 2, 0.7
        z = soft_threshold(x, t)
        nz = z != 0
        assert nz.any() and (~nz).any()
        assert torch.allclose((x - z)[nz], t * torch.sign(z[nz]), atol=1e-14, rtol=0)
        assert bool(((x - z)[~nz].abs() <= t).all())

    def test_optimality_complex(self):
        x, t = _rand((3, 2, 8, 8), seed=2, complex_=True), 1.1
        z = soft_threshold(x, t)
        assert z.dtype == torch.complex128
        nz = z.abs() > 0
        assert nz.any() and (~nz).any()
        assert torch.allclose((x - z)[nz], t * z[nz] / z[nz].abs(), atol=1e-14, rtol=0)
        assert bool((x[~nz].abs() <= t).all())
        # modulus shrunk by t, phase kept
        assert torch.allclose(z.abs()[nz], x.abs()[nz] - t, atol=1e-14, rtol=0)
        assert torch.allclose(torch.angle(z[nz]), torch.angle(x[nz]), atol=1e-12, rtol=0)

    def test_complex_matches_real_on_real_data(self):
        x = _rand((2, 1, 6, 6), seed=3)
        assert torch.allclose(soft_threshold(x.to(torch.complex128), 0.4).real, soft_threshold(x, 0.4), atol=1e-15)

    @pytest.mark.parametrize("complex_", [False, True])
    def test_beats_random_perturbations(self, complex_):
        x, t = _rand((1, 1, 8, 8), seed=4, complex_=complex_), 0.5
        z = soft_threshold(x, t)
        best = _objective(z, x, t)
        g = torch.Generator().manual_seed(5)
        for scale in (1e-4, 1e-2, 1.0):
            d = torch.randn((500,) + x.shape[1:], generator=g, dtype=torch.float64) * scale
            if complex_:
                d = torch.complex(d, torch.randn(d.shape, generator=g, dtype=torch.float64) * scale)
            zz = z + d
            vals = 0.5 * (zz - x).abs().pow(2).flatten(1).sum(1) + t * zz.abs().flatten(1).sum(1)
            assert bool((vals >= best - 1e-12).all())

    def test_moreau_identity(self):
        # x = prox_{t|.|_1}(x) + t * prox_{(|.|_1)^*/t}(x/t) = soft(x, t) + P_{[-t, t]}(x)
        x, t = _rand((3, 2, 7, 9), seed=6) * 2, 0.8
        assert torch.allclose(soft_threshold(x, t) + project_box(x, -t, t), x, atol=1e-15, rtol=0)

    def test_per_sample_threshold(self):
        x = _rand((3, 2, 4, 4), seed=7)
        t = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
        ref = torch.stack([soft_threshold(x[i], float(t[i])) for i in range(3)])
        assert torch.equal(soft_threshold(x, t), ref)
        assert torch.equal(soft_threshold(x, t.view(3, 1, 1, 1)), ref)

    def test_gradcheck_away_from_kink(self):
        g = torch.Generator().manual_seed(8)
        mag = torch.cat([torch.rand(20, generator=g, dtype=torch.float64) * 0.4, 0.6 + torch.rand(20, generator=g, dtype=torch.float64)])
        sign = torch.where(torch.rand(40, generator=g) < 0.5, -1.0, 1.0).double()
        x = (mag * sign).reshape(2, 1, 4, 5).requires_grad_()
        t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(soft_threshold, (x, t))

    def test_gradcheck_complex(self):
        x = _rand((1, 1, 3, 3), seed=9, complex_=True)
        x = torch.where(x.abs() > 0.6, x, x * 0.1 / x.abs()).requires_grad_()  # away from |x| = t = 0.3
        assert torch.autograd.gradcheck(lambda v: soft_threshold(v, 0.3), (x,))

    def test_bad_input(self):
        x = torch.zeros(2, 1, 3, 3)
        with pytest.raises(ValueError, match="thresh must be >= 0"):
            soft_threshold(x, -0.1)
        with pytest.raises(ValueError, match="thresh must be >= 0 and finite"):
            soft_threshold(x, torch.tensor([0.1, -1.0]))
        with pytest.raises(ValueError, match=r"thresh must be a number.*got shape \(5,\)"):
            soft_threshold(x, torch.ones(5))
        with pytest.raises(TypeError, match="thresh: expected a number"):
            soft_threshold(x, "big")
        with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
            soft_threshold([1.0, 2.0], 0.1)


class TestL1:
    def test_module_matches_function(self):
        x = _rand((3, 1, 6, 6), seed=10)
        prior = L1(weight=0.2)
        assert torch.equal(prior(x, 1.5), soft_threshold(x, 1.5 * 0.2))
        tau = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
        assert torch.equal(prior(x, tau), soft_threshold(x, 0.2 * tau))
        assert torch.equal(prior(x), soft_threshold(x, 0.2))

    def test_regularizer(self):
        x = _rand((3, 2, 4, 5), seed=11)
        r = L1(weight=0.1).regularizer(x)
        assert r.shape == (3,)
        assert torch.allclose(r, 0.1 * x.abs().sum(dim=(1, 2, 3)), atol=1e-14)
        xc = _rand((2, 1, 3, 3), seed=12, complex_=True)
        assert torch.allclose(L1(2.0).regularizer(xc), 2.0 * xc.abs().sum(dim=(1, 2, 3)))

    def test_bad_input(self):
        with pytest.raises(ValueError, match="weight must be >= 0"):
            L1(weight=-1.0)
        with pytest.raises(ValueError, match="weight must be finite"):
            L1(weight=float("inf"))
        with pytest.raises(ValueError, match="tau must be >= 0"):
            L1(0.1)(torch.zeros(1, 1, 2, 2), tau=-1.0)
        with pytest.raises(ValueError, match="tau must be >= 0 and finite"):
            L1(0.1)(torch.zeros(2, 1, 2, 2), tau=torch.tensor([1.0, float("nan")]))
