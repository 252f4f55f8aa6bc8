"""project_box / Box: projection, variational inequality, brute-force objective, regularizer, errors."""

import pytest
import torch

from proxlab.priors.classic import Box, project_box


def _rand(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class TestProjectBox:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_smoke_values(self, dtype):
        x = torch.tensor([-1.0, 0.2, 0.5, 3.0], dtype=dtype)
        assert torch.equal(project_box(x), torch.tensor([0.0, 0.2, 0.5, 3.0], dtype=dtype))
        assert torch.equal(project_box(x, 0.0, 1.0), torch.tensor([0.0, 0.2, 0.5, 1.0], dtype=dtype))
        assert torch.equal(project_box(x, None, 0.3), torch.tensor([-1.0, 0.2, 0.3, 0.3], dtype=dtype))
        assert torch.equal(project_box(x, None, None), x)

    @pytest.mark.parametrize("low,high", [(0.0, None), (-0.5, 0.5), (None, 0.1)])
    def test_variational_inequality(self, low, high):
        # p = P_C(x)  <=>  <x - p, q - p> <= 0 for all q in C
        x = _rand((2, 1, 8, 8), seed=1) * 2
        p = project_box(x, low, high)
        g = torch.Generator().manual_seed(2)
        q = project_box(torch.randn((300, 1, 8, 8), generator=g, dtype=torch.float64) * 3, low, high)
        vi = ((x[:1] - p[:1]) * (q - p[:1])).flatten(1).sum(1)
        assert float(vi.max()) <= 1e-12

    def test_beats_feasible_perturbations(self):
        x = _rand((1, 1, 8, 8), seed=3) * 2
        p = project_box(x, -0.5, 0.5)
        g = torch.Generator().manual_seed(4)
        for scale in (1e-3, 1e-1, 1.0):
            q = project_box(p + scale * torch.randn((300, 1, 8, 8), generator=g, dtype=torch.float64), -0.5, 0.5)
            assert bool((0.5 * (q - x).pow(2).flatten(1).sum(1) >= 0.5 * (p - x).pow(2).sum() - 1e-12).all())

    def test_bad_input(self):
        x = torch.zeros(1, 1, 2, 2)
        with pytest.raises(ValueError, match="low must be <= high"):
            project_box(x, 1.0, 0.0)
        with pytest.raises(ValueError, match="low must not be NaN"):
            project_box(x, float("nan"), 1.0)
        with pytest.raises(TypeError, match="high: expected a number or None"):
            project_box(x, 0.0, "one")
        with pytest.raises(TypeError, match="needs a real tensor"):
            project_box(torch.zeros(2, dtype=torch.complex64))


class TestBox:
    def test_module_matches_function(self):
        x = _rand((3, 2, 5, 5), seed=5)
        assert torch.equal(Box(0.0, 1.0)(x, 0.3), project_box(x, 0.0, 1.0))
        assert torch.equal(Box(0.0, None)(x, torch.tensor([1.0, 2.0, 3.0])), project_box(x, 0.0))

    def test_regularizer(self):
        x = torch.stack([torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), -0.1), torch.full((1, 2, 2), 1.2)])
        r = Box(0.0, 1.0).regularizer(x)
        assert r.shape == (3,)
        assert r[0] == 0 and torch.isinf(r[1]) and torch.isinf(r[2])
        assert torch.equal(Box(0.0, None).regularizer(x), torch.tensor([0.0, float("inf"), 0.0]))

    def test_bad_input(self):
        with pytest.raises(ValueError, match="low must be <= high"):
            Box(2.0, 1.0)
        with pytest.raises(ValueError, match="tau must be >= 0"):
            Box()(torch.zeros(1, 1, 2, 2), tau=-0.5)
